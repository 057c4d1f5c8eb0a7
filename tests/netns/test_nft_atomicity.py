# SPDX-License-Identifier: GPL-3.0-or-later
"""Atomicity under load on the nftables back end (issue 15, "Proven by").

The reliability scenario's atomicity case (tests/molecule/reliability/cases/
atomicity.yml) on `backend: nftables`, in private namespaces: the lab's
namespace routes between a client and a peer, both families, FORWARD policy
accept (no rule anywhere but the owned table's). The client floods the peer
with UDP datagrams to udp/6000 and TCP SYNs to tcp/6001 (the scenario's
flood.py), which every rule set drops, and sends datagrams to udp/6002, which
every rule set lets through; meanwhile 200 ruleset runs (each one module run,
one `nft -f` transaction replacing the owned table) alternate the chain name,
the hook position (base chain and priority) and the rule order. The peer
counts every packet it receives per family (count.py, AF_PACKET): forbidden
ones must be 0, allowed ones all of those sent. The control removes and adds
the same table in two `nft` runs, the non-atomic way, under the same flood,
and the counter sees leaks in both families.
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
CLIENT_NS, PEER_NS = 'snf-h37-cl', 'snf-h37-peer'
GW4_C, CLIENT4, GW4_P, PEER4 = '10.93.0.1', '10.93.0.2', '10.94.0.1', '10.94.0.2'
GW6_C, CLIENT6, GW6_P, PEER6 = 'fd93::1', 'fd93::2', 'fd94::1', 'fd94::2'
FORBIDDEN_UDP, FORBIDDEN_TCP, ALLOWED = 6000, 6001, 6002
# Ruleset runs under the flood (the scenario's 200); SNF_NFT_SWAPS asks for another number.
SWAPS = int(os.environ.get('SNF_NFT_SWAPS', '200'))
DROPS = [dict(name='drop-udp', protocol='udp', destination_port=FORBIDDEN_UDP, jump='DROP'),
         dict(name='drop-tcp', protocol='tcp', destination_port=FORBIDDEN_TCP, jump='DROP')]
TABLE = 'snf_filter_RELA'
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


def swap(item):
    """The item-th rule set of the scenario: chain A/B, hook first/last, rules reordered, an ever-new allow."""
    if item % 2 == 0:
        rules = [dict(name='allow', protocol='tcp', destination_port=7000 + item, jump='ACCEPT')] + DROPS
    else:
        rules = list(reversed(DROPS)) + [dict(name='allow', protocol='udp', destination_port=7000 + item,
                                              jump='ACCEPT')]
    return dict(backend='nftables', table='filter', family='both', scope='RELA', state='overridden',
                chains=[dict(name='SNF-RELA-%s' % ('B' if item % 2 == 0 else 'A'), hook='FORWARD',
                             hook_position='last' if item % 4 < 2 else 'first', rules=rules)])


def gateway(lab):
    """client -- lab namespace (forwarding, both families, FORWARD policy accept) -- peer."""
    lab.gateway((CLIENT_NS, 'snf0', [GW4_C + '/24', GW6_C + '/64'], [CLIENT4 + '/24', CLIENT6 + '/64'],
                 [['default', 'via', GW4_C], ['default', 'via', GW6_C]]),
                (PEER_NS, 'snf2', [GW4_P + '/24', GW6_P + '/64'], [PEER4 + '/24', PEER6 + '/64'],
                 [['default', 'via', GW4_P], ['default', 'via', GW6_P]]))
    # Neighbours known before the traffic starts (a resolution under a flood drops packets).
    for netns, dev, addresses in ((CLIENT_NS, 'snf0', (CLIENT4, CLIENT6)), (PEER_NS, 'snf2', (PEER4, PEER6))):
        mac = json.loads(lab.run(['ip', '-j', 'link', 'show', 'eth0'], netns=netns))[0]['address']
        for address in addresses:
            lab.run(['ip', 'neigh', 'replace', address, 'lladdr', mac, 'dev', dev, 'nud', 'permanent'])


class Traffic(object):
    """The flood and the allowed datagrams from the client, counted at the peer."""

    def __init__(self, lab):
        self.lab = lab
        self.stop = os.path.join(lab.tmp, 'stop')
        self.counted, self.flooded = os.path.join(lab.tmp, 'counted.json'), os.path.join(lab.tmp, 'flooded.json')
        self.load = [os.getloadavg()[0]]
        self.started = time.time()
        lab.run([sys.executable, os.path.join(FILES, 'count.py'), CLIENT4, CLIENT6, self.stop, self.counted, '900'],
                PEER_NS)
        lab.run([sys.executable, os.path.join(FILES, 'flood.py'), PEER4, PEER6, str(FORBIDDEN_UDP),
                 str(FORBIDDEN_TCP), self.stop, self.flooded, '900', '100000000'], CLIENT_NS)
        self.sender = subprocess.Popen(lab.cmd([sys.executable, '-c', ALLOWED_SENDER, PEER4, PEER6, str(ALLOWED),
                                                self.stop], CLIENT_NS), stdout=subprocess.PIPE)

    def end(self):
        """Stop everything; what was sent, what the peer received, seconds, load average at start and end."""
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


def leaked(report, family):
    return report['at_peer'][family].get('udp/%d' % FORBIDDEN_UDP, 0) + \
        report['at_peer'][family].get('tcp/%d' % FORBIDDEN_TCP, 0)


def flooded(report):
    for family in ('ipv4', 'ipv6'):
        assert report['flood'][family]['udp'] > 1000 and report['flood'][family]['tcp'] > 50, report
        # The counter counts: every allowed datagram sent arrived.
        sent = report['allowed_sent'][family]
        assert sent > 100 and report['at_peer'][family].get('udp/%d' % ALLOWED, 0) == sent, report


def test_200_table_replacements_under_a_flood_leak_nothing_in_either_family(lab):
    gateway(lab)
    assert lab.module('ruleset', swap(SWAPS + 1))['changed'] is True
    traffic = Traffic(lab)
    changed, seconds = 0, []
    try:
        for item in range(SWAPS):
            begin = time.time()
            result = lab.module('ruleset', swap(item))
            seconds.append(time.time() - begin)
            assert not result.get('failed'), result
            # One transaction that replaces the owned table whole.
            assert result['nft'].count('delete table inet %s\n' % TABLE) == 1, result
            changed += bool(result['changed'])
    finally:
        report = traffic.end()
    report.update(swaps=SWAPS, changed=changed, run_seconds=dict(
        min=round(min(seconds), 2), median=round(sorted(seconds)[len(seconds) // 2], 2), max=round(max(seconds), 2)))
    print(json.dumps(report))
    assert changed == SWAPS, report
    flooded(report)
    assert (leaked(report, 'ipv4'), leaked(report, 'ipv6')) == (0, 0), report
    # The last rule set is in place, whole: one chain of three rules per family, one hook.
    last = swap(SWAPS - 1)
    gathered = lab.module('ruleset', dict(backend='nftables', table='filter', scope='RELA',
                                          state='gathered'))['gathered']
    for family in ('ipv4', 'ipv6'):
        chains = gathered[family]['chains']
        assert [(c['name'], c['hook'], c['hook_position']) for c in chains] == \
            [(last['chains'][0]['name'], 'FORWARD', last['chains'][0]['hook_position'])], gathered
        assert [r['name'] for r in chains[0]['rules']] == [r['name'] for r in last['chains'][0]['rules']]
    assert lab.module('ruleset', last)['changed'] is False


def test_the_counter_sees_the_leaks_of_a_non_atomic_delete_then_add(lab):
    """The control: the same table deleted and added again in two nft runs lets forbidden packets through."""
    gateway(lab)
    assert lab.module('ruleset', swap(0))['changed'] is True
    listing = lab.run(['nft', 'list', 'table', 'inet', TABLE])
    traffic = Traffic(lab)
    try:
        for dummy in range(40):
            lab.run(['nft', 'delete', 'table', 'inet', TABLE])
            lab.run(['nft', '-f', '-'], data=listing.encode())
    finally:
        report = traffic.end()
    print(json.dumps(report))
    flooded(report)
    assert lab.run(['nft', 'list', 'table', 'inet', TABLE]) == listing
    assert leaked(report, 'ipv4') > 0 and leaked(report, 'ipv6') > 0, report
