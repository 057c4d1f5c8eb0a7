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
import time

import pytest

from flood_lab import Topology, Traffic

pytestmark = pytest.mark.skipif(shutil.which('nft') is None, reason='nft is not installed')

NET = Topology('snf-h37', 93, 94, forbidden_udp=6000, forbidden_tcp=6001, allowed=6002)
FORBIDDEN_UDP, FORBIDDEN_TCP = NET.forbidden_udp, NET.forbidden_tcp
# Ruleset runs under the flood (the scenario's 200); SNF_NFT_SWAPS asks for another number.
SWAPS = int(os.environ.get('SNF_NFT_SWAPS', '200'))
DROPS = [dict(name='drop-udp', protocol='udp', destination_port=FORBIDDEN_UDP, jump='DROP'),
         dict(name='drop-tcp', protocol='tcp', destination_port=FORBIDDEN_TCP, jump='DROP')]
TABLE = 'snf_filter_RELA'


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
    NET.build(lab)


def test_200_table_replacements_under_a_flood_leak_nothing_in_either_family(lab):
    gateway(lab)
    assert lab.module('ruleset', swap(SWAPS + 1))['changed'] is True
    traffic = Traffic(lab, NET)
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
    NET.assert_flooded(report)
    assert (NET.forbidden_at_peer(report, 'ipv4'), NET.forbidden_at_peer(report, 'ipv6')) == (0, 0), report
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
    traffic = Traffic(lab, NET)
    try:
        for dummy in range(40):
            lab.run(['nft', 'delete', 'table', 'inet', TABLE])
            lab.run(['nft', '-f', '-'], data=listing.encode())
    finally:
        report = traffic.end()
    print(json.dumps(report))
    NET.assert_flooded(report)
    assert lab.run(['nft', 'list', 'table', 'inet', TABLE]) == listing
    assert NET.forbidden_at_peer(report, 'ipv4') > 0 and NET.forbidden_at_peer(report, 'ipv6') > 0, report
