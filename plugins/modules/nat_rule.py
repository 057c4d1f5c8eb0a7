#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: nat_rule
short_description: One SNAT, MASQUERADE, DNAT or REDIRECT rule, present or absent
version_added: 0.1.0
description:
  - Manages one NAT rule in the collection's owned chains of the C(nat) table, C(SNF-NAT-POST) (hooked first
    in C(POSTROUTING), for V(snat) and V(masquerade)) and C(SNF-NAT-PRE) (hooked first in C(PREROUTING), for
    V(dnat) and V(redirect)). Foreign chains and rules (C(DOCKER*), C(KUBE-*), ...) stay byte-identical.
  - The change is checked with C(iptables-restore --test) and applied in one C(iptables-restore --noflush)
    transaction per family. An owned chain left without rules is removed with its hook.
  - Optionally deletes the conntrack entries the rule's match covers, so that existing flows take the new
    translation.
author:
  - stateful.netfilter contributors (@stateful-netfilter)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The same plan is computed; nothing is applied and no conntrack entry is deleted.
  diff_mode:
    support: full
    details: Returns the owned NAT chains and their hooks before and after, in save syntax.
  platform:
    platforms: linux
options:
  type:
    description: The translation.
    type: str
    choices: [snat, masquerade, dnat, redirect]
    required: true
  state:
    description:
      - Whether the rule is present or absent. A named rule is removed by its name alone, from either chain,
        and from both families unless O(family) or an address says which.
    type: str
    choices: [present, absent]
    default: present
  name:
    description:
      - Stable identity of the rule, stored in its comment as C(snf:NAME). A rule with the same name and a new
        spec is replaced in place, keeping its position. Without a name the whole spec is the identity.
      - A name is unique across both NAT chains; a named rule whose O(type) moves it to the other chain
        leaves its old chain.
    type: str
  family:
    description:
      - The address family. Inferred from the addresses when omitted; a rule without addresses is V(ipv4)
        unless V(both) is given, except that O(state=absent) with a O(name) and no addresses removes the
        named rule from both families.
    type: str
    choices: [ipv4, ipv6, both]
  source:
    description:
      - Source address or network to match. A leading C(!) negates it (V(!10.0.0.0/8), quoted in YAML), as it
        does for O(destination), the interfaces and the ports; O(flush_conntrack) cannot follow a negated
        address or port and is refused with one.
      - With O(backend=nftables), also a list of networks of one family, as one rule with an anonymous set, kept
        as the fewest networks that cover the same addresses (the iptables back end refuses a list that does
        not collapse to one network).
    type: raw
  destination:
    description: Destination address or network to match; a list as for O(source).
    type: raw
  in_interface:
    description: Input interface to match (V(dnat) and V(redirect) only).
    type: str
  out_interface:
    description: Output interface to match (V(snat) and V(masquerade) only).
    type: str
  protocol:
    description: Protocol to match (V(tcp), V(udp), V(sctp), ... or a number). Required for ports.
    type: str
  source_port:
    description:
      - Source port or range (V(1000-2000)) to match.
      - Or a list of ports and ranges (V([80, 443, "8000-8100"]), also the string V(80,443)), matched with
        C(-m multiport --sports) (protocol tcp, udp, udplite, sctp or dccp; at most 15 ports, a range counting 2).
        O(flush_conntrack) then flushes each port or range of the list.
    type: raw
  destination_port:
    description:
      - Destination port or range to match.
      - Or a list of ports and ranges, matched with C(-m multiport --dports), as for O(source_port).
    type: raw
  to_source:
    description:
      - The new source for V(snat) (required with it), an address or V(A-B) range with optional
        V(:port) or V(:port-port); IPv6 as V(dead::beef-dead::fee7), with ports as V([a::1-a::9]:1025-65535).
    type: str
  to_destination:
    description:
      - The new destination for V(dnat) (required with it), an address or V(A-B) range with optional V(:port)
        or V(:port-port); IPv6 as for O(to_source).
      - V(:A-B/BASE) shifts ports - packets to port BASE+n go to port A+n (V(10.0.0.5:8000-8099/80) sends ports
        80-179 to 8000-8099).
    type: str
  to_ports:
    description: Port or range to map to, for V(masquerade) and V(redirect).
    type: raw
  random:
    description: Randomise the port mapping.
    type: bool
    default: false
  random_fully:
    description: Fully randomise the port mapping (V(snat), V(masquerade)).
    type: bool
    default: false
  persistent:
    description: Give a client the same address on every connection (V(snat), V(dnat)).
    type: bool
    default: false
  comment:
    description: A comment, one line; with the name tag it must fit in the kernel's 255 bytes.
    type: str
  order:
    description:
      - Where a new rule goes in its chain - V(first), V(last), or V(before) / V(after) the rule named
        O(relative_to). A rule that exists keeps its position.
    type: str
    choices: [first, last, before, after]
    default: last
  relative_to:
    description: The name of the rule that O(order=before) or O(order=after) refers to.
    type: str
  flush_conntrack:
    description:
      - When the rule is added, changed or removed, delete the conntrack entries its match (protocol,
        addresses, ports; interfaces are not part of a conntrack entry) covers, so that existing flows take
        the new translation instead of keeping the old one.
      - Both the old and the new match are flushed when a named rule changes. The entries of the SSH
        connection Ansible runs over are kept.
    type: bool
    default: false
  backend:
    description:
      - V(iptables) puts the rule in the owned chains of the iptables C(nat) table, as described above.
      - V(nftables) puts the same rule in the collection's own NAT table, C(inet snf_nat_NAT) (chains
        C(ipv4.SNF-NAT-POST) and C(ipv4.SNF-NAT-PRE), and their IPv6 twins, hooked by base chains at
        C(srcnat - 1) and C(dstnat - 1)), replaced in one C(nft -f) transaction after C(nft -c) accepted it;
        nothing outside that table is touched. Needs the C(nft) command (0.9.3 or later) and a kernel with
        nf_tables. The options and their checks, placement, check and diff modes and O(flush_conntrack) are the
        same. See docs/nftables.md.
    type: str
    choices: [iptables, nftables]
    default: iptables
    version_added: 0.1.0
seealso:
  - module: stateful.netfilter.ruleset
'''

EXAMPLES = r'''
- name: SNAT the LAN to a fixed address and move live flows to it
  stateful.netfilter.nat_rule:
    name: lan-out
    type: snat
    source: 10.0.0.0/24
    out_interface: eth0
    to_source: 203.0.113.5
    flush_conntrack: true

- name: Port forward 8080 on the uplink to a LAN web server
  stateful.netfilter.nat_rule:
    name: web
    type: dnat
    in_interface: eth0
    protocol: tcp
    destination_port: 8080
    to_destination: 10.0.0.10:80

- name: Masquerade everything leaving ppp interfaces, both families
  stateful.netfilter.nat_rule:
    type: masquerade
    out_interface: ppp+
    family: both
    order: first

- name: Remove the port forward
  stateful.netfilter.nat_rule:
    name: web
    type: dnat
    state: absent
'''

RETURN = r'''
rule:
  description:
    - The rule in iptables-save syntax (null when a named rule is removed by name).
    - With O(backend=nftables), the rule as an C(nft add rule) command of the owned table.
  returned: always
  type: str
  sample: -A SNF-NAT-POST -s 10.0.0.0/24 -o eth0 -m comment --comment snf:lan-out -j SNAT --to-source 203.0.113.5
chain:
  description: The owned chain of the rule.
  returned: always
  type: str
  sample: SNF-NAT-POST
families:
  description: The families the rule was applied to.
  returned: always
  type: list
  elements: str
  sample: [ipv4]
conntrack_deleted:
  description:
    - How many conntrack entries were deleted (0 unless O(flush_conntrack) is set and the rule changed).
    - In check mode, how many would be deleted.
  returned: always
  type: int
  sample: 12
backend:
  description: The iptables back end the host selects (V(nft) or V(legacy)), or V(nftables) with
    O(backend=nftables).
  returned: always
  type: str
  sample: nft
table:
  description: With O(backend=nftables), the owned nft table.
  returned: backend is nftables
  type: str
  sample: inet snf_nat_NAT
nft:
  description: With O(backend=nftables), the C(nft -f) input applied (or, in check mode, that would be applied);
    empty when nothing changes.
  returned: backend is nftables
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.stateful.netfilter.plugins.module_utils import _conntrack
from ansible_collections.stateful.netfilter.plugins.module_utils._engine import run_nat_rule
from ansible_collections.stateful.netfilter.plugins.module_utils._nft import run_nat_rule as run_nat_rule_nft
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import rule_argument_spec


def main():
    argument_spec = rule_argument_spec()
    argument_spec.update(
        type=dict(type='str', choices=['snat', 'masquerade', 'dnat', 'redirect'], required=True),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        family=dict(type='str', choices=['ipv4', 'ipv6', 'both']),
        order=dict(type='str', choices=['first', 'last', 'before', 'after'], default='last'),
        relative_to=dict(type='str'),
        flush_conntrack=dict(type='bool', default=False),
        backend=dict(type='str', choices=['iptables', 'nftables'], default='iptables'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[('order', 'before', ['relative_to']), ('order', 'after', ['relative_to'])],
        supports_check_mode=True,
    )
    if module.params['backend'] == 'nftables':
        run_nat_rule_nft(module, _conntrack)
    run_nat_rule(module, _conntrack)


if __name__ == '__main__':
    main()
