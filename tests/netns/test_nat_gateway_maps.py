# SPDX-License-Identifier: GPL-3.0-or-later
"""The nat_gateway role's hairpin NAT and 1:1 NAT, planned by _nat_plan and applied by the ruleset module,
against the real kernel (iptables-nft and iptables-legacy).

The lab's namespace is the gateway: `lan` (192.168.1.0/24, one host that is
both the hairpin's client and its server) behind it, `wan` (203.0.113.0/24)
in front; the gateway's public address is 203.0.113.1. The chains are the
ones the role applies (nat_gateway_plan), with the role's scope.
"""
import os
import subprocess
import sys

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _nat_plan as npl

LAN_HOST, LAN_SECOND, GW_LAN, GW_WAN, WAN_HOST = '192.168.1.100', '192.168.1.113', '192.168.1.1', '203.0.113.1', \
    '203.0.113.8'
SERVER = ('import socket, sys\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
          's.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(4); print("up", flush=True)\n'
          'while True:\n    c, a = s.accept(); print(a[0], flush=True); c.close()')
CLIENT = ('import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close();'
          ' print("open")\nexcept OSError as exc:\n    print("closed", exc)')
VARIABLES = dict(
    nat_gateway_masquerade=[dict(source='192.168.1.0/24', out_interface='snfw')],
    nat_gateway_port_forwards=[dict(name='web', port=8080, in_interface='snfw', to=LAN_HOST + ':5000',
                                    public_address=GW_WAN, hairpin=True)],
    nat_gateway_netmap=[dict(inside='192.168.1.112/28', outside='198.51.100.0/28', interface='snfw')])


@pytest.fixture(params=['nft', 'legacy'])
def backend(request, lab, tmp_path, monkeypatch):
    shim = tmp_path / 'shim'
    shim.mkdir()
    for tool in ('iptables', 'ip6tables'):
        os.symlink('/usr/sbin/%s-%s' % (tool, request.param), str(shim / tool))
    monkeypatch.setenv('PATH', '%s:%s' % (shim, os.environ.get('PATH', '/usr/sbin:/usr/bin')))
    return request.param


def wire(lab):
    for peer, dev, gw, addresses in (('lan', 'snfl', GW_LAN, [LAN_HOST, LAN_SECOND]), ('wan', 'snfw', GW_WAN, [WAN_HOST])):
        lab.add_netns(peer)
        lab.run(['ip', 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer])
        lab.run(['ip', 'addr', 'add', gw + '/24', 'dev', dev])
        lab.run(['ip', 'link', 'set', dev, 'up'])
        for address in addresses:
            lab.run(['ip', 'addr', 'add', address + '/24', 'dev', 'eth0'], netns=peer)
        lab.run(['ip', 'link', 'set', 'eth0', 'up'], netns=peer)
    lab.run(['ip', 'route', 'add', 'default', 'via', GW_LAN], netns='lan')
    # lan's second address (in the mapped /28) talks to wan from itself; wan routes the outside prefix to gw.
    lab.run(['ip', 'route', 'add', WAN_HOST, 'via', GW_LAN, 'src', LAN_SECOND], netns='lan')
    lab.run(['ip', 'route', 'add', '198.51.100.0/28', 'via', GW_WAN], netns='wan')
    lab.run(['sysctl', '-qw', 'net.ipv4.ip_forward=1'])


def serve(lab, netns, port):
    proc = subprocess.Popen(lab.cmd([sys.executable, '-c', SERVER, str(port)], netns), stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b'up\n'
    return proc


def seen(lab, server, netns, address, port):
    """What a client in netns got connecting to address:port, and the source the server saw."""
    answer = lab.run([sys.executable, '-c', CLIENT, address, str(port)], netns).strip()
    return answer, server.stdout.readline().decode().strip() if answer == 'open' else None


def test_hairpin_and_netmap_of_the_role_with_packets(lab, backend):
    wire(lab)
    model = npl.plan(VARIABLES)
    for table in ('filter', 'nat'):
        args = dict(table=table, family='both', scope='GW', state='overridden', chains=model['%s_chains' % table])
        assert lab.module('ruleset', args).get('changed') is True
        assert lab.module('ruleset', args).get('changed') is False
    lab.run(['iptables', '-P', 'FORWARD', 'DROP'])  # as the firewall role leaves it: only the role's accepts pass
    lan, wan = serve(lab, 'lan', 5000), serve(lab, 'wan', 9000)
    try:
        # Hairpin: lan's host reaches itself at the public address; the server sees the gateway.
        assert seen(lab, lan, 'lan', GW_WAN, 8080) == ('open', GW_LAN)
        entries = lab.run(['conntrack', '-L', '-p', 'tcp', '--orig-dst', GW_WAN, '--dport', '8080'])
        assert 'src=%s dst=%s' % (LAN_HOST, GW_WAN) in entries and 'src=%s dst=%s sport=5000' % (LAN_HOST, GW_LAN) \
            in entries, entries
        # The forward from outside: the server sees the client.
        assert seen(lab, lan, 'wan', GW_WAN, 8080) == ('open', WAN_HOST)
        # 1:1: wan reaches lan's second address at its mapped address, which it also leaves with.
        assert seen(lab, lan, 'wan', '198.51.100.1', 5000) == ('open', WAN_HOST)
        assert seen(lab, wan, 'lan', WAN_HOST, 9000) == ('open', '198.51.100.1')
        # Without hairpin no DNAT matches on the lan side: the connection goes to the gateway itself, refused.
        off = npl.plan(dict(VARIABLES, nat_gateway_port_forwards=[dict(VARIABLES['nat_gateway_port_forwards'][0],
                                                                       hairpin=False)]))
        for table in ('filter', 'nat'):
            lab.module('ruleset', dict(table=table, family='both', scope='GW', state='overridden',
                                       chains=off['%s_chains' % table]))
        lab.run(['conntrack', '-F'], check=False)
        assert seen(lab, lan, 'lan', GW_WAN, 8080)[0].startswith('closed')
    finally:
        for proc in (lan, wan):
            proc.kill()
            proc.wait()
