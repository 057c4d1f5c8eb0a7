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
import time

import pytest

from flood_lab import Topology, Traffic
from netns_lab import wait_for

pytestmark = pytest.mark.skipif(shutil.which('nft') is None, reason='nft is not installed')

NET = Topology('snf-h35', 95, 96, forbidden_udp=7002, forbidden_tcp=7003, allowed=7001)
ALLOWED = NET.allowed
# Switches of the scope (each one a module run); SNF_MIGRATE_SWITCHES asks for more.
SWITCHES = int(os.environ.get('SNF_MIGRATE_SWITCHES', '6'))
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
    NET.build(lab)


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


def assert_no_gap(report):
    # The flood ran through every switch, the allowed datagrams kept coming (every one sent arrived), and not
    # one forbidden packet reached the peer.
    NET.assert_flooded(report)
    assert (NET.forbidden_at_peer(report, 'ipv4'), NET.forbidden_at_peer(report, 'ipv6')) == (0, 0), report


def test_switching_back_ends_under_a_flood_leaks_no_forbidden_packet_and_keeps_allowed_ones(lab):
    gateway(lab)
    lab.run(['nft', '-f', '-'], data=FOREIGN_NFT.encode())
    lab.restore('*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -s 192.0.2.0/24 -j RETURN\n'
                '-A FORWARD -p udp --dport 9998 -j ACCEPT\nCOMMIT\n')
    assert ruleset(lab, **firewall('iptables'))['changed'] is True
    foreign = snapshot(lab)
    traffic = Traffic(lab, NET, 600)
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
    traffic = Traffic(lab, NET, 600)
    try:
        for backend in ('nftables', 'iptables'):
            other = 'iptables' if backend == 'nftables' else 'nftables'
            assert ruleset(lab, **firewall(other, state='deleted', migrate=False,
                                           policies={'FORWARD': 'ACCEPT'}))['changed'] is True
            assert ruleset(lab, **firewall(backend, migrate=False))['changed'] is True
    finally:
        report = traffic.end()
    print(json.dumps(report))
    assert NET.forbidden_at_peer(report, 'ipv4') > 0 and NET.forbidden_at_peer(report, 'ipv6') > 0, report


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
    traffic = Traffic(lab, NET, 600)
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
