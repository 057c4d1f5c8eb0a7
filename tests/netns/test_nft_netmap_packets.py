# SPDX-License-Identifier: GPL-3.0-or-later
"""NETMAP with backend nftables against the real kernel: nft's `dnat/snat ip prefix to`, 1:1 with host bits kept.

ruleset writes NETMAP rules into the owned nat table of a private mount and network namespace (conftest.Lab):
OUTPUT maps 10.200.0.0/24 onto the peer's 10.92.0.0/24, POSTROUTING maps the lab's 10.92.0.0/24 onto
10.91.0.0/24. A connection to 10.200.0.2 reaches the peer's .2 and the peer sees it come from 10.91.0.1 (the
lab's .1): both ends keep their host bits.
"""
import shutil
import subprocess
import sys

import pytest

LAB, PEER_ADDRESS, PEER = '10.92.0.1', '10.92.0.2', 'snf-h34-n'

pytestmark = pytest.mark.skipif(shutil.which('nft') is None, reason='nft is not installed')

SERVER = ('import socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
          's.bind(("0.0.0.0", 8090)); s.listen(4); print("up", flush=True)\n'
          'while True:\n    c, a = s.accept(); c.sendall(("%s %s" % (c.getsockname()[0], a[0])).encode()); c.close()')
CLIENT = ('import socket, sys\nc = socket.create_connection((sys.argv[1], 8090), timeout=2)\n'
          'print(c.recv(100).decode())')


def args(**changes):
    out = dict(backend='nftables', table='nat', family='ipv4', scope='NM', state='overridden', chains=[
        dict(name='SNF-NM-OUT', hook='OUTPUT', rules=[
            dict(name='in', destination='10.200.0.0/24', protocol='tcp', jump='NETMAP', to_prefix='10.92.0.0/24')]),
        dict(name='SNF-NM-POST', hook='POSTROUTING', rules=[
            dict(name='out', source='10.92.0.0/24', out_interface='snf0', jump='NETMAP', to_prefix='10.91.0.0/24')])])
    out.update(changes)
    return out


def test_netmap_maps_both_ways_one_to_one_and_reads_back(lab):
    lab.link(PEER, LAB, PEER_ADDRESS)
    lab.run(['ip', 'route', 'add', '10.200.0.0/24', 'dev', 'snf0'])
    lab.run(['ip', 'route', 'add', '10.91.0.0/24', 'via', LAB], netns=PEER)
    server = subprocess.Popen(lab.cmd([sys.executable, '-c', SERVER], PEER), stdout=subprocess.PIPE)
    assert server.stdout.readline() == b'up\n'
    check = lab.module('ruleset', dict(args(), _ansible_check_mode=True))
    first = lab.module('ruleset', args())
    assert first['changed'] is True and check['nft'] == first['nft'], first
    listing = lab.run(['nft', 'list', 'table', 'inet', 'snf_nat_NM'])
    assert 'ip daddr 10.200.0.0/24 meta l4proto tcp dnat ip prefix to 10.92.0.0/24 comment "snf:in"' in listing, listing
    assert 'ip saddr 10.92.0.0/24 oifname "snf0" snat ip prefix to 10.91.0.0/24 comment "snf:out"' in listing
    assert 'type nat hook output priority -101; policy accept;' in listing
    # The peer answers with the address it was reached at and the one it saw the connection come from.
    seen = lab.run([sys.executable, '-c', CLIENT, '10.200.0.2']).split()
    assert seen == [PEER_ADDRESS, '10.91.0.1'], seen
    again = lab.module('ruleset', args())
    assert again['changed'] is False and again['nft'] == '', again
    gathered = lab.module('ruleset', dict(backend='nftables', table='nat', family='ipv4', scope='NM',
                                          state='gathered'))['gathered']['ipv4']['chains']
    assert [(c['name'], c['rules'][0]['to_prefix']) for c in gathered] == [
        ('SNF-NM-OUT', '10.92.0.0/24'), ('SNF-NM-POST', '10.91.0.0/24')]
    # A NETMAP in a chain that is not hooked is refused naming the option: nft must know the side.
    loose = lab.module('ruleset', args(chains=[dict(name='SNF-NM-SUB', rules=[
        dict(jump='NETMAP', to_prefix='10.91.0.0/24')])]))
    assert loose.get('failed') and loose['param'] == 'chains[0].rules[0].to_prefix', loose
    assert lab.module('ruleset', dict(backend='nftables', table='nat', scope='NM', state='deleted'))['changed']
