# SPDX-License-Identifier: GPL-3.0-or-later
"""Capture the unit-test fixtures of conntrack monitoring from a real kernel (needs root).

In a private mount namespace (/run of its own) and a scratch network
namespace (removed afterwards): conntrack on, the FTP helper on loopback port
21, a fake FTP server answering PASV (one expectation), a few UDP flows and
invalid TCP segments; then under tests/unit/fixtures/conntrack/:
- stats-cpu.hex, stats.hex, expect-stats-cpu.hex, expect-ipv4.hex: the raw
  messages of IPCTNL_MSG_CT_GET_STATS_CPU, IPCTNL_MSG_CT_GET_STATS,
  IPCTNL_MSG_EXP_GET_STATS_CPU and IPCTNL_MSG_EXP_GET, one per line, in hex;
- conntrack-S.txt, conntrack-C.txt, conntrack-L-expect.txt: what
  `conntrack -S`, `-C` and `-L expect` print on the same namespace;
- events.hex: the event messages (new, update, destroy) of 3 UDP flows
  created and then flushed, received on a socket subscribed to all three.
"""

import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, '.cache', 'collections'))
sys.path.insert(0, HERE)

import _lab  # noqa: E402
from ansible_collections.stateful.netfilter.plugins.module_utils import _ctevents, _ctstats, _netlink  # noqa: E402

OUT = os.path.join(ROOT, 'tests', 'unit', 'fixtures', 'conntrack')
SERVER = ('import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);'
          's.bind(("127.0.0.1", 21)); s.listen(1); print("up", flush=True); c, a = s.accept();'
          'c.sendall(b"220 ready\\r\\n"); time.sleep(0.3);'
          'c.sendall(b"227 Entering Passive Mode (127,0,0,1,195,80).\\r\\n"); time.sleep(30)')
CLIENT = ('import socket, time; c = socket.create_connection(("127.0.0.1", 21)); data = b""\n'
          'while b"227" not in data: data += c.recv(100)\n'
          'print("got", flush=True); time.sleep(30)')
UDP = ('import socket\nfor port in (7001, 7002, 7003):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n'
       '    s.sendto(b"x", ("127.0.0.1", port))\n    s.close()')
BOGUS = ('import socket, struct\ns = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)\n'
         'for i in range(3):\n    s.sendto(struct.pack("!HHIIBBHHH", 30000 + i, 9, 1, 0, 5 << 4, 7, 1024, 0, 0),'
         ' ("127.0.0.1", 0))')


def hexdump(name, messages):
    with open(os.path.join(OUT, name), 'w') as out:
        for chunk, start, end in messages:
            out.write(bytes(chunk[start - 20:end]).hex() + '\n')


def main():
    _lab.private_run()
    name = '%s-ct-monitor-%d' % (os.environ.get('SNF_LAB_PREFIX', 'snf'), os.getpid())
    os.makedirs(OUT, exist_ok=True)
    with _lab.namespace(name) as ns:
        _lab.in_ns(ns, 'ip', 'link', 'set', 'lo', 'up')
        _lab.in_ns(ns, 'iptables', '-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'NEW,INVALID')
        _lab.in_ns(ns, 'iptables', '-t', 'raw', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '21', '-j', 'CT',
                   '--helper', 'ftp')
        server = subprocess.Popen(['ip', 'netns', 'exec', ns, sys.executable, '-c', SERVER], stdout=subprocess.PIPE)
        client = None
        try:
            assert server.stdout.readline() == b'up\n'
            client = subprocess.Popen(['ip', 'netns', 'exec', ns, sys.executable, '-c', CLIENT],
                                      stdout=subprocess.PIPE)
            assert client.stdout.readline() == b'got\n'
            _lab.in_ns(ns, sys.executable, '-c', BOGUS)
            with _netlink.network_namespace(ns), _netlink.NetlinkSocket() as sock:
                hexdump('stats-cpu.hex', sock.dump(_ctstats.CT_GET_STATS_CPU, socket.AF_UNSPEC))
                hexdump('stats.hex', sock.request(_ctstats.CT_GET_STATS, socket.AF_UNSPEC))
                hexdump('expect-stats-cpu.hex', sock.dump(_ctstats.EXP_GET_STATS_CPU, socket.AF_UNSPEC))
                hexdump('expect-ipv4.hex', sock.dump(_ctstats.EXP_GET, socket.AF_INET))
            for args, out in ((('-S',), 'conntrack-S.txt'), (('-C',), 'conntrack-C.txt'),
                              (('-L', 'expect'), 'conntrack-L-expect.txt')):
                with open(os.path.join(OUT, out), 'w') as handle:
                    handle.write(_lab.in_ns(ns, 'conntrack', *args).stdout)
            # Events: subscribe, make 3 UDP flows, flush them, read for a second.
            with _netlink.network_namespace(ns), _netlink.NetlinkSocket() as sock:
                sock.subscribe(_ctevents.GROUPS.values())
                _lab.in_ns(ns, sys.executable, '-c', UDP)
                _lab.in_ns(ns, 'conntrack', '-D', '-p', 'udp')
                with open(os.path.join(OUT, 'events.hex'), 'w') as out:
                    for chunk, start, end, dummy, dummy in sock.listen(1.0, time.monotonic):
                        out.write(bytes(chunk[start - 20:end]).hex() + '\n')
        finally:
            for proc in (server, client):
                if proc is not None:
                    proc.kill()
                    proc.wait()


if __name__ == '__main__':
    main()
