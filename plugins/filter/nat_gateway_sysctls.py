# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: nat_gateway_sysctls
short_description: Which planned sysctls change, and whether the host lets them be written
version_added: 0.1.0
description:
  - For the sysctls the nat_gateway role sets, tells the C(/proc/sys) paths to read; given what was read there,
    the sysctls whose value changes; given a stat of those, the message to refuse with when one of them is
    read-only (C(nf_conntrack_max) inside a container's network namespace) or does not exist.
  - Lets the role refuse before any change, in check mode too.
author:
  - stateful.netfilter contributors
options:
  _input:
    description: The planned sysctls, name to value (C(sysctls) of P(stateful.netfilter.nat_gateway_plan#filter)).
    type: dict
    required: true
  read:
    description: The registered result of reading the paths, one value a line in their order (C(rc), C(stderr),
      C(stdout_lines)).
    type: dict
  stats:
    description: The registered results of a stat of each path to change (C(item) the sysctl's name, C(stat)).
    type: list
    elements: dict
  host:
    description: The host's name, for the message.
    type: str
    default: the host
'''

EXAMPLES = r'''
- name: Refuse a sysctl the host does not let the role write
  ansible.builtin.fail:
    msg: "{{ check.message }}"
  when: check.message | length > 0
  vars:
    check: "{{ model.sysctls | stateful.netfilter.nat_gateway_sysctls(read=sysctl_read, stats=sysctl_stat.results,
                                                                      host=inventory_hostname) }}"
'''

RETURN = r'''
_value:
  description: C(paths) (the C(/proc/sys) files, in order), C(changes) (the sysctls whose value differs from what
    was read; empty before O(read)) and C(message) (empty unless the role must refuse).
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.module_utils._nat_plan import sysctl_check


def _nat_gateway_sysctls(sysctls, read=None, stats=None, host='the host'):
    if not isinstance(sysctls, dict):
        raise AnsibleFilterError('nat_gateway_sysctls: expected the planned sysctls as a dictionary, got %s'
                                 % type(sysctls).__name__)
    if read is not None and not isinstance(read, dict) or stats is not None and not isinstance(stats, list):
        raise AnsibleFilterError('nat_gateway_sysctls: read is a registered result (a dictionary), stats a list')
    return sysctl_check(sysctls, read, stats, host)


class FilterModule(object):

    def filters(self):
        return {'nat_gateway_sysctls': _nat_gateway_sysctls}
