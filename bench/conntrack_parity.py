# SPDX-License-Identifier: GPL-3.0-or-later
"""The conntrack codec against the conntrack CLI on the running kernel.

Lab check, not a unit test (needs root, iproute2, iptables, conntrack-tools):
for each filter, a scratch namespace <SNF_LAB_PREFIX or snf>-ct-parity-<pid> is filled with real
SNAT'd flows, then the entries conntrack_info lists, and those
conntrack_flush deletes, must be exactly the ones `conntrack -L` selects with
the same filter, and nothing else may go. It is how a kernel that applies a
CTA_FILTER wrongly (Linux 6.18 compares IPv6 addresses inverted) shows up.
The namespace is removed at the end, also on failure or Ctrl-C; the host's
own table, rules and sysctls are never touched.

Then, on one filled table, the summary's counts (unreplied, assured, TCP
states, half-open, top sources, translated sources, zones, marks) against
`conntrack -L` with the matching filter, and conntrack_stats' counters
against `conntrack -S` and `conntrack -C`.

    sudo .venv/bin/python bench/conntrack_parity.py
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), '.cache', 'collections'))
sys.path.insert(0, HERE)

import _lab  # noqa: E402
from ansible_collections.stateful.netfilter.plugins.module_utils import _conntrack, _ctfilters, _ctstats, _ctsummary  # noqa: E402

# (module filter, the same filter for `conntrack -L`)
CASES = [
    ({'src': '10.0.0.2'}, ('-f', 'ipv4', '-s', '10.0.0.2')),
    ({'src': 'fd00::2'}, ('-f', 'ipv6', '-s', 'fd00::2')),
    ({'reply_src': '198.51.100.3'}, ('-f', 'ipv4', '--reply-src', '198.51.100.3')),
    ({'reply_src': '198.51.100.3', 'protocol': 'udp', 'reply_sport': 1024},
     ('-f', 'ipv4', '-p', 'udp', '--reply-src', '198.51.100.3', '--reply-port-src', '1024')),
    ({'dst': '198.51.100.8', 'protocol': 'udp', 'dport': 1024},
     ('-f', 'ipv4', '-p', 'udp', '-d', '198.51.100.8', '--dport', '1024')),
    ({'dst': '2001:db8:2::1', 'protocol': 'udp', 'dport': 1024},
     ('-f', 'ipv6', '-p', 'udp', '-d', '2001:db8:2::1', '--dport', '1024')),
    ({'mark': '0x42'}, ('-m', '0x42')),
    ({'protocol': 'tcp', 'nat': 'snat'}, ('-p', 'tcp', '--src-nat')),
    ({'protocol': 'icmp'}, ('-p', 'icmp')),
    ({'reply_dst': '2001:db8:1::1', 'protocol': 'udp'}, ('-f', 'ipv6', '-p', 'udp', '--reply-dst', '2001:db8:1::1')),
    ({'zone': 7}, ('-w', '7')),
    ({'zone': 9, 'zone_dir': 'orig'}, ('--orig-zone', '9')),
    ({'zone': 11, 'zone_dir': 'reply'}, ('--reply-zone', '11')),
    # Status filters and their negation (issue 16); the local TCP connections are the replied, assured ones.
    ({'status': ['UNREPLIED']}, ('-u', 'UNREPLIED')),
    ({'status': ['SEEN_REPLY']}, ('-u', 'SEEN_REPLY')),
    ({'status': ['ASSURED']}, ('-u', 'ASSURED')),
    ({'status': ['ASSURED'], 'protocol': 'tcp'}, ('-u', 'ASSURED', '-p', 'tcp')),
    ({'protocol': 'icmp', 'icmp_type': 8}, ('-p', 'icmp', '--icmp-type', '8')),
    ({'protocol': 'icmp', 'icmp_type': 8, 'icmp_code': 0}, ('-p', 'icmp', '--icmp-type', '8', '--icmp-code', '0')),
    ({'protocol': 'icmpv6', 'icmp_type': 128}, ('-f', 'ipv6', '-p', 'icmpv6', '--icmpv6-type', '128')),
]
FILL = dict(udp_per_source=12, tcp_per_source=3, icmp_per_source=2, v6_udp_per_source=4, v6_tcp_per_source=1,
            v6_icmp_per_source=1, local_tcp=2)


def count(ns, *args):
    """Entries `conntrack -L ARGS` shows (its summary line on stderr)."""
    text = _lab.in_ns(ns, 'conntrack', '-L', *args).stderr
    return int(text.split('(conntrack-tools):')[1].split()[0])


def ids(ns, *args):
    """The sorted ids of the entries `conntrack -L -o id ARGS` prints."""
    lines = _lab.in_ns(ns, 'conntrack', '-L', '-o', 'id', *args).stdout.splitlines()
    return sorted(int(line.rsplit('id=', 1)[1].split()[0]) for line in lines if 'id=' in line)


def main():
    _lab.private_run()
    failures = 0
    # SNF_LAB_PREFIX keeps concurrent runs' namespaces apart (as the lab's).
    with _lab.namespace('%s-ct-parity-%d' % (os.environ.get('SNF_LAB_PREFIX', 'snf'), os.getpid())) as ns:
        _lab.setup_gateway(ns)
        _lab.in_ns(ns, 'iptables', '-t', 'mangle', '-A', 'OUTPUT', '-d', '198.51.100.8',
                   '-j', 'CONNMARK', '--set-mark', '0x42')
        _lab.in_ns(ns, 'iptables', '-t', 'raw', '-A', 'OUTPUT', '-d', '198.51.100.7', '-j', 'CT', '--zone', '7')
        _lab.in_ns(ns, 'iptables', '-t', 'raw', '-A', 'OUTPUT', '-d', '198.51.100.6', '-j', 'CT', '--zone-orig', '9')
        _lab.in_ns(ns, 'iptables', '-t', 'raw', '-A', 'OUTPUT', '-d', '198.51.100.5', '-j', 'CT', '--zone-reply', '11')
        for params, cli in CASES:
            _lab.fill(ns, **FILL)
            total, wanted = count(ns), count(ns, *cli)
            flt = _ctfilters.build_filter(params)
            # The entries as conntrack_info writes them (streamed), by id against the CLI's.
            texts = []
            listed = _conntrack.list_entries(flt, netns=ns, limit=0, write=texts.extend)['count']
            same = sorted(json.loads(text)['id'] for text in texts) == ids(ns, *cli)
            deleted = _conntrack.flush_entries(flt, netns=ns)['deleted']
            left, others = count(ns, *cli), count(ns) - (total - wanted)
            ok = wanted > 0 and listed == deleted == wanted == len(texts) and same and left == 0 and others == 0
            failures += not ok
            print('%-4s %-70r CLI %3d listed %3d deleted %3d left %d, others lost %d' % (
                'ok' if ok else 'FAIL', params, wanted, listed, deleted, left, -others))
        _lab.fill(ns, **FILL)
        failures += summary_parity(ns)
        failures += stats_parity(ns)
    return 1 if failures else 0


def check(label, ours, cli):
    ok = ours == cli
    print('%-4s %-70s module %r CLI %r' % ('ok' if ok else 'FAIL', label, ours, cli))
    return 0 if ok else 1


def summary_parity(ns):
    """The summary's counts against `conntrack -L` with the filter each count stands for."""
    failures = 0
    summary = _conntrack.list_entries(_ctfilters.build_filter({}), netns=ns, summary_only=True,
                                      details=_ctsummary.DETAILS)['summary']
    failures += check('summary: unreplied', summary['unreplied'], count(ns, '-u', 'UNREPLIED'))
    failures += check('summary: assured', summary['assured'], count(ns, '-u', 'ASSURED'))
    for state, number in sorted(summary['tcp_states'].items()):
        failures += check('summary: tcp_states.%s' % state, number, count(ns, '-p', 'tcp', '--state', state))
    failures += check('summary: half_open', summary['half_open'],
                      count(ns, '-p', 'tcp', '--state', 'SYN_SENT') + count(ns, '-p', 'tcp', '--state', 'SYN_RECV'))
    for top in summary['top_sources']:
        family = 'ipv6' if ':' in top['address'] else 'ipv4'
        failures += check('summary: top source %s' % top['address'], top['count'],
                          count(ns, '-f', family, '-s', top['address']))
    for top in summary['top_translated_sources']:
        family = 'ipv6' if ':' in top['address'] else 'ipv4'
        failures += check('summary: translated source %s' % top['address'], top['count'],
                          count(ns, '-f', family, '--src-nat', '--reply-dst', top['address']))
    for zone in summary['zones']:
        option = {'both': '-w', 'orig': '--orig-zone', 'reply': '--reply-zone'}[zone['zone_dir']]
        if zone['zone'] != 0:
            failures += check('summary: zone %d %s' % (zone['zone'], zone['zone_dir']), zone['count'],
                              count(ns, option, str(zone['zone'])))
    for mark in summary['marks']:
        failures += check('summary: mark %d' % mark['mark'], mark['count'], count(ns, '-m', str(mark['mark'])))
    return failures


def stats_parity(ns):
    """conntrack_stats' counters against `conntrack -S` and `-C` (the namespace is quiet in between)."""
    failures = 0
    stats = _ctstats.read_stats(ns)
    cli = {}
    for line in _lab.in_ns(ns, 'conntrack', '-S').stdout.splitlines():
        fields = dict(field.split('=') for field in line.split())
        cpu = int(fields.pop('cpu'))
        cli[cpu] = dict((key, int(value)) for key, value in fields.items())
    ours = dict((row['cpu'], dict((key, value) for key, value in row.items() if key != 'cpu'))
                for row in stats['per_cpu'])
    failures += check('stats: per-CPU counters (conntrack -S)', ours, cli)
    failures += check('stats: count (conntrack -C)', stats['count'], int(_lab.in_ns(ns, 'conntrack', '-C').stdout))
    return failures


if __name__ == '__main__':
    sys.exit(main())
