# SPDX-License-Identifier: GPL-3.0-or-later
"""ctstatus NONE on both back ends against the real kernel: the same packets decided the same way.

xt_conntrack's `--ctstatus NONE` tests (status & 0) != 0: it matches no packet, and negated every tracked
one. The nftables back end renders it `ct status 0x0` (the same test). In a private namespace
(conftest.Lab) a DROP on NONE lets a connection through and a REJECT on !NONE resets one, on each back end.
"""
import shutil

import pytest

SERVER, CLIENT, PEER = '10.90.0.1', '10.90.0.2', 'snf-h34-s'

pytestmark = pytest.mark.skipif(shutil.which('nft') is None, reason='nft is not installed')


def args(backend, **changes):
    out = dict(backend=backend, table='filter', family='ipv4', scope='CS', state='overridden',
               chains=[dict(name='SNF-CS-IN', hook='INPUT', rules=[
                   dict(name='none', protocol='tcp', destination_port=8080, ctstatus=['NONE'], jump='DROP'),
                   dict(name='any', protocol='tcp', destination_port=8081, ctstatus='!NONE', jump='REJECT',
                        reject_with='tcp-reset')])])
    out.update(changes)
    return out


@pytest.mark.parametrize('backend', ['nftables', 'iptables'])
def test_ctstatus_none_matches_no_packet_and_its_negation_every_tracked_one(lab, backend):
    lab.link(PEER, SERVER, CLIENT)
    lab.listen(SERVER, 8080)
    lab.listen(SERVER, 8081)
    first = lab.module('ruleset', args(backend))
    assert first['changed'] is True, first
    if backend == 'nftables':
        listing = lab.run(['nft', 'list', 'table', 'inet', 'snf_filter_CS'])
        assert 'tcp dport 8080 ct status 0x0 drop comment "snf:none"' in listing, listing
        assert 'tcp dport 8081 ct status != 0x0 reject with tcp reset comment "snf:any"' in listing
    assert lab.connects(PEER, SERVER, 8080) is True
    assert lab.connects(PEER, SERVER, 8081) is False
    assert lab.module('ruleset', args(backend))['changed'] is False
    gathered = lab.module('ruleset', dict(backend=backend, table='filter', family='ipv4', scope='CS',
                                          state='gathered'))['gathered']['ipv4']['chains'][0]['rules']
    assert [rule['ctstatus'] for rule in gathered] == [['NONE'], ['!', 'NONE']]
