# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: conntrack_fleet
short_description: Add up conntrack_info results of many hosts into a fleet total
version_added: 0.1.0
description:
  - Sums the results of M(stateful.netfilter.conntrack_info) of several hosts - entries, table sizes and the counts
    by family, protocol, TCP state and NAT kind - and merges their top destinations and ports.
  - Each host reports its own ten most frequent destinations and ports, so the fleet's top lists are exact for the
    addresses that appear in them and a lower bound for the others.
  - Failed, unreachable or skipped results are counted in C(hosts_failed) and otherwise left out.
author:
  - stateful.netfilter contributors
options:
  _input:
    description: The results, as a list or as a dictionary of host name to result.
    type: raw
    required: true
'''

EXAMPLES = r'''
- name: Fleet total of the tables read by a play
  ansible.builtin.debug:
    msg: "{{ fleet.total }} entries of {{ fleet.max }} ({{ fleet.usage_percent }}%) on {{ fleet.hosts }} hosts"
  vars:
    fleet: "{{ ansible_play_hosts | map('extract', hostvars, 'ct') | stateful.netfilter.conntrack_fleet }}"
'''

RETURN = r'''
_value:
  description: The fleet total.
  type: dict
  contains:
    hosts:
      description: Results given.
      type: int
    hosts_failed:
      description: Results that failed, were unreachable or skipped.
      type: int
    total:
      description: Entries in the tables.
      type: int
    max:
      description: Sum of the table size limits; V(null) when a host did not report its limit.
      type: int
    usage_percent:
      description: C(total) of C(max) in percent, one decimal; V(null) when unknown.
      type: float
    matched:
      description: Entries matching the filters.
      type: int
    families:
      description: Matching entries by family.
      type: dict
    protocols:
      description: Matching entries by protocol.
      type: dict
    tcp_states:
      description: Matching TCP entries by state.
      type: dict
    nat:
      description: Matching entries by NAT kind.
      type: dict
    top_destinations:
      description: The ten most frequent destinations, C(address) and C(count).
      type: list
      elements: dict
    top_ports:
      description: The ten most frequent destination ports, C(protocol), C(port) and C(count).
      type: list
      elements: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.plugin_utils._report import ReportError, conntrack_fleet


def _conntrack_fleet(results):
    try:
        return conntrack_fleet(results)
    except ReportError as exc:
        raise AnsibleFilterError('conntrack_fleet: %s' % exc)


class FilterModule(object):

    def filters(self):
        return {'conntrack_fleet': _conntrack_fleet}
