#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: conntrack_flush
short_description: Delete entries from the kernel's connection tracking table
version_added: 0.1.0
description:
  - Deletes the entries of the Linux connection tracking (conntrack) table that match the filters, like
    C(conntrack -D) and C(conntrack -F), with safety rails the command line lacks.
  - An unfiltered flush needs O(all=true); without filters and without it the module fails and deletes nothing.
  - The entry of the SSH connection the task runs over is kept unless O(protect_control_connection=false).
  - O(max_entries) refuses, deleting nothing, when more entries would be deleted.
  - No matching entry is not an error; the task then reports no change.
  - IPv4 and IPv6 entries are both flushed unless O(family) or an address filter says otherwise; flushing one family
    never touches the other.
  - Where the kernel can delete by filter itself (Linux 6.12 and later, detected at run time) it does, in one request;
    otherwise each entry is deleted by its reply tuple, zone and id, so an entry recreated meanwhile under a different
    NAT mapping survives.
author:
  - stateful.netfilter contributors (@stateful-netfilter)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - stateful.netfilter.conntrack_filters
attributes:
  check_mode:
    support: full
    details: Counts and samples the entries that would be deleted and deletes nothing.
  diff_mode:
    support: none
  platform:
    platforms: linux
    details: Needs connection tracking and C(nf_conntrack_netlink) in the kernel.
options:
  all:
    description:
      - Flush every entry (of O(family)). Required when no filter is given, and not allowed with filters.
    type: bool
    default: false
  max_entries:
    description:
      - Fail, deleting nothing, when more than this many entries would be deleted.
    type: int
  protect_control_connection:
    description:
      - Keep the conntrack entry of the SSH connection this task runs over, found from C(SSH_CONNECTION) in the
        module's environment, in either direction (also when it arrived through DNAT).
      - Set to V(false) to allow deleting it.
      - Local connections, and privilege escalation that drops C(SSH_CONNECTION) from the environment, leave nothing to
        protect; RV(protected) shows what was kept.
    type: bool
    default: true
seealso:
  - module: stateful.netfilter.conntrack_info
'''

EXAMPLES = r'''
- name: Flush the whole table (conntrack -F), IPv4 and IPv6, keeping this SSH session
  stateful.netfilter.conntrack_flush:
    all: true

- name: Delete the entries of one client (conntrack -D -s 192.168.1.100)
  stateful.netfilter.conntrack_flush:
    src: 192.168.1.100

- name: After a NAT change, drop stale SNAT entries of a LAN, but never more than 100000
  stateful.netfilter.conntrack_flush:
    src: 10.0.0.0/8
    nat: snat
    max_entries: 100000

# kube-proxy's case: after a UDP service's backends change, entries to the VIP
# still point at a dead backend and keep blackholing the client's datagrams.
- name: Read the UDP entries to the DNS service VIP
  stateful.netfilter.conntrack_info:
    protocol: udp
    dst: 10.96.0.10
    dport: 53
    limit: 0
  register: vip

- name: Delete those whose reply source (the backend) is no longer live
  stateful.netfilter.conntrack_flush:
    protocol: udp
    dst: 10.96.0.10
    dport: 53
    reply_src: "{{ item }}"
  loop: "{{ vip.entries | map(attribute='reply.src') | unique | difference(live_backends) }}"
  vars:
    live_backends: [10.244.1.7, 10.244.2.9]

- name: Preview what a flush would delete
  stateful.netfilter.conntrack_flush:
    dst: 198.51.100.0/24
  check_mode: true
  register: preview

- name: Flush a container's namespace
  stateful.netfilter.conntrack_flush:
    netns: web1
    all: true
'''

RETURN = r'''
deleted:
  description:
    - Entries deleted; in check mode, entries that would be deleted.
    - When the kernel flushes by filter, the number of matching entries counted just before the flush.
  returned: always
  type: int
  sample: 50000
matched:
  description: Entries matching the filters, protected ones included.
  returned: always
  type: int
  sample: 50001
sample:
  description: Up to ten of the entries deleted (or that would be), in the format of the entries of
    M(stateful.netfilter.conntrack_info).
  returned: always
  type: list
  elements: dict
  sample:
    - family: ipv4
      protocol: udp
      state: null
      timeout: 29
      status: [CONFIRMED, SRC_NAT, SRC_NAT_DONE, DST_NAT_DONE]
      nat: snat
      mark: 0
      zone: 0
      zone_dir: both
      id: 474400730
      orig: {src: 192.168.1.100, dst: 198.51.100.3, sport: 40000, dport: 53}
      reply: {src: 198.51.100.3, dst: 203.0.113.1, sport: 53, dport: 40000}
protected:
  description: Entries kept because they belong to the control connection.
  returned: always
  type: list
  elements: dict
  sample:
    - family: ipv4
      protocol: tcp
      state: ESTABLISHED
      timeout: 431999
      status: [SEEN_REPLY, ASSURED, CONFIRMED]
      nat: none
      mark: 0
      zone: 0
      zone_dir: both
      id: 1843520913
      orig: {src: 192.0.2.10, dst: 192.0.2.1, sport: 53122, dport: 22}
      reply: {src: 192.0.2.1, dst: 192.0.2.10, sport: 22, dport: 53122}
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stateful.netfilter.plugins.module_utils._conntrack import (
    ERRORS,
    control_connection,
    flush_entries,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._ctfilters import (
    build_filter,
    check_flush_all,
    filter_argument_spec,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._result import exit_large


def main():
    argument_spec = filter_argument_spec()
    argument_spec.update(
        all=dict(type='bool', default=False),
        max_entries=dict(type='int'),
        protect_control_connection=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params['max_entries'] is not None and params['max_entries'] < 0:
        module.fail_json(msg='max_entries: must be 0 or more, got %d' % params['max_entries'])
    try:
        flt = build_filter(params)
        check_flush_all(flt, params['all'], params)
        protect = control_connection(os.environ) if params['protect_control_connection'] else []
        result = flush_entries(flt, netns=params['netns'], max_entries=params['max_entries'],
                               check_mode=module.check_mode, protect=protect)
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    exit_large(module, changed=result['deleted'] > 0, **result)


if __name__ == '__main__':
    main()
