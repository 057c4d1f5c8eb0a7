# SPDX-License-Identifier: GPL-3.0-or-later
"""NETMAP on the nftables back end: nft's `dnat ip prefix to` (PREROUTING, OUTPUT) and `snat ip prefix to`
(POSTROUTING, INPUT), chosen by the hook of the rule's chain, as xt_NETMAP chooses by the hook at run time.

The nat base chains of OUTPUT and INPUT are at -101/-99 and 99/101 (nft 1.0.6 takes the dstnat and
srcnat keywords only on prerouting and postrouting). Random prefixes round-trip; with root and nft they are
loaded into a private network namespace and printed back as rendered.
"""
import ipaddress
import os
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.stateful.netfilter.plugins.module_utils import _nft, _rules as r
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

from test_rules_property import EXAMPLES

needs_nft = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which('nft') or not shutil.which('unshare'),
                               reason='needs root, nft and unshare (nft runs in a network namespace of its own)')


@st.composite
def netmaps(draw):
    family = draw(st.sampled_from(['ipv4', 'ipv6']))
    width = 32 if family == 'ipv4' else 128
    hook = draw(st.sampled_from(sorted(r.NETMAP_SIDES)))
    length = draw(st.integers(1, width))
    address = ipaddress.IPv4Address if family == 'ipv4' else ipaddress.IPv6Address
    # IPv6 from fd00::/8 (the addresses nft prints dotted, ::/96 and ::ffff:0:0/96, have tests of their own).
    low, high = (0, (1 << 32) - 1) if family == 'ipv4' else (0xfd << 120, (0xfe << 120) - 1)
    to = ipaddress.ip_network((address(draw(st.integers(low, high))), length), strict=False)
    match = ipaddress.ip_network((address(draw(st.integers(low, high))), length), strict=False)
    raw = dict(jump='NETMAP', to_prefix=str(to))
    if draw(st.booleans()):
        raw[r.NETMAP_SIDES[hook]] = str(match)
    if draw(st.booleans()):
        raw['protocol'] = draw(st.sampled_from(['tcp', 'udp']))
    return raw, family, hook


def table_of(spec, family, hook):
    states = {family: r.Owned([r.Chain('SNF-NM', (hook, 'first'), [_nft.rule_from_spec(spec, family, hook=hook)])])}
    return _nft.render_table('t', 'nat', states)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=netmaps())
def test_netmap_round_trips_with_the_side_of_its_hook(drawn):
    raw, family, hook = drawn
    try:
        spec = r.make_rule(raw, family, 'nat')
        r.check_hook(spec, hook)
    except ValidationError:
        return
    text = table_of(spec, family, hook)
    prefix = spec['to_prefix'] if family == 'ipv4' else _nft.nft6(spec['to_prefix'])
    assert ('dnat' if r.NETMAP_SIDES[hook] == 'destination' else 'snat') + ' %s prefix to %s' % (
        'ip' if family == 'ipv4' else 'ip6', prefix) in text
    parsed, unknown = _nft.parse_table(text, 'nat')
    assert unknown == [] and parsed[family].chains['SNF-NM'].rules[0].spec == spec
    assert _nft.render_table('t', 'nat', parsed) == text


@needs_nft
@settings(max_examples=max(EXAMPLES // 3, 40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=netmaps())
def test_nft_takes_the_netmap_and_prints_it_back_as_rendered(drawn):
    raw, family, hook = drawn
    try:
        spec = r.make_rule(raw, family, 'nat')
        r.check_hook(spec, hook)
    except ValidationError:
        return
    text = table_of(spec, family, hook)
    done = subprocess.run(['unshare', '--net', 'sh', '-c', 'nft -f - && nft list table inet t'],
                          input=text.encode(), capture_output=True, check=False)
    assert done.returncode == 0, (text, done.stderr)
    assert done.stdout.decode() == text


def test_a_netmap_out_of_place_is_refused_or_not_read_as_the_collections():
    spec = r.make_rule(dict(jump='NETMAP', to_prefix='10.91.0.0/24'), 'ipv4', 'nat')
    with pytest.raises(ValidationError) as exc:
        _nft.render_rule(spec, 'ipv4', 'chains[1].rules[0].')
    assert exc.value.param == 'chains[1].rules[0].to_prefix' and 'hooked' in str(exc.value)
    text = table_of(spec, 'ipv4', 'POSTROUTING')
    assert 'type nat hook postrouting priority srcnat - 1;' in text and 'snat ip prefix to 10.91.0.0/24' in text
    # The other side than the hook calls for, or a chain not hooked: kept as text, never written back.
    for changed in (text.replace('snat ip prefix', 'dnat ip prefix'),
                    text.replace('\t\tmeta nfproto ipv4 jump ipv4.SNF-NM\n', '')):
        rule = _nft.parse_table(changed, 'nat')[0]['ipv4'].chains['SNF-NM'].rules[0]
        assert rule.spec is None and 'prefix to 10.91.0.0/24' in rule.text
    # OUTPUT and INPUT nat base chains: numbers (nft 1.0.6 refuses dstnat/srcnat on those hooks).
    assert 'type nat hook output priority -101;' in table_of(
        r.make_rule(dict(jump='NETMAP', to_prefix='10.91.0.0/24'), 'ipv4', 'nat'), 'ipv4', 'OUTPUT')
    assert 'type nat hook input priority 99;' in table_of(spec, 'ipv4', 'INPUT')
