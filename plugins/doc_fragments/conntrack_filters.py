# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # The filter options of conntrack_info and conntrack_flush.
    DOCUMENTATION = r'''
options:
  family:
    description:
      - Address family of the entries.
      - V(both) reads IPv4 and IPv6 entries; an address filter narrows it to the family of the address.
    type: str
    choices: [ipv4, ipv6, both]
    default: both
  protocol:
    description:
      - Layer 4 protocol, by name (V(tcp), V(udp), V(icmp), V(icmpv6), V(sctp), ...) or number.
    type: str
  src:
    description:
      - Source address of the original direction, an address or a CIDR (V(192.168.1.100), V(10.0.0.0/8), V(fd00::/64)).
    type: str
  dst:
    description:
      - Destination address of the original direction, an address or a CIDR.
    type: str
  sport:
    description:
      - Source port of the original direction, a port (V(53)) or a range (V(1024-2047)).
      - Matches only entries of port protocols (tcp, udp, sctp, udplite).
    type: str
  dport:
    description:
      - Destination port of the original direction, a port or a range.
    type: str
  reply_src:
    description:
      - Source address of the reply direction, an address or a CIDR.
      - With DNAT this is the real server (for example the backend behind a service VIP).
    type: str
  reply_dst:
    description:
      - Destination address of the reply direction, an address or a CIDR.
      - With SNAT or masquerading this is the translated source address.
    type: str
  reply_sport:
    description:
      - Source port of the reply direction, a port or a range.
    type: str
  reply_dport:
    description:
      - Destination port of the reply direction, a port or a range.
    type: str
  state:
    description:
      - TCP states; an entry matches when it is in one of them. Implies O(protocol=tcp).
      - One of V(NONE), V(SYN_SENT), V(SYN_RECV), V(ESTABLISHED), V(FIN_WAIT), V(CLOSE_WAIT), V(LAST_ACK),
        V(TIME_WAIT), V(CLOSE), V(SYN_SENT2) (case does not matter).
    type: list
    elements: str
  status:
    description:
      - Status flags that must all be set, such as V(ASSURED), V(SEEN_REPLY), V(SRC_NAT), V(DST_NAT), V(CONFIRMED),
        V(OFFLOAD) (case does not matter).
      - A flag written with a leading V(!) must not be set (V(!ASSURED)); V(UNREPLIED) is V(!SEEN_REPLY)
        (C(conntrack -L -u UNREPLIED)). A flag both required and refused is an error.
    type: list
    elements: str
  nat:
    description:
      - V(snat) entries whose source is translated, V(dnat) whose destination is translated, V(any) either, V(none)
        neither.
    type: str
    choices: [snat, dnat, any, none]
  mark:
    description:
      - Connection mark, V(value) or V(value/mask), decimal or hexadecimal (V(0x10/0xff)). An entry matches when
        its mark AND mask equals value.
    type: str
  zone:
    description:
      - Conntrack zone (V(0) is the default zone), in whichever direction it applies, as nft's C(ct zone) sees it.
        V(7) matches entries put in zone 7 by C(-j CT --zone 7), C(--zone-orig 7) and C(--zone-reply 7) alike.
      - C(conntrack -L -w 7) lists only the first kind, and C(conntrack -L -w 0) lists the other two as zone 0;
        O(zone_dir) selects one kind.
    type: int
  zone_dir:
    description:
      - Only entries whose O(zone) applies to this direction (the V(zone_dir) of the entries returned).
      - V(both) for C(-j CT --zone) entries (C(conntrack -L -w ZONE)), V(orig) for C(--zone-orig) ones
        (C(conntrack -L --orig-zone ZONE)), V(reply) for C(--zone-reply) ones (C(conntrack -L --reply-zone ZONE)).
      - Needs O(zone); the default zone V(0) applies to both directions only.
    type: str
    choices: [both, orig, reply]
  icmp_type:
    description:
      - ICMP or ICMPv6 type of the original direction (V(8) echo request, V(128) ICMPv6 echo request), as
        C(conntrack -L -p icmp --icmp-type 8). Needs O(protocol) V(icmp) or V(icmpv6).
    type: int
  icmp_code:
    description:
      - ICMP or ICMPv6 code of the original direction, as C(--icmp-code). Needs O(protocol) V(icmp) or V(icmpv6).
    type: int
  netns:
    description:
      - Name of a network namespace under C(/run/netns) (as C(ip netns add) creates it, for example a container's)
        to work in instead of the host's.
      - A missing namespace is an error; it is never created.
    type: str
notes:
  - All filters are combined with AND; an option left out does not filter.
  - Exact IPv4 addresses, the protocol, single TCP/UDP ports, the mark and status flags are filtered by the kernel where
    it supports it (CTA_FILTER since Linux 5.8, status flags since 5.15); everything is checked again on the host, so
    results are the same on every kernel. IPv6 addresses are matched on the host only (the kernel compares them
    inverted). See the collection's conntrack guide.
  - Needs root (CAP_NET_ADMIN; CAP_SYS_ADMIN as well with O(netns)) and the kernel's nf_conntrack_netlink support.
    Only the Python standard library is used on the managed host.
'''
