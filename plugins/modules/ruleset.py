#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: ruleset
short_description: Manage the collection's own iptables chains of a table, atomically
version_added: 0.1.0
description:
  - Declares the whole content of the chains this collection owns in one table (V(filter), V(nat), V(mangle) or
    V(raw)) and
    one or both address families - the rules of each owned chain in order, the built-in chain each owned
    chain hooks into and where, and the policies of the built-in chains.
  - Owned chains are the chains whose names start with C(SNF-). Each is hooked from at most one built-in
    chain by a single jump rule without matches. Every other chain and rule (C(DOCKER*), C(KUBE-*), rules an
    administrator added) is left byte-identical.
  - Reads the table with C(iptables-save), plans the change, checks it with C(iptables-restore --test) and
    applies it with one C(iptables-restore --noflush) transaction per table and family, so the kernel takes
    all of it or none of it. A policy of V(DROP) and the accept rules that come with it land together.
  - Works with the back end the host's C(iptables) selects (nf_tables or legacy) and warns when the other
    back end also holds rules.
author:
  - stateful.netfilter contributors (@stateful-netfilter)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The same plan is computed; nothing is applied. C(changed) is the same as in the real run.
  diff_mode:
    support: full
    details: Returns the owned chains, their hooks and the managed policies before and after, in save syntax.
  platform:
    platforms: linux
options:
  table:
    description:
      - The table whose owned chains are managed.
      - V(raw) (built-in chains C(PREROUTING), C(OUTPUT)) takes the V(CT) target, to assign a conntrack helper
        or to leave packets untracked; V(mangle) (C(PREROUTING), C(INPUT), C(FORWARD), C(OUTPUT), C(POSTROUTING))
        takes V(TCPMSS), to clamp the MSS of TCP SYN packets.
    type: str
    choices: [filter, nat, mangle, raw]
    default: filter
  family:
    description:
      - The address families to manage. With V(both), a rule whose addresses (also the conntrack ones), ICMP
        protocol or conntrack helper imply one family goes to that family only; other rules go to both.
    type: str
    choices: [ipv4, ipv6, both]
    default: both
  state:
    description:
      - V(overridden) makes the owned chains of the scope exactly O(chains) and removes the others of the scope.
      - V(merged) adds the listed chains, appends their rules that are missing and replaces named rules in place;
        it removes nothing.
      - V(deleted) removes the listed chains (all owned chains of the scope when O(chains) is empty) and
        their hooks. Their rules are ignored.
      - V(gathered) reads the owned chains and the built-in policies back as structured data, changing nothing.
      - V(rendered) returns the iptables-restore input that would create O(chains) on an empty table,
        without reading or changing the host.
    type: str
    choices: [overridden, merged, deleted, gathered, rendered]
    default: merged
  scope:
    description:
      - Limits the module to the owned chains named C(SNF-<scope>-*), so that several callers (for example
        the firewall and nat_gateway roles) each manage their own chains with O(state=overridden) without
        undoing each other. Without it, every C(SNF-*) chain of the table is in scope.
      - The scope C(NAT) is used by M(stateful.netfilter.nat_rule).
    type: str
  policies:
    description:
      - Policies to set on built-in chains, a mapping of chain name to V(ACCEPT) or V(DROP), for example
        C(INPUT) to V(DROP). Only the chains listed are touched.
      - The V(nat), V(mangle) and V(raw) tables accept no policy other than V(ACCEPT).
    type: dict
  chains:
    description: The owned chains, in the order their hooks are placed.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Chain name, C(SNF-) followed by letters, digits, C(_) or C(-), up to 28 characters.
        type: str
        required: true
      hook:
        description:
          - The built-in chain that jumps to this chain. Without it the chain is only reached by jumps from
            other owned chains. In V(merged) state an omitted hook keeps the current one.
        type: str
      hook_position:
        description:
          - V(first) places the jump before every rule the collection does not own, V(last) after them.
          - Several chains hooked at the same position keep the order of O(chains).
        type: str
        choices: [first, last]
        default: first
      rules:
        description:
          - The rules of the chain, in order.
          - A value starting with C(!) negates the match, as C(!) before the option does in iptables
            (V(!10.0.0.0/8), V(!eth0), V(!22), V(!80,443), or a list whose first element is V(!)). Negation works
            for O(chains[].rules[].source), O(chains[].rules[].destination), O(chains[].rules[].in_interface),
            O(chains[].rules[].out_interface), the ports, O(chains[].rules[].tcp_flags), O(chains[].rules[].ctstate),
            O(chains[].rules[].ctstatus) and the C(ct*) addresses and ports. In YAML, quote such a value (a
            leading C(!) is a tag). A negated "any" (V(!0.0.0.0/0)) would match nothing and is refused.
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description:
              - Stable identity of the rule, stored in its comment as C(snf:NAME). In V(merged) state a rule
                with the same name is replaced in place; an unnamed rule is identified by its whole spec.
            type: str
          family:
            description: Restricts the rule to one family. Usually inferred from addresses and ICMP protocol.
            type: str
            choices: [ipv4, ipv6]
          protocol:
            description: Protocol name (V(tcp), V(udp), V(icmp), V(icmpv6), ...) or number.
            type: str
          source:
            description:
              - Source address or network (CIDR without host bits).
              - With O(backend=nftables), also a list of networks of one family (or a comma-separated string), as
                one rule with an anonymous set (C(ip saddr { 10.0.0.0/24, 192.0.2.7 }), one lookup). The list is
                kept as the fewest networks that cover the same addresses, sorted (V(gathered) returns that
                form). The iptables back end refuses a list that does not collapse to one network.
            type: raw
          destination:
            description:
              - Destination address or network (CIDR without host bits); a list as for
                O(chains[].rules[].source).
            type: raw
          in_interface:
            description: Input interface; a trailing C(+) matches a prefix.
            type: str
          out_interface:
            description: Output interface; a trailing C(+) matches a prefix.
            type: str
          source_port:
            description:
              - Source port (V(53)) or range (V(1000-2000)); needs O(chains[].rules[].protocol) tcp, udp or sctp.
              - Or a list of ports and ranges (V([80, 443, "8000-8100"]), also the string V(80,443)), matched with
                C(-m multiport --sports); needs protocol tcp, udp, udplite, sctp or dccp. The kernel takes at most
                15 ports in a list, a range counting 2. A list of one element is a single port.
            type: raw
          destination_port:
            description:
              - Destination port or range; needs O(chains[].rules[].protocol) tcp, udp or sctp.
              - Or a list of ports and ranges, matched with C(-m multiport --dports), as for
                O(chains[].rules[].source_port).
            type: raw
          port:
            description:
              - A port, range or list of them that either the source or the destination port must match
                (C(-m multiport --ports)); needs protocol tcp, udp, udplite, sctp or dccp. At most 15 ports, a range
                counting 2.
            type: raw
          syn:
            description:
              - V(true) matches TCP packets with SYN set and ACK, RST and FIN clear (C(--syn), the first packet of a
                connection); V(false) matches every other TCP packet (C(! --syn)). Unset matches both.
              - With O(chains[].rules[].ctstate) V(NEW) and jump V(DROP), V(false) drops TCP packets that conntrack
                takes as a new connection but that cannot open one (a stray ACK with C(nf_conntrack_tcp_loose=1)).
              - Needs O(chains[].rules[].protocol) V(tcp). Conflicts with O(chains[].rules[].tcp_flags).
            type: bool
          tcp_flags:
            description:
              - A TCP flag test (C(--tcp-flags MASK SET)) - the flags examined and those of them that must be set -
                as a string V(SYN,RST SYN) or V(ALL NONE), or as a mapping with C(flags) and C(flags_set) lists.
                Flags are C(FIN), C(SYN), C(RST), C(PSH), C(ACK), C(URG), C(ALL) and C(NONE).
              - The test V(FIN,SYN,RST,ACK SYN) is O(chains[].rules[].syn); a set flag that is not examined, or
                no flag examined, is refused. Needs O(chains[].rules[].protocol) V(tcp).
            type: raw
          icmp_type:
            description:
              - ICMP or ICMPv6 type, by name (V(echo-request), V(neighbour-solicitation)), number or type/code.
              - Needs O(chains[].rules[].protocol) V(icmp) (IPv4) or V(icmpv6) (IPv6).
            type: str
          ctstate:
            description:
              - Conntrack states to match, of V(INVALID), V(NEW), V(RELATED), V(ESTABLISHED), V(UNTRACKED), V(SNAT)
                and V(DNAT). A first element V(!) (or V(!NEW)) matches every other state.
            type: list
            elements: str
          ctorigsrc:
            description:
              - Original source address or network of the connection (C(-m conntrack --ctorigsrc)), before any NAT.
            type: str
          ctorigdst:
            description:
              - Original destination address or network of the connection, before DNAT. With
                O(chains[].rules[].ctorigdstport), what a DOCKER-USER style filter needs to match a published
                port by the address and port the client used.
            type: str
          ctreplsrc:
            description: Source address or network of the reply direction (after DNAT, the address translated to).
            type: str
          ctrepldst:
            description: Destination address or network of the reply direction (after SNAT, the address translated to).
            type: str
          ctorigsrcport:
            description: Original source port or range of the connection.
            type: raw
          ctorigdstport:
            description: Original destination port or range of the connection, before DNAT.
            type: raw
          ctreplsrcport:
            description: Source port or range of the reply direction.
            type: raw
          ctrepldstport:
            description: Destination port or range of the reply direction.
            type: raw
          ctstatus:
            description:
              - Conntrack status bits that must be set, of V(EXPECTED), V(SEEN_REPLY), V(ASSURED), V(CONFIRMED); or
                V(NONE), alone. As measured, the kernel's test for V(NONE) (status and an empty mask) matches no
                packet, and V(!NONE) every tracked one, on both back ends (nftables C(ct status 0x0)).
            type: list
            elements: str
          ctdir:
            description: The direction of the packet in its connection.
            type: str
            choices: [ORIGINAL, REPLY]
          limit:
            description: Match at most this rate, for example V(5/min).
            type: str
          limit_burst:
            description: Burst of O(chains[].rules[].limit); the kernel's default is 5.
            type: int
          connlimit_above:
            description:
              - Match a NEW packet when the source (or, with O(chains[].rules[].connlimit_daddr), the destination)
                network already has more than this many connections in conntrack (the C(connlimit) match). 1 or more.
              - Excludes O(chains[].rules[].connlimit_upto). Put it beside O(chains[].rules[].ctstate=NEW) so that
                packets of established connections are not counted against the limit.
            type: int
          connlimit_upto:
            description: Match while the network has at most this many connections (1 or more).
            type: int
          connlimit_mask:
            description: Prefix length that groups addresses for the count; default one host (32 or 128).
            type: int
          connlimit_daddr:
            description: Count per destination network instead of per source network.
            type: bool
          hashlimit_upto:
            description:
              - Match up to this rate of packets per group (the C(hashlimit) match), for example V(10/sec), V(30/min);
                the groups are set by O(chains[].rules[].hashlimit_mode). Excludes
                O(chains[].rules[].hashlimit_above). Rates of bytes (V(kb/s)) are not supported.
            type: str
          hashlimit_above:
            description: Match the packets above this rate per group (what exceeds the token bucket).
            type: str
          hashlimit_burst:
            description:
              - Bucket size of the hashlimit match (1-1000000; default 5). A full burst must refill within a day
                (the kernel's counter overflows beyond).
            type: int
          hashlimit_mode:
            description:
              - What a bucket is kept for, any of V(srcip), V(srcport), V(dstip), V(dstport); none means one bucket
                for all packets of the rule.
            type: list
            elements: str
          hashlimit_name:
            description:
              - Name of the kernel's table of buckets (1-31 letters, digits, V(_), V(.), V(-)); required with
                hashlimit. Rules with the same name share one table; give each rule its own.
            type: str
          hashlimit_srcmask:
            description: Prefix length that groups source addresses (needs V(srcip) in the mode).
            type: int
          hashlimit_dstmask:
            description: Prefix length that groups destination addresses (needs V(dstip) in the mode).
            type: int
          hashlimit_htable_size:
            description: Buckets of the hash table (the kernel picks a size by default).
            type: int
          hashlimit_htable_max:
            description: Most entries of the table (the kernel's default is 8 times the size).
            type: int
          hashlimit_htable_gcinterval:
            description: Milliseconds between garbage collection runs (default 1000).
            type: int
          hashlimit_htable_expire:
            description: Milliseconds after which an idle entry expires (default one unit of the rate as written).
            type: int
          comment:
            description: A comment, one line. With the name tag it must fit in the kernel's 255 bytes.
            type: str
          jump:
            description:
              - The target, V(ACCEPT), V(DROP), V(REJECT), V(LOG), V(RETURN) (filter table);
                V(ACCEPT), V(RETURN), V(LOG), V(SNAT), V(DNAT), V(MASQUERADE), V(REDIRECT), V(NETMAP) (nat table);
                V(ACCEPT), V(DROP), V(RETURN), V(LOG), V(TCPMSS) (mangle table);
                V(ACCEPT), V(DROP), V(RETURN), V(LOG), V(CT) (raw table); or an owned chain.
            type: str
            required: true
          reject_with:
            description: ICMP answer of V(REJECT); defaults to the port-unreachable of the family.
            type: str
          log_prefix:
            description: Prefix of V(LOG) messages, up to 29 bytes.
            type: str
          log_level:
            description: Syslog level of V(LOG), a number 0-7 or a name such as V(info).
            type: raw
          to_source:
            description:
              - Address or V(A-B) range, optionally with V(:port) or V(:port-port), for V(SNAT). IPv6 as
                V(dead::beef-dead::fee7), with ports in brackets V([a::1-a::9]:1025-65535).
            type: str
          to_destination:
            description:
              - Address or V(A-B) range with optional V(:port) or V(:port-port), for V(DNAT); IPv6 as for
                O(chains[].rules[].to_source).
              - V(:A-B/BASE) shifts ports - packets to port BASE+n go to port A+n (V(10.0.0.5:8000-8099/80)
                sends ports 80-179 to 8000-8099).
            type: str
          to_ports:
            description: Port or range for V(MASQUERADE) and V(REDIRECT).
            type: raw
          to_prefix:
            description:
              - For V(NETMAP) (1:1 NAT of a prefix), the prefix to map to (C(--to)), V(198.51.100.0/24) or
                V(2001:db8:5::/64); a lone address is its V(/32) or V(/128). The host bits of the packet's address
                are kept, the prefix bits replaced.
              - NETMAP maps the destination in chains hooked from C(PREROUTING) or C(OUTPUT), the source in chains
                hooked from C(POSTROUTING) or C(INPUT). A match on that address (O(chains[].rules[].destination)
                or O(chains[].rules[].source)) must have the same prefix length, or the rule is refused.
            type: str
          random:
            description: Randomise the source port mapping (V(SNAT), V(DNAT), V(MASQUERADE), V(REDIRECT)).
            type: bool
            default: false
          random_fully:
            description: Fully randomise the source port mapping (V(SNAT), V(MASQUERADE)).
            type: bool
            default: false
          persistent:
            description: Give a client the same address on every connection (V(SNAT), V(DNAT)).
            type: bool
            default: false
          helper:
            description:
              - For V(CT) in the raw table, the conntrack helper to assign (C(-j CT --helper)), of V(ftp), V(tftp),
                V(sip), V(irc), V(pptp), V(amanda), V(sane), V(snmp), V(snmp_trap), V(netbios-ns), V(RAS) and
                V(Q.931). Needs the helper's protocol (V(tcp) for ftp, V(udp) for tftp); V(irc), V(pptp), V(snmp),
                V(snmp_trap) and V(netbios-ns) are IPv4 only (with O(family=both), such a rule goes to IPv4 only).
              - Since Linux 6.0 helpers are never assigned by port number alone; scope such a rule as narrowly as
                the traffic allows (interface, destination address and port).
            type: str
          notrack:
            description: For V(CT) in the raw table, leave matching packets untracked (C(-j CT --notrack)).
            type: bool
          ct_timeout:
            description:
              - For V(CT) in the raw table with O(backend=nftables), the conntrack timeouts in seconds of the
                connections the rule matches, a mapping of state to seconds (for example C(established) 300 and
                C(close_wait) 10), instead of the kernel's defaults. It is a C(ct timeout) object of the owned table, set by
                C(ct timeout set "snf-timeout-tcp-established-300").
              - Needs O(chains[].rules[].protocol) V(tcp) (states V(syn_sent), V(syn_recv), V(established),
                V(fin_wait), V(close_wait), V(last_ack), V(time_wait), V(close), V(syn_sent2), V(retrans),
                V(unack)) or V(udp) (V(unreplied), V(replied)); 1-2147483 seconds. A state given its default
                (nft's, for example V(established) 432000) is left out of the policy, as nft prints it.
              - May come with O(chains[].rules[].helper), not with O(chains[].rules[].notrack). The iptables back
                end refuses it (C(CT --timeout) needs a policy object made with C(nfct), which the collection
                does not manage).
            type: dict
          set_mss:
            description:
              - For V(TCPMSS) in the mangle table, the MSS to set in TCP SYN packets (88-65495).
              - V(TCPMSS) needs O(chains[].rules[].protocol) V(tcp) and a SYN test, O(chains[].rules[].syn) or
                O(chains[].rules[].tcp_flags) V(SYN,RST SYN).
            type: int
          clamp_mss_to_pmtu:
            description:
              - For V(TCPMSS) in the mangle table, clamp the MSS to the path MTU less the headers. Only in chains
                hooked from C(FORWARD), C(OUTPUT) or C(POSTROUTING).
            type: bool
  backend:
    description:
      - V(iptables) manages owned chains in the iptables tables, as described above.
      - V(nftables) renders the same chains into an C(inet) table of their own, C(snf_<table>) or
        C(snf_<table>_<scope>), replaced in one C(nft -f) transaction after C(nft -c) accepted it; nothing
        outside that table is touched. Needs the C(nft) command (0.9.3 or later) and a kernel with nf_tables.
        O(rollback_timeout) saves the owned table and puts it back whole with one C(nft -f). A change of the
        C(filter) table that would make the owned table drop a new connection of the SSH client this task runs
        over (C(SSH_CONNECTION)) is refused before any change unless O(rollback_timeout) is given. Refused with
        it before any change, naming the option - O(chains[].rules[].port),
        O(chains[].rules[].hashlimit_htable_size) and O(chains[].rules[].hashlimit_htable_gcinterval). A DNAT
        port shift (V(A:P-Q/BASE); nft 1.0.6 has no syntax for it) is a map from each port of
        O(chains[].rules[].destination_port) to its shifted port, refused without that option, to an address
        range or over 4,096 ports. Address lists are anonymous sets, connlimit C(ct count)
        and hashlimit a meter in dynamic sets of the table, NETMAP C(snat)/C(dnat) C(prefix to), timeouts
        C(ct timeout) objects. See docs/nftables.md.
    type: str
    choices: [iptables, nftables]
    default: iptables
    version_added: 0.1.0
  migrate:
    description:
      - Switch the scope between back ends without a gap. With V(true), a run with O(state=overridden),
        V(merged) or V(deleted) also removes the same scope (same O(table), same O(scope)) from the other back
        end, B(after) this back end's change is in place, under the same engine lock.
      - With O(backend=nftables), the owned table is installed first, then the C(SNF-<scope>-*) chains and
        their hooks are removed from the iptables tables and the built-in policies listed in O(policies) are set
        back to V(ACCEPT) there (the owned table now holds them), one C(iptables-restore --noflush) per family.
        With O(backend=iptables), the chains are installed first, then the owned table C(inet snf_<table>_<scope>)
        is deleted with one C(nft -f). While both back ends hold the scope every packet passes both rule sets,
        so at no moment is the host without its rules.
      - C(changed) (also in check mode) is true while the other back end still holds the scope; diff mode
        shows it going. With O(rollback_timeout) the saved state covers both back ends, and the timer puts the
        other back end back first. If removing the other side fails, this side's change is undone.
      - With O(family=ipv4) or V(ipv6), only that family's chains leave the iptables tables; the nftables table
        (which holds both families) is removed only when it holds no chains of the other family, else the task is
        refused naming O(migrate). A host without the
        other back end (no C(iptables) or C(nft) command, an C(nft) older than 0.9.3, a kernel without nf_tables
        or without legacy xtables where C(iptables) selects legacy) has nothing to migrate. V(gathered) and V(rendered)
        ignore it. See the migration section of docs/nftables.md.
    type: bool
    default: false
    version_added: 0.1.0
  preflight:
    description:
      - Before reading or changing any rule, make the checks of M(stateful.netfilter.preflight) in the same
        module run (other firewall managers, systemd for persistence, the sysctls to set, the tables the scope has
        chains in, the SSH guard), with its options of the same names. The firewall and nat_gateway roles use it,
        which saves them a module run (a host round trip) each.
      - A check that says no fails the task before any change, with the preflight module's message; the result
        carries RV(preflight) in either case.
      - With O(preflight.ssh_guard), the guard evaluates this task's O(policies) and O(chains) (the planned
        model), as preflight's O(stateful.netfilter.preflight#module:model).
    type: dict
    version_added: 0.1.0
    suboptions:
      role:
        description: The role asking; names the variables in the messages.
        type: str
        required: true
        choices: [firewall, nat_gateway]
      coexist:
        description: The firewall managers to run beside knowingly.
        type: list
        elements: str
        choices: [firewalld, ufw]
        default: []
      persist:
        description: Whether the role installs its boot-time restore.
        type: bool
        default: true
      persist_require_systemd:
        description: Refuse O(preflight.persist) where systemd does not run.
        type: bool
        default: true
      sysctls:
        description: The sysctls the role sets, by name with the value; only with O(preflight.role=nat_gateway).
        type: dict
        default: {}
      host:
        description: The host's name, for the messages.
        type: str
        default: the host
      ssh_guard:
        description: Refuse O(policies) and O(chains) that would drop the SSH connection of the play; only with
          O(preflight.role=firewall).
        type: bool
        default: false
      families:
        description: The address families the role manages; an SSH client of another family is not checked.
        type: list
        elements: str
        choices: [ipv4, ipv6]
        default: [ipv4, ipv6]
      scope:
        description: The scope whose chains O(preflight.owned_tables) looks for.
        type: str
      owned_tables:
        description: Tables to look for the scope's chains in, on either back end (C(owned) of RV(preflight)).
        type: list
        elements: str
        choices: [filter, nat, raw, mangle]
        default: []
      ssh_connection:
        description: The SSH connection to check (C(client cport server sport)), instead of the one found on the host.
        type: str
  persist:
    description:
      - Once the rules are in place, write (or remove) a role's boot-time restore from this task's
        O(policies) and O(chains) (and O(persist.tables)), in the same module run, as
        M(stateful.netfilter.boot_restore) writes it from the same models (the rules files, the restore script,
        the role's unit); check and diff modes included. A file that changes makes the task changed;
        RV(persisted) says which.
      - Needs O(state=overridden) and the role's scope (C(FW) for the firewall role, which holds O(table=filter)
        only; C(GW) for the nat_gateway role, whose restore holds every table of its scope).
      - The models of O(persist.tables) are checked before any rule changes.
      - With O(rollback_timeout), the files are written only once the change is confirmed (by the action plugin,
        with M(stateful.netfilter.boot_restore)), so a change the timer puts back never reaches them.
    type: dict
    version_added: 0.1.0
    suboptions:
      role:
        description: The role whose boot-time restore this is.
        type: str
        required: true
        choices: [firewall, nat_gateway]
      tables:
        description:
          - With O(persist.role=nat_gateway), the scope's other tables, one model each (C(table), C(family),
            C(policies), C(chains), as the O(stateful.netfilter.boot_restore#module:tables) of
            M(stateful.netfilter.boot_restore)), held in the restore after this task's own.
        type: list
        elements: dict
        default: []
      state:
        description: V(present) writes the files, V(absent) removes every file of the role's boot-time restore.
        type: str
        choices: [present, absent]
        default: present
      root:
        description: Install under this directory instead of C(/) (an image being built); systemd is not reloaded
          then.
        type: path
        default: /
  plan:
    description:
      - Plan O(family), O(policies) and O(chains) from a role's variables on the controller, in the action plugin
        (as the P(stateful.netfilter.firewall_plan#filter) filter does, with O(scope) and O(backend)), and apply
        them. Bad variables fail the task before the host is reached, naming the variable and the entry.
      - The module checks every planned rule once, before it reads or changes anything (before the checks of
        O(preflight) too); a rule it refuses fails the task naming the variable and the entry it came from, as the
        filter, which checks them on the controller, names them.
      - The P(stateful.netfilter.firewall#role) role applies its chains this way. Leave O(family), O(policies) and
        O(chains) out.
    type: dict
    version_added: 0.1.0
    suboptions:
      role:
        description: The role whose variables these are.
        type: str
        required: true
        choices: [firewall]
      variables:
        description: The role's variables by name (C(firewall_input_allow), ...); those left out take the role's
          defaults.
        type: dict
        required: true
  sysctls:
    description:
      - Once the rules are in place, set these sysctls where their live value differs and keep them in
        O(sysctls.file), in the same module run, as M(stateful.netfilter.sysctls) does (check and diff modes
        included). A value that changes makes the task changed; RV(sysctls) says which.
      - Checked before any rule changes - a bad name or value, a sysctl the host does not have, or one that would
        change and cannot be written fails the task with nothing changed.
      - The P(stateful.netfilter.nat_gateway#role) role turns forwarding on this way, once its translations are
        in place. With O(rollback_timeout), the values are set only once the change is confirmed (by the action
        plugin, with M(stateful.netfilter.sysctls)).
    type: dict
    version_added: 0.1.0
    suboptions:
      values:
        description: The sysctls by name (C(net.ipv4.ip_forward)) with their value.
        type: dict
        default: {}
      file:
        description: The file of C(/etc/sysctl.d) that keeps the values, removed when there are none; none when
          omitted.
        type: path
  rollback_timeout:
    description:
      - Commit-confirm. Before the change is applied, the current owned chains, hooks and managed policies of
        the scope are saved on the host and a timer is started there that does not depend on the Ansible
        connection (a transient C(systemd-run --on-active) timer where systemd runs, else a detached process).
        When it fires, it puts the saved state back with one C(iptables-restore --noflush) transaction per
        family, computed from the rules live at that moment (with O(backend=nftables), the owned table as it
        was, with one C(nft -f)).
      - The action plugin of this module then opens a new connection to the host and confirms, which
        disarms the timer. A change that cuts the connection is therefore not confirmed and is undone by
        itself after this many seconds (5 to 86400).
      - No timer is started when nothing changes or in check mode. While a rollback is pending, changes to an
        overlapping scope of the same table are refused. See the Rollback section of docs/reliability.md.
    type: int
  rollback_confirm:
    description:
      - Confirm the pending rollback with this C(rollback.id) and disarm its timer; nothing else is done. The
        action plugin sends it by itself after a change with O(rollback_timeout); set it only to confirm from
        a separate task. Fails when the rollback has already fired.
    type: str
notes:
  - An owned chain that ends with a catch-all C(DROP) stops traffic that the chains hooked after it would
    accept; prefer the policy of the built-in chain for the final verdict.
  - With O(chains[].hook_position=first), a program that later inserts its own rule at the top (kube-proxy does)
    makes the next run move the hook back in front of it and report a change.
seealso:
  - module: stateful.netfilter.nat_rule
'''

EXAMPLES = r'''
- name: Stateful INPUT filter, DROP policy and accept rules in one transaction
  stateful.netfilter.ruleset:
    table: filter
    family: both
    scope: FW
    state: overridden
    policies:
      INPUT: DROP
    chains:
      - name: SNF-FW-INPUT
        hook: INPUT
        rules:
          - {name: loopback, in_interface: lo, jump: ACCEPT}
          - {name: established, ctstate: [ESTABLISHED, RELATED], jump: ACCEPT}
          - {name: invalid, ctstate: [INVALID], jump: DROP}
          - {name: new-not-syn, protocol: tcp, syn: false, ctstate: [NEW], jump: DROP}
          - {name: ping, protocol: icmp, icmp_type: echo-request, jump: ACCEPT}
          - {name: ndp, protocol: icmpv6, icmp_type: neighbour-solicitation, jump: ACCEPT}
          - {name: ssh, protocol: tcp, destination_port: 22, source: 192.0.2.0/24, jump: ACCEPT}
          - {name: web, protocol: tcp, destination_port: [80, 443, "8000-8100"], jump: ACCEPT}
          - {name: log, limit: 5/min, jump: LOG, log_prefix: 'snf-drop: '}

- name: Masquerade the LAN on the uplink
  stateful.netfilter.ruleset:
    table: nat
    family: ipv4
    scope: GW
    state: overridden
    chains:
      - name: SNF-GW-POST
        hook: POSTROUTING
        rules:
          - {name: lan, source: 10.0.0.0/24, out_interface: eth0, jump: MASQUERADE}

- name: FTP helper for the FTP server behind the gateway
  stateful.netfilter.ruleset:
    table: raw
    family: ipv4
    scope: GW
    state: overridden
    chains:
      - name: SNF-GW-RAW
        hook: PREROUTING
        rules:
          - {name: ftp, in_interface: ppp0, protocol: tcp, destination: 203.0.113.5, destination_port: 21,
             jump: CT, helper: ftp}

- name: Clamp the MSS of forwarded SYNs to the path MTU
  stateful.netfilter.ruleset:
    table: mangle
    scope: GW
    state: overridden
    chains:
      - name: SNF-GW-MSS
        hook: FORWARD
        rules:
          - {name: clamp, out_interface: ppp0, protocol: tcp, tcp_flags: "SYN,RST SYN", jump: TCPMSS,
             clamp_mss_to_pmtu: true}

- name: DOCKER-USER style - only the admin network reaches a published port (matched before DNAT)
  stateful.netfilter.ruleset:
    table: filter
    family: ipv4
    scope: PUB
    chains:
      - name: SNF-PUB-FWD
        hook: FORWARD
        rules:
          - {name: web-admin, protocol: tcp, source: "!192.0.2.0/24", ctorigdst: 198.51.100.7,
             ctorigdstport: 8443, ctstate: [NEW], jump: DROP}

- name: Read the owned chains back
  stateful.netfilter.ruleset:
    table: filter
    state: gathered
  register: owned

- name: Remove every chain of the FW scope and its hooks
  stateful.netfilter.ruleset:
    table: filter
    scope: FW
    state: deleted
'''

RETURN = r'''
restore:
  description: The iptables-restore input applied (or, in check mode, that would be applied), per family; empty when nothing changes.
  returned: state is overridden, merged or deleted
  type: dict
  sample: {ipv4: "*filter\n:SNF-FW-INPUT - [0:0]\n-A SNF-FW-INPUT -i lo -j ACCEPT\n-I INPUT 1 -j SNF-FW-INPUT\nCOMMIT\n"}
rendered:
  description: The iptables-restore C(--noflush) input that creates the given chains on an empty table, per family.
  returned: state is rendered
  type: dict
  sample: {ipv4: "*filter\n:SNF-FW-INPUT - [0:0]\n-A SNF-FW-INPUT -i lo -j ACCEPT\n-I INPUT 1 -j SNF-FW-INPUT\nCOMMIT\n"}
gathered:
  description: The owned chains in scope and the policies of the built-in chains, per family, in the format of O(chains).
  returned: state is gathered
  type: dict
  sample:
    ipv4:
      policies: {INPUT: DROP, FORWARD: DROP, OUTPUT: ACCEPT}
      chains:
        - name: SNF-FW-INPUT
          hook: INPUT
          hook_position: first
          rules:
            - {name: established, ctstate: [RELATED, ESTABLISHED], jump: ACCEPT}
gathered_before:
  description:
    - The scope as RV(gathered) would have returned it just before this run's change, per family (with
      O(backend=nftables), the owned table as it was). The P(stateful.netfilter.nat_gateway#role) role finds the
      stale translations in it without reading the table again.
  returned: state is overridden, merged or deleted, and changed
  type: dict
persisted:
  description:
    - With O(persist), what was done to the boot-time restore, as M(stateful.netfilter.boot_restore) returns it -
      C(changed), C(changes) (each file with V(created), V(updated) or V(removed)) and C(daemon_reload); or
      C(deferred) true when a rollback was armed (the action plugin then writes the files once the change is
      confirmed, and returns what it did here).
  returned: when persist is set and state is overridden
  type: dict
  sample:
    changed: true
    changes: {/etc/stateful-netfilter/firewall.ipv4.rules: updated}
    daemon_reload: false
sysctls:
  description:
    - With O(sysctls), what was done, as M(stateful.netfilter.sysctls) returns it - C(changed), C(changes) (each
      sysctl that changed, with C(before) and C(after)) and C(file_changed); or C(deferred) true when a rollback
      was armed (the action plugin then sets them once the change is confirmed, and returns what it did here).
  returned: when sysctls is set
  type: dict
  sample:
    changed: true
    changes: {net.ipv4.ip_forward: {before: '0', after: '1'}}
    file_changed: true
preflight:
  description:
    - With O(preflight), what the checks read, as the M(stateful.netfilter.preflight) module returns it - C(managers),
      C(systemd), C(sysctls), C(sysctl_changes), and C(owned) and C(ssh) when asked for.
  returned: when preflight is set
  type: dict
  sample:
    managers: []
    systemd: true
    sysctls: {}
    sysctl_changes: []
    ssh: {accepted: true, checked: true, family: ipv4}
rollback:
  description:
    - The commit-confirm record when O(rollback_timeout) or O(rollback_confirm) is given. C(armed) is false when
      nothing changed. C(status) is V(confirmed) once the action plugin confirmed over a new connection.
  returned: when rollback_timeout or rollback_confirm is set
  type: dict
  sample:
    id: 3f1c0a9e5b7d2c41
    armed: true
    status: confirmed
    table: filter
    scope_prefix: SNF-FW-
    families: [ipv4, ipv6]
    timeout: 60
    deadline: 1795694400.5
    timer: {kind: systemd, unit: snf-rollback-3f1c0a9e5b7d2c41.timer}
    state_dir: /run/snf-netfilter/netns-4026531840/rollback/3f1c0a9e5b7d2c41
    confirm_seconds: 0.8
nft:
  description: With O(backend=nftables), the C(nft -f) input applied (or, in check mode, that would be applied); empty when nothing changes.
  returned: backend is nftables and state is overridden, merged or deleted
  type: str
  sample: "table inet snf_filter_FW\ndelete table inet snf_filter_FW\ntable inet snf_filter_FW {\n...}\n"
table:
  description: With O(backend=nftables), the owned nft table.
  returned: backend is nftables
  type: str
  sample: inet snf_filter_FW
tables:
  description:
    - With O(backend=nftables) and O(state=gathered), the owned nft tables read. Without O(scope) that is
      every scope's table of O(table) (as on the iptables back end every C(SNF-*) chain is in scope) - their
      chains together, and a built-in chain's policy other than C(ACCEPT) in any of them.
  returned: backend is nftables and state is gathered
  type: list
  elements: str
  sample: [inet snf_filter_FW, inet snf_filter_GW]
  version_added: 0.1.0
backend:
  description: The iptables back end the host selects (V(nft) or V(legacy)), or V(nftables) with O(backend=nftables).
  returned: unless state is rendered
  type: str
  sample: nft
migrated:
  description:
    - With O(migrate), the scope on the other back end. C(changed) is true when this run removed it (or, in
      check mode, would). With O(backend=nftables) it is the iptables side, C(restore) its
      C(iptables-restore) input per family; with O(backend=iptables) it is the owned nft table, C(nft) the
      C(nft -f) input that deletes it.
  returned: migrate is true and state is overridden, merged or deleted
  type: dict
  sample:
    backend: nftables
    changed: true
    table: inet snf_filter_FW
    nft: "table inet snf_filter_FW\ndelete table inet snf_filter_FW\n"
'''

from ansible_collections.stateful.netfilter.plugins.module_utils._arguments import Module
from ansible_collections.stateful.netfilter.plugins.module_utils._engine import run_ruleset
from ansible_collections.stateful.netfilter.plugins.module_utils._nft import run_ruleset as run_ruleset_nft
from ansible_collections.stateful.netfilter.plugins.module_utils._preflight import ARGUMENT_SPEC as PREFLIGHT_SPEC
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import rule_argument_spec
from ansible_collections.stateful.netfilter.plugins.module_utils._ruleset_entry import start


def rule_options():
    """The options of a rule (chains[].rules[]), as documented; check_rules() checks each rule against them."""
    options = rule_argument_spec()
    options.update(
        family=dict(type='str', choices=['ipv4', 'ipv6']),
        icmp_type=dict(type='str'),
        syn=dict(type='bool'),
        port=dict(type='raw'),
        tcp_flags=dict(type='raw'),
        ctstate=dict(type='list', elements='str'),
        ctorigsrc=dict(type='str'),
        ctorigdst=dict(type='str'),
        ctreplsrc=dict(type='str'),
        ctrepldst=dict(type='str'),
        ctorigsrcport=dict(type='raw'),
        ctorigdstport=dict(type='raw'),
        ctreplsrcport=dict(type='raw'),
        ctrepldstport=dict(type='raw'),
        ctstatus=dict(type='list', elements='str'),
        ctdir=dict(type='str', choices=['ORIGINAL', 'REPLY']),
        helper=dict(type='str'),
        notrack=dict(type='bool'),
        ct_timeout=dict(type='dict'),
        set_mss=dict(type='int'),
        clamp_mss_to_pmtu=dict(type='bool'),
        to_prefix=dict(type='str'),
        limit=dict(type='str'),
        limit_burst=dict(type='int'),
        connlimit_above=dict(type='int'),
        connlimit_upto=dict(type='int'),
        connlimit_mask=dict(type='int'),
        connlimit_daddr=dict(type='bool'),
        hashlimit_upto=dict(type='str'),
        hashlimit_above=dict(type='str'),
        hashlimit_burst=dict(type='int'),
        hashlimit_mode=dict(type='list', elements='str'),
        hashlimit_name=dict(type='str'),
        hashlimit_srcmask=dict(type='int'),
        hashlimit_dstmask=dict(type='int'),
        hashlimit_htable_size=dict(type='int'),
        hashlimit_htable_max=dict(type='int'),
        hashlimit_htable_gcinterval=dict(type='int'),
        hashlimit_htable_expire=dict(type='int'),
        jump=dict(type='str', required=True),
        reject_with=dict(type='str'),
        log_prefix=dict(type='str'),
        log_level=dict(type='raw'),
    )
    return options


def main():
    module = Module(
        argument_spec=dict(
            table=dict(type='str', choices=['filter', 'nat', 'mangle', 'raw'], default='filter'),
            family=dict(type='str', choices=['ipv4', 'ipv6', 'both'], default='both'),
            state=dict(type='str', choices=['overridden', 'merged', 'deleted', 'gathered', 'rendered'],
                       default='merged'),
            scope=dict(type='str'),
            policies=dict(type='dict'),
            chains=dict(type='list', elements='dict', default=[], options=dict(
                name=dict(type='str', required=True),
                hook=dict(type='str'),
                hook_position=dict(type='str', choices=['first', 'last'], default='first'),
                # The rules' options (rule_options(), documented above) are checked by check_rules(), once.
                rules=dict(type='list', elements='dict', default=[]),
            )),
            rollback_timeout=dict(type='int'),
            rollback_confirm=dict(type='str', no_log=False),
            backend=dict(type='str', choices=['iptables', 'nftables'], default='iptables'),
            migrate=dict(type='bool', default=False),
            preflight=dict(type='dict', options=dict((name, option) for name, option in PREFLIGHT_SPEC.items()
                                                     if name != 'model')),
            persist=dict(type='dict', options=dict(
                role=dict(type='str', required=True, choices=['firewall', 'nat_gateway']),
                tables=dict(type='list', elements='dict', default=[]),
                state=dict(type='str', choices=['present', 'absent'], default='present'),
                root=dict(type='path', default='/'),
            )),
            # Resolved by the action plugin on the controller; a module run that gets it was not planned.
            plan=dict(type='dict', options=dict(
                role=dict(type='str', required=True, choices=['firewall']),
                variables=dict(type='dict', required=True),
            )),
            sysctls=dict(type='dict', options=dict(
                values=dict(type='dict', default={}),
                file=dict(type='path'),
            )),
        ),
        mutually_exclusive=[('rollback_timeout', 'rollback_confirm')],
        supports_check_mode=True,
    )
    if module.params['plan']:
        module.fail_json(msg='plan: is planned by the action plugin on the controller; this run did not go through '
                             'it', param='plan')
    start(module, rule_options())
    if module.params['backend'] == 'nftables':
        run_ruleset_nft(module)
    run_ruleset(module)


if __name__ == '__main__':
    main()
