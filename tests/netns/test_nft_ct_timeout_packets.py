# SPDX-License-Identifier: GPL-3.0-or-later
"""ct_timeout with backend nftables against the real kernel: the connections a rule matches get the policy.

ruleset writes a raw-table rule with a timeout policy (a `ct timeout` object of the owned table) in a
private mount and network namespace (conftest.Lab); a client namespace opens a TCP connection that stays
established and sends a UDP datagram, to a port with the policy and to one without; `conntrack -L` in the
server's namespace shows each entry's remaining timeout.
"""
import shutil
import subprocess
import sys

import pytest

from netns_lab import wait_for

SERVER, CLIENT, PEER = '10.95.0.1', '10.95.0.2', 'snf-h34-t'

pytestmark = pytest.mark.skipif(shutil.which('nft') is None or shutil.which('conntrack') is None,
                                reason='needs nft and conntrack')

HOLD_SERVER = ('import socket, sys, time\nsocks = []\nfor port in sys.argv[1:]:\n'
               '    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
               '    s.bind(("0.0.0.0", int(port))); s.listen(4); s.setblocking(False); socks.append(s)\n'
               '    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", int(port))); socks.append(u)\n'
               'print("up", flush=True)\nheld = []\nwhile True:\n'
               '    for s in socks[::2]:\n        try:\n            held.append(s.accept()[0])\n'
               '        except OSError:\n            pass\n    time.sleep(0.05)')
HOLD_CLIENT = ('import socket, sys, time\nheld = [socket.create_connection((sys.argv[1], int(p)), timeout=2) '
               'for p in sys.argv[2:]]\nfor p in sys.argv[2:]:\n'
               '    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (sys.argv[1], int(p)))\n'
               'print("up", flush=True)\ntime.sleep(60)')


def timeouts(lab, protocol):
    """{destination port: remaining timeout} of the conntrack entries of the protocol to SERVER."""
    out = lab.run(['conntrack', '-L', '-p', protocol, '-d', SERVER], check=False)
    found = {}
    for line in out.split('\n'):
        words = line.split()
        dport = [word.split('=')[1] for word in words if word.startswith('dport=')]
        if len(words) > 2 and dport:
            found[int(dport[0])] = int(words[2])
    return found


def args(**changes):
    out = dict(backend='nftables', table='raw', family='both', scope='TO', state='overridden',
               chains=[dict(name='SNF-TO-PRE', hook='PREROUTING', rules=[
                   dict(name='tcp-web', protocol='tcp', destination_port=8080, jump='CT',
                        ct_timeout={'established': 300, 'close': 10}),
                   dict(name='udp-dns', protocol='udp', destination_port=8080, jump='CT',
                        ct_timeout={'unreplied': 7}),
                   dict(name='ftp', protocol='tcp', destination_port=8082, jump='CT', helper='ftp',
                        ct_timeout={'established': 600})])])
    out.update(changes)
    return out


def test_a_matching_connection_gets_the_timeout_of_the_policy(lab):
    lab.link(PEER, SERVER, CLIENT)
    check = lab.module('ruleset', dict(args(), _ansible_check_mode=True))
    first = lab.module('ruleset', args())
    assert first['changed'] is True and check['nft'] == first['nft'], first
    listing = lab.run(['nft', 'list', 'table', 'inet', 'snf_raw_TO'])
    assert 'ct timeout snf-timeout-tcp-established-300 {' in listing, listing
    assert 'policy = { established : 300 }' in listing and 'policy = { unreplied : 7 }' in listing
    assert 'tcp dport 8080 ct timeout set "snf-timeout-tcp-established-300" comment "snf:tcp-web"' in listing
    again = lab.module('ruleset', args())
    assert again['changed'] is False and again['nft'] == '', again
    gathered = lab.module('ruleset', dict(backend='nftables', table='raw', scope='TO', state='gathered'))
    rules = gathered['gathered']['ipv4']['chains'][0]['rules']
    assert [rule['ct_timeout'] for rule in rules] == [{'established': 300}, {'unreplied': 7}, {'established': 600}]
    # nft sets a policy (and a helper) on the connection conntrack made: the base chain runs after conntrack.
    assert 'type filter hook prerouting priority mangle - 2; policy accept;' in listing
    server = subprocess.Popen(lab.cmd([sys.executable, '-c', HOLD_SERVER, '8080', '8081', '8082']), stdout=subprocess.PIPE)
    assert server.stdout.readline() == b'up\n'
    client = subprocess.Popen(lab.cmd([sys.executable, '-c', HOLD_CLIENT, SERVER, '8080', '8081', '8082'], PEER),
                              stdout=subprocess.PIPE)
    assert client.stdout.readline() == b'up\n'
    assert wait_for(lambda: len(timeouts(lab, 'tcp')) == 3 and len(timeouts(lab, 'udp')) == 3, 5)
    tcp, udp = timeouts(lab, 'tcp'), timeouts(lab, 'udp')
    # The policy's port: 300 s established, 7 s unreplied; the other port keeps the kernel's defaults
    # (432000 s established, 30 s unreplied).
    assert 250 < tcp[8080] <= 300 and tcp[8081] > 400000 and 550 < tcp[8082] <= 600, tcp
    assert 0 < udp[8080] <= 7 and 7 < udp[8081] <= 30, udp
    helpers = [line for line in lab.run(['conntrack', '-L', '-p', 'tcp']).split('\n') if 'helper=ftp' in line]
    assert len(helpers) == 1 and 'dport=8082' in helpers[0], helpers
    assert lab.module('ruleset', dict(backend='nftables', table='raw', scope='TO', state='deleted'))['changed']


def test_the_iptables_back_end_refuses_a_policy_and_changes_nothing(lab):
    before = lab.rules('raw')
    result = lab.module('ruleset', dict(args(), backend='iptables'))
    assert result.get('failed') and result['param'] == 'ct_timeout', result
    assert 'rule tcp-web of chain SNF-TO-PRE' in result['msg'] and 'nfct' in result['msg']
    assert lab.rules('raw') == before
