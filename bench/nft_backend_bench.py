#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): ruleset with backend nftables vs backend iptables (iptables-nft), N rules.

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rules', type=int, default=1000)
    parser.add_argument('--rounds', type=int, default=3)
    opts = parser.parse_args()
    print('load average at start: %.2f %.2f %.2f' % os.getloadavg())
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
