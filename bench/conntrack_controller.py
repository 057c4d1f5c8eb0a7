# SPDX-License-Identifier: GPL-3.0-or-later
"""What a conntrack_info listing costs the controller: `ansible` ad-hoc on ~200k entries.

Not a test: prints wall time and peak memory per process of an ad-hoc
run (`ansible localhost -c local -m stateful.netfilter.conntrack_info`)
for a summary, the default limit and a full listing (`limit: 0`), each
run `--rounds` times, interleaved (see docs/conntrack.md). Needs root,
iproute2, iptables and conntrack-tools; everything happens in a namespace
<SNF_LAB_PREFIX or snf>-ctl-<pid>, removed at the end, also on Ctrl-C or
SIGTERM.

Memory is read from /proc every 20 ms for every process of the run:
VmHWM (the kernel's own peak RSS of a process) for each, grouped as the
`ansible` process, its forked workers and the module's interpreter; and
the largest sum of VmRSS seen at once.

    sudo .venv/bin/python bench/conntrack_controller.py [--rounds 3]
"""

import argparse
import json
import os
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

CASES = [
    ('summary_only: true', dict(summary_only=True)),
    ('default limit (100)', dict()),
    ('limit: 0 (every entry)', dict(limit=0)),
]


def status(pid):
    """{'VmHWM': kB, 'VmRSS': kB, 'PPid': pid} of a process, or None once it is gone."""
    try:
        with open('/proc/%d/status' % pid) as handle:
            fields = dict(line.split(':', 1) for line in handle if ':' in line)
    except OSError:
        return None
    return dict((key, int(fields[key].split()[0])) for key in ('VmHWM', 'VmRSS', 'PPid') if key in fields)


def cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return handle.read().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        return ''


def descendants(root):
    children = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            info = status(int(name))
            if info and 'PPid' in info:
                children.setdefault(info['PPid'], []).append(int(name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def watch(argv, env, output):
    """(wall time, rc, {pid: (role, peak kB)}, largest total kB) of one command."""
    with open(output, 'w') as out:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        peaks, roles, total = {}, {}, 0
        while proc.poll() is None:
            now = 0
            for pid in descendants(proc.pid):
                info = status(pid)
                if not info:
                    continue
                now += info.get('VmRSS', 0)
                peaks[pid] = max(peaks.get(pid, 0), info.get('VmHWM', 0))
                if pid not in roles:
                    roles[pid] = cmdline(pid)
            total = max(total, now)
            time.sleep(0.02)
        elapsed = time.monotonic() - start
    grouped = {}
    for pid, peak in peaks.items():
        line = roles.get(pid, '')
        role = ('ansible' if pid == proc.pid else 'module' if 'AnsiballZ' in line or 'ansible_collections' in line
                else 'worker' if '/ansible' in line else 'other')
        grouped[role] = max(grouped.get(role, 0), peak)
    return elapsed, proc.returncode, grouped, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--rounds', type=int, default=3, help='repetitions per case (median)')
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('needs root (network namespaces, conntrack)')
    _lab.private_run()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    ansible = os.path.join(os.path.dirname(sys.executable), 'ansible')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.cache', 'collections'),
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR='1')
    version = subprocess.run([ansible, '--version'], stdout=subprocess.PIPE, universal_newlines=True,
                             env=env, check=True).stdout.splitlines()[0]
    print('machine: %s; %s' % (_lab.machine(), version))
    print('load average at start: %.2f %.2f %.2f (other work on the machine skews every figure)' % os.getloadavg())
    name = '%s-ctl-%d' % (os.environ.get('SNF_LAB_PREFIX', 'snf'), os.getpid())
    with _lab.namespace(name) as ns, tempfile.TemporaryDirectory(prefix='snf-ctl-') as workdir:
        _lab.setup_gateway(ns)
        _lab.fill(ns, udp_per_source=50000, tcp_per_source=250, icmp_per_source=100, v6_udp_per_source=250)
        runs = dict((label, []) for label, dummy in CASES)
        for dummy in range(args.rounds):
            for label, params in CASES:
                output = os.path.join(workdir, 'out')
                argv = [ansible, 'localhost', '-c', 'local', '-i', 'localhost,', '-m',
                        'stateful.netfilter.conntrack_info', '-a', json.dumps(dict(params, netns=ns))]
                elapsed, rc, peaks, total = watch(argv, env, output)
                size = os.path.getsize(output)
                with open(output) as handle:
                    head = handle.read(200)
                if rc != 0 or 'SUCCESS' not in head:
                    raise RuntimeError('%s: rc %d: %s' % (label, rc, head))
                runs[label].append((elapsed, peaks, total, size))
        print('ansible %s localhost -c local -m stateful.netfilter.conntrack_info, %d rounds, medians:'
              % ('-a ARGS', args.rounds))
        print('%-26s %8s %12s %12s %12s %12s %10s'
              % ('case', 'wall s', 'ansible MiB', 'worker MiB', 'module MiB', 'all at once', 'output MB'))
        for label, dummy in CASES:
            cases = runs[label]

            def med(pick):
                return statistics.median(pick(case) for case in cases)
            print('%-26s %8.2f %12.1f %12.1f %12.1f %12.1f %10.1f' % (
                label, med(lambda c: c[0]), med(lambda c: c[1].get('ansible', 0)) / 1024.0,
                med(lambda c: c[1].get('worker', 0)) / 1024.0, med(lambda c: c[1].get('module', 0)) / 1024.0,
                med(lambda c: c[2]) / 1024.0, med(lambda c: c[3]) / 1e6))
    print('load average at end: %.2f %.2f %.2f' % os.getloadavg())
    return 0


if __name__ == '__main__':
    sys.exit(main())
