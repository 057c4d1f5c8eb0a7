# SPDX-License-Identifier: GPL-3.0-or-later
"""Address lists in the rule model: one rule with an anonymous set on nftables, refused on iptables.

`source` / `destination` take a list of networks of one family. make_rule() collapses it to the fewest
networks that cover the same addresses (sorted), so two spellings of one set are one rule. nft prints an
anonymous set with adjacent networks merged into ranges (10.0.0.0-10.0.2.255), which the parser reads back
into the same list. The property tests draw random lists; with root and nft the rendered rule is loaded
into an inet table of a private network namespace (`unshare --net`) and what nft prints reads back to the
same spec.
"""
import ipaddress
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.stateful.netfilter.plugins.module_utils import _engine, _nft, _rules as r
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

from test_nft import needs_nft, NftModule, nat, outcome
from test_rules_engine import Exit, Failed
from test_rules_property import EXAMPLES


@st.composite
def network_lists(draw):
    """(family, [networks]) drawn from small blocks, so that neighbours and overlaps (which collapse) are common."""
    family = draw(st.sampled_from(['ipv4', 'ipv6']))
    width = 32 if family == 'ipv4' else 128
    base = int(ipaddress.ip_address('10.0.0.0' if family == 'ipv4' else '2001:db8::'))
    nets = []
    for dummy in range(draw(st.integers(2, 12))):
        length = draw(st.integers(width - 12, width))
        slot = draw(st.integers(0, (1 << (length - (width - 12))) - 1))
        address = base + (slot << (width - length))
        nets.append(str(ipaddress.ip_network((address, length))))
    return family, nets


def covered(networks):
    return set(ipaddress.collapse_addresses(ipaddress.ip_network(net) for net in networks))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=network_lists(), negate=st.booleans(), key=st.sampled_from(['source', 'destination']))
def test_a_list_collapses_to_the_same_addresses_and_round_trips_through_the_nft_form(drawn, negate, key):
    family, nets = drawn
    spec = r.make_rule({key: (['!'] if negate else []) + nets, 'jump': 'ACCEPT'}, family, 'filter')
    value = spec[key]
    assert r.negated(value) is negate
    got = r.plain(value)
    assert covered(got if isinstance(got, list) else [got]) == covered(nets)
    if isinstance(got, list):
        assert got == [str(net) for net in ipaddress.collapse_addresses(ipaddress.ip_network(n) for n in got)]
    text = _nft.render_rule(spec, family)
    assert _nft.parse_rule(text, family, 'filter') == spec, text
    # The same addresses in another order and spelling are the same rule.
    again = r.make_rule({key: (['!'] if negate else []) + list(reversed(nets)) + nets[:1], 'jump': 'ACCEPT'},
                        family, 'filter')
    assert again == spec


def nft_prints(text):
    done = subprocess.run(['unshare', '--net', 'sh', '-c', 'nft -f - && nft list table inet t'],
                          input=text.encode(), capture_output=True, check=False)
    return done.returncode, done.stdout.decode() + done.stderr.decode()


@needs_nft
@settings(max_examples=max(EXAMPLES // 3, 40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=network_lists(), negate=st.booleans())
def test_nft_takes_the_set_and_what_it_prints_reads_back_to_the_same_spec(drawn, negate):
    family, nets = drawn
    spec = r.make_rule({'source': (['!'] if negate else []) + nets, 'protocol': 'tcp', 'destination_port': 22,
                        'jump': 'ACCEPT', 'name': 'list'}, family, 'filter')
    states = {family: r.Owned([r.Chain('SNF-L', ('INPUT', 'first'), [_nft.rule_from_spec(spec, family)])])}
    table = _nft.render_table('t', 'filter', states)
    rc, out = nft_prints(table)
    assert rc == 0, (table, out)
    parsed, unknown = _nft.parse_table(out, 'filter')
    assert unknown == [] and parsed[family].chains['SNF-L'].rules[0].spec == spec, out
    # Compared as the module compares (re-rendered): no change on a re-run.
    assert _nft.render_table('t', 'filter', parsed) == table


def test_what_nft_1_0_6_prints_for_merged_sets_reads_back():
    # Captured from nft 1.0.6: adjacent networks of an anonymous set merged into a range or a wider prefix.
    for printed, source in (('ip saddr { 10.0.0.0-10.0.2.255 } accept', ['10.0.0.0/23', '10.0.2.0/24']),
                            ('ip saddr != { 10.0.0.0/23 } accept', '!10.0.0.0/23'),
                            ('ip saddr { 10.0.0.1, 10.0.0.2 } accept', ['10.0.0.1/32', '10.0.0.2/32']),
                            ('ip saddr { 10.0.0.0/31 } accept', '10.0.0.0/31')):
        assert _nft.parse_rule(printed, 'ipv4', 'filter') == dict(source=source, jump='ACCEPT'), printed
    assert _nft.parse_rule('ip6 saddr { ::1, 2001:db8::/63 } accept', 'ipv6', 'filter') == \
        dict(source=['::1/128', '2001:db8::/63'], jump='ACCEPT')


@pytest.mark.parametrize('raw, family, spec_source, text', [
    (dict(source=['10.0.0.0/24', '10.0.1.0/24', '10.0.3.5']), 'ipv4', ['10.0.0.0/23', '10.0.3.5/32'],
     'ip saddr { 10.0.0.0/23, 10.0.3.5 } accept'),
    (dict(source='10.0.0.0/24, 10.9.0.0/24'), 'ipv4', ['10.0.0.0/24', '10.9.0.0/24'],
     'ip saddr { 10.0.0.0/24, 10.9.0.0/24 } accept'),
    (dict(source=['!', '10.0.0.0/24', '10.0.1.0/24']), 'ipv4', '!10.0.0.0/23', 'ip saddr != 10.0.0.0/23 accept'),
    (dict(source=['10.0.0.7']), 'ipv4', '10.0.0.7/32', 'ip saddr 10.0.0.7 accept'),
    (dict(source=['fd00::/64', '2001:db8::1']), 'ipv6', ['2001:db8::1/128', 'fd00::/64'],
     'ip6 saddr { 2001:db8::1, fd00::/64 } accept'),
])
def test_forms(raw, family, spec_source, text):
    spec = r.make_rule(dict(raw, jump='ACCEPT'), family, 'filter')
    assert spec['source'] == spec_source and _nft.render_rule(spec, family) == text
    assert _nft.parse_rule(text, family, 'filter') == spec


def test_a_list_covering_everything_is_no_match_and_negated_is_refused():
    assert 'source' not in r.make_rule(dict(source=['0.0.0.0/1', '128.0.0.0/1'], jump='ACCEPT'), 'ipv4', 'filter')
    with pytest.raises(ValidationError) as exc:
        r.make_rule(dict(source=['!', '0.0.0.0/1', '128.0.0.0/1'], jump='ACCEPT'), 'ipv4', 'filter', 'rules[2].')
    assert exc.value.param == 'rules[2].source' and 'matches nothing' in str(exc.value)


@pytest.mark.parametrize('value, param, words', [
    (['10.0.0.0/24', '2001:db8::/64'], 'source[1]', 'ipv6 address but the rule is ipv4'),
    (['10.0.0.0/24', '10.0.1.1/24'], 'source[1]', 'host bits'),
    (['10.0.0.0/24', 'lan'], 'source[1]', 'not an IP address'),
    (['10.0.0.0/24', 7], 'source[1]', ''),
])
def test_a_bad_element_is_refused_naming_the_option_the_element_and_the_rule(value, param, words):
    with pytest.raises(ValidationError) as exc:
        r.make_rule(dict(source=value, jump='ACCEPT'), 'ipv4', 'filter', 'chains[0].rules[3].')
    assert exc.value.param == 'chains[0].rules[3].' + param and words in str(exc.value)


def test_the_family_of_a_list_is_inferred_from_its_networks():
    assert r.infer_family(dict(source=['2001:db8::/64', 'fd00::/8'])) == 'ipv6'
    assert r.infer_family(dict(destination=['!', '10.0.0.0/8', '192.0.2.1'])) == 'ipv4'


def test_the_iptables_back_end_refuses_a_list_naming_the_option_and_the_rule():
    spec = r.make_rule(dict(name='admins', source=['10.0.0.0/24', '10.9.0.0/24'], jump='ACCEPT'), 'ipv4', 'filter')
    wanted = r.Owned([r.Chain('SNF-FW-IN', ('INPUT', 'first'), [r.Rule.from_spec(spec)])])
    empty = r.empty_table('filter')
    with pytest.raises(ValidationError) as exc:
        r.Plan(empty, 'SNF-FW-', 'ipv4', r.read_owned(empty, 'SNF-FW-', 'ipv4'), wanted)
    assert exc.value.param == 'source'
    assert 'rule admins of chain SNF-FW-IN' in str(exc.value) and 'backend nftables' in str(exc.value)
    # One network (also a list that collapses to one) is fine on iptables.
    one = r.make_rule(dict(source=['10.0.0.0/25', '10.0.0.128/25'], jump='ACCEPT'), 'ipv4', 'filter')
    plan = r.Plan(empty, 'SNF-FW-', 'ipv4', r.read_owned(empty, 'SNF-FW-', 'ipv4'),
                  r.Owned([r.Chain('SNF-FW-IN', None, [r.Rule.from_spec(one)])]))
    assert '-A SNF-FW-IN -s 10.0.0.0/24 -j ACCEPT' in plan.text


def test_netmap_refuses_a_list_of_networks():
    spec = r.make_rule(dict(source=['10.0.0.0/24', '10.9.0.0/24'], jump='NETMAP', to_prefix='192.0.2.0/24'),
                       'ipv4', 'nat')
    with pytest.raises(ValidationError) as exc:
        r.check_hook(spec, 'POSTROUTING', 'rules[0].')
    assert exc.value.param == 'rules[0].source'


def test_flush_conntrack_filters_one_network_at_a_time():
    spec = r.make_rule(dict(source=['10.0.0.0/24', '10.9.0.0/24'], protocol='tcp', destination_port=[80, 443],
                            jump='SNAT', to_source='203.0.113.1'), 'ipv4', 'nat')
    filters = _engine._conntrack_filters(spec, 'ipv4')
    assert sorted((f['src'], f['dport']) for f in filters) == [
        ('10.0.0.0/24', '443'), ('10.0.0.0/24', '80'), ('10.9.0.0/24', '443'), ('10.9.0.0/24', '80')]


def test_the_ssh_guard_reads_a_list():
    accept = dict(name='ssh', protocol='tcp', destination_port=22, source=['198.51.100.0/24', '192.0.2.0/24'],
                  jump='ACCEPT')
    states = {'ipv4': r.Owned([r.Chain('SNF-FW-IN', ('INPUT', 'first'),
                                       [_nft.rule_from_spec(r.make_rule(accept, 'ipv4', 'filter'), 'ipv4')])],
                              [('INPUT', 'DROP')])}
    assert _nft.ssh_verdict(states, '192.0.2.7 4000 192.0.2.1 22')['accepted'] is True
    assert _nft.ssh_verdict(states, '203.0.113.7 4000 192.0.2.1 22')['accepted'] is False


def test_ruleset_on_nftables_writes_one_rule_with_a_set_gathers_it_and_a_rerun_changes_nothing(no_lock):
    chains = [dict(name='SNF-FW-IN', hook='INPUT', rules=[
        dict(name='admins', protocol='tcp', destination_port=22,
             source=['192.0.2.0/25', '192.0.2.128/25', '198.51.100.7'], jump='ACCEPT'),
        dict(name='v6', source=['2001:db8:1::/48', 'fd00::/8'], jump='ACCEPT')])]
    first = outcome(NftModule(dict(chains=chains))).result
    assert first['changed'] is True
    text = first['nft'].split('\n', 2)[2]
    assert 'ip saddr { 192.0.2.0/24, 198.51.100.7 } tcp dport 22 accept comment "snf:admins"' in text
    assert 'ip6 saddr { 2001:db8:1::/48, fd00::/8 } accept comment "snf:v6"' in text
    # nft prints a set its own way (here: merged into a range); the comparison is on the model.
    printed = text.replace('{ 192.0.2.0/24, 198.51.100.7 }', '{ 192.0.2.0-192.0.2.255, 198.51.100.7 }')
    again = NftModule(dict(chains=chains), tables={'snf_filter_FW': printed})
    assert outcome(again).result['changed'] is False and again.writes() == []
    gathered = outcome(NftModule(dict(state='gathered'), tables={'snf_filter_FW': printed})).result['gathered']
    rules = gathered['ipv4']['chains'][0]['rules']
    assert rules[0]['source'] == ['192.0.2.0/24', '198.51.100.7/32']
    back = [dict(name='SNF-FW-IN', hook='INPUT', rules=rules + gathered['ipv6']['chains'][0]['rules'])]
    assert outcome(NftModule(dict(chains=back), tables={'snf_filter_FW': printed})).result['changed'] is False


def test_ruleset_on_nftables_refuses_a_mixed_list_before_any_change(no_lock):
    module = NftModule(dict(chains=[dict(name='SNF-FW-IN', rules=[
        dict(source=['10.0.0.0/8', '2001:db8::/32'], jump='ACCEPT')])]))
    result = outcome(module)
    assert isinstance(result, Failed) and result.result['param'] == 'chains[0].rules[0].source[1]'
    assert module.calls == [] or module.writes() == []


def test_nat_rule_on_nftables_takes_a_source_list(no_lock):
    params = nat(name='lan-out', source=['10.0.0.0/24', '10.0.2.0/24'], out_interface='eth0',
                 to_source='203.0.113.5')
    with pytest.raises(Exit) as exc:
        _nft.run_nat_rule(NftModule(params))
    result = exc.value.result
    assert result['changed'] is True and result['families'] == ['ipv4']
    assert 'ip saddr { 10.0.0.0/24, 10.0.2.0/24 } oifname "eth0" snat ip to 203.0.113.5' in result['nft']
