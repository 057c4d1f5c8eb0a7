#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): ruleset state merged vs overridden on a chain of N unchanged rules.

Target (issue 12): merged within 1.5x of overridden at 10,000 rules, and no
run holds the engine lock longer than its own plan and apply. Runs as root,
inside a scratch network namespace and a mount namespace with a /run of its
own (nothing of this machine's ruleset or /run is touched).

Each figure is the median wall time of module processes as a host runs them
(python -m <module> <args file>): a no-change run with state overridden and one
with state merged of the same N rules, interleaved; then one merged run that
changes a single rule of N. Also printed: how long each run held the engine
lock (from the moment it had it to its exit), measured by a prober that
waits on the same lock.
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = os.path.join(ROOT, '.venv', 'bin', 'python')
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
RULESET = 'ansible_collections.stateful.netfilter.plugins.modules.ruleset'
sys.path.insert(0, HERE)

import _lab  # noqa: E402


def rules(count, changed=None):
    return [dict(name='r%d' % i, source='10.%d.%d.0/24' % (i // 250 % 250, i % 250), protocol='tcp',
                 destination_port=str(1 + i % 65000), jump='DROP' if i == changed else 'ACCEPT')
            for i in range(count)]


def args(state, rule_list):
    return dict(table='filter', family='ipv4', state=state, scope='BENCH',
                chains=[dict(name='SNF-BENCH-IN', hook='INPUT', rules=rule_list)])


def lock_hold(netns, module_args, env):
    """(wall time of one run, seconds from the run taking the engine lock to a waiting prober getting it)."""
    inode = os.stat('/run/netns/%s' % netns).st_ino
    lock = '/run/snf-netfilter/netns-%d/engine.lock' % inode
    prober = ('import fcntl, os, sys, time\n'
              'fd = os.open(sys.argv[1], os.O_RDWR)\n'
              'while True:\n'
              '    try:\n'
              '        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); fcntl.flock(fd, fcntl.LOCK_UN); time.sleep(0.002)\n'
              '    except OSError:\n'
              '        start = time.perf_counter(); break\n'
              'fcntl.flock(fd, fcntl.LOCK_EX); print(time.perf_counter() - start)\n')
    probe = subprocess.Popen([sys.executable, '-c', prober, lock], stdout=subprocess.PIPE)
    time.sleep(0.2)
    elapsed, dummy = _lab.run_module(netns, PYTHON, RULESET, module_args, env)
    held = float(probe.communicate(timeout=120)[0].decode())
    return elapsed, held


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rules', type=int, default=10000)
    parser.add_argument('--runs', type=int, default=3)
    options = parser.parse_args()
    _lab.private_run()
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, LC_ALL='C')
    print('machine: %s' % _lab.machine())
    print('load average at start: %.2f %.2f %.2f' % os.getloadavg())
    with _lab.namespace('snf-bench-merged-%d' % os.getpid()) as netns:
        wanted = rules(options.rules)
        elapsed, result = _lab.run_module(netns, PYTHON, RULESET, args('overridden', wanted), env)
        print('%d rules applied (overridden, first run): %.2f s' % (options.rules, elapsed))
        times = {'overridden': [], 'merged': []}
        for dummy in range(options.runs):
            for state in ('overridden', 'merged'):
                elapsed, result = _lab.run_module(netns, PYTHON, RULESET, args(state, wanted), env)
                assert not result['changed'], state
                times[state].append(elapsed)
        over, merged = statistics.median(times['overridden']), statistics.median(times['merged'])
        print('no-change run, overridden, median of %d: %.2f s' % (options.runs, over))
        print('no-change run, merged,     median of %d: %.2f s' % (options.runs, merged))
        print('ratio merged / overridden: %.2fx (target <= 1.5x)' % (merged / over))
        elapsed, held = lock_hold(netns, args('merged', rules(options.rules, changed=options.rules // 2)), env)
        print('merged run changing 1 of %d rules: %.2f s, engine lock held %.2f s of it' % (options.rules, elapsed, held))
    print('load average at end: %.2f %.2f %.2f' % os.getloadavg())
    return 0


if __name__ == '__main__':
    sys.exit(main())
