# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: firewall_ssh_verdict
short_description: Would a planned firewall accept a new connection of the SSH client and its replies?
version_added: 0.1.0
description:
  - Evaluates the owned INPUT chains hooked first and the INPUT policy of a model (as P(stateful.netfilter.firewall_plan#filter)
    returns it) for a new TCP connection from the SSH client to the SSH server's address and port, arriving on the
    interface C(ip route get CLIENT) names.
  - The ESTABLISHED,RELATED rule is not counted - the next connection Ansible opens is NEW. Rules the check cannot
    decide (rate limits, source ports, ICMP types) are taken as not accepting; a rule with C(syn=false) does not
    match the first packet, a SYN.
  - Then evaluates the owned OUTPUT chains hooked first and the OUTPUT policy for the server's replies, leaving by
    the same interface - conntrack sees them as ESTABLISHED (the SYN-ACK of the next connection too), not SYN.
    Both must accept.
author:
  - stateful.netfilter contributors
options:
  _input:
    description: The planned model (C(policies), C(chains)).
    type: dict
    required: true
  connection:
    description: The value of C(SSH_CONNECTION) on the host (C(client cport server sport)); anything else means
      there is no SSH connection to check.
    type: str
    required: true
  route:
    description:
      - Output of C(ip route get CLIENT) on the host (its C(dev NAME) is the arrival interface).
      - Left out, the result has C(needs_route=true) (and C(accepted=false)) when a rule that could decide names an
        interface; call again with it.
    type: str
  families:
    description: The address families the role manages; a client of another family is not checked.
    type: list
    elements: str
    default: [ipv4, ipv6]
  host:
    description: The host's name, for the message.
    type: str
'''

EXAMPLES = r'''
- name: Check the SSH flow against the planned INPUT chain and policy
  ansible.builtin.assert:
    that: verdict.accepted
    fail_msg: "{{ verdict.message }}"
  vars:
    verdict: "{{ model | stateful.netfilter.firewall_ssh_verdict(connection='192.0.2.7 40022 192.0.2.1 22',
                                                                 route='192.0.2.7 dev eth0 src 192.0.2.1') }}"
'''

RETURN = r'''
_value:
  description: C(accepted) (bool), C(checked) (false when there is no SSH connection or the route is needed),
    C(needs_route) (see O(route)), C(family) of the client, C(decided_by) (the INPUT rule or policy that decides),
    C(output_decided_by) (the OUTPUT rule or policy that decides for the replies) and C(message) (the guard's
    message).
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import ssh_verdict


def _firewall_ssh_verdict(model, connection, route=None, families=('ipv4', 'ipv6'), host='the host'):
    if not isinstance(model, dict) or not isinstance(model.get('chains'), list) \
            or not isinstance(model.get('policies'), dict):
        raise AnsibleFilterError('firewall_ssh_verdict: expected a planned model (policies, chains)')
    return ssh_verdict(model, connection, route, list(families), host)


class FilterModule(object):

    def filters(self):
        return {'firewall_ssh_verdict': _firewall_ssh_verdict}
