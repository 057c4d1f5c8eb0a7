# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: ruleset_rendered
short_description: The iptables-restore input of a rule model, without a host
version_added: 0.1.0
description:
  - What M(stateful.netfilter.ruleset) returns with O(stateful.netfilter.ruleset#module:state=rendered), computed on
    the controller - the iptables-restore input that creates the chains and policies of a model on an empty table,
    per family. The role's rules files for the boot-time restore are written from it.
  - Invalid rules fail with the engine's message, naming the parameter (C(chains[N].rules[M].OPTION)).
author:
  - stateful.netfilter contributors
options:
  _input:
    description: The model - C(family) (V(ipv4), V(ipv6) or V(both)), C(policies), C(chains), and C(table) (default
      V(filter)), as M(stateful.netfilter.ruleset) takes them.
    type: dict
    required: true
  scope:
    description: Scope of the owned chains (C(SNF-<scope>-*)); none for C(SNF-*).
    type: str
  backend:
    description:
      - V(iptables) returns the iptables-restore input per family; V(nftables) the owned table as C(nft list table)
        prints it, under the key C(nftables), as M(stateful.netfilter.ruleset) renders it with
        O(stateful.netfilter.ruleset#module:backend=nftables).
    type: str
    choices: [iptables, nftables]
    default: iptables
    version_added: 0.1.0
'''

EXAMPLES = r'''
- name: The rules file of each family
  ansible.builtin.debug:
    msg: "{{ {'family': 'ipv4', 'policies': {'INPUT': 'DROP'},
              'chains': [{'name': 'SNF-FW-INPUT', 'hook': 'INPUT', 'rules': [{'name': 'ssh', 'protocol': 'tcp',
                                                                            'destination_port': 22, 'jump': 'ACCEPT'}]}]}
             | stateful.netfilter.ruleset_rendered(scope='FW') }}"
'''

RETURN = r'''
_value:
  description: The iptables-restore input per family (C(ipv4), C(ipv6)), or with O(backend=nftables) the nft table (C(nftables)).
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import render
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError


def _ruleset_rendered(model, scope=None, backend='iptables'):
    if not isinstance(model, dict):
        raise AnsibleFilterError('ruleset_rendered: expected a model (family, policies, chains), got %s'
                                 % type(model).__name__)
    try:
        return render(model, scope, backend)
    except ValidationError as exc:
        raise AnsibleFilterError('ruleset_rendered: %s' % exc)
    except (KeyError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError('ruleset_rendered: not a model of the ruleset module (%r)' % (exc,))


class FilterModule(object):

    def filters(self):
        return {'ruleset_rendered': _ruleset_rendered}
