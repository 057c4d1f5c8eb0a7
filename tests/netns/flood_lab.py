# SPDX-License-Identifier: GPL-3.0-or-later
"""A flood through the lab's namespace, counted at the peer: the method of the atomicity-under-traffic tests.

The lab's namespace routes between a client and a peer namespace, both
families (Lab.gateway), with static neighbours. The client floods the peer
with forbidden UDP datagrams and TCP SYNs (the reliability scenario's
flood.py) and sends allowed datagrams; the peer counts every packet it
receives per family (count.py, AF_PACKET). Whatever changes the ruleset in
between is then judged by what reached the peer.
"""
import json
import os
import subprocess
import sys
import time

from netns_lab import ROOT, wait_for

FILES = os.path.join(ROOT, 'tests', 'molecule', 'reliability', 'files')
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


class Topology(object):
    """client -- lab namespace -- peer, on two /24 and two /64 of the given numbers (e.g. 93 and 94)."""

    def __init__(self, prefix, client_net, peer_net, forbidden_udp, forbidden_tcp, allowed):
        self.client_ns, self.peer_ns = '%s-cl' % prefix, '%s-peer' % prefix
        self.gw4_c, self.client4 = '10.%d.0.1' % client_net, '10.%d.0.2' % client_net
        self.gw4_p, self.peer4 = '10.%d.0.1' % peer_net, '10.%d.0.2' % peer_net
        self.gw6_c, self.client6 = 'fd%d::1' % client_net, 'fd%d::2' % client_net
        self.gw6_p, self.peer6 = 'fd%d::1' % peer_net, 'fd%d::2' % peer_net
        self.forbidden_udp, self.forbidden_tcp, self.allowed = forbidden_udp, forbidden_tcp, allowed

    def build(self, lab):
        """The namespaces, forwarding on, and the neighbours known before the traffic starts (a resolution under a
        flood drops packets)."""
        lab.gateway((self.client_ns, 'snf0', [self.gw4_c + '/24', self.gw6_c + '/64'],
                     [self.client4 + '/24', self.client6 + '/64'],
                     [['default', 'via', self.gw4_c], ['default', 'via', self.gw6_c]]),
                    (self.peer_ns, 'snf2', [self.gw4_p + '/24', self.gw6_p + '/64'],
                     [self.peer4 + '/24', self.peer6 + '/64'],
                     [['default', 'via', self.gw4_p], ['default', 'via', self.gw6_p]]))
        for netns, dev, addresses in ((self.client_ns, 'snf0', (self.client4, self.client6)),
                                      (self.peer_ns, 'snf2', (self.peer4, self.peer6))):
            mac = json.loads(lab.run(['ip', '-j', 'link', 'show', 'eth0'], netns=netns))[0]['address']
            for address in addresses:
                lab.run(['ip', 'neigh', 'replace', address, 'lladdr', mac, 'dev', dev, 'nud', 'permanent'])

    def forbidden_at_peer(self, report, family):
        return report['at_peer'][family].get('udp/%d' % self.forbidden_udp, 0) + \
            report['at_peer'][family].get('tcp/%d' % self.forbidden_tcp, 0)

    def assert_flooded(self, report):
        """The flood ran, and the counter counts: every allowed datagram sent arrived. (A second's flood under
        load sends 900-1,000 datagrams: the bar is half of that, so a loaded machine does not fail the test.)"""
        for family in ('ipv4', 'ipv6'):
            assert report['flood'][family]['udp'] > 500 and report['flood'][family]['tcp'] > 25, report
            sent = report['allowed_sent'][family]
            assert sent > 100 and report['at_peer'][family].get('udp/%d' % self.allowed, 0) == sent, report


class Traffic(object):
    """The flood and the allowed datagrams of a Topology, running until end()."""

    def __init__(self, lab, topology, seconds=900):
        self.lab = lab
        self.stop = os.path.join(lab.tmp, 'stop')
        self.counted, self.flooded = os.path.join(lab.tmp, 'counted.json'), os.path.join(lab.tmp, 'flooded.json')
        for path in (self.stop, self.counted, self.flooded):
            if os.path.exists(path):
                os.remove(path)
        self.load = [os.getloadavg()[0]]
        self.started = time.time()
        t = topology
        lab.run([sys.executable, os.path.join(FILES, 'count.py'), t.client4, t.client6, self.stop, self.counted,
                 str(seconds)], t.peer_ns)
        lab.run([sys.executable, os.path.join(FILES, 'flood.py'), t.peer4, t.peer6, str(t.forbidden_udp),
                 str(t.forbidden_tcp), self.stop, self.flooded, str(seconds), '100000000'], t.client_ns)
        self.sender = subprocess.Popen(lab.cmd([sys.executable, '-c', ALLOWED_SENDER, t.peer4, t.peer6,
                                                str(t.allowed), self.stop], t.client_ns), stdout=subprocess.PIPE)

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
