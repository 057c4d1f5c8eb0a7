# SPDX-License-Identifier: GPL-3.0-or-later
"""The harness of the role benches (firewall_role_bench.py, nat_role_bench.py).

Bench tooling only (never imported by plugins/). Whole ansible-playbook runs
of a role on the gw container of a lab of the bench's own (tests/lab/,
prefix --prefix), created unless --no-create and removed at the end unless
--keep, also on failure, Ctrl-C or SIGTERM; nothing of this machine is
touched. The harness knows nothing of the roles' tasks: a bench hands it
two playbooks (a reset and the bulk configuration) and reads the recap.

--connection says how the controller reaches gw:

  ssh     (default) as an operator's inventory does: ansible's ssh
          connection with key auth, pipelining and ControlPersist to gw's
          wan address, through the relay on the lab's wan host
          (tests/lab/ssh.yml; this machine's network namespace gets no lab
          address). sshd sets the real SSH_CONNECTION the SSH guard reads.
          Every timed run opens its own connection: the masters are ended
          with `ssh -O exit` after each run, so no run rides on the one
          before it.
  podman  containers.podman.podman (`podman exec` per task, no pipelining):
          the lab's own view, seconds per task; no SSH session exists, a
          bench that needs the SSH guard sets SSH_CONNECTION itself.
  both    each round runs everything over ssh, then over podman, on the
          same lab under the same load, and prints the ratios.

Each round, for each connection: a baseline (a playbook of one ping task: start-up and one remote
task, the machine's pace), then for this tree and for --ref REF (the role of
a git ref, git archive into a scratch collections directory), interleaved so
both meet the same load: a reset run, the first run of the bulk
configuration, a no-change re-run (which must report changed=0). Each run's
time is split into tasks that ran on the host and controller-only tasks
(bench/callback_plugins/snf_bench_split.py). Prints every figure, the
medians, and the load average at start and end.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import shutil
import signal
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

CONNECTIONS = ('ssh', 'podman', 'both')

PING = '''---
- name: Baseline, one no-op task
  hosts: gw
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
'''


def parser(description, prefix):
    """The options every role bench takes."""
    out = argparse.ArgumentParser(description=description)
    out.add_argument('--rounds', type=int, default=3)
    out.add_argument('--ref', help='also time the role of this git ref (e.g. a commit before the change)')
    out.add_argument('--connection', choices=CONNECTIONS, default='ssh',
                     help='ssh (default): gw over real SSH with pipelining, as an operator reaches it; '
                          'podman: podman exec per task (the lab\'s own view); both: the two in the same rounds')
    out.add_argument('--vars-from', choices=VARS_FROM, default='lookup',
                     help='where the role\'s large variable comes from: lookup (default) a JSON file read in the '
                          'include\'s vars; inventory the YAML host_vars beside the playbook, as an operator '
                          'writes it (ansible-core tags and templates such data at a higher cost)')
    out.add_argument('--prefix', default=prefix, help='lab prefix (must start with snf-), default %s' % prefix)
    out.add_argument('--no-create', action='store_true', help='use a running lab of this prefix')
    out.add_argument('--keep', action='store_true', help='leave the lab running')
    return out


VARS_FROM = ('lookup', 'inventory')


def big_variable(lab, label, name, value, vars_from):
    """Where a playbook of lab.scratch/LABEL/ gets the role's large variable (the allow entries, the port
    forwards): (the line for the include_role's vars, the playbook's path).

    lookup: a JSON file read with lookup('file') | from_json in the include's vars (plain data, as the
    benches have always measured it). inventory: the YAML host_vars/gw.yml beside the playbook, as an
    operator's inventory gives it; ansible-core 2.19 tags every value of such a file with its origin and
    templates it as trusted data, which costs more each time a task templates the variable.
    """
    directory = os.path.join(lab.scratch, label)
    os.makedirs(os.path.join(directory, 'host_vars'))
    if vars_from == 'inventory':
        import yaml
        with open(os.path.join(directory, 'host_vars', 'gw.yml'), 'w') as handle:
            yaml.safe_dump({name: value}, handle, default_flow_style=False)
        line = ''
    else:
        path = os.path.join(directory, '%s.json' % name)
        with open(path, 'w') as handle:
            json.dump(value, handle)
        line = '        %s: "{{ lookup(\'ansible.builtin.file\', \'%s\') | from_json }}"\n' % (name, path)
    return line, os.path.join(directory, 'playbook.yml')


def parse(argparser):
    options = argparser.parse_args()
    if not options.prefix.startswith('snf-'):
        argparser.error('--prefix must start with snf-')
    if options.rounds < 1:
        argparser.error('--rounds must be at least 1')
    return options


def changed_of(recap):
    for field in recap.split():
        if field.startswith('changed='):
            return int(field.split('=')[1])
    return -1


def summary(recap):
    """'ok=N changed=N' of a recap line."""
    return recap.split(':', 1)[-1].split('unreachable')[0].strip()


def split_text(split):
    return 'controller-only tasks %.2f s, %d tasks on the host %.2f s' % (
        split['controller'], split['host_tasks'], split['host'])


def collection_of_ref(ref, directory):
    """A collections directory holding the collection as it is at git ref."""
    target = os.path.join(directory, 'ansible_collections', 'stateful', 'netfilter')
    os.makedirs(target)
    archive = subprocess.run(['git', '-C', ROOT, 'archive', ref], stdout=subprocess.PIPE, check=True).stdout
    subprocess.run(['tar', '-x', '-C', target], input=archive, check=True)
    return directory


def _cmdline(pid):
    try:
        with open('/proc/%s/cmdline' % pid, 'rb') as handle:
            return handle.read().replace(b'\0', b' ').decode(errors='replace').strip()
    except OSError:
        return None


def ssh_processes(control_dir, prefix):
    """[(pid, command line)] of the ssh masters of control_dir and the relays of the lab `prefix` still running."""
    relay = 'podman exec -i %s.wan python3 /usr/local/bin/snf-relay ' % prefix
    out = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        cmdline = _cmdline(pid)
        if cmdline and ((cmdline.startswith('ssh: ') and control_dir + '/' in cmdline) or cmdline.startswith(relay)):
            out.append((int(pid), cmdline))
    return out


def end_masters(control_dir, prefix):
    """`ssh -O exit` on every control socket of control_dir (which ends each master and its relay); waits for them."""
    if not os.path.isdir(control_dir):
        return
    for name in os.listdir(control_dir):
        subprocess.run(['ssh', '-F', '/dev/null', '-O', 'exit', '-o', 'ControlPath=' + os.path.join(control_dir, name),
                        'snf-lab-master'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    deadline = time.monotonic() + 5
    while ssh_processes(control_dir, prefix) and time.monotonic() < deadline:
        time.sleep(0.1)


class Lab(object):
    """The bench's lab (gw, and wan with the relay over ssh) as a context manager that always cleans up."""

    def __init__(self, options):
        self.options = options
        self.prefix = options.prefix
        self.connections = ['ssh', 'podman'] if options.connection == 'both' else [options.connection]
        self.scratch = tempfile.mkdtemp(prefix='%s-role-bench-' % self.prefix)
        self.control_dir = os.path.join(self.scratch, 'cp.%s' % self.prefix)
        self.inventories = {}
        self.env = dict(os.environ, SNF_LAB_PREFIX=self.prefix, PATH=VENV_BIN + os.pathsep + os.environ['PATH'],
                        CONTAINERS_CONF=os.path.join(LAB, 'containers.conf'), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
                        ANSIBLE_RETRY_FILES_ENABLED='false', ANSIBLE_FORCE_COLOR='0')

    def __enter__(self):
        print('machine: %s' % _lab.machine())
        print('load average at start: %.2f %.2f %.2f' % os.getloadavg())
        signal.signal(signal.SIGTERM, self._terminated)
        try:
            self._up()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    @staticmethod
    def _terminated(signum, _frame):
        raise SystemExit(128 + signum)

    @staticmethod
    def _call(argv, env):
        """(rc, output) of argv, run in a process group of its own: ended as a whole (ansible's workers too)
        when the bench is interrupted."""
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True, start_new_session=True)
        try:
            out = proc.communicate()[0]
        except BaseException:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(timeout=10)
                    break
                except (OSError, subprocess.TimeoutExpired):
                    pass
            raise
        return proc.returncode, out

    def _ansible(self, argv, env=None):
        returncode, out = self._call(argv, env or self.env)
        if returncode:
            raise RuntimeError('%s failed (rc %d):\n%s' % (' '.join(argv[:2]), returncode, out[-4000:]))
        return out

    def _up(self):
        start = time.monotonic()
        platforms = ['gw', 'wan'] if 'ssh' in self.connections else ['gw']
        if not self.options.no_create:
            image = subprocess.run([os.path.join(LAB, 'image', 'tag.sh')], stdout=subprocess.PIPE, check=True,
                                   universal_newlines=True, cwd=ROOT).stdout.strip()
            self._ansible(['ansible-playbook', os.path.join(LAB, 'create.yml'), '-e',
                           json.dumps({'lab_platforms': platforms})], env=dict(self.env, SNF_LAB_IMAGE=image))
        podman = os.path.join(self.scratch, 'podman-inventory.json')
        with open(podman, 'w') as handle:
            json.dump({'all': {
                'vars': {'ansible_connection': 'containers.podman.podman',
                         'ansible_python_interpreter': '/usr/bin/python3'},
                'hosts': {'wan': {'ansible_host': '%s.wan' % self.prefix}} if 'wan' in platforms else {},
                'children': {'gateways': {'hosts': {'gw': {'ansible_host': '%s.gw' % self.prefix}}}}}}, handle)
        self.inventories['podman'] = podman
        if 'ssh' in self.connections:
            # sshd in gw, a key of this run, the relay on wan, SCRATCH/ssh-inventory.yml.
            self._ansible(['ansible-playbook', os.path.join(LAB, 'ssh.yml'), '-i', podman, '-e',
                           json.dumps({'ssh_dir': self.scratch})])
            self.inventories['ssh'] = os.path.join(self.scratch, 'ssh-inventory.yml')
        print('lab up (%s, %s): %.1f s' % ('+'.join(platforms), 'created' if not self.options.no_create else 'reused',
                                           time.monotonic() - start))

    def session(self, connection):
        """SSH_CONNECTION as a task on gw sees it (no play environment): a real one over ssh, none over podman."""
        out = self._ansible(['ansible', 'gw', '-i', self.inventories[connection], '-m', 'ansible.builtin.shell', '-a',
                             'printenv SSH_CONNECTION || echo none'])
        self.end_masters()
        return out.strip().splitlines()[-1]

    def end_masters(self):
        if 'ssh' in self.connections:
            end_masters(self.control_dir, self.prefix)

    def run(self, playbook, connection, collections=COLLECTIONS):
        """(seconds, recap line of gw, {controller, host, host_tasks}) of one ansible-playbook run."""
        split_file = os.path.join(self.scratch, 'split.json')
        env = dict(self.env, ANSIBLE_COLLECTIONS_PATH=collections, SNF_BENCH_SPLIT=split_file,
                   ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, 'callback_plugins'),
                   ANSIBLE_CALLBACKS_ENABLED='snf_bench_split')
        start = time.perf_counter()
        returncode, out = self._call(['ansible-playbook', '-i', self.inventories[connection], playbook], env)
        elapsed = time.perf_counter() - start
        self.end_masters()
        if returncode != 0:
            raise RuntimeError('%s failed:\n%s' % (playbook, out[-4000:]))
        recap = [line for line in out.splitlines() if line.startswith('gw ')]
        with open(split_file) as handle:
            split = json.load(handle)
        return elapsed, recap[-1] if recap else '', split

    def __exit__(self, *exc):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.end_masters()
        if not self.options.keep:
            # Also ends the lab's ssh masters and relays (those of another run of this prefix too).
            subprocess.run(['bash', os.path.join(LAB, 'clean.sh'), self.prefix], check=False, env=self.env)
        left = ssh_processes(self.control_dir, self.prefix)
        if 'ssh' in self.connections:
            print('ssh masters and relays of %s left: %d%s' % (self.control_dir, len(left),
                                                               ''.join('\n  %d %s' % item for item in left)))
        shutil.rmtree(self.scratch, ignore_errors=True)
        print('load average at end: %.2f %.2f %.2f' % os.getloadavg())
        return False


WAYS = dict(ssh='SSH (pipelining, ControlPersist, relay on wan)', podman='podman exec')


def bench(options, write_playbooks, headline, first_target, rerun_target=None):
    """Runs the rounds on a lab of its own; write_playbooks(lab, connection) -> (reset, bulk) playbook paths.

    Prints each round, then the medians against the targets (first_target,
    rerun_target: seconds, None when the issue sets none).
    """
    with Lab(options) as lab:
        playbooks = {}
        for connection in lab.connections:
            print('over %s, SSH_CONNECTION a task on gw sees: %s' % (WAYS[connection], lab.session(connection)))
            playbooks[connection] = write_playbooks(lab, connection)
        ping = os.path.join(lab.scratch, 'ping.yml')
        with open(ping, 'w') as handle:
            handle.write(PING)
        roles = [('this tree', COLLECTIONS)]
        if options.ref:
            roles.append((options.ref, collection_of_ref(options.ref, os.path.join(lab.scratch, 'ref'))
                          + os.pathsep + COLLECTIONS))
        baseline = dict((connection, []) for connection in lab.connections)
        times = dict(((connection, label), dict(first=[], rerun=[], split_first=[], split_rerun=[]))
                     for connection in lab.connections for label, _c in roles)
        for number in range(1, options.rounds + 1):
            for connection in lab.connections:
                reset, bulk = playbooks[connection]
                elapsed = lab.run(ping, connection)[0]
                baseline[connection].append(elapsed)
                print('round %d, %s, baseline: a playbook of one ping task %.2f s; load %.2f'
                      % (number, connection, elapsed, os.getloadavg()[0]))
                for label, collections in roles:
                    lab.run(reset, connection, collections)
                    first, recap_first, split_first = lab.run(bulk, connection, collections)
                    rerun, recap_rerun, split_rerun = lab.run(bulk, connection, collections)
                    if changed_of(recap_rerun) != 0:
                        raise RuntimeError('the re-run changed something: %s' % recap_rerun)
                    for key, value in (('first', first), ('rerun', rerun), ('split_first', split_first),
                                       ('split_rerun', split_rerun)):
                        times[connection, label][key].append(value)
                    print('round %d, %s, %s: first run %.2f s (%s; %s), re-run %.2f s (%s; %s); load %.2f'
                          % (number, connection, label, first, summary(recap_first), split_text(split_first),
                             rerun, summary(recap_rerun), split_text(split_rerun), os.getloadavg()[0]))
        print('%s, whole ansible-playbook runs, median of %d:' % (headline, options.rounds))
        medians = {}
        for connection in lab.connections:
            ping_median = statistics.median(baseline[connection])
            medians[connection, 'ping'] = ping_median
            print('  over %s:' % WAYS[connection])
            print('    %-12s a playbook of one ping task %.2f s (start-up and one remote task: the machine\'s pace)'
                  % ('baseline', ping_median))
            for label, _c in roles:
                here = times[connection, label]
                first, rerun = statistics.median(here['first']), statistics.median(here['rerun'])
                medians[connection, label, 'first'], medians[connection, label, 'rerun'] = first, rerun
                print('    %-12s first run %.2f s (target < %g s), no-change re-run %.2f s%s; %.1fx and %.1fx the '
                      'ping playbook' % (label, first, first_target, rerun,
                                         ' (target < %g s)' % rerun_target if rerun_target else '',
                                         first / ping_median, rerun / ping_median))
                for run in ('first', 'rerun'):
                    splits = here['split_' + run]
                    print('    %-12s   %-6s controller-only tasks %.2f s, %d tasks on the host %.2f s (medians)'
                          % ('', run, statistics.median(split['controller'] for split in splits),
                             statistics.median(split['host_tasks'] for split in splits),
                             statistics.median(split['host'] for split in splits)))
            print('    %-12s   host tasks of the last re-run: %s' % ('', ', '.join(
                '%s %.2f s' % (name, seconds) for name, seconds in times[connection, 'this tree']['split_rerun'][-1]
                .get('tasks', []))))
            if options.ref:
                print('    ratio %s / this tree: first run %.2fx, re-run %.2fx' % (
                    options.ref, medians[connection, options.ref, 'first'] / medians[connection, 'this tree', 'first'],
                    medians[connection, options.ref, 'rerun'] / medians[connection, 'this tree', 'rerun']))
        if len(lab.connections) == 2:
            print('  podman exec / SSH (this tree): ping playbook %.2fx, first run %.2fx, re-run %.2fx'
                  % (medians['podman', 'ping'] / medians['ssh', 'ping'],
                     medians['podman', 'this tree', 'first'] / medians['ssh', 'this tree', 'first'],
                     medians['podman', 'this tree', 'rerun'] / medians['ssh', 'this tree', 'rerun']))
    return 0
