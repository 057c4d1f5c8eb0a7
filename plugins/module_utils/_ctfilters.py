# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filters of conntrack_info, conntrack_flush and conntrack_events (private).

build_filter() turns the modules' filter options into a Filter: what the
kernel is asked to filter (family, mark, status, and CTA_FILTER with
exact IPv4 addresses, the protocol and single TCP/UDP ports; see
_conntrack's docstring for the kernels that honour each) and the
userspace checks every entry passes again, so a kernel that ignores a
filter attribute costs time, never correctness. Bad input raises
ValidationError naming the option, before anything is read.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import struct

from ansible_collections.stateful.netfilter.plugins.module_utils import _netlink
from ansible_collections.stateful.netfilter.plugins.module_utils._ctcodec import (
    BE16,
    BE32,
    CTA_FILTER,
    CTA_FILTER_ORIG_FLAGS,
    CTA_FILTER_REPLY_FLAGS,
    CTA_IP_V4_DST,
    CTA_IP_V4_SRC,
    CTA_MARK,
    CTA_MARK_MASK,
    CTA_PROTO_DST_PORT,
    CTA_PROTO_NUM,
    CTA_PROTO_SRC_PORT,
    CTA_STATUS,
    CTA_STATUS_MASK,
    CTA_TUPLE_IP,
    CTA_TUPLE_ORIG,
    CTA_TUPLE_PROTO,
    CTA_TUPLE_REPLY,
    DST_NAT,
    FAMILIES,
    FILTER_DST_PORT,
    FILTER_IP_DST,
    FILTER_IP_SRC,
    FILTER_PROTO_NUM,
    FILTER_SRC_PORT,
    HOST32,
    ICMP,
    ICMPV6,
    KERNEL_PORT_PROTOCOLS,
    NAT_CHOICES,
    PORT_PROTOCOL_NUMBERS,
    SRC_NAT,
    STATUS_BITS,
    STATUS_FLAGS,
    TCP,
    TCP_STATES,
    ZONE_DIRS,
    _orig,
    _reply,
    _tcp_state,
    _u32,
    _zone,
    status_names,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import (
    PORT_PROTOCOLS,
    ValidationError,
    parse_mark,
    parse_network,
    parse_port_range,
    parse_protocol,
    protocol_name,
    show,
)

FILTER_OPTIONS = (
    'family', 'protocol', 'src', 'dst', 'sport', 'dport', 'reply_src', 'reply_dst',
    'reply_sport', 'reply_dport', 'state', 'status', 'nat', 'mark', 'zone', 'zone_dir', 'icmp_type', 'icmp_code',
)


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
