# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning of the nat_gateway role: role variables -> the rule model.

Private to the collection. Pure Python, no I/O. plan() turns the role's
variables into the owned chains of the nat table (translations) and of the
filter table (FORWARD accepts) in the structure the ruleset module takes
(the rule model, no iptables syntax), and the sysctls to set; it checks
every planned rule against the rule model and names the variable and the
entry in every error. stale() compares the translations in place (as the
ruleset module's state gathered returns them) with the planned ones and
returns the conntrack_flush filters of those that changed or went away.

Rule names carry the identity of a translation (what is translated, not what
it becomes), so that a changed translation keeps its name and the conntrack
entries of the old one can be found.

The filter plugins nat_gateway_plan and nat_gateway_stale expose these to
the role; ruleset_rendered renders the planned chains for the rules files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.stateful.netfilter.plugins.module_utils import _limits
from ansible_collections.stateful.netfilter.plugins.module_utils._engine import desired_owned
from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import (
    NAME_PATTERN,
    PlanError,
    _port_is_list,
    _quoted,
    _text,
    entry_message,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import HELPERS, check_scope, negated, render
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import FAMILIES, ValidationError

SCOPE = 'GW'
# A full match (fullmatch): '$' would also accept a trailing newline.
TIMEOUT_PATTERN = re.compile(r'nf_conntrack_[a-z0-9_]*timeout[a-z0-9_]*')
SECONDS_PATTERN = re.compile(r'[0-9]+')
DEFAULTS = dict(
    nat_gateway_forwarding=True,
    nat_gateway_masquerade=[],
    nat_gateway_snat=[],
    nat_gateway_port_forwards=[],
    nat_gateway_forward_outbound=True,
    nat_gateway_conntrack_max=None,
    nat_gateway_conntrack_timeouts={},
    nat_gateway_conntrack_accounting=None,
    nat_gateway_helpers=[],
    nat_gateway_mss_clamping=[],
    nat_gateway_hairpin=False,
    nat_gateway_hairpin_sources=[],
    nat_gateway_netmap=[],
)
# The well-known port of each conntrack helper: the port a helper entry scopes to when it names none.
HELPER_PORTS = {
    'ftp': 21, 'tftp': 69, 'irc': 6667, 'sip': 5060, 'amanda': 10080, 'pptp': 1723, 'sane': 6566,
    'snmp': 161, 'snmp_trap': 162, 'netbios-ns': 137, 'RAS': 1719, 'Q.931': 1720,
}
# The entry options of the raw and mangle rules, by model key.
HELPER_OPTIONS = {'destination_port': 'port'}
MSS_OPTIONS = {'set_mss': 'mss', 'clamp_mss_to_pmtu': 'clamp_to_pmtu'}
# TCPMSS changes SYN packets only: SYN and SYN/ACK (both directions of a connection's handshake).
MSS_SYN_TEST = 'SYN,RST SYN'
# The model keys of a planned rule, and the entry option each comes from.
ENTRY_OPTIONS = {'destination_port': 'port', 'to_destination': 'to', 'destination': 'to'}
ENTRY_OPTIONS.update(_limits.OPTIONS)
SOURCE_NAT = (('nat_gateway_masquerade', 'masq', 'MASQUERADE'), ('nat_gateway_snat', 'snat', 'SNAT'))


def split_target(text):
    """The address and the port part of a NAT target or a port forward's `to`: (address, port or None).

    'ADDR', 'ADDR:PORT', '[IPV6]:PORT', 'A-B:P-Q', and an IPv6 address without brackets (no port).
    """
    text = str(text)
    if text.startswith('['):
        address, dummy, rest = text[1:].partition(']')
        return address, (rest[1:] or None) if rest.startswith(':') else None
    if text.count(':') == 1:
        address, port = text.split(':')
        return address, port
    return text, None


def identity(entry):
    """The identity of a source NAT entry, what it translates: 'SOURCE@INTERFACE' ('any' for either left out).

    A trailing + of an interface prefix becomes '.x' (rule names take no +).
    """
    parts = []
    for field in ('source', 'out_interface'):
        value = str(entry.get(field) or 'any').strip()
        parts.append(value[:-1] + '.x' if value.endswith('+') else value)
    return '@'.join(parts)


def _option(entry, name):
    value = _text(entry.get(name))
    return value if value else None


def _helper_name(value):
    """The kernel's spelling of a helper name given in any case, or None for an unknown one."""
    if not isinstance(value, str):
        return None
    return dict((name.lower(), name) for name in HELPERS).get(value.strip().lower())


def _name_problems(variable, entries):
    """The problems of the entries' names: each a valid name, none used twice."""
    problems = []
    names = [entry.get('name') for entry in entries]
    bad = [name for name in names if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name)]
    if bad:
        problems.append('%s: names must be 1-48 letters, digits, _ . : / @ or -, starting with a letter or a '
                        'digit: %s.' % (variable, ', '.join(_quoted(name) for name in bad)))
    twice = sorted(set(name for name in names if isinstance(name, str) and names.count(name) > 1))
    if twice:
        problems.append('%s: a name is used twice: %s.' % (variable, ', '.join(twice)))
    return problems


def _check_helpers(settings):
    """The problems of nat_gateway_helpers, the helper of port forwards and nat_gateway_mss_clamping."""
    helpers = settings['nat_gateway_helpers']
    problems = _name_problems('nat_gateway_helpers', helpers)
    for entry in helpers:
        name = entry.get('name')
        if not _helper_name(entry.get('helper')):
            problems.append('nat_gateway_helpers entry %s: helper: %s is not a conntrack helper (%s).'
                            % (name, _quoted(entry.get('helper')), ', '.join(sorted(HELPERS))))
        if not _option(entry, 'in_interface') and not _option(entry, 'destination'):
            problems.append('nat_gateway_helpers entry %s: give in_interface (where the control connections arrive) '
                            'and/or destination (the servers): a helper for every connection to a port is what the '
                            'kernel\'s secure helper use warns against.' % name)
    for entry in settings['nat_gateway_port_forwards']:
        if entry.get('helper') is None:
            continue
        if not _helper_name(entry.get('helper')):
            problems.append('nat_gateway_port_forwards entry %s: helper: %s is not a conntrack helper (%s).'
                            % (entry.get('name'), _quoted(entry.get('helper')), ', '.join(sorted(HELPERS))))
        if not _option(entry, 'in_interface'):
            problems.append('nat_gateway_port_forwards entry %s: helper needs in_interface (where the control '
                            'connections arrive), so that only the forwarded connections get the helper.'
                            % entry.get('name'))
    clamps = settings['nat_gateway_mss_clamping']
    interfaces = [_option(entry, 'out_interface') for entry in clamps]
    if None in interfaces:
        problems.append('nat_gateway_mss_clamping: every entry needs out_interface (the uplink whose MTU is '
                        'smaller), %d entries have none.' % interfaces.count(None))
    twice = sorted(set(name for name in interfaces if name and interfaces.count(name) > 1))
    if twice:
        problems.append('nat_gateway_mss_clamping: an out_interface is given twice: %s.' % ', '.join(twice))
    for entry, interface in zip(clamps, interfaces):
        clamp, mss = entry.get('clamp_to_pmtu'), entry.get('mss')
        if clamp not in (None, True, False):
            problems.append('nat_gateway_mss_clamping entry %s: clamp_to_pmtu: expected true or false, got %s.'
                            % (interface, _quoted(clamp)))
        elif clamp and mss is not None:
            problems.append('nat_gateway_mss_clamping entry %s: clamp_to_pmtu and mss conflict: give one of them.'
                            % interface)
        elif not clamp and mss is None:
            problems.append('nat_gateway_mss_clamping entry %s: give clamp_to_pmtu: true or an mss.' % interface)
    return problems


def _helper_rules(settings, origins):
    """The CT --helper rules of the raw table: helper entries, then port forwards with a helper."""
    rules = []
    for entry in settings['nat_gateway_helpers']:
        helper = _helper_name(entry.get('helper'))
        protocol = _text(entry.get('protocol')) or HELPERS[helper][0][0]
        port = entry.get('port')
        rule = dict(name='helper:%s' % entry['name'], protocol=protocol,
                    destination_port=HELPER_PORTS[helper] if port is None or port == '' else port,
                    jump='CT', helper=helper)
        rule.update((field, _option(entry, field)) for field in ('in_interface', 'source', 'destination')
                    if _option(entry, field))
        origins[len(rules)] = ('nat_gateway_helpers', entry['name'])
        rules.append(rule)
    for entry in settings['nat_gateway_port_forwards']:
        if entry.get('helper') is None:
            continue
        # The raw table comes before the DNAT: the rule matches the gateway's port, as the DNAT rule does.
        rule = dict(name='pf:%s' % entry['name'], protocol=_text(entry.get('protocol')) or 'tcp',
                    destination_port=entry.get('port'), in_interface=_option(entry, 'in_interface'), jump='CT',
                    helper=_helper_name(entry['helper']))
        origins[len(rules)] = ('nat_gateway_port_forwards', entry['name'])
        rules.append(rule)
    return rules


def _mss_rules(settings, origins):
    """The TCPMSS rules of the mangle table (FORWARD), one per outbound interface, on SYN packets only."""
    rules = []
    for entry in settings['nat_gateway_mss_clamping']:
        interface = _option(entry, 'out_interface')
        name = interface[:-1] + '.x' if interface.endswith('+') else interface
        rule = dict(name='mss:%s' % name, protocol='tcp', tcp_flags=MSS_SYN_TEST, out_interface=interface,
                    jump='TCPMSS')
        if entry.get('clamp_to_pmtu'):
            rule['clamp_mss_to_pmtu'] = True
        else:
            rule['set_mss'] = entry.get('mss')
        origins[len(rules)] = ('nat_gateway_mss_clamping', interface)
        rules.append(rule)
    return rules


def check_input(settings):
    """Raise PlanError for what the argument spec cannot check, every problem at once, naming variable and entries."""
    forwards = settings['nat_gateway_port_forwards']
    problems = _name_problems('nat_gateway_port_forwards', forwards)
    # The engine takes port lists, but a forward's stale-flush and FORWARD rule use one port or range.
    lists = [str(entry.get('name')) for entry in forwards if _port_is_list(entry.get('port'))]
    if lists:
        problems.append('nat_gateway_port_forwards: port is one port or an A-B range, not a list: %s.'
                        % ', '.join(lists))
    for variable, dummy, dummy in SOURCE_NAT:
        keys = [identity(entry) for entry in settings[variable]]
        twice = sorted(set(key for key in keys if keys.count(key) > 1))
        if twice:
            problems.append('%s: two entries translate the same source out of the same interface: %s.'
                            % (variable, ', '.join(twice)))
    timeouts = settings['nat_gateway_conntrack_timeouts']
    bad = [_quoted(key) for key in timeouts if not isinstance(key, str) or not TIMEOUT_PATTERN.fullmatch(key)]
    bad += [_quoted(value) for value in timeouts.values()
            if isinstance(value, bool) or not SECONDS_PATTERN.fullmatch(str(value))]
    if bad:
        problems.append('nat_gateway_conntrack_timeouts: expected names of nf_conntrack_*timeout* sysctls (for '
                        'example nf_conntrack_tcp_timeout_established) with a number of seconds: %s.' % ', '.join(bad))
    maximum = settings['nat_gateway_conntrack_max']
    if maximum is not None and (isinstance(maximum, bool) or not SECONDS_PATTERN.fullmatch(str(maximum))
                                or int(maximum) <= 0):
        problems.append('nat_gateway_conntrack_max: expected a positive number, got %s.' % _quoted(maximum))
    accounting = settings['nat_gateway_conntrack_accounting']
    if accounting is not None and not isinstance(accounting, bool):
        problems.append('nat_gateway_conntrack_accounting: expected true, false or null, got %s.' % _quoted(accounting))
    problems.extend(_check_helpers(settings))
    for entry in forwards:
        problems.extend(_limits.problems('nat_gateway_port_forwards', entry))
    problems.extend(_check_maps(settings))
    if problems:
        raise PlanError(' '.join(problems))


def plan(variables, scope=SCOPE):
    """{nat_chains, filter_chains, raw_chains, mangle_chains, sysctls}: the owned chains of each table and the
    sysctls, checked.

    Raises PlanError naming the variable and the entry.
    """
    settings = dict(DEFAULTS)
    settings.update((key, value) for key, value in variables.items() if value is not None)
    check_input(settings)
    prefix = check_scope(scope, 'scope')
    pre, post, forward = [], [], []
    # Rule lists -> {rule index: (variable, entry)}, for the messages.
    origins = dict(pre={}, post={}, forward={})
    outbound = []
    ipv6 = False
    for variable, kind, jump in SOURCE_NAT:
        for entry in settings[variable]:
            key = identity(entry)
            rule = dict(name='%s:%s' % (kind, key), jump=jump)
            if jump == 'SNAT':
                rule['to_source'] = _text(entry.get('to_source'))
            rule.update((field, _option(entry, field)) for field in ('source', 'out_interface')
                        if _option(entry, field))
            origins['post'][len(post)] = (variable, key)
            post.append(rule)
            outbound.append((variable, key, rule))
            ipv6 = ipv6 or any(':' in (_option(entry, field) or '') for field in ('source', 'to_source'))
    if settings['nat_gateway_forward_outbound'] and outbound or settings['nat_gateway_port_forwards']:
        forward.append(dict(name='base:established', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'))
    if settings['nat_gateway_forward_outbound']:
        for variable, key, translation in outbound:
            name = 'out:%s' % key
            if name in [rule['name'] for rule in forward]:
                continue  # a masquerade and an SNAT of the same source and interface: one accept
            rule = dict(name=name, ctstate=['NEW'], jump='ACCEPT')
            rule.update((field, translation[field]) for field in ('source', 'out_interface') if field in translation)
            origins['forward'][len(forward)] = (variable, key)
            forward.append(rule)
    for entry in settings['nat_gateway_port_forwards']:
        to = _text(entry.get('to')) or ''
        address, port = split_target(to)
        ipv6 = ipv6 or ':' in address
        protocol = _text(entry.get('protocol')) or 'tcp'
        dnat = dict(name='pf:%s' % entry['name'], protocol=protocol, destination_port=entry.get('port'), jump='DNAT',
                    to_destination=to)
        accept = dict(name='pf:%s' % entry['name'], protocol=protocol, destination=address,
                      destination_port=port or entry.get('port'), ctstate=['DNAT'], jump='ACCEPT')
        if _option(entry, 'in_interface'):
            dnat['in_interface'] = accept['in_interface'] = _option(entry, 'in_interface')
        if _option(entry, 'public_address'):
            dnat['destination'] = _option(entry, 'public_address')
        origins['pre'][len(pre)] = ('nat_gateway_port_forwards', entry['name'])
        pre.append(dnat)
        # Per-source limits in FORWARD, in front of the accept: the first packet of a forwarded connection
        # (ESTABLISHED ones were accepted above), counted by its original source.
        for rule in _limits.limit_rules(accept, entry, 'pf', ctstate=('DNAT',)) + [accept]:
            origins['forward'][len(forward)] = ('nat_gateway_port_forwards', entry['name'])
            forward.append(rule)
    ipv6 = _plan_maps(settings, pre, post, forward, origins) or ipv6

    nat_chains, nat_origins = [], {}
    for rules, kind, builtin in ((pre, 'pre', 'PREROUTING'), (post, 'post', 'POSTROUTING')):
        if rules:
            nat_origins.update(((len(nat_chains), index), origin) for index, origin in origins[kind].items())
            nat_chains.append(dict(name=prefix + kind.upper(), hook=builtin, hook_position='first', rules=rules))
    filter_chains, filter_origins = [], {}
    if forward:
        filter_origins = dict(((0, index), origin) for index, origin in origins['forward'].items())
        filter_chains.append(dict(name=prefix + 'FORWARD', hook='FORWARD', hook_position='first', rules=forward))
    _check_rules(nat_chains, 'nat', prefix, nat_origins)
    _check_rules(filter_chains, 'filter', prefix, filter_origins)
    # Conntrack helpers (raw PREROUTING, before conntrack sees a connection) and MSS clamping (mangle FORWARD).
    raw_chains, mangle_chains, helper_origins, mss_origins = [], [], {}, {}
    helpers = _helper_rules(settings, helper_origins)
    if helpers:
        raw_chains.append(dict(name=prefix + 'HELPERS', hook='PREROUTING', hook_position='first', rules=helpers))
    clamps = _mss_rules(settings, mss_origins)
    if clamps:
        mangle_chains.append(dict(name=prefix + 'MSS', hook='FORWARD', hook_position='first', rules=clamps))
    _check_rules(raw_chains, 'raw', prefix, dict(((0, index), origin) for index, origin in helper_origins.items()),
                 HELPER_OPTIONS)
    _check_rules(mangle_chains, 'mangle', prefix, dict(((0, index), origin) for index, origin in mss_origins.items()),
                 MSS_OPTIONS)

    sysctls = {}
    if settings['nat_gateway_forwarding']:
        sysctls['net.ipv4.ip_forward'] = 1
        if ipv6:
            sysctls['net.ipv6.conf.all.forwarding'] = 1
    if settings['nat_gateway_conntrack_max'] is not None:
        sysctls['net.netfilter.nf_conntrack_max'] = int(settings['nat_gateway_conntrack_max'])
    for key, value in settings['nat_gateway_conntrack_timeouts'].items():
        sysctls['net.netfilter.%s' % key] = int(value)
    if settings['nat_gateway_conntrack_accounting'] is not None:
        sysctls['net.netfilter.nf_conntrack_acct'] = int(settings['nat_gateway_conntrack_accounting'])
    return dict(nat_chains=nat_chains, filter_chains=filter_chains, raw_chains=raw_chains,
                mangle_chains=mangle_chains, sysctls=sysctls)


def _check_rules(chains, table, prefix, origins, options=None):
    """Check every planned rule of a table in each family; an error names the variable and the entry."""
    try:
        for family in FAMILIES:
            desired_owned(dict(family='both', chains=chains), family, table, prefix)
    except ValidationError as exc:
        raise PlanError(entry_message(exc, origins, options or ENTRY_OPTIONS, 'nat_gateway'))


# ---------------------------------------------------------------------------
# Stale translations

def planned_texts(chains, family, prefix):
    """{rule name: canonical rule text} of the planned nat chains in one family."""
    owned = desired_owned(dict(family='both', chains=chains), family, 'nat', prefix)
    return dict((rule.name, rule.text) for chain in owned.chains.values() for rule in chain.rules if rule.name)


def _flush_filters(spec, family):
    """The conntrack_flush filters of the entries a translation made (none for rules of other targets).

    A negated match ('!10.0.0.0/8') cannot be a conntrack filter: it is left out, and the filter covers more.
    """
    def given(key):
        value = spec.get(key)
        return None if negated(value) else value

    name = spec['name']
    if spec.get('jump') == 'NETMAP':
        # The role maps the destination with a destination match (PREROUTING), the source with a source match.
        if given('destination') and not spec.get('source'):
            return [dict(name=name, family=family, nat='dnat', dst=given('destination'), reply_src=spec['to_prefix'])]
        return [dict(name=name, family=family, nat='snat', src=given('source'), reply_dst=spec['to_prefix'])]
    if spec.get('jump') in ('SNAT', 'MASQUERADE'):
        flt = dict(name=name, family=family, nat='snat', src=given('source'))
        if spec['jump'] == 'SNAT':
            address, dummy = split_target(spec.get('to_source') or '')
            if '-' not in address:
                flt['reply_dst'] = address
        if given('destination'):
            # The connections to that destination only (a hairpin's server: the reply comes from it).
            flt['reply_src'] = given('destination')
            flt['protocol'] = spec.get('protocol')
        return [flt]
    if spec.get('jump') != 'DNAT':
        return []
    address, port = split_target(spec.get('to_destination') or '')
    ports = given('destination_port')
    filters = [dict(name=name, family=family, nat='dnat', protocol=spec.get('protocol'),
                    dport=str(dport).replace(':', '-') if dport else None,
                    reply_src=address if '-' not in address else None,
                    reply_sport=port if port and '-' not in port else None)
               for dport in (ports if isinstance(ports, list) else [ports])]
    if given('source'):
        # A DNAT of some sources only (a hairpin's): the connections of those sources.
        for flt in filters:
            flt['src'] = given('source')
    return filters


def stale(gathered, chains, scope=SCOPE):
    """The conntrack_flush filters of the translations in place that the planned chains change or drop.

    gathered is the ruleset module's `gathered` result of the nat table
    ({family: {chains: [{rules: [spec]}]}}); chains the planned nat chains.
    A translation is stale when no planned rule of its name renders the same
    in its family. Each filter carries the name of the old rule.
    """
    prefix = check_scope(scope, 'scope')
    filters = []
    for family in sorted(gathered):
        specs = [spec for chain in gathered[family].get('chains') or [] for spec in chain.get('rules') or []
                 if spec.get('name')]
        if not specs:
            continue
        new = planned_texts(chains, family, prefix)
        for spec in specs:
            if new.get(spec['name']) != render(spec):
                filters.extend(_flush_filters(spec, family))
    return filters


# ---------------------------------------------------------------------------
# Hairpin NAT of port forwards and 1:1 NAT (NETMAP) of prefixes

def _network(value):
    """An ip_network of a prefix or an address as written (host bits refused), or None."""
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError:
        return None


def _interface_name(value):
    """An interface as a rule name shows it (a trailing + becomes .x: rule names take no +)."""
    value = str(value or 'any').strip()
    return value[:-1] + '.x' if value.endswith('+') else value


def netmap_identity(entry, field):
    """The identity of one direction of a NETMAP entry: what it translates, 'PREFIX@INTERFACE'."""
    return '%s@%s' % (str(entry.get(field) or '').strip(), _interface_name(entry.get('interface')))


def _hairpin_on(settings, entry):
    """Whether a port forward is hairpinned: its own switch, else the role-wide one."""
    own = entry.get('hairpin')
    return bool(settings['nat_gateway_hairpin'] if own is None else own)


def hairpin_sources(settings, family):
    """The inside networks (text) whose hosts reach port forwards through the public address, of one family.

    nat_gateway_hairpin_sources, or when empty the sources of the masquerade and SNAT entries.
    """
    given = settings['nat_gateway_hairpin_sources'] or [
        entry.get('source') for variable, dummy, dummy in SOURCE_NAT for entry in settings[variable]
        if _option(entry, 'source') and not negated(_option(entry, 'source'))]
    out = []
    for value in given:
        net = _network(_text(value))
        if net is not None and 'ipv%d' % net.version == family and str(net) not in out:
            out.append(str(net))
    return out


def _check_maps(settings):
    """The problems of the hairpin switches, public addresses and nat_gateway_netmap, naming variable and entry."""
    problems = []
    bad = [_quoted(value) for value in settings['nat_gateway_hairpin_sources'] if _network(_text(value)) is None]
    if bad:
        problems.append('nat_gateway_hairpin_sources: expected networks (10.0.0.0/24, fd00::/64) without host '
                        'bits: %s.' % ', '.join(bad))
    for entry in settings['nat_gateway_port_forwards']:
        name = entry.get('name')
        public = _option(entry, 'public_address')
        address = split_target(_text(entry.get('to')) or '')[0]
        family = 'ipv6' if ':' in address else 'ipv4'
        if public is not None:
            net = _network(public)
            if net is None or net.num_addresses != 1:
                problems.append('nat_gateway_port_forwards entry %s: public_address: %s is not one IP address.'
                                % (name, _quoted(public)))
                continue
            if 'ipv%d' % net.version != family:
                problems.append('nat_gateway_port_forwards entry %s: public_address %s and to %s are of different '
                                'families.' % (name, public, address))
                continue
        if not _hairpin_on(settings, entry):
            continue
        if public is None:
            problems.append('nat_gateway_port_forwards entry %s: hairpin needs public_address, the gateway\'s '
                            'address the inside hosts connect to (only connections to it are hairpinned).' % name)
        elif not bad and not hairpin_sources(settings, family):
            problems.append('nat_gateway_port_forwards entry %s: hairpin needs the inside networks of %s: set '
                            'nat_gateway_hairpin_sources, or give a masquerade or SNAT entry of that family a '
                            'source.' % (name, family))
    maps = []
    for index, entry in enumerate(settings['nat_gateway_netmap']):
        label = 'nat_gateway_netmap entry %s' % (netmap_identity(entry, 'inside'),)
        nets = {}
        for field in ('inside', 'outside'):
            value = _text(entry.get(field))
            nets[field] = _network(value)
            if nets[field] is None:
                problems.append('%s: %s: %s is not a prefix (an address or a network without host bits).'
                                % (label, field, _quoted(value)))
        if not _option(entry, 'interface'):
            problems.append('%s: interface is required (the outside interface the mapping applies on).' % label)
        if None in nets.values():
            continue
        inside, outside = nets['inside'], nets['outside']
        if inside.version != outside.version:
            problems.append('%s: inside %s and outside %s are of different families.' % (label, inside, outside))
            continue
        if inside.prefixlen != outside.prefixlen:
            problems.append('%s: inside %s is a /%d and outside %s a /%d: a 1:1 mapping needs prefixes of the '
                            'same length.' % (label, inside, inside.prefixlen, outside, outside.prefixlen))
            continue
        if inside.prefixlen == 0:
            problems.append('%s: a /0 maps no bit of the address.' % label)
            continue
        for other_label, other in maps:
            for field, net in (('inside', inside), ('outside', outside)):
                if net.overlaps(other[field]):
                    problems.append('%s: %s %s overlaps the %s %s of %s.'
                                    % (label, field, net, field, other[field], other_label))
        maps.append((label, nets))
        # NETMAP comes first in POSTROUTING: a source NAT entry out of the same interface whose whole source it
        # maps would never apply. (A part of a source NAT entry's source mapped 1:1 is the usual case.)
        for variable, dummy, dummy in SOURCE_NAT:
            for nat in settings[variable]:
                source = _network(_option(nat, 'source'))
                interface = _option(nat, 'out_interface')
                if source is None or source.version != inside.version or not source.subnet_of(inside):
                    continue
                if interface == _option(entry, 'interface'):
                    problems.append('%s: maps every source of %s entry %s (NETMAP comes first), which would never '
                                    'apply: narrow one of them.' % (label, variable, identity(nat)))
    return problems


def _plan_maps(settings, pre, post, forward, origins):
    """Add the hairpin and NETMAP rules to the planned lists, in place; True when one of them is IPv6.

    POSTROUTING: hairpin MASQUERADE and the NETMAP of the inside sources come before the source NAT
    entries. FORWARD: after the accept of established connections (added here when nothing else did).
    """
    ipv6 = False
    first_post, first_origins = [], {}
    extra_forward = []
    for entry in settings['nat_gateway_port_forwards']:
        public = _option(entry, 'public_address')
        if public is None or not _hairpin_on(settings, entry):
            continue
        to = _text(entry.get('to'))
        address, port = split_target(to)
        family = 'ipv6' if ':' in address else 'ipv4'
        ipv6 = ipv6 or family == 'ipv6'
        protocol = _text(entry.get('protocol')) or 'tcp'
        origin = ('nat_gateway_port_forwards', entry['name'])
        for index, source in enumerate(hairpin_sources(settings, family)):
            tag = '%s.%d' % (entry['name'], index)
            origins['pre'][len(pre)] = origin
            pre.append(dict(name='hp:%s' % tag, source=source, destination=public, protocol=protocol,
                            destination_port=entry.get('port'), jump='DNAT', to_destination=to))
            # The server sees the gateway (its address on the server's side), so that its replies come back
            # through the gateway, where conntrack undoes both translations.
            match = dict(source=source, destination=address, protocol=protocol,
                         destination_port=port or entry.get('port'), ctstate=['DNAT'])
            first_origins[len(first_post)] = origin
            first_post.append(dict(match, name='hpm:%s' % tag, jump='MASQUERADE'))
            extra_forward.append((dict(match, name='hp:%s' % tag, jump='ACCEPT'), origin))
    for entry in settings['nat_gateway_netmap']:
        inside, outside = str(_network(entry['inside'])), str(_network(entry['outside']))
        interface = _option(entry, 'interface')
        ipv6 = ipv6 or ':' in inside
        inbound, outbound = 'nmi:%s' % netmap_identity(entry, 'outside'), 'nmo:%s' % netmap_identity(entry, 'inside')
        origin = ('nat_gateway_netmap', netmap_identity(entry, 'inside'))
        origins['pre'][len(pre)] = origin
        pre.append(dict(name=inbound, in_interface=interface, destination=outside, jump='NETMAP', to_prefix=inside))
        first_origins[len(first_post)] = origin
        first_post.append(dict(name=outbound, out_interface=interface, source=inside, jump='NETMAP',
                               to_prefix=outside))
        if entry.get('forward_inbound') is not False:
            extra_forward.append((dict(name=inbound, in_interface=interface, destination=inside, ctstate=['DNAT'],
                                       jump='ACCEPT'), origin))
        if settings['nat_gateway_forward_outbound']:
            extra_forward.append((dict(name=outbound, out_interface=interface, source=inside, ctstate=['NEW'],
                                       jump='ACCEPT'), origin))
    if first_post:
        shifted = dict((index + len(first_post), origin) for index, origin in origins['post'].items())
        origins['post'].clear()
        origins['post'].update(first_origins)
        origins['post'].update(shifted)
        post[:0] = first_post
    if extra_forward and not [rule for rule in forward if rule['name'] == 'base:established']:
        shifted = dict((index + 1, origin) for index, origin in origins['forward'].items())
        origins['forward'].clear()
        origins['forward'].update(shifted)
        forward.insert(0, dict(name='base:established', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'))
    for rule, origin in extra_forward:
        origins['forward'][len(forward)] = origin
        forward.append(rule)
    return ipv6
