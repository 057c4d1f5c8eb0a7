# SPDX-License-Identifier: GPL-3.0-or-later
"""hashlimit on the nftables back end: a token bucket per key in a dynamic set of the owned table.

`add @ipv4.hashlimit-NAME { ip saddr & MASK . tcp dport limit rate over 10/second burst 20 packets }`, the
set one per hashlimit_name and family (rules of one name share their buckets, as they share the kernel's
table in iptables), its size hashlimit_htable_max, its timeout hashlimit_htable_expire (by default one unit
of the rate). Random rules round-trip through the nft form; with root and nft they are loaded into a
private network namespace and must be printed back as rendered.
"""
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.stateful.netfilter.plugins.module_utils import _nft, _rules as r
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

from test_nft import needs_nft, NftModule, outcome
from test_rules_property import EXAMPLES


@st.composite
def hashlimit_rules(draw):
    family = draw(st.sampled_from(['ipv4', 'ipv6']))
    width = 32 if family == 'ipv4' else 128
    protocol = draw(st.sampled_from(['tcp', 'udp', 'sctp', None]))
    modes = draw(st.lists(st.sampled_from(['srcip', 'dstip'] + (['srcport', 'dstport'] if protocol else [])),
                          min_size=1, max_size=4, unique=True))
    raw = dict(jump=draw(st.sampled_from(['ACCEPT', 'DROP'])), hashlimit_mode=modes,
               hashlimit_name=draw(st.sampled_from(['ssh', 'web.1', 'rate-a_b', 'x' * 31])))
    raw[draw(st.sampled_from(['hashlimit_upto', 'hashlimit_above']))] = '%d/%s' % (
        draw(st.integers(1, 1000)), draw(st.sampled_from(['sec', 'min', 'hour'])))
    if protocol:
        raw['protocol'] = protocol
        if draw(st.booleans()):
            raw['destination_port'] = draw(st.sampled_from([22, '1000-2000', [80, 443]]))
    if draw(st.booleans()):
        raw['hashlimit_burst'] = draw(st.integers(1, 50))
    for mode, key in (('srcip', 'hashlimit_srcmask'), ('dstip', 'hashlimit_dstmask')):
        if mode in modes and draw(st.booleans()):
            raw[key] = draw(st.integers(1, width))
    if draw(st.booleans()):
        raw['hashlimit_htable_max'] = draw(st.integers(1, 1 << 20))
    if draw(st.booleans()):
        raw['hashlimit_htable_expire'] = 1000 * draw(st.integers(1, 10 ** 6))
    if draw(st.booleans()):
        raw['ctstate'] = ['NEW']
    return raw, family


def spec_of(raw, family):
    try:
        return r.make_rule(raw, family, 'filter')
    except ValidationError:
        return None


def table_of(spec, family):
    states = {family: r.Owned([r.Chain('SNF-H', ('INPUT', 'first'), [_nft.rule_from_spec(spec, family)])])}
    return _nft.render_table('t', 'filter', states)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=hashlimit_rules())
def test_a_hashlimit_rule_round_trips_through_the_nft_form(drawn):
    raw, family = drawn
    spec = spec_of(raw, family)
    if spec is None:
        return
    text = table_of(spec, family)
    parsed, unknown = _nft.parse_table(text, 'filter')
    assert unknown == [] and parsed[family].chains['SNF-H'].rules[0].spec == spec, text
    assert _nft.render_table('t', 'filter', parsed) == text


@needs_nft
@settings(max_examples=max(EXAMPLES // 3, 40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=hashlimit_rules())
def test_nft_takes_the_hashlimit_set_and_prints_it_back_as_rendered(drawn):
    raw, family = drawn
    spec = spec_of(raw, family)
    if spec is None:
        return
    text = table_of(spec, family)
    done = subprocess.run(['unshare', '--net', 'sh', '-c', 'nft -f - && nft list table inet t'],
                          input=text.encode(), capture_output=True, check=False)
    assert done.returncode == 0, (text, done.stderr)
    assert done.stdout.decode() == text


def test_forms():
    spec = r.make_rule(dict(protocol='tcp', destination_port=22, ctstate=['NEW'], hashlimit_above='10/sec',
                            hashlimit_mode=['srcip'], hashlimit_name='ssh', jump='DROP'), 'ipv4', 'filter')
    assert _nft.render_rule(spec, 'ipv4') == \
        'tcp dport 22 ct state new add @ipv4.hashlimit-ssh { ip saddr limit rate over 10/second } drop'
    assert _nft.hashlimit_body(spec, 'ipv4') == ['type ipv4_addr', 'size 65535', 'flags dynamic,timeout',
                                                 'timeout 1s']
    wide = r.make_rule(dict(protocol='tcp', hashlimit_upto='3/min', hashlimit_burst=10, hashlimit_srcmask=24,
                            hashlimit_mode=['srcip', 'dstport'], hashlimit_name='web', hashlimit_htable_max=1024,
                            hashlimit_htable_expire=90000, jump='ACCEPT'), 'ipv4', 'filter')
    # The port in the key implies the protocol: no meta l4proto test.
    assert _nft.render_rule(wide, 'ipv4') == ('add @ipv4.hashlimit-web { ip saddr & 255.255.255.0 . tcp dport '
                                              'limit rate 3/minute burst 10 packets } accept')
    assert _nft.hashlimit_body(wide, 'ipv4') == ['type ipv4_addr . inet_service', 'size 1024',
                                                 'flags dynamic,timeout', 'timeout 1m30s']
    assert [_nft.nft_duration(ms) for ms in (1, 1000, 1500, 60000, 3723004, 86400000)] == \
        ['1ms', '1s', '1s500ms', '1m', '1h2m3s4ms', '1d']
    assert _nft.parse_duration('1h2m3s4ms') == 3723004 and _nft.parse_duration('1x') is None


@pytest.mark.parametrize('raw, param, words', [
    (dict(hashlimit_above='10/sec', hashlimit_name='a'), 'hashlimit_mode', 'one bucket'),
    (dict(hashlimit_above='10/sec', hashlimit_name='a', hashlimit_mode=['srcport']), 'hashlimit_mode',
     'needs protocol'),
    (dict(hashlimit_above='10/sec', hashlimit_name='a', hashlimit_mode=['srcip'], hashlimit_srcmask=0),
     'hashlimit_srcmask', 'one bucket'),
    (dict(hashlimit_above='10/sec', hashlimit_name='a', hashlimit_mode=['srcip'], hashlimit_htable_expire=1500),
     'hashlimit_htable_expire', 'whole seconds'),
    (dict(hashlimit_above='10/sec', hashlimit_name='a', hashlimit_mode=['srcip'], hashlimit_htable_size=64),
     'hashlimit_htable_size', 'bucket count'),
    (dict(hashlimit_above='10/sec', hashlimit_name='a', hashlimit_mode=['srcip'],
          hashlimit_htable_gcinterval=500), 'hashlimit_htable_gcinterval', 'nftables back end'),
])
def test_what_the_set_cannot_express_is_refused_naming_the_option(raw, param, words):
    spec = r.make_rule(dict(raw, jump='DROP'), 'ipv4', 'filter')
    with pytest.raises(ValidationError) as exc:
        _nft.render_rule(spec, 'ipv4', 'chains[0].rules[4].')
    assert exc.value.param == 'chains[0].rules[4].' + param and words in str(exc.value), str(exc.value)


def test_rules_of_one_name_share_the_set_and_must_agree_on_it():
    one = dict(protocol='tcp', destination_port=22, hashlimit_above='10/sec', hashlimit_mode=['srcip'],
               hashlimit_name='shared', jump='DROP')
    rules = [_nft.rule_from_spec(r.make_rule(raw, 'ipv4', 'filter'), 'ipv4')
             for raw in (one, dict(one, destination_port=23, hashlimit_above='20/sec'))]
    text = _nft.render_table('t', 'filter', {'ipv4': r.Owned([r.Chain('SNF-H', ('INPUT', 'first'), rules)])})
    assert text.count('set ipv4.hashlimit-shared {') == 1
    other = _nft.rule_from_spec(r.make_rule(dict(one, hashlimit_above='10/min', name='slow'), 'ipv4', 'filter'), 'ipv4')
    with pytest.raises(ValidationError) as exc:
        _nft.render_table('t', 'filter', {'ipv4': r.Owned([r.Chain('SNF-H', None, rules + [other])])})
    assert exc.value.param == 'hashlimit_name' and 'rule slow of chain SNF-H' in str(exc.value)
    # A set someone changed is noticed: another expiry is read into the model (and differs from the wanted
    # one), a body the model does not write is not the collection's.
    parsed = _nft.parse_table(text.replace('timeout 1s', 'timeout 2s'), 'filter')[0]
    assert parsed['ipv4'].chains['SNF-H'].rules[0].spec['hashlimit_htable_expire'] == 2000
    assert _nft.parse_table(text.replace('flags dynamic,timeout', 'flags dynamic'), 'filter')[1]


def test_ruleset_writes_the_meter_and_a_rerun_changes_nothing(no_lock):
    chains = [dict(name='SNF-FW-IN', hook='INPUT', rules=[
        dict(name='rate', protocol='tcp', destination_port=22, ctstate=['NEW'], hashlimit_above='2/min',
             hashlimit_burst=2, hashlimit_mode=['srcip'], hashlimit_name='ssh', jump='REJECT',
             reject_with='tcp-reset')])]
    first = outcome(NftModule(dict(chains=chains))).result
    text = first['nft'].split('\n', 2)[2]
    assert 'set ipv4.hashlimit-ssh {' in text and 'set ipv6.hashlimit-ssh {' in text
    again = NftModule(dict(chains=chains), tables={'snf_filter_FW': text})
    assert outcome(again).result['changed'] is False and again.writes() == []
    gathered = outcome(NftModule(dict(state='gathered'), tables={'snf_filter_FW': text})).result['gathered']
    rule = gathered['ipv4']['chains'][0]['rules'][0]
    assert rule['hashlimit_above'] == '2/min' and rule['hashlimit_burst'] == 2 and rule['hashlimit_name'] == 'ssh'
