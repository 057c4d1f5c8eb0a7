# SPDX-License-Identifier: GPL-3.0-or-later
"""Address lists with backend nftables against the real kernel: one rule, an anonymous set, packets.

The ruleset module runs as on a host in a private mount and network namespace (conftest.Lab); the client
namespace holds several addresses and connects from each of them.
"""
import shutil
import sys

import pytest

SERVER = '10.96.0.1'
ALLOWED = ('10.96.0.2', '10.96.0.130', '10.96.0.200')
DENIED = ('10.96.0.3', '10.96.0.127')
PEER = 'snf-h34-c'

pytestmark = pytest.mark.skipif(shutil.which('nft') is None, reason='nft is not installed')

CONNECT = ('import socket, sys\ns = socket.socket(); s.settimeout(1.0); s.bind((sys.argv[1], 0))\n'
           'try:\n    s.connect((sys.argv[2], int(sys.argv[3]))); print("open")\nexcept OSError:\n    print("closed")')


def connects_from(lab, source, port):
    return lab.run([sys.executable, '-c', CONNECT, source, SERVER, str(port)], PEER).strip() == 'open'


def args(**changes):
    out = dict(backend='nftables', table='filter', family='both', scope='AL', state='overridden',
               policies={'INPUT': 'DROP'},
               chains=[dict(name='SNF-AL-IN', hook='INPUT', rules=[
                   dict(name='lo', in_interface='lo', jump='ACCEPT'),
                   dict(name='est', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
                   dict(name='admins', protocol='tcp', destination_port=8080,
                        source=['10.96.0.128/26', '10.96.0.2', '10.96.0.192/26'], jump='ACCEPT')])])
    out.update(changes)
    return out


def test_a_source_list_is_one_rule_with_a_set_and_decides_packets(lab):
    lab.link(PEER, SERVER, '10.96.0.250')
    for address in ALLOWED + DENIED:
        lab.run(['ip', 'addr', 'add', address + '/24', 'dev', 'snf1'], netns=PEER)
    lab.listen(SERVER, 8080)
    assert all(connects_from(lab, address, 8080) for address in ALLOWED + DENIED)
    check = lab.module('ruleset', dict(args(), _ansible_check_mode=True))
    first = lab.module('ruleset', args())
    assert first['changed'] is True and check['changed'] is True and check['nft'] == first['nft'], first
    listing = lab.run(['nft', 'list', 'table', 'inet', 'snf_filter_AL'])
    rules = [line.strip() for line in listing.split('\n') if 'snf:admins' in line]
    # One rule: the two /26 collapse into one /25, the host stays; nft prints the set sorted.
    assert rules == ['ip saddr { 10.96.0.2, 10.96.0.128/25 } tcp dport 8080 accept comment "snf:admins"'], listing
    assert [connects_from(lab, address, 8080) for address in ALLOWED] == [True] * len(ALLOWED)
    assert [connects_from(lab, address, 8080) for address in DENIED] == [False] * len(DENIED)
    again = lab.module('ruleset', args())
    assert again['changed'] is False and again['nft'] == '', again
    gathered = lab.module('ruleset', dict(backend='nftables', table='filter', family='ipv4', scope='AL',
                                          state='gathered'))['gathered']['ipv4']
    admins = [rule for rule in gathered['chains'][0]['rules'] if rule.get('name') == 'admins'][0]
    assert admins['source'] == ['10.96.0.2/32', '10.96.0.128/25']
    back = dict(args(), family='ipv4', policies={},
                chains=[dict(name='SNF-AL-IN', hook='INPUT', rules=gathered['chains'][0]['rules'])])
    assert lab.module('ruleset', back)['changed'] is False
    # Merged neighbours nft prints as a range are read back as the same list: no change.
    spread = args(chains=[dict(name='SNF-AL-IN', hook='INPUT', rules=[
        dict(name='est', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
        dict(name='wide', protocol='tcp', destination_port=8080,
             source=['10.96.0.0/30', '10.96.0.4/31', '10.96.0.200'], jump='ACCEPT')])])
    assert lab.module('ruleset', spread)['changed'] is True
    printed = lab.run(['nft', 'list', 'table', 'inet', 'snf_filter_AL'])
    assert 'ip saddr { 10.96.0.0-10.96.0.5, 10.96.0.200 }' in printed, printed
    assert lab.module('ruleset', spread)['changed'] is False
    assert connects_from(lab, '10.96.0.2', 8080) and connects_from(lab, '10.96.0.3', 8080)
    assert not connects_from(lab, '10.96.0.130', 8080)
    assert lab.module('ruleset', dict(backend='nftables', table='filter', scope='AL', state='deleted',
                                      policies={'INPUT': 'ACCEPT'}))['changed'] is True


def test_bad_lists_are_refused_naming_the_option_and_the_rule_and_change_nothing(lab):
    before = lab.run(['nft', 'list', 'ruleset'])
    mixed = lab.module('ruleset', args(chains=[dict(name='SNF-AL-IN', rules=[
        dict(name='mixed', source=['10.96.0.0/24', 'fd00::/8'], jump='ACCEPT')])]))
    assert mixed.get('failed') and mixed['param'] == 'chains[0].rules[0].source[1]', mixed
    iptables = lab.module('ruleset', dict(args(), backend='iptables', policies={}))
    assert iptables.get('failed') and iptables['param'] == 'source', iptables
    assert 'rule admins of chain SNF-AL-IN' in iptables['msg'] and 'backend nftables' in iptables['msg']
    assert lab.run(['nft', 'list', 'ruleset']) == before
