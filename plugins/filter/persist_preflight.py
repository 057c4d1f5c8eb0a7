# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: persist_preflight
short_description: The refusal of a boot-time restore that nothing would run
version_added: 0.1.0
description:
  - The firewall and nat_gateway roles restore their rules at boot with a systemd unit of their own. Given the
    role's persistence variable, whether systemd is required, and whether systemd runs on the host
    (C(/run/systemd/system) exists), returns the message to refuse with before any change, or an empty string.
author:
  - stateful.netfilter contributors
options:
  _input:
    description: The role's persistence variable (C(firewall_persist), C(nat_gateway_persist)).
    type: bool
    required: true
  role:
    description: The role asking (names the variables in the message).
    type: str
    choices: [firewall, nat_gateway]
    required: true
  require_systemd:
    description: The role's C(*_persist_require_systemd) variable.
    type: bool
    default: true
  systemd:
    description: Whether systemd runs on the host.
    type: bool
    required: true
  host:
    description: The host's name, for the message.
    type: str
    default: the host
'''

EXAMPLES = r'''
- name: Refuse persistence that nothing would run at boot
  ansible.builtin.fail:
    msg: "{{ refusal }}"
  when: refusal | length > 0
  vars:
    refusal: "{{ firewall_persist | stateful.netfilter.persist_preflight(role='firewall', systemd=systemd.stat.exists,
                                                                         host=inventory_hostname) }}"
'''

RETURN = r'''
_value:
  description: The message naming the host, the variables and the unit; empty when the role may go on.
  type: str
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.module_utils._persist import VARIABLES, check


def _persist_preflight(persist, role=None, require_systemd=True, systemd=None, host='the host'):
    if role not in VARIABLES:
        raise AnsibleFilterError('persist_preflight: role is one of %s, got %r' % (', '.join(sorted(VARIABLES)), role))
    persist_variable, require_variable, dummy = VARIABLES[role]
    for name, value in ((persist_variable, persist), (require_variable, require_systemd), ('systemd', systemd)):
        if not isinstance(value, bool):
            raise AnsibleFilterError('persist_preflight: %s must be a boolean, got %r' % (name, value))
    return check(role, persist, require_systemd, systemd, host)


class FilterModule(object):

    def filters(self):
        return {'persist_preflight': _persist_preflight}
