# SPDX-License-Identifier: GPL-3.0-or-later
"""The nat_gateway role's plan on both back ends, moved between them with packets (issue 15 items 1 and 5).

The role's tables (the plan of _nat_plan, as the role computes it: FORWARD
accepts, SNAT, MASQUERADE, port forwards, MSS clamping) with a FORWARD policy
of drop are applied with ruleset as the role applies them (one call per table, scope GW, state overridden,
migrate), on iptables, then on nftables, then on iptables again. Each time:
lan reaches wan through SNAT (IPv4) and MASQUERADE (IPv6), wan reaches lan's
server through the port forwards (both families), a NEW connection from wan
straight to lan is dropped (state-aware FORWARD); check mode predicts each
move, a re-run changes nothing, and the iptables ruleset after the way back
is byte-identical to the one before. The role's own tasks on nftables run in
the firewall scenario (tests/molecule/firewall/backend.yml).

With the policy in the firewall role's scope (FW) instead, as the two roles
run on a gateway, the same holds: nftables' tables each have base chains of
their own, and the collection carries an accept of one scope's table to the
drop policy of another's through one bit of the packet mark (_nft.ACCEPT_MARK).
A foreign table's chain after the collection's counts the packets that still
carry the bit: none, while it sees the flows.
"""
import shutil
import sys

import pytest

from netns_lab import COLLECTIONS

pytestmark = pytest.mark.skipif(shutil.which('nft') is None, reason='nft is not installed')

LAN, WAN = 'snf-h35-lan', 'snf-h35-wan'
GW_LAN4, LAN4, GW_WAN4, WAN4 = '10.93.0.1', '10.93.0.2', '10.94.0.1', '10.94.0.2'
GW_LAN6, LAN6, GW_WAN6, WAN6 = 'fd93::1', 'fd93::2', 'fd94::1', 'fd94::2'
WAN_IF = 'snfw'
SERVER_PORT, FORWARD_PORT = 5000, 8080
TABLES = ('filter', 'nat', 'raw', 'mangle')


def model():
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    from ansible_collections.stateful.netfilter.plugins.module_utils._nat_plan import plan
    return plan(dict(
        nat_gateway_snat=[dict(source='10.93.0.0/24', out_interface=WAN_IF, to_source=GW_WAN4)],
        nat_gateway_masquerade=[dict(source='fd93::/64', out_interface=WAN_IF)],
        nat_gateway_port_forwards=[
            dict(name='web4', port=FORWARD_PORT, in_interface=WAN_IF, to='%s:%d' % (LAN4, SERVER_PORT)),
            dict(name='web6', port=FORWARD_PORT, in_interface=WAN_IF, to='[%s]:%d' % (LAN6, SERVER_PORT))],
        nat_gateway_mss_clamping=[dict(out_interface=WAN_IF, clamp_to_pmtu=True)]), 'GW')


def calls(planned, backend, two_scopes):
    """The ruleset calls: nat_gateway's tables, with the FORWARD policy of drop in its own filter scope, or (two
    scopes, as the two roles run on a gateway) in the firewall's scope FW first."""
    common = dict(family='both', state='overridden', backend=backend, migrate=True)
    out = [dict(common, table='filter', scope='FW', policies={'FORWARD': 'DROP'}, chains=[])] if two_scopes else []
    out.extend(dict(common, table=table, scope='GW', chains=planned['%s_chains' % table]) for table in TABLES)
    if not two_scopes:
        out[0]['policies'] = {'FORWARD': 'DROP'}
    return out


def apply(lab, planned, backend, check=False, two_scopes=False):
    results = []
    for args in calls(planned, backend, two_scopes):
        if check:
            args = dict(args, _ansible_check_mode=True)
        result = lab.module('ruleset', args)
        assert not result.get('failed'), result
        results.append(result)
    return results


def iptables_state(lab):
    return [line.split(' [')[0] for family in ('ipv4', 'ipv6') for table in TABLES
            for line in lab.save(table, family=family).split('\n') if line and not line.startswith('#')]


def nft_tables(lab):
    return sorted(line.split()[-1] for line in lab.run(['nft', 'list', 'tables']).split('\n') if 'snf_' in line)


def peer(server):
    """The next client address a server printed (an IPv4 client of the dual-stack socket without ::ffff:)."""
    return server.stdout.readline().decode().strip().replace('::ffff:', '')


def packets(lab, servers):
    """SNAT and MASQUERADE out, port forwards in, a NEW connection from wan straight to lan dropped."""
    for address, seen in ((WAN4, GW_WAN4), (WAN6, GW_WAN6)):
        assert lab.connects(LAN, address, SERVER_PORT, timeout=3), address
        assert peer(servers[WAN]) == seen
    for address, seen in ((GW_WAN4, WAN4), (GW_WAN6, WAN6)):
        assert lab.connects(WAN, address, FORWARD_PORT, timeout=3), address
        assert peer(servers[LAN]) == seen
    assert not lab.connects(WAN, LAN4, SERVER_PORT, timeout=0.5)
    assert not lab.connects(WAN, LAN6, SERVER_PORT, timeout=0.5)


def run_moves(lab, two_scopes):
    lab.gateway((LAN, 'snfl', [GW_LAN4 + '/24', GW_LAN6 + '/64'], [LAN4 + '/24', LAN6 + '/64'],
                 [['default', 'via', GW_LAN4], ['default', 'via', GW_LAN6]]),
                # wan routes to lan only to try a connection that is not forwarded (the FORWARD drop).
                (WAN, WAN_IF, [GW_WAN4 + '/24', GW_WAN6 + '/64'], [WAN4 + '/24', WAN6 + '/64'],
                 [['10.93.0.0/24', 'via', GW_WAN4], ['fd93::/64', 'via', GW_WAN6]]))
    servers = dict((netns, lab.serve(netns, SERVER_PORT, '::')) for netns in (LAN, WAN))
    # A foreign table after the collection's chains: the packets still marked, and all of them.
    lab.run(['nft', 'add table inet probe; add chain inet probe f { type filter hook forward priority filter + 10; '
                    'policy accept; }; add rule inet probe f meta mark & 0x20000000 == 0x20000000 counter; '
                    'add rule inet probe f counter'])
    try:
        planned = model()
        apply(lab, planned, 'iptables', two_scopes=two_scopes)
        packets(lab, servers)
        before = iptables_state(lab)
        assert any('SNF-GW-PRE' in line for line in before) and nft_tables(lab) == []
        for backend, other in (('nftables', 'iptables'), ('iptables', 'nftables')):
            check = apply(lab, planned, backend, check=True, two_scopes=two_scopes)
            real = apply(lab, planned, backend, two_scopes=two_scopes)
            # Four tables hold something (raw has no chain): each move is predicted and made.
            moved = [result['changed'] for result in real]
            assert moved == [True] * two_scopes + [True, True, False, True], real
            assert [result['changed'] for result in check] == moved
            assert [result['migrated'] for result in check] == [result['migrated'] for result in real]
            assert not any(result['changed'] for result in apply(lab, planned, backend, two_scopes=two_scopes))
            if backend == 'nftables':
                assert nft_tables(lab) == ['snf_filter_FW'] * two_scopes + ['snf_filter_GW', 'snf_mangle_GW', 'snf_nat_GW']
                assert not any('SNF-' in line for line in iptables_state(lab))
            else:
                assert nft_tables(lab) == [] and iptables_state(lab) == before
            packets(lab, servers)
        counters = [int(line.split('packets ')[1].split()[0]) for line in
                    lab.run(['nft', 'list', 'chain', 'inet', 'probe', 'f']).split('\n') if 'packets ' in line]
        assert counters[0] == 0 and counters[1] > 20, counters
    finally:
        for proc in servers.values():
            proc.kill()
            proc.wait()


def test_the_nat_gateway_plan_moves_to_nftables_and_back_with_packets(lab):
    run_moves(lab, two_scopes=False)


def test_the_two_roles_scopes_on_nftables_forward_what_the_gateway_accepts(lab):
    run_moves(lab, two_scopes=True)
