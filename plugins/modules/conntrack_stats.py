#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: conntrack_stats
short_description: Connection tracking statistics, expectations and anomaly checks
version_added: 0.1.0
description:
  - Reads the kernel's connection tracking statistics like C(conntrack -S) (per CPU, and summed) and C(conntrack -C)
    (entries and maximum), the expectation table like C(conntrack -L expect), and evaluates named anomaly checks
    against thresholds, per host, as data a playbook can C(assert) on.
  - Talks to the kernel over nfnetlink with the Python standard library only; the C(conntrack) tool is not needed.
  - The counters are the kernel's, per network namespace, since it started; they tell what happened only between two
    samples, so set O(interval) to see them grow.
author:
  - stateful.netfilter contributors (@stateful-netfilter)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
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
  interval:
    description:
      - Seconds between two samples of the counters, from V(0.1) to V(300); RV(delta) then tells how much each
        counter grew and how fast, and the C(*_increase) checks can be evaluated.
      - Left out, one sample is taken.
    type: float
  expectations:
    description:
      - Also list the expectation table (RV(expectations)), the RELATED connections that conntrack helpers (ftp,
        sip, tftp...) announced and the kernel still waits for.
    type: bool
    default: false
  expect_filter:
    description:
      - Only the expectations that match all of these (implies O(expectations)).
    type: dict
    suboptions:
      family:
        description: Address family of the expectations.
        type: str
        choices: [ipv4, ipv6, both]
        default: both
      protocol:
        description:
          - Protocol of the expected connection; only V(tcp), V(udp) and V(gre) are expected by any helper, others
            are refused.
        type: str
      src:
        description: Source address or network of the expected connection.
        type: str
      dst:
        description: Destination address or network of the expected connection.
        type: str
      dport:
        description: Destination port of the expected connection.
        type: int
      helper:
        description: Name of the helper that announced it (V(ftp), V(sip), V(tftp)...).
        type: str
  summary:
    description:
      - Also read the whole table and return its summary (RV(summary), as M(stateful.netfilter.conntrack_info) with
        O(stateful.netfilter.conntrack_info#module:summary_only=true) returns it), for the checks that need it
        (V(top_source_percent), V(half_open_percent)). It costs a walk of the table.
    type: bool
    default: false
  thresholds:
    description:
      - Thresholds of the anomaly checks; a check fires (and appears in RV(anomalies)) when its figure is above its
        threshold.
    type: dict
    suboptions:
      table_usage_percent:
        description: Entries in the table as a percentage of C(nf_conntrack_max), 0-100.
        type: float
        default: 90
      drop_increase:
        description: Growth of the C(drop) counter (packets dropped because the table was full) between the two
          samples of O(interval).
        type: int
        default: 0
      early_drop_increase:
        description: Growth of the C(early_drop) counter (entries evicted to make room) between the two samples.
        type: int
        default: 0
      insert_failed_increase:
        description: Growth of the C(insert_failed) counter between the two samples.
        type: int
        default: 0
      top_source_percent:
        description: Entries of the busiest original source as a percentage of all entries, 0-100 (needs
          O(summary)).
        type: float
        default: 50
      half_open_percent:
        description: TCP entries in C(SYN_SENT) or C(SYN_RECV) as a percentage of TCP entries, 0-100 (needs
          O(summary)).
        type: float
        default: 25
      min_entries:
        description: The two share checks are evaluated only on at least this many entries (TCP entries for
          V(half_open_percent)).
        type: int
        default: 100
  netns:
    description:
      - Name of a network namespace under C(/run/netns) to read instead of the host's; it is never created.
    type: str
notes:
  - Needs root (CAP_NET_ADMIN; CAP_SYS_ADMIN as well with O(netns)).
seealso:
  - module: stateful.netfilter.conntrack_info
  - module: stateful.netfilter.conntrack_events
'''

EXAMPLES = r'''
- name: Kernel statistics (conntrack -S, conntrack -C), sampled twice a second apart
  stateful.netfilter.conntrack_stats:
    interval: 1
  register: ct

- name: Fail when the table drops packets or is nearly full
  ansible.builtin.assert:
    that: ct.anomalies | length == 0
    fail_msg: "{{ ct.anomalies | map(attribute='msg') | join('; ') }}"

- name: Pending FTP data connections (conntrack -L expect)
  stateful.netfilter.conntrack_stats:
    expect_filter:
      helper: ftp

- name: Who fills the table, with stricter thresholds
  stateful.netfilter.conntrack_stats:
    interval: 2
    summary: true
    thresholds:
      table_usage_percent: 75
      top_source_percent: 30
'''

RETURN = r'''
per_cpu:
  description:
    - The counters of each CPU as C(conntrack -S) prints them (V(found), V(invalid), V(insert), V(insert_failed),
      V(drop), V(early_drop), V(error), V(search_restart), and V(clash_resolve), V(chaintoolong) on newer kernels;
      whatever the kernel reports). Of the second sample with O(interval).
  returned: always
  type: list
  elements: dict
  sample:
    - {cpu: 0, found: 0, invalid: 12, insert: 0, insert_failed: 0, drop: 0, early_drop: 0, error: 0,
       search_restart: 3, clash_resolve: 0, chaintoolong: 0}
totals:
  description: The per-CPU counters summed.
  returned: always
  type: dict
  sample: {found: 0, invalid: 20, insert: 0, insert_failed: 0, drop: 0, early_drop: 0, error: 0, search_restart: 5}
count:
  description: Entries in the table (C(conntrack -C)).
  returned: always
  type: int
  sample: 202400
max:
  description: Size limit of the table (C(nf_conntrack_max)).
  returned: always
  type: int
  sample: 262144
expect_per_cpu:
  description: Expectation counters of each CPU (V(new), V(create), V(delete)).
  returned: always
  type: list
  elements: dict
  sample: [{cpu: 0, new: 2, create: 2, delete: 1}]
expect_totals:
  description: The expectation counters summed.
  returned: always
  type: dict
  sample: {new: 2, create: 2, delete: 1}
delta:
  description:
    - With O(interval), V(seconds) between the samples, V(counters) (how much each summed counter grew, modulo
      2^32 per CPU) and V(rates) (per second).
  returned: when interval is set
  type: dict
  sample: {seconds: 1.0, counters: {insert: 0, drop: 12, early_drop: 40}, rates: {drop: 12.0, early_drop: 40.0}}
expectations:
  description:
    - The expectations that match O(expect_filter) (C(conntrack -L expect)). V(tuple) is the expected connection,
      V(mask) which of its fields must match, V(master) the original tuple of the connection that announced it.
  returned: when expectations or expect_filter is set
  type: list
  elements: dict
  sample:
    - family: ipv4
      protocol: tcp
      timeout: 299
      id: 2819043130
      helper: ftp
      fn: null
      zone: 0
      flags: []
      class: 0
      tuple: {src: 10.99.0.2, dst: 10.99.0.1, sport: 0, dport: 50100}
      mask: {src: 255.255.255.255, dst: 255.255.255.255, sport: 0, dport: 65535}
      master: {src: 10.99.0.2, dst: 10.99.0.1, sport: 40112, dport: 21}
summary:
  description: The summary of the whole table, as M(stateful.netfilter.conntrack_info) returns it.
  returned: when summary is true
  type: dict
checks:
  description:
    - Every check by name, with V(evaluated), V(threshold), V(fired) and, when evaluated, V(value); a check that
      could not be evaluated says why in V(reason) and does not fire.
  returned: always
  type: dict
  sample:
    table_usage_percent: {evaluated: true, value: 77.21, threshold: 90.0, fired: false}
    drop_increase: {evaluated: false, threshold: 0, fired: false, reason: needs two samples (set interval)}
anomalies:
  description: The checks that fired, each with V(check), V(value), V(threshold) and a V(msg) for people.
  returned: always
  type: list
  elements: dict
  sample:
    - {check: early_drop_increase, value: 40, threshold: 0,
       msg: "early_drop_increase: growth of the early_drop counter between the two samples is 40, above 0"}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stateful.netfilter.plugins.module_utils._ctstats import run_module


def main():
    run_module(AnsibleModule)


if __name__ == '__main__':
    main()
