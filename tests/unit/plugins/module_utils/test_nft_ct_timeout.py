# SPDX-License-Identifier: GPL-3.0-or-later
"""Timeout policies (ct_timeout) of jump CT in the raw table: `ct timeout` objects of the owned nft table.

The object is named after its policy (snf-timeout-tcp-established-300), so a rule reads back from its text
alone, as a helper does; the object's body is checked against the name when the table is read. nft 1.0.6
prints only the states whose value differs from its defaults, so the model keeps only those. With root and
nft, random policies are loaded into a private network namespace and must be printed back as rendered.
"""
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.stateful.netfilter.plugins.module_utils import _nft, _rules as r
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

from test_nft import needs_nft, NftModule, outcome
from test_rules_engine import Failed
from test_rules_property import EXAMPLES


@st.composite
def policies(draw):
    protocol = draw(st.sampled_from(sorted(r.CT_TIMEOUT_STATES)))
    states = r.CT_TIMEOUT_STATES[protocol]
    chosen = draw(st.lists(st.sampled_from(states), min_size=1, max_size=len(states), unique=True))
    policy = dict((name, draw(st.one_of(st.just(default), st.integers(1, r.CT_TIMEOUT_MAX))))
                  for name, default in chosen)
    return protocol, policy


def spec_of(protocol, policy, helper=False, family='ipv4'):
    raw = dict(protocol=protocol, jump='CT', ct_timeout=policy, destination_port=21 if helper else None)
    if helper:
        raw['helper'] = 'ftp'
    return r.make_rule(dict((k, v) for k, v in raw.items() if v is not None), family, 'raw')


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=policies(), family=st.sampled_from(['ipv4', 'ipv6']), helper=st.booleans())
def test_a_policy_keeps_its_non_default_states_and_round_trips(drawn, family, helper):
    protocol, policy = drawn
    helper = helper and protocol == 'tcp'
    defaults = dict(r.CT_TIMEOUT_STATES[protocol])
    kept = dict((name, seconds) for name, seconds in policy.items() if seconds != defaults[name])
    if not kept:
        with pytest.raises(ValidationError) as exc:
            spec_of(protocol, policy, helper, family)
        assert exc.value.param == 'ct_timeout' and 'default' in str(exc.value)
        return
    spec = spec_of(protocol, policy, helper, family)
    assert dict(spec['ct_timeout']) == kept
    assert list(spec['ct_timeout']) == [name for name, dummy in r.CT_TIMEOUT_STATES[protocol] if name in kept]
    text = _nft.render_rule(spec, family)
    assert _nft.parse_rule(text, family, 'raw') == spec, text
    states = {family: r.Owned([r.Chain('SNF-R', ('PREROUTING', 'first'), [_nft.rule_from_spec(spec, family)])])}
    table = _nft.render_table('t', 'raw', states)
    parsed, unknown = _nft.parse_table(table, 'raw')
    assert unknown == [] and _nft.render_table('t', 'raw', parsed) == table


@needs_nft
@settings(max_examples=max(EXAMPLES // 3, 40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=policies(), family=st.sampled_from(['ipv4', 'ipv6']))
def test_nft_takes_the_object_and_prints_it_back_as_rendered(drawn, family):
    protocol, policy = drawn
    try:
        spec = spec_of(protocol, policy, family=family)
    except ValidationError:
        return
    states = {family: r.Owned([r.Chain('SNF-R', ('PREROUTING', 'first'), [_nft.rule_from_spec(spec, family)])])}
    table = _nft.render_table('t', 'raw', states)
    done = subprocess.run(['unshare', '--net', 'sh', '-c', 'nft -f - && nft list table inet t'],
                          input=table.encode(), capture_output=True, check=False)
    assert done.returncode == 0, (table, done.stderr)
    assert done.stdout.decode() == table


def test_forms_and_the_object_in_the_table():
    spec = spec_of('tcp', {'established': 300, 'close': 10, 'time_wait': 5})
    assert spec['ct_timeout'] == {'established': 300, 'time_wait': 5}
    assert _nft.render_rule(spec, 'ipv4') == 'meta l4proto tcp ct timeout set "snf-timeout-tcp-established-300-time_wait-5"'
    both = spec_of('tcp', {'established': 600}, helper=True)
    assert _nft.render_rule(both, 'ipv6') == \
        'tcp dport 21 ct helper set "snf-ftp-tcp" ct timeout set "snf-timeout-tcp-established-600"'
    states = {'ipv4': r.Owned([r.Chain('SNF-R', ('PREROUTING', 'first'), [_nft.rule_from_spec(spec, 'ipv4')])]),
              'ipv6': r.Owned([r.Chain('SNF-R', ('PREROUTING', 'first'), [_nft.rule_from_spec(spec, 'ipv6')])])}
    table = _nft.render_table('snf_raw_FW', 'raw', states)
    # One object for the policy, whichever family's rules use it.
    assert table.count('\tct timeout snf-timeout-tcp-established-300-time_wait-5 {\n\t\tprotocol tcp\n'
                       '\t\tl3proto inet\n\t\tpolicy = { established : 300, time_wait : 5 }\n\t}\n') == 1
    # An object whose body does not say what its name says is noticed; so is one no rule uses.
    changed = table.replace('established : 300', 'established : 301')
    assert _nft.parse_table(changed, 'raw')[1]
    orphan = table.replace('\tchain ', '\tct timeout snf-timeout-udp-replied-5 {\n\t\tprotocol udp\n\t\tl3proto '
                                       'inet\n\t\tpolicy = { replied : 5 }\n\t}\n\n\tchain ', 1)
    assert _nft.parse_table(orphan, 'raw')[1] == ['ct timeout snf-timeout-udp-replied-5 { protocol udp; l3proto '
                                                  'inet; policy = { replied : 5 } }']
    assert _nft.parse_rule('ct timeout set "someone-elses"', 'ipv4', 'raw') is None
    _nft.check_saved('snf_raw_FW', 'raw', table)


@pytest.mark.parametrize('raw, param, words', [
    (dict(protocol='icmp', ct_timeout={'established': 5}), 'ct_timeout', 'needs protocol tcp or udp'),
    (dict(ct_timeout={'established': 5}), 'ct_timeout', 'needs protocol'),
    (dict(protocol='tcp', ct_timeout={'estab': 5}), 'ct_timeout.estab', 'not a tcp conntrack state'),
    (dict(protocol='udp', ct_timeout={'established': 5}), 'ct_timeout.established', 'unreplied, replied'),
    (dict(protocol='tcp', ct_timeout={'established': 0}), 'ct_timeout.established', 'a timeout in seconds'),
    (dict(protocol='tcp', ct_timeout={'established': r.CT_TIMEOUT_MAX + 1}), 'ct_timeout.established', '2147483'),
    (dict(protocol='tcp', ct_timeout={'established': True}), 'ct_timeout.established', 'a timeout'),
    (dict(protocol='tcp', ct_timeout=300), 'ct_timeout', 'mapping'),
    (dict(protocol='tcp', ct_timeout={'close': 10}), 'ct_timeout', 'default'),
    (dict(protocol='tcp', ct_timeout={'close': 5}, notrack=True), 'ct_timeout', 'notrack'),
])
def test_bad_policies_are_refused_naming_the_option(raw, param, words):
    with pytest.raises(ValidationError) as exc:
        r.make_rule(dict(raw, jump='CT'), 'ipv4', 'raw', 'chains[0].rules[1].')
    assert exc.value.param == 'chains[0].rules[1].' + param and words in str(exc.value), str(exc.value)
    with pytest.raises(ValidationError) as exc:
        r.make_rule(dict(protocol='tcp', ct_timeout={'close': 5}, jump='ACCEPT'), 'ipv4', 'raw', 'rules[0].')
    assert exc.value.param == 'rules[0].ct_timeout' and 'CT' in str(exc.value)


def test_the_iptables_back_end_refuses_a_policy_naming_the_option_and_the_rule():
    spec = spec_of('tcp', {'established': 300})
    empty = r.empty_table('raw')
    wanted = r.Owned([r.Chain('SNF-FW-RAW', ('PREROUTING', 'first'), [r.Rule.from_spec(dict(spec, name='web'))])])
    with pytest.raises(ValidationError) as exc:
        r.Plan(empty, 'SNF-FW-', 'ipv4', r.read_owned(empty, 'SNF-FW-', 'ipv4'), wanted)
    assert exc.value.param == 'ct_timeout' and 'rule web of chain SNF-FW-RAW' in str(exc.value)
    assert 'nfct' in str(exc.value) and 'backend nftables' in str(exc.value)


def test_ruleset_writes_the_object_and_a_rerun_changes_nothing(no_lock):
    chains = [dict(name='SNF-FW-RAW', hook='PREROUTING', rules=[
        dict(name='web', protocol='tcp', destination_port=8080, jump='CT', ct_timeout={'established': 300})])]
    first = outcome(NftModule(dict(table='raw', chains=chains))).result
    text = first['nft'].split('\n', 2)[2]
    assert 'ct timeout set "snf-timeout-tcp-established-300" comment "snf:web"' in text
    again = NftModule(dict(table='raw', chains=chains), tables={'snf_raw_FW': text})
    assert outcome(again).result['changed'] is False and again.writes() == []
    gathered = outcome(NftModule(dict(table='raw', state='gathered'), tables={'snf_raw_FW': text})).result
    assert gathered['gathered']['ipv4']['chains'][0]['rules'][0]['ct_timeout'] == {'established': 300}
    refused = outcome(NftModule(dict(table='raw', chains=[dict(chains[0], rules=[
        dict(protocol='tcp', jump='CT', ct_timeout={'establish': 300})])])))
    assert isinstance(refused, Failed) and refused.result['param'] == 'chains[0].rules[0].ct_timeout.establish'


def test_a_raw_scope_that_sets_helpers_or_timeouts_runs_after_conntrack_and_keeps_notrack_out(no_lock):
    helper = spec_of('tcp', {'established': 600}, helper=True)
    states = {'ipv4': r.Owned([r.Chain('SNF-FW-RAW', ('PREROUTING', 'first'), [_nft.rule_from_spec(helper, 'ipv4')])])}
    table = _nft.render_table('snf_raw_FW', 'raw', states)
    assert 'type filter hook prerouting priority mangle - 2; policy accept;' in table
    notrack = r.make_rule(dict(protocol='udp', destination_port=53, jump='CT', notrack=True), 'ipv4', 'raw')
    alone = {'ipv4': r.Owned([r.Chain('SNF-FW-RAW', ('PREROUTING', 'last'), [_nft.rule_from_spec(notrack, 'ipv4')])])}
    assert 'priority raw + 1; policy accept;' in _nft.render_table('snf_raw_FW', 'raw', alone)
    states['ipv4'].chains['SNF-FW-RAW'].rules.append(_nft.rule_from_spec(dict(notrack, name='dns'), 'ipv4'))
    with pytest.raises(ValidationError) as exc:
        _nft.render_table('snf_raw_FW', 'raw', states)
    assert exc.value.param == 'notrack' and 'rule dns of chain SNF-FW-RAW' in str(exc.value)
    # A table written before this (a helper at raw - 1, where nft never sets it) is not taken as is:
    # overridden replaces it, at the priority that works.
    old = table.replace('priority mangle - 2;', 'priority raw - 1;')
    assert _nft.parse_table(old, 'raw')[1] == ['type filter hook prerouting priority raw - 1; policy accept;']
    chains = [dict(name='SNF-FW-RAW', hook='PREROUTING', rules=[
        dict(protocol='tcp', destination_port=21, jump='CT', helper='ftp', ct_timeout={'established': 600})])]
    fixed = outcome(NftModule(dict(table='raw', family='ipv4', chains=chains), tables={'snf_raw_FW': old}))
    assert isinstance(fixed, Failed) and fixed.result['param'] == 'state'
    fixed = outcome(NftModule(dict(table='raw', chains=chains), tables={'snf_raw_FW': old})).result
    assert fixed['changed'] is True and 'priority mangle - 2;' in fixed['nft']
