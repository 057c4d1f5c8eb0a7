# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The nftables back end: the engine's rule model rendered into a table the collection owns.

Private to the collection. Pure Python except NftCommand (which runs `nft`).

One ruleset scope of one iptables table (filter, nat, mangle, raw) lives in
one `inet` table, `snf_<table>` or `snf_<table>_<scope>`, that holds nothing
else. Inside it:

- every owned chain exists once per family, as a regular chain named
  `ipv4.<chain>` or `ipv6.<chain>` holding the rules of that family (so a rule
  needs no family test of its own, and reading the table back tells the
  families apart without relying on how nft prints dependencies);
- the hooks are base chains named after the built-in chain (`INPUT`, and
  `INPUT-LAST` for hook_position last) that jump to the owned chains with
  `meta nfproto ipv4 jump ipv4.<chain>`; their priority is the one of the
  iptables table the scope stands for, minus one (first) or plus one (last),
  so the collection's chain runs just before (or after) the iptables-nft
  chains of the same table;
- the policy of a built-in chain is the policy of its first base chain, in
  the filter table of its last one, where the verdicts of all scopes compose
  as on iptables through one bit of the packet mark (ACCEPT_MARK, below, and
  an `INPUT-END` base chain at filter + 2 that clears it).

render_table() prints the wanted state in the form `nft list table` prints it;
parse_table() reads that listing back into the same model (per family Owned,
as _rules.read_owned gives for iptables), so the comparison is made on the
re-rendered text of both and a re-run is `changed: false`. The table is
replaced in one `nft -f` transaction (create, delete, define) after `nft -c`
accepted the same text; nothing outside it is named.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re
from collections import OrderedDict

from ansible_collections.stateful.netfilter.plugins.module_utils._rules import (
    BUILTIN_CHAINS,
    CT_TIMEOUT_STATES,
    CTSTATUS,
    DEFAULT_HASHLIMIT_BURST,
    HELPERS,
    NETMAP_SIDES,
    NOT,
    hashlimit_rate,
    PREFIX,
    Chain,
    Owned,
    Rule,
    kernel_comment,
    make_rule,
    negated,
    plain,
    take_name,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError, show

FAMILIES = ('ipv4', 'ipv6')
TABLE_PREFIX = 'snf_'
LAST_SUFFIX = '-LAST'
END_SUFFIX = '-END'
# The filter table's verdicts compose across scopes as on iptables, where every scope is a jump from one
# built-in chain and an accept ends the walk. In nftables each scope's table has base chains of its own and
# an accept only ends that chain: a drop policy in one table would drop what another accepted. So in the
# filter table one bit of the packet mark carries "an owned chain accepted" from table to table, between
# priority filter - 1 and filter + 2 only (the bit is cleared before any other chain of a later priority
# sees it): a first base chain skips a packet an earlier one accepted, sets the bit before its jumps and
# clears it when they fall through (so the bit stays set only on an accept); a policy is the policy of the
# last base chain (filter + 1), which accepts a packet with the bit set before its own jumps; an end base
# chain (filter + 2) clears the bit. The rule model has no mark target, so no owned rule can set it.
ACCEPT_MARK = 0x20000000
MARK_SKIP = 'meta mark & 0x%08x == 0x%08x accept' % (ACCEPT_MARK, ACCEPT_MARK)
MARK_SET = 'meta mark set meta mark | 0x%08x' % ACCEPT_MARK
MARK_CLEAR = 'meta mark set meta mark & 0x%08x' % (0xffffffff ^ ACCEPT_MARK)
C_LOCALE = {'LC_ALL': 'C'}
# nft keeps 128 bytes of a rule comment (NFT_USERDATA_MAXLEN / 2 in libnftables' parser).
COMMENT_MAX = 128
# (chain type, hook, priority keyword) per iptables table and built-in chain; the keyword is the
# priority of the iptables-nft chain of that table and hook.
HOOKS = {
    'filter': dict((name, ('filter', name.lower(), 'filter')) for name in BUILTIN_CHAINS['filter']),
    'mangle': dict((name, ('filter', name.lower(), 'mangle')) for name in BUILTIN_CHAINS['mangle']),
    'raw': dict((name, ('filter', name.lower(), 'raw')) for name in BUILTIN_CHAINS['raw']),
    # nft 1.0.6 takes dstnat only on prerouting and srcnat only on postrouting ("invalid priority expression
    # value in this context" on output and input): those two are numbers (iptables-nft's -100 and 100).
    'nat': {'PREROUTING': ('nat', 'prerouting', 'dstnat'), 'INPUT': ('nat', 'input', 100),
            'OUTPUT': ('nat', 'output', -100), 'POSTROUTING': ('nat', 'postrouting', 'srcnat')},
}
L3 = {'ipv4': 'ip', 'ipv6': 'ip6'}
# nft sets a conntrack helper or timeout policy on the connection conntrack made of the packet
# (nft_ct_helper_obj_eval and nft_ct_timeout_obj_eval do nothing before it): measured on kernel 6.18, `ct
# helper set` and `ct timeout set` in a chain at raw - 1 (before conntrack, -200) leave the connection
# without helper or policy; at mangle they work. A raw scope that sets either has its base chains after
# conntrack and before the mangle chains; notrack needs the chain before conntrack, so the two cannot
# share a scope on this back end.
AFTER_CONNTRACK = {'first': 'mangle - 2', 'last': 'mangle - 1'}
PORT_MATCH_PROTOCOLS = ('tcp', 'udp', 'sctp', 'udplite', 'dccp')
# Conntrack states and status bits in the order nft prints them (bit order).
NFT_CTSTATES = (('INVALID', 'invalid'), ('ESTABLISHED', 'established'), ('RELATED', 'related'), ('NEW', 'new'),
                ('UNTRACKED', 'untracked'))
NAT_STATES = (('SNAT', 'snat'), ('DNAT', 'dnat'))
NFT_CTSTATUS = dict((name, name.lower().replace('_', '-')) for name in CTSTATUS)
# Protocol names as nft prints them (spec name -> nft name).
NFT_PROTOCOLS = {'icmpv6': 'ipv6-icmp'}
ICMP_NAMES = {
    'ipv4': {0: 'echo-reply', 3: 'destination-unreachable', 4: 'source-quench', 5: 'redirect', 8: 'echo-request',
             9: 'router-advertisement', 10: 'router-solicitation', 11: 'time-exceeded', 12: 'parameter-problem',
             13: 'timestamp-request', 14: 'timestamp-reply', 15: 'info-request', 16: 'info-reply',
             17: 'address-mask-request', 18: 'address-mask-reply'},
    'ipv6': {1: 'destination-unreachable', 2: 'packet-too-big', 3: 'time-exceeded', 4: 'parameter-problem',
             128: 'echo-request', 129: 'echo-reply', 130: 'mld-listener-query', 131: 'mld-listener-report',
             132: 'mld-listener-done', 133: 'nd-router-solicit', 134: 'nd-router-advert',
             135: 'nd-neighbor-solicit', 136: 'nd-neighbor-advert', 137: 'nd-redirect', 138: 'router-renumbering',
             141: 'ind-neighbor-solicit', 142: 'ind-neighbor-advert', 143: 'mld2-listener-report'},
}
# ICMP codes nft prints by name (others as numbers).
ICMP_CODES = {
    'ipv4': {0: 'net-unreachable', 1: 'host-unreachable', 2: 'prot-unreachable', 3: 'port-unreachable',
             4: 'frag-needed', 9: 'net-prohibited', 10: 'host-prohibited', 13: 'admin-prohibited'},
    'ipv6': {0: 'no-route', 1: 'admin-prohibited', 3: 'addr-unreachable', 4: 'port-unreachable', 5: 'policy-fail',
             6: 'reject-route'},
}
REJECT = {
    'icmp-port-unreachable': 'icmp port-unreachable', 'icmp-net-unreachable': 'icmp net-unreachable',
    'icmp-host-unreachable': 'icmp host-unreachable', 'icmp-proto-unreachable': 'icmp prot-unreachable',
    'icmp-net-prohibited': 'icmp net-prohibited', 'icmp-host-prohibited': 'icmp host-prohibited',
    'icmp-admin-prohibited': 'icmp admin-prohibited', 'tcp-reset': 'tcp reset',
    'icmp6-port-unreachable': 'icmpv6 port-unreachable', 'icmp6-no-route': 'icmpv6 no-route',
    'icmp6-adm-prohibited': 'icmpv6 admin-prohibited', 'icmp6-addr-unreachable': 'icmpv6 addr-unreachable',
    'icmp6-policy-fail': 'icmpv6 policy-fail', 'icmp6-reject-route': 'icmpv6 reject-route',
}
LOG_LEVELS = ('emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug')
RATE_UNITS = {'sec': 'second', 'min': 'minute', 'hour': 'hour', 'day': 'day'}
NAT_FLAGS = (('random', 'random'), ('random_fully', 'fully-random'), ('persistent', 'persistent'))
# Options of the rule model nft cannot take (yet), with the reason given.
UNSUPPORTED = {
    'port': 'nft has no match of "source or destination port" in one rule; write two rules '
            '(source_port and destination_port)',
    'hashlimit_htable_size': 'is not rendered by the nftables back end: an nft set has no bucket count (its '
                             'size is the number of entries, hashlimit_htable_max); leave it out',
    'hashlimit_htable_gcinterval': 'is not rendered by the nftables back end (nft collects the expired '
                                   'entries of a set on its own); leave it out',
}
# The oldest nft this back end is for: NAT in inet tables, the priority keywords (dstnat, srcnat) and the
# listing format the comparison relies on. Measured on 1.0.6 (Debian 12).
NFT_MIN_VERSION = (0, 9, 3)
# Every option of a rule spec render_rule() renders. An option of the model outside it (one added to the
# engine later, say connlimit or hashlimit) is refused naming it, never silently left out of the rule.
RENDERED = frozenset((
    'name', 'comment', 'protocol', 'source', 'destination', 'in_interface', 'out_interface', 'source_port',
    'destination_port', 'syn', 'tcp_flags', 'icmp_type', 'ctstate', 'ctstatus', 'ctorigsrc', 'ctorigdst',
    'ctreplsrc', 'ctrepldst', 'ctorigsrcport', 'ctorigdstport', 'ctreplsrcport', 'ctrepldstport', 'ctdir',
    'limit', 'limit_burst', 'jump', 'reject_with', 'log_prefix', 'log_level', 'to_source', 'to_destination',
    'to_ports', 'random', 'random_fully', 'persistent', 'helper', 'notrack', 'set_mss', 'clamp_mss_to_pmtu',
    'connlimit_above', 'connlimit_upto', 'connlimit_mask', 'connlimit_daddr', 'ct_timeout',
    'hashlimit_upto', 'hashlimit_above', 'hashlimit_burst', 'hashlimit_mode', 'hashlimit_name', 'hashlimit_srcmask',
    'hashlimit_dstmask', 'hashlimit_htable_max', 'hashlimit_htable_expire', 'to_prefix',
))
# connlimit: a dynamic set of the owned table per rule, counted with ct count (one element per source or
# destination network, holding the connections of that network the kernel tracks).
COUNT_SET_SIZE = 65535
SET_TYPES = {'ipv4': 'ipv4_addr', 'ipv6': 'ipv6_addr'}
_QUOTE_FREE = re.compile(r'[^"\\\n]*')
_RULE_SPLIT = re.compile(r'"[^"]*"|\S+')
_TABLE_NAME = re.compile(r'table inet (\S+) \{')
_TABLE_NAME_WORD = re.compile(r'snf_[A-Za-z0-9_]+')


class NftError(Exception):
    """A model the nftables back end cannot render, or a failed nft command."""

    def __init__(self, msg, param=None, result=None):
        super(NftError, self).__init__(msg)
        self.param = param
        self.result = result or {}


def table_name(table, scope):
    """The owned nft table of an iptables table and scope: snf_filter, snf_nat_GW."""
    return '%s%s%s' % (TABLE_PREFIX, table, '_' + scope if scope else '')


def chain_name(family, name):
    return '%s.%s' % (family, name)


def base_name(builtin, position):
    return builtin + {'first': '', 'last': LAST_SUFFIX, 'end': END_SUFFIX}[position]


def helper_object(helper, protocol):
    """The ct helper object of a kernel helper and protocol: snf-ftp-tcp, snf-q-931-tcp."""
    return 'snf-%s-%s' % (re.sub(r'[^a-z0-9]', '-', helper.lower()), protocol)


def timeout_object(protocol, policy):
    """The ct timeout object of a timeout policy, named after its content so that a rule is read back from its
    text alone (as a helper is): snf-timeout-tcp-established-300-close-5."""
    return 'snf-timeout-%s-%s' % (protocol, '-'.join('%s-%d' % item for item in policy.items()))


def timeout_policy(name):
    """(protocol, {state: seconds}) of a timeout object's name, or None when it is not one of this back end."""
    words = name.split('-')
    if len(words) < 5 or words[:2] != ['snf', 'timeout'] or words[2] not in CT_TIMEOUT_STATES or len(words) % 2 == 0:
        return None
    pairs = list(zip(words[3::2], words[4::2]))
    if not all(seconds.isdigit() for dummy, seconds in pairs):
        return None
    return words[2], OrderedDict((state, int(seconds)) for state, seconds in pairs)


def timeout_body(protocol, policy):
    """The lines of a ct timeout object as nft 1.0.6 prints them (only the states off nft's defaults)."""
    return ['protocol %s' % protocol, 'l3proto inet',
            'policy = { %s }' % ', '.join('%s : %d' % item for item in policy.items())]


def helper_body(helper, protocol):
    """The lines of a ct helper object as nft prints them (l3proto ip for the IPv4-only helpers)."""
    return ['type "%s" protocol %s' % (helper, protocol),
            'l3proto %s' % ('ip' if HELPERS[helper][1] == ('ipv4',) else 'inet')]


# ---------------------------------------------------------------------------
# Rendering a rule.

def _refuse(param, msg):
    raise ValidationError(param, msg)


def _quoted(value, param, limit=None):
    if not _QUOTE_FREE.fullmatch(value):
        _refuse(param, '%s: nft cannot store a double quote or backslash here' % (show(value),))
    if limit is not None and len(value.encode('utf-8')) > limit:
        _refuse(param, '%s: nft keeps at most %d bytes' % (show(value), limit))
    return '"%s"' % value


def _cmp(value):
    """'!= ' for a negated spec value, else ''."""
    return '!= ' if negated(value) else ''


def nft6(text):
    """An IPv6 address or network ('a::1', '::ffff:0:0/96') as nft prints it, which is glibc's inet_ntop: the
    compressed form Python gives, except that an address whose first 96 bits are zero (the longest run of zero
    groups is exactly the first six) or an IPv4-mapped one ends in dotted IPv4 ('::1.2.3.4', '::ffff:1.2.3.4');
    Python prints those in hex, and 3.13 the mapped ones dotted."""
    import ipaddress
    address, slash, length = text.partition('/')
    packed = bytearray(ipaddress.IPv6Address(address).packed)
    words = [packed[index] << 8 | packed[index + 1] for index in range(0, 16, 2)]
    base, size, index = -1, 0, 0
    while index < 8:
        end = index
        while end < 8 and words[end] == 0:
            end += 1
        if end - index > size:
            base, size = index, end - index
        index = end + 1 if end == index else end
    if base == 0 and (size == 6 or (size == 5 and words[5] == 0xffff)):
        address = '::%s%s' % ('ffff:' if size == 5 else '', '.'.join(str(byte) for byte in packed[12:]))
    else:
        address = ipaddress.IPv6Address(address).compressed
        if '.' in address:
            # Python 3.13 prints an IPv4-mapped address dotted; glibc only the cases above.
            address = ':'.join(address.split(':')[:-1] + ['%x:%x' % (words[6], words[7])])
    return address + slash + length


def _host(network, family):
    """A network as nft prints it: a host address without its /32 or /128 (IPv6 in nft's form, nft6)."""
    if family == 'ipv4':
        return network[:-3] if network.endswith('/32') else network
    network = nft6(network)
    return network[:-4] if network.endswith('/128') else network


def _addresses(value, family):
    """A spec network or list of networks as nft takes it: '10.0.0.1', '{ 10.0.0.0/24, 10.2.0.0/24 }' (an
    anonymous set: one lookup). The list is the model's canonical one (collapsed, sorted); nft may print the
    same set with adjacent networks merged into a range, which parse_rule reads back into this list."""
    if isinstance(value, list):
        return '{ %s }' % ', '.join(_host(network, family) for network in value)
    return _host(value, family)


def _set_networks(value):
    """The networks of an address value as nft prints it: ranges of a set ('10.0.0.0-10.0.2.255') become the
    networks that cover them, so that make_rule() collapses them into the model's canonical list."""
    import ipaddress
    if not isinstance(value, list):
        return value
    out = []
    for item in value:
        if '-' in item:
            low, dummy, high = item.partition('-')
            out.extend(str(net) for net in ipaddress.summarize_address_range(ipaddress.ip_address(low),
                                                                             ipaddress.ip_address(high)))
        else:
            out.append(item)
    return out


def _nft_ports(value):
    """A spec port value ('22', '1000:2000' or a list) as nft prints it ('22', '1000-2000', '{ 80, 443 }')."""
    value = plain(value)
    if isinstance(value, list):
        items = sorted((p.replace(':', '-') for p in value), key=lambda p: int(p.split('-')[0]))
        return '{ %s }' % ', '.join(items)
    return value.replace(':', '-')


def _protocol_name(protocol):
    return NFT_PROTOCOLS.get(protocol, protocol)


def _icmp(spec, family, param):
    value = spec['icmp_type']
    if value == 'any':
        return None
    number, dummy, code = value.partition('/')
    keyword = 'icmp' if family == 'ipv4' else 'icmpv6'
    text = '%s type %s' % (keyword, ICMP_NAMES[family].get(int(number), number))
    if code:
        text += ' %s code %s' % (keyword, ICMP_CODES[family].get(int(code), code))
    return text


def _tcp_flags(spec, param):
    if 'syn' in spec:
        return 'tcp flags %ssyn / fin,syn,rst,ack' % ('' if spec['syn'] else '!= ')
    mask, comp = plain(spec['tcp_flags']).split()
    mask = mask.lower()
    if comp == 'NONE':
        # No flag of the mask set; negated: any of them set.
        return 'tcp flags %s%s' % ('' if negated(spec['tcp_flags']) else '! ', mask)
    if comp.lower() == mask and ',' not in mask:
        # nft prints a one-flag mask equal to the value as a comparison.
        return 'tcp flags & %s %s %s' % (mask, '!=' if negated(spec['tcp_flags']) else '==', mask)
    return 'tcp flags %s%s / %s' % (_cmp(spec['tcp_flags']), comp.lower(), mask)


def _bits(value, names, param, what):
    words = []
    for nft_word in names:
        if nft_word[0] in plain(value):
            words.append(nft_word[1])
    unknown = [item for item in plain(value) if item not in dict(names)]
    if unknown:
        _refuse(param, '%s %s is not rendered by the nftables back end yet' % (what, unknown[0]))
    if negated(value):
        return '!= ' + ' | '.join(words)
    return ','.join(words)


def _nat_to(spec, name, family):
    """SNAT/DNAT's address as nft takes it: 'ip to A-B:P-Q', 'ip6 to [A]-[B]:P'."""
    value = spec[name]
    if family == 'ipv4':
        return '%s to %s' % (L3[family], value)
    if not value.startswith('['):
        return '%s to %s' % (L3[family], '-'.join(nft6(addr) for addr in value.split('-')))
    addrs, dummy, ports = value[1:].partition(']')
    addrs = '-'.join('[%s]' % nft6(addr) for addr in addrs.split('-'))
    return '%s to %s%s' % (L3[family], addrs, ports)


def _nat_flags(spec):
    flags = [word for key, word in NAT_FLAGS if spec.get(key)]
    return [','.join(flags)] if flags else []


# DNAT's port shift ('A:P-Q/BASE'; nft 1.0.6 has no syntax for it) becomes a map from the packet's destination
# port to the port nf_nat gives it: P + ((dport - BASE) mod 2^16) mod (Q - P + 1) (nf_nat_l4proto_unique_tuple
# with NF_NAT_RANGE_PROTO_OFFSET: `u16 off = dport - base`, then `min + off % range_size`). One entry a port, for
# each port of destination_port and of the shift's own window BASE..BASE+Q-P (so that the rule reads back as
# written: the window shows P, Q and BASE); the rule's dport match keeps other ports away from the map.
SHIFT_MAX_PORTS = 4096


def _shifted(port, low, size, base):
    return low + ((port - base) & 0xffff) % size


def _port_set(value):
    """The ports of a spec or nft port value ('22', '1000:2000', '1000-2000' or a list of them)."""
    ports = set()
    for item in (value if isinstance(value, list) else [value]):
        low, dummy, high = str(item).replace('-', ':').partition(':')
        ports.update(range(int(low), int(high or low) + 1))
    return ports


def _split_shift(value):
    """('A' or '[A]', P, Q, BASE) of 'A:P-Q/BASE' or '[A]:P-Q/BASE'."""
    addr, dummy, ports = value.rpartition(':')
    ports, dummy, base = ports.partition('/')
    low, dummy, high = ports.partition('-')
    return addr, int(low), int(high), int(base)


def _shift_map(spec, family, param):
    """DNAT's 'A:P-Q/BASE' as nft takes it: ['ip to A:tcp dport map { 1000 : 3000, ... }']."""
    name = param + 'to_destination'
    addr, low, high, base = _split_shift(spec['to_destination'])
    if '-' in addr:
        _refuse(name, '%s: port shifting (/BASE) to a range of addresses is not rendered by the nftables back '
                      'end (its map gives each port one address); give one address' % show(spec['to_destination']))
    if 'destination_port' not in spec or negated(spec['destination_port']):
        _refuse(name, '%s: port shifting (/BASE) with backend nftables is a map from each destination port the '
                      'rule matches to its shifted port: give destination_port (a port, a range or a list, not '
                      'negated)'
                % show(spec['to_destination']))
    size = high - low + 1
    keys = _port_set(plain(spec['destination_port'])) | set((base + i) & 0xffff for i in range(size))
    if len(keys) > SHIFT_MAX_PORTS:
        _refuse(name, '%s: port shifting (/BASE) with backend nftables is a map of one entry a port; '
                      'destination_port and the shift\'s window (%d ports from %d) make %d ports, more than %d'
                % (show(spec['to_destination']), size, base, len(keys), SHIFT_MAX_PORTS))
    entries = ', '.join('%d : %d' % (port, _shifted(port, low, size, base)) for port in sorted(keys))
    if addr.startswith('['):
        addr = '[%s]' % nft6(addr[1:-1])
    return '%s to %s:%s dport map { %s }' % (L3[family], addr, spec['protocol'], entries)


def _parse_shift(tok, raw, value):
    """'A:tcp dport map { K : V, ... }' (after 'dnat ip to') into to_destination 'A:P-Q/BASE'; False if the map
    is not one that _shift_map renders for the rule's destination_port."""
    addr, dummy, protocol = value.rpartition(':')
    if tok.take(3) != ['dport', 'map', '{'] or protocol != raw.get('protocol') \
            or not raw.get('destination_port') or negated(raw['destination_port']):
        return False
    ports = {}
    while True:
        key = tok.take()[0]
        if key == '}':
            break
        colon, port = tok.take(2)
        if colon != ':':
            return False
        ports[int(key)] = int(port.rstrip(','))
    if not ports:
        return False
    low, high = min(ports.values()), max(ports.values())
    size = high - low + 1
    extra = set(ports) - _port_set(raw['destination_port'])
    # The base: a port mapped to P whose window BASE..BASE+Q-P, with the rule's ports, makes the map's keys and
    # gives every key its port. Several only when Q-P+1 divides 2^16 and the window repeats inside the rule's
    # ports: then they shift alike and the lowest is taken (not 0: a base is a port).
    for base in sorted(port for port, shifted in ports.items() if shifted == low and port):
        window = set((base + i) & 0xffff for i in range(size))
        if size > 1 and extra <= window and all(port in ports for port in window) and \
                all(_shifted(port, low, size, base) == shifted for port, shifted in ports.items()):
            raw['jump'], raw['to_destination'] = 'DNAT', '%s:%d-%d/%d' % (addr, low, high, base)
            return True
    return False


def render_rule(spec, family, param='', hook=None):
    """A rule of the model in the form `nft list` prints it (raises ValidationError for what nft cannot take).

    hook: the built-in chain the rule's chain is hooked from, which NETMAP needs (it rewrites the destination
    before routing and in OUTPUT, the source after it: nft's dnat or snat)."""
    for key, why in UNSUPPORTED.items():
        if key in spec:
            _refuse(param + key, why)
    for key in spec:
        if key not in RENDERED:
            _refuse(param + key, 'is not rendered by the nftables back end yet; nothing was changed')
    out = []
    if spec['jump'] == 'REJECT' and spec['reject_with'] != 'tcp-reset' and 'limit' in spec \
            and not ('source' in spec or 'destination' in spec or spec.get('protocol') in ('icmp', 'icmpv6')):
        # The family test an ICMP reject depends on: nft prints it when a statement (limit) stands between.
        out.append('meta nfproto %s' % family)
    for key, field in (('source', 'saddr'), ('destination', 'daddr')):
        if key in spec:
            out.append('%s %s %s%s' % (L3[family], field, _cmp(spec[key]), _addresses(plain(spec[key]), family)))
    for key, field in (('in_interface', 'iifname'), ('out_interface', 'oifname')):
        if key in spec:
            name = plain(spec[key])
            name = name[:-1] + '*' if name.endswith('+') else name
            out.append('%s %s%s' % (field, _cmp(spec[key]), _quoted(name, param + key)))
    protocol = spec.get('protocol')
    implied = False
    for key, field in (('source_port', 'sport'), ('destination_port', 'dport')):
        if key in spec:
            if protocol not in PORT_MATCH_PROTOCOLS:
                _refuse(param + key, 'ports need protocol %s' % ', '.join(PORT_MATCH_PROTOCOLS))
            out.append('%s %s %s%s' % (protocol, field, _cmp(spec[key]), _nft_ports(spec[key])))
            implied = True
    if 'syn' in spec or 'tcp_flags' in spec:
        out.append(_tcp_flags(spec, param))
        implied = True
    if 'icmp_type' in spec:
        icmp = _icmp(spec, family, param)
        if icmp:
            out.append(icmp)
            implied = True
    if set(spec.get('hashlimit_mode') or ()) & set(('srcport', 'dstport')):
        # A port in the key of a hashlimit set implies the protocol (nft prints no l4proto test then).
        implied = True
    if protocol and not implied:
        out.append('meta l4proto %s' % _protocol_name(protocol))
    if 'ctstate' in spec:
        states = plain(spec['ctstate'])
        nat = [state for state in states if state in ('SNAT', 'DNAT')]
        if nat and len(nat) < len(states):
            _refuse(param + 'ctstate', 'SNAT and DNAT are conntrack status bits in nft (ct status snat): they cannot '
                                       'be listed with other states in one rule; write two rules')
        if nat:
            out.append('ct status %s' % _bits(spec['ctstate'], NAT_STATES, param + 'ctstate', 'conntrack state'))
        else:
            out.append('ct state %s' % _bits(spec['ctstate'], NFT_CTSTATES, param + 'ctstate', 'conntrack state'))
    if 'ctstatus' in spec:
        if 'NONE' in plain(spec['ctstatus']):
            # xt_conntrack tests (status & mask) != 0 with an empty mask for NONE: it matches no packet (and
            # negated every tracked one). nft's `ct status 0x0` is the same test (measured: both count 0 packets,
            # their negations every packet).
            out.append('ct status %s0x0' % _cmp(spec['ctstatus']))
        else:
            out.append('ct status %s' % _bits(spec['ctstatus'], [(k, NFT_CTSTATUS[k]) for k in CTSTATUS],
                                              param + 'ctstatus', 'conntrack status'))
    for key in ('ctorigsrc', 'ctorigdst', 'ctreplsrc', 'ctrepldst'):
        if key in spec:
            direction = 'original' if key.startswith('ctorig') else 'reply'
            field = 'saddr' if key.endswith('src') else 'daddr'
            out.append('ct %s %s %s %s%s' % (direction, L3[family], field, _cmp(spec[key]), plain(spec[key])))
    for key in ('ctorigsrcport', 'ctorigdstport', 'ctreplsrcport', 'ctrepldstport'):
        if key in spec:
            if not protocol:
                _refuse(param + key, 'nft matches a conntrack port only with a protocol: give protocol')
            direction = 'original' if key.startswith('ctorig') else 'reply'
            field = 'proto-src' if 'src' in key else 'proto-dst'
            out.append('ct %s %s %s%s' % (direction, field, _cmp(spec[key]), _nft_ports(spec[key])))
    if 'ctdir' in spec:
        out.append('ct direction %s' % spec['ctdir'].lower())
    if 'connlimit_above' in spec or 'connlimit_upto' in spec:
        out.append(_connlimit(spec, family))
    if 'hashlimit_upto' in spec or 'hashlimit_above' in spec:
        out.append(_hashlimit(spec, family, param))
    if 'limit' in spec:
        count, unit = spec['limit'].split('/')
        text = 'limit rate %s/%s' % (count, RATE_UNITS[unit])
        if 'limit_burst' in spec:
            text += ' burst %d packets' % spec['limit_burst']
        out.append(text)
    out.extend(_target(spec, family, param, hook))
    comment = kernel_comment(spec)
    if comment is not None:
        out.append('comment %s' % _quoted(comment, param + 'comment', COMMENT_MAX))
    return ' '.join(out)


def count_set(spec, family):
    """The dynamic set a connlimit rule counts in: named after the rule's content, so that the same rule
    always has the same set and reading the table back finds it."""
    import hashlib
    text = repr(sorted((key, str(value)) for key, value in spec.items()))
    return '%s.count-%s' % (family, hashlib.sha1(('%s %s' % (family, text)).encode('utf-8')).hexdigest()[:12])


def _mask_text(length, family):
    import ipaddress
    width = 32 if family == 'ipv4' else 128
    if length == width:
        return ''
    network = ipaddress.ip_network('%s/%d' % ('0.0.0.0' if family == 'ipv4' else '::', length))
    return ' & %s' % network.netmask


def _connlimit(spec, family):
    """add @SET { ip saddr [& MASK] ct count [over] N }: the connections of the rule's source (or destination)
    network, counted in the set; 'over' matches above N (connlimit_above), without it up to N."""
    above = 'connlimit_above' in spec
    return 'add @%s { %s %s%s ct count %s%d }' % (
        count_set(spec, family), L3[family], 'daddr' if spec.get('connlimit_daddr') else 'saddr',
        _mask_text(spec['connlimit_mask'], family), 'over ' if above else '',
        spec['connlimit_above' if above else 'connlimit_upto'])


def hashlimit_set(spec, family):
    """The dynamic set of a hashlimit rule: one per hashlimit_name and family (rules of one name share their
    buckets, as they share the kernel's table in iptables)."""
    return '%s.hashlimit-%s' % (family, spec['hashlimit_name'])


def _hashlimit_key(spec, family, param=''):
    """(key expression, key type) of a hashlimit rule's modes, in the model's mode order."""
    modes = spec.get('hashlimit_mode')
    if not modes:
        _refuse(param + 'hashlimit_mode', 'a hashlimit without a mode is one bucket for every packet of the rule; '
                                          'with backend nftables give a mode (srcip, dstip, srcport, dstport) or '
                                          'use limit')
    width = 32 if family == 'ipv4' else 128
    keys, types = [], []
    for mode in modes:
        if mode in ('srcip', 'dstip'):
            mask = spec.get('hashlimit_srcmask' if mode == 'srcip' else 'hashlimit_dstmask', width)
            if mask == 0:
                _refuse(param + ('hashlimit_srcmask' if mode == 'srcip' else 'hashlimit_dstmask'),
                        'a mask of 0 groups every address into one bucket: leave the mode out instead')
            keys.append('%s %s%s' % (L3[family], 'saddr' if mode == 'srcip' else 'daddr', _mask_text(mask, family)))
            types.append(SET_TYPES[family])
        else:
            if spec.get('protocol') not in PORT_MATCH_PROTOCOLS:
                _refuse(param + 'hashlimit_mode', 'mode %s needs protocol %s with backend nftables'
                        % (mode, ', '.join(PORT_MATCH_PROTOCOLS)))
            keys.append('%s %s' % (spec['protocol'], 'sport' if mode == 'srcport' else 'dport'))
            types.append('inet_service')
    return ' . '.join(keys), ' . '.join(types)


def _hashlimit(spec, family, param=''):
    """add @SET { KEY limit rate [over] N/UNIT [burst B packets] }: a token bucket per key in the set."""
    key = _hashlimit_key(spec, family, param)[0]
    if spec.get('hashlimit_htable_expire', 0) % 1000:
        # Measured: 1 ms is kept (and printed) as 4 ms on this kernel (HZ 250); whole seconds are exact at any HZ.
        _refuse(param + 'hashlimit_htable_expire', '%d ms: the kernel keeps the timeout of an nft set in clock '
                                                   'ticks; give whole seconds (a multiple of 1000)'
                % spec['hashlimit_htable_expire'])
    above = 'hashlimit_above' in spec
    count, unit = spec['hashlimit_above' if above else 'hashlimit_upto'].split('/')
    text = 'add @%s { %s limit rate %s%s/%s' % (hashlimit_set(spec, family), key, 'over ' if above else '', count,
                                                RATE_UNITS[unit])
    if spec.get('hashlimit_burst', DEFAULT_HASHLIMIT_BURST) != DEFAULT_HASHLIMIT_BURST:
        text += ' burst %d packets' % spec['hashlimit_burst']
    return text + ' }'


def nft_duration(ms):
    """Milliseconds as nft prints a duration: 1s500ms, 1m, 1d."""
    parts = []
    for unit, size in (('d', 86400000), ('h', 3600000), ('m', 60000), ('s', 1000), ('ms', 1)):
        if ms >= size:
            parts.append('%d%s' % (ms // size, unit))
            ms %= size
    return ''.join(parts) or '0ms'


def parse_duration(text):
    """The milliseconds of an nft duration ('1s500ms', '1m'), or None."""
    found = re.findall(r'(\d+)(ms|d|h|m|s)', text)
    if not found or ''.join(number + unit for number, unit in found) != text:
        return None
    sizes = {'d': 86400000, 'h': 3600000, 'm': 60000, 's': 1000, 'ms': 1}
    return sum(int(number) * sizes[unit] for number, unit in found)


def hashlimit_body(spec, family):
    """The lines of a hashlimit set as nft prints them: key type, size (hashlimit_htable_max), flags, and the
    time an idle entry is kept (hashlimit_htable_expire; by default one unit of the rate, as hashlimit)."""
    which = 'hashlimit_above' if 'hashlimit_above' in spec else 'hashlimit_upto'
    expire = spec.get('hashlimit_htable_expire') or hashlimit_rate(spec[which], which)[2]
    return ['type %s' % _hashlimit_key(spec, family)[1], 'size %d' % spec.get('hashlimit_htable_max', COUNT_SET_SIZE),
            'flags dynamic,timeout', 'timeout %s' % nft_duration(expire)]


def set_body(family):
    """The lines of a connlimit set as nft prints them."""
    return ['type %s' % SET_TYPES[family], 'size %d' % COUNT_SET_SIZE, 'flags dynamic']


def _target(spec, family, param, hook=None):
    jump = spec['jump']
    if jump in ('ACCEPT', 'DROP', 'RETURN'):
        return [jump.lower()]
    if jump.startswith(PREFIX):
        return ['jump', chain_name(family, jump)]
    if jump == 'REJECT':
        return ['reject', 'with', REJECT[spec['reject_with']]]
    if jump == 'LOG':
        out = ['log']
        if 'log_prefix' in spec:
            if '$' in spec['log_prefix']:
                # nft reads $NAME in a log prefix as a variable (1.0.6: "unknown identifier").
                _refuse(param + 'log_prefix', '%s: nft reads $ in a log prefix as a variable'
                        % show(spec['log_prefix']))
            out += ['prefix', _quoted(spec['log_prefix'], param + 'log_prefix')]
        if 'log_level' in spec:
            out += ['level', LOG_LEVELS[spec['log_level']]]
        return out
    if jump in ('SNAT', 'DNAT'):
        name = 'to_source' if jump == 'SNAT' else 'to_destination'
        if '/' in spec[name]:
            return [jump.lower(), _shift_map(spec, family, param)] + _nat_flags(spec)
        return [jump.lower(), _nat_to(spec, name, family)] + _nat_flags(spec)
    if jump in ('MASQUERADE', 'REDIRECT'):
        out = [jump.lower()]
        if 'to_ports' in spec:
            out += ['to', ':' + spec['to_ports']]
        return out + _nat_flags(spec)
    if jump == 'CT':
        out = []
        if 'helper' in spec:
            out.append('ct helper set "%s"' % helper_object(spec['helper'], spec['protocol']))
        if 'ct_timeout' in spec:
            out.append('ct timeout set "%s"' % timeout_object(spec['protocol'], spec['ct_timeout']))
        return out or ['notrack']
    if jump == 'TCPMSS':
        return ['tcp option maxseg size set %s' % ('rt mtu' if spec.get('clamp_mss_to_pmtu') else spec['set_mss'])]
    if jump == 'NETMAP':
        if hook not in NETMAP_SIDES:
            _refuse(param + 'to_prefix', 'NETMAP rewrites the destination or the source depending on the hook the '
                                         'packet comes from; with backend nftables it is nft\'s dnat or snat '
                                         '"prefix to", so its chain must be hooked (from %s)'
                    % ', '.join(sorted(NETMAP_SIDES)))
        side = 'dnat' if NETMAP_SIDES[hook] == 'destination' else 'snat'
        # nft keeps a /32 or /128 prefix length here.
        return [side, L3[family], 'prefix', 'to', nft6(spec['to_prefix']) if family == 'ipv6' else spec['to_prefix']]
    _refuse(param + 'jump', '%s is not rendered by the nftables back end yet' % jump)


# ---------------------------------------------------------------------------
# Parsing a rule as `nft list` prints it.

def _words(text):
    return _RULE_SPLIT.findall(text)


def _unquote(word):
    return word[1:-1] if len(word) >= 2 and word[0] == '"' and word[-1] == '"' else word


class _Tokens(object):
    def __init__(self, words):
        self.words = words
        self.pos = 0

    def peek(self, count=1):
        return self.words[self.pos:self.pos + count]

    def take(self, count=1):
        out = self.words[self.pos:self.pos + count]
        if len(out) < count:
            raise ValueError('rule ends early')
        self.pos += count
        return out

    def done(self):
        return self.pos >= len(self.words)

    def negation(self):
        if self.peek() == ['!=']:
            self.pos += 1
            return NOT
        return ''

    def value(self):
        """A value, or an anonymous set '{ a, b }' as a list."""
        first = self.take()[0]
        if first != '{':
            return first
        items = []
        while True:
            word = self.take()[0]
            if word == '}':
                return items
            items.extend(part for part in word.split(',') if part)

    def bits(self):
        """'a,b' or 'a | b' (negated form)."""
        items = self.take()[0].split(',')
        while self.peek() == ['|']:
            self.take()
            items.append(self.take()[0])
        return items


def _ports_raw(neg, value):
    if isinstance(value, list):
        return ([NOT] if neg else []) + list(value)
    return neg + value


def parse_rule(text, family, table, sets=None):
    """The spec of a rule from its nft listing, or None if the model cannot express it.

    sets: {'set NAME': body lines} of the table, where a hashlimit rule's size and expiry are."""
    try:
        raw = _parse_raw(_Tokens(_words(text)), family, sets or {})
    except (ValueError, KeyError, IndexError):
        return None
    if raw is None:
        return None
    take_name(raw)
    side = raw.pop('_side', None)
    try:
        spec = make_rule(raw, family, table)
        if side:
            # The side nft rewrites: parse_table checks it against the chain's hook.
            spec['_side'] = side
        return spec
    except ValidationError:
        return None


def _parse_raw(tok, family, sets):
    raw = {}
    icmp_names = dict((name, number) for number, name in ICMP_NAMES[family].items())
    while not tok.done():
        word = tok.peek()[0]
        if word in ('ip', 'ip6') and tok.peek(2)[1:] in (['saddr'], ['daddr']):
            dummy, field = tok.take(2)
            if word != L3[family]:
                return None
            neg = tok.negation()
            raw['source' if field == 'saddr' else 'destination'] = _ports_raw(neg, _set_networks(tok.value()))
        elif word in ('iifname', 'oifname'):
            tok.take()
            neg = tok.negation()
            name = _unquote(tok.take()[0])
            name = name[:-1] + '+' if name.endswith('*') else name
            raw['in_interface' if word == 'iifname' else 'out_interface'] = neg + name
        elif tok.peek(2) == ['meta', 'nfproto']:
            if tok.take(3)[2] != family:
                return None
        elif tok.peek(2) == ['meta', 'l4proto']:
            tok.take(2)
            name = tok.take()[0]
            raw['protocol'] = 'icmpv6' if name == 'ipv6-icmp' else name
        elif word in PORT_MATCH_PROTOCOLS and tok.peek(2)[1:] in (['sport'], ['dport']):
            dummy, field = tok.take(2)
            raw['protocol'] = word
            neg = tok.negation()
            raw['source_port' if field == 'sport' else 'destination_port'] = _ports_raw(neg, tok.value())
        elif tok.peek(2) == ['tcp', 'flags']:
            tok.take(2)
            raw['protocol'] = 'tcp'
            if tok.peek() == ['!']:
                tok.take()
                raw['tcp_flags'] = '%s NONE' % tok.take()[0].upper()
                continue
            if tok.peek() == ['&']:
                dummy, mask, op, comp = tok.take(4)
                raw['tcp_flags'] = '%s%s %s' % (NOT if op == '!=' else '', mask.upper(), comp.upper())
                continue
            if tok.peek(2)[1:] != ['/'] and tok.peek(2)[:1] != ['!=']:
                raw['tcp_flags'] = '!%s NONE' % tok.take()[0].upper()
                continue
            neg = tok.negation()
            comp, slash, mask = tok.take(3)
            if slash != '/':
                return None
            raw['tcp_flags'] = '%s%s %s' % (neg, mask.upper(), comp.upper())
        elif word in ('icmp', 'icmpv6') and tok.peek(2)[1:] == ['type']:
            tok.take(2)
            if word != ('icmp' if family == 'ipv4' else 'icmpv6'):
                return None
            raw['protocol'] = word
            name = tok.take()[0]
            raw['icmp_type'] = str(icmp_names.get(name, name))
            if tok.peek(2) == [word, 'code']:
                code = tok.take(3)[2]
                codes = dict((text, number) for number, text in ICMP_CODES[family].items())
                raw['icmp_type'] += '/%s' % codes.get(code, code)
        elif tok.peek(2) in (['ct', 'state'], ['ct', 'status']):
            dummy, what = tok.take(2)
            neg = tok.negation()
            names = [item.upper().replace('-', '_') for item in tok.bits()]
            if what == 'status' and names == ['0X0']:
                names = ['NONE']
            key = 'ctstate' if what == 'state' or set(names) <= set(['SNAT', 'DNAT']) else 'ctstatus'
            if key in raw:
                return None
            raw[key] = ([NOT] if neg else []) + names
        elif tok.peek(2) == ['ct', 'direction']:
            tok.take(2)
            raw['ctdir'] = tok.take()[0].upper()
        elif word == 'ct' and tok.peek(2)[1:] in (['original'], ['reply']):
            direction = tok.take(2)[1]
            short = 'ctorig' if direction == 'original' else 'ctrepl'
            if tok.peek()[0] in ('proto-src', 'proto-dst'):
                field = tok.take()[0]
                raw[short + ('srcport' if field == 'proto-src' else 'dstport')] = tok.negation() + tok.value()
            else:
                l3, field = tok.take(2)
                if l3 != L3[family]:
                    return None
                raw[short + ('src' if field == 'saddr' else 'dst')] = tok.negation() + tok.value()
        elif word == 'add' and len(tok.peek(2)) == 2 and tok.peek(2)[1].startswith('@%s.hashlimit-' % family):
            if not _parse_hashlimit(tok, raw, family, sets):
                return None
        elif word == 'add' and len(tok.peek(2)) == 2 and tok.peek(2)[1].startswith('@'):
            if not _parse_count(tok, raw, family):
                return None
        elif tok.peek(2) == ['limit', 'rate']:
            tok.take(2)
            raw['limit'] = tok.take()[0]
            if tok.peek() == ['burst']:
                raw['limit_burst'] = int(tok.take(3)[1])
        elif word == 'comment':
            tok.take()
            raw['comment'] = _unquote(tok.take()[0])
        elif not _parse_target(tok, raw, family):
            return None
    return raw


def _parse_hashlimit(tok, raw, family, sets):
    """add @ipv4.hashlimit-NAME { KEY limit rate [over] N/UNIT [burst B packets] } into the hashlimit options,
    with the size and expiry of the set; False if it is not that."""
    import ipaddress
    name = tok.take(2)[1][1:]
    if tok.take()[0] != '{':
        return False
    raw['hashlimit_name'] = name[len('%s.hashlimit-' % family):]
    modes = []
    while True:
        word = tok.take()[0]
        if word in ('ip', 'ip6'):
            if word != L3[family]:
                return False
            field = tok.take()[0]
            mode = {'saddr': 'srcip', 'daddr': 'dstip'}[field]
            if tok.peek() == ['&']:
                tok.take()
                bits = int(ipaddress.ip_address(tok.take()[0]))
                width = 32 if family == 'ipv4' else 128
                length = bin(bits).count('1')
                if bits != ((1 << length) - 1) << (width - length):
                    return False
                raw['hashlimit_srcmask' if mode == 'srcip' else 'hashlimit_dstmask'] = length
        elif word in PORT_MATCH_PROTOCOLS:
            mode = {'sport': 'srcport', 'dport': 'dstport'}[tok.take()[0]]
            raw['protocol'] = word
        else:
            return False
        modes.append(mode)
        if tok.peek() != ['.']:
            break
        tok.take()
    raw['hashlimit_mode'] = modes
    if tok.take(2) != ['limit', 'rate']:
        return False
    above = tok.peek() == ['over']
    if above:
        tok.take()
    raw['hashlimit_above' if above else 'hashlimit_upto'] = tok.take()[0]
    if tok.peek() == ['burst']:
        raw['hashlimit_burst'] = int(tok.take(3)[1])
    body = sets.get('set ' + name) or []
    for line in body:
        key, dummy, value = line.partition(' ')
        if key == 'size' and int(value) != COUNT_SET_SIZE:
            raw['hashlimit_htable_max'] = int(value)
        elif key == 'timeout' and parse_duration(value) is not None:
            raw['hashlimit_htable_expire'] = parse_duration(value)
    return tok.take()[0] == '}'


def _parse_count(tok, raw, family):
    """add @SET { ip saddr & MASK ct count over N } into the connlimit options; False if it is not that."""
    import ipaddress
    tok.take(2)
    if tok.take()[0] != '{':
        return False
    l3, field = tok.take(2)
    if l3 != L3[family] or field not in ('saddr', 'daddr'):
        return False
    mask = 32 if family == 'ipv4' else 128
    if tok.peek() == ['&']:
        tok.take()
        bits = int(ipaddress.ip_address(tok.take()[0]))
        width, mask = mask, bin(bits).count('1')
        if bits != ((1 << mask) - 1) << (width - mask):
            return False
    if tok.take(2) != ['ct', 'count']:
        return False
    above = tok.peek() == ['over']
    if above:
        tok.take()
    raw['connlimit_above' if above else 'connlimit_upto'] = int(tok.take()[0])
    raw['connlimit_mask'] = mask
    if field == 'daddr':
        raw['connlimit_daddr'] = True
    return tok.take()[0] == '}'


def _parse_timeout(tok, raw):
    """ct timeout set "snf-timeout-..." into ct_timeout (the policy is in the object's name)."""
    found = timeout_policy(_unquote(tok.take()[0]))
    if not found:
        return False
    raw['ct_timeout'] = found[1]
    return True


def _parse_flags(tok, raw):
    if tok.peek() and tok.peek()[0] != 'comment' and tok.peek()[0] != 'to':
        words = tok.peek()[0].split(',')
        if all(word in dict((w, k) for k, w in NAT_FLAGS) for word in words):
            tok.take()
            for word in words:
                raw[dict((w, k) for k, w in NAT_FLAGS)[word]] = True


def _parse_target(tok, raw, family):
    word = tok.take()[0]
    if word in ('accept', 'drop', 'return'):
        raw['jump'] = word.upper()
    elif word == 'jump':
        target = tok.take()[0]
        if not target.startswith(family + '.'):
            return False
        raw['jump'] = target[len(family) + 1:]
    elif word == 'reject':
        if tok.take()[0] != 'with':
            return False
        text = ' '.join(tok.take(2))
        found = [name for name, nft in REJECT.items() if nft == text
                 and (name == 'tcp-reset' or name.startswith('icmp6' if family == 'ipv6' else 'icmp-'))]
        if not found:
            return False
        raw['jump'], raw['reject_with'] = 'REJECT', found[0]
    elif word == 'log':
        raw['jump'] = 'LOG'
        while tok.peek() and tok.peek()[0] in ('prefix', 'level'):
            key, value = tok.take(2)
            if key == 'prefix':
                raw['log_prefix'] = _unquote(value)
            else:
                raw['log_level'] = LOG_LEVELS.index(value)
    elif word in ('snat', 'dnat') and tok.peek(2)[1:] != ['prefix']:
        l3, to, value = tok.take(3)
        if l3 != L3[family] or to != 'to':
            return False
        if word == 'dnat' and tok.peek() == ['dport']:
            if not _parse_shift(tok, raw, value):
                return False
            _parse_flags(tok, raw)
            return True
        if family == 'ipv6' and value.startswith('['):
            addrs = re.findall(r'\[([^\]]*)\]', value)
            ports = value[value.rindex(']') + 1:]
            value = '[%s]%s' % ('-'.join(addrs), ports)
        raw['jump'] = word.upper()
        raw['to_source' if word == 'snat' else 'to_destination'] = value
        _parse_flags(tok, raw)
    elif word in ('masquerade', 'redirect'):
        raw['jump'] = word.upper()
        if tok.peek() == ['to']:
            raw['to_ports'] = tok.take(2)[1].lstrip(':')
        _parse_flags(tok, raw)
    elif word == 'ct' and tok.peek(2) == ['helper', 'set']:
        tok.take(2)
        name = _unquote(tok.take()[0])
        found = [helper for helper in HELPERS for protocol in HELPERS[helper][0]
                 if helper_object(helper, protocol) == name]
        if not found:
            return False
        raw['jump'], raw['helper'] = 'CT', found[0]
        if tok.peek(3) == ['ct', 'timeout', 'set']:
            tok.take(3)
            return _parse_timeout(tok, raw)
    elif word == 'ct' and tok.peek(2) == ['timeout', 'set']:
        tok.take(2)
        raw['jump'] = 'CT'
        return _parse_timeout(tok, raw)
    elif word == 'notrack':
        raw['jump'], raw['notrack'] = 'CT', True
    elif word in ('snat', 'dnat') and tok.peek(3)[1:] == ['prefix', 'to']:
        l3 = tok.take(3)[0]
        if l3 != L3[family]:
            return False
        raw['jump'], raw['to_prefix'] = 'NETMAP', tok.take()[0]
        raw['_side'] = 'destination' if word == 'dnat' else 'source'
    elif word == 'tcp' and tok.peek(4) == ['option', 'maxseg', 'size', 'set']:
        tok.take(4)
        raw['jump'] = 'TCPMSS'
        if tok.peek() == ['rt']:
            tok.take(2)
            raw['clamp_mss_to_pmtu'] = True
        else:
            raw['set_mss'] = int(tok.take()[0])
    else:
        return False
    return True


# ---------------------------------------------------------------------------
# Tables.

class NftRule(Rule):
    """A Rule whose text is the nft form (spec None: a rule the model cannot read, kept as printed)."""

    __slots__ = ()


def rule_from_spec(spec, family, param='', hook=None):
    return NftRule(spec, render_rule(spec, family, param, hook))


def convert_owned(owned, family, table):
    """An Owned state of _rules (iptables text) with its rules rendered for nft; ValidationError names the rule."""
    chains = []
    for index, chain in enumerate(owned.chains.values()):
        rules = []
        for number, rule in enumerate(chain.rules):
            rules.append(rule_from_spec(rule.spec, family, 'chains[%d].rules[%d].' % (index, number),
                                        chain.hook[0] if chain.hook else None))
        chains.append(Chain(chain.name, chain.hook, rules))
    return Owned(chains, owned.policies)


def sets_on_connection(states):
    """The first rule spec of {family: Owned} that sets a helper or a timeout policy, or None."""
    for family in FAMILIES:
        for chain in (states[family].chains.values() if family in states else []):
            for rule in chain.rules:
                if rule.spec and (rule.spec.get('helper') or rule.spec.get('ct_timeout')):
                    return rule.spec
    return None


def base_priority(table, builtin, position, after=False):
    """The priority of a base chain as nft prints it: the iptables table's keyword minus one (first) or plus
    one (last); after conntrack (a raw scope that sets helpers or timeouts) mangle - 2 and mangle - 1."""
    if after:
        return AFTER_CONNTRACK[position]
    priority = HOOKS[table][builtin][2]
    if position == 'end':
        return '%s + 2' % priority
    if not isinstance(priority, str):
        return '%d' % (priority - 1 if position == 'first' else priority + 1)
    return '%s %s 1' % (priority, '-' if position == 'first' else '+')


def render_table(name, table, states):
    """The table as `nft list table inet NAME` prints it, from {family: Owned}; '' when it would be empty."""
    after = table == 'raw' and sets_on_connection(states) is not None
    if after:
        for family in FAMILIES:
            for chain in (states[family].chains.values() if family in states else []):
                for number, rule in enumerate(chain.rules):
                    if rule.spec and rule.spec.get('notrack'):
                        raise ValidationError('notrack', 'rule %s of chain %s: with backend nftables, notrack '
                                                         'runs before conntrack and a helper or timeout policy '
                                                         'after it (nft sets them on the connection conntrack '
                                                         'made), so they cannot share a scope: put the notrack '
                                                         'rules in a scope of their own'
                                              % (rule.name or show(rule.text), chain.name))
    policies = OrderedDict()
    for family in FAMILIES:
        if family in states:
            for builtin, policy in states[family].policies.items():
                if policy != 'ACCEPT':
                    policies[builtin] = policy
    bases = []
    for builtin in BUILTIN_CHAINS[table]:
        kind, hook, priority = HOOKS[table][builtin]
        for position, lines in base_chains(table, builtin, states, policies.get(builtin)):
            head = 'type %s hook %s priority %s; policy %s;' % (
                kind, hook, base_priority(table, builtin, position, after),
                (policies.get(builtin, 'ACCEPT') if position == policy_position(table) else 'ACCEPT').lower())
            bases.append((base_name(builtin, position), [head] + lines))
    objects = OrderedDict()
    for family in FAMILIES:
        for chain in (states[family].chains.values() if family in states else []):
            for rule in chain.rules:
                if rule.spec and rule.spec.get('helper'):
                    helper, protocol = rule.spec['helper'], rule.spec['protocol']
                    objects[helper_object(helper, protocol)] = helper_body(helper, protocol)
    timeouts = timeout_objects(states)
    regular = []
    for family in FAMILIES:
        for chain in (states[family].chains.values() if family in states else []):
            regular.append((chain_name(family, chain.name), [rule.text for rule in chain.rules]))
    if not bases and not regular:
        return ''
    blocks = ['\tct helper %s {\n%s\t}\n' % (obj, ''.join('\t\t%s\n' % line for line in objects[obj]))
              for obj in sorted(objects)]
    blocks += ['\tct timeout %s {\n%s\t}\n' % (obj, ''.join('\t\t%s\n' % line for line in timeouts[obj]))
               for obj in sorted(timeouts)]
    blocks += ['\tset %s {\n%s\t}\n' % (name, ''.join('\t\t%s\n' % line for line in body))
               for name, body in sorted(count_sets(states).items())]
    blocks += ['\tchain %s {\n%s\t}\n' % (chain, ''.join('\t\t%s\n' % line for line in lines))
               for chain, lines in bases + regular]
    return 'table inet %s {\n%s}\n' % (name, '\n'.join(blocks))


def policy_position(table):
    """The base chain that carries a built-in chain's policy: the last one in the filter table (after every
    scope's first chains had their say, see ACCEPT_MARK), the first one elsewhere."""
    return 'last' if table == 'filter' else 'first'


def base_chains(table, builtin, states, policy):
    """[(position, lines after the head)] of the base chains of one built-in chain, from {family: Owned} and
    the policy (None for ACCEPT)."""
    jumps = {}
    for position in ('first', 'last'):
        jumps[position] = ['meta nfproto %s jump %s' % (family, chain_name(family, chain.name))
                           for family in FAMILIES
                           for chain in (states[family].chains.values() if family in states else [])
                           if chain.hook == (builtin, position)]
    if table != 'filter':
        return [(position, jumps[position]) for position in ('first', 'last')
                if jumps[position] or (policy and position == 'first')]
    out = []
    if jumps['first']:
        out.append(('first', [MARK_SKIP, MARK_SET] + jumps['first'] + [MARK_CLEAR]))
    if jumps['last'] or policy:
        out.append(('last', [MARK_SKIP] + jumps['last']))
    if out:
        out.append(('end', [MARK_CLEAR]))
    return out


def timeout_objects(states):
    """{ct timeout object name: body} of the timeout policies of {family: Owned} (one object per policy)."""
    objects = {}
    for family in FAMILIES:
        for chain in (states[family].chains.values() if family in states else []):
            for rule in chain.rules:
                if rule.spec and rule.spec.get('ct_timeout'):
                    name = timeout_object(rule.spec['protocol'], rule.spec['ct_timeout'])
                    objects[name] = timeout_body(rule.spec['protocol'], rule.spec['ct_timeout'])
    return objects


def count_sets(states):
    """{set name: body} of the connlimit and hashlimit rules of {family: Owned}; rules that share a hashlimit
    name must describe the same set (ValidationError naming hashlimit_name)."""
    sets = {}
    for family in FAMILIES:
        for chain in (states[family].chains.values() if family in states else []):
            for rule in chain.rules:
                if rule.spec and ('connlimit_above' in rule.spec or 'connlimit_upto' in rule.spec):
                    sets[count_set(rule.spec, family)] = set_body(family)
                if rule.spec and 'hashlimit_name' in rule.spec:
                    name, body = hashlimit_set(rule.spec, family), hashlimit_body(rule.spec, family)
                    if sets.setdefault(name, body) != body:
                        raise ValidationError('hashlimit_name', 'rule %s of chain %s: rules of hashlimit_name %s '
                                                                'share one set of buckets, so they need the same '
                                                                'mode, masks, protocol, rate unit, htable_max and '
                                                                'htable_expire' % (rule.name or show(rule.text),
                                                                                   chain.name,
                                                                                   rule.spec['hashlimit_name']))
    return sets


def parse_table(text, table):
    """{family: Owned} and the list of lines not understood, from `nft list table inet NAME` output ('' = absent).

    Rules the model cannot read are kept with spec None, as their printed text.
    """
    states = dict((family, Owned()) for family in FAMILIES)
    unknown = []
    hooks = []
    layout = OrderedDict()
    netmaps = []
    priorities = []
    chain = None
    helper = None
    objects = {}
    for line in text.split('\n'):
        line = line.strip()
        if not line or line == '}' or _TABLE_NAME.fullmatch(line):
            if line == '}':
                chain = helper = None
            continue
        if line.startswith(('ct helper ', 'ct timeout ', 'set ')) and line.endswith(' {') and chain is None:
            helper = line[:-2]
            objects[helper] = []
            continue
        if helper is not None:
            objects[helper].append(line)
            continue
        if line.startswith('chain ') and line.endswith(' {'):
            chain = line[6:-2]
            family, dot, name = chain.partition('.')
            if dot and family in states:
                states[family].chains[name] = Chain(name)
            continue
        if chain is None:
            unknown.append(line)
            continue
        family, dot, name = chain.partition('.')
        if dot and family in states and name in states[family].chains:
            spec = parse_rule(line, family, table, objects)
            if spec is not None and '_side' in spec:
                # NETMAP: rendered once the chain's hook is known (below).
                netmaps.append((family, name, len(states[family].chains[name].rules), line))
                states[family].chains[name].rules.append(NftRule(spec, line))
                continue
            states[family].chains[name].rules.append(NftRule(spec, line if spec is None else
                                                             render_rule(spec, family)))
            continue
        builtin, position = split_base(chain)
        if builtin not in HOOKS[table] or (position == 'end' and table != 'filter'):
            unknown.append(line)
            continue
        kind, hook, priority = HOOKS[table][builtin]
        match = re.fullmatch(r'type %s hook %s priority (%s|%s); policy (accept|drop);' % (
            kind, hook, re.escape(base_priority(table, builtin, position)),
            re.escape(AFTER_CONNTRACK[position]) if table == 'raw' and position != 'end' else 'NONE'), line)
        jump = re.fullmatch(r'meta nfproto (ipv4|ipv6) jump (ipv4|ipv6)\.(\S+)', line)
        if match and (position == policy_position(table) or match.group(2) == 'accept'):
            priorities.append((match.group(1), builtin, position, line))
            if position == policy_position(table):
                for family in states:
                    states[family].policies[builtin] = match.group(2).upper()
        elif jump and jump.group(1) == jump.group(2) and position != 'end':
            hooks.append((jump.group(1), jump.group(3), (builtin, position)))
        elif line.startswith('type '):
            # A base chain whose type, hook, priority or policy is not the one rendered.
            unknown.append(line)
        else:
            # A mark rule, or a rule someone added (checked against the layout below).
            layout.setdefault(chain, []).append(line)
            continue
        layout.setdefault(chain, [])
    wanted = dict(('ct helper ' + helper_object(h, p), helper_body(h, p)) for h in HELPERS for p in HELPERS[h][0])
    wanted.update(('set ' + name, body) for name, body in count_sets(states).items())
    wanted.update(('ct timeout ' + name, body) for name, body in timeout_objects(states).items())
    for name, body in objects.items():
        if wanted.get(name) != body:
            unknown.append('%s { %s }' % (name, '; '.join(body)))
    after = table == 'raw' and sets_on_connection(states) is not None
    for priority, builtin, position, line in priorities:
        if priority != base_priority(table, builtin, position, after):
            # A base chain at a priority the rules do not call for (a helper before conntrack): rewritten.
            unknown.append(line)
    for family, name, hook in hooks:
        if name in states[family].chains:
            states[family].chains[name].hook = hook
        else:
            unknown.append('jump %s.%s' % (family, name))
    unknown.extend(_layout_problems(table, states, layout))
    for family, name, index, line in netmaps:
        chain = states[family].chains[name]
        spec = chain.rules[index].spec
        side = spec.pop('_side')
        hook = chain.hook[0] if chain.hook else None
        # A NETMAP in a chain not hooked, or rewriting the other side than its hook calls for, is not the
        # collection's: kept as text, never written back.
        chain.rules[index] = NftRule(spec, render_rule(spec, family, hook=hook)) \
            if NETMAP_SIDES.get(hook) == side else NftRule(None, line)
    return states, unknown


def split_base(chain):
    """(built-in chain, position) of a base chain's name: INPUT, INPUT-LAST, INPUT-END."""
    for position, suffix in (('last', LAST_SUFFIX), ('end', END_SUFFIX)):
        if chain.endswith(suffix):
            return chain[:-len(suffix)], position
    return chain, 'first'


def _layout_problems(table, states, layout):
    """The lines of the base chains {name: lines other than the head and the jumps} that differ from the ones
    the rendering of the parsed states has (a rule someone added, a mark rule missing, a chain too many)."""
    problems = []
    for builtin in BUILTIN_CHAINS[table]:
        policy = states['ipv4'].policies.get(builtin, 'ACCEPT')
        wanted = dict((base_name(builtin, position), [line for line in lines if ' jump ' not in line])
                      for position, lines in base_chains(table, builtin, states,
                                                         None if policy == 'ACCEPT' else policy))
        for name in set(wanted) | set(chain for chain in layout if split_base(chain)[0] == builtin):
            if layout.get(name) != wanted.get(name):
                problems.append('chain %s { %s }' % (name, '; '.join(layout.get(name) or ['(missing)'])))
    return problems


# ---------------------------------------------------------------------------
# Running nft.

def parse_version(text):
    """(major, minor, patch) of `nft --version` output ('nftables v1.0.6 (Lester Gooch #5)'), or None."""
    match = re.search(r'\bv(\d+)\.(\d+)(?:\.(\d+))?', text or '')
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


class NftCommand(object):
    """The `nft` of the host, through module.run_command (no shell)."""

    def __init__(self, module, probe=True):
        """probe: check here that nft can talk to the kernel (a kernel without nf_tables fails); without it the
        caller asks talks() when a command fails."""
        self.module = module
        self.path = module.get_bin_path('nft')
        if not self.path:
            raise NftError('the nftables back end needs the nft command (Debian and Ubuntu: package nftables); '
                           'nothing was changed', param='backend')
        rc, out, err = module.run_command([self.path, '--version'], environ_update=C_LOCALE)
        self.version = parse_version(out) if rc == 0 else None
        if self.version is None or self.version < NFT_MIN_VERSION:
            raise NftError('the nftables back end needs nft %s or later; %s says %s; nothing was changed'
                           % ('.'.join(str(part) for part in NFT_MIN_VERSION), self.path,
                              show((out or err).strip())), param='backend', result=dict(rc=rc, stderr=err))
        if probe:
            rc, out, err = self._list_tables()
            if rc != 0:
                raise NftError('nft cannot talk to the kernel: %s (a kernel without nf_tables?); nothing was '
                               'changed' % (err.strip() or out.strip()), param='backend', result=dict(rc=rc, stderr=err))

    def _list_tables(self):
        return self.module.run_command([self.path, 'list', 'tables'], environ_update=C_LOCALE)

    def talks(self):
        """Whether nft can talk to the kernel (nft list tables works)."""
        return self._list_tables()[0] == 0

    def list_table(self, name):
        """The listing of `inet NAME`, or '' when the table does not exist."""
        # -t (terse): without the elements of the connlimit sets, which the kernel fills as connections come.
        rc, out, err = self.module.run_command([self.path, '-t', 'list', 'table', 'inet', name],
                                               environ_update=C_LOCALE)
        if rc != 0:
            if 'No such file or directory' in err:
                return ''
            raise NftError('nft list table inet %s failed: %s' % (name, err.strip()),
                           result=dict(rc=rc, stderr=err))
        return out

    def owned_tables(self, table):
        """The names of the collection's tables of an iptables table, every scope's: snf_filter, snf_filter_FW."""
        rc, out, err = self.module.run_command([self.path, 'list', 'tables', 'inet'], environ_update=C_LOCALE)
        if rc != 0:
            raise NftError('nft list tables inet failed: %s' % err.strip(), result=dict(rc=rc, stderr=err))
        base = table_name(table, None)
        return [name for name in re.findall(r'^table inet (\S+)$', out, re.M)
                if name == base or re.fullmatch(re.escape(base) + r'_[A-Za-z0-9]+', name)]

    def _run(self, args, text, what):
        rc, out, err = self.module.run_command([self.path] + args + ['-f', '-'], data=text, binary_data=True,
                                               environ_update=C_LOCALE)
        if rc != 0:
            raise NftError('%s: %s' % (what, err.strip()), result=dict(rc=rc, stderr=err, nft=text))

    def check(self, text):
        self._run(['-c'], text, 'nft -c refused the transaction; nothing was changed')

    def apply(self, text):
        self._run([], text, 'nft -f failed (the kernel applies a transaction whole or not at all)')


def transaction(name, after):
    """The nft -f input that replaces the owned table with `after` ('' removes it), touching nothing else."""
    return 'table inet %s\ndelete table inet %s\n%s' % (name, name, after)


def check_saved(name, table, text):
    """Refuse a saved table (a rollback record's) that the collection would not have written: ValueError.

    The text must read back into the model with nothing left over and re-render to itself, exactly
    like a table read from the kernel; '' (the table did not exist) is accepted.
    """
    if text == '':
        return
    match = _TABLE_NAME.match(text)
    if not match or match.group(1) != name:
        raise ValueError('the saved text is not the table inet %s' % name)
    states, unknown = parse_table(text, table)
    unreadable = [rule.text for owned in states.values() for chain in owned.chains.values()
                  for rule in chain.rules if rule.spec is None]
    if unknown or unreadable:
        raise ValueError('the saved table holds %s, which the collection does not write' % show((unknown
                                                                                                 + unreadable)[0]))
    try:
        again = render_table(name, table, states)
    except ValidationError as exc:
        raise ValueError('the saved table does not render: %s' % exc)
    if again != text:
        raise ValueError('the saved table is not in the form the collection writes')


def restore_transaction(commands, name, table, saved):
    """Put the owned table back as saved, in one nft -f after nft -c; (changed, the transaction).

    commands: an AnsibleModule or the rollback runner's HostCommands. Raises NftError, ValueError.
    """
    check_saved(name, table, saved)
    nft = NftCommand(commands)
    if nft.list_table(name) == saved:
        return False, ''
    text = transaction(name, saved)
    nft.check(text)
    nft.apply(text)
    return True, text


# ---------------------------------------------------------------------------
# Persistence: the owned tables as one nft -f file, from the model.

PERSIST_HEADER = ('#!/usr/sbin/nft -f\n# Written by stateful.netfilter: the tables it owns. Loading it (nft -f) '
                  'replaces each of\n# them whole and touches nothing else (no flush ruleset).\n')


def persistence_file(tables):
    """The nft -f file that restores the owned tables [(name, listing)] at boot, in one transaction.

    A table whose listing is '' is removed. Each table is created (empty) before it is deleted, so the
    file loads whether the table exists or not; the kernel takes the whole file or none of it.
    """
    parts = [PERSIST_HEADER]
    for name, listing in tables:
        if not _TABLE_NAME_WORD.fullmatch(name):
            raise ValidationError('table', '%s is not an owned table name' % show(name))
        parts.append('\n' + transaction(name, listing))
    return ''.join(parts)


def render_params(params, table=None):
    """(owned table name, its listing) for ruleset-shaped parameters (table, scope, family, policies,
    chains): what ruleset with backend nftables and state overridden writes. Raises ValidationError.

    For the roles' persistence: the file is rendered from the same model as the live table.
    """
    from ansible_collections.stateful.netfilter.plugins.module_utils import _engine
    from ansible_collections.stateful.netfilter.plugins.module_utils._rules import check_scope

    table = table or params.get('table') or 'filter'
    full = dict(params)
    full.setdefault('family', 'both')
    scope_prefix = check_scope(full.get('scope'), 'scope')
    _check_policies(full)
    states = dict((family, convert_owned(_engine.desired_owned(full, family, table, scope_prefix),
                                         family, table))
                  for family in _engine.families_of(full['family']))
    name = table_name(table, full.get('scope'))
    return name, render_table(name, table, states)


def _check_policies(params):
    drops = [chain for chain, policy in (params.get('policies') or {}).items() if str(policy).upper() != 'ACCEPT']
    if drops and params['family'] != 'both':
        raise ValidationError('policies.%s' % drops[0], 'with backend nftables a policy is the policy of a base '
                              'chain of the inet table and applies to both families: give family both')


# ---------------------------------------------------------------------------
# The ruleset module on this back end.

def _fail(module, exc, **extra):
    result = dict(getattr(exc, 'result', None) or {})
    result.update(extra)
    module.fail_json(msg=str(exc), param=getattr(exc, 'param', None), **result)


def _locked_listing(module, name):
    """The nft command, the engine lock taken (released by the caller), and the owned table's listing."""
    from ansible_collections.stateful.netfilter.plugins.module_utils import _rollback
    try:
        nft = NftCommand(module)
    except NftError as exc:
        _fail(module, exc)
    try:
        _rollback.engine_lock()
    except (_rollback.RollbackError, OSError) as exc:
        module.fail_json(msg='could not take the engine lock: %s' % exc)
    try:
        listing = nft.list_table(name)
    except NftError as exc:
        _fail(module, exc)
    return nft, listing


def merge_states(parsed):
    """One {family: Owned} of several tables' (different scopes): chains side by side, a DROP policy wins."""
    merged = dict((family, Owned()) for family in FAMILIES)
    for states in parsed:
        for family in FAMILIES:
            merged[family].chains.update(states[family].chains)
            for builtin, policy in states[family].policies.items():
                if merged[family].policies.get(builtin, 'ACCEPT') == 'ACCEPT':
                    merged[family].policies[builtin] = policy
    return merged


def _gathered(module, live, families, table):
    """What state gathered returns of the parsed table: per family, its chains and every built-in chain's policy."""
    from ansible_collections.stateful.netfilter.plugins.module_utils import _engine

    gathered = {}
    for family in families:
        owned = copy.copy(live[family])
        owned.policies = OrderedDict((chain, live[family].policies.get(chain, 'ACCEPT'))
                                     for chain in BUILTIN_CHAINS[table])
        gathered[family] = _engine.gathered_owned(owned, module, family)
    return gathered


def run_ruleset(module):
    """ruleset with backend nftables: overridden, merged, deleted, gathered, rendered; check and diff modes."""
    # Imported here: the engine imports the iptables back end, which this path does not need at import time.
    from ansible_collections.stateful.netfilter.plugins.module_utils import _engine, _rollback
    from ansible_collections.stateful.netfilter.plugins.module_utils._rules import check_scope

    params = module.params
    table, state = params['table'], params['state']
    families = _engine.families_of(params['family'])
    if params.get('rollback_confirm'):
        # A record says which back end armed it: confirming is the same for both.
        try:
            _rollback.check_id(params['rollback_confirm'])
        except ValueError as exc:
            module.fail_json(msg=str(exc), param='rollback_confirm')
        _rollback.confirm(module, params['rollback_confirm'])
    timeout = params.get('rollback_timeout')
    if timeout is not None:
        try:
            _rollback.check_timeout(timeout)
        except ValueError as exc:
            module.fail_json(msg=str(exc), param='rollback_timeout')
    try:
        scope_prefix = check_scope(params['scope'], 'scope')
        _check_policies(params)
        desired = dict((family, convert_owned(owned, family, table))
                       for family, owned in _engine.planned_owned(module).items())
    except ValidationError as exc:
        _fail(module, exc)
    name = table_name(table, params['scope'])
    if state == 'rendered':
        module.exit_json(changed=False, rendered=dict(nftables=render_table(name, table, desired)),
                         table='inet %s' % name)
    nft, listing = _locked_listing(module, name)
    live, unknown = parse_table(listing, table)
    if state == 'gathered':
        names = [name]
        if params['scope'] is None:
            # Without a scope every owned chain of the table is in scope, as on the iptables back end: the
            # tables of all scopes, their chains together, a policy other than ACCEPT in any of them (each
            # table's base chains see every packet).
            try:
                names = nft.owned_tables(table)
                live = merge_states([parse_table(nft.list_table(other), table)[0] for other in names])
            except NftError as exc:
                _fail(module, exc)
        module.exit_json(changed=False, gathered=_gathered(module, live, families, table), backend='nftables',
                         table='inet %s' % name, tables=['inet %s' % other for other in names])
    wanted = {}
    for family in FAMILIES:
        if family not in families:
            wanted[family] = live[family]
            continue
        wanted[family] = _engine.wanted_state(state, live[family], desired[family])
        policies = OrderedDict(live[family].policies)
        policies.update(desired[family].policies)
        wanted[family].policies = policies
    try:
        _check_wanted(wanted, unknown, state, families)
        before = render_table(name, table, live)
        after = render_table(name, table, wanted)
    except ValidationError as exc:
        _fail(module, exc)
    changed = before != after or bool(unknown and state == 'overridden')
    text = transaction(name, after) if changed else ''
    if table == 'filter' and changed:
        _ssh_guard(module, live, wanted, name, timeout)
    # migrate: the scope's iptables chains go once this table is in place (under the same engine lock).
    other = _engine.IptablesSide(module, params, table, scope_prefix, families) if params.get('migrate') else None
    moved = bool(other and other.changed)
    # A pending rollback of this scope would undo the change when it fires. (Policies of other scopes do
    # not meet here as they do in iptables: each scope has base chains of its own.)
    _rollback.guard(module, table, scope_prefix, families, changed=changed or moved)
    armed = None
    if moved and not module.check_mode:
        other.test()
        if timeout is not None and not changed:
            armed = _rollback.arm_nft(module, table, scope_prefix, name, before, timeout, extra=other.saved())
    if changed and not module.check_mode:
        unreadable = unknown + [rule.text for owned in live.values() for chain in owned.chains.values()
                                for rule in chain.rules if rule.spec is None]
        if timeout is not None and unreadable:
            module.fail_json(msg='rollback_timeout: the owned table inet %s holds %s, which the collection cannot '
                                 'read and a rollback would have to restore; nothing was applied'
                                 % (name, show(unreadable[0])), param='rollback_timeout')
        try:
            nft.check(text)
        except NftError as exc:
            _fail(module, exc)
        if timeout is not None:
            armed = _rollback.arm_nft(module, table, scope_prefix, name, before, timeout,
                                      extra=other.saved() if moved else None)
        try:
            nft.apply(text)
        except NftError as exc:
            # The kernel took none of it: the timer has nothing to undo.
            _rollback.cancel(module, armed)
            _fail(module, exc)
    if moved and not module.check_mode:
        failure = other.apply()
        if failure:
            # The iptables chains are as they were: the table goes back too, and the timer has nothing to undo.
            try:
                if changed:
                    nft.apply(transaction(name, listing))
            except NftError as exc:
                module.warn('Could not put the table inet %s back: %s' % (name, exc))
            _rollback.cancel(module, armed)
            module.fail_json(**failure)
    _rollback.release_engine_lock()
    result = dict(changed=changed or moved, nft=text, backend='nftables', table='inet %s' % name)
    if changed or moved:
        # What state gathered returned before the change: the nat_gateway role's stale translations come from it.
        result['gathered_before'] = _gathered(module, live, families, table)
    if other:
        result['migrated'] = other.result()
    if timeout is not None:
        result['rollback'] = _rollback.public(armed, armed=True) if armed else dict(armed=False)
    if module._diff:
        result['diff'] = [dict(before=listing if unknown else before, after=after,
                               before_header='inet %s (before)' % name, after_header='inet %s (after)' % name)]
        result['diff'].extend(other.diff() if moved else [])
    module.exit_json(**result)


def run_nat_rule(module, conntrack=None):
    """nat_rule with backend nftables: the rule in the owned NAT table inet snf_nat_NAT (chains SNF-NAT-POST and
    SNF-NAT-PRE per family), the same options, placement, check and diff modes and conntrack flush as the
    iptables back end (conntrack: module_utils._conntrack, see _engine.need_conntrack)."""
    from ansible_collections.stateful.netfilter.plugins.module_utils import _engine, _rollback
    from ansible_collections.stateful.netfilter.plugins.module_utils._rules import check_scope

    params = module.params
    chain = _engine.NAT_TYPES[params['type']][1]
    try:
        specs = _engine.nat_rule_specs(params)
        rules = dict((family, rule if rule.spec is None or rule.text is None
                      else rule_from_spec(rule.spec, family)) for family, rule in specs.items())
    except ValidationError as exc:
        _fail(module, exc)
    scope_prefix = check_scope(_engine.NAT_SCOPE, 'scope')
    name = table_name('nat', _engine.NAT_SCOPE)
    nft, listing = _locked_listing(module, name)
    live, unknown = parse_table(listing, 'nat')
    if unknown:
        module.fail_json(msg='the owned table inet %s holds %s, which the collection did not write and cannot read; '
                             'nothing was changed (remove it, or replace the table with ruleset, table nat, scope '
                             '%s, state overridden)' % (name, show(unknown[0]), _engine.NAT_SCOPE), param='backend')
    wanted, touched = dict(live), []
    try:
        for family, rule in rules.items():
            wanted[family], changed_specs = _engine.place_nat_rule(live[family], rule, params)
            touched.extend((family, spec) for spec in changed_specs)
        _check_wanted(wanted, unknown, 'merged', FAMILIES)
        before = render_table(name, 'nat', live)
        after = render_table(name, 'nat', wanted)
    except ValidationError as exc:
        _fail(module, exc)
    if params['flush_conntrack']:
        for family, spec in touched:
            inverted = [key for key in _engine.FLUSH_KEYS if negated(spec.get(key))]
            if inverted:
                module.fail_json(msg='flush_conntrack: a conntrack filter cannot match the negated %s %r of the rule; '
                                     'nothing was changed (flush with conntrack_flush instead)'
                                     % (inverted[0], spec[inverted[0]]), param='flush_conntrack')
    conntrack = _engine.need_conntrack(module, conntrack) if params['flush_conntrack'] and touched else None
    changed = before != after
    text = transaction(name, after) if changed else ''
    # A pending rollback of ruleset in this scope would undo the rule when it fires.
    _rollback.guard(module, 'nat', scope_prefix, list(rules), changed=changed)
    if changed and not module.check_mode:
        try:
            nft.check(text)
            nft.apply(text)
        except NftError as exc:
            _fail(module, exc)
    _rollback.release_engine_lock()
    deleted = _engine._flush_conntrack(module, conntrack, touched) if conntrack else 0
    shown = [(family, rule) for family, rule in rules.items() if rule.text]
    result = dict(changed=changed, chain=chain, families=list(rules),
                  rule='add rule inet %s %s %s' % (name, chain_name(shown[0][0], chain), shown[0][1].text)
                  if shown else None,
                  conntrack_deleted=deleted, backend='nftables', table='inet %s' % name, nft=text)
    if module._diff:
        result['diff'] = [dict(before=before, after=after,
                               before_header='inet %s (before)' % name, after_header='inet %s (after)' % name)]
    module.exit_json(**result)


# ---------------------------------------------------------------------------
# SSH guard: would the owned table drop a new connection of the SSH client this task runs over?

# The options the check can evaluate for a new connection; a rule with any other (a rate limit, a
# connection count, a conntrack address) decides nothing for it.
_SSH_DECIDABLE = frozenset(('name', 'comment', 'protocol', 'source', 'destination', 'destination_port', 'syn',
                            'ctstate', 'in_interface', 'jump', 'reject_with', 'log_prefix', 'log_level'))


def _in_network(value, address):
    import ipaddress
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False


def _port_matches(value, port):
    for item in (value if isinstance(value, list) else [value]):
        low, dummy, high = str(item).replace(':', '-').partition('-')
        if int(low) <= port <= int(high or low):
            return True
    return False


def _ssh_matches(spec, flow):
    """Does a rule match the first packet (a SYN) of a new TCP connection of the flow? None: the arrival
    interface decides and is not known. A rule whose match the check cannot evaluate never matches, so an
    accept it cannot prove is not counted and a drop it cannot prove is not feared."""
    if any(key not in _SSH_DECIDABLE for key in spec):
        return False
    checks = []
    if 'protocol' in spec:
        checks.append(spec['protocol'] == 'tcp')
    for key, address in (('source', flow['client']), ('destination', flow['server'])):
        if key in spec:
            networks = plain(spec[key])
            hit = any(_in_network(network, address) for network in
                      (networks if isinstance(networks, list) else [networks]))
            checks.append(hit != negated(spec[key]))
    if 'destination_port' in spec:
        checks.append(_port_matches(plain(spec['destination_port']), flow['port'])
                      != negated(spec['destination_port']))
    if 'syn' in spec:
        checks.append(spec['syn'] is True)
    if 'ctstate' in spec:
        checks.append(('NEW' in plain(spec['ctstate'])) != negated(spec['ctstate']))
    if not all(checks):
        return False
    if 'in_interface' in spec:
        if flow['interface'] is None:
            return None
        pattern, interface = plain(spec['in_interface']), flow['interface']
        hit = interface == pattern or (pattern.endswith('+') and interface.startswith(pattern[:-1]))
        return hit != negated(spec['in_interface'])
    return True


def _walk(owned, name, flow, seen):
    """(verdict, rule) of an owned chain for the flow, None when it falls through; 'route' when unknown."""
    for rule in owned.chains[name].rules:
        if rule.spec is None:
            continue
        hit = _ssh_matches(rule.spec, flow)
        if hit is None:
            return 'route', rule
        if not hit:
            continue
        jump = rule.spec['jump']
        if jump in ('ACCEPT', 'DROP', 'REJECT'):
            return jump, '%s rule %s' % (name, rule.name or show(rule.text))
        if jump == 'RETURN':
            return None
        if jump in owned.chains and jump not in seen:
            found = _walk(owned, jump, flow, seen + (jump,))
            if found:
                return found
    return None


def ssh_verdict(states, connection, route=None):
    """Would the owned filter table {family: Owned} accept a new connection of the SSH client?

    connection is SSH_CONNECTION ('client cport server sport'), route the interface the client's packets
    arrive on (None: not known yet). The base chains of the table on the input hook are walked as the
    kernel does: the first one's jumps in order, then the last one's (an accept in the first sets the
    ACCEPT_MARK bit the last one accepts), then the policy. Returns {accepted, checked, needs_route,
    decided_by}. The ESTABLISHED,RELATED rule is not counted: the next connection Ansible opens is NEW.
    """
    fields = (connection or '').split()
    if len(fields) != 4 or not fields[3].isdigit():
        return dict(accepted=True, checked=False, needs_route=False, decided_by=None)
    family = 'ipv6' if ':' in fields[0] else 'ipv4'
    flow = dict(client=fields[0].partition('%')[0], server=fields[2].partition('%')[0], port=int(fields[3]),
                interface=route)
    owned = states.get(family) or Owned()
    for position in ('first', 'last'):
        found = None
        for name, chain in owned.chains.items():
            if chain.hook == ('INPUT', position):
                found = _walk(owned, name, flow, (name,))
                if found:
                    break
        if found and found[0] == 'route':
            return dict(accepted=False, checked=False, needs_route=True, decided_by=found[1])
        if found:
            return dict(accepted=found[0] == 'ACCEPT', checked=True, needs_route=False,
                        decided_by=None if found[0] == 'ACCEPT' else found[1])
    if owned.policies.get('INPUT', 'ACCEPT') != 'ACCEPT':
        return dict(accepted=False, checked=True, needs_route=False,
                    decided_by='the INPUT policy %s' % owned.policies['INPUT'])
    return dict(accepted=True, checked=True, needs_route=False, decided_by=None)


def _ssh_guard(module, live, wanted, name, timeout):
    """Refuse, before any change, a change that makes the owned table drop the next SSH connection of this
    task's client, unless it comes with rollback_timeout (the commit-confirm undoes it then)."""
    import os
    connection = os.environ.get('SSH_CONNECTION')
    if timeout is not None or not connection:
        return
    route = None
    for dummy in range(2):
        after = ssh_verdict(wanted, connection, route)
        if after['needs_route']:
            ip = module.get_bin_path('ip')
            rc, out, err = module.run_command([ip, 'route', 'get', connection.split()[0]]) if ip else (1, '', '')
            match = re.search(r'\bdev (\S+)', out) if rc == 0 else None
            route = match.group(1) if match else ''
            continue
        break
    if after['accepted'] or not after['checked'] or not ssh_verdict(live, connection, route)['accepted']:
        return
    client, dummy, server, port = connection.split()
    module.fail_json(msg='refusing to apply: a new SSH connection from %s to %s port %s (the connection this task '
                         'runs over) would be dropped by %s of table inet %s. Accept it in the owned chain, or '
                         'apply with rollback_timeout so that the change is undone unless it is confirmed over a '
                         'new connection. Nothing was changed.' % (client, server, port, after['decided_by'], name),
                     param='policies.INPUT' if after['decided_by'].startswith('the INPUT policy') else 'chains')


def _check_wanted(wanted, unknown, state, families):
    """Refuse to write back what the model cannot read, and jumps to chains that will not exist."""
    if unknown and (state != 'overridden' or len(families) < len(FAMILIES)):
        raise ValidationError('state', 'the owned table holds %s, which the collection did not write and cannot '
                                       'read; replace it with state overridden and family both' % show(unknown[0]))
    for family, owned in wanted.items():
        for name, chain in owned.chains.items():
            for rule in chain.rules:
                if rule.spec is None:
                    raise ValidationError('chains', 'the owned chain %s.%s holds a rule the collection cannot read: '
                                                    '%s; it is never written back' % (family, name, show(rule.text)))
                jump = rule.spec.get('jump', '')
                if jump.startswith(PREFIX) and jump not in owned.chains:
                    raise ValidationError('jump', 'rule %s of chain %s jumps to %s, which is not defined'
                                          % (show(rule.text), name, jump))
