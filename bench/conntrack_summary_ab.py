# SPDX-License-Identifier: GPL-3.0-or-later
"""In-process A/B of the conntrack listing and summary: this tree against an earlier commit.

Not a test (needs root): a scratch namespace with the table of
bench/conntrack_bench.py (202,400 SNAT'd entries), then, interleaved round by
round, list_entries() of the earlier _conntrack.py (git show REV:...) and of
this tree: the full listing (limit 0, entries discarded), the summary
(summary_only), and this tree's summary with every summary_details (zones,
marks, talkers). `conntrack -L > /dev/null` is timed in the same rounds. Prints
medians, best times and the ratios new/old, with the load average at start
and end; the figures move with other work on the machine, the ratios less.

    sudo .venv/bin/python bench/conntrack_summary_ab.py --rev 25f6569 --rounds 5
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, '.cache', 'collections'))
sys.path.insert(0, HERE)

import _lab  # noqa: E402
from ansible_collections.stateful.netfilter.plugins.module_utils import _conntrack, _ctsummary  # noqa: E402


def load_old(rev):
    """_conntrack.py as of rev, imported under another name (its imports are the collection's)."""
    text = subprocess.run(['git', '-C', ROOT, 'show', '%s:plugins/module_utils/_conntrack.py' % rev],
                          check=True, stdout=subprocess.PIPE).stdout
    handle = tempfile.NamedTemporaryFile('wb', suffix='.py', prefix='snf_old_conntrack_', delete=False)
    with handle:
        handle.write(text)
    spec = importlib.util.spec_from_file_location('snf_old_conntrack', handle.name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.unlink(handle.name)
    return module


def timed(call, cpu=None):
    """(wall seconds, result); appends this process's CPU seconds (all threads) to cpu."""
    start, used = time.perf_counter(), time.process_time()
    result = call()
    if cpu is not None:
        cpu.append(time.process_time() - used)
    return time.perf_counter() - start, result


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--rev', default='25f6569', help='the earlier commit (default: before issue 16)')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--per-source', type=int, default=50000, help='UDP flows per IPv4 source (4 sources)')
    args = parser.parse_args()
    _lab.private_run()
    old = load_old(args.rev)
    print('machine: %s' % _lab.machine())
    print('load average at start: %.2f %.2f %.2f' % os.getloadavg())
    name = '%s-ab-%d' % (os.environ.get('SNF_LAB_PREFIX', 'snf'), os.getpid())
    with _lab.namespace(name) as ns:
        _lab.setup_gateway(ns)
        _lab.fill(ns, udp_per_source=args.per_source, tcp_per_source=250, icmp_per_source=100,
                  v6_udp_per_source=250)
        runs = dict((key, []) for key in ('cli', 'old_full', 'new_full', 'old_summary', 'new_summary',
                                          'new_details'))
        cpu = dict((key, []) for key in runs)
        counts = []
        for dummy in range(args.rounds):
            runs['cli'].append(timed(lambda: subprocess.run(['ip', 'netns', 'exec', ns, 'conntrack', '-L'],
                                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                            check=True))[0])
            for label, module, extra in (('old_full', old, dict(limit=0, write=lambda texts: None)),
                                         ('new_full', _conntrack, dict(limit=0, write=lambda texts: None)),
                                         ('old_summary', old, dict(summary_only=True)),
                                         ('new_summary', _conntrack, dict(summary_only=True)),
                                         ('new_details', _conntrack, dict(summary_only=True,
                                                                          details=_ctsummary.DETAILS))):
                elapsed, result = timed(lambda: module.list_entries(module.build_filter({}), netns=ns, **extra),
                                        cpu[label])
                runs[label].append(elapsed)
                counts.append(result['count'])
        # Entries of other namespaces share nf_conntrack_max; a few of ours may expire or be evicted meanwhile.
        count = max(counts)
        print('table: %d entries (%d at the least); %d rounds, interleaved' % (count, min(counts), args.rounds))
        for label in sorted(runs):
            print('%-12s median %.3f s, best %.3f s, %s entries/s (median)'
                  % (label, median(runs[label]), min(runs[label]), format(int(count / median(runs[label])), ',')))
        for new, base in (('new_full', 'old_full'), ('new_summary', 'old_summary'), ('new_details', 'new_summary'),
                          ('new_summary', 'cli'), ('old_summary', 'cli')):
            print('%s / %s: %.3f (median), %.3f (best)'
                  % (new, base, median(runs[new]) / median(runs[base]), min(runs[new]) / min(runs[base])))
        # CPU time of this process (user + system of every thread, the kernel's dump work included):
        # moves less with other work on the machine than wall time.
        for new, base in (('new_full', 'old_full'), ('new_summary', 'old_summary'), ('new_details', 'new_summary')):
            print('CPU %s / %s: %.3f s / %.3f s = %.3f (median)' % (
                new, base, median(cpu[new]), median(cpu[base]), median(cpu[new]) / median(cpu[base])))
    print('load average at end: %.2f %.2f %.2f' % os.getloadavg())


if __name__ == '__main__':
    main()
