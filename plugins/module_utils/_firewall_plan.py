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
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import (
    Plan,
    check_scope,
    empty_table,
    read_owned,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import FAMILIES, ValidationError

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
ALLOW_VARIABLES = {'INPUT': 'firewall_input_allow', 'FORWARD': 'firewall_forward_allow'}
# The model keys of an allow rule, and the entry option each comes from.
ENTRY_OPTIONS = {'source': 'sources', 'destination': 'destinations', 'destination_port': 'port'}
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
    firewall_log_dropped=False,
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
    for variable in ('firewall_input_allow', 'firewall_forward_allow'):
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
    if problems:
        raise PlanError(' '.join(problems))


def _quoted(name):
    """A name as the message shows it: JSON-like double quotes for text."""
    if isinstance(name, str):
        return '"%s"' % name.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
    return repr(name)


def _allow_rules(variable, entries, single, with_destinations):
    """The ACCEPT rules of one allow list, with the entry each came from: [(rule, entry name)]."""
    planned = []
    for entry in entries:
        sources = entry.get('sources') or []
        destinations = (entry.get('destinations') or []) if with_destinations else []
        port = entry.get('port')
        protocol = _text(entry.get('protocol')) or ('tcp' if port is not None else None)
        pairs = [(source, destination) for source in (sources or [None]) for destination in (destinations or [None])]
        for index, (source, destination) in enumerate(pairs):
            families = [_family_of(address) for address in (source, destination) if address is not None]
            if len(set(families)) > 1:
                continue  # an IPv4 source with an IPv6 destination: no packet matches both
            family = families[0] if families else None
            if single is not None and family not in (None, single):
                continue
            if single is not None and protocol in ('icmp', 'icmpv6') and protocol != _icmp_of(single):
                continue
            rule = dict(name='allow:%s%s' % (entry['name'], '.%d' % index if len(pairs) > 1 else ''), jump='ACCEPT')
            options = [('protocol', protocol), ('source', _text(source)), ('destination', _text(destination)),
                       ('in_interface', _text(entry.get('in_interface'))),
                       ('out_interface', _text(entry.get('out_interface')) if with_destinations else None),
                       ('destination_port', port), ('comment', _text(entry.get('comment')))]
            rule.update((key, value) for key, value in options if _given(value))
            planned.append((rule, (variable, entry['name'])))
    return planned


def _icmp_of(family):
    return 'icmp' if family == 'ipv4' else 'icmpv6'


def plan(variables, scope='FW'):
    """The model of the owned chains and policies: {family, policies, chains}, checked (raises PlanError)."""
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
    for index, (chain, variable, with_destinations) in enumerate(((inputs, 'firewall_input_allow', False),
                                                                  (forward, 'firewall_forward_allow', True))):
        for rule, origin in _allow_rules(variable, settings[variable], single, with_destinations):
            origins[(index, len(chain))] = origin
            chain.append(rule)

    policies = dict((builtin, str(settings['firewall_%s_policy' % builtin.lower()]).upper())
                    for builtin in ('INPUT', 'FORWARD', 'OUTPUT'))
    chains = [dict(name=prefix + 'INPUT', hook='INPUT', hook_position='first', rules=inputs),
              dict(name=prefix + 'FORWARD', hook='FORWARD', hook_position='first', rules=forward)]
    if policies['OUTPUT'] == 'DROP':
        chains.append(dict(name=prefix + 'OUTPUT', hook='OUTPUT', hook_position='first', rules=output))
    if settings['firewall_log_dropped']:
        chains.extend(dict(name='%s%s-LOG' % (prefix, builtin), hook=builtin, hook_position='last',
                           rules=[dict(name='log', limit=LOG_LIMIT, limit_burst=LOG_BURST, jump='LOG',
                                       log_prefix='snf-fw-%s-drop: ' % builtin.lower())])
                      for builtin in ('INPUT', 'FORWARD', 'OUTPUT') if policies[builtin] == 'DROP')
    model = dict(family=single or 'both', policies=policies, chains=chains)
    _check_rules(model, prefix, origins)
    return model


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


def render(model, scope):
    """{family: iptables-restore input} that creates the model on an empty filter table (state rendered)."""
    prefix = check_scope(scope, 'scope')
    table = model.get('table') or 'filter'
    rendered = {}
    for family in families_of(model.get('family') or 'both'):
        desired = desired_owned(model, family, table, prefix)
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
               and not any(key in rule for key in ('limit', 'source_port', 'icmp_type')))
    if not matches or 'in_interface' not in rule:
        return matches
    if flow['interface'] is None:
        return None
    return _interface_matches(rule['in_interface'], flow['interface'])


def route_interface(route):
    """The interface of `ip route get` output ('... dev eth0 ...'), or None."""
    match = re.search(r'\bdev (\S+)', route or '')
    return match.group(1) if match else None


def ssh_verdict(model, connection, route=None, families=FAMILIES, host='the host'):
    """Would the planned INPUT chain and policy accept a new connection of the SSH client?

    connection is SSH_CONNECTION ('client cport server sport'); route the
    output of `ip route get CLIENT` (the interface the client's packets
    arrive on), or None when not read yet. The ESTABLISHED,RELATED rule is
    not counted: it keeps the current flow only while conntrack tracks it,
    and the next connection Ansible opens is NEW. Returns {accepted,
    checked, needs_route, family, decided_by, message}; needs_route (and
    accepted false) when route is None and a rule naming an interface
    could decide: call again with the route.
    """
    fields = (connection or '').split()
    if len(fields) != 4:
        return dict(accepted=True, checked=False, needs_route=False, family=None, decided_by=None,
                    message='firewall_ssh_guard: no SSH_CONNECTION in the environment of %s (a local, container or '
                            'other non-SSH connection); nothing to check.' % host)
    client, server, port = fields[0], fields[2], fields[3]
    try:
        port_number = int(port)
    except ValueError:
        port_number = -1
    flow = dict(client=client, server=server, port=port_number,
                interface=None if route is None else route_interface(route) or '')
    family = _family_of(client)
    verdict, decided_by = None, None
    if family not in families:
        verdict, decided_by = 'ACCEPT', '%s is not managed by the role' % family
    else:
        for chain in model['chains']:
            if chain.get('hook') != 'INPUT' or chain.get('hook_position', 'first') != 'first':
                continue
            for rule in chain['rules']:
                if rule.get('jump') not in VERDICTS:
                    continue
                decides = _decides(rule, flow, family)
                if decides is None:
                    return dict(accepted=False, checked=False, needs_route=True, family=family,
                                decided_by=None, message='firewall_ssh_guard: the arrival interface of %s is '
                                                         'needed (rule %s names one)' % (client, rule.get('name')))
                if decides:
                    verdict, decided_by = rule['jump'], '%s rule %s' % (chain['name'], rule.get('name'))
                    break
            if verdict:
                break
        if verdict is None:
            verdict = model['policies']['INPUT']
            decided_by = 'the INPUT policy %s' % verdict
    accepted = verdict == 'ACCEPT'
    if accepted:
        message = ('firewall_ssh_guard: a new SSH connection from %s to port %s is accepted by %s'
                   % (client, port, decided_by))
    else:
        message = ('firewall_ssh_guard: refusing to apply; a new SSH connection from %s to port %s (%s) would be '
                   'dropped by %s. Allow it in firewall_input_allow (tcp port %s from %s), or set firewall_ssh_guard '
                   'to false. Nothing was changed.' % (client, port, family, decided_by, port, client))
    return dict(accepted=accepted, checked=True, needs_route=False, family=family, decided_by=decided_by,
                message=message)
