#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: conntrack_info
short_description: Read the kernel's connection tracking table
version_added: 0.1.0
description:
  - Lists the entries of the Linux connection tracking (conntrack) table that match the filters, with a summary of
    all of them, like C(conntrack -L) but as data.
  - Talks to the kernel over nfnetlink with the Python standard library only; nothing is installed on the host and the
    C(conntrack) tool is not needed.
  - IPv4 and IPv6 entries are both read unless O(family) or an address filter says otherwise.
  - RV(count) and RV(summary) always cover every matching entry; O(limit) only caps how many entries are returned, so
    a gateway with hundreds of thousands of entries can be summarised cheaply.
author:
  - stateful.netfilter contributors (@stateful-netfilter)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - stateful.netfilter.conntrack_filters
attributes:
  check_mode:
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: linux
    details: Needs connection tracking and C(nf_conntrack_netlink) in the kernel.
options:
  limit:
    description:
      - Most entries to return in RV(entries); V(0) returns every matching entry.
      - RV(count) and RV(summary) still cover all matches; RV(truncated) tells when entries were left out.
      - The module writes entries out as it reads them, so its memory does not grow with the table; the controller,
        which holds the whole result, does (over a gigabyte for 200,000 entries, see C(docs/conntrack.md) in the
        collection). Prefer O(summary_only) or filters with a limit.
    type: int
    default: 100
  summary_only:
    description:
      - Return no entries at all, only RV(count), RV(total), RV(max) and RV(summary).
    type: bool
    default: false
  summary_details:
    description:
      - Extra counts in RV(summary), each read from every matching entry (they cost time on a large table, so they
        are computed only when asked).
      - V(zones) adds V(zones) to RV(summary), entries per conntrack zone and direction; V(marks) adds V(marks),
        the most frequent connection marks; V(talkers) adds V(top_talkers_bytes) and V(top_talkers_packets), the
        original sources that moved the most bytes and packets (both directions), when accounting is on
        (C(net.netfilter.nf_conntrack_acct=1); entries created before it was switched on have no counters,
        V(accounted) tells how many had).
    type: list
    elements: str
    choices: [zones, marks, talkers]
    default: []
seealso:
  - module: stateful.netfilter.conntrack_flush
  - module: stateful.netfilter.conntrack_stats
  - module: stateful.netfilter.conntrack_events
'''

EXAMPLES = r'''
- name: List the table (conntrack -L), IPv4 and IPv6
  stateful.netfilter.conntrack_info:
  register: ct

- name: Summarise a busy gateway without shipping its entries
  stateful.netfilter.conntrack_info:
    summary_only: true
  register: ct

- name: Show how full the table is
  ansible.builtin.debug:
    msg: "{{ ct.total }} of {{ ct.max }} entries; top destinations {{ ct.summary.top_destinations[:3] }}"

- name: Entries of one client (conntrack -L -s 192.168.1.100)
  stateful.netfilter.conntrack_info:
    src: 192.168.1.100
    limit: 0

- name: Established TCP connections that were source-NATed, from a LAN
  stateful.netfilter.conntrack_info:
    src: 10.0.0.0/8
    state: [ESTABLISHED]
    nat: snat

- name: UDP entries to a service VIP, with the backend that answered (reply source)
  stateful.netfilter.conntrack_info:
    protocol: udp
    dst: 10.96.0.10
    dport: 53
  register: dns

- name: Who fills the table and who moves the bytes (needs net.netfilter.nf_conntrack_acct=1)
  stateful.netfilter.conntrack_info:
    summary_only: true
    summary_details: [talkers, zones, marks]
  register: ct

- name: Half-open TCP entries and the sources behind them
  ansible.builtin.debug:
    msg: "{{ ct.summary.half_open }} half-open; top sources {{ ct.summary.top_sources[:3] }}"

- name: Entries that never saw a reply (conntrack -L -u UNREPLIED)
  stateful.netfilter.conntrack_info:
    status: [UNREPLIED]

- name: Assured entries that are not source-NATed
  stateful.netfilter.conntrack_info:
    status: [ASSURED, '!SRC_NAT']

- name: ICMP echo requests (conntrack -L -p icmp --icmp-type 8)
  stateful.netfilter.conntrack_info:
    protocol: icmp
    icmp_type: 8

- name: Inspect a container's network namespace
  stateful.netfilter.conntrack_info:
    netns: web1
    summary_only: true
'''

RETURN = r'''
entries:
  description:
    - Matching entries, at most O(limit) of them (none with O(summary_only)).
    - V(orig) and V(reply) hold V(src), V(dst) and, for port protocols, V(sport) and V(dport); for ICMP V(type),
      V(code) and V(id).
    - V(state) is the TCP state (V(null) for other protocols); V(nat) is V(snat), V(dnat), V(both) or V(none);
      V(counters) is present only when accounting is on (C(net.netfilter.nf_conntrack_acct)).
    - V(zone) is the conntrack zone (V(0) the default zone) and V(zone_dir) the direction it applies to, V(both)
      (C(-j CT --zone); C(conntrack -L) prints C(zone=7)), V(orig) (C(--zone-orig), C(zone-orig=7)) or V(reply)
      (C(--zone-reply), C(zone-reply=7)). The default zone is V(both).
  returned: always
  type: list
  elements: dict
  sample:
    - family: ipv4
      protocol: tcp
      state: ESTABLISHED
      timeout: 431999
      status: [SEEN_REPLY, ASSURED, CONFIRMED, SRC_NAT, SRC_NAT_DONE, DST_NAT_DONE]
      nat: snat
      mark: 0
      zone: 0
      zone_dir: both
      id: 2535287334
      orig: {src: 10.0.0.5, dst: 198.51.100.2, sport: 51544, dport: 443}
      reply: {src: 198.51.100.2, dst: 203.0.113.1, sport: 443, dport: 51544}
      counters:
        orig: {packets: 12, bytes: 1804}
        reply: {packets: 10, bytes: 6711}
count:
  description: Number of entries matching the filters.
  returned: always
  type: int
  sample: 50350
total:
  description:
    - Entries in the table of the namespace, whatever the filters (C(nf_conntrack_count)).
    - V(null) when the kernel does not expose it.
  returned: always
  type: int
  sample: 202400
max:
  description:
    - Size limit of the table (C(nf_conntrack_max)); V(null) when the kernel does not expose it.
  returned: always
  type: int
  sample: 262144
truncated:
  description: Whether fewer entries were returned than matched (O(limit) or O(summary_only)).
  returned: always
  type: bool
  sample: true
summary:
  description:
    - Counts of the matching entries by family, protocol, TCP state and NAT kind; V(unreplied) (no reply seen, as
      C(conntrack -L -u UNREPLIED) counts), V(assured) and V(half_open) (TCP in C(SYN_SENT) or C(SYN_RECV)).
    - The ten most frequent original sources (V(top_sources)) and destinations (V(top_destinations)), destination
      ports (V(top_ports)), and for NAT the translated sides, V(top_translated_sources) (the addresses source NAT
      gave the entries, which is the reply destination) and V(top_translated_destinations) (the addresses
      destination NAT sent them to, the backends, which is the reply source).
    - V(zones), V(marks), V(accounted), V(top_talkers_bytes) and V(top_talkers_packets) only as
      O(summary_details) asks.
  returned: always
  type: dict
  sample:
    families: {ipv4: 201400, ipv6: 1000}
    protocols: {udp: 201000, tcp: 1000, icmp: 400}
    tcp_states: {SYN_SENT: 990, ESTABLISHED: 10}
    nat: {snat: 202400}
    unreplied: 202390
    assured: 10
    half_open: 990
    top_sources:
      - {address: 10.0.0.2, count: 50350}
    top_destinations:
      - {address: 198.51.100.1, count: 1012}
    top_translated_sources:
      - {address: 203.0.113.1, count: 201400}
    top_translated_destinations: []
    top_ports:
      - {protocol: udp, port: 1024, count: 1004}
    zones:
      - {zone: 0, zone_dir: both, count: 202390}
      - {zone: 7, zone_dir: both, count: 10}
    marks:
      - {mark: 0, count: 202300}
      - {mark: 66, count: 100}
    accounted: 202400
    top_talkers_bytes:
      - {address: 10.0.0.5, bytes: 9120400, packets: 6080, entries: 10}
    top_talkers_packets:
      - {address: 10.0.0.2, bytes: 1510000, packets: 50350, entries: 50350}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stateful.netfilter.plugins.module_utils._conntrack import ERRORS, list_entries
from ansible_collections.stateful.netfilter.plugins.module_utils._ctfilters import build_filter, filter_argument_spec
from ansible_collections.stateful.netfilter.plugins.module_utils._ctsummary import DETAILS
from ansible_collections.stateful.netfilter.plugins.module_utils._result import exit_streamed


def main():
    argument_spec = filter_argument_spec()
    argument_spec.update(
        limit=dict(type='int', default=100),
        summary_only=dict(type='bool', default=False),
        summary_details=dict(type='list', elements='str', default=[], choices=list(DETAILS)),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params['limit'] < 0:
        module.fail_json(msg='limit: must be 0 (no cap) or more, got %d' % module.params['limit'])
    try:
        flt = build_filter(module.params)
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    # Entries go to stdout as they are decoded (memory stays flat for any
    # table); count, summary and the rest follow them in the same result.
    exit_streamed(module, dict(changed=False), 'entries', errors=ERRORS, produce=lambda write: list_entries(
        flt, netns=module.params['netns'], limit=module.params['limit'],
        summary_only=module.params['summary_only'], write=write, details=module.params['summary_details']))


if __name__ == '__main__':
    main()
