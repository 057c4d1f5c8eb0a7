# SPDX-License-Identifier: GPL-3.0-or-later
"""The nat_gateway role's hairpin NAT of port forwards and 1:1 NAT (NETMAP): planned rules, stale filters, bad input."""

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _nat_plan as npl
from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import PlanError
from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import render as render_model
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import (
    BUILTIN_CHAINS,
    empty_table,
    parse_save,
    read_owned,
)

SNAT4 = dict(source='192.168.1.0/24', out_interface='eth1', to_source='203.0.113.3')
SNAT6 = dict(source='fd00:1::/64', out_interface='eth1', to_source='2001:db8::3')
WEB = dict(name='web', protocol='tcp', port=8080, in_interface='eth1', to='192.168.1.100:80',
           public_address='203.0.113.1', hairpin=True)
WEB6 = dict(name='web6', protocol='tcp', port=8080, in_interface='eth1', to='[fd00:1::100]:80',
            public_address='2001:db8::1', hairpin=True)
MAP4 = dict(inside='192.168.1.112/28', outside='198.51.100.0/28', interface='eth1')
MAP6 = dict(inside='fd00:1:0:5::/64', outside='2001:db8:5::/64', interface='eth1')


def chain(chains, name):
    return [c for c in chains if c['name'] == name][0]


def names(chains, name):
    return [rule['name'] for rule in chain(chains, name)['rules']]


def rendered(model, table, family):
    return render_model(dict(table=table, family='both', chains=model['%s_chains' % table]), 'GW')[family]


def gathered_of(chains):
    out = {}
    for family, text in render_model(dict(table='nat', family='both', chains=chains), 'GW').items():
        table = parse_save(text)[0].get('nat') or empty_table('nat')
        owned = read_owned(table, 'SNF-GW-', family, BUILTIN_CHAINS['nat'])
        out[family] = dict(chains=[dict(name=name, rules=[dict(rule.spec) for rule in c.rules])
                                   for name, c in owned.chains.items()])
    return out


def test_hairpin_dnat_masquerade_and_accept_per_inside_network_and_family():
    model = npl.plan(dict(nat_gateway_snat=[SNAT4, SNAT6], nat_gateway_port_forwards=[WEB, WEB6]))
    nat4, filter4 = rendered(model, 'nat', 'ipv4'), rendered(model, 'filter', 'ipv4')
    # The forward from outside now matches the public address.
    assert '-A SNF-GW-PRE -d 203.0.113.1/32 -i eth1 -p tcp -m tcp --dport 8080 -m comment --comment "snf:pf:web" ' \
           '-j DNAT --to-destination 192.168.1.100:80' in nat4
    # Inside hosts connecting to the public address reach the server, which sees the gateway.
    assert '-A SNF-GW-PRE -s 192.168.1.0/24 -d 203.0.113.1/32 -p tcp -m tcp --dport 8080 -m comment --comment ' \
           '"snf:hp:web.0" -j DNAT --to-destination 192.168.1.100:80' in nat4
    assert '-A SNF-GW-POST -s 192.168.1.0/24 -d 192.168.1.100/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate ' \
           'DNAT -m comment --comment "snf:hpm:web.0" -j MASQUERADE' in nat4
    assert '-A SNF-GW-FORWARD -s 192.168.1.0/24 -d 192.168.1.100/32 -p tcp -m tcp --dport 80 -m conntrack ' \
           '--ctstate DNAT -m comment --comment "snf:hp:web.0" -j ACCEPT' in filter4
    # The hairpin MASQUERADE comes before the source NAT entries; each family gets its own network.
    assert names(model['nat_chains'], 'SNF-GW-POST') == [
        'hpm:web.0', 'hpm:web6.0', 'snat:192.168.1.0/24@eth1', 'snat:fd00:1::/64@eth1']
    assert '-s fd00:1::/64 -d fd00:1::100/128' in rendered(model, 'nat', 'ipv6')
    assert 'hp:web6' not in nat4 and 'hp:web.0' not in rendered(model, 'nat', 'ipv6')


def test_hairpin_sources_role_wide_switch_and_a_forward_that_opts_out():
    forwards = [dict(WEB, hairpin=None), dict(WEB, name='ssh', port=2222, to='192.168.1.5:22', hairpin=False)]
    model = npl.plan(dict(nat_gateway_hairpin=True, nat_gateway_hairpin_sources=['10.1.0.0/16', '10.2.0.0/16'],
                          nat_gateway_port_forwards=forwards))
    pre = chain(model['nat_chains'], 'SNF-GW-PRE')['rules']
    assert [(r['name'], r.get('source')) for r in pre] == [
        ('pf:web', None), ('pf:ssh', None), ('hp:web.0', '10.1.0.0/16'), ('hp:web.1', '10.2.0.0/16')]
    # Without hairpin nothing changes but the public address of the DNAT.
    plain = npl.plan(dict(nat_gateway_port_forwards=[dict(WEB, hairpin=False)]))
    assert names(plain['nat_chains'], 'SNF-GW-PRE') == ['pf:web'] and len(plain['nat_chains']) == 1


def test_netmap_maps_both_directions_before_source_nat_with_its_forward_accepts():
    model = npl.plan(dict(nat_gateway_snat=[SNAT4], nat_gateway_netmap=[MAP4, MAP6]))
    nat4 = rendered(model, 'nat', 'ipv4')
    assert '-A SNF-GW-PRE -d 198.51.100.0/28 -i eth1 -m comment --comment "snf:nmi:198.51.100.0/28@eth1" ' \
           '-j NETMAP --to 192.168.1.112/28' in nat4
    assert '-A SNF-GW-POST -s 192.168.1.112/28 -o eth1 -m comment --comment "snf:nmo:192.168.1.112/28@eth1" ' \
           '-j NETMAP --to 198.51.100.0/28' in nat4
    # A part of the SNAT entry's source is mapped 1:1, the rest is translated as before.
    assert names(model['nat_chains'], 'SNF-GW-POST') == [
        'nmo:192.168.1.112/28@eth1', 'nmo:fd00:1:0:5::/64@eth1', 'snat:192.168.1.0/24@eth1']
    assert names(model['filter_chains'], 'SNF-GW-FORWARD') == [
        'base:established', 'out:192.168.1.0/24@eth1', 'nmi:198.51.100.0/28@eth1', 'nmo:192.168.1.112/28@eth1',
        'nmi:2001:db8:5::/64@eth1', 'nmo:fd00:1:0:5::/64@eth1']
    assert '-A SNF-GW-FORWARD -d 192.168.1.112/28 -i eth1 -m conntrack --ctstate DNAT -m comment --comment ' \
           '"snf:nmi:198.51.100.0/28@eth1" -j ACCEPT' in rendered(model, 'filter', 'ipv4')
    assert model['sysctls']['net.ipv6.conf.all.forwarding'] == 1


def test_netmap_alone_gets_the_established_accept_and_forward_switches():
    model = npl.plan(dict(nat_gateway_netmap=[dict(MAP4, forward_inbound=False)], nat_gateway_forward_outbound=False))
    assert model['filter_chains'] == []
    model = npl.plan(dict(nat_gateway_netmap=[MAP4]))
    assert names(model['filter_chains'], 'SNF-GW-FORWARD') == [
        'base:established', 'nmi:198.51.100.0/28@eth1', 'nmo:192.168.1.112/28@eth1']
    # A lone address is its /32.
    one = npl.plan(dict(nat_gateway_netmap=[dict(inside='192.168.1.7', outside='198.51.100.7', interface='eth1')]))
    assert 'NETMAP --to 198.51.100.7/32' in rendered(one, 'nat', 'ipv4')


def test_nothing_is_stale_when_nothing_changes():
    variables = dict(nat_gateway_snat=[SNAT4], nat_gateway_port_forwards=[WEB], nat_gateway_netmap=[MAP4, MAP6])
    chains = npl.plan(variables)['nat_chains']
    assert npl.stale(gathered_of(chains), chains) == []


def test_a_changed_netmap_flushes_both_directions_of_the_old_mapping():
    old = gathered_of(npl.plan(dict(nat_gateway_netmap=[MAP4]))['nat_chains'])
    new = npl.plan(dict(nat_gateway_netmap=[dict(MAP4, outside='198.51.100.16/28')]))['nat_chains']
    assert npl.stale(old, new) == [
        dict(name='nmi:198.51.100.0/28@eth1', family='ipv4', nat='dnat', dst='198.51.100.0/28',
             reply_src='192.168.1.112/28'),
        dict(name='nmo:192.168.1.112/28@eth1', family='ipv4', nat='snat', src='192.168.1.112/28',
             reply_dst='198.51.100.0/28')]
    assert npl.stale(old, []) == npl.stale(old, new)


def test_a_changed_hairpin_flushes_only_the_hairpinned_connections():
    old = gathered_of(npl.plan(dict(nat_gateway_snat=[SNAT4], nat_gateway_port_forwards=[WEB]))['nat_chains'])
    new = npl.plan(dict(nat_gateway_snat=[SNAT4], nat_gateway_port_forwards=[dict(WEB, hairpin=False)]))['nat_chains']
    assert npl.stale(old, new) == [
        dict(name='hp:web.0', family='ipv4', nat='dnat', protocol='tcp', dport='8080', reply_src='192.168.1.100',
             reply_sport='80', src='192.168.1.0/24'),
        dict(name='hpm:web.0', family='ipv4', nat='snat', src='192.168.1.0/24', reply_src='192.168.1.100/32',
             protocol='tcp')]


@pytest.mark.parametrize('variables, message', [
    (dict(nat_gateway_netmap=[dict(MAP4, outside='198.51.100.0/24')]),
     'nat_gateway_netmap entry 192.168.1.112/28@eth1: inside 192.168.1.112/28 is a /28 and outside 198.51.100.0/24 '
     'a /24: a 1:1 mapping needs prefixes of the same length.'),
    (dict(nat_gateway_netmap=[dict(MAP4, outside='2001:db8::/124')]),
     'nat_gateway_netmap entry 192.168.1.112/28@eth1: inside 192.168.1.112/28 and outside 2001:db8::/124 are of '
     'different families.'),
    (dict(nat_gateway_netmap=[dict(MAP4, inside='192.168.1.113/28')]),
     'nat_gateway_netmap entry 192.168.1.113/28@eth1: inside: "192.168.1.113/28" is not a prefix'),
    (dict(nat_gateway_netmap=[dict(MAP4, interface=None)]),
     'nat_gateway_netmap entry 192.168.1.112/28@any: interface is required'),
    (dict(nat_gateway_netmap=[dict(inside='0.0.0.0/0', outside='0.0.0.0/0', interface='eth1')]),
     'a /0 maps no bit of the address'),
    (dict(nat_gateway_netmap=[MAP4, dict(MAP4, inside='192.168.1.120/29', outside='198.51.100.64/29')]),
     'nat_gateway_netmap entry 192.168.1.120/29@eth1: inside 192.168.1.120/29 overlaps the inside 192.168.1.112/28 '
     'of nat_gateway_netmap entry 192.168.1.112/28@eth1.'),
    (dict(nat_gateway_netmap=[MAP4, dict(MAP4, inside='10.0.0.0/28', interface='eth2')]),
     'outside 198.51.100.0/28 overlaps the outside 198.51.100.0/28'),
    (dict(nat_gateway_masquerade=[dict(source='192.168.1.112/29', out_interface='eth1')], nat_gateway_netmap=[MAP4]),
     'nat_gateway_netmap entry 192.168.1.112/28@eth1: maps every source of nat_gateway_masquerade entry '
     '192.168.1.112/29@eth1 (NETMAP comes first), which would never apply'),
    (dict(nat_gateway_port_forwards=[dict(WEB, public_address=None)]),
     'nat_gateway_port_forwards entry web: hairpin needs public_address'),
    (dict(nat_gateway_hairpin=True, nat_gateway_port_forwards=[dict(WEB, public_address=None, hairpin=None)]),
     'nat_gateway_port_forwards entry web: hairpin needs public_address'),
    (dict(nat_gateway_port_forwards=[WEB]),
     'nat_gateway_port_forwards entry web: hairpin needs the inside networks of ipv4: set nat_gateway_hairpin_sources'),
    (dict(nat_gateway_snat=[SNAT6], nat_gateway_port_forwards=[WEB]),
     'hairpin needs the inside networks of ipv4'),
    (dict(nat_gateway_port_forwards=[dict(WEB, public_address='2001:db8::1')]),
     'nat_gateway_port_forwards entry web: public_address 2001:db8::1 and to 192.168.1.100 are of different '
     'families.'),
    (dict(nat_gateway_port_forwards=[dict(WEB, public_address='203.0.113.0/24')]),
     'nat_gateway_port_forwards entry web: public_address: "203.0.113.0/24" is not one IP address.'),
    (dict(nat_gateway_hairpin_sources=['10.0.0.1/8', 'lan']),
     'nat_gateway_hairpin_sources: expected networks (10.0.0.0/24, fd00::/64) without host bits: "10.0.0.1/8", '
     '"lan".'),
])
def test_bad_input_is_refused_naming_the_variable_and_the_entry(variables, message):
    with pytest.raises(PlanError) as info:
        npl.plan(variables)
    assert message in str(info.value)


def test_a_source_nat_entry_out_of_another_interface_or_partly_mapped_is_no_conflict():
    npl.plan(dict(nat_gateway_masquerade=[dict(source='192.168.1.112/29', out_interface='eth2'),
                                          dict(source='192.168.1.0/24', out_interface='eth1'),
                                          dict(source='192.168.1.112/29')],
                  nat_gateway_netmap=[MAP4]))
