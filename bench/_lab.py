# SPDX-License-Identifier: GPL-3.0-or-later
"""Scratch network namespaces full of real SNAT'd conntrack entries.

Bench and fixture tooling only (never imported by plugins/). Everything
happens inside a namespace this process creates and removes: the host's
own ruleset, sysctls and conntrack table are never touched.

Layout of one namespace: loopback carries the "LAN" sources 10.0.0.2-5 and
fd00::2-5; wan0 (203.0.113.1, 2001:db8:1::1), one end of a veth pair whose
other end wan1 stays in the same namespace without addresses, routes the
"internet" 198.51.100.0/24 and 2001:db8:2::/64 via a next hop with a
permanent neighbour entry (no ARP/ND); POSTROUTING SNATs every packet
leaving wan0 to 203.0.113.1 / 2001:db8:1::1. Locally sent packets traverse
OUTPUT and POSTROUTING, so each flow becomes a confirmed, SNAT'd conntrack
entry; wan1 then drops the frame (not addressed to it).
"""

import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time

SOURCES_V4 = ['10.0.0.%d' % i for i in range(2, 6)]
SOURCES_V6 = ['fd00::%d' % i for i in range(2, 6)]
WAN_V4 = '203.0.113.1'
WAN_V6 = '2001:db8:1::1'


def machine():
    """The machine a figure comes from: CPUs, CPU model, kernel, Python."""
    model = 'unknown'
    with open('/proc/cpuinfo') as handle:
        for line in handle:
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    return '%d CPUs, %s, kernel %s, Python %s' % (os.cpu_count(), model, platform.release(),
                                                  platform.python_version())


def sh(*argv, **kwargs):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kwargs)


def in_ns(ns, *argv, **kwargs):
    return sh('ip', 'netns', 'exec', ns, *argv, **kwargs)


@contextlib.contextmanager
def namespace(name):
    """Create the namespace `name`, yield it, always remove it (in the private /run of private_run())."""
    if os.environ.get('SNF_BENCH_PRIVATE_RUN') != '1':
        raise RuntimeError('call _lab.private_run() first: `ip netns add` would write to this machine\'s /run/netns')
    sh('ip', 'netns', 'add', name)
    try:
        yield name
    finally:
        subprocess.run(['ip', 'netns', 'delete', name], check=False)


def setup_gateway(ns, timeout=3600):
    """Addresses, routes, SNAT rules; long UDP/TCP timeouts in `ns` only."""
    in_ns(ns, 'ip', 'link', 'set', 'lo', 'up')
    for addr in SOURCES_V4:
        in_ns(ns, 'ip', 'addr', 'add', addr + '/32', 'dev', 'lo')
    for addr in SOURCES_V6:
        in_ns(ns, 'ip', 'addr', 'add', addr + '/128', 'dev', 'lo', 'nodad')
    in_ns(ns, 'ip', 'link', 'add', 'wan0', 'type', 'veth', 'peer', 'name', 'wan1')
    in_ns(ns, 'ip', 'link', 'set', 'wan0', 'up')
    in_ns(ns, 'ip', 'link', 'set', 'wan1', 'up')
    in_ns(ns, 'ip', 'addr', 'add', WAN_V4 + '/24', 'dev', 'wan0')
    in_ns(ns, 'ip', 'addr', 'add', WAN_V6 + '/64', 'dev', 'wan0', 'nodad')
    for hop in ('203.0.113.2', '2001:db8:1::2'):
        in_ns(ns, 'ip', 'neigh', 'add', hop, 'lladdr', '02:00:00:00:00:02', 'dev', 'wan0', 'nud', 'permanent')
    in_ns(ns, 'ip', 'route', 'add', '198.51.100.0/24', 'via', '203.0.113.2')
    in_ns(ns, 'ip', '-6', 'route', 'add', '2001:db8:2::/64', 'via', '2001:db8:1::2')
    in_ns(ns, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan0', '-j', 'SNAT', '--to-source', WAN_V4)
    in_ns(ns, 'ip6tables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan0', '-j', 'SNAT', '--to-source', WAN_V6)
    # Per-namespace timeouts (these sysctls are per netns since Linux 4.x):
    # the entries must outlive the benchmark.
    for key in ('nf_conntrack_udp_timeout', 'nf_conntrack_udp_timeout_stream',
                'nf_conntrack_tcp_timeout_syn_sent', 'nf_conntrack_icmp_timeout',
                'nf_conntrack_icmpv6_timeout', 'nf_conntrack_tcp_timeout_unacknowledged'):
        in_ns(ns, 'sysctl', '-q', '-w', 'net.netfilter.%s=%d' % (key, timeout))


def send_flows(udp_per_source=0, tcp_per_source=0, icmp_per_source=0, v6_udp_per_source=0,
               v6_tcp_per_source=0, v6_icmp_per_source=0, local_tcp=0):
    """Send one packet per flow (run inside the namespace: see main()).

    local_tcp: complete TCP connections over loopback (not NATed), closed
    cleanly, which leaves replied, assured entries in TIME_WAIT.
    """
    def udp(family, sources, per_source, dst_fmt):
        for src in sources:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind((src, 40000))
            send = sock.sendto
            for i in range(per_source):
                send(b'x', (dst_fmt % (1 + i % 200), 1024 + i // 200))
            sock.close()

    def tcp(family, sources, per_source, dst_fmt):
        for src in sources:
            for i in range(per_source):
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.bind((src, 0))
                sock.connect_ex((dst_fmt % (1 + i % 200), 443))
                sock.close()

    def icmp(family, sources, per_source, dst_fmt):
        proto, kind = (socket.IPPROTO_ICMP, 8) if family == socket.AF_INET else (socket.IPPROTO_ICMPV6, 128)
        for src in sources:
            sock = socket.socket(family, socket.SOCK_RAW, proto)
            sock.bind((src, 0))
            for i in range(per_source):
                packet = bytes([kind, 0, 0, 0]) + (i + 1).to_bytes(2, 'big') + b'\0\x01'
                if family == socket.AF_INET:
                    packet = packet[:2] + _checksum(packet).to_bytes(2, 'big') + packet[4:]
                sock.sendto(packet, (dst_fmt % (1 + i % 200), 0))
            sock.close()

    if local_tcp:
        server = socket.socket()
        server.bind(('127.0.0.1', 8080))
        server.listen(local_tcp)
        for dummy in range(local_tcp):
            client = socket.create_connection(('127.0.0.1', 8080))
            peer = server.accept()[0]
            client.sendall(b'x')
            peer.recv(1)
            client.close()
            peer.close()
        server.close()
    udp(socket.AF_INET, SOURCES_V4, udp_per_source, '198.51.100.%d')
    udp(socket.AF_INET6, SOURCES_V6, v6_udp_per_source, '2001:db8:2::%x')
    tcp(socket.AF_INET, SOURCES_V4, tcp_per_source, '198.51.100.%d')
    tcp(socket.AF_INET6, SOURCES_V6, v6_tcp_per_source, '2001:db8:2::%x')
    icmp(socket.AF_INET, SOURCES_V4, icmp_per_source, '198.51.100.%d')
    icmp(socket.AF_INET6, SOURCES_V6, v6_icmp_per_source, '2001:db8:2::%x')


def _checksum(data):
    total = sum(int.from_bytes(data[i:i + 2], 'big') for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def fill(ns, **counts):
    """Run send_flows(**counts) inside `ns` (a child process)."""
    args = ['%s=%d' % item for item in sorted(counts.items())]
    in_ns(ns, sys.executable, os.path.abspath(__file__), *args)


def main(argv):
    send_flows(**dict((k, int(v)) for k, v in (a.split('=') for a in argv)))


if __name__ == '__main__':
    main(sys.argv[1:])


def private_run():
    """Re-run this script in a mount namespace of its own with a tmpfs on /run, unless already there.

    The modules keep their lock and rollback state in /run/snf-netfilter, and
    `ip netns` names live in /run/netns: inside, both are the bench's own, so
    this machine's /run is never written. Returns only in the private copy.
    """
    if os.environ.get('SNF_BENCH_PRIVATE_RUN') == '1':
        return
    env = dict(os.environ, SNF_BENCH_PRIVATE_RUN='1')
    script = 'mount -t tmpfs -o mode=0755 snf-bench-run /run && exec "$@"'
    os.execvpe('unshare', ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh',
                           sys.executable] + sys.argv, env)


def run_module(netns, python, module, args, env):
    """Run one module process in the namespace as a host runs it (python -m MODULE ARGS_FILE).

    Returns (wall seconds, result); raises RuntimeError when the module failed.
    """
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    try:
        start = time.perf_counter()
        proc = subprocess.run(['ip', 'netns', 'exec', netns, python, '-m', module, handle.name],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, check=False)
        elapsed = time.perf_counter() - start
    finally:
        os.unlink(handle.name)
    result = json.loads(proc.stdout.decode())
    if result.get('failed'):
        raise RuntimeError('%s failed: %s' % (module, result.get('msg')))
    return elapsed, result
