# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kernel statistics and the expectation table over nfnetlink.

Private to the collection; the engine of conntrack_stats. What
`conntrack -S` (per-CPU counters), `conntrack -C` (entries and maximum)
and `conntrack -L expect` print, read from the kernel with the standard
library only (see _netlink):

- IPCTNL_MSG_CT_GET_STATS_CPU: a dump, one message per possible CPU, its
  number in the nfgenmsg res_id, the counters as CTA_STATS_* (be32);
  the kernel sends what it has (older ones lack clash_resolve and
  chaintoolong), so the names returned are the ones it sent.
- IPCTNL_MSG_CT_GET_STATS: one message, CTA_STATS_GLOBAL_ENTRIES and
  CTA_STATS_GLOBAL_MAX_ENTRIES (Linux 4.15+; /proc otherwise).
- IPCTNL_MSG_EXP_GET_STATS_CPU (subsystem CTNETLINK_EXP): new, create,
  delete per CPU.
- IPCTNL_MSG_EXP_GET (dump, per family): the pending expectations, each
  a master tuple, the expected tuple and its mask, timeout, id, helper,
  zone, flags, class and function.

Counters are the kernel's own, per network namespace; they only grow
(32-bit values that wrap), so a difference between two samples is taken
modulo 2**32.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import socket
import struct
import time

from ansible_collections.stateful.netfilter.plugins.module_utils import _conntrack, _ctanalysis, _ctcodec, _ctfilters, _netlink
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import (
    ValidationError,
    parse_network,
    parse_protocol,
    protocol_name,
    show,
)

CTNETLINK = 1
CTNETLINK_EXP = 2
CT_GET_STATS_CPU = (CTNETLINK << 8) | 4
CT_GET_STATS = (CTNETLINK << 8) | 5
EXP_GET = (CTNETLINK_EXP << 8) | 1
EXP_GET_STATS_CPU = (CTNETLINK_EXP << 8) | 3

# enum ctattr_stats_cpu: attribute -> the name conntrack -S prints. The
# ones the kernel stopped filling (searched, new, ignore, delete,
# delete_list) are decoded when present, never invented.
CPU_COUNTERS = {
    1: 'searched', 2: 'found', 3: 'new', 4: 'invalid', 5: 'ignore', 6: 'delete', 7: 'delete_list',
    8: 'insert', 9: 'insert_failed', 10: 'drop', 11: 'early_drop', 12: 'error', 13: 'search_restart',
    14: 'clash_resolve', 15: 'chaintoolong',
}
# enum ctattr_stats_global.
CTA_STATS_GLOBAL_ENTRIES = 1
CTA_STATS_GLOBAL_MAX_ENTRIES = 2
# enum ctattr_expect_stats.
EXP_COUNTERS = {1: 'new', 2: 'create', 3: 'delete'}
# enum ctattr_expect.
CTA_EXPECT_MASTER, CTA_EXPECT_TUPLE, CTA_EXPECT_MASK = 1, 2, 3
CTA_EXPECT_TIMEOUT, CTA_EXPECT_ID, CTA_EXPECT_HELP_NAME = 4, 5, 6
CTA_EXPECT_ZONE, CTA_EXPECT_FLAGS, CTA_EXPECT_CLASS = 7, 8, 9
CTA_EXPECT_NAT, CTA_EXPECT_FN = 10, 11
# NF_CT_EXPECT_* flags, bit by bit.
EXPECT_FLAGS = ('PERMANENT', 'INACTIVE', 'USERSPACE')
# Protocols of the connections helpers expect: ftp, irc, sane, h323, sip
# (tcp, udp), tftp, amanda, netbios-ns, snmp (udp), pptp (gre).
EXPECT_PROTOCOLS = ('tcp', 'udp', 'gre')
EXPECT_FILTERS = ('family', 'protocol', 'src', 'dst', 'dport', 'helper')

WRAP = 1 << 32
BE16 = struct.Struct('>H')
BE32 = struct.Struct('>I')


def _counters(buf, start, end, names):
    found = {}
    for kind, (pos, stop) in _netlink.attributes(buf, start, end).items():
        name = names.get(kind)
        if name is not None and stop - pos == 4:
            found[name] = BE32.unpack_from(buf, pos)[0]
    return found


def _cpu(buf, start):
    """The CPU number a per-CPU stats message is about (nfgenmsg res_id)."""
    return BE16.unpack_from(buf, start - 2)[0]


def _per_cpu(sock, msg_type, names, what):
    """[dict(cpu=n, counter=value...)] of one per-CPU statistics dump."""
    try:
        rows = []
        for chunk, start, end in sock.dump(msg_type, socket.AF_UNSPEC):
            row = dict(cpu=_cpu(chunk, start))
            row.update(_counters(chunk, start, end, names))
            rows.append(row)
        return rows
    except OSError as exc:
        raise _conntrack._kernel_error(exc, what)


def _global(sock, what):
    """(entries, max) from IPCTNL_MSG_CT_GET_STATS; None for what the kernel did not send."""
    try:
        for chunk, start, end in sock.request(CT_GET_STATS, socket.AF_UNSPEC):
            found = _netlink.attributes(chunk, start, end)
            values = []
            for kind in (CTA_STATS_GLOBAL_ENTRIES, CTA_STATS_GLOBAL_MAX_ENTRIES):
                span = found.get(kind)
                values.append(BE32.unpack_from(chunk, span[0])[0] if span else None)
            return tuple(values)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise _conntrack._kernel_error(exc, what)
    return None, None


def _sum(rows):
    total = {}
    for row in rows:
        for name, value in row.items():
            if name != 'cpu':
                total[name] = total.get(name, 0) + value
    return total


def sample(sock, what='conntrack_stats'):
    """One sample of every statistic: dict(per_cpu, totals, count, max, expect_per_cpu, expect_totals, time)."""
    per_cpu = _per_cpu(sock, CT_GET_STATS_CPU, CPU_COUNTERS, what)
    count, maximum = _global(sock, what)
    if count is None:
        count = _conntrack._read_proc('nf_conntrack_count')
    if maximum is None:
        maximum = _conntrack._read_proc('nf_conntrack_max')
    try:
        expect = _per_cpu(sock, EXP_GET_STATS_CPU, EXP_COUNTERS, what)
    except _conntrack.ConntrackError:
        expect = []
    return dict(per_cpu=per_cpu, totals=_sum(per_cpu), count=count, max=maximum,
                expect_per_cpu=expect, expect_totals=_sum(expect), time=time.monotonic())


def delta(before, after):
    """Growth of every summed counter between two samples (modulo 2**32), and per second."""
    seconds = max(after['time'] - before['time'], 1e-9)
    grown = {}
    for name, value in after['totals'].items():
        old = before['totals'].get(name)
        if old is not None:
            # Summed over CPUs, each a u32 that may wrap: wrap per CPU.
            grown[name] = sum((row.get(name, 0) - old_row.get(name, 0)) % WRAP
                              for row, old_row in _pairs(before['per_cpu'], after['per_cpu']))
    rates = dict((name, round(value / seconds, 3)) for name, value in grown.items())
    return dict(seconds=round(seconds, 3), counters=grown, rates=rates)


def _pairs(before, after):
    old = dict((row['cpu'], row) for row in before)
    return [(row, old.get(row['cpu'], {})) for row in after]


def _public(one):
    return dict((key, value) for key, value in one.items() if key != 'time')


# ---------------------------------------------------------------- expectations

class ExpectFilter:
    """Conditions on expectations: family, protocol, addresses and port of the expected connection, helper."""

    def __init__(self):
        self.families = (socket.AF_INET, socket.AF_INET6)
        self.protocol = None
        self.src = None
        self.dst = None
        self.dport = None
        self.helper = None

    def matches(self, entry):
        tup = entry['tuple']
        if self.protocol is not None and entry['protocol'] != self.protocol:
            return False
        if self.helper is not None and entry.get('helper') != self.helper:
            return False
        for field in ('src', 'dst'):
            network = getattr(self, field)
            if network is not None and (tup.get(field) is None
                                        or ipaddress.ip_address(tup[field]) not in network):
                return False
        if self.dport is not None and tup.get('dport') != self.dport:
            return False
        return True


def build_expect_filter(params, param='expect_filter'):
    """Parse the expectation filter (a dict; None: every expectation). Raises ValidationError naming the key."""
    params = params or {}
    if not isinstance(params, dict):
        raise ValidationError(param, 'must be a dictionary, got %s' % show(params))
    unknown = sorted(set(params) - set(EXPECT_FILTERS))
    if unknown:
        raise ValidationError('%s.%s' % (param, unknown[0]), 'unknown filter (one of %s)' % ', '.join(EXPECT_FILTERS))
    flt = ExpectFilter()
    family = params.get('family') or 'both'
    if family not in ('ipv4', 'ipv6', 'both'):
        raise ValidationError(param + '.family', 'must be one of ipv4, ipv6, both, got %s' % show(family))
    wanted = None if family == 'both' else family
    if params.get('protocol') is not None:
        number = parse_protocol(params['protocol'], param + '.protocol')
        name = protocol_name(number)
        if name not in EXPECT_PROTOCOLS:
            raise ValidationError(param + '.protocol', '%s: no conntrack helper expects %s connections (helpers '
                                  'expect %s)' % (show(params['protocol']), name, ', '.join(EXPECT_PROTOCOLS)))
        flt.protocol = name
    for field in ('src', 'dst'):
        if params.get(field) is not None:
            network = parse_network(params[field], '%s.%s' % (param, field), wanted)
            wanted = 'ipv4' if network.version == 4 else 'ipv6'
            setattr(flt, field, network)
    if params.get('dport') is not None:
        port = params['dport']
        try:
            port = int(str(port), 10)
        except ValueError:
            port = -1
        if isinstance(params['dport'], bool) or not 1 <= port <= 65535:
            raise ValidationError(param + '.dport', 'must be a port 1-65535, got %s' % show(params['dport']))
        flt.dport = port
    if params.get('helper') is not None:
        helper = str(params['helper'])
        if not helper or len(helper) > 15 or not helper.replace('-', '').replace('_', '').isalnum():
            raise ValidationError(param + '.helper', 'must be a helper name (ftp, sip, tftp...), got %s'
                                  % show(params['helper']))
        flt.helper = helper
    if wanted is not None:
        flt.families = (_ctcodec.FAMILIES[wanted],)
    return flt


def tuple_dict(values, family):
    """A decoded tuple (_ctcodec._tuple) as conntrack_info returns one."""
    proto, src, dst, a, b, c, dummy = values
    out = dict(src=_address(src, family), dst=_address(dst, family))
    if proto in (_ctcodec.ICMP, _ctcodec.ICMPV6):
        out.update(type=a, code=b, id=c)
    elif a is not None or b is not None:
        out.update(sport=a, dport=b)
    return out


def _address(packed, family):
    if len(packed) not in (4, 16):
        return None
    return socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)


def decode_expectation(buf, start, end, family):
    """One IPCTNL_MSG_EXP_NEW message of a dump, as a dict."""
    found = _netlink.attributes(buf, start, end)
    out = dict(family=_ctcodec.FAMILY_NAMES.get(family, str(family)))

    def tup(kind):
        span = found.get(kind)
        return _ctcodec._tuple_slow(buf, span[0], span[1]) if span else None

    def u32(kind):
        span = found.get(kind)
        return BE32.unpack_from(buf, span[0])[0] if span and span[1] - span[0] >= 4 else None

    def text(kind):
        span = found.get(kind)
        return bytes(buf[span[0]:span[1]]).split(b'\0', 1)[0].decode('ascii', 'replace') if span else None

    expected = tup(CTA_EXPECT_TUPLE)
    out['protocol'] = protocol_name(expected[0]) if expected and expected[0] is not None else None
    out['timeout'] = u32(CTA_EXPECT_TIMEOUT)
    out['id'] = u32(CTA_EXPECT_ID)
    out['helper'] = text(CTA_EXPECT_HELP_NAME)
    out['fn'] = text(CTA_EXPECT_FN)
    span = found.get(CTA_EXPECT_ZONE)
    out['zone'] = BE16.unpack_from(buf, span[0])[0] if span else 0
    flags = u32(CTA_EXPECT_FLAGS) or 0
    out['flags'] = [name for bit, name in enumerate(EXPECT_FLAGS) if flags & (1 << bit)]
    out['class'] = u32(CTA_EXPECT_CLASS) or 0
    out['tuple'] = tuple_dict(expected, family) if expected else None
    mask = tup(CTA_EXPECT_MASK)
    out['mask'] = tuple_dict(mask, family) if mask else None
    master = tup(CTA_EXPECT_MASTER)
    out['master'] = tuple_dict(master, family) if master else None
    return out


def list_expectations(sock, flt, what='conntrack_stats'):
    """The expectations that match flt, in dump order."""
    found = []
    for family in flt.families:
        try:
            for chunk, start, end in sock.dump(EXP_GET, family):
                entry = decode_expectation(chunk, start, end, family)
                if flt.matches(entry):
                    found.append(entry)
        except OSError as exc:
            raise _conntrack._kernel_error(exc, what)
    return found


# ---------------------------------------------------------------- the module's work

def read_stats(netns=None, interval=None, expectations=None, what='conntrack_stats'):
    """What conntrack_stats returns (without anomalies).

    interval: seconds between two samples (None: one sample); the result
    then holds the second sample and `delta`. expectations: an
    ExpectFilter, or None to list none.
    """
    with _netlink.network_namespace(netns):
        with _conntrack._open(what) as sock:
            first = sample(sock, what)
            result = dict(_public(first))
            if interval:
                time.sleep(interval)
                second = sample(sock, what)
                result = dict(_public(second), delta=delta(first, second))
            if expectations is not None:
                result['expectations'] = list_expectations(sock, expectations, what)
    return result


def check_interval(value, param='interval', low=0.1, high=300):
    """A sampling duration in seconds within [low, high], or None. Raises ValidationError."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float('nan')
    if isinstance(value, bool) or not low <= seconds <= high:
        raise ValidationError(param, 'must be a number of seconds from %s to %s, got %s' % (low, high, show(value)))
    return seconds


def argument_spec():
    """conntrack_stats' options."""
    return dict(
        interval=dict(type='float'),
        expectations=dict(type='bool', default=False),
        expect_filter=dict(type='dict', options=dict(
            family=dict(type='str', default='both', choices=['ipv4', 'ipv6', 'both']),
            protocol=dict(type='str'),
            src=dict(type='str'),
            dst=dict(type='str'),
            dport=dict(type='int'),
            helper=dict(type='str'),
        )),
        summary=dict(type='bool', default=False),
        thresholds=dict(type='dict', apply_defaults=True, options=_ctanalysis.thresholds_argument_spec()),
        netns=dict(type='str'),
    )


def run_module(module_class):
    """conntrack_stats: check every option, then read (see read_stats), then evaluate the checks."""
    module = module_class(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    errors = _conntrack.ERRORS
    try:
        interval = check_interval(params['interval'])
        thresholds = _ctanalysis.parse_thresholds(params['thresholds'])
        expect = None
        if params['expect_filter'] is not None or params['expectations']:
            expect = build_expect_filter(params['expect_filter'])
    except errors as exc:
        module.fail_json(msg=str(exc), param=getattr(exc, 'param', None))
    try:
        result = read_stats(params['netns'], interval, expect)
        summary = None
        if params['summary']:
            summary = _conntrack.list_entries(_ctfilters.build_filter({}), netns=params['netns'],
                                              summary_only=True)['summary']
            result['summary'] = summary
    except errors as exc:
        module.fail_json(msg=str(exc))
    result['checks'], result['anomalies'] = _ctanalysis.evaluate(thresholds, result, summary)
    module.exit_json(changed=False, **result)
