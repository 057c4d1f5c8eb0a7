#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): 1,000 rules with stateful.netfilter.ruleset vs ansible.builtin.iptables.

Runs as root on the controller host, only inside scratch network namespaces
snf-bench-<pid>-* that it removes at the end (also on failure), and in a
mount namespace with a /run of its own (_lab.private_run).

What is measured: the wall time of the module processes as a managed host
runs them (python -m <module> <args file>, inside `ip netns exec`), without
the controller's start-up, connection or AnsiballZ packaging. The builtin
module runs once per rule, as a loop task would; ruleset runs once per
table. Python start-up and imports are inside every measured process.
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = os.path.join(ROOT, '.venv', 'bin', 'python')
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
RULESET = 'ansible_collections.stateful.netfilter.plugins.modules.ruleset'
BUILTIN = 'ansible.modules.iptables'
sys.path.insert(0, HERE)

import _lab  # noqa: E402  (bench/_lab.py, beside this file)


def filter_rule(index):
    return dict(source='10.%d.%d.0/24' % (index // 250, index % 250), protocol='tcp',
                destination_port=str(1000 + index), jump='ACCEPT')


def nat_rule(index):
    return dict(source='172.%d.%d.0/24' % (16 + index // 250, index % 250), out_interface='eth0',
                jump='SNAT', to_source='203.0.113.%d' % (1 + index % 250))


def ruleset_args(table, rules):
    chain, hook = ('SNF-BENCH-IN', 'INPUT') if table == 'filter' else ('SNF-BENCH-POST', 'POSTROUTING')
    return dict(table=table, family='ipv4', state='overridden', scope='BENCH',
                chains=[dict(name=chain, hook=hook, rules=rules)])


def count_rules(netns, save):
    out = subprocess.run(['ip', 'netns', 'exec', netns, save], stdout=subprocess.PIPE, check=True).stdout.decode()
    return sum(1 for line in out.splitlines() if line.startswith('-A '))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--filter-rules', type=int, default=700)
    parser.add_argument('--nat-rules', type=int, default=300)
    parser.add_argument('--backend', choices=['nft', 'legacy'], default='nft',
                        help='iptables back end, selected through a PATH shim for `iptables` (host unchanged)')
    options = parser.parse_args()
    _lab.private_run()
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, LC_ALL='C')
    shim = tempfile.mkdtemp(prefix='snf-bench-')
    os.symlink('/usr/sbin/iptables-%s' % options.backend, os.path.join(shim, 'iptables'))
    env['PATH'] = shim + os.pathsep + env.get('PATH', '/usr/sbin:/usr/bin')
    filters = [filter_rule(i) for i in range(options.filter_rules)]
    nats = [nat_rule(i) for i in range(options.nat_rules)]
    total = len(filters) + len(nats)
    prefix = 'snf-bench-%d' % os.getpid()
    ours, theirs = prefix + '-ruleset', prefix + '-builtin'
    created = []
    try:
        for netns in (ours, theirs):
            subprocess.run(['ip', 'netns', 'add', netns], check=True)
            created.append(netns)
        print('machine: %s' % _lab.machine())
        print('back end: %s; %d rules (%d filter, %d nat), IPv4' % (options.backend, total, len(filters), len(nats)))

        apply_time = 0.0
        for table, rules in (('filter', filters), ('nat', nats)):
            elapsed, result = _lab.run_module(ours, PYTHON, RULESET, ruleset_args(table, rules), env)
            assert result['changed']
            apply_time += elapsed
        rerun_time = 0.0
        rerun_changed = []
        for table, rules in (('filter', filters), ('nat', nats)):
            elapsed, result = _lab.run_module(ours, PYTHON, RULESET, ruleset_args(table, rules), env)
            rerun_time += elapsed
            rerun_changed.append(result['changed'])
        save = 'iptables-%s-save' % options.backend
        print('ruleset: apply %.2f s (2 module runs), rules in kernel %d' % (apply_time, count_rules(ours, save)))
        print('ruleset: no-change re-run %.2f s (2 module runs), changed: %s' % (rerun_time, any(rerun_changed)))

        builtin_time = 0.0
        for rule in filters:
            args = dict(chain='INPUT', protocol='tcp', source=rule['source'],
                        destination_port=rule['destination_port'], jump='ACCEPT')
            builtin_time += _lab.run_module(theirs, PYTHON, BUILTIN, args, env)[0]
        for rule in nats:
            args = dict(table='nat', chain='POSTROUTING', source=rule['source'],
                        out_interface=rule['out_interface'], jump='SNAT', to_source=rule['to_source'])
            builtin_time += _lab.run_module(theirs, PYTHON, BUILTIN, args, env)[0]
        print('ansible.builtin.iptables: apply %.2f s (%d module runs), rules in kernel %d'
              % (builtin_time, total, count_rules(theirs, save)))
        print('ratio apply (builtin / ruleset): %.1fx' % (builtin_time / apply_time))
        print('ratio builtin apply / ruleset no-change re-run: %.1fx' % (builtin_time / rerun_time))
    finally:
        for netns in created:
            subprocess.run(['ip', 'netns', 'del', netns], check=False)
        os.unlink(os.path.join(shim, 'iptables'))
        os.rmdir(shim)
    return 0


if __name__ == '__main__':
    sys.exit(main())
