# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: firewall_plan
short_description: Plan the owned chains and policies of the firewall role
version_added: 0.1.0
description:
  - Turns the variables of the C(stateful.netfilter.firewall) role into the owned chains, hooks and policies of the
    filter table, in the structure M(stateful.netfilter.ruleset) takes (O(stateful.netfilter.ruleset#module:family),
    O(stateful.netfilter.ruleset#module:policies), O(stateful.netfilter.ruleset#module:chains)).
  - Every planned rule is checked against the collection's rule model; bad input fails with a message naming the
    variable and the entry. Reads and changes nothing on any host.
  - Used by the firewall role; the order and content of the chains are described in the role's argument spec.
author:
  - stateful.netfilter contributors
options:
  _input:
    description: The role variables by name (C(firewall_families), C(firewall_input_allow), ...); missing ones take
      the role's defaults.
    type: dict
    required: true
  scope:
    description: Scope of the owned chains (C(SNF-<scope>-*)).
    type: str
    default: FW
  backend:
    description:
      - The back end the model is for. With V(nftables) the sources (and destinations) of an allow entry are one
        rule per address family matching a list of networks (an anonymous set, one lookup); with V(iptables) one
        rule per source and destination.
    type: str
    choices: [iptables, nftables]
    default: iptables
'''

EXAMPLES = r'''
- name: Plan the rules of the firewall role without a host
  ansible.builtin.debug:
    msg: "{{ {'firewall_families': ['ipv4'], 'firewall_input_allow': [{'name': 'ssh', 'port': 22}]}
             | stateful.netfilter.firewall_plan }}"
'''

RETURN = r'''
_value:
  description: The model - C(family) (V(ipv4), V(ipv6) or V(both)), C(policies) (built-in chain to policy) and
    C(chains) (owned chains with their hooks and rules).
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import PlanError, plan


def _firewall_plan(variables, scope='FW', backend='iptables'):
    if not isinstance(variables, dict):
        raise AnsibleFilterError('firewall_plan: expected the role variables as a dictionary, got %s'
                                 % type(variables).__name__)
    try:
        return plan(variables, scope, backend)
    except PlanError as exc:
        raise AnsibleFilterError('firewall_plan: %s' % exc)


class FilterModule(object):

    def filters(self):
        return {'firewall_plan': _firewall_plan}
