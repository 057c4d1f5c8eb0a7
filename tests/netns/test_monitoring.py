# SPDX-License-Identifier: GPL-3.0-or-later
"""Monitoring (issue 16) against the kernel: statistics, expectations, the richer summary, filters, events.

Every figure is checked against traffic the test sent itself, between the
lab's namespace (the "server", whose table is read) and a client namespace
over a veth pair, in a private mount and network namespace (conftest.Lab).
"""
import json
import os
import subprocess
import sys

from netns_lab import COLLECTIONS, MODULES, RUN_MODULE, wait_for

SERVER, CLIENT = '10.99.0.1', '10.99.0.2'

# Sends what argv asks from inside the client namespace: `udp PORT COUNT SIZE` sends COUNT datagrams
# of SIZE bytes to PORT from COUNT different source ports, each once; `bogus COUNT` sends TCP
# segments with SYN, FIN and RST all set (conntrack counts them invalid), `bogus-forever 0` one every
# 50 ms until killed; `ping COUNT` echo requests.
SEND = r'''
import socket, struct, sys, time
server, kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == 'udp':
    port, size, repeat = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(('', 20000 + i))
        for dummy in range(repeat):
            s.sendto(b'x' * size, (server, port))
        s.close()
elif kind in ('bogus', 'bogus-forever'):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    for i in range(count) if kind == 'bogus' else iter(int, 1):
        s.sendto(struct.pack('!HHIIBBHHH', 30000 + i % 1000, 9, 1, 0, 5 << 4, 0x07, 1024, 0, 0), (server, 0))
        if kind == 'bogus-forever':
            time.sleep(0.05)
elif kind == 'ping':
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    for i in range(count):
        body = struct.pack('!BBHHH', 8, 0, 0, 100 + i, 1)
        total = sum(struct.unpack('!4H', body))
        total = (total & 0xffff) + (total >> 16)
        s.sendto(struct.pack('!BBHHH', 8, 0, ~total & 0xffff, 100 + i, 1), (server, 0))
'''


def send(lab, *args):
    lab.run([sys.executable, '-c', SEND, SERVER] + [str(arg) for arg in args], netns='client')


def tracked(lab, acct=False):
    """The lab's namespace tracks connections (a rule that needs conntrack), with accounting if asked."""
    lab.link('client', SERVER, CLIENT)
    # Neighbours resolved (and the link up) before anything is tracked: no packet of a test waits or is lost.
    assert wait_for(lambda: not lab.connects('client', SERVER, 9, 0.5) and 'REACHABLE' in lab.run(
        ['ip', 'neigh', 'show', CLIENT]), 10)
    lab.restore('*filter\n-A INPUT -m conntrack --ctstate NEW,ESTABLISHED,INVALID\nCOMMIT\n')
    if acct:
        lab.run(['sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_acct=1'])


def background(lab, name, args):
    """Start a module in the lab's namespace; finish(proc) waits for it and returns its result."""
    path = os.path.join(lab.tmp, 'args-%s.json' % name)
    with open(path, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, LC_ALL='C')
    return subprocess.Popen(lab.cmd([sys.executable, '-c', RUN_MODULE, '022', os.path.join(MODULES, name + '.py'),
                                     path]), stdout=subprocess.PIPE, env=env)


def finish(proc):
    out = proc.communicate(timeout=60)[0].decode('utf-8', 'replace')
    result = json.loads(out[out.index('{'):])
    assert not result.get('failed'), result
    return result


def netfilter_sockets(lab):
    """The multicast groups (bit mask) of each netfilter netlink socket open in the lab's namespace."""
    lines = lab.run(['cat', '/proc/net/netlink']).splitlines()[1:]
    return [int(line.split()[3], 16) for line in lines if line.split()[1] == '12']


def info(lab, **args):
    result = lab.module('conntrack_info', dict(dict(limit=0), **args))
    assert not result.get('failed'), result
    return result


def test_statistics_count_the_invalid_packets_sent_and_match_the_table(lab):
    tracked(lab)
    send(lab, 'bogus', 7)
    send(lab, 'udp', 9, 5, 1, 1)
    stats = lab.module('conntrack_stats', {})
    assert not stats.get('failed'), stats
    assert [row['cpu'] for row in stats['per_cpu']] == sorted(row['cpu'] for row in stats['per_cpu'])
    assert len(stats['per_cpu']) >= 1
    # A fresh namespace: its counters start at zero; the kernel counts each bogus segment once.
    assert stats['totals']['invalid'] == 7, stats['totals']
    assert stats['totals']['invalid'] == sum(row['invalid'] for row in stats['per_cpu'])
    assert stats['count'] == int(lab.run(['cat', '/proc/sys/net/netfilter/nf_conntrack_count'])) == 9
    assert stats['max'] == int(lab.run(['cat', '/proc/sys/net/netfilter/nf_conntrack_max']))
    assert stats['checks']['table_usage_percent']['evaluated'] and stats['anomalies'] == []
    assert stats['checks']['drop_increase'] == dict(evaluated=False, threshold=0, fired=False,
                                                    reason='needs two samples (set interval)')
    # The busiest source holds every entry: the share check fires once it is allowed to look.
    checked = lab.module('conntrack_stats', dict(summary=True, thresholds=dict(min_entries=5, top_source_percent=50)))
    assert checked['summary']['top_sources'] == [{'address': CLIENT, 'count': 9}], checked
    assert checked['checks']['top_source_percent'] == dict(evaluated=True, threshold=50.0, value=100.0,
                                                           fired=True, source=CLIENT)
    assert [anomaly['check'] for anomaly in checked['anomalies']] == ['top_source_percent']
    assert not checked['checks']['half_open_percent']['evaluated']      # no TCP entries


def test_a_second_sample_sees_the_counters_grow_and_the_check_fires(lab):
    tracked(lab)
    # The module samples, sleeps 4 s, samples again, while invalid segments keep arriving.
    sender = subprocess.Popen(lab.cmd([sys.executable, '-c', SEND, SERVER, 'bogus-forever', '0'], 'client'))
    try:
        assert wait_for(lambda: lab.module('conntrack_stats', {})['totals']['invalid'] > 0, 10)
        stats = finish(background(lab, 'conntrack_stats', dict(interval=4, thresholds=dict(table_usage_percent=100))))
    finally:
        sender.kill()
        sender.wait()
    grown = stats['delta']['counters']['invalid']
    # About 80 in 4 s; the exact number depends on scheduling, not on the module.
    assert 0 < grown < stats['totals']['invalid'], (stats['delta'], stats['totals'])
    assert abs(stats['delta']['rates']['invalid'] - grown / stats['delta']['seconds']) < 0.1
    assert stats['delta']['seconds'] >= 4
    # The other counters did not move: the increase checks are evaluated and do not fire.
    for name in ('drop_increase', 'early_drop_increase', 'insert_failed_increase'):
        assert stats['checks'][name]['evaluated'] and stats['checks'][name]['value'] == 0, stats['checks']
    assert stats['anomalies'] == []


def test_the_summary_names_the_culprits_and_the_status_filters_select_like_the_cli(lab):
    tracked(lab, acct=True)
    lab.restore('*raw\n-A PREROUTING -p udp --dport 7000 -j CT --zone 5\nCOMMIT\n'
                '*mangle\n-A PREROUTING -p udp --dport 7001 -j CONNMARK --set-mark 0x7\nCOMMIT\n')
    lab.listen(SERVER, 8080)
    for dummy in range(3):
        assert lab.connects('client', SERVER, 8080)
    send(lab, 'udp', 6, 7000, 100, 2)      # 6 unreplied flows in zone 5, 2 x 128 bytes each
    send(lab, 'udp', 4, 7001, 10, 1)       # 4 unreplied flows marked 0x7, 38 bytes each
    send(lab, 'ping', 2)                    # 2 replied ICMP echo entries
    result = info(lab, summary_only=True, summary_details=['zones', 'marks', 'talkers'])
    summary = result['summary']
    assert result['count'] == 15 and not result.get('entries')
    assert summary['protocols'] == {'tcp': 3, 'udp': 10, 'icmp': 2}
    assert summary['unreplied'] == 10 and summary['half_open'] == 0
    assert summary['assured'] == 3, summary     # the completed TCP connections
    assert summary['top_sources'] == [{'address': CLIENT, 'count': 15}]
    assert summary['top_translated_sources'] == [] and summary['nat'] == {'none': 15}
    assert {'zone': 5, 'zone_dir': 'both', 'count': 6} in summary['zones']
    assert sum(zone['count'] for zone in summary['zones']) == 15
    assert {'mark': 7, 'count': 4} in summary['marks']
    assert summary['accounted'] == 15
    talker = summary['top_talkers_bytes'][0]
    assert talker['address'] == CLIENT and talker['entries'] == 15
    udp_bytes = 6 * 2 * 128 + 4 * 38
    assert talker['bytes'] > udp_bytes and talker['packets'] > 6 * 2 + 4
    # Status filters and their negations partition the table.
    unreplied = info(lab, status=['UNREPLIED'])
    assert unreplied['count'] == 10 and all('SEEN_REPLY' not in entry['status'] for entry in unreplied['entries'])
    replied = info(lab, status=['SEEN_REPLY'])
    assert replied['count'] == 5
    assured, not_assured = info(lab, status=['ASSURED']), info(lab, status=['!ASSURED'])
    assert assured['count'] + not_assured['count'] == 15 and assured['count'] == 3
    assert not set(e['id'] for e in assured['entries']) & set(e['id'] for e in not_assured['entries'])
    echo = info(lab, protocol='icmp', icmp_type=8)
    assert echo['count'] == 2 and {entry['orig']['id'] for entry in echo['entries']} == {100, 101}
    assert info(lab, protocol='icmp', icmp_type=0)['count'] == 0
    assert info(lab, protocol='icmp', icmp_type=8, icmp_code=0)['count'] == 2
    # Bad input names the option and reads nothing.
    for args, param in ((dict(status=['ASSURED', '!ASSURED']), 'status'), (dict(status=['UNREPLYED']), 'status'),
                        (dict(icmp_type=8), 'icmp_type'), (dict(protocol='tcp', icmp_code=1), 'icmp_code'),
                        (dict(protocol='icmp', icmp_type=256), 'icmp_type'),
                        (dict(summary_details=['bytes']), 'summary_details')):
        failed = lab.module('conntrack_info', args)
        assert failed.get('failed') and param in failed['msg'], (args, failed)


def test_the_ftp_helper_expectation_is_listed_and_filtered(lab):
    tracked(lab)
    lab.restore('*raw\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n')
    server = ('import socket, sys, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);'
              's.bind((sys.argv[1], 21)); s.listen(1); print("up", flush=True); c, a = s.accept();'
              'c.sendall(b"220 ready\\r\\n"); time.sleep(0.3);'
              'c.sendall(b"227 Entering Passive Mode (10,99,0,1,195,80).\\r\\n"); time.sleep(60)')
    proc = subprocess.Popen(lab.cmd([sys.executable, '-c', server, SERVER]), stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b'up\n'
    client = ('import socket, sys, time; c = socket.create_connection((sys.argv[1], 21)); data = b"";\n'
              'while b"227" not in data: data += c.recv(100)\n'
              'print("got", flush=True); time.sleep(60)')
    peer = subprocess.Popen(lab.cmd([sys.executable, '-c', client, SERVER], 'client'), stdout=subprocess.PIPE)
    assert peer.stdout.readline() == b'got\n'
    stats = lab.module('conntrack_stats', dict(expectations=True))
    assert not stats.get('failed'), stats
    assert len(stats['expectations']) == 1, stats['expectations']
    exp = stats['expectations'][0]
    assert exp['helper'] == 'ftp' and exp['protocol'] == 'tcp' and exp['family'] == 'ipv4'
    assert exp['tuple']['dst'] == SERVER and exp['tuple']['dport'] == 195 * 256 + 80
    assert exp['tuple']['src'] == CLIENT and exp['master']['dport'] == 21 and exp['master']['src'] == CLIENT
    assert stats['expect_totals']['create'] >= 1
    for flt, found in ((dict(helper='ftp'), 1), (dict(helper='sip'), 0), (dict(protocol='udp'), 0),
                       (dict(dst=SERVER, dport=50000), 1), (dict(dport=50001), 0), (dict(family='ipv6'), 0)):
        listed = lab.module('conntrack_stats', dict(expect_filter=flt))
        assert len(listed['expectations']) == found, (flt, listed)
    for args, param in ((dict(expect_filter=dict(protocol='icmp')), 'expect_filter.protocol'),
                        (dict(interval=0), 'interval'), (dict(interval=7200), 'interval'),
                        (dict(thresholds=dict(table_usage_percent=101)), 'thresholds.table_usage_percent'),
                        (dict(thresholds=dict(drop_increase=-1)), 'thresholds.drop_increase')):
        failed = lab.module('conntrack_stats', args)
        assert failed.get('failed') and failed['msg'].startswith(param), (args, failed)


def test_events_count_new_and_destroyed_flows_of_the_filter(lab):
    tracked(lab)
    proc = background(lab, 'conntrack_events', dict(duration=8, protocol='udp', src=CLIENT, sample=2))
    try:
        assert wait_for(lambda: any(groups for groups in netfilter_sockets(lab)), 30, 0.05)
        send(lab, 'udp', 20, 5000, 10, 1)
        send(lab, 'ping', 3)        # not UDP: filtered out
        flushed = lab.module('conntrack_flush', dict(protocol='udp', src=CLIENT))
        assert flushed['deleted'] == 20, flushed
    finally:
        events = finish(proc)
    assert events['events'] == {'new': 20, 'destroy': 20}, events
    assert events['complete'] and events['overruns'] == 0 and events['lost'] == 0
    assert events['top_new_sources'] == [{'address': CLIENT, 'count': 20}]
    assert events['top_new_ports'] == [{'protocol': 'udp', 'port': 5000, 'count': 20}]
    assert [entry['event'] for entry in events['sample']] == ['new', 'new']
    assert events['sample'][0]['orig']['src'] == CLIENT
    for args, param in ((dict(duration=0), 'duration'), (dict(duration=3600), 'duration'),
                        (dict(sample=-1), 'sample'), (dict(duration=1, status=['BOGUS']), 'status')):
        failed = lab.module('conntrack_events', args)
        assert failed.get('failed') and failed['msg'].startswith(param), (args, failed)
