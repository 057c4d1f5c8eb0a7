# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: nat_gateway_plan
short_description: Plan the owned chains and the sysctls of the nat_gateway role
version_added: 0.1.0
description:
  - Turns the variables of the C(stateful.netfilter.nat_gateway) role into the owned chains of the nat table (the
    translations, C(SNF-<scope>-PRE) and C(SNF-<scope>-POST)) and of the filter table (the FORWARD accepts,
    C(SNF-<scope>-FORWARD)), of the raw table (the conntrack helpers, C(SNF-<scope>-HELPERS)) and of the mangle
    table (the MSS clamping, C(SNF-<scope>-MSS)), in the structure M(stateful.netfilter.ruleset) takes
    (O(stateful.netfilter.ruleset#module:chains)), and the sysctls to set.
  - Every planned rule is checked against the collection's rule model in both families; bad input fails with a
    message naming the variable and the entry. Reads and changes nothing on any host.
  - Used by the nat_gateway role; the rules are described in the role's argument spec.
author:
  - stateful.netfilter contributors
options:
  _input:
    description: The role variables by name (C(nat_gateway_masquerade), C(nat_gateway_port_forwards), ...); missing
      ones take the role's defaults.
    type: dict
    required: true
  scope:
    description: Scope of the owned chains (C(SNF-<scope>-*)).
    type: str
    default: GW
'''

EXAMPLES = r'''
- name: Plan the rules of the nat_gateway role without a host
  ansible.builtin.debug:
    msg: "{{ {'nat_gateway_masquerade': [{'source': '192.168.1.0/24', 'out_interface': 'eth1'}],
              'nat_gateway_port_forwards': [{'name': 'web', 'port': 8080, 'to': '192.168.1.100:80'}]}
             | stateful.netfilter.nat_gateway_plan }}"
'''

RETURN = r'''
_value:
  description: The model - C(nat_chains), C(filter_chains), C(raw_chains) and C(mangle_chains) (owned chains with
    their hooks and rules, for
    M(stateful.netfilter.ruleset) with O(stateful.netfilter.ruleset#module:family=both)) and C(sysctls) (sysctl
    name to value).
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.module_utils._nat_plan import SCOPE, PlanError, plan


def _nat_gateway_plan(variables, scope=SCOPE):
    if not isinstance(variables, dict):
        raise AnsibleFilterError('nat_gateway_plan: expected the role variables as a dictionary, got %s'
                                 % type(variables).__name__)
    try:
        return plan(variables, scope)
    except PlanError as exc:
        raise AnsibleFilterError('nat_gateway_plan: %s' % exc)


class FilterModule(object):

    def filters(self):
        return {'nat_gateway_plan': _nat_gateway_plan}
