# SPDX-License-Identifier: GPL-3.0-or-later
"""NETMAP (1:1 NAT of a prefix): validation, the canonical form both back ends print, the hook checks."""
import os

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _rules as r
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'iptables')


def load(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


@pytest.mark.parametrize('family, raw, text', [
    ('ipv4', dict(destination='198.51.100.0/24', jump='NETMAP', to_prefix='10.0.5.0/24'),
     '-d 198.51.100.0/24 -j NETMAP --to 10.0.5.0/24'),
    ('ipv4', dict(source='10.0.5.7', jump='netmap', to_prefix=' 198.51.100.7 '),
     '-s 10.0.5.7/32 -j NETMAP --to 198.51.100.7/32'),
    ('ipv4', dict(name='nm:lan', source='10.0.5.0/24', out_interface='eth0', jump='NETMAP',
                  to_prefix='198.51.100.0/24'),
     '-s 10.0.5.0/24 -o eth0 -m comment --comment "snf:nm:lan" -j NETMAP --to 198.51.100.0/24'),
    ('ipv6', dict(destination='2001:db8:1::/64', jump='NETMAP', to_prefix='FD00:5::/64'),
     '-d 2001:db8:1::/64 -j NETMAP --to fd00:5::/64'),
    ('ipv6', dict(destination='2001:db8:1::1', jump='NETMAP', to_prefix='fd00:5::1'),
     '-d 2001:db8:1::1/128 -j NETMAP --to fd00:5::1/128'),
])
def test_netmap_renders_canonically_and_round_trips(family, raw, text):
    spec = r.make_rule(raw, family, 'nat')
    assert r.render(spec) == text
    assert dict(r.parse_rule(text, family, 'nat')) == dict(spec)


@pytest.mark.parametrize('backend', ['nft', 'legacy'])
def test_netmap_captured(backend):
    """What iptables-nft and iptables-legacy printed for NETMAP (fixtures/iptables/input-canon.rules)."""
    rules = r.parse_save(load('%s-canon.save' % backend))[0]['nat'].rules['SNF-T'][24:]
    assert rules == ['-d 198.51.100.0/24 -j NETMAP --to 10.0.5.0/24',
                     '-s 10.0.5.7/32 -j NETMAP --to 198.51.100.7/32',
                     '-s 10.0.5.0/24 -o eth0 -j NETMAP --to 198.51.100.0/24']
    # The kernel's text is the engine's canonical text: read back, rendered again, unchanged.
    for args in rules:
        assert r.render(r.parse_rule(args, 'ipv4', 'nat')) == args
    # A dotted netmask is printed as its length: the same rule as the prefix written.
    intent = r.make_rule(dict(source='10.0.5.0/24', out_interface='eth0', jump='NETMAP',
                              to_prefix='198.51.100.0/24'), 'ipv4', 'nat')
    assert r.Rule.from_save(rules[2], 'ipv4', 'nat') == r.Rule.from_spec(intent)


@pytest.mark.parametrize('family, table, raw, param, words', [
    ('ipv4', 'nat', dict(jump='NETMAP'), 'to_prefix', 'is required'),
    ('ipv4', 'nat', dict(jump='NETMAP', to_prefix='10.0.5.1/24'), 'to_prefix', 'host bits'),
    ('ipv4', 'nat', dict(jump='NETMAP', to_prefix='0.0.0.0/0'), 'to_prefix', 'prefix length 0'),
    ('ipv6', 'nat', dict(jump='NETMAP', to_prefix='::/0'), 'to_prefix', 'prefix length 0'),
    ('ipv4', 'nat', dict(jump='NETMAP', to_prefix='fd00::/64'), 'to_prefix', 'ipv6 address but the rule is ipv4'),
    ('ipv4', 'nat', dict(jump='NETMAP', to_prefix='10.0.5.0/33'), 'to_prefix', 'not an IP address'),
    ('ipv4', 'nat', dict(jump='NETMAP', to_prefix='10.0.5.0-10.0.5.9'), 'to_prefix', 'not an IP address'),
    ('ipv4', 'nat', dict(jump='NETMAP', to_prefix='10.0.5.0/24', random=True), 'random', 'only valid with jump'),
    ('ipv4', 'nat', dict(jump='SNAT', to_source='1.2.3.4', to_prefix='10.0.5.0/24'), 'to_prefix',
     'only valid with jump NETMAP'),
    ('ipv4', 'filter', dict(jump='NETMAP', to_prefix='10.0.5.0/24'), 'jump', 'not a target of the filter table'),
])
def test_netmap_bad_input(family, table, raw, param, words):
    with pytest.raises(ValidationError) as info:
        r.make_rule(raw, family, table, 'rules[3].')
    assert info.value.param == 'rules[3].' + param
    assert words in str(info.value)


@pytest.mark.parametrize('builtin, raw', [
    ('PREROUTING', dict(destination='198.51.100.0/24', to_prefix='10.0.5.0/24')),
    ('OUTPUT', dict(destination='198.51.100.0/24', source='10.9.0.0/16', to_prefix='10.0.5.0/24')),
    ('POSTROUTING', dict(source='10.0.5.0/24', destination='192.0.2.0/28', to_prefix='198.51.100.0/24')),
    ('INPUT', dict(source='10.0.5.0/24', to_prefix='198.51.100.0/24')),
    # A negated match or none: no length to compare.
    ('PREROUTING', dict(destination='!198.51.100.0/28', to_prefix='10.0.5.0/24')),
    ('POSTROUTING', dict(to_prefix='198.51.100.0/24')),
])
def test_netmap_hooks_accept_equal_lengths_on_the_mapped_side(builtin, raw):
    spec = r.make_rule(dict(raw, jump='NETMAP'), 'ipv4', 'nat')
    r.check_hook(spec, builtin)


@pytest.mark.parametrize('builtin, raw, side', [
    ('PREROUTING', dict(destination='198.51.100.0/25', to_prefix='10.0.5.0/24'), 'destination'),
    ('OUTPUT', dict(destination='198.51.100.7', to_prefix='10.0.5.0/24'), 'destination'),
    ('POSTROUTING', dict(source='10.0.0.0/16', to_prefix='198.51.100.0/24'), 'source'),
    ('INPUT', dict(source='10.0.5.0/24', to_prefix='198.51.100.0/23'), 'source'),
])
def test_netmap_hooks_refuse_lengths_that_differ(builtin, raw, side):
    spec = r.make_rule(dict(raw, jump='NETMAP'), 'ipv4', 'nat')
    with pytest.raises(ValidationError) as info:
        r.check_hook(spec, builtin, 'chains[0].rules[1].')
    assert info.value.param == 'chains[0].rules[1].to_prefix'
    assert 'maps the %s' % side in str(info.value) and 'same length' in str(info.value)


def test_netmap_prefix_sets_the_family():
    assert r.infer_family(dict(jump='NETMAP', to_prefix='2001:db8::/64')) == 'ipv6'
    assert r.infer_family(dict(jump='NETMAP', to_prefix='198.51.100.0/24')) == 'ipv4'
