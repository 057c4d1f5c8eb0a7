# SPDX-License-Identifier: GPL-3.0-or-later
"""What a fleet run costs: the three playbooks on twenty lab gateways over SSH.

Not a test (make bench-fleet): starts the fleet lab (tests/lab/create.yml:
wan and the lean gateways f01-fNN of tests/lab/topology.yml), makes every
gateway reachable over real SSH with pipelining through the relay on wan
(tests/lab/ssh.yml; this machine's network namespace gets no lab address),
provisions them with the gateway playbook, fills each conntrack table with
real UDP flows from wan, then at each --forks runs, by FQCN with
ansible-playbook as an operator would:

  conntrack_report   every gateway's table (report_hosts gateways)
  conntrack_flush    a filtered flush for real (the flows from wan to the
                     probe port; refilled before each run)
  gateway            a no-change run (the fleet as converged)

each with serial 100% (one batch: forks alone sets the parallelism; the
playbooks' default canary batches are one extra run of the flush). For
each run: wall time, wall time per host, the controller's CPU seconds per
host (user + system of ansible-playbook, its forks and the ssh clients,
with their ProxyCommand `podman exec`: the lab's stand-in for the
network, so an overestimate of a real controller's cost), the slowest
task per host (bench/callback_plugins/snf_host_timer.py times every task
on every host) and the runs' exit status. Then the arithmetic for 1,000
gateways. Load average at start and end; the lab is removed at the end,
also on Ctrl-C or SIGTERM.

    make bench-fleet                     (20 gateways, forks 5 10 20)
    python bench/fleet_bench.py --hosts 6 --forks 5
"""

import argparse
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import _lab  # noqa: E402

FLUSH_FILTERS = {'protocol': 'udp', 'src': '203.0.113.8', 'dport': 5000}
PROBE_PORT = 5000
POLICY = {
    # The lab's containers do not run systemd (as tests/lab/molecule-base.yml).
    'firewall_persist_require_systemd': False,
    'nat_gateway_persist_require_systemd': False,
    'nat_gateway_masquerade': [{'source': '192.168.1.0/24', 'out_interface': 'eth1'},
                               {'source': 'fd53:1::/64', 'out_interface': 'eth1'}],
    'firewall_input_allow': [{'name': 'ssh', 'port': 22, 'sources': ['203.0.113.0/24', '2001:db8:113::/64']},
                             {'name': 'probe-udp', 'protocol': 'udp', 'port': PROBE_PORT}],
}
# Sends COUNT UDP datagrams from distinct source ports to each address: a
# conntrack entry per flow in each gateway (run inside wan).
SENDER = '''
import socket, sys
count = int(sys.argv[1])
for address in sys.argv[2:]:
    for port in range(42000, 42000 + count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", port))
        sock.sendto(b"x", (address, %d))
        sock.close()
''' % PROBE_PORT


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stat(pid):
    """(ppid, CPU seconds of the process and its reaped children), or None once it is gone."""
    try:
        with open('/proc/%s/stat' % pid) as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf('SC_CLK_TCK')
    return int(fields[1]), sum(int(value) for value in fields[11:15]) / float(ticks)


def ssh_masters_cpu(control_dir):
    """CPU seconds of the ssh ControlPersist masters of control_dir and their ProxyCommands, then ends them.

    The masters detach from ansible-playbook (getrusage never sees them); ending
    them after each run gives every run masters of its own.
    """
    stats = {}
    masters = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        stat = _stat(pid)
        if stat is None:
            continue
        stats[int(pid)] = stat
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read().decode(errors='replace')
        except OSError:
            continue
        if cmdline.startswith('ssh: ') and control_dir in cmdline:
            masters.append(int(pid))
    total = 0.0
    for master in masters:
        family = {master}
        for pid, (ppid, _cpu) in stats.items():
            if ppid in family:
                family.add(pid)
        total += sum(stats[pid][1] for pid in family if pid in stats)
    for master in masters:
        try:
            os.kill(master, signal.SIGTERM)
        except OSError:
            pass
    return total, len(masters)


class Fleet(object):
    def __init__(self, prefix, hosts, work):
        self.prefix = prefix
        self.hosts = ['f%02d' % n for n in range(1, hosts + 1)]
        self.work = work
        self.env = dict(os.environ, SNF_LAB_PREFIX=prefix, ANSIBLE_FORCE_COLOR='0',
                        ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, 'callback_plugins'),
                        ANSIBLE_CALLBACKS_ENABLED='snf_host_timer')
        self.env.setdefault('SNF_LAB_IMAGE', subprocess.check_output(
            [os.path.join(ROOT, 'tests/lab/image/tag.sh')], universal_newlines=True).strip())
        self.playbook = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
        self.ssh_cpu, self.ssh_masters = 0.0, 0
        self.proc = None

    def ansible(self, *argv, **kwargs):
        """Runs ansible-playbook; returns (rc, wall seconds, controller CPU seconds, timings, output)."""
        timer = os.path.join(self.work, 'timer.json')
        if os.path.exists(timer):
            os.unlink(timer)
        env = dict(self.env, SNF_HOST_TIMER_FILE=timer, **kwargs.pop('env', {}))
        cpu, start = children_cpu(), time.monotonic()
        proc = self.proc = subprocess.Popen([self.playbook] + list(argv), env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, universal_newlines=True)
        out = proc.communicate()[0]
        wall, cpu = time.monotonic() - start, children_cpu() - cpu
        self.ssh_cpu, self.ssh_masters = ssh_masters_cpu(os.path.join(self.work, 'cp.' + self.prefix))
        timings = json.load(open(timer)) if os.path.exists(timer) else []
        return proc.returncode, wall, cpu, timings, out

    def must(self, *argv):
        rc, wall, _cpu, _timings, out = self.ansible(*argv)
        if rc:
            sys.exit('fleet_bench: %s failed (rc %d):\n%s' % (' '.join(argv), rc, out[-4000:]))
        return wall

    def create(self):
        lab = {'lab_platforms': ['wan'] + self.hosts}
        wall = self.must('tests/lab/create.yml', '-e', json.dumps(lab))
        podman = os.path.join(self.work, 'podman-inventory.yml')
        hosts = dict((name, {'ansible_host': '%s.%s' % (self.prefix, name)}) for name in self.hosts)
        with open(podman, 'w') as handle:
            json.dump({'all': {'vars': {'ansible_connection': 'containers.podman.podman',
                                        'ansible_python_interpreter': '/usr/bin/python3'},
                               'hosts': {'wan': {'ansible_host': '%s.wan' % self.prefix}},
                               'children': {'gateways': {'hosts': hosts}}}}, handle)
        keep = os.path.join(self.work, 'keep.yml')
        with open(keep, 'w') as handle:
            json.dump([{'name': 'Keep idle entries', 'hosts': 'gateways', 'gather_facts': False,
                        'tasks': [{'ansible.builtin.include_tasks': os.path.join(ROOT, 'tests/lab/tasks/keep_entries.yml')}]}],
                      handle)
        wall += self.must(keep, '-i', podman, '-f', '20')
        wall += self.must('tests/lab/ssh.yml', '-i', podman, '-f', '20', '-e', json.dumps({'ssh_dir': self.work}))
        policy = os.path.join(self.work, 'policy.yml')
        with open(policy, 'w') as handle:
            json.dump({'all': {'children': {'gateways': {'vars': POLICY}}}}, handle)
        self.inventory = ['-i', os.path.join(self.work, 'ssh-inventory.yml'), '-i', policy]
        return wall

    def fill(self, flows):
        addresses = ['203.0.113.%d' % (10 + int(name[1:])) for name in self.hosts]
        _lab.sh('podman', 'exec', '%s.wan' % self.prefix, 'python3', '-c', SENDER, str(flows), *addresses,
                env=self.env)

    def run(self, playbook, forks, extra):
        argv = ['stateful.netfilter.%s' % playbook] + self.inventory + ['-f', str(forks), '-e', json.dumps(extra)]
        return self.ansible(*argv)


def per_host(timings):
    """{host: seconds of its tasks}, and the task that took longest summed over hosts."""
    hosts, tasks = {}, {}
    for row in timings:
        if row['host'] == 'localhost':
            continue
        hosts[row['host']] = hosts.get(row['host'], 0) + row['seconds']
        tasks[row['task']] = tasks.get(row['task'], 0) + row['seconds']
    slowest = max(tasks.items(), key=lambda item: item[1]) if tasks else ('-', 0)
    return hosts, slowest


def main(argv):
    parser = argparse.ArgumentParser(prog='fleet_bench.py', description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=20, help='gateways (1-20), default 20')
    parser.add_argument('--forks', type=int, nargs='+', default=[5, 10, 20])
    parser.add_argument('--flows', type=int, default=200, help='UDP flows from wan per gateway, default 200')
    parser.add_argument('--prefix', default=os.environ.get('SNF_LAB_PREFIX', 'snf-bench'))
    args = parser.parse_args(argv)
    if not 1 <= args.hosts <= 20:
        parser.error('--hosts: 1 to 20 (the lab has twenty fleet gateways)')
    if not args.prefix.startswith('snf-'):
        parser.error('--prefix must start with snf-')
    work = tempfile.mkdtemp(prefix='snf-fleet-bench.')

    def clean(*_):
        subprocess.run(['bash', os.path.join(ROOT, 'tests/lab/clean.sh'), args.prefix], check=False)
        shutil.rmtree(work, ignore_errors=True)

    def stop(signum, _frame):
        if fleet.proc is not None and fleet.proc.poll() is None:
            fleet.proc.terminate()
            fleet.proc.wait()
        clean()
        sys.exit(128 + signum)

    load_start = os.getloadavg()
    print('fleet_bench: %d gateways over SSH (pipelining, ProxyCommand relay), %d UDP flows each, forks %s'
          % (args.hosts, args.flows, ' '.join(map(str, args.forks))))
    print('machine: %s' % _lab.machine())
    print('load average at start: %.2f %.2f %.2f' % load_start)
    fleet = Fleet(args.prefix, args.hosts, work)
    signal.signal(signal.SIGTERM, stop)
    results = []
    try:
        print('lab up (create, sshd, SSH inventory): %.1f s' % fleet.create())
        rc, wall, cpu, _t, out = fleet.run('gateway', max(args.forks), {'gateway_serial': '100%'})
        if rc:
            sys.exit('fleet_bench: the first gateway run failed:\n%s' % out[-4000:])
        print('gateway playbook, first run (provisions): %.1f s' % wall)
        fleet.fill(args.flows)
        cases = [
            ('conntrack_report', {'report_hosts': 'gateways', 'report_dir': os.path.join(work, 'report')}),
            ('conntrack_flush', {'flush_hosts': 'gateways', 'flush_filters': FLUSH_FILTERS, 'flush_dry_run': False,
                                 'flush_serial': '100%', 'flush_report_file': os.path.join(work, 'flush.json')}),
            ('gateway', {'gateway_serial': '100%', 'gateway_report_file': os.path.join(work, 'gateway.json')}),
        ]
        for forks in args.forks:
            for playbook, extra in cases:
                if playbook == 'conntrack_flush':
                    fleet.fill(args.flows)
                rc, wall, cpu, timings, out = fleet.run(playbook, forks, extra)
                hosts, slowest = per_host(timings)
                note = ''
                if playbook == 'conntrack_flush' and os.path.exists(extra['flush_report_file']):
                    note = 'deleted %d' % json.load(open(extra['flush_report_file']))['totals']['deleted']
                if playbook == 'gateway' and os.path.exists(extra['gateway_report_file']):
                    note = 'changed %d' % json.load(open(extra['gateway_report_file']))['totals']['changed']
                results.append(dict(playbook=playbook, forks=forks, rc=rc, wall=wall, cpu=cpu, hosts=hosts,
                                    slowest=slowest, note=note, ssh_cpu=fleet.ssh_cpu))
                print('  %-16s forks %2d: rc %d, wall %6.1f s = %5.2f s/host; controller CPU per host %5.2f s '
                      '(ansible) + %4.2f s (%d ssh masters, relays); per host: tasks %5.1f s (median), '
                      'slowest task %r (%.1f s over all hosts) %s'
                      % (playbook, forks, rc, wall, wall / args.hosts, cpu / args.hosts, fleet.ssh_cpu / args.hosts,
                         fleet.ssh_masters, statistics.median(hosts.values()) if hosts else 0, slowest[0],
                         slowest[1], note))
                sys.stdout.flush()
        # The default rollout (canary, then a quarter at a time) of the flush, once.
        fleet.fill(args.flows)
        default_forks = 10 if 10 in args.forks else args.forks[0]
        rc, wall, cpu, _t, _o = fleet.run('conntrack_flush', default_forks, {
            'flush_hosts': 'gateways', 'flush_filters': FLUSH_FILTERS, 'flush_dry_run': False})
        print('  conntrack_flush  forks %2d, default batches [1, "25%%"]: rc %d, wall %.1f s, %.2f s/host'
              % (default_forks, rc, wall, wall / args.hosts))
    finally:
        load_end = os.getloadavg()
        clean()
    print('load average at end: %.2f %.2f %.2f' % load_end)
    print()
    print('1,000 gateways (arithmetic on the figures above, serial 100%, one batch per play):')
    print('  time = max(rounds x per-round wall, 1000 x controller CPU per host / controller cores),')
    print('  rounds = ceil(1000 / (forks x execution nodes)), per-round wall = wall(%d hosts) / ceil(%d / forks)'
          % (args.hosts, args.hosts))
    for playbook in ('conntrack_report', 'conntrack_flush', 'gateway'):
        rows = [row for row in results if row['playbook'] == playbook]
        for row in rows:
            per_round = row['wall'] / math.ceil(args.hosts / float(row['forks']))
            cpu_host = (row['cpu'] + row['ssh_cpu']) / args.hosts
            for nodes, cores in ((1, 2), (4, 4)):
                rounds = math.ceil(1000.0 / (row['forks'] * nodes))
                latency = rounds * per_round
                cpu_bound = 1000 * cpu_host / (nodes * cores)
                print('  %-16s forks %2d, %d execution node(s) of %d cores: %4d rounds x %5.1f s = %6.0f s; '
                      'CPU bound %6.0f s -> about %4.0f min'
                      % (playbook, row['forks'], nodes, cores, rounds, per_round, latency, cpu_bound,
                         max(latency, cpu_bound) / 60))
    flush10 = [row for row in results if row['playbook'] == 'conntrack_flush' and row['forks'] == 10]
    if flush10:
        print('target: flush controller overhead under 1 s per host at forks 10: measured %.2f s CPU '
              '(%.2f ansible + %.2f ssh), %.2f s wall per host'
              % ((flush10[0]['cpu'] + flush10[0]['ssh_cpu']) / args.hosts, flush10[0]['cpu'] / args.hosts,
                 flush10[0]['ssh_cpu'] / args.hosts, flush10[0]['wall'] / args.hosts))
    return 1 if any(row['rc'] for row in results) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
