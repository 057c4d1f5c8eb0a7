# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: conntrack_rows
short_description: Flatten conntrack_info results of several hosts into report rows
version_added: 0.1.0
description:
  - Turns the results of M(stateful.netfilter.conntrack_info), one per host, into flat dictionaries for a table or
    CSV lines, one per host, in the order of the input.
  - The keys of a row, in order - C(host), C(error), C(total), C(max), C(usage_percent) (total of max, in percent),
    C(matched) (entries matching the filters), C(ipv4), C(ipv6), C(tcp), C(udp), C(icmp) (ICMP and ICMPv6),
    C(other) (other protocols), C(established) and C(time_wait) (TCP states), C(snat) and C(dnat) (entries with
    that translation, both kinds counted in each), C(top_destination) (the most frequent original destination and
    its count).
  - A failed, unreachable or skipped result gives a row with C(error) set and no counts.
author:
  - stateful.netfilter contributors
options:
  _input:
    description: The registered results, as a dictionary of host name to result.
    type: dict
    required: true
'''

EXAMPLES = r'''
- name: Summarise the table
  stateful.netfilter.conntrack_info:
    summary_only: true
  register: ct

- name: One line per host of the play
  ansible.builtin.debug:
    msg: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'ct')))
             | stateful.netfilter.conntrack_rows
             | stateful.netfilter.text_table(['host', 'total', 'max', 'usage_percent']) }}"
  run_once: true
'''

RETURN = r'''
_value:
  description: The rows; see the description for their keys.
  type: list
  elements: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.plugin_utils._report import ReportError, conntrack_rows


def _conntrack_rows(results):
    try:
        return conntrack_rows(results)
    except ReportError as exc:
        raise AnsibleFilterError('conntrack_rows: %s' % exc)


class FilterModule(object):

    def filters(self):
        return {'conntrack_rows': _conntrack_rows}
