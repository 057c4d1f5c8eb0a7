#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: sysctls
short_description: Set several sysctls live and keep them in one /etc/sysctl.d file, in one run
version_added: 0.1.0
description:
  - Writes each sysctl of O(values) to C(/proc/sys) where its value differs (compared as the kernel prints it back,
    words separated by whitespace), and keeps the same values in O(file), written atomically and only when its
    text differs, removed when O(values) is empty.
  - Fails before any change when a name is not a sysctl name, does not exist on the host, or would change and is
    read-only (C(nf_conntrack_max) inside a container's network namespace).
  - The P(stateful.netfilter.nat_gateway#role) role sets forwarding and conntrack sysctls with it, after its rules
    are in place.
author:
  - stateful.netfilter contributors (@stateful-netfilter)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports the values and the file that would change; writes nothing.
  diff_mode:
    support: full
    details: The live values before and after, and the file's text.
  platform:
    platforms: linux
options:
  values:
    description: The sysctls to set, by name (C(net.ipv4.ip_forward)), with their values.
    type: dict
    default: {}
  file:
    description: The file of C(/etc/sysctl.d) that keeps exactly O(values) across reboots; none, only live values.
    type: path
seealso:
  - module: stateful.netfilter.preflight
'''

EXAMPLES = r'''
- name: Forward IPv4 and IPv6, now and after a reboot
  stateful.netfilter.sysctls:
    values:
      net.ipv4.ip_forward: 1
      net.ipv6.conf.all.forwarding: 1
    file: /etc/sysctl.d/60-forwarding.conf
'''

RETURN = r'''
changes:
  description: Each sysctl whose live value changed (in check mode, would change), with C(before) and C(after).
  returned: always
  type: dict
  sample: {net.ipv4.ip_forward: {before: "0", after: "1"}}
file_changed:
  description: Whether O(file) was (would be) written or removed.
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stateful.netfilter.plugins.module_utils._sysctls import run_module


def main():
    run_module(AnsibleModule)


if __name__ == '__main__':
    main()
