# SPDX-License-Identifier: GPL-3.0-or-later
"""The nat_gateway role's planning: role variables -> rule model, input checks, stale translations, sysctls."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.stateful.netfilter.plugins.module_utils import _nat_plan as npl
from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import render as render_model
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import (
    BUILTIN_CHAINS,
    empty_table,
    parse_save,
    read_owned,
)

MASQ = dict(source='192.168.1.0/24', out_interface='eth1')
SNAT4 = dict(source='192.168.1.0/24', out_interface='eth1', to_source='203.0.113.3')
SNAT6 = dict(source='fd00:1::/64', out_interface='eth1', to_source='2001:db8::3')
WEB = dict(name='web', protocol='tcp', port=8080, in_interface='eth1', to='192.168.1.100:80')
WEB6 = dict(name='web6', protocol='tcp', port=8080, in_interface='eth1', to='[fd00:1::100]:80')


def chain(chains, name):
    return [c for c in chains if c['name'] == name][0]


def test_nothing_to_do_plans_no_chains_but_forwarding():
    model = npl.plan({})
    assert model == dict(nat_chains=[], filter_chains=[], raw_chains=[], mangle_chains=[],
                         sysctls={'net.ipv4.ip_forward': 1})
    assert npl.plan(dict(nat_gateway_forwarding=False))['sysctls'] == {}


def test_translations_and_their_forward_accepts():
    model = npl.plan(dict(nat_gateway_masquerade=[dict(out_interface='ppp+')], nat_gateway_snat=[SNAT4],
                          nat_gateway_port_forwards=[WEB]))
    assert [(c['name'], c['hook'], c['hook_position']) for c in model['nat_chains']] == [
        ('SNF-GW-PRE', 'PREROUTING', 'first'), ('SNF-GW-POST', 'POSTROUTING', 'first')]
    assert chain(model['nat_chains'], 'SNF-GW-POST')['rules'] == [
        dict(name='masq:any@ppp.x', jump='MASQUERADE', out_interface='ppp+'),
        dict(name='snat:192.168.1.0/24@eth1', jump='SNAT', to_source='203.0.113.3', source='192.168.1.0/24',
             out_interface='eth1')]
    assert chain(model['nat_chains'], 'SNF-GW-PRE')['rules'] == [
        dict(name='pf:web', protocol='tcp', destination_port=8080, jump='DNAT', to_destination='192.168.1.100:80',
             in_interface='eth1')]
    assert [(c['name'], c['hook']) for c in model['filter_chains']] == [('SNF-GW-FORWARD', 'FORWARD')]
    assert model['filter_chains'][0]['rules'] == [
        dict(name='base:established', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
        dict(name='out:any@ppp.x', ctstate=['NEW'], jump='ACCEPT', out_interface='ppp+'),
        dict(name='out:192.168.1.0/24@eth1', ctstate=['NEW'], jump='ACCEPT', source='192.168.1.0/24',
             out_interface='eth1'),
        # The accept matches the translated destination: the server and its port.
        dict(name='pf:web', protocol='tcp', destination='192.168.1.100', destination_port='80', ctstate=['DNAT'],
             jump='ACCEPT', in_interface='eth1')]
    assert model['sysctls'] == {'net.ipv4.ip_forward': 1}


def test_one_accept_for_a_masquerade_and_an_snat_of_the_same_source():
    model = npl.plan(dict(nat_gateway_masquerade=[MASQ], nat_gateway_snat=[SNAT4]))
    assert [rule['name'] for rule in model['filter_chains'][0]['rules']] == [
        'base:established', 'out:192.168.1.0/24@eth1']
    assert [rule['name'] for rule in model['nat_chains'][0]['rules']] == [
        'masq:192.168.1.0/24@eth1', 'snat:192.168.1.0/24@eth1']


def test_without_forward_outbound_only_port_forwards_are_accepted():
    assert npl.plan(dict(nat_gateway_forward_outbound=False, nat_gateway_masquerade=[MASQ]))['filter_chains'] == []
    rules = npl.plan(dict(nat_gateway_forward_outbound=False, nat_gateway_masquerade=[MASQ],
                          nat_gateway_port_forwards=[WEB]))['filter_chains'][0]['rules']
    assert [rule['name'] for rule in rules] == ['base:established', 'pf:web']


@pytest.mark.parametrize('to, address, port', [
    ('192.168.1.7', '192.168.1.7', None),
    ('192.168.1.7:80', '192.168.1.7', '80'),
    ('[fd00::7]:8000-8010', 'fd00::7', '8000-8010'),
    ('[fd00::7]', 'fd00::7', None),
    ('fd00::7', 'fd00::7', None),
    ('10.0.0.1-10.0.0.9:1024-2048', '10.0.0.1-10.0.0.9', '1024-2048'),
])
def test_split_target(to, address, port):
    assert npl.split_target(to) == (address, port)


def test_a_port_forward_without_a_port_keeps_the_gateway_port():
    rules = npl.plan(dict(nat_gateway_port_forwards=[dict(name='dns', protocol='udp', port='53', to='fd00::53')]))
    accept = rules['filter_chains'][0]['rules'][-1]
    assert (accept['destination'], accept['destination_port'], accept['protocol']) == ('fd00::53', '53', 'udp')


@pytest.mark.parametrize('variables, ipv6', [
    (dict(nat_gateway_snat=[SNAT4]), False),
    (dict(nat_gateway_snat=[SNAT6]), True),
    (dict(nat_gateway_snat=[dict(to_source='2001:db8::3')]), True),
    (dict(nat_gateway_masquerade=[dict(source='fd00::/8')]), True),
    (dict(nat_gateway_port_forwards=[WEB]), False),
    (dict(nat_gateway_port_forwards=[WEB6]), True),
])
def test_ipv6_forwarding_only_with_an_ipv6_address(variables, ipv6):
    sysctls = npl.plan(variables)['sysctls']
    assert ('net.ipv6.conf.all.forwarding' in sysctls) is ipv6
    variables['nat_gateway_forwarding'] = False
    assert npl.plan(variables)['sysctls'] == {}


def test_conntrack_sysctls_in_order():
    sysctls = npl.plan(dict(nat_gateway_conntrack_max='262144', nat_gateway_conntrack_timeouts=dict(
        nf_conntrack_udp_timeout='60', nf_conntrack_tcp_timeout_established=86400)))['sysctls']
    assert list(sysctls.items()) == [('net.ipv4.ip_forward', 1), ('net.netfilter.nf_conntrack_max', 262144),
                                     ('net.netfilter.nf_conntrack_udp_timeout', 60),
                                     ('net.netfilter.nf_conntrack_tcp_timeout_established', 86400)]


def test_other_scope():
    model = npl.plan(dict(nat_gateway_port_forwards=[WEB]), scope='EDGE')
    assert [c['name'] for c in model['nat_chains'] + model['filter_chains']] == ['SNF-EDGE-PRE', 'SNF-EDGE-FORWARD']


BAD_INPUT = [
    (dict(nat_gateway_port_forwards=[dict(WEB, name='web\n')]),
     'nat_gateway_port_forwards: names must be 1-48 letters, digits, _ . : / @ or -, starting with a letter or a '
     'digit: "web\\n".'),
    (dict(nat_gateway_port_forwards=[WEB, dict(WEB, port=8081)]), 'nat_gateway_port_forwards: a name is used twice: web.'),
    (dict(nat_gateway_port_forwards=[dict(WEB, port=[80, 443])]),
     'nat_gateway_port_forwards: port is one port or an A-B range, not a list: web.'),
    (dict(nat_gateway_port_forwards=[dict(WEB, port='80,443')]),
     'nat_gateway_port_forwards: port is one port or an A-B range, not a list: web.'),
    (dict(nat_gateway_masquerade=[MASQ, dict(MASQ)]),
     'nat_gateway_masquerade: two entries translate the same source out of the same interface: '
     '192.168.1.0/24@eth1.'),
    (dict(nat_gateway_conntrack_timeouts={'tcp_established': 60}),
     'nat_gateway_conntrack_timeouts: expected names of nf_conntrack_*timeout* sysctls (for example '
     'nf_conntrack_tcp_timeout_established) with a number of seconds: "tcp_established".'),
    (dict(nat_gateway_conntrack_timeouts={'nf_conntrack_udp_timeout\n': 60}), 'nat_gateway_conntrack_timeouts: '),
    (dict(nat_gateway_conntrack_timeouts={'nf_conntrack_udp_timeout': 'soon'}),
     'nat_gateway_conntrack_timeouts: expected names of nf_conntrack_*timeout* sysctls (for example '
     'nf_conntrack_tcp_timeout_established) with a number of seconds: "soon".'),
    (dict(nat_gateway_conntrack_timeouts={'nf_conntrack_udp_timeout': True}), 'nat_gateway_conntrack_timeouts: '),
    (dict(nat_gateway_conntrack_max=0), 'nat_gateway_conntrack_max: expected a positive number, got 0.'),
    (dict(nat_gateway_conntrack_max=-5), 'nat_gateway_conntrack_max: expected a positive number, got -5.'),
    (dict(nat_gateway_masquerade=[dict(source='192.168.1.0/33', out_interface='eth1')]),
     "nat_gateway_masquerade entry 192.168.1.0/33@eth1: source: '192.168.1.0/33' is not an IP address or CIDR"),
    (dict(nat_gateway_snat=[dict(source='10.0.0.0/8', to_source='10.0.0.300')]),
     'nat_gateway_snat entry 10.0.0.0/8@any: to_source: '),
    (dict(nat_gateway_snat=[dict(source='10.0.0.0/8', to_source='fd00::1')]),
     'nat_gateway_snat entry 10.0.0.0/8@any: to_source: '),
    (dict(nat_gateway_port_forwards=[dict(WEB, to='192.168.1.300:80')]), 'nat_gateway_port_forwards entry web: to: '),
    (dict(nat_gateway_port_forwards=[dict(WEB, to='192.168.1.1-192.168.1.9:80')]),
     'nat_gateway_port_forwards entry web: to: '),
    (dict(nat_gateway_port_forwards=[dict(WEB, port='0-70000')]), 'nat_gateway_port_forwards entry web: port: '),
    (dict(nat_gateway_port_forwards=[dict(WEB, in_interface='eth 1')]),
     'nat_gateway_port_forwards entry web: in_interface: '),
    (dict(nat_gateway_masquerade=[dict(out_interface='a' * 20)]),
     'nat_gateway_masquerade entry any@%s: ' % ('a' * 20)),
]


@pytest.mark.parametrize('variables, message', BAD_INPUT)
def test_bad_input_names_the_variable_and_the_entry(variables, message):
    with pytest.raises(npl.PlanError) as info:
        npl.plan(variables)
    assert str(info.value).startswith(message)


def test_every_input_problem_at_once():
    with pytest.raises(npl.PlanError) as info:
        npl.plan(dict(nat_gateway_port_forwards=[dict(WEB, name='a b', port=[1, 2])],
                      nat_gateway_conntrack_max=0))
    assert str(info.value) == (
        'nat_gateway_port_forwards: names must be 1-48 letters, digits, _ . : / @ or -, starting with a letter or '
        'a digit: "a b". nat_gateway_port_forwards: port is one port or an A-B range, not a list: a b. '
        'nat_gateway_conntrack_max: expected a positive number, got 0.')


# ---------------------------------------------------------------------------
# Stale translations

def gathered_of(chains, scope='GW'):
    """What the ruleset module's state gathered returns after the planned nat chains were applied."""
    prefix = 'SNF-%s-' % scope
    out = {}
    for family, text in render_model(dict(table='nat', family='both', chains=chains), scope).items():
        table = parse_save(text)[0].get('nat') or empty_table('nat')
        owned = read_owned(table, prefix, family, BUILTIN_CHAINS['nat'])
        out[family] = dict(chains=[dict(name=name, rules=[dict(rule.spec) for rule in chain.rules])
                                   for name, chain in owned.chains.items()])
    return out


BEFORE = dict(nat_gateway_snat=[SNAT4, SNAT6], nat_gateway_port_forwards=[WEB, WEB6])


def test_nothing_stale_when_nothing_changes():
    chains = npl.plan(BEFORE)['nat_chains']
    assert npl.stale(gathered_of(chains), chains) == []
    assert npl.stale({}, chains) == []


def test_a_changed_source_nat_is_stale_in_its_family():
    old = gathered_of(npl.plan(BEFORE)['nat_chains'])
    new = npl.plan(dict(BEFORE, nat_gateway_snat=[SNAT6], nat_gateway_masquerade=[MASQ]))['nat_chains']
    assert npl.stale(old, new) == [dict(name='snat:192.168.1.0/24@eth1', family='ipv4', nat='snat',
                                        src='192.168.1.0/24', reply_dst='203.0.113.3')]


def test_a_changed_port_forward_is_stale():
    old = gathered_of(npl.plan(BEFORE)['nat_chains'])
    new = npl.plan(dict(BEFORE, nat_gateway_port_forwards=[dict(WEB, to='192.168.1.101:80')]))['nat_chains']
    assert npl.stale(old, new) == [
        dict(name='pf:web', family='ipv4', nat='dnat', protocol='tcp', dport='8080', reply_src='192.168.1.100',
             reply_sport='80'),
        dict(name='pf:web6', family='ipv6', nat='dnat', protocol='tcp', dport='8080', reply_src='fd00:1::100',
             reply_sport='80')]


def test_ranges_are_left_out_of_the_filters():
    old = gathered_of(npl.plan(dict(
        nat_gateway_snat=[dict(source='10.0.0.0/8', to_source='203.0.113.1-203.0.113.9')],
        nat_gateway_port_forwards=[dict(name='r', protocol='udp', port='5000-5010', to='192.168.1.1:6000-6010')]
    ))['nat_chains'])
    # An SNAT to ports needs a protocol, which the role's entries do not have: one the nat_rule module wrote.
    old['ipv4']['chains'][1]['rules'].append(dict(name='snat:10.1.0.0/16@any', source='10.1.0.0/16', protocol='tcp',
                                                  jump='SNAT', to_source='203.0.113.1:1024-2048'))
    assert npl.stale(old, []) == [
        dict(name='pf:r', family='ipv4', nat='dnat', protocol='udp', dport='5000-5010', reply_src='192.168.1.1',
             reply_sport=None),
        dict(name='snat:10.0.0.0/8@any', family='ipv4', nat='snat', src='10.0.0.0/8'),
        # The address of an SNAT to a port range is one address (the Jinja planning lost it).
        dict(name='snat:10.1.0.0/16@any', family='ipv4', nat='snat', src='10.1.0.0/16', reply_dst='203.0.113.1')]


def test_negated_matches_are_left_out_of_the_filters():
    gathered = dict(ipv4=dict(chains=[dict(rules=[
        dict(name='masq:x', source='!10.0.0.0/8', jump='MASQUERADE'),
        dict(name='pf:x', protocol='tcp', destination_port='!22', jump='DNAT', to_destination='10.0.0.1')])]))
    assert npl.stale(gathered, []) == [
        dict(name='masq:x', family='ipv4', nat='snat', src=None),
        dict(name='pf:x', family='ipv4', nat='dnat', protocol='tcp', dport=None, reply_src='10.0.0.1',
             reply_sport=None)]


def test_unnamed_and_foreign_targets_are_never_stale():
    gathered = dict(ipv4=dict(chains=[dict(rules=[dict(jump='MASQUERADE'), dict(name='x', jump='REDIRECT',
                                                                                protocol='tcp', to_ports='8080')])]))
    assert npl.stale(gathered, []) == []


def mostly(valid, invalid):
    """One of the valid values, or (one time in eight) one of the invalid ones."""
    return st.sampled_from(list(valid) * 7 + list(invalid))


# A random configuration, drawn from a small pool of values, mostly valid.
SOURCES = mostly([None, '192.168.1.0/24', '10.0.0.0/8', None, 'fd00:1::/64'], ['2001:db8::/32', '10.0.0.1/33'])
INTERFACES = st.sampled_from([None, 'eth1', 'ppp+', 'wg0'])
CONFIG = st.fixed_dictionaries(dict(
    nat_gateway_masquerade=st.lists(st.fixed_dictionaries(dict(source=SOURCES, out_interface=INTERFACES)),
                                    max_size=3),
    nat_gateway_snat=st.lists(st.fixed_dictionaries(dict(source=SOURCES, out_interface=INTERFACES, to_source=(
        mostly(['203.0.113.3', '203.0.113.1-203.0.113.9'], ['2001:db8::3', '[2001:db8::3]:1024-2048'])))),
        max_size=3),
    nat_gateway_port_forwards=st.lists(st.fixed_dictionaries(dict(
        name=mostly(['web', 'dns', 'ssh', 'smtp', 'imap'], ['x y']), protocol=st.sampled_from(['tcp', 'udp', 'sctp']),
        port=mostly([80, '8080', '5000-5010'], [[1, 2], 0]), in_interface=INTERFACES,
        to=mostly(['192.168.1.100', '192.168.1.100:80', '[fd00:1::100]:80', 'fd00:1::100'], ['host'])),
    ), max_size=3, unique_by=lambda entry: entry['name']),
    nat_gateway_forward_outbound=st.booleans(),
))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIG, CONFIG)
def test_planning_and_stale_properties(before, after):
    """Input is refused with a PlanError or planned; a plan renders, and its stale set holds what it changed."""
    plans = []
    for variables in (before, after):
        try:
            plans.append(npl.plan(variables))
        except npl.PlanError as exc:
            assert str(exc).startswith('nat_gateway')
            return
    old, new = [model['nat_chains'] for model in plans]
    gathered = gathered_of(old)
    assert npl.stale(gathered, old) == []
    stale_names = set((flt['family'], flt['name']) for flt in npl.stale(gathered, new))
    for family, table in gathered.items():
        new_texts = npl.planned_texts(new, family, 'SNF-GW-')
        old_texts = npl.planned_texts(old, family, 'SNF-GW-')
        assert stale_names >= set((family, name) for name, text in old_texts.items()
                                  if new_texts.get(name) != text)
        assert set(name for fam, name in stale_names if fam == family) <= set(old_texts)
