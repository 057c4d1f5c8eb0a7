#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): whole ansible-playbook runs of the nat_gateway role with N port forwards on a lab host.

Target (issue 14): with 200 port forwards, a run < 5 s (a whole
ansible-playbook run, controller start-up included). Runs on the gw
container of a lab of its own (tests/lab/, prefix --prefix, default
snf-bench-nat), created unless --no-create and removed at the end unless
--keep; nothing of this machine is touched.

Each round: a reset run (a masquerade and one port forward, no rules
files, no stale flush: removing N forwards would flush N times), then the
first run of the N port forwards (every DNAT and FORWARD rule, the stale
flush of the reset run's removed forward, the rules files, the restore
script and the unit written), then a no-change re-run. --ref REF also
times the role of a git ref (git archive into a scratch collections
directory) in the same rounds, interleaved, so both meet the same load.
Prints the median of --rounds, each figure, and the load
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
from firewall_role_bench import PING, changed_of, collection_of_ref  # noqa: E402

# From tests/lab/topology.yml: gw's interfaces and the lan networks.
WAN_IF = 'eth1'
MASQUERADE = [dict(source='192.168.50.0/24', out_interface=WAN_IF), dict(source='fd00:50::/64', out_interface=WAN_IF)]
BASE_FORWARDS = [dict(name='web', port=8080, in_interface=WAN_IF, to='192.168.50.10:80')]


def forwards(count):
    """count port forwards: alternately TCP and UDP, IPv4 and IPv6 servers, one port each (some to another port)."""
    out = []
    for index in range(count):
        server = ('192.168.50.%d' % (10 + index % 200) if index % 2 == 0 else '[fd00:50::%x]' % (10 + index))
        out.append(dict(name='pf-%d' % index, protocol='tcp' if index % 4 < 2 else 'udp', port=20000 + index,
                        in_interface=WAN_IF, to='%s:%d' % (server, 30000 + index) if index % 3 else
                        server.strip('[]')))
    return out


PLAYBOOK = '''---
- name: NAT gateway role ({label})
  hosts: gw
  gather_facts: false
  tasks:
    - name: Apply the role
      ansible.builtin.include_role:
        name: stateful.netfilter.nat_gateway
      vars:
        nat_gateway_masquerade: {masquerade}
        nat_gateway_port_forwards: "{{{{ lookup('ansible.builtin.file', '{forwards}') | from_json }}}}"
        nat_gateway_persist: {persist}
        nat_gateway_persist_require_systemd: false  # the lab container does not run systemd
        nat_gateway_flush_stale: {flush}
'''


def write_playbook(directory, label, port_forwards, persist, flush=True):
    forwards_file = os.path.join(directory, '%s.json' % label)
    with open(forwards_file, 'w') as handle:
        json.dump(port_forwards, handle)
    path = os.path.join(directory, '%s.yml' % label)
    with open(path, 'w') as handle:
        handle.write(PLAYBOOK.format(label=label, masquerade=json.dumps(MASQUERADE), forwards=forwards_file,
                                     persist='true' if persist else 'false', flush='true' if flush else 'false'))
    return path


# A callback of the bench's own: the time of each task, split into tasks that ran a module on the host and
# the rest (planning, checks, includes, skipped tasks: the controller only).
CALLBACK = '''
import json, os, time
from ansible.plugins.callback import CallbackBase
LOCAL = ('set_fact', 'assert', 'fail', 'debug', 'include_tasks', 'import_tasks', 'include_role', 'meta',
         'validate_argument_spec')
class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'snf_bench_timer'
    CALLBACK_NEEDS_ENABLED = True
    def __init__(self):
        super(CallbackModule, self).__init__()
        self.current = None
        self.split = dict(controller=0.0, host=0.0, host_tasks=0)
        self.ran = False
    def _close(self):
        if self.current:
            action, start = self.current
            host = self.ran and action.split('.')[-1] not in LOCAL
            self.split['host' if host else 'controller'] += time.time() - start
            self.split['host_tasks'] += 1 if host else 0
        self.current = None
    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = (task.action, time.time())
        self.ran = False
    def v2_runner_item_on_ok(self, result):
        self.ran = True
    def v2_runner_on_ok(self, result):
        self.ran = self.ran or not result._result.get('skipped')
    def v2_runner_on_failed(self, result, ignore_errors=False):
        self.ran = True
    def v2_playbook_on_stats(self, stats):
        self._close()
        with open(os.environ['SNF_BENCH_SPLIT'], 'w') as handle:
            json.dump(self.split, handle)
'''


def run_playbook(playbook, inventory, collections, scratch):
    """(seconds, recap line of gw, {controller, host, host_tasks}) of one ansible-playbook run."""
    split_file = os.path.join(scratch, 'split.json')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, PATH=VENV_BIN + os.pathsep + os.environ['PATH'],
               ANSIBLE_HOST_KEY_CHECKING='false', ANSIBLE_RETRY_FILES_ENABLED='false',
               CONTAINERS_CONF=os.path.join(LAB, 'containers.conf'), SNF_BENCH_SPLIT=split_file,
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(scratch, 'callbacks'), ANSIBLE_CALLBACKS_ENABLED='snf_bench_timer')
    start = time.perf_counter()
    proc = subprocess.run(['ansible-playbook', '-i', inventory, playbook], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=env, check=False, universal_newlines=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError('%s failed:\n%s' % (playbook, proc.stdout[-4000:]))
    recap = [line for line in proc.stdout.splitlines() if line.startswith('gw ')]
    with open(split_file) as handle:
        split = json.load(handle)
    return elapsed, recap[-1] if recap else '', split


def summary(recap):
    return recap.split(':', 1)[-1].split('unreachable')[0].strip()


def split_text(split):
    return 'controller-only tasks %.2f s, %d tasks on the host %.2f s' % (
        split['controller'], split['host_tasks'], split['host'])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--forwards', type=int, default=200)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--ref', help='also time the role of this git ref (e.g. a commit before the change)')
    parser.add_argument('--prefix', default='snf-bench-nat', help='lab prefix (must start with snf-)')
    parser.add_argument('--no-create', action='store_true', help='use a running lab of this prefix')
    parser.add_argument('--keep', action='store_true', help='leave the lab running')
    options = parser.parse_args()
    if not options.prefix.startswith('snf-'):
        parser.error('--prefix must start with snf-')
    print('machine: %s' % _lab.machine())
    print('load average at start: %.2f %.2f %.2f' % os.getloadavg())
    scratch = tempfile.mkdtemp(prefix='snf-bench-nat-')
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
        # The reset removes N port forwards: with the stale flush that is N conntrack_flush calls (one a
        # translation), which is not what is measured here.
        reset = write_playbook(scratch, 'reset', BASE_FORWARDS, persist=False, flush=False)
        bulk = write_playbook(scratch, 'bulk', forwards(options.forwards), persist=True)
        os.makedirs(os.path.join(scratch, 'callbacks'))
        with open(os.path.join(scratch, 'callbacks', 'snf_bench_timer.py'), 'w') as handle:
            handle.write(CALLBACK)
        ping = os.path.join(scratch, 'ping.yml')
        with open(ping, 'w') as handle:
            handle.write(PING)
        baseline = []
        roles = [('this tree', COLLECTIONS)]
        if options.ref:
            roles.append((options.ref, collection_of_ref(options.ref, os.path.join(scratch, 'ref')) + os.pathsep
                          + COLLECTIONS))
        times = dict((label, {'first': [], 'rerun': [], 'split_first': [], 'split_rerun': []})
                     for label, dummy in roles)
        for round_number in range(options.rounds):
            elapsed, dummy, dummy = run_playbook(ping, inventory, COLLECTIONS, scratch)
            baseline.append(elapsed)
            print('round %d, baseline: a playbook of one ping task %.2f s; load %.2f'
                  % (round_number + 1, elapsed, os.getloadavg()[0]))
            for label, collections in roles:
                run_playbook(reset, inventory, collections, scratch)
                first, recap_first, split_first = run_playbook(bulk, inventory, collections, scratch)
                rerun, recap_rerun, split_rerun = run_playbook(bulk, inventory, collections, scratch)
                if changed_of(recap_rerun) != 0:
                    raise RuntimeError('the re-run changed something: %s' % recap_rerun)
                times[label]['first'].append(first)
                times[label]['rerun'].append(rerun)
                times[label]['split_first'].append(split_first)
                times[label]['split_rerun'].append(split_rerun)
                print('round %d, %s: first run %.2f s (%s; %s), re-run %.2f s (%s; %s); load %.2f'
                      % (round_number + 1, label, first, summary(recap_first), split_text(split_first), rerun,
                         summary(recap_rerun), split_text(split_rerun), os.getloadavg()[0]))
        print('%d port forwards (a DNAT and a FORWARD accept each, half IPv4, half IPv6), whole ansible-playbook '
              'runs, median of %d:' % (options.forwards, options.rounds))
        ping_median = statistics.median(baseline)
        print('  %-12s a playbook of one ping task %.2f s (start-up and one remote task: the machine\'s pace)'
              % ('baseline', ping_median))
        for label, dummy in roles:
            first, rerun = statistics.median(times[label]['first']), statistics.median(times[label]['rerun'])
            print('  %-12s first run %.2f s (target < 5 s), no-change re-run %.2f s; %.1fx and %.1fx the ping '
                  'playbook' % (label, first, rerun, first / ping_median, rerun / ping_median))
            for run in ('first', 'rerun'):
                splits = times[label]['split_' + run]
                print('  %-12s   %-6s controller-only tasks %.2f s, %d tasks on the host %.2f s (medians)'
                      % ('', run, statistics.median(split['controller'] for split in splits),
                         statistics.median(split['host_tasks'] for split in splits),
                         statistics.median(split['host'] for split in splits)))
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
