# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-source limits of the roles' entries (_limits), planned by the firewall and nat_gateway roles."""
import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _firewall_plan as fw
from ansible_collections.stateful.netfilter.plugins.module_utils import _limits
from ansible_collections.stateful.netfilter.plugins.module_utils import _nat_plan as nat


def input_rules(entry, families=None):
    variables = dict(firewall_input_allow=[entry])
    if families:
        variables['firewall_families'] = families
    model = fw.plan(variables)
    return [chain for chain in model['chains'] if chain['name'] == 'SNF-FW-INPUT'][0]['rules']


def forward_rules(entry):
    return nat.plan(dict(nat_gateway_port_forwards=[entry]))['filter_chains'][0]['rules']


def test_no_limit_plans_no_rule():
    assert _limits.limit_rules(dict(name='allow:x', protocol='tcp', jump='ACCEPT'), dict(name='x'), 'in') == []
    names = [rule['name'] for rule in input_rules(dict(name='web', port=80))]
    assert not [name for name in names if name.startswith(('conn:', 'rate:'))]


def test_input_limits_stand_in_front_of_the_accept_they_guard_and_match_what_it_matches():
    rules = input_rules(dict(name='web', port=443, sources=['192.0.2.0/24'], in_interface='eth0',
                             max_connections_per_source=3, rate_per_source='10/sec', rate_burst=20))
    names = [rule['name'] for rule in rules]
    at = names.index('allow:web')
    assert names[at - 2:at] == ['conn:allow:web', 'rate:allow:web']
    conn, rate = rules[at - 2], rules[at - 1]
    for rule in (conn, rate):
        assert rule['source'] == '192.0.2.0/24' and rule['in_interface'] == 'eth0'
        assert rule['protocol'] == 'tcp' and rule['destination_port'] == 443 and rule['ctstate'] == ['NEW']
        assert rule['jump'] == 'REJECT' and rule['reject_with'] == 'tcp-reset'
    assert conn['connlimit_above'] == 3 and 'hashlimit_above' not in conn
    assert rate['hashlimit_above'] == '10/sec' and rate['hashlimit_burst'] == 20 and rate['hashlimit_mode'] == ['srcip']


def test_the_rendered_rules_are_the_connlimit_and_hashlimit_matches():
    model = fw.plan(dict(firewall_families=['ipv4'], firewall_input_allow=[
        dict(name='ssh', port=22, max_connections_per_source=4, rate_per_source='3/min', limit_action='drop')]))
    text = fw.render(model, 'FW')['ipv4']
    assert ('-A SNF-FW-INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m connlimit --connlimit-above 4 '
            '--connlimit-mask 32 --connlimit-saddr -m comment --comment "snf:conn:allow:ssh" -j DROP') in text
    assert ('-m conntrack --ctstate NEW -m hashlimit --hashlimit-above 3/min --hashlimit-burst 5 --hashlimit-mode '
            'srcip --hashlimit-name %s -m comment --comment "snf:rate:allow:ssh" -j DROP'
            % _limits.table_name('in', 'ssh')) in text


def test_reject_of_other_protocols_is_the_default_icmp_error_of_each_family():
    rules = input_rules(dict(name='dns', protocol='udp', port=53, max_connections_per_source=50))
    conn = [rule for rule in rules if rule['name'] == 'conn:allow:dns'][0]
    assert conn['jump'] == 'REJECT' and 'reject_with' not in conn
    entry = dict(name='dns', protocol='udp', port=53, max_connections_per_source=50)
    text = fw.render(fw.plan(dict(firewall_input_allow=[entry])), 'FW')
    assert '--connlimit-mask 128 --connlimit-saddr -m comment --comment "snf:conn:allow:dns" -j REJECT ' \
           '--reject-with icmp6-port-unreachable' in text['ipv6']
    assert '--connlimit-mask 32 --connlimit-saddr -m comment --comment "snf:conn:allow:dns" -j REJECT ' \
           '--reject-with icmp-port-unreachable' in text['ipv4']


def test_every_source_of_an_entry_gets_its_limits_and_one_bucket_table():
    rules = input_rules(dict(name='web', port=80, sources=['192.0.2.0/24', '198.51.100.0/24'], rate_per_source='5/sec'))
    rates = [rule for rule in rules if rule['name'].startswith('rate:')]
    assert [rule['source'] for rule in rates] == ['192.0.2.0/24', '198.51.100.0/24']
    assert len(set(rule['hashlimit_name'] for rule in rates)) == 1


def test_table_names_are_short_distinct_and_valid():
    long = 'a' * 48
    names = set(_limits.table_name(tag, name) for tag in ('in', 'pf') for name in (long, long[:-1] + 'b', 'x:y/z@w'))
    assert len(names) == 6
    assert all(len(name) <= 31 for name in names)
    assert _limits.table_name('in', 'x:y/z@w').startswith('in-x_y_z_w-')


def test_port_forward_limits_count_the_forwarded_connections_in_forward():
    rules = forward_rules(dict(name='web', port=8080, to='10.0.0.5:80', in_interface='eth0',
                               max_connections_per_source=2, rate_per_source='3/sec', limit_action='drop'))
    assert [rule['name'] for rule in rules] == ['base:established', 'conn:pf:web', 'rate:pf:web', 'pf:web']
    for rule in rules[1:3]:
        assert rule['destination'] == '10.0.0.5' and rule['destination_port'] == '80'
        assert rule['in_interface'] == 'eth0' and rule['ctstate'] == ['DNAT'] and rule['jump'] == 'DROP'
    assert rules[1]['connlimit_above'] == 2 and rules[2]['hashlimit_above'] == '3/sec'
    assert rules[2]['hashlimit_name'] == _limits.table_name('pf', 'web')


@pytest.mark.parametrize('options,message', [
    (dict(max_connections_per_source=0),
     'entry web: max_connections_per_source: 0 is not a number of connections (1-4294967295)'),
    (dict(max_connections_per_source='many'), 'entry web: max_connections_per_source: '),
    (dict(rate_per_source='fast'), 'entry web: rate_per_source: \'fast\' is not a rate'),
    (dict(rate_per_source='0/sec'), 'entry web: rate_per_source: a rate of 0'),
    (dict(rate_per_source='1/day', rate_burst=3), 'entry web: rate_burst: a burst of 3 at 1/day takes more than a day'),
    (dict(rate_per_source='5/sec', rate_burst=0), 'entry web: rate_burst: 0 is not a burst'),
    (dict(rate_burst=3), 'entry web: rate_burst: needs rate_per_source.'),
    (dict(limit_action='drop'), 'entry web: limit_action: needs max_connections_per_source or rate_per_source.'),
    (dict(limit_action='kill', max_connections_per_source=1), "entry web: limit_action: 'kill' is not reject or drop."),
])
def test_bad_limits_are_refused_naming_variable_entry_and_option(options, message):
    with pytest.raises(fw.PlanError) as err:
        fw.plan(dict(firewall_input_allow=[dict(dict(name='web', port=80), **options)]))
    assert 'firewall_input_allow ' + message in str(err.value)
    with pytest.raises(nat.PlanError) as err:
        nat.plan(dict(nat_gateway_port_forwards=[dict(dict(name='web', port=80, to='10.0.0.5'), **options)]))
    assert 'nat_gateway_port_forwards ' + message in str(err.value)


def test_the_ssh_guard_does_not_count_a_limit_rule_as_the_verdict_for_ssh():
    # A limit on the SSH entry refuses some connections, not the play's own: the guard decides on the accept.
    model = fw.plan(dict(firewall_input_allow=[dict(name='ssh', port=22, max_connections_per_source=1,
                                                    rate_per_source='1/min', rate_burst=1)]))
    rules = [chain for chain in model['chains'] if chain['name'] == 'SNF-FW-INPUT'][0]['rules']
    flow = dict(client='192.0.2.9', server='192.0.2.1', port=22, interface='eth0')
    assert [fw._decides(rule, flow, 'ipv4') for rule in rules if rule['name'].startswith(('conn:', 'rate:'))] \
        == [False, False]
    assert fw._decides([rule for rule in rules if rule['name'] == 'allow:ssh'][0], flow, 'ipv4') is True
