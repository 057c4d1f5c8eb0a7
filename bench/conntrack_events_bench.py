# SPDX-License-Identifier: GPL-3.0-or-later
"""Event sampling against `conntrack -E` at the fastest new-flow rate this machine makes.

Not a test (needs root and conntrack-tools). In a private mount namespace and
a scratch network namespace: conntrack_events' engine (sample_events, in a
thread of this process) and `conntrack -E -e NEW` (a process, its lines
counted) listen at the same time while bench/_lab.py sends N new UDP flows
(one datagram each, SNAT'd) as fast as one sender can. Prints the flows sent,
the rate they were created at, what each listener saw, and the losses the
module reported (overruns, lost, complete); load average at start and end.

    sudo .venv/bin/python bench/conntrack_events_bench.py --flows 200000
"""

import argparse
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), '.cache', 'collections'))
sys.path.insert(0, HERE)

import _lab  # noqa: E402
from ansible_collections.stateful.netfilter.plugins.module_utils import _ctevents, _ctfilters  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--flows', type=int, default=200000, help='new UDP flows to send (4 sources)')
    parser.add_argument('--settle', type=float, default=2.0, help='seconds of listening before and after')
    args = parser.parse_args()
    _lab.private_run()
    print('machine: %s' % _lab.machine())
    print('load average at start: %.2f %.2f %.2f' % os.getloadavg())
    name = '%s-events-%d' % (os.environ.get('SNF_LAB_PREFIX', 'snf'), os.getpid())
    with _lab.namespace(name) as ns:
        _lab.setup_gateway(ns)
        cli = subprocess.Popen(['ip', 'netns', 'exec', ns, 'conntrack', '-E', '-e', 'NEW', '-p', 'udp'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        cli_lines = [0]

        def count_cli():
            for dummy in cli.stdout:
                cli_lines[0] += 1
        counter = threading.Thread(target=count_cli)
        counter.start()
        ours = {}

        def listen(seconds):
            ours.update(_ctevents.sample_events(_ctfilters.build_filter({'protocol': 'udp'}), seconds, ['new'],
                                                netns=ns))
        # Listen long enough for the sending (at 20,000 flows/s or faster) and the settling.
        listener = threading.Thread(target=listen, args=(max(10.0, args.flows / 20000.0) + 2 * args.settle,))
        listener.start()
        time.sleep(args.settle)
        sent_at = time.monotonic()
        _lab.fill(ns, udp_per_source=args.flows // 4)
        send_time = time.monotonic() - sent_at
        listener.join()
        time.sleep(args.settle)
        cli.terminate()
        cli.wait()
        counter.join()
        table = int(_lab.in_ns(ns, 'conntrack', '-C').stdout)
    flows = args.flows // 4 * 4
    print('flows sent: %d in %.2f s = %s new flows/s (the sender is one Python process; table holds %d)'
          % (flows, send_time, format(int(flows / send_time), ','), table))
    print('conntrack_events: new %d (%.1f%%), listened %.1f s, overruns %d, lost %s, complete %s'
          % (ours['events']['new'], 100.0 * ours['events']['new'] / flows, ours['seconds'], ours['overruns'],
             ours['lost'], ours['complete']))
    print('  new + lost = %d (the kernel\'s drops counted: %s)' % (
        ours['events']['new'] + (ours['lost'] or 0), 'yes' if ours['lost'] is not None else 'no'))
    print('conntrack -E -e NEW: %d lines (%.1f%%)' % (cli_lines[0], 100.0 * cli_lines[0] / flows))
    print('load average at end: %.2f %.2f %.2f' % os.getloadavg())


if __name__ == '__main__':
    main()
