# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: firewall_managers
short_description: Whether another firewall manager (firewalld, ufw) is active on a host, and the refusal
version_added: 0.1.0
description:
  - Given what the firewall and nat_gateway roles read on a host (the running processes' names, ufw's
    configuration, the iptables ruleset), tells which of firewalld and ufw is active and, unless the role's
    variable accepts it (C(firewall_coexist), C(nat_gateway_coexist)), the message to refuse with before any
    change. The message names the manager, what showed it and the variable.
author:
  - stateful.netfilter contributors
options:
  _input:
    description: The names of the running processes, one a line (C(ps -e -o comm=)).
    type: str
    required: true
  ufw_conf:
    description: The text of C(/etc/ufw/ufw.conf); omitted or null when the file does not exist.
    type: str
  rules:
    description: The text of C(iptables-save) and C(ip6tables-save).
    type: str
  role:
    description: The role asking (names the variable in the message).
    type: str
    choices: [firewall, nat_gateway]
    required: true
  accept:
    description: The managers the role's variable accepts.
    type: list
    elements: str
    default: []
  host:
    description: The host's name, for the message.
    type: str
    default: the host
'''

EXAMPLES = r'''
- name: Refuse to run beside an active firewalld or ufw unless accepted
  ansible.builtin.fail:
    msg: "{{ managers.message }}"
  when: managers.message | length > 0
  vars:
    managers: "{{ processes.stdout | stateful.netfilter.firewall_managers(role='firewall', accept=firewall_coexist,
                                                                         host=inventory_hostname) }}"
'''

RETURN = r'''
_value:
  description: C(found) (the active managers, each C(manager) and C(evidence), a list of what showed it),
    C(accepted) (the names of those the variable accepts) and C(message) (empty unless the role must refuse).
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types
from ansible_collections.stateful.netfilter.plugins.module_utils._managers import ACCEPT_VARIABLE, check, detect


def _firewall_managers(processes, ufw_conf=None, rules=None, role=None, accept=None, host='the host'):
    if role not in ACCEPT_VARIABLE:
        raise AnsibleFilterError('firewall_managers: role is one of %s, got %r' % (', '.join(sorted(ACCEPT_VARIABLE)), role))
    for name, value in (('the input (process names)', processes), ('ufw_conf', ufw_conf), ('rules', rules)):
        if value is not None and not isinstance(value, string_types):
            raise AnsibleFilterError('firewall_managers: %s must be text, got %s' % (name, type(value).__name__))
    if accept is None:
        accept = []
    if not isinstance(accept, list) or not all(isinstance(item, string_types) for item in accept):
        raise AnsibleFilterError('firewall_managers: %s must be a list of names' % ACCEPT_VARIABLE[role])
    found = detect(processes, ufw_conf, rules)
    return {
        'found': found,
        'accepted': [entry['manager'] for entry in found if entry['manager'] in accept],
        'message': check(found, role, accept, host),
    }


class FilterModule(object):

    def filters(self):
        return {'firewall_managers': _firewall_managers}
