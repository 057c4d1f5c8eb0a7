# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sampling conntrack events (`conntrack -E`) over nfnetlink multicast.

Private to the collection; the engine of conntrack_events. A socket joins
the kernel's NFNLGRP_CONNTRACK_NEW / _UPDATE / _DESTROY groups for a
number of seconds; each event is one message: IPCTNL_MSG_CT_NEW with
NLM_F_CREATE|NLM_F_EXCL for a new entry, without them for an update,
IPCTNL_MSG_CT_DELETE for a destroyed one. The conntrack filters apply to
every event in userspace (Filter.matches), as conntrack -E applies its own.

Losses are reported, never hidden: when the receive buffer overflows the
kernel drops events and the next receive fails with ENOBUFS (counted as
`overruns`); the socket's Drops column in /proc/net/netlink counts the
events dropped (`lost`). Either makes `complete` false.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import time

from ansible_collections.stateful.netfilter.plugins.module_utils import _conntrack, _ctcodec, _ctsummary, _netlink
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError, protocol_name, show

# enum nfnetlink_groups.
GROUPS = {'new': 1, 'update': 2, 'destroy': 3}
EVENT_TYPES = ('new', 'update', 'destroy')
CT_NEW = 1 << 8
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
DURATION_MIN = 0.1
DURATION_MAX = 300
SAMPLE_MAX = 1000
# Receive buffer of the listening socket (asked for; the kernel doubles it; root
# may exceed rmem_max): about 60,000 queued events absorb a burst while the
# module counts. Memory is taken only while events wait.
EVENTS_RCVBUF = 32 * 1024 * 1024


def check_options(params):
    """(duration, event types, sample size) from the module's options; ValidationError naming the option."""
    duration = params.get('duration')
    try:
        seconds = float(duration)
    except (TypeError, ValueError):
        seconds = float('nan')
    if isinstance(duration, bool) or not DURATION_MIN <= seconds <= DURATION_MAX:
        raise ValidationError('duration', 'must be a number of seconds from %s to %s, got %s'
                              % (DURATION_MIN, DURATION_MAX, show(duration)))
    events = params.get('events') or ['new', 'destroy']
    kinds = []
    for name in events:
        if name not in EVENT_TYPES:
            raise ValidationError('events', 'unknown event %s (one of %s)' % (show(name), ', '.join(EVENT_TYPES)))
        if name not in kinds:
            kinds.append(name)
    sample = params.get('sample', 0)
    if isinstance(sample, bool) or not isinstance(sample, int) or not 0 <= sample <= SAMPLE_MAX:
        raise ValidationError('sample', 'must be an integer 0-%d, got %s' % (SAMPLE_MAX, show(sample)))
    return seconds, kinds, sample


def _kind(msg_type, flags):
    if msg_type == _ctcodec.CT_DELETE:
        return 'destroy'
    if msg_type == CT_NEW:
        return 'new' if flags & (NLM_F_CREATE | NLM_F_EXCL) else 'update'
    return None


class _Tally:
    """Counts of the events of one sampling, by kind, and of new flows by source, destination and port."""

    def __init__(self, sample):
        self.events = dict((name, 0) for name in EVENT_TYPES)
        self.sources = {}
        self.destinations = {}
        self.ports = {}
        self.sample = sample
        self.sampled = []

    def add(self, kind, buf, start, end, family):
        self.events[kind] += 1
        if kind == 'new':
            orig = _ctcodec._orig(buf, start, end)
            key = (family, orig[1])
            self.sources[key] = self.sources.get(key, 0) + 1
            key = (family, orig[2])
            self.destinations[key] = self.destinations.get(key, 0) + 1
            if orig[0] in _ctcodec.PORT_PROTOCOL_NUMBERS:
                key = (orig[0], orig[4])
                self.ports[key] = self.ports.get(key, 0) + 1
        if len(self.sampled) < self.sample:
            entry = _ctcodec.decode_entry(buf, start, end, family)
            entry['event'] = kind
            self.sampled.append(entry)


def sample_events(flt, duration, kinds, sample=0, netns=None, what='conntrack_events', clock=time.monotonic):
    """Listen for duration seconds: dict(seconds, events, rates, top_*, overruns, lost, complete, sample)."""
    tally = _Tally(sample)
    families = set(flt.families)
    with _netlink.network_namespace(netns):
        try:
            sock = _netlink.NetlinkSocket(rcvbuf=EVENTS_RCVBUF)
        except OSError as exc:
            raise _conntrack._kernel_error(exc, what)
        with sock:
            try:
                sock.subscribe([GROUPS[name] for name in kinds])
            except OSError as exc:
                raise _conntrack._kernel_error(exc, what)
            dropped_before = sock.drops()
            started = clock()
            wanted = set(kinds)
            matches = flt.matches if flt.narrows else None
            try:
                for chunk, start, end, msg_type, flags in sock.listen(duration, clock):
                    kind = _kind(msg_type, flags)
                    if kind not in wanted:
                        continue
                    family = chunk[start - 4]
                    if family not in families or (matches is not None and not matches(chunk, start, end)):
                        continue
                    tally.add(kind, chunk, start, end, family)
            except OSError as exc:
                raise _conntrack._kernel_error(exc, what)
            seconds = clock() - started
            dropped_after = sock.drops()
            overruns = sock.overruns
    lost = None if dropped_before is None or dropped_after is None else dropped_after - dropped_before
    events = dict((name, tally.events[name]) for name in kinds)
    result = dict(
        seconds=round(seconds, 3),
        events=events,
        rates=dict((name, round(count / seconds, 1) if seconds > 0 else 0.0) for name, count in events.items()),
        top_new_sources=_top(tally.sources),
        top_new_destinations=_top(tally.destinations),
        top_new_ports=[dict(protocol=protocol_name(proto), port=port, count=count)
                       for (proto, port), count in _ctsummary._top(tally.ports)],
        overruns=overruns,
        lost=lost,
        complete=overruns == 0 and not lost,
        sample=tally.sampled,
    )
    return result


def _top(counts):
    return [dict(address=socket.inet_ntop(family, packed), count=count)
            for (family, packed), count in _ctsummary._top(counts)]
