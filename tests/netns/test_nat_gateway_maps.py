# SPDX-License-Identifier: GPL-3.0-or-later
"""The nat_gateway role's hairpin NAT and 1:1 NAT, planned by _nat_plan and applied by the ruleset module,
against the real kernel (iptables-nft and iptables-legacy).

The lab's namespace is the gateway: `lan` (192.168.1.0/24, one host that is
both the hairpin's client and its server) behind it, `wan` (203.0.113.0/24)
in front; the gateway's public address is 203.0.113.1. The chains are the
ones the role applies (nat_gateway_plan), with the role's scope.
"""
from ansible_collections.stateful.netfilter.plugins.module_utils import _nat_plan as npl

LAN_HOST, LAN_SECOND, GW_LAN, GW_WAN, WAN_HOST = '192.168.1.100', '192.168.1.113', '192.168.1.1', '203.0.113.1', \
    '203.0.113.8'
VARIABLES = dict(
    nat_gateway_masquerade=[dict(source='192.168.1.0/24', out_interface='snfw')],
    nat_gateway_port_forwards=[dict(name='web', port=8080, in_interface='snfw', to=LAN_HOST + ':5000',
                                    public_address=GW_WAN, hairpin=True)],
    nat_gateway_netmap=[dict(inside='192.168.1.112/28', outside='198.51.100.0/28', interface='snfw')])


def wire(lab):
    """The lab's namespace routes between `lan` (lan's second address, in the mapped /28, talks to wan from itself)
    and `wan` (which routes the outside prefix to the gateway)."""
    lab.gateway(('lan', 'snfl', [GW_LAN + '/24'], [LAN_HOST + '/24', LAN_SECOND + '/24'],
                 [['default', 'via', GW_LAN], [WAN_HOST, 'via', GW_LAN, 'src', LAN_SECOND]]),
                ('wan', 'snfw', [GW_WAN + '/24'], [WAN_HOST + '/24'], [['198.51.100.0/28', 'via', GW_WAN]]))


def seen(lab, server, netns, address, port):
    """What a client in netns got connecting to address:port, and the source the server saw."""
    answer = 'open' if lab.connects(netns, address, port, timeout=2) else 'closed'
    return answer, server.stdout.readline().decode().strip() if answer == 'open' else None


def test_hairpin_and_netmap_of_the_role_with_packets(lab, backend):
    wire(lab)
    model = npl.plan(VARIABLES)
    for table in ('filter', 'nat'):
        args = dict(table=table, family='both', scope='GW', state='overridden', chains=model['%s_chains' % table])
        assert lab.module('ruleset', args).get('changed') is True
        assert lab.module('ruleset', args).get('changed') is False
    lab.run(['iptables', '-P', 'FORWARD', 'DROP'])  # as the firewall role leaves it: only the role's accepts pass
    lan, wan = lab.serve('lan', 5000), lab.serve('wan', 9000)
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
