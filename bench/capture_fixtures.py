# SPDX-License-Identifier: GPL-3.0-or-later
"""Capture the conntrack unit-test fixtures from a real kernel (needs root).

Creates a scratch namespace (removed afterwards), fills it with SNATed
UDP/TCP/ICMP flows of both families, a zone (7), directional zones
(original direction 9, reply direction 11), a connmark (0x42), accounting,
and local TCP connections, then writes under tests/unit/fixtures/conntrack/:
- dump-ipv4.hex, dump-ipv6.hex: the raw IPCTNL_MSG_CT_NEW messages of an
  IPCTNL_MSG_CT_GET dump, one message per line, in hex;
- conntrack-ipv4.txt, conntrack-ipv6.txt: `conntrack -L -o id,extended`
  of the same table, for the tests to check the decoder against.
"""

import os
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, '.cache', 'collections'))
sys.path.insert(0, HERE)

import _lab  # noqa: E402
from ansible_collections.stateful.netfilter.plugins.module_utils import _ctcodec, _netlink  # noqa: E402

OUT = os.path.join(ROOT, 'tests', 'unit', 'fixtures', 'conntrack')


def main():
    _lab.private_run()
    # SNF_LAB_PREFIX keeps concurrent runs' namespaces apart (as the lab's).
    name = '%s-ct-fixture-%d' % (os.environ.get('SNF_LAB_PREFIX', 'snf'), os.getpid())
    os.makedirs(OUT, exist_ok=True)
    with _lab.namespace(name) as ns:
        _lab.setup_gateway(ns)
        _lab.in_ns(ns, 'sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_acct=1')
        _lab.in_ns(ns, 'iptables', '-t', 'raw', '-A', 'OUTPUT', '-d', '198.51.100.7', '-j', 'CT', '--zone', '7')
        _lab.in_ns(ns, 'iptables', '-t', 'raw', '-A', 'OUTPUT', '-d', '198.51.100.6', '-j', 'CT', '--zone-orig', '9')
        _lab.in_ns(ns, 'iptables', '-t', 'raw', '-A', 'OUTPUT', '-d', '198.51.100.5', '-j', 'CT', '--zone-reply', '11')
        _lab.in_ns(ns, 'iptables', '-t', 'mangle', '-A', 'OUTPUT', '-d', '198.51.100.8',
                   '-j', 'CONNMARK', '--set-mark', '0x42')
        _lab.fill(ns, udp_per_source=8, tcp_per_source=1, icmp_per_source=1, v6_udp_per_source=2,
                  v6_tcp_per_source=1, v6_icmp_per_source=1, local_tcp=2)
        with _netlink.network_namespace(ns), _netlink.NetlinkSocket() as sock:
            for family, label in ((socket.AF_INET, 'ipv4'), (socket.AF_INET6, 'ipv6')):
                with open(os.path.join(OUT, 'dump-%s.hex' % label), 'w') as out:
                    for chunk, start, end in sock.dump(_ctcodec.CT_GET, family):
                        out.write(chunk[start - 20:end].hex() + '\n')
        for label in ('ipv4', 'ipv6'):
            text = _lab.in_ns(ns, 'conntrack', '-L', '-f', label, '-o', 'id,extended').stdout
            with open(os.path.join(OUT, 'conntrack-%s.txt' % label), 'w') as out:
                out.write(text)


if __name__ == '__main__':
    main()
