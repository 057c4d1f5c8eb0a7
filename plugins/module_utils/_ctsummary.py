# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The summary of a conntrack table: counts by kind, top addresses, talkers (private).

One _Summary is fed every matching entry of a dump (by its family,
protocol, TCP state and status, and the addresses it asks for) and
returns the counts conntrack_info reports; summary_details adds zones,
marks and the top talkers by bytes and packets (accounting on).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

from ansible_collections.stateful.netfilter.plugins.module_utils._ctcodec import (
    CTA_STATUS,
    DST_NAT,
    FAMILY_NAMES,
    NAT_KINDS,
    PORT_PROTOCOL_NUMBERS,
    SRC_NAT,
    STATUS_BITS,
    TCP,
    TCP_STATES,
    _fields,
    _orig,
    _reply,
    _state_name,
    _tcp_state,
    _u32,
    _zone_of,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import protocol_name

TOP_SIZE = 10

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
