# SPDX-License-Identifier: GPL-3.0-or-later
"""conntrack_info / conntrack_flush against the conntrack CLI, on ~200k real entries.

Not a test: prints figures and their ratios (see docs/conntrack.md).
Needs root, iproute2, iptables and conntrack-tools. Everything happens in
a namespace snf-bench-<pid>, removed at the end, also on Ctrl-C or
SIGTERM; the host's own ruleset, sysctls and conntrack table are never
touched.

The modules run the way a managed host runs them, without the
controller: `python plugins/modules/<module>.py ARGS.json`, a new process
per run, the collection on PYTHONPATH (AnsiballZ-less; AnsiballZ adds its
own unzip/import time on top of both sides equally little).

    sudo .venv/bin/python bench/conntrack_bench.py [--rounds 3]
"""

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, HERE)

import _lab  # noqa: E402
from ansible_collections.stateful.netfilter.plugins.module_utils import _conntrack, _ctfilters, _netlink  # noqa: E402

UDP_PER_SOURCE = 50000
VICTIM = _lab.SOURCES_V4[0]
ENV = dict(os.environ, PYTHONPATH=COLLECTIONS)
# Run a module file as __main__ and report the process' peak RSS on exit:
# VmHWM, the peak of this process image. (ru_maxrss would not do: Linux
# carries it across exec, so it counts the benchmark process it forked from.)
MEMORY_WRAPPER = (
    'import atexit, runpy, sys\n'
    'def peak():\n'
    '    with open("/proc/self/status") as status:\n'
    '        hwm = [line.split()[1] for line in status if line.startswith("VmHWM:")][0]\n'
    '    sys.stderr.write("MAXRSS %s\\n" % hwm)\n'
    'atexit.register(peak)\n'
    'sys.argv = sys.argv[1:]\n'
    'runpy.run_path(sys.argv[0], run_name="__main__")\n'
)

# The same, with the dump's socket failing (ECONNRESET) after N chunks were
# received: what a reset netlink dump does midway.
BREAKING_WRAPPER = MEMORY_WRAPPER.replace('sys.argv = sys.argv[1:]\n', (
    'import errno\n'
    'from ansible_collections.stateful.netfilter.plugins.module_utils import _netlink\n'
    'received = []\n'
    'recv = _netlink.NetlinkSocket._recv\n'
    'def _recv(self):\n'
    '    received.append(1)\n'
    '    if len(received) > CHUNKS:\n'
    '        raise OSError(errno.ECONNRESET, "Connection reset by peer")\n'
    '    return recv(self)\n'
    '_netlink.NetlinkSocket._recv = _recv\n'
    'sys.argv = sys.argv[1:]\n'))
BREAK_AFTER = 100


def children_cpu():
    """User + system CPU seconds of the children waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_int(path):
    with open(path) as handle:
        return int(handle.read())


class Runner:
    def __init__(self, ns, workdir):
        self.ns = ns
        self.workdir = workdir

    def cli(self, *args):
        """Wall time of `ip netns exec NS conntrack ARGS > /dev/null`."""
        start = time.monotonic()
        subprocess.run(['ip', 'netns', 'exec', self.ns, 'conntrack'] + list(args),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        return time.monotonic() - start

    def module(self, name, args, wrapper=None):
        """(wall time, result, stderr) of one module process."""
        path = os.path.join(self.workdir, '%s.json' % name)
        with open(path, 'w') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': dict(args, netns=self.ns)}, handle)
        module = os.path.join(ROOT, 'plugins', 'modules', name + '.py')
        argv = [sys.executable, module, path]
        if wrapper:
            argv = [sys.executable, '-c', wrapper, module, path]
        start = time.monotonic()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, check=False)
        elapsed = time.monotonic() - start
        result = json.loads(proc.stdout)
        if result.get('failed'):
            raise RuntimeError('%s failed: %s' % (name, result.get('msg')))
        return elapsed, result, proc.stderr.decode()

    def cli_to_file(self, *args):
        """(wall time, CPU time) of `ip netns exec NS conntrack ARGS > file`."""
        with open(os.path.join(self.workdir, 'cli.out'), 'w') as out:
            start, cpu = time.monotonic(), children_cpu()
            subprocess.run(['ip', 'netns', 'exec', self.ns, 'conntrack'] + list(args),
                           stdout=out, stderr=subprocess.DEVNULL, check=False)
            return time.monotonic() - start, children_cpu() - cpu

    def _to_file(self, name, args, wrapper):
        """(wall time, rc, stdout text, peak RSS KiB) of one module process writing its result to a file."""
        path = os.path.join(self.workdir, '%s.json' % name)
        with open(path, 'w') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': dict(args, netns=self.ns)}, handle)
        output = os.path.join(self.workdir, '%s.out' % name)
        module = os.path.join(ROOT, 'plugins', 'modules', name + '.py')
        with open(output, 'w') as out:
            start, cpu = time.monotonic(), children_cpu()
            proc = subprocess.run([sys.executable, '-c', wrapper, module, path], stdout=out,
                                  stderr=subprocess.PIPE, env=ENV, check=False)
            elapsed = time.monotonic() - start
            self.cpu = children_cpu() - cpu
        stderr = proc.stderr.decode()
        maxrss = [int(line.split()[1]) for line in stderr.splitlines() if line.startswith('MAXRSS')][0]
        with open(output) as handle:
            return elapsed, proc.returncode, handle.read(), maxrss

    def listing(self, args):
        """(wall time, CPU time, result, peak RSS KiB) of conntrack_info writing to a file."""
        elapsed, dummy_rc, text, maxrss = self._to_file('conntrack_info', args, MEMORY_WRAPPER)
        result = json.loads(text)
        if result.get('failed'):
            raise RuntimeError('conntrack_info failed: %s' % result.get('msg'))
        return elapsed, self.cpu, result, maxrss

    def broken_listing(self, chunks):
        """A full listing whose netlink dump fails (ECONNRESET) after `chunks` chunks: its result."""
        wrapper = BREAKING_WRAPPER.replace('CHUNKS', str(chunks))
        dummy, rc, text, dummy_rss = self._to_file('conntrack_info', dict(limit=0), wrapper)
        result = json.loads(text)     # one JSON document, or this raises
        result['rc'] = rc
        return result

    def count(self, *args):
        """Entries `conntrack -L ARGS` shows (its summary line on stderr)."""
        proc = subprocess.run(['ip', 'netns', 'exec', self.ns, 'conntrack', '-L'] + list(args),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        return int(proc.stderr.split('(conntrack-tools):')[1].split()[0])

    def refill_victim(self):
        """Recreate the UDP flows of every source (only the deleted ones are new)."""
        _lab.fill(self.ns, udp_per_source=UDP_PER_SOURCE)


def median(values):
    return statistics.median(values)


def report(label, value, unit, versus=None, versus_label=None):
    line = '%-62s %9.3f %s' % (label, value, unit)
    if versus:
        line += '   (%s: %.2fx)' % (versus_label, versus)
    print(line)
    sys.stdout.flush()


def report_runs(label, runs, cli=None, versus_label=None):
    """Median and best of repeated wall times (s), with ratios to the CLI's."""
    report(label + ' median', median(runs), 's', cli and median(runs) / median(cli), versus_label)
    report(label + ' best', min(runs), 's', cli and min(runs) / min(cli), versus_label)


def bench(rounds):
    cli = subprocess.run(['conntrack', '--version'], stdout=subprocess.PIPE, universal_newlines=True,
                         check=True).stdout.strip()
    print('machine: %s, %s' % (_lab.machine(), cli))
    print('load average at start: %.2f %.2f %.2f (other work on the machine skews every figure)' % os.getloadavg())
    limit = read_int('/proc/sys/net/netfilter/nf_conntrack_max')
    buckets = read_int('/proc/sys/net/netfilter/nf_conntrack_buckets')
    wanted = 4 * UDP_PER_SOURCE + 2500
    print('nf_conntrack_max %d, nf_conntrack_buckets %d (global; never changed here)' % (limit, buckets))
    if limit < wanted:
        print('nf_conntrack_max is below the %d entries this benchmark needs; raise it on a scratch machine.' % wanted)
        return 1
    # SNF_LAB_PREFIX keeps concurrent runs' namespaces apart (as the lab's).
    name = '%s-bench-%d' % (os.environ.get('SNF_LAB_PREFIX', 'snf'), os.getpid())
    with _lab.namespace(name) as ns, tempfile.TemporaryDirectory(prefix='snf-bench-') as workdir:
        run = Runner(ns, workdir)
        _lab.setup_gateway(ns)
        start = time.monotonic()
        _lab.fill(ns, udp_per_source=UDP_PER_SOURCE, tcp_per_source=250, icmp_per_source=100, v6_udp_per_source=250)
        total = run.count()
        print('table: %d entries (SNAT, both families) filled in %.1f s' % (total, time.monotonic() - start))

        # 1. Summary of the whole table vs conntrack -L > /dev/null.
        cli_list, summary = [], []
        for dummy in range(rounds):
            cli_list.append(run.cli('-L'))
            elapsed, result, dummy_err = run.module('conntrack_info', dict(summary_only=True))
            summary.append(elapsed)
            assert result['count'] == total, (result['count'], total)
        report_runs('conntrack -L > /dev/null,', cli_list)
        report_runs('conntrack_info summary_only, module process,', summary, cli_list, 'time / CLI, target <= 1.5')

        # 2. Peak memory of the summary run.
        dummy, dummy_result, stderr = run.module('conntrack_info', dict(summary_only=True), wrapper=MEMORY_WRAPPER)
        maxrss = [int(line.split()[1]) for line in stderr.splitlines() if line.startswith('MAXRSS')][0]
        report('conntrack_info summary_only, peak RSS', maxrss / 1024.0, 'MiB (target < 100)')

        # 3. Full structured listing, entries per second and peak memory,
        #    interleaved with `conntrack -L > file` (both write a file).
        cli_file, listing, rss, cli_cpu, cpu = [], [], [], [], []
        for dummy in range(rounds):
            elapsed, used = run.cli_to_file('-L')
            cli_file.append(elapsed)
            cli_cpu.append(used)
            elapsed, used, result, maxrss = run.listing(dict(limit=0))
            assert len(result['entries']) == result['count'] == total, (result['count'], total)
            del result
            listing.append(elapsed)
            cpu.append(used)
            rss.append(maxrss)
        report_runs('conntrack -L > file,', cli_file)
        report_runs('conntrack_info limit=0 > file, module process,', listing, cli_file, 'time / CLI')
        report('  entries/s, median (target >= 150000)', total / median(listing), '/s')
        report('  entries/s, best', total / min(listing), '/s')
        # CPU time (user + system, the kernel's dump work included) moves
        # less with other work on the machine than wall time does.
        report('  CPU time, median: conntrack -L > file', median(cli_cpu), 's')
        report('  CPU time, median: conntrack_info limit=0', median(cpu), 's', median(cpu) / median(cli_cpu),
               'CPU / CLI CPU')
        report('  peak RSS, largest of the runs (target <= 64 MiB)', max(rss) / 1024.0, 'MiB')
        with _netlink.network_namespace(ns):
            start = time.monotonic()
            result = _conntrack.list_entries(_ctfilters.build_filter({}), limit=0, write=lambda texts: None)
            in_process = time.monotonic() - start
        report('  in-process: dump, decode, summary (nothing printed)', total / in_process, '/s')
        del result
        broken = run.broken_listing(BREAK_AFTER)
        print('  dump broken after %d chunks: rc %d, one JSON result: failed=%s, %d entries, msg: %s'
              % (BREAK_AFTER, broken['rc'], broken['failed'], len(broken['entries']), broken['msg']))
        assert broken['rc'] == 1 and broken['failed'] and 0 < len(broken['entries']) < total

        # 4. Deleting the entries of one source (50k), three ways, same table.
        run.cli('-D', '-s', VICTIM)          # warm-up: only the UDP flows come back
        run.refill_victim()
        victims = run.count('-s', VICTIM)
        total = run.count()
        ways = [
            ('conntrack -D -s %s' % VICTIM, lambda: run.cli('-D', '-s', VICTIM)),
            ('conntrack_flush src=%s (kernel filters the flush)' % VICTIM,
             lambda: run.module('conntrack_flush', dict(src=VICTIM))[0]),
            ('conntrack_flush src=%s sport=40000-40001 (entry by entry)' % VICTIM,
             lambda: run.module('conntrack_flush', dict(src=VICTIM, sport='40000-40001'))[0]),
        ]
        times = dict((label, []) for label, dummy in ways)
        for dummy in range(rounds):
            for label, action in ways:
                assert run.count('-s', VICTIM) == victims
                # Counted again right before each way: at load average 13,
                # 55 entries that no way touches were once gone between the
                # first count and the first delete (cause not found; the
                # kernel may drop unreplied entries while a refill creates
                # new ones). What a way deletes is what this compares.
                before = run.count()
                times[label].append(action())
                left = run.count('-s', VICTIM)
                assert left == 0, '%s left %d entries' % (label, left)
                now = run.count()
                assert now == before - victims, '%s: %d entries left in the table, not %d' % (label, now,
                                                                                              before - victims)
                run.refill_victim()
        cli = times[ways[0][0]]
        print('deleting %d entries of %s out of %d:' % (victims, VICTIM, total))
        report_runs('  ' + ways[0][0] + ',', cli)
        for label, dummy in ways[1:]:
            runs = times[label]
            report('  ' + label + ', median', median(runs), 's', median(cli) / median(runs), 'CLI / time')
            report('  ' + label + ', best', min(runs), 's', min(cli) / min(runs), 'CLI / time')
        parts = kernel_flush_parts(ns, rounds)
        print('  the kernel flush, in-process, in parts (median):')
        for label, runs in parts:
            report('    ' + label, median(runs), 's')
        flush = dict(parts)['flush request']
        report('    the flush request alone against the CLI', median(flush), 's', median(cli) / median(flush), 'CLI / time')
        large_delete(run, rounds)
    print('load average at end: %.2f %.2f %.2f' % os.getloadavg())
    return 0


def large_delete(run, rounds):
    """Every IPv4 entry (the NATed ones, 200k) deleted entry by entry: time and peak RSS."""
    cidr = '198.51.100.0/24'   # a CIDR: the kernel cannot flush it, the module deletes entry by entry
    cli, module, rss, counts = [], [], [], []

    def refill():
        _lab.fill(run.ns, udp_per_source=UDP_PER_SOURCE, tcp_per_source=250, icmp_per_source=100)
    for dummy in range(rounds):
        cli.append(run.cli('-D', '-d', cidr))
        assert run.count('-d', cidr) == 0
        refill()
        victims = run.count('-d', cidr)     # counted again: each refill opens new TCP flows
        elapsed, dummy_rc, text, maxrss = run._to_file('conntrack_flush', dict(dst=cidr), MEMORY_WRAPPER)
        result = json.loads(text)
        assert result['deleted'] == victims and run.count('-d', cidr) == 0, (result.get('msg'), victims)
        module.append(elapsed)
        rss.append(maxrss)
        counts.append(victims)
        refill()
    print('deleting every IPv4 entry (dst %s, %d entries), entry by entry:' % (cidr, median(counts)))
    report_runs('  conntrack -D -d %s,' % cidr, cli)
    report_runs('  conntrack_flush dst=%s,' % cidr, module, cli, 'time / CLI')
    report('  conntrack_flush peak RSS, largest of the runs (target <= 64 MiB)', max(rss) / 1024.0, 'MiB')


def kernel_flush_parts(ns, rounds):
    """Wall times of the steps of a kernel flush of VICTIM, in this process.

    The module process adds the interpreter and Ansible start-up to them.
    """
    flt = _ctfilters.build_filter({'src': VICTIM})
    request = _conntrack._kernel_flush_request(flt, socket.AF_INET)
    parts = [('probe', []), ('count (filtered dump)', []), ('flush request', [])]
    for dummy in range(rounds):
        with _netlink.network_namespace(ns), _netlink.NetlinkSocket() as sock:
            start = time.monotonic()
            assert _conntrack._flush_filter_supported(sock)
            parts[0][1].append(time.monotonic() - start)
            start = time.monotonic()
            matched = sum(1 for dummy in _conntrack._dump(sock, flt, socket.AF_INET, 'bench', trusted=True))
            parts[1][1].append(time.monotonic() - start)
            start = time.monotonic()
            assert sock.transact([request]) == [0]
            parts[2][1].append(time.monotonic() - start)
        assert matched == UDP_PER_SOURCE
        _lab.fill(ns, udp_per_source=UDP_PER_SOURCE)
    return parts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--rounds', type=int, default=3, help='repetitions per figure (median)')
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('needs root (network namespaces, conntrack)')
    _lab.private_run()
    # SIGTERM unwinds like Ctrl-C, so the namespace is removed either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(bench(args.rounds))


if __name__ == '__main__':
    main()
