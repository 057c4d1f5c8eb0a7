# SPDX-License-Identifier: GPL-3.0-or-later
"""ruleset migrate: a scope switched between the iptables and nftables back ends without a gap (issue 15 item 5).

The lab's namespace is a gateway between a client and a peer namespace, both
families. A firewall scope with a FORWARD policy of DROP lets one UDP port
through. While the client floods the peer with forbidden UDP datagrams and TCP
SYNs (the reliability scenario's flood.py) and sends allowed datagrams, the
scope is switched iptables -> nftables -> iptables ... with `migrate: true`;
the peer counts every packet it receives (the reliability scenario's
count.py, AF_PACKET): forbidden ones must be 0, allowed ones must keep coming.
The same method as the reliability scenario's atomicity-under-traffic check.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from netns_lab import ROOT, wait_for

pytestmark = pytest.mark.skipif(shutil.which('nft') is None, reason='nft is not installed')

FILES = os.path.join(ROOT, 'tests', 'molecule', 'reliability', 'files')
CLIENT_NS, PEER_NS = 'snf-h35-cl', 'snf-h35-peer'
GW4_C, CLIENT4, GW4_P, PEER4 = '10.95.0.1', '10.95.0.2', '10.96.0.1', '10.96.0.2'
GW6_C, CLIENT6, GW6_P, PEER6 = 'fd95::1', 'fd95::2', 'fd96::1', 'fd96::2'
ALLOWED, FORBIDDEN_UDP, FORBIDDEN_TCP = 7001, 7002, 7003
# Switches of the scope (each one a module run); SNF_MIGRATE_SWITCHES asks for more.
SWITCHES = int(os.environ.get('SNF_MIGRATE_SWITCHES', '6'))
# Allowed datagrams to both peers, one pair every 5 ms, until STOPFILE exists; prints the counts sent.
ALLOWED_SENDER = (
    'import json, os, socket, sys, time\n'
    'port, stop = int(sys.argv[3]), sys.argv[4]\n'
    'targets = (("ipv4", socket.socket(socket.AF_INET, socket.SOCK_DGRAM), sys.argv[1]),\n'
    '           ("ipv6", socket.socket(socket.AF_INET6, socket.SOCK_DGRAM), sys.argv[2]))\n'
    'sent = dict(ipv4=0, ipv6=0)\n'
    'while not os.path.exists(stop):\n'
    '    for name, sock, host in targets:\n'
    '        sock.sendto(b"allowed", (host, port)); sent[name] += 1\n'
    '    time.sleep(0.005)\n'
    'print(json.dumps(sent), flush=True)\n')

FOREIGN_NFT = 'table inet foreign {\n\tchain forward {\n\t\ttype filter hook forward priority filter + 10; ' \
              'policy accept;\n\t\tudp dport 9999 counter packets 0 bytes 0 accept\n\t}\n}\n'


def firewall(backend, **extra):
    """The DROP-policy firewall scope, on one back end, migrating from the other."""
    args = dict(table='filter', family='both', scope='MIG', state='overridden', backend=backend, migrate=True,
                policies={'FORWARD': 'DROP'},
                chains=[dict(name='SNF-MIG-FWD', hook='FORWARD', rules=[
                    dict(name='established', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
                    dict(name='allowed', protocol='udp', destination_port=ALLOWED, jump='ACCEPT')])])
    args.update(extra)
    return args


def gateway(lab):
    """client -- lab namespace (forwarding, both families) -- peer."""
    ends = ((CLIENT_NS, GW4_C, CLIENT4, GW6_C, CLIENT6, 'snf0'), (PEER_NS, GW4_P, PEER4, GW6_P, PEER6, 'snf2'))
    for peer, gw4, host4, gw6, host6, dev in ends:
        lab.add_netns(peer)
        lab.run(['ip', 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer])
        lab.run(['ip', 'addr', 'add', gw4 + '/24', 'dev', dev])
        lab.run(['ip', 'addr', 'add', gw6 + '/64', 'dev', dev, 'nodad'])
        lab.run(['ip', 'link', 'set', dev, 'up'])
        lab.run(['ip', 'addr', 'add', host4 + '/24', 'dev', 'eth0'], netns=peer)
        lab.run(['ip', 'addr', 'add', host6 + '/64', 'dev', 'eth0', 'nodad'], netns=peer)
        lab.run(['ip', 'link', 'set', 'eth0', 'up'], netns=peer)
        lab.run(['ip', 'route', 'add', 'default', 'via', gw4], netns=peer)
        lab.run(['ip', '-6', 'route', 'add', 'default', 'via', gw6], netns=peer)
        # The gateway knows its neighbours before the traffic starts (a resolution under a flood drops packets).
        mac = json.loads(lab.run(['ip', '-j', 'link', 'show', 'eth0'], netns=peer))[0]['address']
        for address in (host4, host6):
            lab.run(['ip', 'neigh', 'replace', address, 'lladdr', mac, 'dev', dev, 'nud', 'permanent'])
    lab.run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
    lab.run(['sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1'])


def ruleset(lab, **args):
    return lab.module('ruleset', args)


def snapshot(lab):
    """Everything outside the scope: the iptables tables without SNF-MIG chains and hooks, the foreign table."""
    ipt = [line for family in ('ipv4', 'ipv6') for line in lab.save('filter', family=family).split('\n')
           if line and not line.startswith('#') and 'SNF-MIG' not in line]
    # Counters of the built-in chains' policy lines move with the traffic; the FORWARD policy is the scope's.
    ipt = [line.split(' [')[0] if line.startswith(':') else line for line in ipt if not line.startswith(':FORWARD ')]
    return ipt, lab.run(['nft', '-t', 'list', 'table', 'inet', 'foreign'])


def holds(lab):
    """(iptables holds the scope, nftables holds it)."""
    ipt = any('SNF-MIG' in lab.save('filter', family=family) for family in ('ipv4', 'ipv6'))
    return ipt, 'snf_filter_MIG' in lab.run(['nft', 'list', 'tables'])


class Traffic(object):
    """The flood of forbidden packets and the allowed datagrams from the client, counted at the peer."""

    def __init__(self, lab):
        self.lab = lab
        self.stop = os.path.join(lab.tmp, 'stop')
        self.counted, self.flooded = os.path.join(lab.tmp, 'counted.json'), os.path.join(lab.tmp, 'flooded.json')
        for path in (self.stop, self.counted, self.flooded):
            if os.path.exists(path):
                os.remove(path)
        self.load = [os.getloadavg()[0]]
        self.started = time.time()
        lab.run([sys.executable, os.path.join(FILES, 'count.py'), CLIENT4, CLIENT6, self.stop, self.counted, '600'],
                PEER_NS)
        lab.run([sys.executable, os.path.join(FILES, 'flood.py'), PEER4, PEER6, str(FORBIDDEN_UDP),
                 str(FORBIDDEN_TCP), self.stop, self.flooded, '600', '100000000'], CLIENT_NS)
        self.sender = subprocess.Popen(lab.cmd([sys.executable, '-c', ALLOWED_SENDER, PEER4, PEER6, str(ALLOWED),
                                                self.stop], CLIENT_NS), stdout=subprocess.PIPE)

    def end(self):
        """Stop everything; the report (what was sent, what the peer received, seconds, load at start and end)."""
        open(self.stop, 'w').close()
        sent = json.loads(self.sender.stdout.readline())
        self.sender.wait()
        assert wait_for(lambda: os.path.exists(self.counted) and os.path.exists(self.flooded), 15)
        with open(self.counted) as handle:
            peer = json.load(handle)
        with open(self.flooded) as handle:
            flood = json.load(handle)
        return dict(seconds=round(time.time() - self.started, 1), load=self.load + [os.getloadavg()[0]],
                    flood=flood, allowed_sent=sent, at_peer=peer)


def forbidden_at_peer(report, family):
    return report['at_peer'][family].get('udp/%d' % FORBIDDEN_UDP, 0) + \
        report['at_peer'][family].get('tcp/%d' % FORBIDDEN_TCP, 0)


def assert_no_gap(report):
    for family in ('ipv4', 'ipv6'):
        # The flood ran through every switch, and not one forbidden packet reached the peer.
        assert report['flood'][family]['udp'] > 1000 and report['flood'][family]['tcp'] > 50, report
        assert forbidden_at_peer(report, family) == 0, report
        # The allowed datagrams kept coming: every one sent arrived.
        sent = report['allowed_sent'][family]
        assert sent > 100 and report['at_peer'][family].get('udp/%d' % ALLOWED, 0) == sent, report


def test_switching_back_ends_under_a_flood_leaks_no_forbidden_packet_and_keeps_allowed_ones(lab):
    gateway(lab)
    lab.run(['nft', '-f', '-'], data=FOREIGN_NFT.encode())
    lab.restore('*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -s 192.0.2.0/24 -j RETURN\n'
                '-A FORWARD -p udp --dport 9998 -j ACCEPT\nCOMMIT\n')
    assert ruleset(lab, **firewall('iptables'))['changed'] is True
    foreign = snapshot(lab)
    traffic = Traffic(lab)
    seconds = []
    try:
        backend = 'iptables'
        for dummy in range(SWITCHES):
            backend = 'nftables' if backend == 'iptables' else 'iptables'
            # Check mode predicts the switch, the switch moves the scope, a re-run changes nothing.
            check = ruleset(lab, _ansible_check_mode=True, _ansible_diff=True, **firewall(backend))
            assert check['changed'] is True and check['migrated']['changed'] is True, check
            assert holds(lab) == ((True, False) if backend == 'nftables' else (False, True))
            begin = time.time()
            done = ruleset(lab, _ansible_diff=True, **firewall(backend))
            seconds.append(round(time.time() - begin, 2))
            assert done['changed'] is True and done['migrated']['changed'] is True, done
            assert done['diff'] == check['diff']
            assert holds(lab) == ((False, True) if backend == 'nftables' else (True, False))
            again = ruleset(lab, **firewall(backend))
            assert again['changed'] is False and again['migrated']['changed'] is False, again
            assert snapshot(lab) == foreign
            time.sleep(0.3)
    finally:
        report = traffic.end()
    report.update(switches=SWITCHES, switch_seconds=seconds)
    print(json.dumps(report))
    assert_no_gap(report)
    assert snapshot(lab) == foreign


def test_the_method_sees_a_gap_when_the_old_back_end_goes_first(lab):
    """The control: the same switch done in two runs the wrong way round (remove, then install) leaks."""
    gateway(lab)
    assert ruleset(lab, **firewall('iptables', migrate=False))['changed'] is True
    traffic = Traffic(lab)
    try:
        for backend in ('nftables', 'iptables'):
            other = 'iptables' if backend == 'nftables' else 'nftables'
            assert ruleset(lab, **firewall(other, state='deleted', migrate=False,
                                           policies={'FORWARD': 'ACCEPT'}))['changed'] is True
            assert ruleset(lab, **firewall(backend, migrate=False))['changed'] is True
    finally:
        report = traffic.end()
    print(json.dumps(report))
    assert forbidden_at_peer(report, 'ipv4') > 0 and forbidden_at_peer(report, 'ipv6') > 0, report


def strip(save):
    """iptables-save output without its comments and counters."""
    return [line.split(' [')[0] for line in save.split('\n') if not line.startswith('#')]


def read_record(lab, state_dir):
    return json.loads(lab.run(['cat', state_dir + '/state.json']))


def test_an_unconfirmed_migration_is_rolled_back_on_both_back_ends_without_a_gap(lab):
    gateway(lab)
    lab.run(['nft', '-f', '-'], data=FOREIGN_NFT.encode())
    assert ruleset(lab, **firewall('iptables'))['changed'] is True
    iptables_before = [lab.save('filter', family=family) for family in ('ipv4', 'ipv6')]
    foreign = snapshot(lab)
    traffic = Traffic(lab)
    try:
        # iptables -> nftables, never confirmed: the timer puts the iptables chains back, then removes the table.
        pushed = ruleset(lab, rollback_timeout=5, **firewall('nftables'))
        assert pushed['changed'] is True and pushed['rollback']['armed'] is True, pushed
        assert holds(lab) == (False, True)
        # While it is pending, the scope is refused on either back end.
        for backend in ('iptables', 'nftables'):
            refused = ruleset(lab, **firewall(backend, chains=[]))
            assert refused.get('failed') and pushed['rollback']['id'] in refused['msg'], refused
        state_dir = pushed['rollback']['state_dir']
        assert wait_for(lambda: read_record(lab, state_dir)['status'] != 'pending', 20)
        record = read_record(lab, state_dir)
        assert record['status'] == 'rolled_back' and record['result']['errors'] == [], record
        assert record['result']['migrated']['restored'] == ['ipv4', 'ipv6'], record
        assert holds(lab) == (True, False)
        assert [strip(lab.save('filter', family=f)) for f in ('ipv4', 'ipv6')] == [strip(t) for t in iptables_before]
        # A re-run of the iptables side finds its scope as it was.
        assert ruleset(lab, **firewall('iptables'))['changed'] is False
        # nftables -> iptables, never confirmed: the table comes back, then the chains go.
        assert ruleset(lab, **firewall('nftables'))['changed'] is True
        table_before = lab.run(['nft', 'list', 'table', 'inet', 'snf_filter_MIG'])
        pushed = ruleset(lab, rollback_timeout=5, **firewall('iptables'))
        assert pushed['changed'] is True and pushed['rollback']['armed'] is True, pushed
        assert holds(lab) == (True, False)
        state_dir = pushed['rollback']['state_dir']
        assert wait_for(lambda: read_record(lab, state_dir)['status'] != 'pending', 20)
        record = read_record(lab, state_dir)
        assert record['status'] == 'rolled_back' and record['result']['errors'] == [], record
        assert holds(lab) == (False, True)
        assert lab.run(['nft', 'list', 'table', 'inet', 'snf_filter_MIG']) == table_before
        # Confirmed (as the action plugin does), the migration stays.
        pushed = ruleset(lab, rollback_timeout=5, **firewall('iptables'))
        confirmed = lab.module('ruleset', dict(rollback_confirm=pushed['rollback']['id']))
        assert confirmed['changed'] is True and confirmed['rollback']['status'] == 'confirmed', confirmed
        time.sleep(6)
        assert holds(lab) == (True, False)
    finally:
        report = traffic.end()
    print(json.dumps(report))
    assert_no_gap(report)
    assert snapshot(lab) == foreign


def test_one_family_does_not_take_the_other_familys_chains_and_gathered_ignores_migrate(lab):
    assert ruleset(lab, **firewall('nftables', migrate=False))['changed'] is True
    table = lab.run(['nft', 'list', 'table', 'inet', 'snf_filter_MIG'])
    # The table holds both families: an IPv6 task does not remove it with the IPv4 chains in it.
    bad = ruleset(lab, **firewall('iptables', family='ipv6', policies={}))
    assert bad.get('failed') and bad['param'] == 'migrate', bad
    assert holds(lab) == (False, True) and lab.run(['nft', 'list', 'table', 'inet', 'snf_filter_MIG']) == table
    gathered = ruleset(lab, **firewall('iptables', state='gathered', chains=[]))
    assert gathered['changed'] is False and 'migrated' not in gathered and holds(lab) == (False, True), gathered
    # Both families move: then a re-run of one family on nftables takes back only its own iptables chains.
    assert ruleset(lab, **firewall('iptables'))['changed'] is True and holds(lab) == (True, False)
    ipv4 = ruleset(lab, **firewall('nftables', family='ipv4', policies={}))
    assert ipv4['changed'] is True and ipv4['migrated']['restore']['ipv4'], ipv4
    assert 'SNF-MIG' not in lab.save('filter', family='ipv4') and 'SNF-MIG' in lab.save('filter', family='ipv6')


def test_a_move_that_only_removes_the_other_side_is_armed_and_rolled_back_too(lab):
    """Both back ends hold the scope (a move interrupted, or an install by hand): the run that removes the old
    side changes nothing on its own, and its rollback still puts the old side back."""
    assert ruleset(lab, **firewall('iptables', migrate=False))['changed'] is True
    assert ruleset(lab, **firewall('nftables', migrate=False))['changed'] is True
    iptables_before = [strip(lab.save('filter', family=f)) for f in ('ipv4', 'ipv6')]
    check = ruleset(lab, _ansible_check_mode=True, **firewall('nftables'))
    assert check['changed'] is True and check['nft'] == '' and check['migrated']['changed'] is True, check
    pushed = ruleset(lab, rollback_timeout=5, **firewall('nftables'))
    assert pushed['changed'] is True and pushed['nft'] == '' and pushed['rollback']['armed'] is True, pushed
    assert holds(lab) == (False, True)
    state_dir = pushed['rollback']['state_dir']
    assert wait_for(lambda: read_record(lab, state_dir)['status'] != 'pending', 20)
    record = read_record(lab, state_dir)
    assert record['status'] == 'rolled_back' and record['result']['unchanged'] == ['ipv4', 'ipv6'], record
    assert holds(lab) == (True, True)
    assert [strip(lab.save('filter', family=f)) for f in ('ipv4', 'ipv6')] == iptables_before
