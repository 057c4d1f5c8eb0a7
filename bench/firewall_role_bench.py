#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): whole ansible-playbook runs of the firewall role with N allow entries on a lab host.

Target (issue 14): with 1,000 allow entries, the first run < 5 s and a
no-change re-run < 3 s (whole ansible-playbook runs, controller start-up
included). Runs on the gw container of a lab of its own (tests/lab/,
prefix --prefix, default snf-bench-fw), created unless --no-create and
removed at the end unless --keep; nothing of this machine is touched.

Each round: a reset run (the scenario's small configuration, no rules
files), then the first run of the N entries (every rule, the rules files,
the restore script and the unit written), then a no-change re-run. The
SSH guard runs (SSH_CONNECTION is set as over SSH from the wan host).
--ref REF also times the role of a git ref (git archive into a scratch
collections directory) in the same rounds, interleaved, so both meet the
same load. Prints the median of --rounds, each figure, and the load
average at start and end.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
LAB = os.path.join(ROOT, 'tests', 'lab')
sys.path.insert(0, HERE)

import _lab  # noqa: E402

# From tests/lab/topology.yml: the SSH client is the wan host, gw's wan address the server.
SSH_CONNECTION = '203.0.113.8 40022 203.0.113.1 22'
BASE_ALLOW = [dict(name='ssh', port=22, sources=['203.0.113.0/24', '2001:db8:113::/64'], comment='administrators')]


def entries(count):
    """count allow entries: alternately TCP and UDP, one port each, an IPv4 and an IPv6 source each."""
    return BASE_ALLOW + [dict(name='bulk-%d' % index, protocol='tcp' if index % 2 == 0 else 'udp',
                              port=10000 + index % 50000,
                              sources=['10.%d.%d.0/24' % (index // 250 % 250, index % 250), 'fd00:%x::/64' % index])
                         for index in range(count)]


PLAYBOOK = '''---
- name: Firewall role ({label})
  hosts: gw
  gather_facts: false
  environment:
    SSH_CONNECTION: "{ssh}"
  tasks:
    - name: Apply the role
      ansible.builtin.include_role:
        name: stateful.netfilter.firewall
      vars:
        firewall_input_allow: "{{{{ lookup('ansible.builtin.file', '{allow}') | from_json }}}}"
        firewall_persist: {persist}
        firewall_persist_require_systemd: false  # the lab container does not run systemd
'''


PING = '''---
- name: Baseline, one no-op task
  hosts: gw
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
'''


def write_playbook(directory, label, allow, persist):
    allow_file = os.path.join(directory, '%s.json' % label)
    with open(allow_file, 'w') as handle:
        json.dump(allow, handle)
    path = os.path.join(directory, '%s.yml' % label)
    with open(path, 'w') as handle:
        handle.write(PLAYBOOK.format(label=label, ssh=SSH_CONNECTION, allow=allow_file,
                                     persist='true' if persist else 'false'))
    return path


def run_playbook(playbook, inventory, collections):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, PATH=VENV_BIN + os.pathsep + os.environ['PATH'],
               ANSIBLE_HOST_KEY_CHECKING='false', ANSIBLE_RETRY_FILES_ENABLED='false',
               CONTAINERS_CONF=os.path.join(LAB, 'containers.conf'))
    start = time.perf_counter()
    proc = subprocess.run(['ansible-playbook', '-i', inventory, playbook], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=env, check=False, universal_newlines=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError('%s failed:\n%s' % (playbook, proc.stdout[-4000:]))
    recap = [line for line in proc.stdout.splitlines() if line.startswith('gw ')]
    return elapsed, recap[-1] if recap else ''


def changed_of(recap):
    for field in recap.split():
        if field.startswith('changed='):
            return int(field.split('=')[1])
    return -1


def collection_of_ref(ref, directory):
    """A collections directory holding the collection as it is at git ref."""
    target = os.path.join(directory, 'ansible_collections', 'stateful', 'netfilter')
    os.makedirs(target)
    archive = subprocess.run(['git', '-C', ROOT, 'archive', ref], stdout=subprocess.PIPE, check=True).stdout
    subprocess.run(['tar', '-x', '-C', target], input=archive, check=True)
    return directory


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--entries', type=int, default=1000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--ref', help='also time the role of this git ref (e.g. a commit before the change)')
    parser.add_argument('--prefix', default='snf-bench-fw', help='lab prefix (must start with snf-)')
    parser.add_argument('--no-create', action='store_true', help='use a running lab of this prefix')
    parser.add_argument('--keep', action='store_true', help='leave the lab running')
    options = parser.parse_args()
    print('machine: %s' % _lab.machine())
    print('load average at start: %.2f %.2f %.2f' % os.getloadavg())
    scratch = tempfile.mkdtemp(prefix='snf-bench-fw-')
    env = dict(os.environ, SNF_LAB_PREFIX=options.prefix, PATH=VENV_BIN + os.pathsep + os.environ['PATH'],
               CONTAINERS_CONF=os.path.join(LAB, 'containers.conf'), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS)
    try:
        if not options.no_create:
            image = subprocess.run([os.path.join(LAB, 'image', 'tag.sh')], stdout=subprocess.PIPE, check=True,
                                   universal_newlines=True, cwd=ROOT).stdout.strip()
            subprocess.run(['ansible-playbook', os.path.join(LAB, 'create.yml'), '-e',
                            json.dumps({'lab_platforms': ['gw']})], env=dict(env, SNF_LAB_IMAGE=image),
                           check=True, stdout=subprocess.DEVNULL)
        inventory = os.path.join(scratch, 'inventory.yml')
        with open(inventory, 'w') as handle:
            json.dump({'all': {'hosts': {'gw': {
                'ansible_host': '%s.gw' % options.prefix, 'ansible_connection': 'containers.podman.podman',
                'ansible_python_interpreter': '/usr/bin/python3'}}}}, handle)
        reset = write_playbook(scratch, 'reset', BASE_ALLOW, persist=False)
        bulk = write_playbook(scratch, 'bulk', entries(options.entries), persist=True)
        ping = os.path.join(scratch, 'ping.yml')
        with open(ping, 'w') as handle:
            handle.write(PING)
        baseline = []
        roles = [('this tree', COLLECTIONS)]
        if options.ref:
            roles.append((options.ref, collection_of_ref(options.ref, os.path.join(scratch, 'ref')) + os.pathsep + COLLECTIONS))
        times = dict((label, {'first': [], 'rerun': []}) for label, dummy in roles)
        for round_number in range(options.rounds):
            elapsed, dummy = run_playbook(ping, inventory, COLLECTIONS)
            baseline.append(elapsed)
            print('round %d, baseline: a playbook of one ping task %.2f s; load %.2f'
                  % (round_number + 1, elapsed, os.getloadavg()[0]))
            for label, collections in roles:
                run_playbook(reset, inventory, collections)
                first, recap_first = run_playbook(bulk, inventory, collections)
                rerun, recap_rerun = run_playbook(bulk, inventory, collections)
                if changed_of(recap_rerun) != 0:
                    raise RuntimeError('the re-run changed something: %s' % recap_rerun)
                times[label]['first'].append(first)
                times[label]['rerun'].append(rerun)
                print('round %d, %s: first run %.2f s (%s), re-run %.2f s (%s); load %.2f'
                      % (round_number + 1, label, first, recap_first.split(':', 1)[-1].split('unreachable')[0].strip(),
                         rerun, recap_rerun.split(':', 1)[-1].split('unreachable')[0].strip(), os.getloadavg()[0]))
        print('%d allow entries (%d rules per family), whole ansible-playbook runs, median of %d:'
              % (options.entries, options.entries + 1, options.rounds))
        ping_median = statistics.median(baseline)
        print('  %-12s a playbook of one ping task %.2f s (start-up and one remote task: the machine\'s pace)'
              % ('baseline', ping_median))
        for label, dummy in roles:
            first, rerun = statistics.median(times[label]['first']), statistics.median(times[label]['rerun'])
            print('  %-12s first run %.2f s (target < 5 s), no-change re-run %.2f s (target < 3 s); '
                  '%.1fx and %.1fx the ping playbook' % (label, first, rerun, first / ping_median, rerun / ping_median))
        if options.ref:
            here, there = times['this tree'], times[options.ref]
            print('  ratio %s / this tree: first run %.2fx, re-run %.2fx'
                  % (options.ref, statistics.median(there['first']) / statistics.median(here['first']),
                     statistics.median(there['rerun']) / statistics.median(here['rerun'])))
    finally:
        if not options.keep:
            subprocess.run(['bash', os.path.join(LAB, 'clean.sh'), options.prefix], check=False, env=env)
        shutil.rmtree(scratch, ignore_errors=True)
        print('load average at end: %.2f %.2f %.2f' % os.getloadavg())
    return 0


if __name__ == '__main__':
    sys.exit(main())
