# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Conntrack messages of nfnetlink: their attributes, shapes and decoding (private).

The constants of ctnetlink (message types, attributes, status bits, TCP
states) and the lazy decoding of a dump message: a field is found and
decoded only when a filter, the summary or a returned entry needs it; the
common tuple layout is read with one struct call after its headers are
checked, and a returned entry is read whole by the learnt shape of its
message (_Shape, _FastShape) and written directly as JSON text
(_entry_text). Zones: see _zone. Used by _ctfilters, _ctsummary,
_conntrack (listing, deleting), _ctstats and _ctevents.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import operator
import socket
import struct

from ansible_collections.stateful.netfilter.plugins.module_utils import _netlink
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import (
    PORT_PROTOCOLS,
    PROTOCOLS,
    protocol_name,
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

BE16 = struct.Struct('>H')
BE32 = struct.Struct('>I')
BE64 = struct.Struct('>Q')
HOST32 = struct.Struct('=I')

# The directions a zone applies to, as returned in `zone_dir` (the kernel's
# NF_CT_ZONE_DIR_ORIG/REPL bits; the default zone 0 is `both`).
ZONE_DIRS = ('both', 'orig', 'reply')


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
