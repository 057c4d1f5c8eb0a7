# SPDX-License-Identifier: GPL-3.0-or-later
"""The nat_gateway role's filter plugins: registered names, results, errors as AnsibleFilterError."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.stateful.netfilter.plugins.filter import (
    nat_gateway_plan,
    nat_gateway_stale,
    ruleset_rendered,
)

PLUGINS = {
    'nat_gateway_plan': nat_gateway_plan,
    'nat_gateway_stale': nat_gateway_stale,
}
VARIABLES = dict(nat_gateway_masquerade=[dict(source='192.168.1.0/24', out_interface='eth1')],
                 nat_gateway_port_forwards=[dict(name='web', port=8080, to='192.168.1.100:80'),
                                            dict(name='web6', port=8080, to='[fd00::100]:80')])


def function(name):
    return PLUGINS[name].FilterModule().filters()[name]


@pytest.mark.parametrize('name', sorted(PLUGINS))
def test_registered_under_its_file_name(name):
    assert list(PLUGINS[name].FilterModule().filters()) == [name]


@pytest.mark.parametrize('name, args', [
    ('nat_gateway_plan', ()),
    ('nat_gateway_stale', ([],)),
])
def test_not_a_dictionary(name, args):
    with pytest.raises(AnsibleFilterError, match='^%s: ' % name):
        function(name)(['not', 'a', 'dictionary'], *args)


def test_plan_error_names_the_variable_and_the_entry():
    with pytest.raises(AnsibleFilterError, match='^nat_gateway_plan: nat_gateway_port_forwards entry web: to: '):
        function('nat_gateway_plan')(dict(nat_gateway_port_forwards=[dict(name='web', port=80, to='10.0.0.300')]))


def test_stale_of_a_bad_gathered_result():
    with pytest.raises(AnsibleFilterError, match='^nat_gateway_stale: not a gathered nat table'):
        function('nat_gateway_stale')(dict(ipv4=dict(chains=[dict(rules=[dict(name='x')])])), [])
    with pytest.raises(AnsibleFilterError, match='^nat_gateway_stale: '):
        function('nat_gateway_stale')({}, [], scope='a b')


def test_through_the_filters():
    model = function('nat_gateway_plan')(VARIABLES, scope='GW')
    assert sorted(model) == ['filter_chains', 'mangle_chains', 'nat_chains', 'raw_chains', 'sysctls']
    assert model['sysctls'] == {'net.ipv4.ip_forward': 1, 'net.ipv6.conf.all.forwarding': 1}
    render = ruleset_rendered.FilterModule().filters()['ruleset_rendered']
    nat = render(dict(table='nat', family='both', chains=model['nat_chains']), scope='GW')
    assert ('-A SNF-GW-PRE -p tcp -m tcp --dport 8080 -m comment --comment "snf:pf:web" -j DNAT '
            '--to-destination 192.168.1.100:80') in nat['ipv4']
    assert '-A SNF-GW-POST -s 192.168.1.0/24 -o eth1' in nat['ipv4']
    assert 'snf:pf:web"' not in nat['ipv6'] and 'snf:pf:web6' in nat['ipv6']
    flt = render(dict(table='filter', family='both', chains=model['filter_chains']), scope='GW')
    assert '-I FORWARD 1 -j SNF-GW-FORWARD' in flt['ipv4'].splitlines()
    gathered = dict(ipv4=dict(chains=[dict(name='SNF-GW-PRE', rules=[dict(
        name='pf:web', protocol='tcp', destination_port='8080', jump='DNAT', to_destination='192.168.1.99:80')])]))
    assert function('nat_gateway_stale')(gathered, model['nat_chains']) == [dict(
        name='pf:web', family='ipv4', nat='dnat', protocol='tcp', dport='8080', reply_src='192.168.1.99',
        reply_sport='80')]
