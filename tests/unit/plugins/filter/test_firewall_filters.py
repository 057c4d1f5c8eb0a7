# SPDX-License-Identifier: GPL-3.0-or-later
"""The firewall role's filter plugins: registered names, results, errors as AnsibleFilterError."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.stateful.netfilter.plugins.filter import firewall_plan, firewall_ssh_verdict, ruleset_rendered

PLUGINS = {
    'firewall_plan': firewall_plan,
    'firewall_ssh_verdict': firewall_ssh_verdict,
    'ruleset_rendered': ruleset_rendered,
}


def function(name):
    return PLUGINS[name].FilterModule().filters()[name]


@pytest.mark.parametrize('name', sorted(PLUGINS))
def test_registered_under_its_file_name(name):
    assert list(PLUGINS[name].FilterModule().filters()) == [name]


@pytest.mark.parametrize('name, args', [
    ('firewall_plan', ()),
    ('firewall_ssh_verdict', ('1.2.3.4 1 5.6.7.8 22',)),
    ('ruleset_rendered', ()),
])
def test_not_a_dictionary(name, args):
    with pytest.raises(AnsibleFilterError, match='^%s: ' % name):
        function(name)(['not', 'a', 'dictionary'], *args)


def test_plan_error_names_the_variable():
    with pytest.raises(AnsibleFilterError, match='^firewall_plan: firewall_input_allow entry a: sources: '):
        function('firewall_plan')(dict(firewall_input_allow=[dict(name='a', sources=['10.0.0.1/8'])]))


def test_rendered_error_names_the_parameter():
    with pytest.raises(AnsibleFilterError, match=r'^ruleset_rendered: chains\[0\]\.name: '):
        function('ruleset_rendered')(dict(chains=[dict(name='OTHER', rules=[])]), scope='FW')
    with pytest.raises(AnsibleFilterError, match='^ruleset_rendered: not a model'):
        function('ruleset_rendered')(dict(chains=[dict(rules=[])]), scope='FW')


def test_through_the_filters():
    model = function('firewall_plan')(dict(firewall_families=['ipv4'],
                                           firewall_input_allow=[dict(name='ssh', port=22)]), scope='FW')
    assert sorted(model) == ['chains', 'family', 'policies']
    rendered = function('ruleset_rendered')(model, scope='FW')
    assert list(rendered) == ['ipv4']
    assert '-A SNF-FW-INPUT -p tcp -m tcp --dport 22 -m comment --comment "snf:allow:ssh" -j ACCEPT' in rendered['ipv4']
    verdict = function('firewall_ssh_verdict')(model, connection='192.0.2.7 40000 192.0.2.1 22',
                                               route='192.0.2.7 dev eth0', families=['ipv4'], host='gw')
    assert verdict['accepted'] and verdict['decided_by'] == 'SNF-FW-INPUT rule allow:ssh'


def test_rendered_for_nftables_is_the_owned_table_the_module_renders():
    model = function('firewall_plan')(dict(firewall_input_allow=[dict(name='ssh', port=22)]), scope='FW',
                                      backend='nftables')
    rendered = function('ruleset_rendered')(model, scope='FW', backend='nftables')
    assert list(rendered) == ['nftables']
    text = rendered['nftables']
    assert text.startswith('table inet snf_filter_FW {\n')
    assert '\t\ttcp dport 22 accept comment "snf:allow:ssh"\n' in text
    assert 'chain INPUT-LAST {\n\t\ttype filter hook input priority filter + 1; policy drop;\n' in text
    with pytest.raises(AnsibleFilterError, match='^ruleset_rendered: backend: '):
        function('ruleset_rendered')(model, scope='FW', backend='pf')
