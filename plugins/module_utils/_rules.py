# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rule model: validate, render, parse and plan iptables rules.

Private to the collection. Pure Python, no I/O: the backend
(_iptables.py) reads and writes the kernel, this file decides what to write.

A rule is a dict with the keys of RULE_KEYS (the same keys the ruleset
module takes). make_rule() turns user input into a *spec*: the same dict
with every value in the canonical form iptables-save prints, and with empty
values dropped. render() turns a spec into iptables-save syntax; parse_rule()
turns a line of iptables-save output back into a spec. Two rules are equal
when their rendered text is equal, so a rule read from the kernel compares
equal to the rule the user wrote whatever spelling either used.

The collection owns the chains whose names start with PREFIX. Each owned
chain is hooked from at most one built-in chain by one jump rule
('-j SNF-...', no match). plan() computes one iptables-restore --noflush
transaction that turns the owned chains, their hooks and the managed
built-in policies of one table into the wanted state, and touches nothing
else.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import unicodedata
from collections import OrderedDict

from ansible_collections.stateful.netfilter.plugins.module_utils._validate import (
    FORBIDDEN_CATEGORIES,
    SHOW_MAX,
    ValidationError,
    check_comment,
    check_interface,
    check_text,
    family_of,
    is_digits,
    parse_address,
    parse_network,
    parse_port_range,
    parse_protocol,
    show,
)

PREFIX = 'SNF-'
NAME_TAG = 'snf:'
# The kernel keeps 255 bytes of a comment and silently cuts the rest
# (measured on nft and legacy: 256 bytes stored as 255, a cut UTF-8
# character stored as invalid bytes).
COMMENT_LIMIT = 255
CHAIN_NAME_MAX = 28
LOG_PREFIX_MAX = 29

BUILTIN_CHAINS = {
    'filter': ('INPUT', 'FORWARD', 'OUTPUT'),
    'nat': ('PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'),
    'mangle': ('PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'),
    'raw': ('PREROUTING', 'OUTPUT'),
}
POLICIES = ('ACCEPT', 'DROP')
TARGETS = {
    'filter': ('ACCEPT', 'DROP', 'REJECT', 'LOG', 'RETURN'),
    'nat': ('ACCEPT', 'RETURN', 'LOG', 'SNAT', 'DNAT', 'MASQUERADE', 'REDIRECT', 'NETMAP'),
    'mangle': ('ACCEPT', 'DROP', 'RETURN', 'LOG', 'TCPMSS'),
    'raw': ('ACCEPT', 'DROP', 'RETURN', 'LOG', 'CT'),
}
RULE_KEYS = (
    'name', 'family', 'protocol', 'source', 'destination', 'in_interface', 'out_interface',
    'source_port', 'destination_port', 'syn', 'icmp_type', 'ctstate', 'limit', 'limit_burst', 'comment',
    'jump', 'reject_with', 'log_prefix', 'log_level', 'to_source', 'to_destination', 'to_ports',
    'random', 'random_fully', 'persistent',
    'port', 'tcp_flags', 'ctorigsrc', 'ctorigdst', 'ctreplsrc', 'ctrepldst', 'ctorigsrcport', 'ctorigdstport',
    'ctreplsrcport', 'ctrepldstport', 'ctstatus', 'ctdir', 'helper', 'notrack', 'set_mss', 'clamp_mss_to_pmtu',
    'to_prefix', 'ct_timeout',
) + (
    'connlimit_above', 'connlimit_upto', 'connlimit_mask', 'connlimit_daddr',
    'hashlimit_upto', 'hashlimit_above', 'hashlimit_burst', 'hashlimit_mode', 'hashlimit_name', 'hashlimit_srcmask',
    'hashlimit_dstmask', 'hashlimit_htable_size', 'hashlimit_htable_max', 'hashlimit_htable_gcinterval',
    'hashlimit_htable_expire',
)
# Options a leading '!' negates ('!10.0.0.0/8', '!eth0', '!22', ['!', 80, 443]), as iptables' '! -s ...'.
NEGATABLE = (
    'source', 'destination', 'in_interface', 'out_interface', 'source_port', 'destination_port', 'port',
    'tcp_flags', 'ctstate', 'ctorigsrc', 'ctorigdst', 'ctreplsrc', 'ctrepldst', 'ctorigsrcport', 'ctorigdstport',
    'ctreplsrcport', 'ctrepldstport', 'ctstatus',
)
NOT = '!'
# The conntrack match's options in the order libxt_conntrack prints them (after --ctstate).
CT_ADDRESSES = ('ctorigsrc', 'ctorigdst', 'ctreplsrc', 'ctrepldst')
CT_PORTS = ('ctorigsrcport', 'ctorigdstport', 'ctreplsrcport', 'ctrepldstport')
CT_KEYS = ('ctstate',) + CT_ADDRESSES + CT_PORTS + ('ctstatus', 'ctdir')
# Conntrack status bits in the order iptables prints them (NONE: no bit set).
CTSTATUS = ('EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED')
CTDIRS = ('ORIGINAL', 'REPLY')
# TCP flags in the order libxt_tcp prints them; ALL and NONE are its shorthands.
TCP_FLAGS = ('FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG')
# Conntrack helpers of the kernel (nf_conntrack_*): name -> (protocols, families). A helper only
# attaches to a connection of its protocol (measured: the kernel refuses CT --helper ftp without -p tcp).
HELPERS = {
    'ftp': (('tcp',), ('ipv4', 'ipv6')),
    'tftp': (('udp',), ('ipv4', 'ipv6')),
    'irc': (('tcp',), ('ipv4',)),
    'sip': (('udp', 'tcp'), ('ipv4', 'ipv6')),
    'amanda': (('udp',), ('ipv4', 'ipv6')),
    'pptp': (('tcp',), ('ipv4',)),
    'sane': (('tcp',), ('ipv4', 'ipv6')),
    'snmp': (('udp',), ('ipv4',)),
    'snmp_trap': (('udp',), ('ipv4',)),
    'netbios-ns': (('udp',), ('ipv4',)),
    'RAS': (('udp',), ('ipv4', 'ipv6')),
    'Q.931': (('tcp',), ('ipv4', 'ipv6')),
}
# Conntrack timeout policies (nftables `ct timeout` objects): the states of each protocol in the order nft
# prints them, with the value nft gives a state the policy leaves out (nft 1.0.6, measured: it prints only the
# states whose value differs from these). The kernel keeps a timeout in jiffies (32 bits): at most 2147483 s.
CT_TIMEOUT_STATES = {
    'tcp': (('syn_sent', 120), ('syn_recv', 60), ('established', 432000), ('fin_wait', 120), ('close_wait', 60),
            ('last_ack', 30), ('time_wait', 120), ('close', 10), ('syn_sent2', 120), ('retrans', 300),
            ('unack', 300)),
    'udp': (('unreplied', 30), ('replied', 120)),
}
CT_TIMEOUT_MAX = 2147483
# --set-mss: from the kernel's smallest TCP MSS (TCP_MIN_MSS) to the largest an IP packet can carry.
MSS_RANGE = (88, 65495)
# The hooks TCPMSS --clamp-mss-to-pmtu works in (xt_TCPMSS refuses the others).
CLAMP_HOOKS = ('FORWARD', 'OUTPUT', 'POSTROUTING')
# What NETMAP rewrites, by the hook its chain is reached from (xt_NETMAP: the destination before
# routing and in OUTPUT, the source in POSTROUTING and INPUT), and the match on that address.
NETMAP_SIDES = {'PREROUTING': 'destination', 'OUTPUT': 'destination', 'POSTROUTING': 'source', 'INPUT': 'source'}

# Order in which iptables prints conntrack states.
CTSTATES = ('INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT')
# Protocols iptables has a port match for (udplite, which conntrack knows, has none).
PORT_PROTOCOLS = ('tcp', 'udp', 'sctp')
# Protocols of the multiport match (xt_multiport checks the protocol number) and
# the kernel's limit of ports in one match (XT_MULTI_PORTS; a range takes two).
MULTIPORT_PROTOCOLS = ('tcp', 'udp', 'udplite', 'sctp', 'dccp')
MULTIPORT_MAX = 15
# --syn as iptables-save prints it (libxt_tcp): the flags examined, the flags set.
SYN_FLAGS = ('FIN,SYN,RST,ACK', 'SYN')
# What a rule reached directly from a built-in chain cannot use: the interface
# the kernel does not know at that hook (the rule would never match; iptables
# only refuses it in the built-in chain itself), and the NAT targets the hook
# refuses.
HOOK_LIMITS = {
    'PREROUTING': ('out_interface', ('SNAT', 'MASQUERADE')),
    'INPUT': ('out_interface', ('DNAT', 'REDIRECT', 'MASQUERADE')),
    'FORWARD': (None, ()),
    'OUTPUT': ('in_interface', ('SNAT', 'MASQUERADE')),
    'POSTROUTING': ('in_interface', ('DNAT', 'REDIRECT')),
}
# Protocol names as iptables-save prints them where they differ from _validate's.
SAVE_PROTOCOL_NAMES = {58: 'ipv6-icmp'}
SPEC_PROTOCOL_NAMES = {
    1: 'icmp', 6: 'tcp', 17: 'udp', 33: 'dccp', 47: 'gre', 50: 'esp', 51: 'ah', 58: 'icmpv6',
    132: 'sctp', 136: 'udplite',
}
ICMP_TYPES = {
    'ipv4': {
        'any': 'any', 'echo-reply': '0', 'destination-unreachable': '3', 'network-unreachable': '3/0',
        'host-unreachable': '3/1', 'protocol-unreachable': '3/2', 'port-unreachable': '3/3',
        'fragmentation-needed': '3/4', 'source-route-failed': '3/5', 'network-unknown': '3/6',
        'host-unknown': '3/7', 'network-prohibited': '3/9', 'host-prohibited': '3/10',
        'TOS-network-unreachable': '3/11', 'TOS-host-unreachable': '3/12',
        'communication-prohibited': '3/13', 'host-precedence-violation': '3/14',
        'precedence-cutoff': '3/15', 'source-quench': '4', 'redirect': '5', 'network-redirect': '5/0',
        'host-redirect': '5/1', 'TOS-network-redirect': '5/2', 'TOS-host-redirect': '5/3',
        'echo-request': '8', 'router-advertisement': '9', 'router-solicitation': '10',
        'time-exceeded': '11', 'ttl-zero-during-transit': '11/0', 'ttl-zero-during-reassembly': '11/1',
        'parameter-problem': '12', 'ip-header-bad': '12/0', 'required-option-missing': '12/1',
        'timestamp-request': '13', 'timestamp-reply': '14', 'address-mask-request': '17',
        'address-mask-reply': '18',
    },
    'ipv6': {
        'destination-unreachable': '1', 'no-route': '1/0', 'communication-prohibited': '1/1',
        'beyond-scope': '1/2', 'address-unreachable': '1/3', 'port-unreachable': '1/4',
        'failed-policy': '1/5', 'reject-route': '1/6', 'packet-too-big': '2', 'time-exceeded': '3',
        'ttl-zero-during-transit': '3/0', 'ttl-zero-during-reassembly': '3/1', 'parameter-problem': '4',
        'bad-header': '4/0', 'unknown-header-type': '4/1', 'unknown-option': '4/2',
        'echo-request': '128', 'echo-reply': '129', 'mld-listener-query': '130',
        'mld-listener-report': '131', 'mld-listener-done': '132', 'router-solicitation': '133',
        'router-advertisement': '134', 'neighbour-solicitation': '135', 'neighbor-solicitation': '135',
        'neighbour-advertisement': '136', 'neighbor-advertisement': '136', 'redirect': '137',
    },
}
REJECT_WITH = {
    'ipv4': ('icmp-port-unreachable', 'icmp-net-unreachable', 'icmp-host-unreachable',
             'icmp-proto-unreachable', 'icmp-net-prohibited', 'icmp-host-prohibited',
             'icmp-admin-prohibited', 'tcp-reset'),
    'ipv6': ('icmp6-port-unreachable', 'icmp6-no-route', 'icmp6-adm-prohibited',
             'icmp6-addr-unreachable', 'icmp6-policy-fail', 'icmp6-reject-route', 'tcp-reset'),
}
# connlimit (per-source or per-destination connection counts, from conntrack) and hashlimit
# (token buckets per address/port): the options in the order libxt_connlimit/libxt_hashlimit save them.
CONNLIMIT_KEYS = ('connlimit_above', 'connlimit_upto', 'connlimit_mask', 'connlimit_daddr')
CONNLIMIT_MAX = 4294967295
HASHLIMIT_MODES = ('srcip', 'srcport', 'dstip', 'dstport')
HASHLIMIT_TABLE = (('hashlimit_htable_size', '--hashlimit-htable-size'),
                   ('hashlimit_htable_max', '--hashlimit-htable-max'),
                   ('hashlimit_htable_gcinterval', '--hashlimit-htable-gcinterval'),
                   ('hashlimit_htable_expire', '--hashlimit-htable-expire'))
HASHLIMIT_MASKS = (('hashlimit_srcmask', '--hashlimit-srcmask', 'srcip'),
                   ('hashlimit_dstmask', '--hashlimit-dstmask', 'dstip'))
HASHLIMIT_KEYS = ('hashlimit_upto', 'hashlimit_above', 'hashlimit_burst', 'hashlimit_mode', 'hashlimit_name') + \
    tuple(name for name, dummy in HASHLIMIT_TABLE) + tuple(name for name, dummy, dummy2 in HASHLIMIT_MASKS)
# libxt_hashlimit: rates in 1/1000000 s (XT_HASHLIMIT_SCALE_v2), burst 1-1000000 (default 5), garbage
# collection every 1000 ms by default, entries expire after one unit of the rate as written by default.
LIMIT_KEYS = CONNLIMIT_KEYS + HASHLIMIT_KEYS
HASHLIMIT_SCALE = 1000000
HASHLIMIT_BURST_MAX = 1000000
DEFAULT_HASHLIMIT_BURST = 5
DEFAULT_HASHLIMIT_GCINTERVAL = 1000
# The kernel refuses a burst whose credit overflows (measured: 1/day with burst 2, 2/day with burst 4;
# its test wraps around, so larger products pass by accident): the model allows a full burst to
# take at most one day to refill.
HASHLIMIT_REFILL_MAX = 86400
UNIT_SECONDS = (('day', 86400), ('hour', 3600), ('min', 60), ('sec', 1))
_HASHLIMIT_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}')
LOG_LEVELS = ('emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug')
LOG_LEVEL_ALIASES = {'err': 3, 'warn': 4, 'panic': 0}
DEFAULT_LOG_LEVEL = 4
DEFAULT_LIMIT_BURST = 5
# Units of --limit with their length in 1/10000 s (XT_LIMIT_SCALE), longest first.
LIMIT_UNITS = (('day', 864000000), ('hour', 36000000), ('min', 600000), ('sec', 10000))
RATE_UNIT_WORDS = {'day': 'day', 'hour': 'hour', 'min': 'minute', 'sec': 'second'}
# Target options: which targets take them.
TARGET_OPTIONS = {
    'reject_with': ('REJECT',),
    'log_prefix': ('LOG',),
    'log_level': ('LOG',),
    'to_source': ('SNAT',),
    'to_destination': ('DNAT',),
    'to_ports': ('MASQUERADE', 'REDIRECT'),
    'random': ('SNAT', 'DNAT', 'MASQUERADE', 'REDIRECT'),
    'random_fully': ('SNAT', 'MASQUERADE'),
    'persistent': ('SNAT', 'DNAT'),
    'helper': ('CT',),
    'notrack': ('CT',),
    'ct_timeout': ('CT',),
    'set_mss': ('TCPMSS',),
    'clamp_mss_to_pmtu': ('TCPMSS',),
    'to_prefix': ('NETMAP',),
}
# Order of the flags after a NAT target, as iptables-save prints them.
NAT_FLAGS = (('random', '--random'), ('random_fully', '--random-fully'), ('persistent', '--persistent'))
# Flags of the CT and TCPMSS targets.
TARGET_FLAGS = (('notrack', '--notrack'), ('clamp_mss_to_pmtu', '--clamp-mss-to-pmtu'))

# Every pattern is used with fullmatch(): '$' would also accept a trailing newline.
_CHAIN_NAME = re.compile(r'%s[A-Za-z0-9_-]+' % re.escape(PREFIX))
_RULE_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,63}')
_SCOPE = re.compile(r'[A-Za-z0-9_]{1,16}')
_PLAIN = re.compile(r'[A-Za-z0-9_-]+')
_RATE = re.compile(r'([0-9]+)/([a-z]+)')
_ICMP_NUMBER = re.compile(r'([0-9]{1,3})(?:/([0-9]{1,3}))?')


def rule_argument_spec():
    """The options a rule of ruleset and a nat_rule share: name, matches, translation, comment."""
    return dict(
        name=dict(type='str'),
        protocol=dict(type='str'),
        source=dict(type='raw'),
        destination=dict(type='raw'),
        in_interface=dict(type='str'),
        out_interface=dict(type='str'),
        source_port=dict(type='raw'),
        destination_port=dict(type='raw'),
        comment=dict(type='str'),
        to_source=dict(type='str'),
        to_destination=dict(type='str'),
        to_ports=dict(type='raw'),
        random=dict(type='bool', default=False),
        random_fully=dict(type='bool', default=False),
        persistent=dict(type='bool', default=False),
    )


# ---------------------------------------------------------------------------
# Quoting, as xtables_save_string() prints and iptables-restore reads it.

def quote(value):
    """Quote a free-text value the way iptables-save does."""
    if _PLAIN.fullmatch(value):
        return value
    return '"%s"' % re.sub(r'(["\\\'])', r'\\\1', value)


def split_args(text):
    """Split the arguments of an iptables-save rule line into tokens."""
    tokens = []
    pos, end = 0, len(text)
    while pos < end:
        if text[pos] == ' ':
            pos += 1
        elif text[pos] == '"':
            pos += 1
            buf = []
            while pos < end and text[pos] != '"':
                if text[pos] == '\\' and pos + 1 < end:
                    pos += 1
                buf.append(text[pos])
                pos += 1
            if pos >= end:
                raise ValueError('unterminated quote in %s' % show(text))
            pos += 1
            tokens.append(''.join(buf))
        else:
            stop = text.find(' ', pos)
            stop = end if stop < 0 else stop
            tokens.append(text[pos:stop])
            pos = stop
    return tokens


# ---------------------------------------------------------------------------
# Validation and canonicalisation of one rule.

def _given(value):
    return value is not None and value != '' and value is not False and value != []


def check_chain_name(value, param):
    if not isinstance(value, str) or not _CHAIN_NAME.fullmatch(value):
        raise ValidationError(
            param, '%s is not an owned chain name (%s followed by letters, digits, _ or -)' % (show(value), PREFIX))
    if len(value) > CHAIN_NAME_MAX:
        raise ValidationError(param, '%s is longer than %d characters' % (show(value), CHAIN_NAME_MAX))
    return value


def check_scope(value, param):
    """Return the chain-name prefix of a scope ('FW' -> 'SNF-FW-'), or PREFIX for none."""
    if value is None:
        return PREFIX
    if not isinstance(value, str) or not _SCOPE.fullmatch(value):
        raise ValidationError(param, '%s is not a scope (1-16 letters, digits or _)' % (show(value),))
    return '%s%s-' % (PREFIX, value)


def infer_family(raw):
    """The family a rule's own content implies ('ipv4', 'ipv6'), or None.

    Looks at the explicit family, the addresses (also the conntrack match's),
    the ICMP protocol and a helper of one family (irc), in that order;
    unparsable values are left for make_rule() to report.
    """
    if raw.get('family'):
        return raw['family']
    for key in ('source', 'destination', 'to_source', 'to_destination', 'to_prefix') + CT_ADDRESSES:
        value = raw.get(key)
        if key in ('source', 'destination') and isinstance(value, (list, tuple)):
            # A list of networks: its first one (make_rule checks that the others are of the same family).
            value = [item for item in value if isinstance(item, str) and item.strip() != NOT][:1]
            value = value[0] if value else None
        if not _given(value) or not isinstance(value, str):
            continue
        text = value.strip().lstrip(NOT).strip()
        if text.startswith('['):
            text = text[1:].split(']')[0]
        elif text.count(':') == 1:
            text = text.split(':')[0]
        text = text.split('/')[0].split('-')[0]
        try:
            return family_of(parse_address(text, key))
        except ValidationError:
            continue
    protocol = raw.get('protocol')
    if _given(protocol):
        try:
            number = parse_protocol(protocol, 'protocol')
        except ValidationError:
            return None
        if number in (1, 58):
            return {1: 'ipv4', 58: 'ipv6'}[number]
    helper = raw.get('helper')
    if isinstance(helper, str):
        families = dict((name.lower(), fams) for name, (dummy, fams) in HELPERS.items()).get(helper.strip().lower())
        if families and len(families) == 1:
            return families[0]
    return None


def split_not(value):
    """(negated, value without its '!'): '!10.0.0.0/8', '! eth0', ['!', 80, 443] and ['!80', 443] are negated."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(NOT):
            return True, text[1:].strip()
        return False, value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        first = value[0].strip()
        if first == NOT:
            return True, list(value[1:])
        if first.startswith(NOT):
            return True, [first[1:].strip()] + list(value[1:])
    return False, value


def negated(value):
    """True when a spec value is negated ('!22', ['!', '80', '443'])."""
    if isinstance(value, str):
        return value.startswith(NOT)
    return isinstance(value, list) and bool(value) and value[0] == NOT


def plain(value):
    """A spec value without its negation."""
    if isinstance(value, str):
        return value[1:] if value.startswith(NOT) else value
    return value[1:] if negated(value) else value


def _with_not(value, neg):
    if not neg:
        return value
    return [NOT] + value if isinstance(value, list) else NOT + value


def _args(spec, name, flag):
    """['!', flag, value] or [flag, value] for a spec value (a list is joined with commas)."""
    value = spec[name]
    if isinstance(value, str):
        return [NOT, flag, value[1:]] if value[:1] == NOT else [flag, value]
    text = plain(value)
    if isinstance(text, list):
        text = ','.join(text)
    return ([NOT] if negated(value) else []) + [flag, str(text)]


def _ports(value, param):
    low, high = parse_port_range(value, param, allow_any=True)
    if (low, high) == (0, 65535):
        return None
    return str(low) if low == high else '%d:%d' % (low, high)


def _networks(value, param, family):
    """Canonical source/destination: one network as text ('10.0.0.0/8'), several as a sorted list, or None (any).

    A list (or a comma-separated string) of networks of one family is collapsed
    to the fewest networks that cover the same addresses (10.0.0.0/24 and
    10.0.1.0/24 are 10.0.0.0/23), so that two spellings of one set are one
    rule; one network left keeps the form of a single network. Each element
    is checked on its own (param[i] names it).
    """
    import ipaddress
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str) and ',' in value:
        items = value.split(',')
    else:
        items = None
    if items is None or len(items) == 1:
        net = parse_network(items[0] if items else value, param, family)
        return str(net) if net.prefixlen else None
    nets = []
    for index, item in enumerate(items):
        nets.append(parse_network(item.strip() if isinstance(item, str) else item, '%s[%d]' % (param, index),
                                  family))
    nets = list(ipaddress.collapse_addresses(nets))
    if any(not net.prefixlen for net in nets):
        return None
    return str(nets[0]) if len(nets) == 1 else [str(net) for net in nets]


def _port_list(value, param):
    """Canonical ports of a match: a port or range as text ('22', '1000:2000'), several as a list, or None (any).

    A list or a comma-separated string of two or more ports and ranges becomes
    a multiport match; one element keeps the form of a single port.
    """
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str) and ',' in value:
        items = value.split(',')
    else:
        return _ports(value, param)
    if len(items) == 1:
        return _ports(items[0], param)
    ports = []
    for index, item in enumerate(items):
        low, high = parse_port_range(item.strip() if isinstance(item, str) else item, '%s[%d]' % (param, index))
        # multiport refuses a range whose ends are equal ('invalid portrange').
        ports.append(str(low) if low == high else '%d:%d' % (low, high))
    count = sum(2 if ':' in port else 1 for port in ports)
    if count > MULTIPORT_MAX:
        raise ValidationError(param, '%d ports given (a range counts 2); the kernel takes at most %d in a list'
                              % (count, MULTIPORT_MAX))
    return ports


def _nat_ports(text, param):
    low, high = parse_port_range(text, param)
    return str(low) if low == high else '%d-%d' % (low, high)


def _nat_target(value, param, family, shift=False):
    """Canonical --to-source/--to-destination: ADDR[-ADDR][:PORT[-PORT[/BASE]]], IPv6 in brackets with ports.

    An IPv6 range is 'dead::beef-dead::fee7' or, with ports, '[a::1-a::9]:1025-65535'. shift
    allows DNAT's port shifting ('10.0.0.1:1000-2000/3000': ports 3000-4000 of the packet map to
    1000-2000; iptables 1.8.9 and the kernels here print and honour it). Returns (text, has_ports).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(param, 'expected an address, got %s' % (show(value),))
    text = check_text(value, param).strip()
    ports = None
    if text.startswith('['):
        addr_text, sep, rest = text[1:].partition(']')
        if not sep or (rest and not rest.startswith(':')):
            raise ValidationError(param, '%s is not [address]:port' % (show(text),))
        ports = rest[1:] or None
    elif text.count(':') == 1:
        addr_text, ports = text.split(':')
    else:
        addr_text = text
    parts = addr_text.split('-')
    if len(parts) > 2:
        raise ValidationError(param, '%s is not an address or a range of addresses' % (show(text),))
    addrs = [parse_address(part, param, family) for part in parts]
    if len(addrs) == 2 and addrs[0] > addrs[1]:
        raise ValidationError(param, 'address range %s-%s is reversed' % (addrs[0], addrs[1]))
    out = str(addrs[0]) if len(addrs) == 1 or addrs[0] == addrs[1] else '%s-%s' % tuple(addrs)
    if ports is not None:
        ports, slash, base = ports.partition('/')
        ports = _nat_ports(ports, param)
        if slash:
            if not shift:
                raise ValidationError(param, '%s: port shifting (/BASE) is for DNAT only' % (show(text),))
            if '-' not in ports:
                raise ValidationError(param, '%s: port shifting (/BASE) needs a range of ports' % (show(text),))
            low, high = parse_port_range(base, param)
            if low != high:
                raise ValidationError(param, '%s: the base of a port shift is one port' % (show(text),))
            ports = '%s/%d' % (ports, low)
        out = '[%s]:%s' % (out, ports) if addrs[0].version == 6 else '%s:%s' % (out, ports)
    return out, ports is not None


def _icmp_type(value, param, protocol, family):
    wanted = 'icmp' if family == 'ipv4' else 'icmpv6'
    if protocol != wanted:
        raise ValidationError(param, 'needs protocol %s in an %s rule' % (wanted, family))
    text = check_text(str(value), param).strip()
    names = ICMP_TYPES[family]
    if text in names:
        return names[text]
    match = _ICMP_NUMBER.fullmatch(text)
    if not match or int(match.group(1)) > 255 or (match.group(2) and int(match.group(2)) > 255):
        raise ValidationError(param, '%s is not an ICMP type (a name such as echo-request, a number or type/code)' % (show(text),))
    return '/'.join(str(int(g)) for g in match.groups() if g is not None)


def canonical_rate(value, param):
    """Canonical --limit rate, as the kernel prints it back (60/min -> 1/sec)."""
    match = _RATE.fullmatch(check_text(str(value), param).strip().lower())
    unit = match and [mult for name, mult in LIMIT_UNITS if RATE_UNIT_WORDS[name].startswith(match.group(2))]
    if not unit:
        raise ValidationError(param, '%s is not a rate (e.g. 5/min, 3/sec, 10/hour, 1/day)' % (show(value),))
    count = int(match.group(1))
    if count == 0 or unit[0] // count == 0:
        raise ValidationError(param, 'rate %s is out of range' % (show(value),))
    period = unit[0] // count
    # The unit choice of libxt_limit's print_rate().
    index = 1
    while index < len(LIMIT_UNITS):
        unit_mult = LIMIT_UNITS[index][1]
        if period > unit_mult or unit_mult // period < unit_mult % period:
            break
        index += 1
    name, unit_mult = LIMIT_UNITS[index - 1]
    return '%d/%s' % (unit_mult // period, name)


def _log_level(value, param):
    if isinstance(value, bool):
        raise ValidationError(param, 'expected a level, got %s' % (show(value),))
    text = str(value).strip().lower()
    if is_digits(text) and int(text) < len(LOG_LEVELS):
        return int(text)
    if text in LOG_LEVELS:
        return LOG_LEVELS.index(text)
    if text in LOG_LEVEL_ALIASES:
        return LOG_LEVEL_ALIASES[text]
    raise ValidationError(param, '%s is not a log level (0-7 or %s)' % (show(value), ', '.join(LOG_LEVELS)))


def check_hook(spec, builtin, param=''):
    """Fail when a rule cannot work in a chain hooked from `builtin`."""
    interface, targets = HOOK_LIMITS[builtin]
    if interface in spec:
        raise ValidationError(param + interface, 'is not known in %s, the rule would never match' % builtin)
    if spec['jump'] in targets:
        raise ValidationError(param + 'jump', '%s cannot be used in a chain hooked from %s' % (spec['jump'], builtin))
    if spec.get('clamp_mss_to_pmtu') and builtin not in CLAMP_HOOKS:
        raise ValidationError(param + 'clamp_mss_to_pmtu', 'works in chains hooked from %s only (the kernel '
                                                           'refuses it in %s)' % (', '.join(CLAMP_HOOKS), builtin))
    if spec['jump'] == 'NETMAP':
        check_netmap(spec, builtin, param)


def check_netmap(spec, builtin, param=''):
    """Fail when NETMAP's match on the address it rewrites has another prefix length than to_prefix.

    xt_NETMAP keeps the host bits of the packet's address below the length of
    the --to prefix and replaces the rest: a match of another length would map
    several networks onto one (longer --to) or a part of a network to a
    different block than written (shorter). 1:1 means equal lengths.
    """
    side = NETMAP_SIDES[builtin]
    match = spec.get(side)
    if not match or negated(match):
        return
    if isinstance(match, list):
        raise ValidationError(param + side, 'NETMAP maps one network 1:1 to to_prefix: a list of networks (%s) '
                                            'cannot be mapped; give one rule per network' % ', '.join(match))
    length = int(match.partition('/')[2] or (32 if ':' not in match else 128))
    to_length = int(spec['to_prefix'].partition('/')[2])
    if length != to_length:
        raise ValidationError(param + 'to_prefix', '%s is a /%d, but NETMAP from %s maps the %s, matched as %s '
                                                   '(a /%d): a 1:1 mapping needs prefixes of the same length'
                              % (spec['to_prefix'], to_length, builtin, side, match, length))


def kernel_comment(spec):
    """The text stored in the kernel's comment match: 'snf:NAME comment'."""
    parts = []
    if spec.get('name'):
        parts.append(NAME_TAG + spec['name'])
    if spec.get('comment'):
        parts.append(spec['comment'])
    return ' '.join(parts) or None


def _names(value, param, what):
    """Upper-case names from a list or a comma-separated string."""
    items = value if isinstance(value, (list, tuple)) else [value]
    names = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ValidationError(param, 'expected %s, got %s' % (what, show(item)))
        names.extend(part.strip().upper() for part in check_text(str(item), param).split(','))
    return names


def _tcp_flags(value, param):
    """Canonical --tcp-flags 'MASK COMP' from 'SYN,RST SYN' or {flags: [SYN, RST], flags_set: [SYN]}."""
    if isinstance(value, dict):
        extra = sorted(set(value) - set(['flags', 'flags_set']))
        if extra or not _given(value.get('flags')):
            raise ValidationError(param, 'expected {flags: [...], flags_set: [...]} or "FLAGS SET", got %s'
                                  % (show(value),))
        parts = [value['flags'], value.get('flags_set') or 'NONE']
    elif isinstance(value, str):
        parts = check_text(value, param).split()
        if len(parts) != 2:
            raise ValidationError(param, '%s is not "FLAGS SET" (e.g. "SYN,RST SYN" or "ALL NONE")' % (show(value),))
    else:
        raise ValidationError(param, 'expected "FLAGS SET" or {flags: [...], flags_set: [...]}, got %s'
                              % (show(value),))
    sets = []
    for part in parts:
        names = set()
        for flag in _names(part, param, 'TCP flags'):
            if flag == 'ALL':
                names.update(TCP_FLAGS)
            elif flag in TCP_FLAGS:
                names.add(flag)
            elif flag != 'NONE':
                raise ValidationError(param, '%s is not a TCP flag (%s, ALL, NONE)'
                                      % (show(flag), ', '.join(TCP_FLAGS)))
        sets.append(names)
    mask, comp = sets
    if not mask:
        raise ValidationError(param, 'examines no flag: it would match every TCP packet; leave it out')
    if comp - mask:
        raise ValidationError(param, '%s set but not among the flags examined (%s): the rule would never match'
                              % (','.join(f for f in TCP_FLAGS if f in comp - mask),
                                 ','.join(f for f in TCP_FLAGS if f in mask)))
    return ' '.join(','.join(f for f in TCP_FLAGS if f in names) or 'NONE' for names in (mask, comp))


def _make_conntrack(raw, value, neg, spec, family, key, matches_nothing):
    """The options of the conntrack match (--ctstate, --ctorig*, --ctrepl*, --ctstatus, --ctdir)."""
    if 'ctstate' in value:
        states = _names(value['ctstate'], key('ctstate'), 'a conntrack state')
        bad = [s for s in states if s not in CTSTATES]
        if bad:
            raise ValidationError(key('ctstate'), '%s is not a conntrack state (%s)'
                                  % (show(bad[0]), ', '.join(CTSTATES)))
        spec['ctstate'] = _with_not([s for s in CTSTATES if s in states], neg['ctstate'])
    for name in CT_ADDRESSES:
        if name in value:
            net = parse_network(value[name], key(name), family)
            if net.prefixlen == net.max_prefixlen:
                spec[name] = _with_not(str(net.network_address), neg[name])
            elif net.prefixlen:
                spec[name] = _with_not(str(net), neg[name])
            elif neg[name]:
                raise matches_nothing(name)
    for name in CT_PORTS:
        if name in value:
            if isinstance(value[name], (list, tuple)):
                raise ValidationError(key(name), 'expected one port or range, got %s' % (show(raw[name]),))
            ports = _ports(value[name], key(name))
            if ports:
                spec[name] = _with_not(ports, neg[name])
            elif neg[name]:
                raise matches_nothing(name)
    if 'ctstatus' in value:
        status = _names(value['ctstatus'], key('ctstatus'), 'a conntrack status')
        bad = [s for s in status if s not in CTSTATUS + ('NONE',)]
        if bad:
            raise ValidationError(key('ctstatus'), '%s is not a conntrack status (NONE, %s)'
                                  % (show(bad[0]), ', '.join(CTSTATUS)))
        if 'NONE' in status and len(set(status)) > 1:
            raise ValidationError(key('ctstatus'), 'NONE (no status bit) cannot be combined with %s'
                                  % [s for s in status if s != 'NONE'][0])
        spec['ctstatus'] = _with_not([s for s in CTSTATUS if s in status] or ['NONE'], neg['ctstatus'])
    if _given(raw.get('ctdir')):
        ctdir = raw['ctdir']
        if not isinstance(ctdir, str) or ctdir.strip().upper() not in CTDIRS:
            raise ValidationError(key('ctdir'), '%s is not a direction (%s)' % (show(ctdir), ', '.join(CTDIRS)))
        spec['ctdir'] = ctdir.strip().upper()


def _count(value, param, low, high, what):
    """A whole number in [low, high] from an int or its digits; bools and anything else are refused."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ''
    if not is_digits(text) or not low <= int(text) <= high:
        raise ValidationError(param, '%s is not %s (%d-%d)' % (show(value), what, low, high))
    return int(text)


def _one_of(raw, names, key, what):
    """The one of names given (exactly one must be), for options that exclude each other."""
    found = [name for name in names if _given(raw.get(name))]
    if len(found) != 1:
        raise ValidationError(key(found[1] if found else names[0]), '%s: give exactly one of %s'
                              % (what, ', '.join(names)))
    return found[0]


def _make_connlimit(raw, spec, family, key, given):
    """connlimit: --connlimit-above/--connlimit-upto N connections per source (or destination) network."""
    name = _one_of(raw, ('connlimit_above', 'connlimit_upto'), key, 'connlimit counts connections')
    # 0 would make the match always (above) or never (upto) true: refused as a mistake, not rendered.
    spec[name] = _count(raw[name], key(name), 1, CONNLIMIT_MAX, 'a number of connections')
    width = 32 if family == 'ipv4' else 128
    mask = raw.get('connlimit_mask')
    spec['connlimit_mask'] = width if mask is None else _count(mask, key('connlimit_mask'), 0, width,
                                                               'a prefix length of %s' % family)
    if _flag(raw, 'connlimit_daddr', key):
        spec['connlimit_daddr'] = True


def hashlimit_rate(value, param):
    """(canonical rate, expire default in ms, printed unit in ms, period in 1/HASHLIMIT_SCALE s) of a hashlimit rate.

    libxt_hashlimit stores the period and prints the largest unit that keeps
    the count exact enough (print_rate); an entry expires after one unit of
    the rate as written unless htable_expire says otherwise.
    """
    text = check_text(str(value), param).strip().lower() if not isinstance(value, bool) else ''
    match = _RATE.fullmatch(text)
    unit = match and [secs for name, secs in UNIT_SECONDS if RATE_UNIT_WORDS[name].startswith(match.group(2))]
    if not unit:
        raise ValidationError(param, '%s is not a rate of packets (e.g. 10/sec, 30/min, 100/hour, 2/day)'
                              % (show(value),))
    count = int(match.group(1))
    if count == 0:
        raise ValidationError(param, 'a rate of 0 matches nothing (upto) or everything (above): give at least 1')
    period = HASHLIMIT_SCALE * unit[0] // count
    if period == 0:
        raise ValidationError(param, 'rate %s is too fast (at most %d/sec)' % (show(value), HASHLIMIT_SCALE))
    index = 1
    while index < len(UNIT_SECONDS):
        mult = UNIT_SECONDS[index][1] * HASHLIMIT_SCALE
        if period > mult or mult // period < mult % period:
            break
        index += 1
    name, secs = UNIT_SECONDS[index - 1]
    return '%d/%s' % (secs * HASHLIMIT_SCALE // period, name), unit[0] * 1000, secs * 1000, period


def _make_hashlimit(raw, spec, family, key, given):
    """hashlimit: a token bucket per source/destination address/port group (--hashlimit-upto/above)."""
    which = _one_of(raw, ('hashlimit_upto', 'hashlimit_above'), key, 'hashlimit needs a rate')
    rate, expire, printed, period = hashlimit_rate(raw[which], key(which))
    spec[which] = rate
    burst = DEFAULT_HASHLIMIT_BURST
    if raw.get('hashlimit_burst') is not None:
        burst = _count(raw['hashlimit_burst'], key('hashlimit_burst'), 1, HASHLIMIT_BURST_MAX, 'a burst')
    if period * burst > HASHLIMIT_REFILL_MAX * HASHLIMIT_SCALE:
        raise ValidationError(key('hashlimit_burst'), 'a burst of %d at %s takes more than a day to refill; the '
                                                      'kernel\'s credit counter overflows: lower the burst or raise '
                                                      'the rate' % (burst, rate))
    if burst != DEFAULT_HASHLIMIT_BURST:
        spec['hashlimit_burst'] = burst
    modes = []
    if given('hashlimit_mode'):
        modes = [mode.lower() for mode in _names(raw['hashlimit_mode'], key('hashlimit_mode'), 'a mode')]
        bad = [mode for mode in modes if mode not in HASHLIMIT_MODES]
        if bad:
            raise ValidationError(key('hashlimit_mode'), '%s is not a hashlimit mode (%s)'
                                  % (show(bad[0]), ', '.join(HASHLIMIT_MODES)))
        spec['hashlimit_mode'] = [mode for mode in HASHLIMIT_MODES if mode in modes]
    name = raw.get('hashlimit_name')
    if not _given(name):
        raise ValidationError(key('hashlimit_name'), 'is required with hashlimit (the kernel\'s table of buckets; '
                                                     'rules with the same name share one table)')
    if not isinstance(name, str) or not _HASHLIMIT_NAME.fullmatch(name):
        raise ValidationError(key('hashlimit_name'), '%s is not a hashlimit table name (1-31 letters, digits, _ . -, '
                                                     'not starting with .)' % (show(name),))
    spec['hashlimit_name'] = name
    for option, dummy in HASHLIMIT_TABLE:
        if raw.get(option) is not None:
            value = _count(raw[option], key(option), 1, CONNLIMIT_MAX,
                           'a number of milliseconds' if option.endswith(('gcinterval', 'expire')) else 'a size')
            default = {'hashlimit_htable_gcinterval': DEFAULT_HASHLIMIT_GCINTERVAL,
                       'hashlimit_htable_expire': printed}.get(option)
            if option == 'hashlimit_htable_expire':
                expire = value
            elif value != default:
                spec[option] = value
    if expire != printed:
        spec['hashlimit_htable_expire'] = expire
    width = 32 if family == 'ipv4' else 128
    for option, dummy, mode in HASHLIMIT_MASKS:
        if raw.get(option) is not None:
            if mode not in modes:
                raise ValidationError(key(option), 'groups addresses of hashlimit_mode %s, which is not given' % mode)
            mask = _count(raw[option], key(option), 0, width, 'a prefix length of %s' % family)
            if mask != width:
                spec[option] = mask


def make_rule(raw, family, table, param=''):
    """Validate a rule dict and return its spec (canonical values, empty keys dropped).

    family is the family of the transaction ('ipv4' or 'ipv6'); table is
    'filter' or 'nat'. param prefixes the key in error messages
    (e.g. 'chains[0].rules[2].').
    """
    def key(name):
        return param + name

    # The options given (what _given() says, inlined: this runs for every rule of every run).
    present = {name for name, value in raw.items()
               if value is not None and value != '' and value is not False and value != []}
    given = present.__contains__

    unknown = sorted(set(raw) - _RULE_KEY_SET) if not _RULE_KEY_SET.issuperset(raw) else None
    if unknown:
        raise ValidationError(key(unknown[0]), 'unknown rule option')
    spec = OrderedDict()
    if given('name'):
        if not isinstance(raw['name'], str) or not _RULE_NAME.fullmatch(raw['name']):
            raise ValidationError(key('name'), '%s is not a rule name (up to 64 letters, digits, _ . : / @ -, '
                                               'starting with a letter or digit)' % (show(raw['name']),))
        spec['name'] = raw['name']
    if given('family') and raw['family'] != family:
        raise ValidationError(key('family'), 'the rule is %s but is applied to %s' % (raw['family'], family))
    protocol = None
    if given('protocol'):
        number = parse_protocol(raw['protocol'], key('protocol'))
        if number == 0:
            raise ValidationError(key('protocol'), 'protocol 0 means any protocol: leave protocol out')
        if {1: 'ipv4', 58: 'ipv6'}.get(number, family) != family:
            raise ValidationError(key('protocol'), '%s is not a protocol of %s rules' % (raw['protocol'], family))
        protocol = SPEC_PROTOCOL_NAMES.get(number, str(number))
        spec['protocol'] = protocol
    neg, value = {}, {}
    for name in (NEGATABLE if not present.isdisjoint(NEGATABLE) else ()):
        if name in present:
            neg[name], value[name] = split_not(raw[name])
            if not _given(value[name]):
                raise ValidationError(key(name), "%s: '!' negates nothing" % (show(raw[name]),))

    def matches_nothing(name):
        return ValidationError(key(name), "%s: '!' with any value matches nothing; leave the option out"
                               % (show(raw[name]),))

    for name in ('source', 'destination'):
        if name in value:
            nets = _networks(value[name], key(name), family)
            if nets:
                spec[name] = _with_not(nets, neg[name])
            elif neg[name]:
                raise matches_nothing(name)
    for name in ('in_interface', 'out_interface'):
        if name in value:
            spec[name] = _with_not(check_interface(value[name], key(name)), neg[name])
    for name in ('source_port', 'destination_port', 'port'):
        if name in value:
            ports = _port_list(value[name], key(name))
            if name == 'port' and ports is not None and not isinstance(ports, list):
                ports = [ports]
            if isinstance(ports, list) and protocol not in MULTIPORT_PROTOCOLS:
                raise ValidationError(key(name), 'a list of ports needs protocol %s' % ', '.join(MULTIPORT_PROTOCOLS))
            if not isinstance(ports, list) and protocol not in PORT_PROTOCOLS:
                raise ValidationError(key(name), 'ports need protocol %s' % ', '.join(PORT_PROTOCOLS))
            if ports:
                spec[name] = _with_not(ports, neg[name])
            elif neg[name]:
                raise matches_nothing(name)
    if raw.get('syn') is not None:
        if not isinstance(raw['syn'], bool):
            raise ValidationError(key('syn'), 'expected true or false, got %s' % (show(raw['syn']),))
        if protocol != 'tcp':
            raise ValidationError(key('syn'), 'needs protocol tcp')
        spec['syn'] = raw['syn']
    if 'tcp_flags' in value:
        if 'syn' in spec:
            raise ValidationError(key('tcp_flags'), 'conflicts with syn (syn is tcp_flags "FIN,SYN,RST,ACK SYN"): '
                                                    'give one of them')
        if protocol != 'tcp':
            raise ValidationError(key('tcp_flags'), 'needs protocol tcp')
        flags = _tcp_flags(value['tcp_flags'], key('tcp_flags'))
        if flags == ' '.join(SYN_FLAGS):
            spec['syn'] = not neg['tcp_flags']
        else:
            spec['tcp_flags'] = _with_not(flags, neg['tcp_flags'])
    if given('icmp_type'):
        spec['icmp_type'] = _icmp_type(raw['icmp_type'], key('icmp_type'), protocol, family)
    if not present.isdisjoint(CT_KEYS):
        _make_conntrack(raw, value, neg, spec, family, key, matches_nothing)
    if given('limit'):
        spec['limit'] = canonical_rate(raw['limit'], key('limit'))
    if raw.get('limit_burst') is not None:
        if not given('limit'):
            raise ValidationError(key('limit_burst'), 'needs limit')
        burst = raw['limit_burst']
        if isinstance(burst, bool) or not is_digits(str(burst)) or not 1 <= int(burst) <= 10000:
            raise ValidationError(key('limit_burst'), '%s is not a burst (1-10000)' % (show(burst),))
        if int(burst) != DEFAULT_LIMIT_BURST:
            spec['limit_burst'] = int(burst)
    if not present.isdisjoint(CONNLIMIT_KEYS):
        _make_connlimit(raw, spec, family, key, given)
    if not present.isdisjoint(HASHLIMIT_KEYS):
        _make_hashlimit(raw, spec, family, key, given)
    if given('comment'):
        spec['comment'] = check_comment(raw['comment'], key('comment'), COMMENT_LIMIT)
        if spec['comment'].startswith(NAME_TAG):
            raise ValidationError(key('comment'), 'must not start with %r (reserved for rule names)' % NAME_TAG)
    stored = kernel_comment(spec)
    if stored is not None:
        check_comment(stored, key('comment'), COMMENT_LIMIT)
    _make_target(raw, spec, family, table, key, given)
    return spec


def _make_target(raw, spec, family, table, key, given):
    jump = raw.get('jump')
    if not _given(jump) or not isinstance(jump, str):
        raise ValidationError(key('jump'), 'a target is required (%s or an owned chain)' % ', '.join(TARGETS[table]))
    jump = jump.strip()
    if jump.upper() in TARGETS[table]:
        jump = jump.upper()
    elif jump.startswith(PREFIX):
        check_chain_name(jump, key('jump'))
    else:
        raise ValidationError(
            key('jump'), '%s is not a target of the %s table (%s or an owned %s* chain)'
            % (show(jump), table, ', '.join(TARGETS[table]), PREFIX))
    spec['jump'] = jump
    for name, targets in TARGET_OPTIONS.items():
        if given(name) and jump not in targets:
            raise ValidationError(key(name), 'only valid with jump %s' % ' or '.join(targets))
    has_ports = False
    if jump == 'REJECT':
        value = raw.get('reject_with') or REJECT_WITH[family][0]
        if value not in REJECT_WITH[family]:
            raise ValidationError(key('reject_with'), '%s is not an %s reject type (%s)'
                                  % (show(value), family, ', '.join(REJECT_WITH[family])))
        if value == 'tcp-reset' and spec.get('protocol') != 'tcp':
            raise ValidationError(key('reject_with'), 'tcp-reset needs protocol tcp')
        spec['reject_with'] = value
    elif jump == 'LOG':
        if given('log_prefix'):
            prefix = check_comment(raw['log_prefix'], key('log_prefix'), LOG_PREFIX_MAX)
            spec['log_prefix'] = prefix
        if raw.get('log_level') is not None:
            level = _log_level(raw['log_level'], key('log_level'))
            if level != DEFAULT_LOG_LEVEL:
                spec['log_level'] = level
    elif jump in ('SNAT', 'DNAT'):
        name = 'to_source' if jump == 'SNAT' else 'to_destination'
        if not given(name):
            raise ValidationError(key(name), 'is required with jump %s' % jump)
        spec[name], has_ports = _nat_target(raw[name], key(name), family, shift=jump == 'DNAT')
    elif jump == 'CT':
        _make_ct(raw, spec, family, key)
    elif jump == 'TCPMSS':
        _make_tcpmss(raw, spec, key)
    elif jump == 'NETMAP':
        spec['to_prefix'] = _netmap_prefix(raw.get('to_prefix'), key('to_prefix'), family)
    elif given('to_ports'):
        spec['to_ports'] = _nat_ports(raw['to_ports'], key('to_ports'))
        has_ports = True
    if has_ports and spec.get('protocol') not in PORT_PROTOCOLS:
        name = {'SNAT': 'to_source', 'DNAT': 'to_destination'}.get(jump, 'to_ports')
        raise ValidationError(key(name), 'ports need protocol %s' % ', '.join(PORT_PROTOCOLS))
    for name, dummy in NAT_FLAGS:
        if raw.get(name):
            spec[name] = True


def _flag(raw, name, key):
    """A boolean option: True, or False when unset; anything but a bool is refused."""
    value = raw.get(name)
    if value is not None and not isinstance(value, bool):
        raise ValidationError(key(name), 'expected true or false, got %s' % (show(value),))
    return bool(value)


def _make_ct(raw, spec, family, key):
    """CT in the raw table: --helper NAME (for the connections of its protocol) and/or a timeout policy
    (ct_timeout), or --notrack alone."""
    notrack = _flag(raw, 'notrack', key)
    helper = raw.get('helper')
    timeout = raw.get('ct_timeout')
    if notrack and _given(helper):
        raise ValidationError(key('helper'), 'conflicts with notrack: an untracked connection has no helper; '
                                             'give one of them')
    if notrack and timeout:
        raise ValidationError(key('ct_timeout'), 'conflicts with notrack: an untracked connection has no timeout; '
                                                 'give one of them')
    if notrack:
        spec['notrack'] = True
        return
    if timeout:
        spec['ct_timeout'] = _ct_timeout(timeout, spec.get('protocol'), key('ct_timeout'))
        if not _given(helper):
            return
    if not _given(helper):
        raise ValidationError(key('helper'), 'jump CT needs helper (%s), ct_timeout or notrack: true'
                              % ', '.join(sorted(HELPERS)))
    names = dict((name.lower(), name) for name in HELPERS)
    if not isinstance(helper, str) or helper.strip().lower() not in names:
        raise ValidationError(key('helper'), '%s is not a conntrack helper (%s)'
                              % (show(helper), ', '.join(sorted(HELPERS))))
    helper = names[helper.strip().lower()]
    protocols, families = HELPERS[helper]
    if spec.get('protocol') not in protocols:
        raise ValidationError(key('helper'), 'the %s helper needs protocol %s (it only attaches to those connections)'
                              % (helper, ' or '.join(protocols)))
    if family not in families:
        raise ValidationError(key('helper'), 'the kernel has no %s helper for %s' % (helper, family))
    spec['helper'] = helper


def _ct_timeout(value, protocol, param):
    """Canonical timeout policy {state: seconds}: the protocol's states in nft's order, values other than
    nft's default of the state (a state left out has its default, so writing it changes nothing)."""
    if protocol not in CT_TIMEOUT_STATES:
        raise ValidationError(param, 'a timeout policy needs protocol %s (the states are the protocol\'s)'
                              % ' or '.join(sorted(CT_TIMEOUT_STATES)))
    if not isinstance(value, dict):
        raise ValidationError(param, 'expected a mapping of %s states to seconds, e.g. {established: 300}, got %s'
                              % (protocol, show(value)))
    states = CT_TIMEOUT_STATES[protocol]
    names = [name for name, dummy in states]
    for state in value:
        if state not in names:
            raise ValidationError('%s.%s' % (param, state), '%s is not a %s conntrack state (%s)'
                                  % (show(state), protocol, ', '.join(names)))
    policy = OrderedDict()
    for name, default in states:
        if name in value:
            seconds = _count(value[name], '%s.%s' % (param, name), 1, CT_TIMEOUT_MAX, 'a timeout in seconds')
            if seconds != default:
                policy[name] = seconds
    if not policy:
        given = ', '.join('%s %d' % item for item in states if item[0] in value)
        raise ValidationError(param, 'every state given has its default timeout (%s): the policy would change '
                                     'nothing; leave ct_timeout out' % given)
    return policy


def _netmap_prefix(value, param, family):
    """Canonical NETMAP --to: NETWORK/LENGTH as both back ends print it (a lone address is its /32 or /128)."""
    if not _given(value):
        raise ValidationError(param, 'is required with jump NETMAP (the prefix to map to, e.g. 198.51.100.0/24)')
    net = parse_network(value, param, family)
    if not net.prefixlen:
        raise ValidationError(param, '%s maps no bit of the address (prefix length 0): NETMAP would change '
                                     'nothing' % (show(value),))
    return str(net.with_prefixlen)


def _syn_test(spec):
    """True when the rule only matches TCP packets with SYN set (what xt_TCPMSS checks for)."""
    if spec.get('syn') is True:
        return True
    flags = spec.get('tcp_flags')
    if not flags or negated(flags):
        return False
    mask, comp = flags.split()
    return 'SYN' in mask.split(',') and 'SYN' in comp.split(',')


def _make_tcpmss(raw, spec, key):
    """TCPMSS in the mangle table: --set-mss N or --clamp-mss-to-pmtu, on TCP SYN packets only."""
    clamp = _flag(raw, 'clamp_mss_to_pmtu', key)
    mss = raw.get('set_mss')
    if clamp and mss is not None:
        raise ValidationError(key('set_mss'), 'conflicts with clamp_mss_to_pmtu: give one of them')
    if not clamp and mss is None:
        raise ValidationError(key('set_mss'), 'jump TCPMSS needs set_mss or clamp_mss_to_pmtu: true')
    if spec.get('protocol') != 'tcp' or not _syn_test(spec):
        raise ValidationError(key('jump'), 'TCPMSS changes SYN packets only: it needs protocol tcp and a SYN test '
                                           '(tcp_flags "SYN,RST SYN", or syn: true)')
    if clamp:
        spec['clamp_mss_to_pmtu'] = True
        return
    text = str(mss).strip() if isinstance(mss, (str, int)) and not isinstance(mss, bool) else ''
    if not is_digits(text) or not MSS_RANGE[0] <= int(text) <= MSS_RANGE[1]:
        raise ValidationError(key('set_mss'), '%s is not an MSS (%d-%d bytes)' % ((show(mss),) + MSS_RANGE))
    spec['set_mss'] = int(text)


# ---------------------------------------------------------------------------
# Rendering and parsing.

def render(spec):
    """The arguments of a rule in iptables-save syntax (after '-A CHAIN')."""
    out = []
    for name, flag in (('source', '-s'), ('destination', '-d'), ('in_interface', '-i'), ('out_interface', '-o')):
        if name in spec:
            out += _args(spec, name, flag)
    protocol = spec.get('protocol')
    if protocol:
        number = parse_protocol(protocol, 'protocol')
        out += ['-p', SAVE_PROTOCOL_NAMES.get(number, protocol)]
    # The protocol's own match (single ports, --tcp-flags), then one multiport match
    # per option (multiport takes one of --sports, --dports, --ports).
    proto_match = []
    for name, flag in (('source_port', '--sport'), ('destination_port', '--dport')):
        if isinstance(spec.get(name), str):
            proto_match += _args(spec, name, flag)
    if 'syn' in spec:
        proto_match += ([] if spec['syn'] else [NOT]) + ['--tcp-flags'] + list(SYN_FLAGS)
    if 'tcp_flags' in spec:
        proto_match += _args(spec, 'tcp_flags', '--tcp-flags')
    if proto_match:
        out += ['-m', protocol] + proto_match
    for name, flag in (('source_port', '--sports'), ('destination_port', '--dports'), ('port', '--ports')):
        if isinstance(spec.get(name), list):
            out += ['-m', 'multiport'] + _args(spec, name, flag)
    if 'icmp_type' in spec:
        out += ['-m', 'icmp', '--icmp-type'] if protocol == 'icmp' else ['-m', 'icmp6', '--icmpv6-type']
        out.append(spec['icmp_type'])
    if not _CT_SET.isdisjoint(spec):
        out += ['-m', 'conntrack']
        for name in CT_KEYS:
            if name in spec:
                out += _args(spec, name, '--' + name)
    if 'limit' in spec:
        out += ['-m', 'limit', '--limit', spec['limit']]
        if 'limit_burst' in spec:
            out += ['--limit-burst', str(spec['limit_burst'])]
    if 'connlimit_above' in spec or 'connlimit_upto' in spec:
        out += _render_connlimit(spec)
    if 'hashlimit_name' in spec:
        out += _render_hashlimit(spec)
    comment = kernel_comment(spec)
    if comment is not None:
        out += ['-m', 'comment', '--comment', quote(comment)]
    out += ['-j', spec['jump']]
    if 'reject_with' in spec:
        out += ['--reject-with', spec['reject_with']]
    if 'log_prefix' in spec:
        out += ['--log-prefix', quote(spec['log_prefix'])]
    if 'log_level' in spec:
        out += ['--log-level', str(spec['log_level'])]
    for name, flag in _TARGET_VALUES:
        if name in spec:
            out += [flag, str(spec[name])]
    for name, flag in _TARGET_FLAGS:
        if spec.get(name):
            out.append(flag)
    return ' '.join(out)


def _render_connlimit(spec):
    which = 'connlimit_above' if 'connlimit_above' in spec else 'connlimit_upto'
    return ['-m', 'connlimit', '--' + which.replace('_', '-'), str(spec[which]),
            '--connlimit-mask', str(spec['connlimit_mask']),
            '--connlimit-daddr' if spec.get('connlimit_daddr') else '--connlimit-saddr']


def _render_hashlimit(spec):
    which = 'hashlimit_upto' if 'hashlimit_upto' in spec else 'hashlimit_above'
    out = ['-m', 'hashlimit', '--' + which.replace('_', '-'), spec[which],
           '--hashlimit-burst', str(spec.get('hashlimit_burst', DEFAULT_HASHLIMIT_BURST))]
    if 'hashlimit_mode' in spec:
        out += ['--hashlimit-mode', ','.join(spec['hashlimit_mode'])]
    out += ['--hashlimit-name', spec['hashlimit_name']]
    for name, flag in HASHLIMIT_TABLE:
        if name in spec:
            out += [flag, str(spec[name])]
    for name, flag, dummy in HASHLIMIT_MASKS:
        if name in spec:
            out += [flag, str(spec[name])]
    return out


# iptables-save option -> rule key. Matches loaded with -m must be in _MATCHES.
_OPTIONS = {
    '-s': 'source', '-d': 'destination', '-i': 'in_interface', '-o': 'out_interface', '-p': 'protocol',
    '--sport': 'source_port', '--dport': 'destination_port', '--sports': 'source_port',
    '--dports': 'destination_port', '--ports': 'port', '--icmp-type': 'icmp_type',
    '--icmpv6-type': 'icmp_type', '--ctstate': 'ctstate', '--limit': 'limit', '--limit-burst': 'limit_burst',
    '--comment': 'comment', '-j': 'jump', '--reject-with': 'reject_with', '--log-prefix': 'log_prefix',
    '--log-level': 'log_level', '--to-source': 'to_source', '--to-destination': 'to_destination',
    '--to-ports': 'to_ports', '--ctstatus': 'ctstatus', '--ctdir': 'ctdir', '--helper': 'helper',
    '--set-mss': 'set_mss', '--to': 'to_prefix',
    '--connlimit-above': 'connlimit_above', '--connlimit-upto': 'connlimit_upto', '--connlimit-mask': 'connlimit_mask',
}
_OPTIONS.update(('--' + name.replace('_', '-'), name) for name in HASHLIMIT_KEYS)
_OPTIONS.update(('--' + name, name) for name in CT_ADDRESSES + CT_PORTS)
_FLAGS = dict((flag, name) for name, flag in NAT_FLAGS + TARGET_FLAGS)
_CT_SET = frozenset(CT_KEYS)
_RULE_KEY_SET = frozenset(RULE_KEYS)
_TARGET_VALUES = (('to_source', '--to-source'), ('to_destination', '--to-destination'), ('to_ports', '--to-ports'),
                  ('helper', '--helper'), ('set_mss', '--set-mss'), ('to_prefix', '--to'))
_TARGET_FLAGS = NAT_FLAGS + TARGET_FLAGS
# Options whose value is a comma-separated list in save syntax.
_LISTS = ('ctstate', 'ctstatus', 'port', 'hashlimit_mode')
_MATCHES = ('tcp', 'udp', 'sctp', 'multiport', 'icmp', 'icmp6', 'conntrack', 'limit', 'connlimit', 'hashlimit',
            'comment')


def take_name(raw):
    """Moves a rule's name out of its comment (NAME_TAG NAME [COMMENT]) into raw['name'], in place."""
    comment = raw.pop('comment', None)
    if comment is not None and comment.startswith(NAME_TAG):
        name, dummy, comment = comment[len(NAME_TAG):].partition(' ')
        raw['name'] = name
    if comment:
        raw['comment'] = comment


def parse_rule(args, family, table):
    """The spec of a rule from its iptables-save arguments, or None if the model cannot express it."""
    try:
        tokens = split_args(args)
    except ValueError:
        return None
    raw = {}
    pos = 0
    while pos < len(tokens):
        token = tokens[pos]
        if token in _FLAGS:
            raw[_FLAGS[token]] = True
            pos += 1
        elif token in ('--connlimit-saddr', '--connlimit-daddr') and 'connlimit_daddr' not in raw:
            raw['connlimit_daddr'] = token == '--connlimit-daddr'
            pos += 1
        elif token == '--tcp-flags' and pos + 2 < len(tokens) and 'tcp_flags' not in raw:
            raw['tcp_flags'] = '%s %s' % (tokens[pos + 1], tokens[pos + 2])
            pos += 3
        elif token == NOT and tokens[pos + 1:pos + 2] == ['--tcp-flags'] and pos + 3 < len(tokens) \
                and 'tcp_flags' not in raw:
            raw['tcp_flags'] = '%s%s %s' % (NOT, tokens[pos + 2], tokens[pos + 3])
            pos += 4
        elif token == NOT and pos + 2 < len(tokens) and _OPTIONS.get(tokens[pos + 1]) in NEGATABLE \
                and _OPTIONS[tokens[pos + 1]] not in raw:
            raw[_OPTIONS[tokens[pos + 1]]] = NOT + tokens[pos + 2]
            pos += 3
        elif token == '-m' and pos + 1 < len(tokens) and tokens[pos + 1] in _MATCHES:
            pos += 2
        elif token in _OPTIONS and pos + 1 < len(tokens) and _OPTIONS[token] not in raw:
            raw[_OPTIONS[token]] = tokens[pos + 1]
            pos += 2
        else:
            return None
    take_name(raw)
    for name in _LISTS:
        if name in raw:
            raw[name] = raw[name].split(',')
    try:
        spec = make_rule(raw, family, table)
    except ValidationError:
        return None
    return spec


class Rule(object):
    """A rule of an owned chain: its spec (None if not understood) and its canonical text."""

    __slots__ = ('spec', 'text')

    def __init__(self, spec, text):
        self.spec = spec
        self.text = text

    @classmethod
    def from_spec(cls, spec):
        return cls(spec, render(spec))

    @classmethod
    def from_save(cls, args, family, table):
        spec = parse_rule(args, family, table)
        return cls(spec, args if spec is None else render(spec))

    @property
    def name(self):
        return self.spec.get('name') if self.spec else None

    def __eq__(self, other):
        return isinstance(other, Rule) and self.text == other.text


# ---------------------------------------------------------------------------
# Tables as iptables-save prints them.

class Table(object):
    """One table of iptables-save output: chains with policies, rules per chain (raw arguments)."""

    def __init__(self, name):
        self.name = name
        self.policies = OrderedDict()
        self.rules = OrderedDict()

    def add_chain(self, chain, policy):
        self.policies[chain] = policy
        self.rules.setdefault(chain, [])


def parse_save(text):
    """Parse iptables-save output into {table name: Table}.

    Returns (tables, unknown_lines). A table the kernel does not hold yet
    is absent; see empty_table().
    """
    tables = OrderedDict()
    unknown = []
    current = None
    # Lines end at '\n' only: str.splitlines() also breaks at \v, \f, \x1c-\x1e, \x85, U+2028 and
    # U+2029, which would turn one rule with such a character in a comment into two.
    for line in text.split('\n'):
        if not line or line.startswith('#'):
            continue
        if line.startswith('*'):
            current = tables.setdefault(line[1:], Table(line[1:]))
        elif current is not None and line.startswith(':'):
            parts = line[1:].split(' ')
            current.add_chain(parts[0], parts[1] if len(parts) > 1 else '-')
        elif current is not None and line.startswith('-A '):
            chain, dummy, args = line[3:].partition(' ')
            current.rules.setdefault(chain, []).append(args)
        elif line == 'COMMIT':
            current = None
        else:
            unknown.append(line)
    return tables, unknown


def empty_table(name):
    """The table as the kernel creates it: built-in chains, policy ACCEPT, no rules."""
    table = Table(name)
    for chain in BUILTIN_CHAINS[name]:
        table.add_chain(chain, 'ACCEPT')
    return table


# ---------------------------------------------------------------------------
# Owned state and planning.

class Chain(object):
    """An owned chain: name, hook ((built-in chain, 'first'|'last') or None) and rules."""

    def __init__(self, name, hook=None, rules=None):
        self.name = name
        self.hook = hook
        self.rules = list(rules or [])

    def copy(self):
        return Chain(self.name, self.hook, self.rules)


class Owned(object):
    """The owned chains of one scope in one table and family, plus managed policies."""

    def __init__(self, chains=None, policies=None):
        self.chains = OrderedDict((chain.name, chain) for chain in (chains or []))
        self.policies = OrderedDict(policies or {})

    def copy(self):
        return Owned([chain.copy() for chain in self.chains.values()], self.policies)


def _jump_of(args):
    """The target of a rule (-j or -g), from its save-syntax arguments."""
    try:
        tokens = split_args(args)
    except ValueError:
        return None
    for index, token in enumerate(tokens[:-1]):
        if token in ('-j', '-g'):
            return tokens[index + 1]
    return None


def hook_target(args):
    """The owned chain a built-in chain's rule hooks, or None.

    The collection's hook is exactly one jump without matches ('-j SNF-...').
    Any other rule, even one that jumps into an owned chain, is foreign.
    """
    if args.startswith('-j ' + PREFIX) and ' ' not in args[3:]:
        return args[3:]
    return None


def _hook_position(rules, index):
    """'first' if the rule at index precedes every foreign rule, else 'last'."""
    foreign = [i for i, args in enumerate(rules) if not hook_target(args)]
    return 'first' if not foreign or index < foreign[0] else 'last'


def read_owned(table, scope_prefix, family, policies=(), known=None):
    """The Owned state of a scope as the kernel holds it; policies lists the built-ins whose policy is managed.

    known (an Owned, the desired state) saves the parse of a saved rule that is already in canonical form: a
    line equal to the text of a known rule is that rule (render and parse round-trip, tests/unit: the
    canonical text parses back to itself), any other line is parsed.
    """
    owned = Owned(policies=[(chain, table.policies.get(chain, 'ACCEPT')) for chain in policies])
    texts = {}
    for chain in (known.chains.values() if known is not None else ()):
        for rule in chain.rules:
            texts[rule.text] = rule
    for name, rules in table.rules.items():
        if name.startswith(scope_prefix):
            owned.chains[name] = Chain(name, rules=[texts.get(args) or Rule.from_save(args, family, table.name)
                                                    for args in rules])
    for builtin in BUILTIN_CHAINS[table.name]:
        rules = table.rules.get(builtin, [])
        for index, args in enumerate(rules):
            target = hook_target(args)
            if target in owned.chains and owned.chains[target].hook is None:
                owned.chains[target].hook = (builtin, _hook_position(rules, index))
    return owned


def _hooks_ok(rules, scope_prefix, wanted):
    """True when the scope's jumps in a built-in chain are exactly the wanted hooks, in place."""
    own = [(i, args) for i, args in enumerate(rules) if (hook_target(args) or '').startswith(scope_prefix)]
    foreign = [i for i, args in enumerate(rules) if not hook_target(args)]
    if [args for dummy, args in own] != ['-j %s' % name for name, dummy in wanted]:
        return False
    for (index, dummy), (name, position) in zip(own, wanted):
        if foreign and position == 'first' and index > foreign[0]:
            return False
        if foreign and position == 'last' and index < foreign[-1]:
            return False
    return True


class Plan(object):
    """The transaction that turns the live table into the wanted owned state.

    lines: the iptables-restore --noflush input for this table (empty when
    nothing changes); before/after: the owned state in save syntax.
    """

    def __init__(self, table, scope_prefix, family, live, wanted):
        self.table = table.name
        self.family = family
        self.scope_prefix = scope_prefix
        self.live = live
        self.before = render_owned(live)
        self.after = render_owned(wanted)
        self.lines = self._transaction(table, scope_prefix, live, wanted)
        self.text = restore_text(self.lines)

    @property
    def changed(self):
        return bool(self.lines)

    @staticmethod
    def _transaction(table, scope_prefix, live, wanted):
        declare, delete, add, hooks, drop = [], [], [], [], []
        for name, chain in wanted.chains.items():
            current = live.chains.get(name)
            if current is not None and current.rules == chain.rules:
                continue
            for rule in chain.rules:
                _check_iptables(name, rule)
                if rule.spec is None:
                    # Never replay what the model cannot read: it is how text nobody wrote would come back.
                    raise ValidationError(
                        'chains', 'the owned chain %s holds a rule the collection cannot read: "-A %s %s"; it is '
                                  'never written back: remove it, or replace the chain (state overridden)'
                                  % (name, name, show_line(rule.text)))
        for chain, policy in wanted.policies.items():
            if table.policies.get(chain, 'ACCEPT') != policy:
                declare.append(':%s %s [0:0]' % (chain, policy))
        for name, chain in wanted.chains.items():
            current = live.chains.get(name)
            if current is None or current.rules != chain.rules:
                declare.append(':%s - [0:0]' % name)
                add.extend('-A %s %s' % (name, rule.text) for rule in chain.rules)
        for name in live.chains:
            if name not in wanted.chains:
                declare.append(':%s - [0:0]' % name)
                drop.append('-X %s' % name)
        for builtin in BUILTIN_CHAINS[table.name]:
            rules = table.rules.get(builtin, [])
            want = [(name, chain.hook[1]) for name, chain in wanted.chains.items()
                    if chain.hook and chain.hook[0] == builtin]
            want = [w for w in want if w[1] == 'first'] + [w for w in want if w[1] == 'last']
            if _hooks_ok(rules, scope_prefix, want):
                continue
            delete.extend('-D %s %s' % (builtin, args) for args in rules
                          if (hook_target(args) or '').startswith(scope_prefix))
            hooks.extend('-I %s 1 -j %s' % (builtin, name) for name, pos in reversed(want) if pos == 'first')
            hooks.extend('-A %s -j %s' % (builtin, name) for name, pos in want if pos == 'last')
        body = declare + delete + add + hooks + drop
        if not body:
            return []
        return ['*%s' % table.name] + body + ['COMMIT']


def _check_iptables(chain, rule):
    """Refuse what only the nftables back end renders (a list of networks, a timeout policy), naming the
    option and the rule.

    iptables has no match of a list of addresses: `-s A,B` is expanded by the
    iptables command into one rule per address, which would read back as
    several rules and never compare equal to the one written. The nftables
    back end matches the list in one rule with an anonymous set.
    """
    for key in ('source', 'destination'):
        if rule.spec is not None and isinstance(rule.spec.get(key), list):
            raise ValidationError(key, 'rule %s of chain %s: a list of networks (%s) is one rule with a set on '
                                       'backend nftables; the iptables back end matches one network per rule '
                                       '(iptables expands -s A,B into several rules): give one rule per network, '
                                       'or use backend nftables'
                                  % (rule.name or show(rule.text), chain, ', '.join(plain(rule.spec[key]))))
    if rule.spec is not None and rule.spec.get('ct_timeout'):
        raise ValidationError('ct_timeout', 'rule %s of chain %s: the iptables back end does not render timeout '
                                            'policies: CT --timeout needs a policy object made with nfct '
                                            '(nfnetlink_cttimeout), which the collection does not manage; use '
                                            'backend nftables (a ct timeout object of the owned table)'
                              % (rule.name or show(rule.text), chain))


def show_line(text):
    """A line of save output as a message quotes it: at most SHOW_MAX characters, control characters escaped."""
    return show(text)[1:-1] if len(text) <= SHOW_MAX else show(text)


def restore_text(lines):
    """iptables-restore input from lines, refusing any line that holds a line break of any reader.

    The last check before text reaches the kernel: input validation (check_text)
    refuses such characters already, this makes sure no path around it exists.
    """
    for line in lines:
        for char in line:
            if unicodedata.category(char) in FORBIDDEN_CATEGORIES:
                raise ValidationError('rules', 'refusing restore input with U+%04X in %s' % (ord(char), show(line)))
    return ''.join(line + '\n' for line in lines)


def render_owned(owned):
    """Owned state in save syntax: managed policies, chains, hooks (-I = first, -A = last), rules."""
    lines = [':%s %s' % item for item in owned.policies.items()]
    lines += [':%s - [0:0]' % name for name in owned.chains]
    for name, chain in owned.chains.items():
        if chain.hook:
            verb = '-I' if chain.hook[1] == 'first' else '-A'
            lines.append('%s %s -j %s' % (verb, chain.hook[0], name))
    for name, chain in owned.chains.items():
        lines.extend('-A %s %s' % (name, rule.text) for rule in chain.rules)
    return ''.join(line + '\n' for line in lines)


def check_references(table, scope_prefix, wanted):
    """Fail when a jump would target a missing owned chain, or a removed chain is still used elsewhere."""
    kept = set(name for name in table.rules if name.startswith(PREFIX) and not name.startswith(scope_prefix))
    kept.update(wanted.chains)
    for name, chain in wanted.chains.items():
        for rule in chain.rules:
            target = _jump_of(rule.text)
            if target and target.startswith(PREFIX) and target not in kept:
                raise ValidationError('jump', 'rule %r of chain %s jumps to %s, which is not defined'
                                      % (rule.text, name, target))
    removed = set(name for name in table.rules if name.startswith(scope_prefix)) - set(wanted.chains)
    for chain, rules in table.rules.items():
        if chain.startswith(scope_prefix):
            continue
        for args in rules:
            # The collection's own hooks go with their chains; any other jump into a removed chain is foreign.
            if _jump_of(args) in removed and not (chain in BUILTIN_CHAINS[table.name] and hook_target(args)):
                raise ValidationError('chains', 'cannot remove %s: rule "-A %s %s" outside the managed chains '
                                                'jumps to it' % (_jump_of(args), chain, show_line(args)))


# ---------------------------------------------------------------------------
# Editing an owned chain rule by rule (merged state, nat_rule).

def find_rule(rules, rule):
    """Index of the rule with the same identity (name if named, else text), or None."""
    for index, current in enumerate(rules):
        if (rule.name and current.name == rule.name) or (not rule.name and not current.name and current == rule):
            return index
    return None


def _identity(rule):
    return ('name', rule.name) if rule.name else ('text', rule.text)


def merge_rules(rules, new_rules):
    """Put each of new_rules in place (put_rule with order last), in time linear in both lists."""
    index = {}
    for position, current in enumerate(rules):
        index.setdefault(_identity(current), position)
    for rule in new_rules:
        key = _identity(rule)
        if key in index:
            rules[index[key]] = rule
        else:
            index[key] = len(rules)
            rules.append(rule)


def put_rule(rules, rule, order='last', anchor=None, param='order'):
    """Add or replace a rule in a list of Rules; a named rule keeps its place. Returns the index."""
    index = find_rule(rules, rule)
    if index is not None:
        rules[index] = rule
        return index
    if order == 'first':
        index = 0
    elif order == 'last':
        index = len(rules)
    else:
        found = [i for i, current in enumerate(rules) if current.name == anchor]
        if not found:
            raise ValidationError(param, 'no rule named %s in the chain to put this rule %s' % (show(anchor), order))
        index = found[0] + (1 if order == 'after' else 0)
    rules.insert(index, rule)
    return index
