# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: nat_gateway_stale
short_description: The conntrack filters of the translations a nat_gateway change replaces
version_added: 0.1.0
description:
  - Compares the translations in place (the C(gathered) result of M(stateful.netfilter.ruleset) for the nat table)
    with the planned nat chains, rule by rule name, in canonical form, per family.
  - Returns one M(stateful.netfilter.conntrack_flush) filter for each source NAT translation that changed or went
    away (C(nat=snat), the source, and the old address as C(reply_dst) when it was one address), and one per
    destination NAT (C(nat=dnat), protocol, port, and the old server as C(reply_src) and C(reply_sport)).
author:
  - stateful.netfilter contributors
options:
  _input:
    description: The C(gathered) result of M(stateful.netfilter.ruleset) (family to C(chains)).
    type: dict
    required: true
  chains:
    description: The planned nat chains (C(nat_chains) of P(stateful.netfilter.nat_gateway_plan#filter)).
    type: list
    elements: dict
    required: true
  scope:
    description: Scope of the owned chains (C(SNF-<scope>-*)).
    type: str
    default: GW
'''

EXAMPLES = r'''
- name: Find the stale translations
  ansible.builtin.set_fact:
    stale: "{{ before.gathered | stateful.netfilter.nat_gateway_stale(model.nat_chains) }}"
'''

RETURN = r'''
_value:
  description: The filters, each with C(name) (of the old rule), C(family), C(nat) and the options of
    M(stateful.netfilter.conntrack_flush) it sets (C(src), C(reply_dst); C(protocol), C(dport), C(reply_src),
    C(reply_sport)); an option that does not apply is V(null).
  type: list
  elements: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.module_utils._nat_plan import SCOPE, stale
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError


def _nat_gateway_stale(gathered, chains, scope=SCOPE):
    if not isinstance(gathered, dict) or not isinstance(chains, list):
        raise AnsibleFilterError('nat_gateway_stale: expected the gathered nat table (a dictionary) and the planned '
                                 'chains (a list)')
    try:
        return stale(gathered, chains, scope)
    except ValidationError as exc:
        raise AnsibleFilterError('nat_gateway_stale: %s' % exc)
    except (KeyError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError('nat_gateway_stale: not a gathered nat table (%r)' % (exc,))


class FilterModule(object):

    def filters(self):
        return {'nat_gateway_stale': _nat_gateway_stale}
