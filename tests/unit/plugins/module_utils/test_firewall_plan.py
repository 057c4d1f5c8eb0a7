# SPDX-License-Identifier: GPL-3.0-or-later
"""The firewall role's planning: role variables -> rule model, input checks, the SSH guard."""

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _firewall_plan as fp
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

SSH = dict(name='ssh', port=22, sources=['203.0.113.0/24', '2001:db8:113::/64'], comment='administrators')


def chain(model, name):
    return [c for c in model['chains'] if c['name'] == name][0]


def names(model, name):
    return [rule['name'] for rule in chain(model, name)['rules']]


def test_defaults_plan_the_state_aware_base():
    model = fp.plan({})
    assert model['family'] == 'both'
    assert model['policies'] == {'INPUT': 'DROP', 'FORWARD': 'DROP', 'OUTPUT': 'ACCEPT'}
    assert [(c['name'], c['hook'], c['hook_position']) for c in model['chains']] == [
        ('SNF-FW-INPUT', 'INPUT', 'first'), ('SNF-FW-FORWARD', 'FORWARD', 'first')]
    assert names(model, 'SNF-FW-INPUT') == ['base:loopback', 'base:established', 'base:invalid', 'base:icmp',
                                            'base:icmpv6']
    assert names(model, 'SNF-FW-FORWARD') == ['base:established', 'base:invalid']
    assert chain(model, 'SNF-FW-INPUT')['rules'][0] == dict(name='base:loopback', in_interface='lo', jump='ACCEPT')


def test_switches_of_the_base():
    model = fp.plan(dict(firewall_allow_loopback=False, firewall_drop_invalid=False, firewall_drop_new_not_syn=True,
                         firewall_allow_icmp=False, firewall_output_policy='drop', firewall_log_dropped=True))
    assert names(model, 'SNF-FW-INPUT') == ['base:established', 'base:new-not-syn'] + [
        'base:ndp-%s' % kind for kind in fp.NDP_TYPES]
    assert names(model, 'SNF-FW-FORWARD') == ['base:established', 'base:new-not-syn']
    # OUTPUT never drops NEW-not-SYN: the host's own packets are not picked up mid-stream.
    assert names(model, 'SNF-FW-OUTPUT') == ['base:established'] + ['base:ndp-%s' % kind for kind in fp.NDP_TYPES]
    assert [c['name'] for c in model['chains'] if c['hook_position'] == 'last'] == [
        'SNF-FW-INPUT-LOG', 'SNF-FW-FORWARD-LOG', 'SNF-FW-OUTPUT-LOG']
    log = chain(model, 'SNF-FW-OUTPUT-LOG')['rules'][0]
    assert log == dict(name='log', limit='5/min', limit_burst=10, jump='LOG', log_prefix='snf-fw-output-drop: ')
    assert chain(model, 'SNF-FW-INPUT')['rules'][1] == dict(name='base:new-not-syn', protocol='tcp', syn=False,
                                                            ctstate=['NEW'], jump='DROP')


def test_log_chains_only_for_drop_policies():
    model = fp.plan(dict(firewall_log_dropped=True, firewall_input_policy='accept'))
    assert [c['name'] for c in model['chains']] == ['SNF-FW-INPUT', 'SNF-FW-FORWARD', 'SNF-FW-FORWARD-LOG']
    assert model['policies']['INPUT'] == 'ACCEPT'


def test_input_allow_one_rule_per_source():
    model = fp.plan(dict(firewall_input_allow=[SSH, dict(name='web', port=[80, 443, '8000-8100'], comment=''),
                                               dict(name='dns', protocol='udp', port='53', in_interface='eth+')]))
    rules = chain(model, 'SNF-FW-INPUT')['rules'][5:]
    assert rules == [
        dict(name='allow:ssh.0', jump='ACCEPT', protocol='tcp', source='203.0.113.0/24', destination_port=22,
             comment='administrators'),
        dict(name='allow:ssh.1', jump='ACCEPT', protocol='tcp', source='2001:db8:113::/64', destination_port=22,
             comment='administrators'),
        dict(name='allow:web', jump='ACCEPT', protocol='tcp', destination_port=[80, 443, '8000-8100']),
        dict(name='allow:dns', jump='ACCEPT', protocol='udp', in_interface='eth+', destination_port='53'),
    ]


@pytest.mark.parametrize('family, kept, icmp', [
    ('ipv4', ['allow:ssh.0', 'allow:ping4', 'allow:any'], 'base:icmp'),
    ('ipv6', ['allow:ssh.1', 'allow:ping6', 'allow:any'], 'base:icmpv6'),
])
def test_one_family_leaves_out_the_other(family, kept, icmp):
    allow = [SSH, dict(name='ping4', protocol='icmp'), dict(name='ping6', protocol='icmpv6'), dict(name='any')]
    model = fp.plan(dict(firewall_families=[family, family], firewall_input_allow=allow))
    assert model['family'] == family
    assert names(model, 'SNF-FW-INPUT') == ['base:loopback', 'base:established', 'base:invalid', icmp] + kept


def test_forward_allow_pairs_of_one_family():
    allow = [dict(name='mixed', sources=['10.0.0.0/8', 'fd00::/8'], destinations=['192.168.0.0/16', 'fd01::/64'],
                  out_interface='eth0', protocol='tcp', port=443),
             dict(name='all')]
    rules = chain(fp.plan(dict(firewall_forward_allow=allow)), 'SNF-FW-FORWARD')['rules'][2:]
    # Pairs 1 and 2 mix the families: no packet matches both, so no rule; names keep the pair's index.
    assert [(r['name'], r['source'], r['destination']) for r in rules[:2]] == [
        ('allow:mixed.0', '10.0.0.0/8', '192.168.0.0/16'), ('allow:mixed.3', 'fd00::/8', 'fd01::/64')]
    assert rules[0]['out_interface'] == 'eth0' and rules[0]['destination_port'] == 443
    assert rules[2] == dict(name='allow:all', jump='ACCEPT')


def test_values_reach_the_model_as_the_module_would_take_them():
    rule = chain(fp.plan(dict(firewall_input_allow=[dict(name='n', protocol=6, port=22, comment=7)])),
                 'SNF-FW-INPUT')['rules'][-1]
    assert rule == dict(name='allow:n', jump='ACCEPT', protocol='6', destination_port=22, comment='7')


BAD_INPUT = [
    (dict(firewall_families=[]), 'firewall_families: give ipv4, ipv6 or both.'),
    (dict(firewall_input_allow=[dict(name='ssh\n')]),
     'firewall_input_allow: names must be 1-48 letters, digits, _ . : / @ or -, starting with a letter or a digit: '
     '"ssh\\n".'),
    (dict(firewall_forward_allow=[dict(name='-x'), dict(name='a' * 49)]), 'firewall_forward_allow: names must be'),
    (dict(firewall_input_allow=[dict(name='a'), dict(name='b'), dict(name='a')]),
     'firewall_input_allow: a name is used twice: a.'),
    (dict(firewall_input_allow=[dict(name='lite', protocol='udplite', port=5000)]),
     'firewall_input_allow: a port needs protocol tcp, udp or sctp (a list of ports also udplite or dccp): lite.'),
    (dict(firewall_forward_allow=[dict(name='gre', protocol='gre', port=[1, 2])]),
     'firewall_forward_allow: a port needs protocol'),
    (dict(firewall_input_allow=[dict(name='admins', port=22, sources=['10.1.2.3/8'])]),
     "firewall_input_allow entry admins: sources: '10.1.2.3/8' has host bits set"),
    (dict(firewall_forward_allow=[dict(name='to', destinations=['192.168.1.300'])]),
     'firewall_forward_allow entry to: destinations: '),
    (dict(firewall_input_allow=[dict(name='web', port=['1-2'] + list(range(3, 17)))]),
     'firewall_input_allow entry web: port: 16 ports given (a range counts 2); the kernel takes at most 15'),
    (dict(firewall_input_allow=[dict(name='eth', in_interface='eth 0')]), 'firewall_input_allow entry eth: in_interface: '),
    (dict(firewall_forward_allow=[dict(name='c', comment='snf:x')]), 'firewall_forward_allow entry c: comment: '),
]


@pytest.mark.parametrize('variables, message', BAD_INPUT)
def test_bad_input_names_the_variable_and_the_entry(variables, message):
    with pytest.raises(fp.PlanError) as info:
        fp.plan(variables)
    assert str(info.value).startswith(message)


def test_every_input_problem_at_once():
    with pytest.raises(fp.PlanError) as info:
        fp.plan(dict(firewall_families=[],
                     firewall_input_allow=[dict(name='x y'), dict(name='p', protocol='gre', port=1)]))
    assert str(info.value) == (
        'firewall_families: give ipv4, ipv6 or both. firewall_input_allow: names must be 1-48 letters, digits, '
        '_ . : / @ or -, starting with a letter or a digit: "x y". firewall_input_allow: a port needs protocol '
        'tcp, udp or sctp (a list of ports also udplite or dccp): p.')


def test_protocol_numbers_count_as_port_protocols():
    model = fp.plan(dict(firewall_input_allow=[dict(name='n', protocol='17', port=53),
                                               dict(name='l', protocol='136', port=[1, 2])]))
    assert names(model, 'SNF-FW-INPUT')[-2:] == ['allow:n', 'allow:l']


def test_an_error_of_no_entry_is_the_roles():
    exc = ValidationError('chains[0].rules[0].name', 'bad')
    assert fp.entry_message(exc, {}) == 'firewall: chains[0].rules[0].name: bad'
    assert fp.entry_message(ValidationError('policies.INPUT', 'x'), {}) == 'firewall: policies.INPUT: x'


def test_render_is_the_restore_input_of_the_model():
    model = fp.plan(dict(firewall_input_allow=[SSH], firewall_log_dropped=True))
    rendered = fp.render(model, 'FW')
    assert sorted(rendered) == ['ipv4', 'ipv6']
    ipv4 = rendered['ipv4'].splitlines()
    assert ipv4[0] == '*filter' and ipv4[-1] == 'COMMIT'
    assert ('-A SNF-FW-INPUT -s 203.0.113.0/24 -p tcp -m tcp --dport 22 -m comment --comment '
            '"snf:allow:ssh.0 administrators" -j ACCEPT') in ipv4
    assert '-I INPUT 1 -j SNF-FW-INPUT' in ipv4 and '-A INPUT -j SNF-FW-INPUT-LOG' in ipv4
    assert not [line for line in ipv4 if '2001:db8' in line or 'icmpv6' in line]
    assert '-A SNF-FW-INPUT -s 2001:db8:113::/64 -p tcp' in rendered['ipv6']
    assert sorted(fp.render(fp.plan(dict(firewall_families=['ipv6'])), 'FW')) == ['ipv6']


def test_render_names_the_parameter_of_a_bad_model():
    with pytest.raises(ValidationError, match=r'^chains\[0\]\.rules\[0\]\.jump: '):
        fp.render(dict(family='ipv4', chains=[dict(name='SNF-FW-X', rules=[dict(name='r', jump='NOPE')])]), 'FW')


# ---------------------------------------------------------------------------
# SSH guard

CONNECTION = '203.0.113.8 40022 203.0.113.1 22'
ROUTE = '203.0.113.8 dev eth1 src 203.0.113.1 uid 0\n    cache\n'


def verdict(allow, connection=CONNECTION, route=ROUTE, families=('ipv4', 'ipv6'), **variables):
    variables.update(firewall_input_allow=allow)
    return fp.ssh_verdict(fp.plan(variables), connection, route, list(families), 'gw')


@pytest.mark.parametrize('allow, accepted, decided_by', [
    ([SSH], True, 'SNF-FW-INPUT rule allow:ssh.0'),
    ([], False, 'the INPUT policy DROP'),
    ([dict(name='ssh', port=22, sources=['198.51.100.0/24'])], False, 'the INPUT policy DROP'),
    ([dict(name='ssh', port=22, in_interface='eth0')], False, 'the INPUT policy DROP'),
    ([dict(name='ssh', port=22, in_interface='eth+')], True, 'SNF-FW-INPUT rule allow:ssh'),
    ([dict(name='ssh', port=[2222, '8000-8022'], sources=['203.0.113.8'])], False, 'the INPUT policy DROP'),
    ([dict(name='ssh-range', port=[2222, '20-23'], in_interface='eth+')], True, 'SNF-FW-INPUT rule allow:ssh-range'),
    ([dict(name='ssh', port='20:30')], True, 'SNF-FW-INPUT rule allow:ssh'),
    ([dict(name='ssh', port='21,22')], True, 'SNF-FW-INPUT rule allow:ssh'),
    ([dict(name='udp', protocol='udp', port=22), dict(name='all', sources=['203.0.113.0/24'])], True,
     'SNF-FW-INPUT rule allow:all'),
    ([dict(name='v6', port=22, sources=['2001:db8:113::/64'])], False, 'the INPUT policy DROP'),
])
def test_guard_verdicts(allow, accepted, decided_by):
    result = verdict(allow)
    assert (result['accepted'], result['decided_by'], result['family']) == (accepted, decided_by, 'ipv4')
    assert result['checked'] and not result['needs_route']
    if accepted:
        assert result['message'] == ('firewall_ssh_guard: a new SSH connection from 203.0.113.8 to port 22 is '
                                     'accepted by %s, its replies by the OUTPUT policy ACCEPT' % decided_by)
    else:
        assert result['message'].startswith('firewall_ssh_guard: refusing to apply; a new SSH connection from '
                                            '203.0.113.8 to port 22 (ipv4) would be dropped by %s.' % decided_by)
        assert 'Nothing was changed.' in result['message']


def test_guard_with_an_accept_policy():
    assert verdict([], firewall_input_policy='accept')['decided_by'] == 'the INPUT policy ACCEPT'


def test_guard_ipv6_client_and_unmanaged_family():
    connection = '2001:db8:113::8 40022 2001:db8:113::1 22'
    assert verdict([SSH], connection)['decided_by'] == 'SNF-FW-INPUT rule allow:ssh.1'
    result = verdict([], connection, families=['ipv4'], firewall_families=['ipv4'])
    assert result['accepted'] and result['decided_by'] == 'ipv6 is not managed by the role'


def test_guard_asks_for_the_route_only_when_an_interface_could_decide():
    allow = [dict(name='lan', port=22, in_interface='eth0'), SSH]
    first = verdict(allow, route=None, firewall_allow_loopback=False)
    assert first['needs_route'] and not first['accepted'] and not first['checked']
    assert verdict(allow)['decided_by'] == 'SNF-FW-INPUT rule allow:ssh.0'
    # A rule that cannot match whatever the interface does not need it.
    assert not verdict([dict(name='lan', port=80, in_interface='eth0'), SSH], route=None,
                       firewall_allow_loopback=False)['needs_route']
    # The loopback rule comes first and names an interface (a client of the host's own addresses arrives on lo),
    # so the route is needed whenever loopback is accepted.
    assert verdict([SSH], route=None)['needs_route']
    assert not verdict([SSH], route=None, firewall_allow_loopback=False)['needs_route']
    assert verdict([SSH], route='local 203.0.113.8 dev lo')['decided_by'] == 'SNF-FW-INPUT rule base:loopback'


def test_guard_route_without_an_interface_matches_no_interface_rule():
    assert verdict([dict(name='ssh', port=22, in_interface='eth+')], route='unreachable')['accepted'] is False


@pytest.mark.parametrize('rule', [
    dict(name='syn', protocol='tcp', syn=False, jump='ACCEPT'),
    dict(name='limited', protocol='tcp', limit='1/sec', jump='ACCEPT'),
    dict(name='sport', protocol='tcp', source_port=40022, jump='ACCEPT'),
    dict(name='log', jump='LOG'),
    dict(name='est', ctstate=['ESTABLISHED'], jump='ACCEPT'),
    dict(name='icmp', protocol='icmp', jump='ACCEPT'),
])
def test_guard_skips_rules_that_cannot_decide(rule):
    model = dict(policies={'INPUT': 'DROP'},
                 chains=[dict(name='SNF-FW-INPUT', hook='INPUT', hook_position='first', rules=[rule]),
                         dict(name='SNF-FW-X', hook='INPUT', hook_position='last',
                              rules=[dict(name='late', jump='ACCEPT')])])
    assert fp.ssh_verdict(model, CONNECTION, ROUTE)['decided_by'] == 'the INPUT policy DROP'


def test_guard_reject_and_drop_decide():
    model = dict(policies={'INPUT': 'ACCEPT'}, chains=[dict(name='SNF-FW-INPUT', hook='INPUT', rules=[
        dict(name='no', protocol='tcp', destination_port=22, destination='203.0.113.1', jump='REJECT')])])
    result = fp.ssh_verdict(model, CONNECTION, ROUTE)
    assert not result['accepted'] and result['decided_by'] == 'SNF-FW-INPUT rule no'


@pytest.mark.parametrize('connection', ['', None, '203.0.113.8 40022 203.0.113.1'])
def test_guard_without_ssh_connection(connection):
    result = fp.ssh_verdict(fp.plan({}), connection, None, host='gw')
    assert result['accepted'] and not result['checked'] and not result['needs_route']
    assert result['message'].startswith('firewall_ssh_guard: no SSH_CONNECTION in the environment of gw ')


@pytest.mark.parametrize('route, interface', [
    (ROUTE, 'eth1'),
    ('local 127.0.0.1 dev lo table local src 127.0.0.1', 'lo'),
    ('2001:db8::8 from :: dev eth1.100 proto kernel src 2001:db8::1 metric 256 pref medium', 'eth1.100'),
    ('RTNETLINK answers: Network is unreachable', None),
    ('', None),
])
def test_route_interface(route, interface):
    assert fp.route_interface(route) == interface


# Egress filtering: firewall_output_allow and the OUTPUT side of the SSH guard.

EGRESS = dict(firewall_output_policy='drop', firewall_output_allow=[
    dict(name='dns', protocol='udp', port=53, destinations=['192.0.2.53', '2001:db8::53'], comment='resolver'),
    dict(name='web', port=[80, 443], out_interface='eth1'),
    dict(name='ntp4', protocol='udp', port=123, family='ipv4'),
])


def test_output_allow_after_the_state_aware_base():
    model = fp.plan(EGRESS)
    assert names(model, 'SNF-FW-OUTPUT') == ['base:loopback', 'base:established', 'base:invalid', 'base:icmp',
                                             'base:icmpv6', 'allow:dns.0', 'allow:dns.1', 'allow:web', 'allow:ntp4']
    assert chain(model, 'SNF-FW-OUTPUT')['rules'][5:] == [
        dict(name='allow:dns.0', jump='ACCEPT', protocol='udp', destination='192.0.2.53', destination_port=53,
             comment='resolver'),
        dict(name='allow:dns.1', jump='ACCEPT', protocol='udp', destination='2001:db8::53', destination_port=53,
             comment='resolver'),
        dict(name='allow:web', jump='ACCEPT', protocol='tcp', out_interface='eth1', destination_port=[80, 443]),
        dict(name='allow:ntp4', jump='ACCEPT', protocol='udp', destination_port=123, family='ipv4'),
    ]
    # Both families render: the ipv4-only entry lands in the IPv4 table only.
    rendered = fp.render(model, 'FW')
    assert '-A SNF-FW-OUTPUT -p udp -m udp --dport 123 ' in rendered['ipv4']
    assert '--dport 123' not in rendered['ipv6']
    assert '-A SNF-FW-OUTPUT -d 2001:db8::53/128 -p udp -m udp --dport 53 ' in rendered['ipv6']


def test_output_allow_of_one_family():
    model = fp.plan(dict(EGRESS, firewall_families=['ipv6']))
    assert names(model, 'SNF-FW-OUTPUT')[-2:] == ['allow:dns.1', 'allow:web']
    assert 'allow:ntp4' not in names(fp.plan(dict(EGRESS, firewall_families=['ipv6'])), 'SNF-FW-OUTPUT')


def test_output_without_drop_invalid_or_loopback():
    model = fp.plan(dict(EGRESS, firewall_drop_invalid=False, firewall_allow_loopback=False, firewall_allow_icmp=False))
    # ESTABLISHED,RELATED first; NEW only through the allow entries (and neighbour discovery).
    assert names(model, 'SNF-FW-OUTPUT')[0] == 'base:established'
    assert 'base:invalid' not in names(model, 'SNF-FW-OUTPUT')


@pytest.mark.parametrize('variables, message', [
    (dict(firewall_output_allow=[dict(name='dns', protocol='udp', port=53)]),
     'firewall_output_allow: needs firewall_output_policy drop (with accept everything leaves anyway): dns.'),
    (dict(firewall_output_policy='drop',
          firewall_output_allow=[dict(name='x', family='ipv4', destinations=['2001:db8::1'])]),
     'firewall_output_allow entry x: destinations: 2001:db8::1 is not ipv4 (family ipv4).'),
    (dict(firewall_output_policy='drop', firewall_output_allow=[dict(name='x', family='ip4')]),
     'firewall_output_allow entry x: family: "ip4" is not ipv4 or ipv6.'),
    (dict(firewall_output_policy='drop', firewall_output_allow=[dict(name='a b')]),
     'firewall_output_allow: names must be'),
    (dict(firewall_output_policy='drop', firewall_output_allow=[dict(name='a'), dict(name='a')]),
     'firewall_output_allow: a name is used twice: a.'),
    (dict(firewall_output_policy='drop', firewall_output_allow=[dict(name='gre', protocol='gre', port=1)]),
     'firewall_output_allow: a port needs protocol'),
    (dict(firewall_output_policy='drop', firewall_output_allow=[dict(name='to', destinations=['10.0.0.300'])]),
     'firewall_output_allow entry to: destinations: '),
    (dict(firewall_output_policy='drop', firewall_output_allow=[dict(name='o', out_interface='eth 1')]),
     'firewall_output_allow entry o: out_interface: '),
    (dict(firewall_output_policy='drop', firewall_output_allow=[dict(name='p', port=70000)]),
     'firewall_output_allow entry p: port: '),
])
def test_bad_output_allow_names_the_variable_and_the_entry(variables, message):
    with pytest.raises(fp.PlanError) as info:
        fp.plan(variables)
    assert str(info.value).startswith(message)


def test_log_chains_settings_per_chain():
    model = fp.plan(dict(firewall_output_policy='drop', firewall_log_dropped=True, firewall_log_chains=dict(
        input=dict(prefix='in-drop ', rate='60/min', burst=3, level='info'),
        forward=dict(enabled=False),
        output=dict(prefix='egress: ', level=4))))
    logged = [c['name'] for c in model['chains'] if c['hook_position'] == 'last']
    assert logged == ['SNF-FW-INPUT-LOG', 'SNF-FW-OUTPUT-LOG']
    assert chain(model, 'SNF-FW-INPUT-LOG')['rules'] == [dict(name='log', limit='1/sec', limit_burst=3, jump='LOG',
                                                              log_prefix='in-drop ', log_level='info')]
    assert chain(model, 'SNF-FW-OUTPUT-LOG')['rules'] == [dict(name='log', limit='5/min', limit_burst=10,
                                                               jump='LOG', log_prefix='egress: ', log_level='4')]
    rendered = fp.render(model, 'FW')['ipv4']
    assert ('-A SNF-FW-INPUT-LOG -m limit --limit 1/sec --limit-burst 3 -m comment --comment "snf:log" -j LOG '
            '--log-prefix "in-drop " --log-level 6') in rendered
    assert '--log-prefix "egress: "\n' in rendered


def test_log_chain_enabled_without_log_dropped():
    model = fp.plan(dict(firewall_log_chains=dict(forward=dict(enabled=True), input=dict(prefix='x'))))
    assert [c['name'] for c in model['chains'] if c['hook_position'] == 'last'] == ['SNF-FW-FORWARD-LOG']
    assert chain(model, 'SNF-FW-FORWARD-LOG')['rules'][0]['log_prefix'] == 'snf-fw-forward-drop: '


@pytest.mark.parametrize('chains, message', [
    (dict(input=dict(prefix='p' * 30)), 'firewall_log_chains.input.prefix: is longer than 29 bytes.'),
    (dict(output=dict(rate='0/sec')), "firewall_log_chains.output.rate: rate '0/sec' is out of range."),
    (dict(output=dict(rate='fast')), "firewall_log_chains.output.rate: 'fast' is not a rate"),
    (dict(forward=dict(burst=0)), 'firewall_log_chains.forward.burst: 0 is not a burst (1-10000).'),
    (dict(forward=dict(burst=True)), 'firewall_log_chains.forward.burst: True is not a burst'),
    (dict(input=dict(level='loud')), "firewall_log_chains.input.level: 'loud' is not a log level (0-7 or emerg"),
    (dict(input=dict(level=8)), 'firewall_log_chains.input.level: 8 is not a log level'),
    (dict(prerouting={}), 'firewall_log_chains: "prerouting" is not a chain (input, forward or output).'),
    (dict(input=dict(colour='red')), 'firewall_log_chains.input: unknown settings colour (known: enabled, prefix'),
    (dict(input='yes'), 'firewall_log_chains.input: expected a dictionary of enabled, prefix'),
    (dict(output=dict(enabled=True)),
     'firewall_log_chains.output.enabled: needs firewall_output_policy drop (what meets a drop policy is logged).'),
])
def test_bad_log_chains_name_the_setting(chains, message):
    with pytest.raises(fp.PlanError) as info:
        fp.plan(dict(firewall_log_chains=chains))
    assert str(info.value).startswith(message)


def test_bad_log_chains_all_at_once():
    with pytest.raises(fp.PlanError) as info:
        fp.plan(dict(firewall_log_chains=dict(input=dict(prefix='p' * 30), output=dict(rate='0/min', level='x'))))
    assert str(info.value) == ('firewall_log_chains.input.prefix: is longer than 29 bytes. '
                               "firewall_log_chains.output.rate: rate '0/min' is out of range.")


def test_guard_counts_the_replies_in_output():
    result = verdict([SSH], **EGRESS)
    assert result['accepted'] and result['output_decided_by'] == 'SNF-FW-OUTPUT rule base:established'
    assert result['message'].endswith('its replies by SNF-FW-OUTPUT rule base:established')
    # DNS or NTP are not what keeps SSH alive: nothing but the allow entries lets NEW out.
    assert 'allow:dns.0' in names(fp.plan(EGRESS), 'SNF-FW-OUTPUT')


def output_model(rules, policy='DROP'):
    return dict(policies={'INPUT': 'ACCEPT', 'OUTPUT': policy},
                chains=[dict(name='SNF-FW-OUTPUT', hook='OUTPUT', hook_position='first', rules=rules),
                        dict(name='SNF-FW-OUTPUT-LOG', hook='OUTPUT', hook_position='last',
                             rules=[dict(name='late', jump='ACCEPT')])])


@pytest.mark.parametrize('rules, accepted, decided_by', [
    ([], False, 'the OUTPUT policy DROP'),
    ([dict(name='est', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT')], True, 'SNF-FW-OUTPUT rule est'),
    ([dict(name='new', ctstate=['NEW'], jump='ACCEPT')], False, 'the OUTPUT policy DROP'),
    ([dict(name='sport', protocol='tcp', source_port=22, jump='ACCEPT')], True, 'SNF-FW-OUTPUT rule sport'),
    ([dict(name='dport', protocol='tcp', destination_port=40022, destination='203.0.113.0/24', jump='ACCEPT')],
     True, 'SNF-FW-OUTPUT rule dport'),
    ([dict(name='other', protocol='tcp', destination_port=22, jump='ACCEPT')], False, 'the OUTPUT policy DROP'),
    ([dict(name='udp', protocol='udp', jump='ACCEPT')], False, 'the OUTPUT policy DROP'),
    ([dict(name='v6', destination='2001:db8::/32', jump='ACCEPT')], False, 'the OUTPUT policy DROP'),
    ([dict(name='v6f', family='ipv6', jump='ACCEPT')], False, 'the OUTPUT policy DROP'),
    ([dict(name='syn', protocol='tcp', syn=True, jump='ACCEPT')], False, 'the OUTPUT policy DROP'),
    ([dict(name='notsyn', protocol='tcp', syn=False, jump='ACCEPT')], True, 'SNF-FW-OUTPUT rule notsyn'),
    ([dict(name='limited', limit='1/sec', jump='ACCEPT')], False, 'the OUTPUT policy DROP'),
    ([dict(name='cut', destination='203.0.113.8', jump='DROP'),
      dict(name='est', ctstate=['ESTABLISHED'], jump='ACCEPT')], False, 'SNF-FW-OUTPUT rule cut'),
    ([dict(name='eth1', out_interface='eth+', jump='ACCEPT')], True, 'SNF-FW-OUTPUT rule eth1'),
    ([dict(name='eth0', out_interface='eth0', jump='ACCEPT')], False, 'the OUTPUT policy DROP'),
])
def test_guard_output_verdicts(rules, accepted, decided_by):
    result = fp.ssh_verdict(output_model(rules), CONNECTION, ROUTE)
    assert (result['accepted'], result['output_decided_by'], result['decided_by']) == (
        accepted, decided_by, 'the INPUT policy ACCEPT')
    if not accepted:
        assert result['message'] == (
            'firewall_ssh_guard: refusing to apply; the replies of the SSH connection from 203.0.113.8 to port 22 '
            '(ipv4) would be dropped by %s: they leave as ESTABLISHED, keep them accepted before any drop in '
            'OUTPUT, or set firewall_ssh_guard to false. Nothing was changed.' % decided_by)


def test_guard_output_needs_the_route_for_an_interface_rule():
    model = output_model([dict(name='eth1', out_interface='eth1', jump='ACCEPT')])
    first = fp.ssh_verdict(model, CONNECTION, None)
    assert first['needs_route'] and not first['accepted'] and 'rule eth1 names one' in first['message']
    assert fp.ssh_verdict(model, CONNECTION, ROUTE)['accepted']
    assert fp.ssh_verdict(output_model([]), CONNECTION, None)['checked']


def test_with_nftables_the_sources_of_an_entry_are_one_rule_per_family_matching_a_list():
    variables = {'firewall_input_allow': [
        {'name': 'ssh', 'port': 22, 'sources': ['10.0.0.0/24', '2001:db8::/64', '10.1.0.0/24', '192.168.0.0/16']},
        {'name': 'web', 'port': 443, 'sources': ['198.51.100.0/24']}],
        'firewall_forward_allow': [{'name': 'dns', 'port': 53, 'protocol': 'udp',
                                    'sources': ['10.0.0.0/24', '10.2.0.0/24'],
                                    'destinations': ['192.0.2.53', '2001:db8::53', '192.0.2.54']}]}

    def allowed(model, chain):
        return [(rule['name'], rule.get('source'), rule.get('destination')) for rule in model['chains'][chain]['rules']
                if rule['name'].startswith('allow:')]

    linear, sets = fp.plan(variables, 'FW'), fp.plan(variables, 'FW', 'nftables')
    assert len(allowed(linear, 0)) == 5 and len(allowed(linear, 1)) == 4  # one per source (and destination) pair
    assert allowed(sets, 0) == [('allow:ssh.0', ['10.0.0.0/24', '10.1.0.0/24', '192.168.0.0/16'], None),
                                ('allow:ssh.1', '2001:db8::/64', None), ('allow:web', '198.51.100.0/24', None)]
    # An IPv4 source list never pairs with the IPv6 destination: no packet matches both.
    assert allowed(sets, 1) == [('allow:dns.0', ['10.0.0.0/24', '10.2.0.0/24'], ['192.0.2.53', '192.0.2.54'])]
