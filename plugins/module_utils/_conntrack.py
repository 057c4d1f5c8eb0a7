# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The conntrack table over nfnetlink: filter, list, summarise, delete.

Private to the collection; the engine of conntrack_info and conntrack_flush,
also called by nat_rule. Standard library only (see _netlink).

Speed comes from decoding lazily: a field of a dump message is found and
decoded only when a filter, the summary or a returned entry needs it; the
common tuple layout is read with one struct call after its headers are
checked, and a returned entry is read whole by the learnt shape of its
message (_Shape) and written directly as JSON text (_entry_text). Filters go to the kernel where it honours them
and are always checked again in userspace, so a kernel that ignores a
filter attribute (older than the feature) costs time, never correctness.

What the kernel is asked to filter (all per address family, nfgenmsg):
- family: every kernel;
- mark/mask (CTA_MARK, CTA_MARK_MASK): dumps since Linux 3.x;
- status flags (CTA_STATUS, CTA_STATUS_MASK): dumps since Linux 5.15;
  ignored before;
- exact IPv4 addresses, protocol number, and single TCP/UDP ports of
  either direction (CTA_FILTER with CTA_TUPLE_ORIG / CTA_TUPLE_REPLY):
  dumps on Linux 5.8 and later; ignored before 5.8; a kernel that refuses
  the request is asked again without it.
IPv6 addresses never go to the kernel: its CTA_FILTER compares them
inverted (ctnetlink_filter_match_tuple tests !ipv6_addr_cmp, so an equal
address fails the filter), seen on Linux 6.18 here: a dump skipped exactly
the matching entries and a filtered flush deleted the others.
CIDRs that are not a single host, IPv6 addresses, port ranges, ports of
other protocols, zones, TCP states and `nat: any` are filtered in userspace
only. Zones stay out of the kernel: CTA_ZONE is compared in dumps and
flushes only since the kernel's "ctnetlink: support filtering by zone"
(late 2023); an older kernel ignores it, and a flush request that names
no tuple then deletes every zone.

Zones (see _zone): an entry's zone is an id and the directions it applies
to. ctnetlink dumps a zone of both directions (-j CT --zone) as CTA_ZONE and
a directional one (--zone-orig, --zone-reply) as CTA_TUPLE_ZONE inside the
tuple of its direction, with no CTA_ZONE. The `zone` filter compares the id
whatever the direction, as nft's `ct zone` and the kernel's own CTA_ZONE
filter (nf_ct_zone_equal_any) do; `zone_dir` narrows it to one kind.

Deleting: a kernel that can flush by CTA_FILTER (Linux 6.12 and later,
detected by a harmless probe, see _flush_filter_supported) deletes a fully
kernel-expressible filter in one request. Otherwise every matching entry is deleted by its
reply tuple, zone and id (see _delete_request), in acknowledged batches.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import json
import operator
import os
import socket
import struct

from ansible_collections.stateful.netfilter.plugins.module_utils import _netlink
from ansible_collections.stateful.netfilter.plugins.module_utils._result import EncodedList
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import (
    PORT_PROTOCOLS,
    PROTOCOLS,
    ValidationError,
    parse_mark,
    parse_network,
    parse_port_range,
    parse_protocol,
    protocol_name,
    show,
)

# nfnetlink message types (subsystem CTNETLINK = 1).
CT_GET = (1 << 8) | 1
CT_DELETE = (1 << 8) | 2

# Top-level attributes (enum ctattr_type).
CTA_TUPLE_ORIG = 1
CTA_TUPLE_REPLY = 2
CTA_STATUS = 3
CTA_PROTOINFO = 4
CTA_TIMEOUT = 7
CTA_MARK = 8
CTA_COUNTERS_ORIG = 9
CTA_COUNTERS_REPLY = 10
CTA_ID = 12
CTA_ZONE = 18
CTA_MARK_MASK = 21
CTA_FILTER = 25
CTA_STATUS_MASK = 26
# Nested in a tuple.
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_TUPLE_ZONE = 3
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM = 1
CTA_PROTO_SRC_PORT = 2
CTA_PROTO_DST_PORT = 3
CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE = 4, 5, 6
CTA_PROTO_ICMPV6_ID, CTA_PROTO_ICMPV6_TYPE, CTA_PROTO_ICMPV6_CODE = 7, 8, 9
CTA_PROTOINFO_TCP = 1
CTA_PROTOINFO_TCP_STATE = 1
CTA_COUNTERS_PACKETS = 1
CTA_COUNTERS_BYTES = 2
CTA_FILTER_ORIG_FLAGS = 1
CTA_FILTER_REPLY_FLAGS = 2
# CTA_FILTER flags (kernel nf_internals.h).
FILTER_IP_SRC = 1 << 0
FILTER_IP_DST = 1 << 1
FILTER_PROTO_NUM = 1 << 3
FILTER_SRC_PORT = 1 << 4
FILTER_DST_PORT = 1 << 5

FAMILIES = {'ipv4': socket.AF_INET, 'ipv6': socket.AF_INET6}
FAMILY_NAMES = {socket.AF_INET: 'ipv4', socket.AF_INET6: 'ipv6'}

# enum ip_conntrack_status, bit by bit.
STATUS_FLAGS = (
    'EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'SRC_NAT', 'DST_NAT',
    'SEQ_ADJUST', 'SRC_NAT_DONE', 'DST_NAT_DONE', 'DYING', 'FIXED_TIMEOUT',
    'TEMPLATE', 'UNTRACKED', 'HELPER', 'OFFLOAD', 'HW_OFFLOAD',
)
STATUS_BITS = dict((name, 1 << bit) for bit, name in enumerate(STATUS_FLAGS))
SRC_NAT = STATUS_BITS['SRC_NAT']
DST_NAT = STATUS_BITS['DST_NAT']
NAT_KINDS = {0: 'none', SRC_NAT: 'snat', DST_NAT: 'dnat', SRC_NAT | DST_NAT: 'both'}
NAT_CHOICES = ('snat', 'dnat', 'any', 'none')
# enum tcp_conntrack.
TCP_STATES = (
    'NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT',
    'LAST_ACK', 'TIME_WAIT', 'CLOSE', 'SYN_SENT2',
)
TCP = PROTOCOLS['tcp']
ICMP = PROTOCOLS['icmp']
ICMPV6 = PROTOCOLS['icmpv6']
PORT_PROTOCOL_NUMBERS = frozenset(PROTOCOLS[name] for name in PORT_PROTOCOLS)
# Protocols whose ports the kernel compares in a CTA_FILTER.
KERNEL_PORT_PROTOCOLS = (TCP, PROTOCOLS['udp'])

DEFAULT_LIMIT = 100
# Entries handed at once to list_entries()'s write (about 300 KiB of JSON).
WRITE_BATCH = 1024
# Delete requests sent at once while a flush dumps (see _plan).
DELETE_BATCH = 1024
SAMPLE_SIZE = 10
TOP_SIZE = 10
PROC_NETFILTER = '/proc/sys/net/netfilter/'

BE16 = struct.Struct('>H')
BE32 = struct.Struct('>I')
BE64 = struct.Struct('>Q')
HOST32 = struct.Struct('=I')

FILTER_OPTIONS = (
    'family', 'protocol', 'src', 'dst', 'sport', 'dport', 'reply_src', 'reply_dst',
    'reply_sport', 'reply_dport', 'state', 'status', 'nat', 'mark', 'zone', 'zone_dir', 'icmp_type', 'icmp_code',
)
# The directions a zone applies to, as returned in `zone_dir` (the kernel's
# NF_CT_ZONE_DIR_ORIG/REPL bits; the default zone 0 is `both`).
ZONE_DIRS = ('both', 'orig', 'reply')


class ConntrackError(Exception):
    """The kernel refused or failed a conntrack operation (message for the user)."""


# Everything build_filter(), list_entries() and flush_entries() raise for the
# user to read (bad input, a namespace that cannot be entered, the kernel's
# refusal); each message starts with the option or operation at fault.
ERRORS = (ValidationError, ConntrackError, _netlink.NamespaceError)


def filter_argument_spec():
    """The argument spec of the filter options, shared by both modules."""
    return dict(
        family=dict(type='str', default='both', choices=['ipv4', 'ipv6', 'both']),
        protocol=dict(type='str'),
        src=dict(type='str'),
        dst=dict(type='str'),
        sport=dict(type='str'),
        dport=dict(type='str'),
        reply_src=dict(type='str'),
        reply_dst=dict(type='str'),
        reply_sport=dict(type='str'),
        reply_dport=dict(type='str'),
        state=dict(type='list', elements='str'),
        status=dict(type='list', elements='str'),
        nat=dict(type='str', choices=list(NAT_CHOICES)),
        mark=dict(type='str'),
        zone=dict(type='int'),
        zone_dir=dict(type='str', choices=list(ZONE_DIRS)),
        icmp_type=dict(type='int'),
        icmp_code=dict(type='int'),
        netns=dict(type='str'),
    )


# ---------------------------------------------------------------- decoding
#
# A message is (buf, start, end): the bytes of a dump chunk and the span of
# one message's attributes. Nothing is decoded until asked for.

_HDR = _netlink.NLA_HDR.pack


def _fast_layout(size, src, dst):
    """(unpack, headers, struct codes) of a port-protocol tuple as ctnetlink_dump_tuples()
    has always written it: IP nest (src, dst), proto nest (num, sport, dport).
    Headers are compared as raw bytes, values read big-endian."""
    pad = '%ds' % size
    codes = ('8s', pad, '4s', pad, '8s', 'B3x', '4s', 'H2x', '4s', 'H2x')
    layout = struct.Struct('>' + ''.join(codes))
    headers = (
        _HDR(4 + 2 * (4 + size), CTA_TUPLE_IP | _netlink.NLA_F_NESTED) + _HDR(4 + size, src),
        _HDR(4 + size, dst),
        _HDR(28, CTA_TUPLE_PROTO | _netlink.NLA_F_NESTED) + _HDR(5, CTA_PROTO_NUM),
        _HDR(6, CTA_PROTO_SRC_PORT),
        _HDR(6, CTA_PROTO_DST_PORT),
    )
    return layout.size, (layout.unpack_from, headers, codes)


# Payload length -> fast decoder, for the two layouts that dominate tables.
_FAST = dict((
    _fast_layout(4, CTA_IP_V4_SRC, CTA_IP_V4_DST),
    _fast_layout(16, CTA_IP_V6_SRC, CTA_IP_V6_DST),
))


def _find(buf, pos, end, kind):
    """The payload span of the first attribute of type kind, or None."""
    unpack = _netlink.NLA_HDR.unpack_from
    while pos + 4 <= end:
        length, found = unpack(buf, pos)
        if length < 4:
            return None
        if found & _netlink.NLA_TYPE_MASK == kind:
            return pos + 4, pos + length
        pos += (length + 3) & ~3
    return None


def _tuple(buf, pos, end):
    """Decode a tuple attribute into (proto, src, dst, a, b, c, zone).

    src/dst are packed addresses. For port protocols a, b are the source
    and destination ports; for ICMP a, b, c are type, code and id. Fields
    the kernel did not send are None (a, b, c), b'' (addresses) or 0 (zone).
    """
    fast = _FAST.get(end - pos)
    if fast is not None:
        values = fast[0](buf, pos)
        if values[::2] == fast[1]:
            return values[5], values[1], values[3], values[7], values[9], None, 0
    return _tuple_slow(buf, pos, end)


def _tuple_slow(buf, pos, end):
    """_tuple() for any layout: walks every attribute."""
    unpack = _netlink.NLA_HDR.unpack_from
    proto = a = b = c = None
    src = dst = b''
    zone = 0
    while pos + 4 <= end:
        length, kind = unpack(buf, pos)
        if length < 4:
            break
        kind &= _netlink.NLA_TYPE_MASK
        stop = pos + length
        if kind == CTA_TUPLE_IP:
            inner = pos + 4
            while inner + 4 <= stop:
                ilen, ikind = unpack(buf, inner)
                if ilen < 4:
                    break
                if ikind in (CTA_IP_V4_SRC, CTA_IP_V6_SRC):
                    src = buf[inner + 4:inner + ilen]
                elif ikind in (CTA_IP_V4_DST, CTA_IP_V6_DST):
                    dst = buf[inner + 4:inner + ilen]
                inner += (ilen + 3) & ~3
        elif kind == CTA_TUPLE_PROTO:
            inner = pos + 4
            while inner + 4 <= stop:
                ilen, ikind = unpack(buf, inner)
                if ilen < 4:
                    break
                value = inner + 4
                if ikind == CTA_PROTO_NUM:
                    proto = buf[value]
                elif ikind == CTA_PROTO_SRC_PORT:
                    a = BE16.unpack_from(buf, value)[0]
                elif ikind == CTA_PROTO_DST_PORT:
                    b = BE16.unpack_from(buf, value)[0]
                elif ikind in (CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMPV6_TYPE):
                    a = buf[value]
                elif ikind in (CTA_PROTO_ICMP_CODE, CTA_PROTO_ICMPV6_CODE):
                    b = buf[value]
                elif ikind in (CTA_PROTO_ICMP_ID, CTA_PROTO_ICMPV6_ID):
                    c = BE16.unpack_from(buf, value)[0]
                inner += (ilen + 3) & ~3
        elif kind == CTA_TUPLE_ZONE:
            zone = BE16.unpack_from(buf, pos + 4)[0]
        pos += (length + 3) & ~3
    return proto, src, dst, a, b, c, zone


def _orig(buf, start, end):
    """The original tuple, decoded (ctnetlink sends it first)."""
    length, kind = _netlink.NLA_HDR.unpack_from(buf, start)
    if kind & _netlink.NLA_TYPE_MASK == CTA_TUPLE_ORIG:
        return _tuple(buf, start + 4, start + length)
    return _tuple(buf, *_find(buf, start, end, CTA_TUPLE_ORIG))


def _reply(buf, start, end):
    return _tuple(buf, *_find(buf, start, end, CTA_TUPLE_REPLY))


def _u32(buf, start, end, kind):
    span = _find(buf, start, end, kind)
    return BE32.unpack_from(buf, span[0])[0] if span else 0


def _tcp_state(buf, start, end):
    span = _find(buf, start, end, CTA_PROTOINFO)
    if span:
        span = _find(buf, span[0], span[1], CTA_PROTOINFO_TCP)
    if span:
        span = _find(buf, span[0], span[1], CTA_PROTOINFO_TCP_STATE)
    return buf[span[0]] if span else None


def _zone_of(zone, orig_zone, reply_zone):
    """(zone id, direction) from CTA_ZONE (None when absent) and the tuples' CTA_TUPLE_ZONE (0 when absent).

    ctnetlink_fill_info() sends at most one of the three: CTA_ZONE for a
    zone of both directions, CTA_TUPLE_ZONE in the tuple of the one
    direction a directional zone applies to, nothing for zone 0.
    """
    if zone is not None:
        return zone, 'both'
    if orig_zone:
        return orig_zone, 'orig'
    if reply_zone:
        return reply_zone, 'reply'
    return 0, 'both'


def _zone(buf, start, end, orig):
    """(zone id, direction) of one message whose original tuple is decoded (orig)."""
    span = _find(buf, start, end, CTA_ZONE)
    if span:
        return BE16.unpack_from(buf, span[0])[0], 'both'
    if orig[6]:
        return orig[6], 'orig'
    return _zone_of(None, 0, _reply(buf, start, end)[6])


_COUNTERS = struct.Struct('>4sQ4sQ')
_COUNTER_HEADERS = (_HDR(12, CTA_COUNTERS_PACKETS), _HDR(12, CTA_COUNTERS_BYTES))
# Text of packed addresses and names of status words seen so far: a
# table repeats few of them, and converting each time is the slow part.
_ADDRESS_TEXT = {}
_STATUS_NAMES = {}
_CACHE_SIZE = 65536


def _counters(buf, pos, end):
    """(packets, bytes) of a CTA_COUNTERS_ORIG/REPLY payload."""
    if end - pos == _COUNTERS.size:
        head_packets, packets, head_bytes, count = _COUNTERS.unpack_from(buf, pos)
        if (head_packets, head_bytes) == _COUNTER_HEADERS:
            return packets, count
    found = _netlink.attributes(buf, pos, end)
    return (BE64.unpack_from(buf, found[CTA_COUNTERS_PACKETS][0])[0],
            BE64.unpack_from(buf, found[CTA_COUNTERS_BYTES][0])[0])


def _address(packed):
    text = _ADDRESS_TEXT.get(packed)
    if text is None:
        if len(_ADDRESS_TEXT) >= _CACHE_SIZE:
            _ADDRESS_TEXT.clear()
        text = _ADDRESS_TEXT[packed] = socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6,
                                                        packed)
    return text


def _head(family, proto, state, status):
    """The start of an entry's JSON text: every field that depends on these four."""
    key = (family, proto, state, status)
    text = _HEADS.get(key)
    if text is None:
        if len(_HEADS) >= _CACHE_SIZE:
            _HEADS.clear()
        text = _HEADS[key] = _HEAD % tuple(json.dumps(value) for value in (
            FAMILY_NAMES[family], protocol_name(proto), _state_name(state) if proto == TCP else None,
            status_names(status), NAT_KINDS[status & (SRC_NAT | DST_NAT)]))
    return text


def _tuple_text(values):
    """The JSON object of a tuple: src, dst, then ports or ICMP type, code, id."""
    proto, src, dst, a, b, c, dummy = values
    src = _ADDRESS_TEXT.get(src) or _address(src)
    dst = _ADDRESS_TEXT.get(dst) or _address(dst)
    if proto in (ICMP, ICMPV6):
        return _ICMP_TUPLE % (src, dst, _number(a), _number(b), _number(c))
    if b is not None:
        return _PORT_TUPLE % (src, dst, a, b)
    if a is not None:
        return _PORT_TUPLE_NO_DPORT % (src, dst, a)
    return _ADDRESS_TUPLE % (src, dst)


def _number(value):
    return 'null' if value is None else '%d' % value


# The JSON text of entries, written with %: addresses (inet_ntop) and
# numbers need no escaping; every other string goes through json.dumps
# once per distinct head (_head).
_HEAD = '{"family": %s, "protocol": %s, "state": %s, "status": %s, "nat": %s, '
_ENTRY = '%s"timeout": %d, "mark": %d, "zone": %d, "zone_dir": "%s", "id": %d, "orig": %s, "reply": %s%s}'
_PORT_TUPLE = '{"src": "%s", "dst": "%s", "sport": %d, "dport": %d}'
_PORT_TUPLE_NO_DPORT = '{"src": "%s", "dst": "%s", "sport": %d, "dport": null}'
_ICMP_TUPLE = '{"src": "%s", "dst": "%s", "type": %s, "code": %s, "id": %s}'
_ADDRESS_TUPLE = '{"src": "%s", "dst": "%s"}'
_COUNTERS_TEXT = ', "counters": {"orig": {"packets": %d, "bytes": %d}, "reply": {"packets": %d, "bytes": %d}}'
_HEADS = {}


def status_names(status):
    names = _STATUS_NAMES.get(status)
    if names is None:
        names = _STATUS_NAMES[status] = tuple(name for bit, name in enumerate(STATUS_FLAGS) if status & (1 << bit))
    return list(names)


def _state_name(state):
    if state is None:
        return None
    return TCP_STATES[state] if state < len(TCP_STATES) else str(state)


def decode_entry(buf, start, end, family):
    """The full dict of one entry, as conntrack_info returns it."""
    return json.loads(_entry_text(buf, start, end, family)[0])


def _entry_text(buf, start, end, family):
    """(JSON text of the entry, raw original tuple, TCP state, status, raw reply tuple) in one pass.

    The text is the entry conntrack_info returns, written directly: a
    table of 200,000 entries is printed without building 200,000 dicts
    and encoding them again (see _result.EncodedList).
    """
    orig, reply, status, timeout, mark, ident, state, zone, counters = _fields(buf, start, end)
    proto = orig[0]
    zone_dir = 'both'
    if zone is None:
        zone = 0
        if orig[6] or reply[6]:
            zone, zone_dir = _zone_of(None, orig[6], reply[6])
    text = _ENTRY % (
        _HEADS.get((family, proto, state, status)) or _head(family, proto, state, status),
        timeout,
        mark,
        zone,
        zone_dir,
        ident,
        _tuple_text(orig),
        _tuple_text(reply),
        '' if counters is None else _COUNTERS_TEXT % counters,
    )
    return text, orig, state, status, reply


def _learn(buf, start, end):
    """Learn the shape of a message (for the next ones of its length), if it has one."""
    shape = _Shape.of(buf, start, end)
    if shape is not None:
        if len(_SHAPES) >= _CACHE_SIZE:
            _SHAPES.clear()
        _SHAPES[end - start] = shape


def _fields(buf, start, end):
    """(orig, reply, status, timeout, mark, id, TCP state, zone, counters) of one message.

    orig and reply as _tuple() returns them; zone None without CTA_ZONE;
    counters (orig packets, orig bytes, reply packets, reply bytes) or None.
    """
    shape = _SHAPES.get(end - start)
    if shape is not None:
        values = shape.unpack(buf, start) + _ABSENT
        if shape.headers(values) == shape.expected:
            return shape.read(values)
    shape = _Shape.of(buf, start, end)
    if shape is None:
        return _walk(buf, start, end)
    if len(_SHAPES) >= _CACHE_SIZE:
        _SHAPES.clear()
    _SHAPES[end - start] = shape
    return shape.read(shape.unpack(buf, start) + _ABSENT)


def _walk(buf, start, end):
    """_fields() for any message: walks every attribute."""
    unpack = _netlink.NLA_HDR.unpack_from
    be32 = BE32.unpack_from
    orig = reply = state = zone = counters_orig = counters_reply = None
    status = timeout = mark = ident = 0
    pos = start
    while pos + 4 <= end:
        length, kind = unpack(buf, pos)
        if length < 4:
            break
        kind &= _netlink.NLA_TYPE_MASK
        value = pos + 4
        if kind == CTA_TUPLE_ORIG:
            orig = _tuple(buf, value, pos + length)
        elif kind == CTA_TUPLE_REPLY:
            reply = _tuple(buf, value, pos + length)
        elif kind == CTA_STATUS:
            status = be32(buf, value)[0]
        elif kind == CTA_MARK:
            mark = be32(buf, value)[0]
        elif kind == CTA_ID:
            ident = be32(buf, value)[0]
        elif kind == CTA_TIMEOUT:
            timeout = be32(buf, value)[0]
        elif kind == CTA_COUNTERS_ORIG:
            counters_orig = _counters(buf, value, pos + length)
        elif kind == CTA_COUNTERS_REPLY:
            counters_reply = _counters(buf, value, pos + length)
        elif kind == CTA_PROTOINFO:
            state = _tcp_state(buf, pos, pos + length)
        elif kind == CTA_ZONE:
            zone = BE16.unpack_from(buf, value)[0]
        pos += (length + 3) & ~3
    counters = None
    if counters_orig is not None and counters_reply is not None:
        counters = counters_orig + counters_reply
    return orig, reply, status, timeout, mark, ident, state, zone, counters


# Appended to every message a shape reads: what absent attributes read as.
_ABSENT = (0, None)
_SCALARS = {CTA_STATUS: 'status', CTA_TIMEOUT: 'timeout', CTA_MARK: 'mark', CTA_ID: 'id'}
_TUPLE_FIELDS = ('src', 'dst', 'proto', 'sport', 'dport')
_TCP_STATE_HEADER = _HDR(5, CTA_PROTOINFO_TCP_STATE)
# Message length -> the _Shape of the last message of that length.
_SHAPES = {}


class _Shape:
    """One attribute layout of dump messages, read with a single struct call.

    Most messages of a table have the same attributes in the same order
    and of the same lengths (every UDP SNAT entry, every TCP one...). A
    shape is learnt from the first message of a length: one struct reads
    every attribute header as raw bytes and every value needed. A later
    message of that length is read with it only if all its headers are
    the same bytes, which pins every value to its place. Messages no
    shape describes (ICMP tuples, directional zones, nestings other than
    ctnetlink's usual ones) are walked attribute by attribute (_walk).
    """

    def __init__(self, codes, size, headers, fields):
        self.unpack = struct.Struct('>' + ''.join(codes)).unpack_from
        self.headers = operator.itemgetter(*[place for place, dummy in headers])
        self.expected = tuple(raw for dummy, raw in headers)
        zero, none = size, size + 1   # the places of _ABSENT after the size values read
        tuples = []
        for prefix in ('orig_', 'reply_'):
            places = [fields.get(prefix + name, none) for name in ('proto', 'src', 'dst', 'sport', 'dport')]
            tuples.append(operator.itemgetter(*(places + [none, zero])))
        self.orig, self.reply = tuples
        self.scalars = operator.itemgetter(*[fields.get(name, zero) for name in ('status', 'timeout', 'mark', 'id')]
                                           + [fields.get(name, none) for name in ('state', 'zone')])
        counters = [fields.get(name) for name in ('orig_packets', 'orig_bytes', 'reply_packets', 'reply_bytes')]
        self.counters = operator.itemgetter(*counters) if None not in counters else None
        self.fast = _FastShape.of(codes, headers, fields)

    def read(self, values):
        """_fields() of a message unpacked (plus _ABSENT) with this shape."""
        counters = self.counters(values) if self.counters is not None else None
        return (self.orig(values), self.reply(values)) + self.scalars(values) + (counters,)

    @classmethod
    def of(cls, buf, start, end):
        """The shape of the message buf[start:end], or None."""
        codes = []      # struct codes, pads included
        places = []     # the codes that yield a value, in order
        headers = []    # (place, raw bytes) of every attribute header
        fields = {}     # name -> place

        def header(code, raw):
            headers.append((len(places), raw))
            places.append(code)
            codes.append(code)

        def value(code, name):
            fields[name] = len(places)
            places.append(code)
            codes.append(code)

        unpack = _netlink.NLA_HDR.unpack_from
        pos = start
        while pos + 4 <= end:
            length, kind = unpack(buf, pos)
            if length < 4:
                return None
            aligned = (length + 3) & ~3
            header('4s', bytes(buf[pos:pos + 4]))
            kind &= _netlink.NLA_TYPE_MASK
            payload = pos + 4
            if kind in (CTA_TUPLE_ORIG, CTA_TUPLE_REPLY):
                fast = _FAST.get(length - 4)
                if fast is None or fast[0](buf, payload)[::2] != fast[1]:
                    return None
                prefix = 'orig_' if kind == CTA_TUPLE_ORIG else 'reply_'
                for index, code in enumerate(fast[2]):
                    if index % 2:
                        value(code, prefix + _TUPLE_FIELDS[index // 2])
                    else:
                        header(code, fast[1][index // 2])
            elif kind in _SCALARS and length == 8:
                value('I', _SCALARS[kind])
            elif kind == CTA_ZONE and length == 6:
                value('H2x', 'zone')
            elif kind in (CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY) and length - 4 == _COUNTERS.size:
                heads = _COUNTERS.unpack_from(buf, payload)[::2]
                if heads != _COUNTER_HEADERS:
                    return None
                prefix = 'orig_' if kind == CTA_COUNTERS_ORIG else 'reply_'
                for raw, name in zip(heads, ('packets', 'bytes')):
                    header('4s', raw)
                    value('Q', prefix + name)
            elif kind == CTA_PROTOINFO:
                inner = bytes(buf[payload:payload + 8])
                if (length < 13 or inner[4:] != _TCP_STATE_HEADER
                        or unpack(inner, 0)[1] & _netlink.NLA_TYPE_MASK != CTA_PROTOINFO_TCP):
                    return None
                header('4s', inner[:4])
                header('4s', inner[4:])
                value('B', 'state')
                codes.append('%dx' % (aligned - 13))
            elif aligned > 4:
                codes.append('%dx' % (aligned - 4))
            pos += aligned
        if pos != end or struct.calcsize('>' + ''.join(codes)) != end - start or len(headers) < 2:
            return None
        return cls(codes, len(places), headers, fields)


class _FastShape:
    """A _Shape's listing path: an entry's JSON text by one % from a template.

    A message of a shape differs from another only by its values. The
    text of a port-protocol entry depends on its protocol, TCP state,
    status and four addresses (the key) and on numbers (timeout, mark,
    zone, id, ports, counters). A table repeats few keys (a NAT gateway:
    sources x destinations), so the text with everything but the numbers
    filled in is kept per key (a template), and an entry is
    template % numbers. Headers are compared all at once, as the bits of
    the message under a mask; values are read by a struct that skips them.
    """

    __slots__ = ('mask', 'expected', 'unpack', 'key', 'numbers', 'port', 'templates', 'layout')

    REQUIRED = ('orig_proto', 'orig_src', 'orig_dst', 'orig_sport', 'orig_dport',
                'reply_src', 'reply_dst', 'reply_sport', 'reply_dport', 'status', 'timeout', 'id')
    COUNTERS = ('orig_packets', 'orig_bytes', 'reply_packets', 'reply_bytes')

    @classmethod
    def of(cls, codes, headers, fields):
        """The fast path of a shape (its struct codes, headers and fields), or None."""
        if any(name not in fields for name in cls.REQUIRED):
            return None
        fast = cls()
        header_at = dict(headers)
        values = []         # codes of the values-only struct
        index = {}          # place -> index among the values it reads
        spans = []          # (byte offset, raw bytes) of every header
        offset = place = 0
        for code in codes:
            size = struct.calcsize('>' + code)
            if code.lstrip('0123456789') == 'x':    # a pad: no value, no place
                values.append(code)
            elif place in header_at:
                spans.append((offset, header_at[place]))
                values.append('%dx' % size)
                place += 1
            else:
                index[place] = len(index)
                values.append(code)
                place += 1
            offset += size
        fast.mask = fast.expected = 0
        for start, raw in spans:
            shift = 8 * (offset - start - len(raw))
            fast.mask |= ((1 << (8 * len(raw))) - 1) << shift
            fast.expected |= int.from_bytes(raw, 'big') << shift
        fast.unpack = struct.Struct('>' + ''.join(values)).unpack_from

        def getter(names):
            return operator.itemgetter(*[index[fields[name]] for name in names])

        has = dict((name, name in fields) for name in ('state', 'mark', 'zone'))
        counters = all(name in fields for name in cls.COUNTERS)
        fast.key = getter(['orig_proto'] + (['state'] if has['state'] else [])
                          + ['status', 'orig_src', 'orig_dst', 'reply_src', 'reply_dst'])
        fast.numbers = getter(['timeout'] + [name for name in ('mark', 'zone') if has[name]]
                              + ['id', 'orig_sport', 'orig_dport', 'reply_sport', 'reply_dport']
                              + (list(cls.COUNTERS) if counters else []))
        fast.port = getter(['orig_proto', 'orig_dport'])
        fast.layout = (has['state'], has['mark'], has['zone'], counters)
        fast.templates = {}
        return fast

    def fields(self, key):
        """(family, proto, state, status, orig src, orig dst, reply src, reply dst) of a key."""
        has_state = self.layout[0]
        proto, state = key[0], key[1] if has_state else None
        status, src, dst, reply_src, reply_dst = key[1 + has_state:]
        return (FAMILIES['ipv4'] if len(src) == 4 else FAMILIES['ipv6'], proto, state, status, src, dst,
                reply_src, reply_dst)

    def template(self, key):
        """The text of the entries of key, numbers left as %d ('' when the path does not apply)."""
        templates = self.templates
        if len(templates) >= _TEMPLATES:
            templates.clear()
        family, proto, state, status = self.fields(key)[:4]
        if proto not in PORT_PROTOCOL_NUMBERS:
            templates[key] = ''
            return ''
        has_state, has_mark, has_zone, counters = self.layout
        addresses = tuple(_address(packed) for packed in key[-4:])
        tuple_text = '{"src": "%s", "dst": "%s", "sport": %%d, "dport": %%d}'
        text = ''.join((
            _head(family, proto, state, status).replace('%', '%%'),
            '"timeout": %d, "mark": ', '%d' if has_mark else '0', ', "zone": ', '%d' if has_zone else '0',
            ', "zone_dir": "both", "id": %d, "orig": ', tuple_text % addresses[:2],
            ', "reply": ', tuple_text % addresses[2:], _COUNTERS_TEXT if counters else '', '}'))
        templates[key] = text
        return text


# Templates kept per fast shape (each about 300 bytes).
_TEMPLATES = 8192


# ---------------------------------------------------------------- filters

class _Address:
    """An address or network to compare with packed addresses."""

    def __init__(self, network):
        self.host = network.network_address.packed if network.prefixlen == network.max_prefixlen else None
        self.value = int(network.network_address)
        self.mask = int(network.netmask)

    def matches(self, packed):
        if self.host is not None:
            return packed == self.host
        return int.from_bytes(packed, 'big') & self.mask == self.value


class _TupleFilter:
    """Conditions on one direction: address or CIDR, port or range."""

    def __init__(self, src=None, dst=None, sport=None, dport=None):
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport

    def __bool__(self):
        return not (self.src is None and self.dst is None and self.sport is None and self.dport is None)

    def matches(self, values):
        proto, src, dst, sport, dport = values[:5]
        if self.src is not None and not self.src.matches(src):
            return False
        if self.dst is not None and not self.dst.matches(dst):
            return False
        if self.sport is not None or self.dport is not None:
            if proto not in PORT_PROTOCOL_NUMBERS:
                return False
            if self.sport is not None and not self.sport[0] <= sport <= self.sport[1]:
                return False
            if self.dport is not None and not self.dport[0] <= dport <= self.dport[1]:
                return False
        return True

    def kernel(self, proto, family, with_proto):
        """(CTA_FILTER flags, nested tuple payload, exact) for the kernel.

        The protocol number goes in when with_proto (the original
        direction carries it) or when a port needs it.
        """
        flags = 0
        ip = b''
        # Only IPv4 addresses: the kernel compares IPv6 ones inverted (see the
        # module docstring), so those stay in userspace.
        kernel_ip = family == socket.AF_INET
        for attr, kind, flag in ((self.src, CTA_IP_V4_SRC, FILTER_IP_SRC), (self.dst, CTA_IP_V4_DST, FILTER_IP_DST)):
            if kernel_ip and attr is not None and attr.host is not None:
                flags |= flag
                ip += _netlink.nla(kind, attr.host)
        l4 = b''
        if proto in KERNEL_PORT_PROTOCOLS:
            for port, kind, flag in ((self.sport, CTA_PROTO_SRC_PORT, FILTER_SRC_PORT),
                                     (self.dport, CTA_PROTO_DST_PORT, FILTER_DST_PORT)):
                if port is not None and port[0] == port[1]:
                    flags |= flag
                    l4 += _netlink.nla(kind, BE16.pack(port[0]))
        if proto is not None and (with_proto or l4):
            flags |= FILTER_PROTO_NUM
            l4 = _netlink.nla(CTA_PROTO_NUM, struct.pack('B', proto)) + l4
        payload = b''
        if ip:
            payload += _netlink.nla_nested(CTA_TUPLE_IP, ip)
        if l4:
            payload += _netlink.nla_nested(CTA_TUPLE_PROTO, l4)
        exact = (
            all(attr is None or (kernel_ip and attr.host is not None) for attr in (self.src, self.dst))
            and all(port is None or (port[0] == port[1] and proto in KERNEL_PORT_PROTOCOLS)
                    for port in (self.sport, self.dport)))
        return flags, payload, exact


class Filter:
    """Parsed conntrack filter options; see build_filter()."""

    def __init__(self):
        self.families = (socket.AF_INET, socket.AF_INET6)
        self.protocol = None
        self.orig = _TupleFilter()
        self.reply = _TupleFilter()
        self.states = None
        self.status = None
        self.nat_any = False
        self.mark = None
        self.zone = None
        self.zone_dir = None
        self.icmp = None    # (type or None, code or None) of the original tuple

    @property
    def narrows(self):
        """True when something besides the family limits the entries."""
        return bool(
            self.protocol is not None or self.orig or self.reply or self.states is not None
            or self.status is not None or self.nat_any or self.mark is not None or self.zone is not None
            or self.icmp is not None)

    @property
    def mutable(self):
        """True when a condition is on a field an entry can change (mark, status, state)."""
        return self.states is not None or self.status is not None or self.nat_any or self.mark is not None

    def matches(self, buf, start, end):
        """The whole filter, checked in userspace on one message."""
        if self.status is not None:
            if _u32(buf, start, end, CTA_STATUS) & self.status[1] != self.status[0]:
                return False
        if self.nat_any and not _u32(buf, start, end, CTA_STATUS) & (SRC_NAT | DST_NAT):
            return False
        if self.mark is not None and _u32(buf, start, end, CTA_MARK) & self.mark[1] != self.mark[0]:
            return False
        if self.protocol is not None or self.orig or self.zone is not None or self.icmp is not None:
            orig = _orig(buf, start, end)
            if self.protocol is not None and orig[0] != self.protocol:
                return False
            if self.icmp is not None and (
                    orig[0] not in (ICMP, ICMPV6) or self.icmp[0] not in (None, orig[3])
                    or self.icmp[1] not in (None, orig[4])):
                return False
            if self.zone is not None:
                zone, zone_dir = _zone(buf, start, end, orig)
                if zone != self.zone or (self.zone_dir is not None and zone_dir != self.zone_dir):
                    return False
            if not self.orig.matches(orig):
                return False
        if self.reply and not self.reply.matches(_reply(buf, start, end)):
            return False
        if self.states is not None and _tcp_state(buf, start, end) not in self.states:
            return False
        return True

    def kernel_request(self, family):
        """(attributes, exact) asking the kernel to filter one family.

        exact is True when the kernel, if it honours every attribute,
        selects precisely the entries matches() accepts.
        """
        attrs = b''
        exact = self.states is None and not self.nat_any and self.zone is None and self.icmp is None
        if self.mark is not None:
            attrs += _netlink.nla(CTA_MARK, BE32.pack(self.mark[0]))
            attrs += _netlink.nla(CTA_MARK_MASK, BE32.pack(self.mark[1]))
        if self.status is not None:
            attrs += _netlink.nla(CTA_STATUS, BE32.pack(self.status[0]))
            attrs += _netlink.nla(CTA_STATUS_MASK, BE32.pack(self.status[1]))
        filter_attrs = b''
        for direction, tuple_type, flags_type in ((self.orig, CTA_TUPLE_ORIG, CTA_FILTER_ORIG_FLAGS),
                                                  (self.reply, CTA_TUPLE_REPLY, CTA_FILTER_REPLY_FLAGS)):
            flags, payload, tuple_exact = direction.kernel(self.protocol, family, direction is self.orig)
            exact = exact and tuple_exact
            if flags:
                attrs += _netlink.nla_nested(tuple_type, payload)
                filter_attrs += _netlink.nla(flags_type, HOST32.pack(flags))
        if filter_attrs:
            attrs += _netlink.nla_nested(CTA_FILTER, filter_attrs)
        return attrs, exact


def _choices(values, allowed, param):
    result = set()
    for value in values:
        name = str(value).strip().upper()
        if name not in allowed:
            raise ValidationError(param, 'unknown value %s (one of %s)' % (show(value), ', '.join(allowed)))
        result.add(name)
    return result


def parse_status(values, param):
    """(value, mask) of status names: NAME must be set, !NAME must not; UNREPLIED is !SEEN_REPLY.

    Raises ValidationError on an unknown name or a flag both wanted and refused.
    """
    value = mask = 0
    for item in values:
        text = str(item).strip().upper()
        negated = text.startswith('!')
        name = text[1:].strip() if negated else text
        if name == 'UNREPLIED':
            name, negated = 'SEEN_REPLY', not negated
        if name not in STATUS_BITS:
            raise ValidationError(param, 'unknown value %s (one of %s, UNREPLIED, each may start with ! to '
                                  'refuse it)' % (show(item), ', '.join(STATUS_FLAGS)))
        bit = STATUS_BITS[name]
        if mask & bit and bool(value & bit) == negated:
            raise ValidationError(param, '%s both required and refused: nothing could match' % name)
        mask |= bit
        if not negated:
            value |= bit
    return value, mask


def build_filter(params):
    """Parse the filter options (missing or None: no filter) into a Filter.

    Raises ValidationError naming the offending option. Options: family
    (ipv4, ipv6, both), protocol, src, dst, sport, dport, reply_src,
    reply_dst, reply_sport, reply_dport, state (TCP states), status (flags
    that must all be set), nat (snat, dnat, any, none), mark (value or
    value/mask), zone (id, any direction), zone_dir (both, orig, reply:
    the direction the zone applies to; needs zone).
    """
    def given(name):
        return params.get(name) is not None

    flt = Filter()
    family = params.get('family') or 'both'
    if family not in ('ipv4', 'ipv6', 'both'):
        raise ValidationError('family', 'must be one of ipv4, ipv6, both, got %s' % (show(family),))
    wanted = None if family == 'both' else family
    if given('protocol'):
        flt.protocol = parse_protocol(params['protocol'], 'protocol')
    for direction, prefix in ((flt.orig, ''), (flt.reply, 'reply_')):
        for field in ('src', 'dst'):
            name = prefix + field
            if given(name):
                network = parse_network(params[name], name, wanted)
                wanted = 'ipv4' if network.version == 4 else 'ipv6'
                setattr(direction, field, _Address(network))
        for field in ('sport', 'dport'):
            name = prefix + field
            if given(name):
                if flt.protocol is not None and flt.protocol not in PORT_PROTOCOL_NUMBERS:
                    raise ValidationError(name, 'protocol %s has no ports (ports need one of %s)'
                                          % (protocol_name(flt.protocol), ', '.join(PORT_PROTOCOLS)))
                setattr(direction, field, parse_port_range(params[name], name))
    if wanted is not None:
        flt.families = (FAMILIES[wanted],)
    if given('state'):
        if flt.protocol not in (None, TCP):
            raise ValidationError('state', 'TCP states need protocol tcp, not %s' % protocol_name(flt.protocol))
        flt.protocol = TCP
        flt.states = frozenset(TCP_STATES.index(name) for name in _choices(params['state'], TCP_STATES, 'state'))
    value = mask = 0
    if given('status'):
        value, mask = parse_status(params['status'], 'status')
    nat = params.get('nat')
    if nat is not None:
        if nat not in NAT_CHOICES:
            raise ValidationError('nat', 'must be one of %s, got %s' % (', '.join(NAT_CHOICES), show(nat)))
        if nat == 'any':
            flt.nat_any = True
        else:
            bit = dict(snat=SRC_NAT, dnat=DST_NAT, none=SRC_NAT | DST_NAT)[nat]
            if nat != 'none':
                if mask & bit and not value & bit:
                    raise ValidationError('nat', '%s contradicts status !%s' % (nat, status_names(bit)[0]))
                value |= bit
            elif value & bit:
                raise ValidationError('nat', 'none contradicts status %s' % ', '.join(status_names(value & bit)))
            mask |= bit
    if mask:
        flt.status = (value, mask)
    if given('mark'):
        mark = parse_mark(params['mark'], 'mark')
        if mark[0] & ~mark[1]:
            raise ValidationError('mark', 'value 0x%x has bits outside mask 0x%x: nothing could match' % mark)
        flt.mark = mark
    icmp = []
    for name in ('icmp_type', 'icmp_code'):
        number = params.get(name)
        if number is not None:
            if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 255:
                raise ValidationError(name, 'must be an integer 0-255, got %s' % (show(number),))
            if flt.protocol not in (ICMP, ICMPV6):
                raise ValidationError(name, 'needs protocol icmp or icmpv6, not %s' % (
                    'none' if flt.protocol is None else protocol_name(flt.protocol)))
        icmp.append(number)
    if icmp != [None, None]:
        flt.icmp = tuple(icmp)
    if given('zone'):
        zone = params['zone']
        if isinstance(zone, bool) or not isinstance(zone, int) or not 0 <= zone <= 65535:
            raise ValidationError('zone', 'must be an integer 0-65535, got %s' % (show(zone),))
        flt.zone = zone
    zone_dir = params.get('zone_dir')
    if zone_dir is not None:
        if zone_dir not in ZONE_DIRS:
            raise ValidationError('zone_dir', 'must be one of %s, got %s' % (', '.join(ZONE_DIRS), show(zone_dir)))
        if flt.zone is None:
            raise ValidationError('zone_dir', 'needs zone: it narrows a zone to the direction it applies to')
        if flt.zone == 0 and zone_dir != 'both':
            raise ValidationError('zone_dir', '%s: the default zone 0 applies to both directions' % zone_dir)
        flt.zone_dir = zone_dir
    return flt


def check_flush_all(flt, flush_all, params):
    """conntrack_flush's rail: no filter needs all=true, and all=true takes none.

    params are the module's options (to name the filters given).
    """
    if flt.narrows and flush_all:
        given = [name for name in FILTER_OPTIONS if name != 'family' and params.get(name) is not None]
        raise ValidationError('all', 'flushes every entry and cannot be combined with filters (%s)'
                              % ', '.join(given))
    if not flt.narrows and not flush_all:
        raise ValidationError('all', 'no filter given: set all=true to flush every entry, or give filters')


# ---------------------------------------------------------------- kernel access

def _read_proc(name):
    try:
        with open(PROC_NETFILTER + name) as handle:
            return int(handle.read())
    except (IOError, OSError, ValueError):
        return None


def _kernel_error(exc, what):
    code = exc.errno
    if code == errno.EPERM:
        return ConntrackError('%s: permission denied: needs root or CAP_NET_ADMIN' % what)
    if code in (errno.EPROTONOSUPPORT, errno.EOPNOTSUPP, errno.ENOENT, errno.EAFNOSUPPORT):
        return ConntrackError('%s: the kernel has no conntrack netlink support (nf_conntrack_netlink): %s'
                              % (what, exc.strerror or exc))
    return ConntrackError('%s: %s' % (what, exc.strerror or exc))


def _open(what):
    try:
        return _netlink.NetlinkSocket()
    except OSError as exc:
        raise _kernel_error(exc, what)


def _dump(sock, flt, family, what, kernel=True, trusted=False):
    """Yield (chunk, start, end) of the entries of one family that match flt.

    trusted: the kernel is known to apply this (exact) filter completely,
    so the entries it sends need no second look.
    """
    request = flt.kernel_request(family)[0] if kernel else b''
    try:
        messages = sock.dump(CT_GET, family, request)
        first = next(messages, None)
    except OSError as exc:
        if request and exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            # A kernel that knows CTA_FILTER but refuses this one (5.8 had
            # a broken flag check): filter in userspace only.
            yield from _dump(sock, flt, family, what, kernel=False)
            return
        raise _kernel_error(exc, what)
    if first is None:
        return
    try:
        if not flt.narrows or (trusted and request):
            yield first
            yield from messages
            return
        matches = flt.matches
        if matches(*first):
            yield first
        for chunk, start, end in messages:
            if matches(chunk, start, end):
                yield chunk, start, end
    except OSError as exc:
        raise _kernel_error(exc, what)


# Status bits the summary counts by (NAT kind, replied, assured).
SEEN_REPLY = STATUS_BITS['SEEN_REPLY']
ASSURED = STATUS_BITS['ASSURED']
_SUMMARY_STATUS = SRC_NAT | DST_NAT | SEEN_REPLY | ASSURED
HALF_OPEN = frozenset((TCP_STATES.index('SYN_SENT'), TCP_STATES.index('SYN_RECV')))
# What summary_details adds (each a pass over every entry's fields).
DETAILS = ('zones', 'marks', 'talkers')


class _Summary:
    """Counts by family, protocol, TCP state, NAT kind and reply status; top sources and destinations.

    Everything but the details (zones, marks, talkers) is a function of an
    entry's family, protocol, state, status and addresses, so entries of
    one _FastShape key are counted once per key (fold); the details read
    each entry's numbers and are computed only when asked.
    """

    def __init__(self, details=()):
        self.kinds = {}
        self.sources = {}
        self.destinations = {}
        self.translated = {}
        self.ports = {}
        self.details = frozenset(details)
        self.zones = {}
        self.marks = {}
        self.talkers = {}
        self.accounted = 0

    def add(self, buf, start, end, family):
        """Count one message, decoding only what the summary needs."""
        orig = _orig(buf, start, end)
        state = _tcp_state(buf, start, end) if orig[0] == TCP else None
        status = _u32(buf, start, end, CTA_STATUS)
        self.count(family, orig, state, status, _reply(buf, start, end) if status & (SRC_NAT | DST_NAT) else None)

    def count(self, family, orig, state, status, reply):
        """Count one entry from its raw tuples, TCP state and status."""
        proto = orig[0]
        self._kind(family, proto, state, status, orig[1], orig[2], reply and reply[1], reply and reply[2], 1)
        if proto in PORT_PROTOCOL_NUMBERS:
            key = (proto, orig[4])
            counts = self.ports
            counts[key] = counts.get(key, 0) + 1

    def _kind(self, family, proto, state, status, src, dst, reply_src, reply_dst, number):
        counts = self.kinds
        key = (family, proto, state if proto == TCP else None, status & _SUMMARY_STATUS)
        counts[key] = counts.get(key, 0) + number
        counts = self.sources
        key = (family, src)
        counts[key] = counts.get(key, 0) + number
        counts = self.destinations
        key = (family, dst)
        counts[key] = counts.get(key, 0) + number
        if status & (SRC_NAT | DST_NAT):
            counts = self.translated
            if status & SRC_NAT:
                key = (SRC_NAT, family, reply_dst)
                counts[key] = counts.get(key, 0) + number
            if status & DST_NAT:
                key = (DST_NAT, family, reply_src)
                counts[key] = counts.get(key, 0) + number

    def detail(self, buf, start, end, family):
        """Count the details of one message: its zone, mark, and bytes and packets by original source."""
        orig, reply, dummy, dummy, mark, dummy, dummy, zone, counters = _fields(buf, start, end)
        if 'zones' in self.details:
            key = _zone_of(zone, orig[6], reply[6]) if zone is not None or orig[6] or reply[6] else (0, 'both')
            self.zones[key] = self.zones.get(key, 0) + 1
        if 'marks' in self.details:
            self.marks[mark] = self.marks.get(mark, 0) + 1
        if 'talkers' in self.details and counters is not None:
            self.accounted += 1
            key = (family, orig[1])
            talker = self.talkers.get(key)
            if talker is None:
                talker = self.talkers[key] = [0, 0, 0]
            talker[0] += counters[1] + counters[3]
            talker[1] += counters[0] + counters[2]
            talker[2] += 1

    def fold(self, tally, seen):
        """Count the entries of tally ({template: entries}) by their fields; empty both."""
        kind = self._kind
        for template, number in tally.items():
            fast, key = seen[template]
            kind(*(fast.fields(key) + (number,)))
        tally.clear()
        seen.clear()

    def fold_keys(self, counted, owners):
        """Count the entries of counted ({key: entries}, key of owners[key]) by their fields; empty both."""
        kind = self._kind
        for key, number in counted.items():
            kind(*(owners[key].fields(key) + (number,)))
        counted.clear()
        owners.clear()

    def result(self):
        by = dict(families={}, protocols={}, tcp_states={}, nat={}, unreplied=0, assured=0, half_open=0)
        for (family, proto, state, status), count in self.kinds.items():
            for table, name in ((by['families'], FAMILY_NAMES[family]), (by['protocols'], protocol_name(proto)),
                                (by['nat'], NAT_KINDS[status & (SRC_NAT | DST_NAT)])):
                table[name] = table.get(name, 0) + count
            if state is not None:
                name = _state_name(state)
                by['tcp_states'][name] = by['tcp_states'].get(name, 0) + count
                if state in HALF_OPEN:
                    by['half_open'] += count
            if not status & SEEN_REPLY:
                by['unreplied'] += count
            if status & ASSURED:
                by['assured'] += count
        by['top_sources'] = _addresses(self.sources)
        by['top_destinations'] = _addresses(self.destinations)
        for bit, name in ((SRC_NAT, 'top_translated_sources'), (DST_NAT, 'top_translated_destinations')):
            by[name] = _addresses(dict(((family, packed), count) for (kind, family, packed), count
                                       in self.translated.items() if kind == bit))
        by['top_ports'] = [
            dict(protocol=protocol_name(proto), port=port, count=count)
            for (proto, port), count in _top(self.ports)]
        if 'zones' in self.details:
            ranked = sorted(self.zones.items(), key=lambda item: (-item[1], item[0]))
            by['zones'] = [dict(zone=zone, zone_dir=zone_dir, count=count) for (zone, zone_dir), count in ranked]
        if 'marks' in self.details:
            by['marks'] = [dict(mark=mark, count=count) for mark, count in _top(self.marks)]
        if 'talkers' in self.details:
            by['accounted'] = self.accounted
            for index, name in ((0, 'top_talkers_bytes'), (1, 'top_talkers_packets')):
                ranked = sorted(self.talkers.items(), key=lambda item: (-item[1][index], item[0]))[:TOP_SIZE]
                by[name] = [dict(address=socket.inet_ntop(family, packed), bytes=values[0], packets=values[1],
                                 entries=values[2]) for (family, packed), values in ranked]
        return by


def _top(counts):
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_SIZE]


def _addresses(counts):
    """The TOP_SIZE most frequent (family, packed address) as [dict(address, count)]."""
    return [dict(address=socket.inet_ntop(family, packed), count=count) for (family, packed), count in _top(counts)]


def list_entries(flt, netns=None, limit=DEFAULT_LIMIT, summary_only=False, write=None, details=()):
    """Read the table: dict(entries, count, total, max, truncated, summary).

    entries is an EncodedList: the entries as JSON text, decoded on access.
    With write, entries are not held: write(texts) receives them, in
    batches of up to WRITE_BATCH JSON texts as they are decoded, and the
    result has no `entries` (conntrack_info prints them as they come, see
    _result.exit_streamed). Entries decoded before an error are written
    before it is raised.

    count and summary cover every matching entry; entries holds at most
    `limit` of them (0: no cap; none with summary_only). total and max are
    nf_conntrack_count and nf_conntrack_max as the namespace sees them.
    details: names of DETAILS the summary adds (zones, marks, talkers),
    which cost a read of every entry's numbers.
    """
    held = EncodedList()
    texts = held.texts if write is None else []
    listed = 0
    count = 0
    summary = _Summary(details)
    detail = summary.detail if details else None
    cap = 0 if summary_only else (limit or None)
    # The fast path (see _FastShape), inlined: it runs once per entry.
    shapes = _SHAPES
    from_bytes = int.from_bytes
    ports = summary.ports
    tally = {}      # template -> entries listed with it, folded into summary
    seen = {}       # template -> (fast shape, key), for the fold
    counted = {}    # key -> entries counted only (beyond the limit), folded into summary
    owners = {}     # key -> a fast shape of that key, for the fold
    try:
        with _netlink.network_namespace(netns):
            with _open('conntrack_info') as sock:
                for family in flt.families:
                    for chunk, start, end in _dump(sock, flt, family, 'conntrack_info'):
                        count += 1
                        if detail is not None:
                            detail(chunk, start, end, family)
                        if cap is not None and listed >= cap:
                            # Counted only: the key and port of a fast shape suffice.
                            shape = shapes.get(end - start)
                            fast = shape.fast if shape is not None else None
                            if fast is not None and from_bytes(chunk[start:end], 'big') & fast.mask == fast.expected:
                                values = fast.unpack(chunk, start)
                                key = fast.key(values)
                                number = counted.get(key)
                                if number is None:
                                    if len(counted) >= _TEMPLATES:
                                        summary.fold_keys(counted, owners)
                                    counted[key] = 1
                                    owners[key] = fast
                                else:
                                    counted[key] = number + 1
                                port = fast.port(values)
                                if port[0] in PORT_PROTOCOL_NUMBERS:
                                    ports[port] = ports.get(port, 0) + 1
                            else:
                                summary.add(chunk, start, end, family)
                                if shape is None:
                                    _learn(chunk, start, end)
                            continue
                        listed += 1
                        shape = shapes.get(end - start)
                        fast = shape.fast if shape is not None else None
                        if fast is not None and from_bytes(chunk[start:end], 'big') & fast.mask == fast.expected:
                            values = fast.unpack(chunk, start)
                            key = fast.key(values)
                            template = fast.templates.get(key)
                            if template is None:
                                template = fast.template(key)
                            if template:
                                texts.append(template % fast.numbers(values))
                                port = fast.port(values)
                                ports[port] = ports.get(port, 0) + 1
                                number = tally.get(template)
                                if number is None:
                                    if len(tally) >= _TEMPLATES:
                                        summary.fold(tally, seen)
                                    tally[template] = 1
                                    seen[template] = (fast, key)
                                else:
                                    tally[template] = number + 1
                                if write is not None and len(texts) == WRITE_BATCH:
                                    write(texts)
                                    texts = []
                                continue
                        text, orig, state, status, reply = _entry_text(chunk, start, end, family)
                        texts.append(text)
                        summary.count(family, orig, state, status, reply)
                        if write is not None and len(texts) == WRITE_BATCH:
                            write(texts)
                            texts = []
            total = _read_proc('nf_conntrack_count')
            maximum = _read_proc('nf_conntrack_max')
    finally:
        if write is not None:
            write(texts)
    summary.fold(tally, seen)
    summary.fold_keys(counted, owners)
    result = dict(count=count, total=total, max=maximum, truncated=listed < count, summary=summary.result())
    if write is None:
        result = dict(entries=held, **result)
    return result


# ---------------------------------------------------------------- deleting

def control_connection(environ):
    """The protect tuple of the SSH session in environ, or [] without one.

    SSH_CONNECTION is 'client_ip client_port server_ip server_port' as sshd
    sets it. The result is a list of (client, client_port, server,
    server_port) tuples, the form flush_entries() takes as `protect`.
    """
    text = (environ.get('SSH_CONNECTION') or '').strip()
    if not text:
        return []
    fields = text.split()
    if len(fields) != 4:
        raise ValidationError('protect_control_connection',
                              'SSH_CONNECTION %s is not "client port server port"' % (show(text),))
    protect = [tuple(fields)]
    _protect_keys(protect, 'protect_control_connection')
    return protect


def _packed(address):
    addr = ipaddress.ip_address(str(address).split('%', 1)[0])
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.packed


def _protect_keys(protect, param='protect'):
    """{(client, cport, server, sport)} with packed addresses and int ports."""
    keys = set()
    for client, cport, server, sport in protect or ():
        try:
            keys.add((_packed(client), int(cport), _packed(server), int(sport)))
        except (TypeError, ValueError):
            raise ValidationError(param, '%s is not (client, port, server, port)'
                                  % show((client, cport, server, sport)))
    return keys


def _is_protected(buf, start, end, keys):
    """A TCP entry of a protected connection, seen from either direction.

    The original tuple is client -> server; or, when the server side was
    NATed (e.g. DNAT to this host), the reply tuple is server -> client.
    """
    orig = _orig(buf, start, end)
    if orig[0] != TCP:
        return False
    if (orig[1], orig[3], orig[2], orig[4]) in keys:
        return True
    reply = _reply(buf, start, end)
    return (reply[2], reply[4], reply[1], reply[3]) in keys


_DELETE_KEYS = frozenset((CTA_TUPLE_REPLY, CTA_ZONE, CTA_ID))


def _delete_request(buf, start, end, family):
    """An IPCTNL_MSG_CT_DELETE request for exactly this entry.

    The entry is named by its reply tuple, its CTA_ZONE, and CTA_ID, copied
    byte for byte from the dump. Zones: the kernel looks the reply tuple up
    in the zone the request names for the reply direction
    (nf_conntrack_find_get, nf_ct_zone_equal). A zone of both directions
    travels as CTA_ZONE; a reply-direction zone as the CTA_TUPLE_ZONE inside
    the copied reply tuple; an original-direction zone leaves the reply
    direction in zone 0, which is what a request without zone names.
    The reply tuple carries the NAT mapping: an entry
    recreated under the same original tuple but NATed elsewhere (a new
    backend) is a different reply tuple and is not found. The kernel also
    compares CTA_ID; ids are 32-bit hashes, so a recreated entry with the
    same reply tuple *and* a colliding id (about 1 in 4 billion) would be
    deleted: that is the residual risk.
    """
    unpack = _netlink.NLA_HDR.unpack_from
    request = []
    pos = start
    while pos + 4 <= end:
        length, kind = unpack(buf, pos)
        if length < 4:
            break
        stop = pos + ((length + 3) & ~3)
        if kind & _netlink.NLA_TYPE_MASK in _DELETE_KEYS:
            request.append(buf[pos:stop])
        pos = stop
    return (CT_DELETE, family, 0, b''.join(request))


def _flush_filter_supported(sock):
    """Can this kernel delete by CTA_FILTER (flush with a filter)?

    The probe is a DELETE carrying CTA_FILTER (protocol 255), a mark that
    can never match (mark & 0 == 1), and an original tuple without
    addresses. A kernel that flushes by CTA_FILTER matches nothing and
    answers 0. Any other kernel takes the tuple for a single-entry delete
    and rejects it (EINVAL: no addresses), so the probe deletes nothing
    anywhere. It costs the kernel one walk over the table (about 50 ms for
    200,000 entries on the benchmark machine).
    """
    attrs = (_netlink.nla_nested(CTA_TUPLE_ORIG, _netlink.nla_nested(
        CTA_TUPLE_PROTO, _netlink.nla(CTA_PROTO_NUM, b'\xff')))
        + _netlink.nla(CTA_MARK, BE32.pack(1)) + _netlink.nla(CTA_MARK_MASK, BE32.pack(0))
        + _netlink.nla_nested(CTA_FILTER, _netlink.nla(CTA_FILTER_ORIG_FLAGS, HOST32.pack(FILTER_PROTO_NUM))))
    return sock.transact([(CT_DELETE, socket.AF_INET, 1, attrs)]) == [0]


def _kernel_flush_request(flt, family):
    """A filtered flush of one family, or None when the kernel cannot express flt."""
    attrs, exact = flt.kernel_request(family)
    if not exact:
        return None
    if CTA_FILTER not in _netlink.attributes(attrs, 0, len(attrs)):
        # Always send CTA_FILTER: it makes the kernel honour the family.
        attrs += _netlink.nla_nested(CTA_FILTER, _netlink.nla(CTA_FILTER_ORIG_FLAGS, HOST32.pack(0)))
    return (CT_DELETE, family, 1, attrs)


def _delete(sock, requests, what):
    """Send delete requests; count successes (ENOENT: already gone, no error)."""
    try:
        results = sock.transact(requests)
    except OSError as exc:
        raise _kernel_error(exc, what)
    for code in results:
        if code not in (0, errno.ENOENT):
            raise _kernel_error(OSError(code, os.strerror(code)), what)
    return results.count(0)


def _plan(sock, flt, keys, trusted, what, delete=None):
    """Dump the matches: (count, sample, protected entries, deleted).

    delete: called with the delete requests of the matches in batches of
    up to DELETE_BATCH as the dump goes on (none are held meanwhile);
    deleted adds up what it returns.
    """
    count = deleted = 0
    sample = []
    protected = []
    requests = []
    for family in flt.families:
        for chunk, start, end in _dump(sock, flt, family, what, trusted=trusted):
            if keys and _is_protected(chunk, start, end, keys):
                protected.append(decode_entry(chunk, start, end, family))
                continue
            count += 1
            if len(sample) < SAMPLE_SIZE:
                sample.append(decode_entry(chunk, start, end, family))
            if delete is not None:
                requests.append(_delete_request(chunk, start, end, family))
                if len(requests) == DELETE_BATCH:
                    deleted += delete(requests)
                    requests = []
    if requests:
        deleted += delete(requests)
    return count, sample, protected, deleted


def _deleter(what):
    """delete(requests) on a socket of its own, usable while a dump runs; and its socket.

    Entries are deleted as the dump finds them, as `conntrack -D` does:
    the kernel resumes a dump after the last entry it could not send yet,
    which no delete of an entry already received can remove.
    """
    sock = _open(what)
    done = [0]

    def delete(requests):
        try:
            deleted = _delete(sock, requests, what)
        except ConntrackError as exc:
            raise ConntrackError('%s (%d entries were deleted before)' % (exc, done[0]))
        done[0] += deleted
        return deleted
    return delete, sock


def _holder(limit):
    """delete(requests) that only keeps the requests, up to limit + 1 of them, in `held`."""
    held = []

    def delete(requests):
        if len(held) <= limit:
            held.extend(requests[:limit + 1 - len(held)])
        return 0
    return delete, held


def flush_entries(flt, netns=None, max_entries=None, check_mode=False, protect=None):
    """Delete the entries matching flt: dict(deleted, matched, sample, protected).

    protect: iterable of (client, client_port, server, server_port) TCP
    connections whose entries are kept, in either direction (see
    control_connection()). matched counts every matching entry, protected
    ones included; deleted counts the entries deleted (in check mode: that
    would be deleted); sample holds up to SAMPLE_SIZE of them; protected
    lists the kept entries. With max_entries, more candidates than that
    raise ConntrackError and nothing is deleted.

    On a kernel that flushes by CTA_FILTER and a filter it can express,
    one request per family deletes in the kernel and deleted is the
    number of candidates counted just before. Otherwise each candidate is
    deleted by reply tuple, zone and id (_delete_request); entries that
    vanished meanwhile are not counted. Those deletes go out in batches
    while the dump runs, so memory stays flat whatever the table size;
    with max_entries they are held (at most max_entries of them) until
    the count is known.
    """
    what = 'conntrack_flush'
    keys = _protect_keys(protect)
    with _netlink.network_namespace(netns):
        with _open(what) as sock:
            kernel = None
            if not check_mode and not (keys and flt.mutable):
                requests = [_kernel_flush_request(flt, family) for family in flt.families]
                if all(requests) and _flush_filter_supported(sock):
                    kernel = requests
            # A kernel that flushes by filter applies the whole (exact) filter
            # to dumps too: its answer is counted without a second look.
            held = []
            if check_mode or kernel is not None:
                count, sample, protected, deleted = _plan(sock, flt, keys, kernel is not None, what)
                deleted = count
            elif max_entries is not None:
                delete, held = _holder(max_entries)
                count, sample, protected, deleted = _plan(sock, flt, keys, False, what, delete)
            else:
                delete, deleter = _deleter(what)
                with deleter:
                    count, sample, protected, deleted = _plan(sock, flt, keys, False, what, delete)
            if max_entries is not None and count > max_entries:
                raise ConntrackError('max_entries: %d entries match, more than max_entries=%d; nothing deleted'
                                     % (count, max_entries))
            if count and not check_mode:
                if kernel is None:
                    if max_entries is not None:
                        deleted = _delete(sock, held, what)
                elif not protected:
                    _delete(sock, kernel, what)
                else:
                    delete, deleter = _deleter(what)
                    with deleter:
                        deleted = _plan(sock, flt, keys, True, what, delete)[3]
    return dict(deleted=deleted, matched=count + len(protected), sample=sample, protected=protected)
