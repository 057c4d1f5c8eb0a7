# SPDX-License-Identifier: GPL-3.0-or-later
"""Property of the rule model, with arbitrary Unicode in every string option (Hypothesis).

Every input is either refused with a ValidationError naming the option it came
from, or renders to text that parses back to the same spec and that
iptables-restore --test accepts (run in a network namespace of the test's own,
so this machine's ruleset is never touched). Never anything else: no other
exception, no text the kernel would read differently.

`make unit` runs a bounded number of examples; `make fuzz` runs many more
(SNF_PROPERTY_EXAMPLES).
"""
import os
import shutil
import subprocess
import unicodedata
import uuid

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ansible_collections.stateful.netfilter.plugins.module_utils import _rules as r
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import FORBIDDEN_CATEGORIES, ValidationError

EXAMPLES = int(os.environ.get('SNF_PROPERTY_EXAMPLES', '300'))
# Characters that end a line for some reader, mixed into free text far more often than chance would.
BREAKS = '\n\r\0\t\v\f\x1c\x1d\x1e\x1f\x7f\x85\u2028\u2029"\'\\ '


def text_with_breaks():
    return st.lists(st.one_of(st.text(max_size=6), st.sampled_from(list(BREAKS)),
                              st.sampled_from(['-A SNF-X -j ACCEPT', '--comment', 'snf:'])), max_size=5).map(''.join)


def option(valid):
    """None, a plausible value (three times as likely), or arbitrary text."""
    return st.one_of(st.none(), valid, valid, valid, st.text(max_size=20), text_with_breaks())


ADDRESSES = ['10.0.0.1', '10.0.0.0/8', '192.168.1.0/24', '0.0.0.0/0', '2001:db8::1', 'fd53:1::/64', '::/0',
             '10.0.0.1/33', '10.0.0.1/24', ' 10.0.0.1 ', 'fe80::1%eth0', '!10.0.0.0/8', '! 2001:db8::1', '!0.0.0.0/0',
             '!', '!!10.0.0.1']
NAT_TARGETS = ['203.0.113.1', '203.0.113.1-203.0.113.9', '203.0.113.1:1024-65535', '[2001:db8::1]:80',
               '2001:db8::1', '10.0.0.1:0', '10.0.0.1:80', '2001:db8::1-2001:db8::9', '[2001:db8::1-2001:db8::9]:1025-65535',
               '203.0.113.1:1000-2000/3000', '[2001:db8::1]:1000-1999/80', '203.0.113.1:1000/3000', '[2001:db8::1]']
NEGATED_PORTS = st.sampled_from(['!22', '!80,443', ['!', 80, '1000-2000'], '!0-65535', '!'])
PORTS = st.one_of(st.integers(-1, 70000), st.sampled_from(['22', '1000-2000', '1000:2000', '0-65535', '80,443', '0']),
                  st.lists(st.one_of(st.integers(0, 65536), st.just('8000-8100')), max_size=17))

RULES = st.fixed_dictionaries({}, optional={
    'name': option(st.sampled_from(['ssh', 'web.1', 'a/b@c:d', '-x', 'x' * 65])),
    'protocol': option(st.sampled_from(['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'udplite', 'dccp', 'gre', '6',
                                        '17', '0', '300', 'TCP'])),
    'source': option(st.sampled_from(ADDRESSES)),
    'destination': option(st.sampled_from(ADDRESSES)),
    'in_interface': option(st.sampled_from(['eth0', 'ppp+', 'lo', 'a' * 16, 'br-lan.10', '!eth0', '! ppp+', '!'])),
    'out_interface': option(st.sampled_from(['eth1', 'wg0', 'veth@1', '!wg0'])),
    'source_port': st.one_of(st.none(), PORTS, NEGATED_PORTS, st.text(max_size=8)),
    'destination_port': st.one_of(st.none(), PORTS, NEGATED_PORTS, st.text(max_size=8)),
    'port': st.one_of(st.none(), PORTS, NEGATED_PORTS, st.text(max_size=8)),
    'tcp_flags': option(st.sampled_from(['SYN,RST SYN', 'ALL NONE', '!SYN,ACK SYN,ACK', 'FIN,SYN,RST,ACK SYN',
                                         'SYN ACK', 'NONE NONE', 'syn,fin syn,fin', {'flags': ['ALL'], 'flags_set': 'FIN'},
                                         {'flags': 'SYN'}, {'mask': 'SYN'}])),
    'ctorigsrc': option(st.sampled_from(ADDRESSES)),
    'ctorigdst': option(st.sampled_from(ADDRESSES)),
    'ctreplsrc': option(st.sampled_from(ADDRESSES)),
    'ctrepldst': option(st.sampled_from(ADDRESSES)),
    'ctorigsrcport': st.one_of(st.none(), PORTS, NEGATED_PORTS),
    'ctorigdstport': st.one_of(st.none(), PORTS, NEGATED_PORTS),
    'ctreplsrcport': st.one_of(st.none(), PORTS, NEGATED_PORTS),
    'ctrepldstport': st.one_of(st.none(), PORTS, NEGATED_PORTS),
    'ctstatus': st.one_of(st.none(), st.lists(st.sampled_from(['NONE', 'EXPECTED', 'SEEN_REPLY', 'ASSURED',
                                                               'CONFIRMED', '!', '!ASSURED', 'seen_reply'])),
                          text_with_breaks()),
    'ctdir': option(st.sampled_from(['ORIGINAL', 'REPLY', 'reply', '!REPLY'])),
    'helper': option(st.sampled_from(['ftp', 'tftp', 'sip', 'irc', 'Q.931', 'RAS', 'netbios-ns', 'bogus', 'FTP'])),
    'notrack': st.one_of(st.none(), st.booleans(), st.text(max_size=3)),
    'set_mss': st.one_of(st.none(), st.integers(-1, 70000), st.sampled_from(['1400', '88', '65495', '0', 'x'])),
    'clamp_mss_to_pmtu': st.one_of(st.none(), st.booleans(), st.text(max_size=3)),
    'syn': st.one_of(st.none(), st.booleans(), st.text(max_size=3)),
    'icmp_type': option(st.sampled_from(['echo-request', 'echo-reply', '8', '3/3', '128', '300', 'any'])),
    'ctstate': st.one_of(st.none(), st.lists(st.sampled_from(['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'new',
                                                             '!', '!NEW'])),
                         text_with_breaks()),
    'limit': option(st.sampled_from(['5/min', '3/sec', '10/hour', '1/day', '0/sec', '60/min'])),
    'limit_burst': st.one_of(st.none(), st.integers(-1, 10001), st.text(max_size=3)),
    'comment': st.one_of(st.none(), st.text(max_size=40), text_with_breaks()),
    'jump': option(st.sampled_from(['ACCEPT', 'DROP', 'REJECT', 'LOG', 'RETURN', 'SNAT', 'DNAT', 'MASQUERADE',
                                    'REDIRECT', 'SNF-HYP-T', 'accept', 'CT', 'TCPMSS', 'NETMAP'])),
    'reject_with': option(st.sampled_from(['tcp-reset', 'icmp-port-unreachable', 'icmp6-adm-prohibited'])),
    'log_prefix': st.one_of(st.none(), st.text(max_size=30), text_with_breaks()),
    'log_level': st.one_of(st.none(), st.integers(-1, 9), st.sampled_from(['info', 'warn', 'debug', '7'])),
    'to_source': option(st.sampled_from(NAT_TARGETS)),
    'to_destination': option(st.sampled_from(NAT_TARGETS)),
    'to_ports': st.one_of(st.none(), PORTS, st.text(max_size=8)),
    'to_prefix': option(st.sampled_from(['198.51.100.0/24', '198.51.100.7', '10.0.0.1/24', '0.0.0.0/0',
                                         '2001:db8:1::/64', '2001:db8::7/128', '::/0', '!10.0.0.0/8'])),
    'random': st.one_of(st.none(), st.booleans()),
    'random_fully': st.one_of(st.none(), st.booleans()),
    'persistent': st.one_of(st.none(), st.booleans()),
})


@pytest.fixture(scope='module')
def netns():
    """A network namespace of this test's own for iptables-restore --test; removed afterwards."""
    if os.geteuid() != 0 or not shutil.which('ip') or not shutil.which('iptables-restore'):
        pytest.skip('needs root, ip and iptables-restore (iptables-restore --test runs in a namespace of its own)')
    name = 'snf-prop-%s' % uuid.uuid4().hex[:8]
    subprocess.run(['ip', 'netns', 'add', name], check=True)
    try:
        yield name
    finally:
        subprocess.run(['ip', 'netns', 'delete', name], check=False)


def restore_test(netns, family, table, spec, text, test=True):
    """iptables-restore --test (or a real restore, test=False) of the rule in chain SNF-HYP of the namespace."""
    lines = ['*%s' % table, ':SNF-HYP - [0:0]']
    if spec['jump'].startswith(r.PREFIX):
        lines.append(':%s - [0:0]' % spec['jump'])
    lines += ['-A SNF-HYP %s' % text, 'COMMIT']
    command = 'iptables-restore' if family == 'ipv4' else 'ip6tables-restore'
    return subprocess.run(['ip', 'netns', 'exec', netns, command, '--noflush'] + (['--test'] if test else []),
                          input=r.restore_text(lines).encode('utf-8'), capture_output=True, check=False)


def saved_rules(netns, family, table):
    """The rules of SNF-HYP as the kernel of the namespace prints them back."""
    command = 'iptables-save' if family == 'ipv4' else 'ip6tables-save'
    out = subprocess.run(['ip', 'netns', 'exec', netns, command, '-t', table], capture_output=True, check=True)
    return r.parse_save(out.stdout.decode('utf-8'))[0][table].rules['SNF-HYP']


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=RULES, family=st.sampled_from(['ipv4', 'ipv6']), table=st.sampled_from(['filter', 'nat', 'mangle', 'raw']))
def test_a_rule_is_refused_naming_its_option_or_round_trips_through_iptables(netns, raw, family, table):
    raw = dict((key, value) for key, value in raw.items() if value is not None)
    raw.setdefault('jump', 'ACCEPT')
    try:
        spec = r.make_rule(raw, family, table, 'rules[0].')
    except ValidationError as exc:
        assert exc.param.startswith('rules[0].')
        # The option at fault, or the one a given option needs (to_source for jump SNAT).
        assert exc.param[len('rules[0].'):].split('[')[0] in r.RULE_KEYS, (exc.param, raw)
        assert len(str(exc)) < 700
        event('refused')
        return
    text = r.render(spec)
    assert not [c for c in text if unicodedata.category(c) in FORBIDDEN_CATEGORIES]
    parsed = r.parse_rule(text, family, table)
    assert parsed is not None, text
    assert r.render(parsed) == text and dict(parsed) == dict(spec)
    done = restore_test(netns, family, table, spec, text)
    assert done.returncode == 0, (text, done.stderr.decode('utf-8', 'replace'))
    event('accepted by %s-restore --test' % ('iptables' if family == 'ipv4' else 'ip6tables'))


# Coherent rules of both tables whose free text (comment, name, log prefix) is arbitrary Unicode:
# where injection through text would show.
COHERENT = st.one_of(
    st.fixed_dictionaries({'protocol': st.sampled_from(['tcp', 'udp']), 'destination_port': PORTS,
                           'jump': st.sampled_from(['ACCEPT', 'DROP', 'RETURN']),
                           'comment': st.text(max_size=60), 'table': st.just('filter')}),
    st.fixed_dictionaries({'jump': st.just('LOG'), 'log_prefix': st.text(max_size=30),
                           'comment': st.text(max_size=60), 'limit': st.sampled_from(['5/min', '1/sec']),
                           'table': st.just('filter')}),
    st.fixed_dictionaries({'protocol': st.just('tcp'), 'destination_port': st.sampled_from([80, '8080']),
                           'jump': st.just('DNAT'), 'to_destination': st.sampled_from(['192.168.1.100:80', '[fd53:1::100]:80']),
                           'name': st.text(max_size=20), 'comment': st.text(max_size=60), 'table': st.just('nat')}),
    # The richer language (issue 14): helpers in raw, MSS in mangle, negation and conntrack matches in filter.
    st.fixed_dictionaries({'protocol': st.sampled_from(['tcp', 'udp']), 'destination_port': PORTS, 'jump': st.just('CT'),
                           'helper': st.sampled_from(['ftp', 'tftp', 'sip', 'sane', 'amanda']),
                           'name': st.text(max_size=20), 'comment': st.text(max_size=60), 'table': st.just('raw')}),
    st.fixed_dictionaries({'protocol': st.just('tcp'), 'tcp_flags': st.sampled_from(['SYN,RST SYN', 'SYN SYN']),
                           'jump': st.just('TCPMSS'), 'set_mss': st.integers(0, 70000), 'out_interface': st.just('!lo'),
                           'comment': st.text(max_size=60), 'table': st.just('mangle')}),
    st.fixed_dictionaries({'protocol': st.just('tcp'), 'source': st.sampled_from(['!192.0.2.0/24', '!fd53::/16']),
                           'ctorigdst': st.sampled_from(['198.51.100.7', '2001:db8::7', '!198.51.100.0/24']),
                           'ctorigdstport': PORTS, 'ctstatus': st.lists(st.sampled_from(['ASSURED', 'SEEN_REPLY'])),
                           'port': st.sampled_from(['!80,443', [22]]), 'jump': st.just('DROP'),
                           'comment': st.text(max_size=60), 'table': st.just('filter')}),
    st.fixed_dictionaries({'source': st.sampled_from(['10.0.5.0/24', 'fd00:5::/64', '10.0.5.7']),
                           'to_prefix': st.sampled_from(['198.51.100.0/24', '2001:db8:5::/64', '198.51.100.7']),
                           'jump': st.just('NETMAP'), 'name': st.text(max_size=20), 'table': st.just('nat')}),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=COHERENT, family=st.sampled_from(['ipv4', 'ipv6']))
def test_free_text_is_refused_naming_its_option_or_stored_exactly(netns, raw, family):
    raw = dict(raw)
    table = raw.pop('table')
    try:
        spec = r.make_rule(raw, family, table, 'rules[0].')
    except ValidationError as exc:
        assert exc.param[len('rules[0].'):].split('[')[0] in raw, (exc.param, raw)
        event('refused')
        return
    text = r.render(spec)
    parsed = r.parse_rule(text, family, table)
    assert parsed is not None and dict(parsed) == dict(spec), text
    for key in ('comment', 'log_prefix', 'name'):
        if raw.get(key):
            assert spec[key] == raw[key]
    done = restore_test(netns, family, table, spec, text, test=False)
    assert done.returncode == 0, (text, done.stderr.decode('utf-8', 'replace'))
    # What the kernel holds, read back as the engine reads it, is exactly the rule: one rule, same spec.
    back = saved_rules(netns, family, table)
    assert len(back) == 1 and dict(r.Rule.from_save(back[0], family, table).spec or {}) == dict(spec), back
    event('applied and read back the same')
