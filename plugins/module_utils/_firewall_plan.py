# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning of the firewall role: role variables -> the rule model.

Private to the collection. Pure Python, no I/O. plan() turns the role's
variables into the owned chains and policies of the filter table in the
structure the ruleset module takes (family, policies, chains: the rule
model, no iptables syntax), checks every planned rule against the rule
model, and names the variable and the entry in every error. ssh_verdict()
evaluates the planned INPUT chain and policy for a new connection of the
SSH client the play runs over. render() is the ruleset module's state
rendered of a model, without a host: the iptables-restore input of the
rules files.

The filter plugins firewall_plan, firewall_ssh_verdict and ruleset_rendered
expose these to the role.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.stateful.netfilter.plugins.module_utils._engine import desired_owned, families_of
from ansible_collections.stateful.netfilter.plugins.module_utils import _limits
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import (
    LOG_LEVEL_ALIASES,
    LOG_LEVELS,
    LOG_PREFIX_MAX,
    Plan,
    canonical_rate,
    check_scope,
    empty_table,
    read_owned,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import (
    FAMILIES,
    ValidationError,
    check_comment,
)

# ICMPv6 types that keep IPv6 working on a link (RFC 4861 neighbour discovery).
NDP_TYPES = ('router-solicitation', 'router-advertisement', 'neighbour-solicitation', 'neighbour-advertisement')
LOG_LIMIT = '5/min'
LOG_BURST = 10
# A full match (fullmatch): '$' would also accept a trailing newline.
NAME_PATTERN = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,47}')
# One port or range needs a protocol with a port match; a list (-m multiport)
# also takes udplite and dccp. Names and numbers, as the engine accepts them.
SINGLE_PORT_PROTOCOLS = ('tcp', 'udp', 'sctp', '6', '17', '132')
PORT_LIST_PROTOCOLS = SINGLE_PORT_PROTOCOLS + ('udplite', 'dccp', '136', '33')
ALLOW_VARIABLES = {'INPUT': 'firewall_input_allow', 'FORWARD': 'firewall_forward_allow',
                   'OUTPUT': 'firewall_output_allow'}
# The chains firewall_log_chains configures, and the settings of each.
LOG_CHAINS = ('input', 'forward', 'output')
LOG_SETTINGS = ('enabled', 'prefix', 'rate', 'burst', 'level')
LOG_BURST_MAX = 10000
# The model keys of an allow rule, and the entry option each comes from.
ENTRY_OPTIONS = {'source': 'sources', 'destination': 'destinations', 'destination_port': 'port'}
ENTRY_OPTIONS.update(_limits.OPTIONS)
VERDICTS = ('ACCEPT', 'DROP', 'REJECT')
DEFAULTS = dict(
    firewall_families=['ipv4', 'ipv6'],
    firewall_input_policy='drop',
    firewall_forward_policy='drop',
    firewall_output_policy='accept',
    firewall_allow_loopback=True,
    firewall_drop_invalid=True,
    firewall_drop_new_not_syn=False,
    firewall_allow_icmp=True,
    firewall_input_allow=[],
    firewall_forward_allow=[],
    firewall_output_allow=[],
    firewall_log_dropped=False,
    firewall_log_chains={},
)


class PlanError(ValueError):
    """Bad role input; the message names the variable (and the entry)."""


def _given(value):
    return value is not None and value != ''


def _text(value):
    """A value of an option the argument spec types str, as the ruleset module would receive it."""
    return value if value is None or isinstance(value, str) else str(value)


def _family_of(address):
    return 'ipv6' if ':' in str(address) else 'ipv4'


def _port_is_list(port):
    return not isinstance(port, (int, str)) or isinstance(port, str) and ',' in port


def check_input(settings):
    """Raise PlanError for what the argument spec cannot check: names, their uniqueness, ports without protocol.

    All problems are reported at once, each naming its variable and the entries.
    """
    problems = []
    if not settings['firewall_families']:
        problems.append('firewall_families: give ipv4, ipv6 or both.')
    for variable in ('firewall_input_allow', 'firewall_forward_allow', 'firewall_output_allow'):
        entries = settings[variable]
        names = [entry.get('name') for entry in entries]
        bad = [name for name in names if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name)]
        if bad:
            problems.append('%s: names must be 1-48 letters, digits, _ . : / @ or -, starting with a letter or a '
                            'digit: %s.' % (variable, ', '.join(_quoted(name) for name in bad)))
        twice = sorted(set(name for name in names if isinstance(name, str) and names.count(name) > 1))
        if twice:
            problems.append('%s: a name is used twice: %s.' % (variable, ', '.join(twice)))
        portless = []
        for entry in entries:
            port, protocol = entry.get('port'), entry.get('protocol')
            if port is None or protocol is None:
                continue
            allowed = PORT_LIST_PROTOCOLS if _port_is_list(port) else SINGLE_PORT_PROTOCOLS
            if str(protocol) not in allowed:
                portless.append(str(entry.get('name')))
        if portless:
            problems.append('%s: a port needs protocol tcp, udp or sctp (a list of ports also udplite or dccp): %s.'
                            % (variable, ', '.join(portless)))
    for entry in settings['firewall_input_allow']:
        problems.extend(_limits.problems('firewall_input_allow', entry))
    problems.extend(_output_problems(settings))
    problems.extend(_log_problems(settings))
    if problems:
        raise PlanError(' '.join(problems))


def _output_problems(settings):
    """What the argument spec cannot check of firewall_output_allow: the policy it needs, family against addresses."""
    problems = []
    entries = settings['firewall_output_allow']
    if entries and str(settings['firewall_output_policy']).lower() != 'drop':
        problems.append('firewall_output_allow: needs firewall_output_policy drop (with accept everything leaves '
                        'anyway): %s.' % ', '.join(str(entry.get('name')) for entry in entries))
    for entry in entries:
        family = entry.get('family')
        if family is None:
            continue
        if family not in FAMILIES:
            problems.append('firewall_output_allow entry %s: family: %s is not ipv4 or ipv6.'
                            % (entry.get('name'), _quoted(family)))
            continue
        other = [str(address) for address in entry.get('destinations') or [] if _family_of(address) != family]
        if other:
            problems.append('firewall_output_allow entry %s: destinations: %s %s not %s (family %s).'
                            % (entry.get('name'), ', '.join(other), 'is' if len(other) == 1 else 'are', family,
                               family))
    return problems


def _log_problems(settings):
    """firewall_log_chains checked with the engine's own LOG and limit checks; each problem names its setting."""
    problems = []
    chains = settings['firewall_log_chains']
    if not isinstance(chains, dict):
        return ['firewall_log_chains: expected a dictionary of input, forward and output, got %s.'
                % type(chains).__name__]
    for chain, given in sorted(chains.items(), key=lambda item: str(item[0])):
        if chain not in LOG_CHAINS:
            problems.append('firewall_log_chains: %s is not a chain (input, forward or output).' % _quoted(chain))
            continue
        given = {} if given is None else given
        if not isinstance(given, dict):
            problems.append('firewall_log_chains.%s: expected a dictionary of %s, got %s.'
                            % (chain, ', '.join(LOG_SETTINGS), type(given).__name__))
            continue
        unknown = sorted(str(key) for key in given if key not in LOG_SETTINGS)
        if unknown:
            problems.append('firewall_log_chains.%s: unknown settings %s (known: %s).'
                            % (chain, ', '.join(unknown), ', '.join(LOG_SETTINGS)))
        try:
            _log_rule(chain, given)
        except ValidationError as exc:
            problems.append('%s.' % exc)
        if given.get('enabled') and str(settings['firewall_%s_policy' % chain]).lower() != 'drop':
            problems.append('firewall_log_chains.%s.enabled: needs firewall_%s_policy drop (what meets a drop '
                            'policy is logged).' % (chain, chain))
    return problems


def _log_rule(chain, given):
    """The LOG rule of a chain's settings in firewall_log_chains (ValidationError names the setting)."""
    param = 'firewall_log_chains.%s.' % chain
    prefix = given.get('prefix')
    if prefix is None:
        prefix = 'snf-fw-%s-drop: ' % chain
    else:
        prefix = check_comment(_text(prefix), param + 'prefix', LOG_PREFIX_MAX)
    rate = canonical_rate(LOG_LIMIT if given.get('rate') is None else given['rate'], param + 'rate')
    burst = LOG_BURST if given.get('burst') is None else given['burst']
    if isinstance(burst, bool) or not str(burst).isdigit() or not 1 <= int(burst) <= LOG_BURST_MAX:
        raise ValidationError(param + 'burst', '%r is not a burst (1-%d)' % (burst, LOG_BURST_MAX))
    rule = dict(name='log', limit=rate, limit_burst=int(burst), jump='LOG', log_prefix=prefix)
    level = given.get('level')
    if level is not None:
        text = str(level).strip().lower()
        if isinstance(level, bool) or text not in LOG_LEVELS + tuple(LOG_LEVEL_ALIASES) \
                and not (text.isdigit() and int(text) < len(LOG_LEVELS)):
            raise ValidationError(param + 'level', '%r is not a log level (0-7 or %s)' % (level, ', '.join(LOG_LEVELS)))
        rule['log_level'] = text
    return rule


def _quoted(name):
    """A name as the message shows it: JSON-like double quotes for text."""
    if isinstance(name, str):
        return '"%s"' % name.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
    return repr(name)


def _by_family(addresses):
    """Addresses as one list per family, in the order given: [[ipv4...], [ipv6...]] without empty ones."""
    groups = {}
    for address in addresses:
        groups.setdefault(_family_of(address), []).append(_text(address))
    return [group if len(group) > 1 else group[0] for family, group in sorted(groups.items())]


def _allow_rules(variable, entries, single, with_destinations, lists=False):
    """The ACCEPT rules of one allow list, with the entry each came from: [(rule, entry name)].

    One rule per source (and destination) of an entry; with lists (the nftables back end) one rule per family of
    them, matching a list of networks (an anonymous set: one lookup).
    """
    planned = []
    for entry in entries:
        sources = entry.get('sources') or []
        destinations = (entry.get('destinations') or []) if with_destinations else []
        if lists:
            sources, destinations = _by_family(sources), _by_family(destinations)
        port = entry.get('port')
        protocol = _text(entry.get('protocol')) or ('tcp' if port is not None else None)
        pairs = [(source, destination) for source in (sources or [None]) for destination in (destinations or [None])]
        for index, (source, destination) in enumerate(pairs):
            families = [_family_of(address if isinstance(address, str) else address[0])
                        for address in (source, destination) if address is not None]
            if len(set(families)) > 1:
                continue  # an IPv4 source with an IPv6 destination: no packet matches both
            family = families[0] if families else entry.get('family')
            if single is not None and family not in (None, single):
                continue
            if single is not None and protocol in ('icmp', 'icmpv6') and protocol != _icmp_of(single):
                continue
            rule = dict(name='allow:%s%s' % (entry['name'], '.%d' % index if len(pairs) > 1 else ''), jump='ACCEPT')
            options = [('protocol', protocol), ('source', source if isinstance(source, list) else _text(source)),
                       ('destination', destination if isinstance(destination, list) else _text(destination)),
                       ('in_interface', _text(entry.get('in_interface'))),
                       ('out_interface', _text(entry.get('out_interface')) if with_destinations else None),
                       ('destination_port', port), ('comment', _text(entry.get('comment')))]
            rule.update((key, value) for key, value in options if _given(value))
            if entry.get('family') and not families:
                rule['family'] = entry['family']
            if variable == 'firewall_input_allow':
                # Per-source limits (connlimit, hashlimit) in front of the ACCEPT they guard.
                planned.extend((limit, (variable, entry['name'])) for limit in _limits.limit_rules(rule, entry, 'in'))
            planned.append((rule, (variable, entry['name'])))
    return planned


def _icmp_of(family):
    return 'icmp' if family == 'ipv4' else 'icmpv6'


def plan(variables, scope='FW', backend='iptables'):
    """The model of the owned chains and policies: {family, policies, chains}, checked (raises PlanError).

    With backend nftables the sources (and destinations) of an allow entry are one list per family in one rule.
    """
    model, origins = draft(variables, scope, backend)
    _check_rules(model, check_scope(scope, 'scope'), origins)
    return model


def draft(variables, scope='FW', backend='iptables'):
    """plan() without the check of every planned rule against the rule model: (model, origins), for a caller
    that has the rules checked where they are applied (the ruleset action plugin: its module checks them before
    any change) and tells a failure in terms of the variables with told_by_entry(). The variables themselves
    are checked (raises PlanError)."""
    if backend not in ('iptables', 'nftables'):
        raise PlanError('firewall_backend: must be iptables or nftables, got %r' % (backend,))
    settings = dict(DEFAULTS)
    settings.update((key, value) for key, value in variables.items() if value is not None)
    check_input(settings)
    prefix = check_scope(scope, 'scope')
    families = []
    for family in settings['firewall_families']:
        if family not in families:
            families.append(family)
    single = families[0] if len(families) == 1 else None

    inputs, forward, output = [], [], []
    if settings['firewall_allow_loopback']:
        inputs.append(dict(name='base:loopback', in_interface='lo', jump='ACCEPT'))
        output.append(dict(name='base:loopback', out_interface='lo', jump='ACCEPT'))
    for chain in (inputs, forward, output):
        chain.append(dict(name='base:established', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'))
        if settings['firewall_drop_invalid']:
            chain.append(dict(name='base:invalid', ctstate=['INVALID'], jump='DROP'))
        if settings['firewall_drop_new_not_syn'] and chain is not output:
            chain.append(dict(name='base:new-not-syn', protocol='tcp', syn=False, ctstate=['NEW'], jump='DROP'))
    for chain in (inputs, output):
        if settings['firewall_allow_icmp']:
            chain.extend(dict(name='base:%s' % protocol, protocol=protocol, jump='ACCEPT')
                         for family, protocol in (('ipv4', 'icmp'), ('ipv6', 'icmpv6')) if single in (None, family))
        elif single in (None, 'ipv6'):
            chain.extend(dict(name='base:ndp-%s' % kind, protocol='icmpv6', icmp_type=kind, jump='ACCEPT')
                         for kind in NDP_TYPES)
    # (chain index, rule index) -> the entry a rule came from; the INPUT and FORWARD chains come first.
    origins = {}
    # The OUTPUT chain is the third only with an OUTPUT policy drop, which firewall_output_allow needs.
    for index, (chain, variable, with_destinations) in enumerate(((inputs, 'firewall_input_allow', False),
                                                                  (forward, 'firewall_forward_allow', True),
                                                                  (output, 'firewall_output_allow', True))):
        for rule, origin in _allow_rules(variable, settings[variable], single, with_destinations,
                                         lists=backend == 'nftables'):
            origins[(index, len(chain))] = origin
            chain.append(rule)

    policies = dict((builtin, str(settings['firewall_%s_policy' % builtin.lower()]).upper())
                    for builtin in ('INPUT', 'FORWARD', 'OUTPUT'))
    chains = [dict(name=prefix + 'INPUT', hook='INPUT', hook_position='first', rules=inputs),
              dict(name=prefix + 'FORWARD', hook='FORWARD', hook_position='first', rules=forward)]
    if policies['OUTPUT'] == 'DROP':
        chains.append(dict(name=prefix + 'OUTPUT', hook='OUTPUT', hook_position='first', rules=output))
    for builtin in ('INPUT', 'FORWARD', 'OUTPUT'):
        given = settings['firewall_log_chains'].get(builtin.lower()) or {}
        enabled = given.get('enabled')
        if policies[builtin] == 'DROP' and (settings['firewall_log_dropped'] if enabled is None else enabled):
            chains.append(dict(name='%s%s-LOG' % (prefix, builtin), hook=builtin, hook_position='last',
                               rules=[_log_rule(builtin.lower(), given)]))
    return dict(family=single or 'both', policies=policies, chains=chains), origins


_RULE_PARAM = re.compile(r'chains\[([0-9]+)\]\.rules\[([0-9]+)\]\.?(.*)')


def _check_rules(model, prefix, origins):
    """Check every rule against the rule model in each family; an error names the variable and the entry."""
    try:
        for family in families_of(model['family']):
            desired_owned(model, family, 'filter', prefix)
    except ValidationError as exc:
        raise PlanError(entry_message(exc, origins))


def entry_message(exc, origins, options=None, role='firewall'):
    """The message of a ValidationError of the model, told in terms of the role variable and entry it came from.

    origins maps (chain index, rule index) to (variable, entry name); options maps the model key of a rule to
    the entry option it came from (the firewall role's by default); role prefixes a message without an entry.
    """
    match = _RULE_PARAM.fullmatch(exc.param or '')
    origin = origins.get((int(match.group(1)), int(match.group(2)))) if match else None
    text = str(exc)
    if origin is None:
        return '%s: %s' % (role, text)
    variable, name = origin
    detail = text[len(exc.param) + 2:] if text.startswith(exc.param + ': ') else text
    key = match.group(3)
    options = ENTRY_OPTIONS if options is None else options
    return '%s entry %s: %s: %s' % (variable, name, options.get(key, key) or 'rule', detail)


def told_by_entry(message, param, origins):
    """A failure of the ruleset module on a drafted model (message, naming param), told as entry_message() tells
    it: the message unchanged when param is not a planned rule's."""
    if not param or not _RULE_PARAM.fullmatch(param) or not message.startswith(param + ': '):
        return message
    return entry_message(ValidationError(param, message[len(param) + 2:]), origins)


def render(model, scope, backend='iptables', planned=None):
    """{family: iptables-restore input} that creates the model on an empty filter table (state rendered); with
    backend nftables {'nftables': the owned table as nft lists it}, as the ruleset module renders it. planned:
    {family: Owned} of this model already checked (desired_owned), e.g. by the ruleset run that applied it."""
    prefix = check_scope(scope, 'scope')
    table = model.get('table') or 'filter'
    if backend == 'nftables':
        from ansible_collections.stateful.netfilter.plugins.module_utils import _nft
        states = dict((family, _nft.convert_owned(desired_owned(model, family, table, prefix), family, table))
                      for family in families_of(model.get('family') or 'both'))
        return {'nftables': _nft.render_table(_nft.table_name(table, scope), table, states)}
    if backend != 'iptables':
        raise ValidationError('backend', '%r is not a back end (iptables, nftables)' % (backend,))
    rendered = {}
    for family in families_of(model.get('family') or 'both'):
        desired = (planned or {}).get(family) or desired_owned(model, family, table, prefix)
        empty = empty_table(table)
        rendered[family] = Plan(empty, prefix, family, read_owned(empty, prefix, family), desired).text
    return rendered


# ---------------------------------------------------------------------------
# SSH guard

def _contains(network, address):
    """Whether address (text) is in network (an address or CIDR), of the same family."""
    try:
        net = ipaddress.ip_network(str(network), strict=False)
        addr = ipaddress.ip_address(str(address).partition('%')[0])
    except ValueError:
        return False
    return addr.version == net.version and addr in net


def _port_in(spec, port):
    """Whether port is in a port, an A-B (or A:B) range, or a list of them (also a comma-separated string)."""
    items = spec if isinstance(spec, (list, tuple)) else str(spec).split(',')
    for item in items:
        parts = str(item).strip().replace(':', '-').split('-')
        try:
            if int(parts[0]) <= port <= int(parts[-1]):
                return True
        except ValueError:
            continue
    return False


def _interface_matches(pattern, interface):
    if pattern == interface:
        return True
    return pattern.endswith('+') and interface.startswith(pattern[:-1])


def _decides(rule, flow, family):
    """Whether a rule matches a NEW TCP connection (a SYN) of the flow; rules the check cannot decide do not.

    None when the answer depends on the arrival interface and flow has none.
    """
    if 'source' in rule:
        rule_family = _family_of(rule['source'])
    else:
        rule_family = {'icmp': 'ipv4', 'icmpv6': 'ipv6'}.get(rule.get('protocol'), family)
    matches = (rule_family == family
               and ('protocol' not in rule or str(rule['protocol']).lower() in ('tcp', '6'))
               and ('source' not in rule or _contains(rule['source'], flow['client']))
               and ('destination' not in rule or _contains(rule['destination'], flow['server']))
               and ('destination_port' not in rule or _port_in(rule['destination_port'], flow['port']))
               and ('ctstate' not in rule or 'NEW' in rule['ctstate'])
               and rule.get('syn', True) is not False
               and not any(key in rule for key in ('limit', 'source_port', 'icmp_type', 'connlimit_above',
                                                   'hashlimit_above')))
    if not matches or 'in_interface' not in rule:
        return matches
    if flow['interface'] is None:
        return None
    return _interface_matches(rule['in_interface'], flow['interface'])


def _decides_reply(rule, flow, family):
    """Whether a rule matches a reply of the SSH server in OUTPUT (conntrack ESTABLISHED, not a SYN).

    Rules the check cannot decide do not match; None when the answer depends
    on the leaving interface and flow has none.
    """
    if rule.get('family'):
        rule_family = rule['family']
    elif 'destination' in rule or 'source' in rule:
        rule_family = _family_of(rule.get('destination', rule.get('source')))
    else:
        rule_family = {'icmp': 'ipv4', 'icmpv6': 'ipv6'}.get(rule.get('protocol'), family)
    matches = (rule_family == family
               and ('protocol' not in rule or str(rule['protocol']).lower() in ('tcp', '6'))
               and ('source' not in rule or _contains(rule['source'], flow['server']))
               and ('destination' not in rule or _contains(rule['destination'], flow['client']))
               and ('source_port' not in rule or _port_in(rule['source_port'], flow['port']))
               and ('destination_port' not in rule or _port_in(rule['destination_port'], flow['client_port']))
               and ('ctstate' not in rule or 'ESTABLISHED' in rule['ctstate'])
               and rule.get('syn', False) is False
               and not any(key in rule for key in ('limit', 'icmp_type', 'in_interface')))
    if not matches or 'out_interface' not in rule:
        return matches
    if flow['interface'] is None:
        return None
    return _interface_matches(rule['out_interface'], flow['interface'])


def _first_verdict(model, builtin, decides, flow, family):
    """(verdict, decided_by) of the owned chains hooked first into builtin, then its policy; None: route needed."""
    for chain in model['chains']:
        if chain.get('hook') != builtin or chain.get('hook_position', 'first') != 'first':
            continue
        for rule in chain['rules']:
            if rule.get('jump') not in VERDICTS:
                continue
            decided = decides(rule, flow, family)
            if decided is None:
                return None, rule.get('name')
            if decided:
                return rule['jump'], '%s rule %s' % (chain['name'], rule.get('name'))
    policy = model['policies'].get(builtin, 'ACCEPT')
    return policy, 'the %s policy %s' % (builtin, policy)


def route_interface(route):
    """The interface of `ip route get` output ('... dev eth0 ...'), or None."""
    match = re.search(r'\bdev (\S+)', route or '')
    return match.group(1) if match else None


def ssh_verdict(model, connection, route=None, families=FAMILIES, host='the host'):
    """Would the planned INPUT chain and policy accept a new connection of the SSH client, and OUTPUT its replies?

    connection is SSH_CONNECTION ('client cport server sport'); route the
    output of `ip route get CLIENT` (the interface the client's packets
    arrive on and the replies leave by), or None when not read yet. In
    INPUT the ESTABLISHED,RELATED rule is not counted: it keeps the current
    flow only while conntrack tracks it, and the next connection Ansible
    opens is NEW. In OUTPUT the server's replies (the SYN-ACK included) are
    ESTABLISHED to conntrack, the current connection's and the next one's
    alike. Returns {accepted, checked, needs_route, family, decided_by,
    output_decided_by, message}; needs_route (and accepted false) when route
    is None and a rule naming an interface could decide: call again with
    the route.
    """
    fields = (connection or '').split()
    if len(fields) != 4:
        return dict(accepted=True, checked=False, needs_route=False, family=None, decided_by=None,
                    output_decided_by=None,
                    message='firewall_ssh_guard: no SSH_CONNECTION in the environment of %s (a local, container or '
                            'other non-SSH connection); nothing to check.' % host)
    client, client_port, server, port = fields

    def number(text):
        try:
            return int(text)
        except ValueError:
            return -1

    flow = dict(client=client, server=server, port=number(port), client_port=number(client_port),
                interface=None if route is None else route_interface(route) or '')
    family = _family_of(client)
    if family not in families:
        verdict = output = 'ACCEPT'
        decided_by = output_by = '%s is not managed by the role' % family
    else:
        verdict, decided_by = _first_verdict(model, 'INPUT', _decides, flow, family)
        output, output_by = _first_verdict(model, 'OUTPUT', _decides_reply, flow, family)
        for needs, rule in ((verdict, decided_by), (output, output_by)):
            if needs is None:
                return dict(accepted=False, checked=False, needs_route=True, family=family, decided_by=None,
                            output_decided_by=None,
                            message='firewall_ssh_guard: the interface of %s is needed (rule %s names one)'
                                    % (client, rule))
    if verdict != 'ACCEPT':
        message = ('firewall_ssh_guard: refusing to apply; a new SSH connection from %s to port %s (%s) would be '
                   'dropped by %s. Allow it in firewall_input_allow (tcp port %s from %s), or set firewall_ssh_guard '
                   'to false. Nothing was changed.' % (client, port, family, decided_by, port, client))
    elif output != 'ACCEPT':
        message = ('firewall_ssh_guard: refusing to apply; the replies of the SSH connection from %s to port %s (%s) '
                   'would be dropped by %s: they leave as ESTABLISHED, keep them accepted before any drop in OUTPUT, '
                   'or set firewall_ssh_guard to false. Nothing was changed.' % (client, port, family, output_by))
    else:
        message = ('firewall_ssh_guard: a new SSH connection from %s to port %s is accepted by %s, its replies by %s'
                   % (client, port, decided_by, output_by))
    return dict(accepted=verdict == 'ACCEPT' and output == 'ACCEPT', checked=True, needs_route=False, family=family,
                decided_by=decided_by, output_decided_by=output_by, message=message)
