#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: boot_restore
short_description: Install or remove the boot-time restore of the firewall and nat_gateway roles
version_added: 0.1.0
description:
  - Writes, in one run, what restores a role's rules at boot - the rules files rendered from the same models the
    role applied with M(stateful.netfilter.ruleset), a restore script and a systemd unit of the collection's own,
    enabled for C(multi-user.target) - or removes all of it.
  - With O(backend=iptables), one iptables-restore input per family holding every table
    (C(/etc/stateful-netfilter/ROLE.ipv4.rules), C(.ipv6.rules)), restored by C(/usr/local/sbin/snf-ROLE-restore)
    with C(iptables-restore --noflush) after deleting the hooks an earlier restore left, so running it twice gives
    the same ruleset. With O(backend=nftables), one C(nft -f) file (C(/etc/stateful-netfilter/ROLE.nft)) that
    replaces each owned table whole and touches no other table.
  - Each file is written only when its content or mode differs, atomically (a temporary file in the same directory,
    renamed into place); a rules file is checked first with C(iptables-restore --test --noflush) or C(nft -c -f),
    and a file refused is not written. The files of the other back end and the one-file-per-table layout of earlier
    releases are removed.
  - When the unit or its link changed and systemd runs, systemd is reloaded.
  - The roles call it with their planned models; the unit is C(snf-firewall.service) or
    C(snf-nat-gateway.service) (the firewall one runs after the nat_gateway one, as the gateway playbook applies
    them).
author:
  - stateful.netfilter contributors (@stateful-netfilter)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports the files that would be created, updated or removed; writes nothing.
  diff_mode:
    support: full
    details: The before and after text of each file written.
  platform:
    platforms: linux
options:
  role:
    description: The role whose restore this is; names the files, the script, the unit and the owned chains.
    type: str
    required: true
    choices: [firewall, nat_gateway]
  state:
    description: V(present) installs or updates the restore, V(absent) removes every file of it.
    type: str
    choices: [present, absent]
    default: present
  backend:
    description: The back end the role applied its rules with; the rules files are rendered for it.
    type: str
    choices: [iptables, nftables]
    default: iptables
  tables:
    description:
      - The models the role applied, one per table, as M(stateful.netfilter.ruleset) takes them - C(table)
        (V(filter), V(nat), V(raw) or V(mangle)), C(family), C(policies), C(chains). The scope is the role's
        (C(FW) for the firewall role, C(GW) for nat_gateway).
      - A table without chains or policies adds nothing to the iptables files; with O(backend=nftables) its owned
        table is removed at boot.
    type: list
    elements: dict
    default: []
  root:
    description: Install under this directory instead of C(/) (an image being built); systemd is not reloaded then.
    type: path
    default: /
notes:
  - Needs C(iptables-restore) and C(ip6tables-restore), or C(nft), to check the rules files.
seealso:
  - module: stateful.netfilter.ruleset
  - module: stateful.netfilter.preflight
'''

EXAMPLES = r'''
- name: Restore the applied filter chains at boot
  stateful.netfilter.boot_restore:
    role: firewall
    tables:
      - table: filter
        family: both
        policies: {INPUT: DROP}
        chains:
          - name: SNF-FW-INPUT
            hook: INPUT
            rules:
              - {name: established, ctstate: [ESTABLISHED, RELATED], jump: ACCEPT}
              - {name: ssh, protocol: tcp, destination_port: 22, jump: ACCEPT}

- name: Remove it
  stateful.netfilter.boot_restore:
    role: firewall
    state: absent
'''

RETURN = r'''
changes:
  description: Each file (or link) changed, with what was done - V(created), V(updated) or V(removed).
  returned: always
  type: dict
  sample: {/etc/stateful-netfilter/firewall.ipv4.rules: updated}
daemon_reload:
  description: Whether systemd was (in check mode, would be) reloaded because the unit or its link changed.
  returned: always
  type: bool
'''

from ansible_collections.stateful.netfilter.plugins.module_utils._arguments import Module
from ansible_collections.stateful.netfilter.plugins.module_utils._persist import run_boot_restore


def main():
    run_boot_restore(Module)


if __name__ == '__main__':
    main()
