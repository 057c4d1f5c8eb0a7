#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Wire lab containers together without touching the host's network.

Podman's bridge networks (netavark) switch the host's IPv4 forwarding on even
for --internal networks, which this project must never do. So lab containers
run with --network none, and every lab network is a network namespace of our
own holding a bridge (a "switch"); each container gets a veth whose far end
sits in that switch. Nothing is added to the host's own namespace: no
interface, no address, no rule, no sysctl.

  labnet.py --prefix snf-lab --spec SPEC.json   (switches: snf-lab.lan, ...)

(clean.sh removes the switches again, with the containers.) Run again for a
container that restarted, it wires that container into the switches that
are there.

SPEC is a JSON list of hosts:
  [{"name": "gw", "pid": 1234,
    "links": [{"network": "lan", "addresses": ["192.168.1.1/24"],
               "gateways": []}]}]
Links become eth0, eth1, ... in the order given.
"""

import argparse
import ipaddress
import json
import sys

from pyroute2 import NetNS, netns

BRIDGE = 'br0'


def switch_name(prefix, network):
    return '%s.%s' % (prefix, network)


def _switch(prefix, network, cache):
    name = switch_name(prefix, network)
    if name not in cache:
        # A switch of this lab exists already when a container that
        # restarted (the boot scenario) is wired again into it.
        fresh = name not in netns.listnetns()
        if fresh:
            netns.create(name)
        ns = NetNS(name)
        if fresh:
            ns.link('add', ifname=BRIDGE, kind='bridge')
            ns.link('set', index=ns.link_lookup(ifname=BRIDGE)[0], state='up')
        cache[name] = ns
    return cache[name]


def up(prefix, spec):
    switches = {}
    try:
        for host in spec:
            target = '/proc/%d/ns/net' % host['pid']
            inside = NetNS(target)
            try:
                inside.link('set', index=inside.link_lookup(ifname='lo')[0], state='up')
                for index, link in enumerate(host['links']):
                    switch = _switch(prefix, link['network'], switches)
                    port = '%s%d' % (host['name'][:12], index)
                    ifname = 'eth%d' % index
                    switch.link('add', ifname=port, kind='veth',
                                peer={'ifname': ifname, 'net_ns_pid': host['pid']})
                    port_index = switch.link_lookup(ifname=port)[0]
                    switch.link('set', index=port_index,
                                master=switch.link_lookup(ifname=BRIDGE)[0], state='up')
                    if_index = inside.link_lookup(ifname=ifname)[0]
                    for address in link.get('addresses', []):
                        iface = ipaddress.ip_interface(address)
                        inside.addr('add', index=if_index, address=str(iface.ip),
                                    prefixlen=iface.network.prefixlen)
                    inside.link('set', index=if_index, state='up')
                    for gateway in link.get('gateways', []):
                        family = 10 if ':' in gateway else 2
                        inside.route('add', dst='default', gateway=gateway, family=family)
                    print('%s %s -> %s %s' % (host['name'], ifname, link['network'],
                                              ' '.join(link.get('addresses', []))))
            finally:
                inside.close()
    finally:
        for ns in switches.values():
            ns.close()


def main():
    parser = argparse.ArgumentParser(prog='labnet.py')
    parser.add_argument('--prefix', required=True)
    parser.add_argument('--spec', required=True, help='JSON list of hosts')
    args = parser.parse_args()
    if not args.prefix.startswith('snf-'):
        parser.error('--prefix must start with snf- (the lab never touches other namespaces)')
    up(args.prefix, json.loads(args.spec))
    return 0


if __name__ == '__main__':
    sys.exit(main())
