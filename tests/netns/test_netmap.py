# SPDX-License-Identifier: GPL-3.0-or-later
"""NETMAP (1:1 NAT of a prefix) against the real kernel, on the nft and legacy back ends.

The lab's namespace is the gateway between two namespaces of its own: `in`
(10.97.5.0/24, the inside prefix, no route to the outside but the gateway)
and `out` (192.0.2.0/24, a peer that knows 198.51.100.0/24, the outside
prefix, is behind the gateway). The ruleset module maps 198.51.100.0/24 <->
10.97.5.0/24 with NETMAP in PREROUTING (destination) and POSTROUTING
(source), for IPv4 and IPv6. The peers print the address they saw.
"""
IN4, GW_IN4, OUT4, GW_OUT4 = '10.97.5.7', '10.97.5.1', '192.0.2.20', '192.0.2.1'
IN6, GW_IN6, OUT6, GW_OUT6 = 'fd97:5::7', 'fd97:5::1', '2001:db8:20::20', '2001:db8:20::1'


def wire(lab):
    """The lab's namespace routes between `in` (its only way out) and `out` (which reaches the outside prefixes
    through it)."""
    lab.gateway(('in', 'snfi', [GW_IN4 + '/24', GW_IN6 + '/64'], [IN4 + '/24', IN6 + '/64'],
                 [['default', 'via', GW_IN4], ['default', 'via', GW_IN6]]),
                ('out', 'snfo', [GW_OUT4 + '/24', GW_OUT6 + '/64'], [OUT4 + '/24', OUT6 + '/64'],
                 [['198.51.100.0/24', 'via', GW_OUT4], ['2001:db8:5::/64', 'via', GW_OUT6]]))


def connect(lab, netns, address, port):
    return 'open' if lab.connects(netns, address, port, timeout=2) else 'closed'


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
        server = lab.serve('in', 8080, inside)
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
        server = lab.serve('out', 9090, peer)
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
