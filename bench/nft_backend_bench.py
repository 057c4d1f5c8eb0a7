#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): ruleset with backend nftables vs backend iptables (iptables-nft), N rules.

With --packets: the packet path instead - an N-entry source allow list on FORWARD (policy drop), applied with
the ruleset module on each back end: on nftables one rule whose sources are an anonymous set (the rule
model's address list), on iptables N linear rules (iptables has no list match), the sender's address last;
packets per second forwarded through a namespace gateway by one UDP sender, one run each, the ratio
printed. The addresses are every other one of a range, so the list does not collapse into networks.

Runs as root, only inside a private mount and network namespace (tests/netns/netns_lab.Lab,
removed at the end, also on failure). Measured: the wall time of the ruleset module process
as a managed host runs it (Python start-up and imports included), for the first apply of N
rules into an empty namespace, a no-change re-run, and a change of one rule; each the best
of --rounds alternations of the two back ends. Prints the figures, the ratios nftables /
iptables and the load average at start and end.
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'netns'))

from netns_lab import Lab  # noqa: E402


def rules(count, changed=False):
    out = [dict(name='r%d' % index, source='10.%d.%d.0/24' % (index // 250, index % 250), protocol='tcp',
                destination_port=str(1000 + index), jump='ACCEPT') for index in range(count)]
    if changed:
        out[count // 2] = dict(out[count // 2], jump='DROP')
    return out


def args(backend, count, changed=False):
    return dict(backend=backend, table='filter', family='ipv4', state='overridden', scope='BENCH',
                chains=[dict(name='SNF-BENCH-IN', hook='INPUT', rules=rules(count, changed))])


def timed(lab, module_args, expect):
    start = time.time()
    result = lab.module('ruleset', module_args)
    elapsed = time.time() - start
    if result.get('changed') is not expect:
        raise SystemExit('unexpected result: %s' % {k: v for k, v in result.items() if k not in ('nft', 'restore')})
    return elapsed


def remove(lab, backend):
    lab.module('ruleset', dict(backend=backend, table='filter', family='ipv4', state='deleted', scope='BENCH'))


# ---------------------------------------------------------------------------
# The packet path: a 1,000-entry allow list as one nft set lookup vs 1,000 linear iptables rules.

LAN_GW, LAN_HOST, WAN_GW, WAN_HOST = '10.97.0.1', '10.97.0.2', '10.98.0.1', '10.98.0.2'
SENDER = ('import socket, sys, time\n'
          's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); payload = b"x" * 32; target = (sys.argv[1], 9)\n'
          'count = 0; end = time.time() + float(sys.argv[2])\n'
          'while time.time() < end:\n'
          '    for dummy in range(1000):\n'
          '        s.sendto(payload, target)\n'
          '    count += 1000\n'
          'print(count)')
SINK = ('import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); '
        's.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096); s.bind(("0.0.0.0", 9)); print("up", flush=True); '
        'time.sleep(3600)')


def allow_list(count):
    """count source addresses, every other one (a list of neighbours would collapse into networks), the sender's
    last (a linear list walks all of them for its packets)."""
    return ['10.200.%d.%d' % (index // 120, 2 * (index % 120) + 1) for index in range(count - 1)] + [LAN_HOST]


def allow_args(backend, addresses):
    """The allow list as each back end has to take it: one rule with a list on nftables (an anonymous set), one
    rule per address on iptables."""
    if backend == 'nftables':
        rules = [dict(name='allow', source=addresses, jump='ACCEPT')]
    else:
        rules = [dict(name='allow%d' % index, source=address, jump='ACCEPT') for index, address in enumerate(addresses)]
    return dict(backend=backend, table='filter', family='both', state='overridden', scope='BENCH',
                policies={'FORWARD': 'DROP'}, chains=[dict(name='SNF-BENCH-FWD', hook='FORWARD', rules=rules)])


def gateway(lab):
    import subprocess
    lab.link('snf-h31-blan', LAN_GW, LAN_HOST)
    lab.run(['ip', 'route', 'add', 'default', 'via', LAN_GW], netns='snf-h31-blan')
    lab.add_netns('snf-h31-bwan')
    lab.run(['ip', 'link', 'add', 'snf2', 'type', 'veth', 'peer', 'name', 'snf3', 'netns', 'snf-h31-bwan'])
    lab.run(['ip', 'addr', 'add', WAN_GW + '/24', 'dev', 'snf2'])
    lab.run(['ip', 'link', 'set', 'snf2', 'up'])
    lab.run(['ip', 'addr', 'add', WAN_HOST + '/24', 'dev', 'snf3'], netns='snf-h31-bwan')
    lab.run(['ip', 'link', 'set', 'snf3', 'up'], netns='snf-h31-bwan')
    lab.run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
    sink = subprocess.Popen(lab.cmd([sys.executable, '-c', SINK], 'snf-h31-bwan'), stdout=subprocess.PIPE)
    assert sink.stdout.readline() == b'up\n'
    return sink


def forwarded(lab, seconds):
    """(packets sent, packets forwarded to the wan host) in `seconds` of one sender."""
    def received():
        return int(lab.run(['cat', '/sys/class/net/snf3/statistics/rx_packets'], 'snf-h31-bwan'))
    before = received()
    sent = int(lab.run([sys.executable, '-c', SENDER, WAN_HOST, str(seconds)], 'snf-h31-blan'))
    time.sleep(0.2)
    return sent, received() - before


def packet_rate(entries, seconds, rounds):
    """The variants alternated `rounds` times; each one's best round (the one other jobs disturbed least)."""
    addresses = allow_list(entries)
    lab = Lab()
    figures = {}
    sink = None
    try:
        sink = gateway(lab)
        for dummy in range(rounds):
            for name, backend in (('no rules', None), ('iptables linear', 'iptables'), ('nftables set', 'nftables')):
                if backend:
                    result = lab.module('ruleset', allow_args(backend, addresses))
                    if result.get('failed') or not result.get('changed'):
                        raise SystemExit('ruleset did not apply the allow list: %s' % result.get('msg'))
                sent, through = forwarded(lab, seconds)
                if through / seconds > figures.get(name, (0, 0))[1]:
                    figures[name] = (sent / seconds, through / seconds)
                if backend:
                    lab.module('ruleset', dict(backend=backend, table='filter', family='both', state='deleted',
                                               scope='BENCH', policies={'FORWARD': 'ACCEPT'}))
    finally:
        # `ip netns exec` gives the sink a mount namespace of its own, out of reach of Lab.close.
        if sink:
            sink.kill()
            sink.wait()
        lab.close()
    print('packet path: a %d-entry source allow list on FORWARD, the sender\'s address last, one UDP sender '
          'for %.0f s through a namespace gateway, best of %d rounds (packets per second):'
          % (entries, seconds, rounds))
    for name, (sent, through) in figures.items():
        print('  %-16s sent %9.0f  forwarded %9.0f' % (name, sent, through))
    print('  ratio nftables set / iptables linear (forwarded): %.2f'
          % (figures['nftables set'][1] / max(figures['iptables linear'][1], 1)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rules', type=int, default=1000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--packets', action='store_true',
                        help='measure the packet path of a --rules-entry allow list instead (set vs linear rules)')
    parser.add_argument('--seconds', type=float, default=5.0, help='seconds of traffic per variant (--packets)')
    opts = parser.parse_args()
    print('load average at start: %.2f %.2f %.2f' % os.getloadavg())
    if opts.packets:
        packet_rate(opts.rules, opts.seconds, opts.rounds)
        print('load average at end: %.2f %.2f %.2f' % os.getloadavg())
        return
    best = {}
    lab = Lab()
    try:
        for dummy in range(opts.rounds):
            for backend in ('iptables', 'nftables'):
                figures = (('first apply', timed(lab, args(backend, opts.rules), True)),
                           ('no-change re-run', timed(lab, args(backend, opts.rules), False)),
                           ('one rule changed', timed(lab, args(backend, opts.rules, True), True)))
                remove(lab, backend)
                for name, value in figures:
                    key = (name, backend)
                    best[key] = min(best.get(key, value), value)
    finally:
        lab.close()
    print('%d rules, best of %d, seconds per module run:' % (opts.rules, opts.rounds))
    for name in ('first apply', 'no-change re-run', 'one rule changed'):
        ipt, nft = best[(name, 'iptables')], best[(name, 'nftables')]
        print('  %-17s iptables %6.3f  nftables %6.3f  ratio nftables/iptables %.2f' % (name, ipt, nft, nft / ipt))
    print('load average at end: %.2f %.2f %.2f' % os.getloadavg())


if __name__ == '__main__':
    main()
