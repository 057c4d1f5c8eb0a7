# SPDX-License-Identifier: GPL-3.0-or-later
"""Conntrack helpers and MSS clamping of the nat_gateway planning, with real packets in private namespaces.

lan (192.168.1.100) - gw (the lab's namespace: 192.168.1.1 and 203.0.113.1) - wan (203.0.113.8). The rules are
what _nat_plan plans from role variables, applied with the ruleset module per table (FORWARD policy drop). FTP
runs with the lab's server and ftplib client (tests/molecule/gateway/files/snf_ftp.py): active and passive from
lan to a server on wan through MASQUERADE, and from wan to a port-forwarded server on lan. With the helpers the
transfers work and their data connections are RELATED (status EXPECTED; the expectation is read while a client
holds); without them active mode out and passive mode in fail. MSS: the SYN wan receives carries the clamped MSS
(gw's wan link at MTU 1400) or the fixed one.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from netns_lab import COLLECTIONS, ROOT, Lab, missing

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
from ansible_collections.stateful.netfilter.plugins.module_utils import _nat_plan as npl  # noqa: E402

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or '')

FILES = os.path.join(ROOT, 'tests', 'molecule', 'gateway', 'files')
FTP = os.path.join(FILES, 'snf_ftp.py')
MSS = os.path.join(FILES, 'snf_mss.py')
LAN, GW_LAN, GW_WAN, WAN = '192.168.1.100', '192.168.1.1', '203.0.113.1', '203.0.113.8'
VARIABLES = dict(
    nat_gateway_masquerade=[dict(source='192.168.1.0/24', out_interface='snfw')],
    nat_gateway_port_forwards=[dict(name='ftp', port=21, in_interface='snfw', to=LAN, helper='ftp')],
    nat_gateway_helpers=[dict(name='ftp-out', helper='ftp', port=21, in_interface='snfl')],
    nat_gateway_mss_clamping=[dict(out_interface='snfw', clamp_to_pmtu=True)],
)


def _apply(lab, variables):
    model = npl.plan(variables)
    for table in ('filter', 'nat', 'raw', 'mangle'):
        args = dict(table=table, family='ipv4', scope='GW', state='overridden', chains=model[table + '_chains'])
        if table == 'filter':
            args['policies'] = dict(FORWARD='DROP')
        result = lab.module('ruleset', args)
        assert not result.get('failed'), result


def _get(lab, netns, host, mode, hold=0):
    return json.loads(lab.run([sys.executable, FTP, 'get', host, '--mode', mode, '--hold', str(hold),
                               '--timeout', '3'], netns))


def _kill_in(inodes):
    """Kill the processes in the given network namespaces (`ip netns exec` gives them a mount namespace of
    their own, so Lab.close() does not find them)."""
    for pid in os.listdir('/proc'):
        try:
            if pid.isdigit() and os.stat('/proc/%s/ns/net' % pid).st_ino in inodes:
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            continue


@pytest.fixture(scope='module')
def lab():
    lab = Lab()
    inodes = set()
    try:
        lab.run(['sysctl', '-qw', 'net.ipv4.ip_forward=1'])
        for side, interface, address, peer in (('lan', 'snfl', GW_LAN, LAN), ('wan', 'snfw', GW_WAN, WAN)):
            lab.add_netns(side)
            inodes.add(int(lab.run(['stat', '-L', '-c', '%i', '/proc/self/ns/net'], netns=side)))
            lab.run(['ip', 'link', 'add', interface, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', side])
            lab.run(['ip', 'addr', 'add', address + '/24', 'dev', interface])
            lab.run(['ip', 'link', 'set', interface, 'up'])
            lab.run(['ip', 'addr', 'add', peer + '/24', 'dev', 'eth0'], netns=side)
            lab.run(['ip', 'link', 'set', 'eth0', 'up'], netns=side)
        lab.run(['ip', 'route', 'add', 'default', 'via', GW_LAN], netns='lan')
        # wan has a route to the lan: only gw's FORWARD policy keeps it out.
        lab.run(['ip', 'route', 'add', '192.168.1.0/24', 'via', GW_WAN], netns='wan')
        for side in ('lan', 'wan'):
            lab.run([sys.executable, FTP, 'serve', '--log', '/run/snf-ftp.%s.log' % side], netns=side)
        lab.run([sys.executable, MSS, 'serve', '--port', '5001'], netns='wan')
        yield lab
    finally:
        _kill_in(inodes)
        lab.close()


def test_ftp_through_the_gateway_needs_the_helpers(lab):
    _apply(lab, VARIABLES)
    out = dict((mode, _get(lab, 'lan', WAN, mode)) for mode in ('active', 'passive'))
    inward = dict((mode, _get(lab, 'wan', GW_WAN, mode)) for mode in ('active', 'passive'))
    assert all(result['ok'] for result in list(out.values()) + list(inward.values())), (out, inward)
    # The server on lan announced its own address; the helper rewrote it to the gateway's.
    assert '(%s,' % GW_WAN.replace('.', ',') in inward['passive']['reply'], inward
    # The wan server's active data connection went to the gateway's address (the PORT command rewritten).
    assert out['active']['data']['peer'][0] == WAN
    related = lab.module('conntrack_info', dict(protocol='tcp', status=['EXPECTED'], limit=0))
    ports = sorted(set((entry['orig']['src'], entry['orig']['dst']) for entry in related['entries']))
    # Out active: wan -> gw (to lan); out passive: lan -> wan; in passive: wan -> gw (to lan); in active: lan -> wan.
    assert (WAN, GW_WAN) in ports and (LAN, WAN) in ports, related['entries']

    # The expectation is visible while the client holds between PASV and its data connection.
    holder = subprocess.Popen(lab.cmd([sys.executable, FTP, 'get', WAN, '--mode', 'passive', '--hold', '3'], 'lan'),
                              stdout=subprocess.PIPE)
    try:
        seen = []
        for dummy in range(20):
            stats = lab.module('conntrack_stats', dict(expect_filter=dict(protocol='tcp', dst=WAN)))
            seen = stats.get('expectations') or []
            if seen:
                break
            time.sleep(0.2)
        assert seen and seen[0]['helper'] == 'ftp' and seen[0]['master']['dport'] == 21, stats
    finally:
        assert json.loads(holder.communicate()[0])['ok']

    _apply(lab, dict(VARIABLES, nat_gateway_helpers=[],
                     nat_gateway_port_forwards=[dict(VARIABLES['nat_gateway_port_forwards'][0], helper=None)]))
    without_out = _get(lab, 'lan', WAN, 'active')
    without_in = _get(lab, 'wan', GW_WAN, 'passive')
    assert not without_out['ok'] and not without_in['ok'], (without_out, without_in)
    # Passive mode out needs no helper: its data connection is a NEW one from lan, which the gateway accepts.
    assert _get(lab, 'lan', WAN, 'passive')['ok']
    assert '(192,168,1,100,' in without_in['reply']


def _mss_seen(lab):
    sent = json.loads(lab.run([sys.executable, MSS, 'connect', WAN, '--port', '5001'], 'lan'))
    assert sent['ok'], sent
    return json.loads(lab.run([sys.executable, MSS, 'seen', '--sport', str(sent['sport'])], 'wan'))['mss']


def test_mss_clamping_to_the_path_mtu_and_to_a_fixed_value(lab):
    lab.run(['ip', 'link', 'set', 'snfw', 'mtu', '1400'])
    _apply(lab, dict(VARIABLES, nat_gateway_mss_clamping=[]))
    assert _mss_seen(lab) == 1460
    _apply(lab, VARIABLES)
    assert _mss_seen(lab) == 1360
    _apply(lab, dict(VARIABLES, nat_gateway_mss_clamping=[dict(out_interface='snfw', mss=1200)]))
    assert _mss_seen(lab) == 1200
