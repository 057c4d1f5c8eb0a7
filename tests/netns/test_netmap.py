# SPDX-License-Identifier: GPL-3.0-or-later
"""NETMAP (1:1 NAT of a prefix) against the real kernel, on the nft and legacy back ends.

The lab's namespace is the gateway between two namespaces of its own: `in`
(10.97.5.0/24, the inside prefix, no route to the outside but the gateway)
and `out` (192.0.2.0/24, a peer that knows 198.51.100.0/24, the outside
prefix, is behind the gateway). The ruleset module maps 198.51.100.0/24 <->
10.97.5.0/24 with NETMAP in PREROUTING (destination) and POSTROUTING
(source), for IPv4 and IPv6. The peers print the address they saw.
"""
import os
import subprocess
import sys

import pytest

IN4, GW_IN4, OUT4, GW_OUT4 = '10.97.5.7', '10.97.5.1', '192.0.2.20', '192.0.2.1'
IN6, GW_IN6, OUT6, GW_OUT6 = 'fd97:5::7', 'fd97:5::1', '2001:db8:20::20', '2001:db8:20::1'
# The listener prints the address of each client it accepts, then closes.
SERVER = ('import socket, sys\nfam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET\n'
          's = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
          's.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4); print("up", flush=True)\n'
          'while True:\n    c, a = s.accept(); print(a[0], flush=True); c.close()')
CLIENT = ('import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close();'
          ' print("open")\nexcept OSError as exc:\n    print("closed", exc)')


@pytest.fixture(params=['nft', 'legacy'])
def backend(request, lab, tmp_path, monkeypatch):
    shim = tmp_path / 'shim'
    shim.mkdir()
    for tool in ('iptables', 'ip6tables'):
        os.symlink('/usr/sbin/%s-%s' % (tool, request.param), str(shim / tool))
    monkeypatch.setenv('PATH', '%s:%s' % (shim, os.environ.get('PATH', '/usr/sbin:/usr/bin')))
    return request.param


def wire(lab):
    """Two veths from the gateway (the lab's namespace) to `in` and `out`, forwarding on, routes set."""
    for peer, dev, gw4, addr4, gw6, addr6 in (('in', 'snfi', GW_IN4, IN4, GW_IN6, IN6),
                                              ('out', 'snfo', GW_OUT4, OUT4, GW_OUT6, OUT6)):
        lab.add_netns(peer)
        lab.run(['ip', 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer])
        lab.run(['ip', 'addr', 'add', gw4 + '/24', 'dev', dev])
        lab.run(['ip', '-6', 'addr', 'add', gw6 + '/64', 'dev', dev, 'nodad'])
        lab.run(['ip', 'link', 'set', dev, 'up'])
        lab.run(['ip', 'addr', 'add', addr4 + '/24', 'dev', 'eth0'], netns=peer)
        lab.run(['ip', '-6', 'addr', 'add', addr6 + '/64', 'dev', 'eth0', 'nodad'], netns=peer)
        lab.run(['ip', 'link', 'set', 'eth0', 'up'], netns=peer)
    # The inside host's only way out is the gateway; the outside peer reaches the outside prefixes through it.
    lab.run(['ip', 'route', 'add', 'default', 'via', GW_IN4], netns='in')
    lab.run(['ip', '-6', 'route', 'add', 'default', 'via', GW_IN6], netns='in')
    lab.run(['ip', 'route', 'add', '198.51.100.0/24', 'via', GW_OUT4], netns='out')
    lab.run(['ip', '-6', 'route', 'add', '2001:db8:5::/64', 'via', GW_OUT6], netns='out')
    lab.run(['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'])


def serve(lab, netns, address, port):
    proc = subprocess.Popen(lab.cmd([sys.executable, '-c', SERVER, address, str(port)], netns),
                            stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b'up\n'
    return proc


def connect(lab, netns, address, port):
    return lab.run([sys.executable, '-c', CLIENT, address, str(port)], netns).strip()


NAT = dict(table='nat', family='both', scope='NM', state='overridden', chains=[
    dict(name='SNF-NM-PRE', hook='PREROUTING', rules=[
        dict(name='nm4', in_interface='snfo', destination='198.51.100.0/24', jump='NETMAP', to_prefix='10.97.5.0/24'),
        dict(name='nm6', in_interface='snfo', destination='2001:db8:5::/64', jump='NETMAP', to_prefix='fd97:5::/64')]),
    dict(name='SNF-NM-POST', hook='POSTROUTING', rules=[
        dict(name='nm4', out_interface='snfo', source='10.97.5.0/24', jump='NETMAP', to_prefix='198.51.100.0/24'),
        dict(name='nm6', out_interface='snfo', source='fd97:5::/64', jump='NETMAP', to_prefix='2001:db8:5::/64')])])


def test_netmap_maps_a_prefix_both_ways_on_both_back_ends(lab, backend):
    wire(lab)
    first = lab.module('ruleset', NAT)
    assert first.get('changed') is True, first
    assert '-A SNF-NM-PRE -d 198.51.100.0/24 -i snfo -m comment --comment "snf:nm4" -j NETMAP --to 10.97.5.0/24' \
        in first['restore']['ipv4']
    for family, save in (('ipv4', 'iptables'), ('ipv6', 'ip6tables')):
        kernel = [line for line in lab.run(['%s-%s-save' % (save, backend), '-t', 'nat']).split('\n')
                  if line.startswith('-A SNF-NM-')]
        assert sorted(kernel) == sorted(line for line in first['restore'][family].split('\n')
                                        if line.startswith('-A SNF-NM-')), (backend, family)
    again = lab.module('ruleset', NAT)
    assert again.get('changed') is False, again
    assert lab.module('ruleset', dict(NAT, _ansible_check_mode=True)).get('changed') is False

    # Outside -> the mapped outside address -> the inside host, which sees the peer's own address.
    for inside, mapped, peer in ((IN4, '198.51.100.7', OUT4), (IN6, '2001:db8:5::7', OUT6)):
        server = serve(lab, 'in', inside, 8080)
        try:
            assert connect(lab, 'out', mapped, 8080) == 'open'
            assert server.stdout.readline().decode().strip() == peer
        finally:
            server.kill()
            server.wait()
    # The unmapped inside address is not reachable from outside (the peer has no route to it).
    assert connect(lab, 'out', IN4, 8080).startswith('closed')

    # Inside -> outside: the peer sees the mapped source, host bits kept.
    for peer, mapped in ((OUT4, '198.51.100.7'), (OUT6, '2001:db8:5::7')):
        server = serve(lab, 'out', peer, 9090)
        try:
            assert connect(lab, 'in', peer, 9090) == 'open'
            assert server.stdout.readline().decode().strip() == mapped
        finally:
            server.kill()
            server.wait()


def test_netmap_of_another_length_than_its_match_is_refused_before_any_change(lab):
    before = lab.rules('nat')
    bad = dict(NAT, chains=[dict(name='SNF-NM-POST', hook='POSTROUTING', rules=[
        dict(name='nm4', source='10.97.0.0/16', jump='NETMAP', to_prefix='198.51.100.0/24')])])
    result = lab.module('ruleset', bad)
    assert result.get('failed') and 'chains[0].rules[0].to_prefix' in result['msg'], result
    assert 'same length' in result['msg']
    assert lab.rules('nat') == before
