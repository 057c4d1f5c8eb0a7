#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: preflight
short_description: The firewall and nat_gateway roles' checks of a host before any change
version_added: 0.1.0
description:
  - Reads, in one run, what the P(stateful.netfilter.firewall#role) and P(stateful.netfilter.nat_gateway#role)
    roles must know of a host before they change anything, and fails with a message naming the host and the
    role's variable when one of them says no. The checks follow, in the order they are made.
  - Another firewall manager is active (a C(firewalld) process runs; ufw's C(/etc/ufw/ufw.conf) says
    C(ENABLED=yes) or its C(ufw-*) chains are loaded) and O(coexist) does not list it.
  - Persistence is requested (O(persist)) but systemd does not run on the host (no C(/run/systemd/system)), so
    nothing would run the roles' boot-time restore; unless O(persist_require_systemd=false).
  - A sysctl of O(sysctls) does not exist, or would change and cannot be written (C(nf_conntrack_max) inside a
    container's network namespace).
  - With O(ssh_guard), the planned O(model) would drop a new connection of the SSH client the play runs over, or
    its replies (the firewall role's C(firewall_ssh_guard); see P(stateful.netfilter.firewall_ssh_verdict#filter)
    for how the chains are evaluated). The client is read from C(SSH_CONNECTION) of the module's environment or,
    where privilege escalation dropped it (sudo resets the environment), of the nearest ancestor process that has
    it - the shell sshd started for the session; the arrival interface with C(ip route get CLIENT) only when a rule
    that could decide names one.
  - The roles call it; it is of use wherever the same questions are asked before a change.
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
options:
  role:
    description: The role asking; names the variables in the messages (C(firewall_coexist), C(nat_gateway_persist)...).
    type: str
    required: true
    choices: [firewall, nat_gateway]
  coexist:
    description: The firewall managers to run beside knowingly (the role's C(*_coexist) variable).
    type: list
    elements: str
    choices: [firewalld, ufw]
    default: []
  persist:
    description: Whether the role installs its boot-time restore (C(*_persist)).
    type: bool
    default: true
  persist_require_systemd:
    description: Refuse O(persist) where systemd does not run (C(*_persist_require_systemd)).
    type: bool
    default: true
  sysctls:
    description:
      - The sysctls the role sets, by name (C(net.ipv4.ip_forward)) with the value it sets; only with
        O(role=nat_gateway).
    type: dict
    default: {}
  host:
    description: The host's name, for the messages (the roles pass C(inventory_hostname)).
    type: str
    default: the host
  ssh_guard:
    description: Refuse a planned O(model) that would drop the SSH connection of the play; only with O(role=firewall).
    type: bool
    default: false
  model:
    description: The planned model (C(policies), C(chains)) as P(stateful.netfilter.firewall_plan#filter) returns it;
      required with O(ssh_guard).
    type: dict
  families:
    description: The address families the role manages; an SSH client of another family is not checked.
    type: list
    elements: str
    choices: [ipv4, ipv6]
    default: [ipv4, ipv6]
  scope:
    description: The scope of the role's owned chains (C(GW) for C(SNF-GW-*)); required with O(owned_tables).
    type: str
  owned_tables:
    description:
      - Tables to look for the scope's chains in, on either back end - C(SNF-<scope>-*) chains in the iptables table
        of either family, or the owned nftables table C(snf_<table>_<scope>); see RV(owned).
    type: list
    elements: str
    choices: [filter, nat, raw, mangle]
    default: []
  ssh_connection:
    description:
      - The SSH connection to check, as C(SSH_CONNECTION) reads (C(client cport server sport)), instead of the one
        found on the host.
    type: str
notes:
  - Needs C(iptables-save) to see ufw's loaded chains; without it, ufw is detected by its configuration only.
seealso:
  - module: stateful.netfilter.ruleset
'''

EXAMPLES = r'''
- name: Check the host before changing it
  stateful.netfilter.preflight:
    role: nat_gateway
    coexist: "{{ nat_gateway_coexist }}"
    persist: "{{ nat_gateway_persist }}"
    sysctls: {net.ipv4.ip_forward: 1}
    host: "{{ inventory_hostname }}"
  register: preflight
'''

RETURN = r'''
managers:
  description: The active firewall managers, each with C(manager) and C(evidence) (what showed it).
  returned: always
  type: list
  elements: dict
  sample: [{manager: ufw, evidence: ["/etc/ufw/ufw.conf says ENABLED=yes"]}]
systemd:
  description: Whether systemd runs on the host (C(/run/systemd/system) exists).
  returned: always
  type: bool
sysctls:
  description: Each sysctl of O(sysctls) with its C(value) (null where it does not exist) and C(writable).
  returned: always
  type: dict
  sample: {net.ipv4.ip_forward: {value: "0", writable: true}}
sysctl_changes:
  description: The names of the sysctls whose value would change.
  returned: always
  type: list
  elements: str
owned:
  description: For each table of O(owned_tables), whether the scope has chains there (a table that cannot be read
    counts as having them).
  returned: with O(owned_tables)
  type: dict
  sample: {raw: false, mangle: true}
ssh:
  description: The SSH guard's verdict - C(accepted), C(checked) (false when there is no SSH connection),
    C(family), C(decided_by) and C(output_decided_by) (the INPUT and OUTPUT rule or policy that decide) and
    C(message).
  returned: with O(ssh_guard)
  type: dict
'''

from ansible_collections.stateful.netfilter.plugins.module_utils._arguments import Module
from ansible_collections.stateful.netfilter.plugins.module_utils._preflight import run_module


def main():
    run_module(Module)


if __name__ == '__main__':
    main()
