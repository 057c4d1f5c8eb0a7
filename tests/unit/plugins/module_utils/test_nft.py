# SPDX-License-Identifier: GPL-3.0-or-later
"""The nftables back end (_nft.py): render and parse of the rule model, tables, and the ruleset runner.

The property tests draw rules from the same strategy as test_rules_property: every
rule the model accepts is either refused by the nft renderer with a ValidationError
naming its option, or renders to text that parses back to the same spec; with
root and nft, the text is also loaded into an inet table of a private network
namespace (`unshare --net`, never this machine's ruleset) and must be printed
back by nft exactly as rendered.
"""
import os
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ansible_collections.stateful.netfilter.plugins.module_utils import _nft, _rules as r
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

from test_rules_engine import Exit, Failed
from test_rules_property import EXAMPLES, RULES


ADDRS = {'ipv4': ['10.0.0.0/8', '!192.168.1.0/24', '10.0.0.1', '!203.0.113.7'],
         'ipv6': ['2001:db8::1', '!fd53:1::/64', 'fe80::/10']}
PORT_VALUES = ['22', '!22', '1000-2000', '!1000:2000', [443, 80, '8000-8100'], '!80,443', ['!', 53, '5353-5360']]
TARGETS = {
    'filter': ['ACCEPT', 'DROP', 'RETURN', 'REJECT', 'LOG', 'SNF-HYP-T'],
    'nat': ['ACCEPT', 'RETURN', 'SNAT', 'DNAT', 'MASQUERADE', 'REDIRECT', 'LOG'],
    'mangle': ['ACCEPT', 'DROP', 'TCPMSS', 'RETURN'],
    'raw': ['ACCEPT', 'DROP', 'CT'],
}
NAT_TO = {'ipv4': ['203.0.113.1', '203.0.113.1-203.0.113.9', '203.0.113.1:1024-65535', '10.0.0.1:80'],
          'ipv6': ['2001:db8::1', '[2001:db8::1]:80', '2001:db8::1-2001:db8::9', '[2001:db8::1-2001:db8::9]:1025-65535']}
SAFE_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2fff, blacklist_characters='"\\',
                                  blacklist_categories=('Cc', 'Cf', 'Cs', 'Co', 'Cn', 'Zl', 'Zp')), min_size=1, max_size=20)


@st.composite
def coherent_rules(draw):
    """(raw, family, table): rules whose options fit together, so that most of them are valid."""
    family = draw(st.sampled_from(['ipv4', 'ipv6']))
    table = draw(st.sampled_from(['filter', 'nat', 'mangle', 'raw']))
    jump = draw(st.sampled_from(TARGETS[table]))
    protocol = draw(st.sampled_from(['tcp', 'udp', 'sctp', None, 'icmp' if family == 'ipv4' else 'icmpv6', 'gre']))
    if jump in ('TCPMSS',) or (jump == 'CT' and draw(st.booleans())):
        protocol = 'tcp' if jump == 'TCPMSS' else protocol
    raw = dict(jump=jump)

    def maybe():
        return draw(st.booleans())

    if protocol:
        raw['protocol'] = protocol
    if maybe():
        raw['name'] = draw(st.sampled_from(['ssh', 'web.1', 'a/b@c:d', 'x' * 64]))
    for key in ('source', 'destination', 'ctorigsrc', 'ctrepldst'):
        if maybe():
            raw[key] = draw(st.sampled_from(ADDRS[family]))
    for key in ('in_interface', 'out_interface'):
        if maybe():
            raw[key] = draw(st.sampled_from(['eth0', 'ppp+', '!lo', '!wg+', 'br-lan.10']))
    if protocol in ('tcp', 'udp', 'sctp'):
        for key in ('source_port', 'destination_port', 'ctorigdstport', 'ctreplsrcport'):
            if maybe():
                value = draw(st.sampled_from(PORT_VALUES))
                raw[key] = value if key.endswith('_port') or not isinstance(value, list) else '8443'
    if protocol == 'tcp' and (jump == 'TCPMSS' or maybe()):
        if maybe() or jump == 'TCPMSS':
            raw['tcp_flags'] = draw(st.sampled_from(['SYN,RST SYN', 'FIN,SYN,RST,ACK SYN', 'SYN SYN'] if jump == 'TCPMSS'
                                                    else ['ALL NONE', 'ALL FIN,PSH,URG', '!SYN,ACK SYN,ACK', 'SYN,RST SYN']))
        else:
            raw['syn'] = draw(st.booleans())
    if protocol in ('icmp', 'icmpv6') and maybe():
        raw['icmp_type'] = draw(st.sampled_from(
            ['echo-request', 'echo-reply', 'any', 'destination-unreachable', '3/0', '3/3', '3/4', '3/7', '3/13', '11/1',
             '5/1', '12/2'] if family == 'ipv4' else
            ['echo-request', 'neighbour-solicitation', '1/0', '1/1', '1/2', '1/3', '1/4', '1/5', '1/6', '3/1', '4/0',
             '137', '138', '141', '142', '143', '200']))
    if maybe():
        raw['ctstate'] = draw(st.sampled_from([['NEW'], ['ESTABLISHED', 'RELATED'], ['!', 'INVALID'], ['UNTRACKED', 'NEW'],
                                               '!NEW,ESTABLISHED', ['SNAT'], ['DNAT', 'SNAT'], '!DNAT', '!SNAT,DNAT']))
    if maybe():
        raw['ctstatus'] = draw(st.sampled_from([['ASSURED'], ['!', 'EXPECTED'], ['SEEN_REPLY', 'ASSURED', 'CONFIRMED'],
                                                ['NONE'], '!NONE']))
    if maybe():
        raw['ctdir'] = draw(st.sampled_from(['ORIGINAL', 'REPLY']))
    if maybe():
        raw['limit'] = draw(st.sampled_from(['5/min', '3/sec', '10/hour', '1/day', '60/min', '7/sec']))
        if maybe():
            raw['limit_burst'] = draw(st.sampled_from([1, 5, 10, 10000]))
    if maybe():
        raw['comment'] = draw(SAFE_TEXT)
    if jump == 'REJECT' and maybe():
        raw['reject_with'] = draw(st.sampled_from([name for name in r.REJECT_WITH[family]
                                                   if name != 'tcp-reset' or protocol == 'tcp']))
    if jump == 'LOG':
        if maybe():
            raw['log_prefix'] = draw(SAFE_TEXT.filter(lambda text: '$' not in text))
        if maybe():
            raw['log_level'] = draw(st.sampled_from(['info', 'debug', 'emerg', 4, 'notice']))
    if jump in ('SNAT', 'DNAT'):
        raw['to_source' if jump == 'SNAT' else 'to_destination'] = draw(st.sampled_from(NAT_TO[family]))
    if jump in ('MASQUERADE', 'REDIRECT') and maybe():
        raw['to_ports'] = draw(st.sampled_from(['1024-65535', '8080']))
    for flag in ('random', 'random_fully', 'persistent'):
        if jump in ('SNAT', 'DNAT', 'MASQUERADE', 'REDIRECT') and maybe():
            raw[flag] = True
    if jump == 'CT':
        helpers = [name for name, (protocols, families) in sorted(r.HELPERS.items())
                   if protocol in protocols and family in families]
        if helpers and maybe():
            raw['helper'] = draw(st.sampled_from(helpers))
        else:
            raw['notrack'] = True
    if jump == 'TCPMSS':
        if maybe():
            raw['clamp_mss_to_pmtu'] = True
        else:
            raw['set_mss'] = draw(st.integers(88, 65495))
    return raw, family, table


def spec_of(raw, family, table):
    raw = dict((key, value) for key, value in raw.items() if value is not None)
    raw.setdefault('jump', 'ACCEPT')
    try:
        return r.make_rule(raw, family, table, 'rules[0].')
    except ValidationError:
        return None


def as_set(spec):
    """The spec with port lists in nft's order: an anonymous set is a set, nft prints it sorted."""
    out = dict(spec)
    if out.get('icmp_type') == 'any':
        # nft has no "any" ICMP type: the protocol match alone is the same match.
        del out['icmp_type']
    for key in ('source_port', 'destination_port'):
        value = out.get(key)
        if isinstance(value, list):
            neg = r.negated(value)
            ports = sorted(r.plain(value), key=lambda port: int(port.split(':')[0]))
            out[key] = ([r.NOT] if neg else []) + ports
    return out


def rendered(spec, family):
    """The nft text of a spec, or None when the renderer refuses it (naming an option of the rule)."""
    try:
        return _nft.render_rule(spec, family, 'rules[0].')
    except ValidationError as exc:
        assert exc.param.startswith('rules[0].') and exc.param[len('rules[0].'):] in r.RULE_KEYS, exc.param
        event('refused: %s' % exc.param)
        return None


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=RULES, family=st.sampled_from(['ipv4', 'ipv6']), table=st.sampled_from(['filter', 'nat', 'mangle', 'raw']))
def test_a_rule_renders_and_parses_back_to_its_spec(raw, family, table):
    spec = spec_of(raw, family, table)
    if spec is None:
        return
    text = rendered(spec, family)
    if text is None:
        return
    event('rendered')
    assert '\n' not in text
    assert as_set(_nft.parse_rule(text, family, table)) == as_set(spec), text


def nft_listing(text):
    """`nft list table inet t` after loading text in a network namespace of its own (rc, output)."""
    done = subprocess.run(['unshare', '--net', 'sh', '-c', 'nft -f - && nft list table inet t'],
                          input=text.encode('utf-8'), capture_output=True, check=False)
    return done.returncode, done.stdout.decode('utf-8', 'replace') + done.stderr.decode('utf-8', 'replace')


needs_nft = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which('nft') or not shutil.which('unshare'),
                               reason='needs root, nft and unshare (nft runs in a network namespace of its own)')


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=coherent_rules())
def test_a_coherent_rule_renders_and_parses_back_to_its_spec(drawn):
    raw, family, table = drawn
    spec = spec_of(raw, family, table)
    event('valid' if spec is not None else 'invalid')
    text = rendered(spec, family) if spec is not None else None
    if text is not None:
        event('rendered')
        assert as_set(_nft.parse_rule(text, family, table)) == as_set(spec), text


@needs_nft
@settings(max_examples=max(EXAMPLES // 2, 50), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=coherent_rules())
def test_nft_takes_the_rendered_rule_and_prints_it_back_unchanged(drawn):
    raw, family, table = drawn
    spec = spec_of(raw, family, table)
    text = rendered(spec, family) if spec is not None else None
    if text is None:
        return
    states = {family: r.Owned([r.Chain('SNF-HYP', rules=[_nft.NftRule(spec, text)])])}
    if spec['jump'].startswith(r.PREFIX) and spec['jump'] != 'SNF-HYP':
        states[family].chains[spec['jump']] = r.Chain(spec['jump'])
    table_text = _nft.render_table('t', table, states)
    rc, out = nft_listing(table_text)
    assert rc == 0, (table_text, out)
    assert out == table_text
    parsed, unknown = _nft.parse_table(out, table)
    assert unknown == [] and as_set(parsed[family].chains['SNF-HYP'].rules[0].spec) == as_set(spec)


FORMS = [
    # (family, table, rule, nft text)
    ('ipv4', 'filter', dict(source='!10.0.0.0/8', in_interface='!lo', protocol='tcp', destination_port='!22',
                            jump='RETURN'),
     'ip saddr != 10.0.0.0/8 iifname != "lo" tcp dport != 22 return'),
    ('ipv4', 'filter', dict(protocol='tcp', destination_port=[443, 80, '8000-8100'], jump='ACCEPT', name='web'),
     'tcp dport { 80, 443, 8000-8100 } accept comment "snf:web"'),
    ('ipv6', 'filter', dict(in_interface='ppp+', protocol='icmpv6', icmp_type='neighbour-solicitation',
                            jump='ACCEPT'), 'iifname "ppp*" icmpv6 type nd-neighbor-solicit accept'),
    ('ipv4', 'filter', dict(protocol='icmp', icmp_type='fragmentation-needed', jump='ACCEPT'),
     'icmp type destination-unreachable icmp code frag-needed accept'),
    ('ipv4', 'filter', dict(ctstate=['DNAT'], ctstatus=['ASSURED'], jump='ACCEPT'),
     'ct status dnat ct status assured accept'),
    ('ipv4', 'filter', dict(ctstatus=['NONE'], jump='ACCEPT'), 'ct status 0x0 accept'),
    ('ipv6', 'filter', dict(ctstatus='!NONE', ctstate=['NEW'], jump='DROP'), 'ct state new ct status != 0x0 drop'),
    ('ipv4', 'filter', dict(ctstate=['!', 'ESTABLISHED', 'RELATED'], jump='DROP'),
     'ct state != established | related drop'),
    ('ipv4', 'filter', dict(protocol='tcp', syn=False, ctstate=['NEW'], jump='DROP'),
     'tcp flags != syn / fin,syn,rst,ack ct state new drop'),
    ('ipv4', 'filter', dict(protocol='tcp', tcp_flags='ALL NONE', jump='DROP'),
     'tcp flags ! fin,syn,rst,psh,ack,urg drop'),
    ('ipv6', 'filter', dict(limit='5/min', limit_burst=10, jump='LOG', log_prefix='x: ', log_level='info'),
     'limit rate 5/minute burst 10 packets log prefix "x: " level info'),
    ('ipv6', 'filter', dict(jump='REJECT'), 'reject with icmpv6 port-unreachable'),
    ('ipv4', 'nat', dict(protocol='tcp', jump='SNAT', to_source='10.0.0.1-10.0.0.9:1000-2000', random=True,
                         persistent=True), 'meta l4proto tcp snat ip to 10.0.0.1-10.0.0.9:1000-2000 random,persistent'),
    ('ipv6', 'nat', dict(protocol='udp', jump='DNAT', to_destination='[2001:db8::1-2001:db8::9]:53'),
     'meta l4proto udp dnat ip6 to [2001:db8::1]-[2001:db8::9]:53'),
    ('ipv4', 'mangle', dict(protocol='tcp', tcp_flags='SYN,RST SYN', jump='TCPMSS', clamp_mss_to_pmtu=True),
     'tcp flags syn / syn,rst tcp option maxseg size set rt mtu'),
    ('ipv4', 'raw', dict(protocol='udp', destination_port=53, jump='CT', notrack=True), 'udp dport 53 notrack'),
    ('ipv6', 'raw', dict(protocol='tcp', destination_port=21, jump='CT', helper='ftp'),
     'tcp dport 21 ct helper set "snf-ftp-tcp"'),
    ('ipv4', 'raw', dict(protocol='tcp', jump='CT', helper='q.931'), 'meta l4proto tcp ct helper set "snf-q-931-tcp"'),
    ('ipv4', 'filter', dict(protocol='tcp', ctorigdst='192.0.2.7', ctorigdstport=8443, ctstatus=['ASSURED'],
                            ctdir='ORIGINAL', jump='SNF-X'),
     'meta l4proto tcp ct status assured ct original ip daddr 192.0.2.7 ct original proto-dst 8443 '
     'ct direction original jump ipv4.SNF-X'),
]


@pytest.mark.parametrize('family, table, raw, text', FORMS)
def test_forms_nft_prints(family, table, raw, text):
    spec = r.make_rule(raw, family, table)
    assert _nft.render_rule(spec, family) == text
    assert as_set(_nft.parse_rule(text, family, table)) == as_set(spec)


@pytest.mark.parametrize('raw, param, words', [
    (dict(protocol='tcp', port=[80, 443], jump='ACCEPT'), 'port', 'two rules'),
    (dict(ctstate=['SNAT', 'NEW'], jump='ACCEPT'), 'ctstate', 'two rules'),
    (dict(ctorigdstport=80, jump='ACCEPT'), 'ctorigdstport', 'protocol'),
    (dict(comment='a "quoted" word', jump='ACCEPT'), 'comment', 'double quote'),
    (dict(comment='x' * 130, jump='ACCEPT'), 'comment', '128 bytes'),
    (dict(jump='LOG', log_prefix='cost $5: '), 'log_prefix', 'variable'),
    (dict(protocol='tcp', jump='DNAT', to_destination='10.0.0.1:1000-1099/80'), 'to_destination', 'shifting'),
])
def test_what_nft_cannot_take_is_refused_naming_the_option(raw, param, words):
    table = 'nat' if raw['jump'] == 'DNAT' else 'raw' if raw['jump'] == 'CT' else 'filter'
    spec = r.make_rule(raw, 'ipv4', table)
    with pytest.raises(ValidationError) as exc:
        _nft.render_rule(spec, 'ipv4', 'chains[0].rules[1].')
    assert exc.value.param == 'chains[0].rules[1].' + param and words in str(exc.value)


def owned(family, table, chains, policies=None):
    return r.Owned([r.Chain(name, hook, [_nft.rule_from_spec(r.make_rule(rule, family, table), family)
                                         for rule in rules]) for name, hook, rules in chains], policies)


def test_table_renders_base_chains_per_hook_and_position_and_parses_back():
    states = {
        'ipv4': owned('ipv4', 'filter', [('SNF-A', ('INPUT', 'first'), [dict(jump='ACCEPT', in_interface='lo')]),
                                         ('SNF-B', ('INPUT', 'last'), [dict(jump='SNF-C')]),
                                         ('SNF-C', None, [])], {'INPUT': 'DROP', 'FORWARD': 'ACCEPT'}),
        'ipv6': owned('ipv6', 'filter', [('SNF-A', ('INPUT', 'first'), [dict(jump='DROP')])], {'INPUT': 'DROP'}),
    }
    text = _nft.render_table('snf_filter_X', 'filter', states)
    # The filter table: the policy on the last base chain, the accept mark carried between the scopes' tables
    # (set around the first chain's jumps, accepted by the last, cleared by the end chain).
    assert text.startswith('table inet snf_filter_X {\n\tchain INPUT {\n'
                           '\t\ttype filter hook input priority filter - 1; policy accept;\n'
                           '\t\tmeta mark & 0x20000000 == 0x20000000 accept\n'
                           '\t\tmeta mark set meta mark | 0x20000000\n'
                           '\t\tmeta nfproto ipv4 jump ipv4.SNF-A\n\t\tmeta nfproto ipv6 jump ipv6.SNF-A\n'
                           '\t\tmeta mark set meta mark & 0xdfffffff\n\t}\n\n'
                           '\tchain INPUT-LAST {\n\t\ttype filter hook input priority filter + 1; policy drop;\n'
                           '\t\tmeta mark & 0x20000000 == 0x20000000 accept\n'
                           '\t\tmeta nfproto ipv4 jump ipv4.SNF-B\n\t}\n\n'
                           '\tchain INPUT-END {\n\t\ttype filter hook input priority filter + 2; policy accept;\n'
                           '\t\tmeta mark set meta mark & 0xdfffffff\n\t}\n')
    assert 'FORWARD' not in text
    parsed, unknown = _nft.parse_table(text, 'filter')
    assert unknown == []
    assert _nft.render_table('snf_filter_X', 'filter', parsed) == text
    assert parsed['ipv4'].chains['SNF-B'].hook == ('INPUT', 'last')
    assert parsed['ipv4'].chains['SNF-C'].hook is None
    assert parsed['ipv6'].policies['INPUT'] == 'DROP'
    assert _nft.render_table('snf_filter_X', 'filter', {'ipv4': r.Owned(), 'ipv6': r.Owned()}) == ''
    # A policy alone still has its last and end chains (the mark of another scope's accept counts).
    alone = _nft.render_table('snf_filter_X', 'filter', {'ipv4': r.Owned([], {'FORWARD': 'DROP'}),
                                                         'ipv6': r.Owned([], {'FORWARD': 'DROP'})})
    assert 'chain FORWARD {' not in alone and 'chain FORWARD-LAST {' in alone and 'chain FORWARD-END {' in alone
    assert _nft.parse_table(alone, 'filter')[1] == []


@pytest.mark.parametrize('edit', [
    # The layout before the accept mark (policy on the first chain, no mark rules).
    lambda text: text.replace('\t\tmeta mark & 0x20000000 == 0x20000000 accept\n', '')
    .replace('\t\tmeta mark set meta mark | 0x20000000\n', '')
    .replace('\t\tmeta mark set meta mark & 0xdfffffff\n', ''),
    lambda text: text.replace('\t\tmeta mark set meta mark | 0x20000000\n', ''),
    lambda text: text.replace('priority filter - 1; policy accept;', 'priority filter - 1; policy drop;'),
    lambda text: text.replace('\tchain INPUT-END {\n\t\ttype filter hook input priority filter + 2; policy accept;\n'
                              '\t\tmeta mark set meta mark & 0xdfffffff\n\t}\n', ''),
    lambda text: text.replace('\t\tmeta mark set meta mark & 0xdfffffff\n\t}\n\n\tchain INPUT-LAST',
                              '\t\tcounter\n\t\tmeta mark set meta mark & 0xdfffffff\n\t}\n\n\tchain INPUT-LAST'),
])
def test_a_base_chain_out_of_the_layout_is_not_the_collections(edit):
    states = dict((family, owned(family, 'filter', [('SNF-A', ('INPUT', 'first'), [dict(jump='ACCEPT')])],
                                 {'INPUT': 'DROP'})) for family in ('ipv4', 'ipv6'))
    text = _nft.render_table('snf_filter_X', 'filter', states)
    edited = edit(text)
    assert edited != text
    assert _nft.parse_table(edited, 'filter')[1] != []


def test_other_tables_keep_the_policy_on_the_first_base_chain_and_no_mark():
    states = dict((family, owned(family, 'mangle', [('SNF-M', ('FORWARD', 'first'), [dict(jump='ACCEPT')])],
                                 {'FORWARD': 'DROP'})) for family in ('ipv4', 'ipv6'))
    text = _nft.render_table('snf_mangle_X', 'mangle', states)
    assert 'priority mangle - 1; policy drop;' in text and 'mark' not in text and '-END' not in text
    parsed, unknown = _nft.parse_table(text, 'mangle')
    assert unknown == [] and _nft.render_table('snf_mangle_X', 'mangle', parsed) == text


def test_a_rule_nft_printed_that_the_model_cannot_read_is_kept_as_text_and_never_written_back():
    text = ('table inet snf_filter_X {\n\tchain ipv4.SNF-A {\n\t\tmeta mark 0x1 accept\n\t}\n'
            '\tchain OTHER {\n\t\tcounter\n\t}\n}\n')
    parsed, unknown = _nft.parse_table(text, 'filter')
    rule = parsed['ipv4'].chains['SNF-A'].rules[0]
    assert rule.spec is None and rule.text == 'meta mark 0x1 accept'
    assert unknown == ['counter']
    with pytest.raises(ValidationError) as exc:
        _nft._check_wanted(parsed, [], 'merged', ['ipv4', 'ipv6'])
    assert 'never written back' in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        _nft._check_wanted({'ipv4': r.Owned(), 'ipv6': r.Owned()}, unknown, 'merged', ['ipv4', 'ipv6'])
    assert exc.value.param == 'state'


class NftModule(object):
    """Just enough of AnsibleModule for the nft runner: `nft` answered from a dict of listings."""

    def __init__(self, params, nft='/usr/sbin/nft', tables=None, kernel_error=None, check_mode=False,
                 version='nftables v1.0.6 (Lester Gooch #5)\n'):
        defaults = dict(table='filter', family='both', state='overridden', scope='FW', policies=None, chains=[],
                        rollback_timeout=None, rollback_confirm=None, backend='nftables')
        defaults.update(params)
        self.params = defaults
        self.nft = nft
        self.tables = tables if tables is not None else {}
        self.kernel_error = kernel_error
        self.version = version
        self.check_mode = check_mode
        self._diff = True
        self.calls = []
        self.warnings = []

    def get_bin_path(self, name, required=False):
        assert name in ('nft', 'systemd-run', 'systemctl', 'ip')
        return self.nft if name == 'nft' else None

    def run_command(self, cmd, data=None, binary_data=False, environ_update=None):
        assert isinstance(cmd, list) and environ_update == {'LC_ALL': 'C'}
        self.calls.append((cmd[1:], data))
        if cmd[1:] == ['--version']:
            return (0, self.version, '') if self.version else (1, '', 'nft: unrecognized option')
        if cmd[1:3] == ['list', 'tables']:
            if self.kernel_error:
                return 1, '', self.kernel_error
            return 0, ''.join('table inet %s\n' % name for name in self.tables), ''
        if cmd[1:5] == ['-t', 'list', 'table', 'inet']:
            if cmd[5] not in self.tables:
                return 1, '', 'Error: No such file or directory\nlist table inet %s\n' % cmd[5]
            return 0, self.tables[cmd[5]], ''
        assert cmd[-2:] == ['-f', '-']
        return 0, '', ''

    def writes(self):
        return [(args, data) for args, data in self.calls if args[-2:] == ['-f', '-']]

    def warn(self, msg):
        self.warnings.append(msg)

    def exit_json(self, **result):
        raise Exit(**result)

    def fail_json(self, **result):
        raise Failed(**result)


CHAINS = [dict(name='SNF-FW-IN', hook='INPUT', hook_position='first',
               rules=[dict(name='ssh', protocol='tcp', destination_port=22, jump='ACCEPT')])]


def outcome(module):
    with pytest.raises((Exit, Failed)) as exc:
        _nft.run_ruleset(module)
    return exc.value


def test_missing_nft_or_nf_tables_fails_before_any_change(no_lock):
    missing = NftModule(dict(chains=CHAINS), nft=None)
    result = outcome(missing)
    assert isinstance(result, Failed) and result.result['param'] == 'backend' and 'package nftables' in str(result)
    assert missing.calls == []
    kernel = NftModule(dict(chains=CHAINS), kernel_error='Error: Could not process rule: Protocol not supported\n')
    result = outcome(kernel)
    assert isinstance(result, Failed) and 'nf_tables' in str(result) and kernel.writes() == []


def test_check_mode_predicts_the_transaction_and_writes_nothing_then_apply_checks_first(no_lock):
    check = NftModule(dict(chains=CHAINS), check_mode=True)
    predicted = outcome(check)
    assert isinstance(predicted, Exit) and predicted.result['changed'] is True and check.writes() == []
    real = NftModule(dict(chains=CHAINS))
    applied = outcome(real).result
    assert applied['nft'] == predicted.result['nft']
    assert applied['nft'].startswith('table inet snf_filter_FW\ndelete table inet snf_filter_FW\n'
                                     'table inet snf_filter_FW {\n')
    assert [args[:-2] for args, data in real.writes()] == [['-c'], []]
    assert all(data == applied['nft'] for args, data in real.writes())
    # The table as the kernel would print it: no change, nothing written.
    after = applied['nft'].split('\n', 2)[2]
    again = NftModule(dict(chains=CHAINS), tables={'snf_filter_FW': after})
    result = outcome(again).result
    assert result['changed'] is False and result['nft'] == '' and again.writes() == []


def test_rendered_needs_no_host_and_gathered_reads_back(no_lock):
    rendered = NftModule(dict(chains=CHAINS, state='rendered'), nft=None)
    text = outcome(rendered).result['rendered']['nftables']
    assert rendered.calls == [] and 'tcp dport 22 accept comment "snf:ssh"' in text
    gathered = outcome(NftModule(dict(state='gathered'), tables={'snf_filter_FW': text})).result['gathered']
    assert gathered['ipv6']['chains'] == [dict(name='SNF-FW-IN', hook='INPUT', hook_position='first', rules=[
        dict(name='ssh', protocol='tcp', destination_port='22', jump='ACCEPT')])]
    assert gathered['ipv4']['policies'] == {'INPUT': 'ACCEPT', 'FORWARD': 'ACCEPT', 'OUTPUT': 'ACCEPT'}


def test_gathered_without_a_scope_reads_every_scope_of_the_table(no_lock):
    firewall = outcome(NftModule(dict(chains=CHAINS, policies={'FORWARD': 'DROP'}, state='rendered'),
                                 nft=None)).result['rendered']['nftables']
    gateway = outcome(NftModule(dict(scope='GW', state='rendered', chains=[
        dict(name='SNF-GW-FWD', hook='FORWARD', rules=[dict(name='out', in_interface='lan', jump='ACCEPT')])]),
        nft=None)).result['rendered']['nftables']
    nat = outcome(NftModule(dict(scope='GW', table='nat', state='rendered', chains=[
        dict(name='SNF-GW-POST', hook='POSTROUTING', rules=[dict(out_interface='wan', jump='MASQUERADE')])]),
        nft=None)).result['rendered']['nftables']
    tables = {'snf_filter_FW': firewall, 'snf_filter_GW': gateway, 'snf_nat_GW': nat, 'snf_filterx': firewall}
    result = outcome(NftModule(dict(state='gathered', scope=None), tables=tables)).result
    assert result['tables'] == ['inet snf_filter_FW', 'inet snf_filter_GW']
    assert [chain['name'] for chain in result['gathered']['ipv4']['chains']] == ['SNF-FW-IN', 'SNF-GW-FWD']
    assert result['gathered']['ipv6']['policies'] == {'INPUT': 'ACCEPT', 'FORWARD': 'DROP', 'OUTPUT': 'ACCEPT'}
    one = outcome(NftModule(dict(state='gathered', scope='GW'), tables=tables)).result
    assert one['tables'] == ['inet snf_filter_GW'] and one['gathered']['ipv4']['policies']['FORWARD'] == 'ACCEPT'


def test_merged_for_one_family_keeps_the_other_family_of_the_table(no_lock):
    first = outcome(NftModule(dict(chains=CHAINS))).result['nft'].split('\n', 2)[2]
    extra = [dict(name='SNF-FW-IN', rules=[dict(name='web', protocol='tcp', destination_port=80, jump='ACCEPT')])]
    result = outcome(NftModule(dict(chains=extra, family='ipv4', state='merged'),
                               tables={'snf_filter_FW': first})).result
    assert result['changed'] is True
    parsed, unknown = _nft.parse_table(result['nft'].split('\n', 2)[2], 'filter')
    assert [rule.name for rule in parsed['ipv4'].chains['SNF-FW-IN'].rules] == ['ssh', 'web']
    assert [rule.name for rule in parsed['ipv6'].chains['SNF-FW-IN'].rules] == ['ssh']


def test_bad_input_is_refused_naming_the_option(no_lock):
    for params, param in ((dict(family='ipv4', policies={'INPUT': 'DROP'}), 'policies.INPUT'),
                          (dict(rollback_timeout=3), 'rollback_timeout'),
                          (dict(rollback_confirm='nothex'), 'rollback_confirm'),
                          (dict(chains=[dict(name='SNF-FW-IN',
                                             rules=[dict(protocol='tcp', port=[1, 2], jump='ACCEPT')])]),
                           'chains[0].rules[0].port')):
        module = NftModule(params)
        result = outcome(module)
        assert isinstance(result, Failed) and result.result['param'] == param, result.result
        assert module.writes() == []


def test_a_base_chain_someone_changed_is_noticed_and_replaced_by_overridden(no_lock):
    text = outcome(NftModule(dict(chains=CHAINS))).result['nft'].split('\n', 2)[2]
    tampered = text.replace('priority filter - 1', 'priority filter + 10')
    assert tampered != text
    parsed, unknown = _nft.parse_table(tampered, 'filter')
    assert unknown == ['type filter hook input priority filter + 10; policy accept;']
    result = outcome(NftModule(dict(chains=CHAINS), tables={'snf_filter_FW': tampered})).result
    assert result['changed'] is True and result['nft'].split('\n', 2)[2] == text
    merged = outcome(NftModule(dict(chains=CHAINS, state='merged'), tables={'snf_filter_FW': tampered}))
    assert isinstance(merged, Failed) and merged.result['param'] == 'state'


def test_helper_rules_bring_their_ct_helper_objects():
    states = {'ipv4': owned('ipv4', 'raw', [('SNF-R', ('PREROUTING', 'first'), [
        dict(protocol='tcp', destination_port=21, jump='CT', helper='ftp'),
        dict(protocol='tcp', destination_port=6667, jump='CT', helper='irc')])])}
    text = _nft.render_table('snf_raw', 'raw', states)
    assert text.startswith('table inet snf_raw {\n\tct helper snf-ftp-tcp {\n\t\ttype "ftp" protocol tcp\n'
                           '\t\tl3proto inet\n\t}\n\n\tct helper snf-irc-tcp {\n\t\ttype "irc" protocol tcp\n'
                           '\t\tl3proto ip\n\t}\n\n\tchain PREROUTING {\n')
    parsed, unknown = _nft.parse_table(text, 'raw')
    assert unknown == [] and _nft.render_table('snf_raw', 'raw', parsed) == text
    parsed, unknown = _nft.parse_table(text.replace('"irc"', '"ftp"'), 'raw')
    assert unknown == ['ct helper snf-irc-tcp { type "ftp" protocol tcp; l3proto ip }']


@needs_nft
@pytest.mark.parametrize('family', ['ipv4', 'ipv6'])
def test_every_icmp_type_and_code_is_printed_by_nft_as_rendered(family):
    protocol = 'icmp' if family == 'ipv4' else 'icmpv6'
    values = [str(number) for number in range(256)] + ['3/%d' % code for code in range(256)]
    rules = [_nft.rule_from_spec(r.make_rule(dict(protocol=protocol, icmp_type=value, jump='ACCEPT'), family,
                                             'filter'), family) for value in values]
    text = _nft.render_table('t', 'filter', {family: r.Owned([r.Chain('SNF-HYP', rules=rules)])})
    rc, out = nft_listing(text)
    assert rc == 0 and out == text
    parsed, unknown = _nft.parse_table(out, 'filter')
    assert [rule.spec['icmp_type'] for rule in parsed[family].chains['SNF-HYP'].rules] == values


# ---------------------------------------------------------------------------
# Host requirements, commit-confirm, nat_rule and persistence on this back end.

@pytest.mark.parametrize('text, version', [
    ('nftables v1.0.6 (Lester Gooch #5)\n', (1, 0, 6)),
    ('nftables v0.9.8 (E.D.S.)\n', (0, 9, 8)),
    ('nftables v1.1 (Commodore Bullmoose)\n', (1, 1, 0)),
    ('', None), ('nft: unknown option', None),
])
def test_nft_version_is_read(text, version):
    assert _nft.parse_version(text) == version


def test_an_nft_too_old_fails_naming_backend_before_any_change(no_lock):
    for version in ('nftables v0.9.0 (Fearless Fosdick)\n', None):
        module = NftModule(dict(chains=CHAINS), version=version)
        result = outcome(module)
        assert isinstance(result, Failed) and result.result['param'] == 'backend', result.result
        assert '0.9.3 or later' in str(result) and module.writes() == []
        assert ['list', 'tables'] not in [args for args, data in module.calls]


def applied_text(params=None):
    return outcome(NftModule(dict(chains=CHAINS, **(params or {})))).result['nft'].split('\n', 2)[2]


def test_check_saved_accepts_what_the_collection_writes_and_refuses_anything_else():
    text = applied_text()
    _nft.check_saved('snf_filter_FW', 'filter', text)
    _nft.check_saved('snf_filter_FW', 'filter', '')
    for bad in (text.replace('snf_filter_FW', 'snf_filter_GW'),
                text.replace('accept comment', 'counter accept comment'),
                text.replace('\t\tmeta nfproto ipv4 jump', '\t\tmeta nfproto ipv4 jump ipv4.SNF-FW-IN\n\t\tmeta nfproto '
                                                           'ipv4 jump', 1),
                text.replace('priority filter - 1', 'priority filter - 2'),
                'flush ruleset\n'):
        with pytest.raises(ValueError):
            _nft.check_saved('snf_filter_FW', 'filter', bad)


def test_rollback_arms_with_the_table_as_it_was_and_fires_one_nft_transaction(tmp_path, monkeypatch):
    from ansible_collections.stateful.netfilter.plugins.module_utils import _rollback
    monkeypatch.setattr(_rollback, '_detach', lambda cmd: 4242)
    before = applied_text()
    changed_chains = [dict(CHAINS[0], rules=[dict(name='ssh', protocol='tcp', destination_port=2222, jump='ACCEPT')])]
    module = NftModule(dict(chains=changed_chains, policies={'INPUT': 'DROP'}, rollback_timeout=30),
                       tables={'snf_filter_FW': before})
    result = outcome(module).result
    assert result['changed'] is True and result['rollback']['armed'] is True, result
    # nft -c before arming, then the one nft -f.
    assert [args[:-2] for args, data in module.writes()] == [['-c'], []]
    record = _rollback.read_record(result['rollback']['state_dir'])
    assert record['backend'] == 'nftables' and record['nft'] == dict(table='snf_filter_FW', text=before)
    assert sorted(record['families']) == ['ipv4', 'ipv6'] and record['timer'] == dict(kind='process', pid=4242)
    # A second push to the scope is refused while the rollback is pending, an iptables one too.
    again = outcome(NftModule(dict(chains=CHAINS), tables={'snf_filter_FW': result['nft'].split('\n', 2)[2]}))
    assert isinstance(again, Failed) and record['id'] in again.result['msg']
    # The timer fires: the table as it is now (the push's) is replaced by the saved one in one transaction.
    host = NftModule({}, tables={'snf_filter_FW': result['nft'].split('\n', 2)[2]})
    final = _rollback.fire(record['state_dir'], host)
    assert final['status'] == 'rolled_back', final['result']
    assert final['result']['restored'] == ['ipv4', 'ipv6']
    assert host.writes() == [(['-c', '-f', '-'], _nft.transaction('snf_filter_FW', before)),
                             (['-f', '-'], _nft.transaction('snf_filter_FW', before))]


def test_rollback_of_a_new_table_removes_it_and_nothing_to_undo_writes_nothing(tmp_path, monkeypatch):
    from ansible_collections.stateful.netfilter.plugins.module_utils import _rollback
    monkeypatch.setattr(_rollback, '_detach', lambda cmd: 1)
    result = outcome(NftModule(dict(chains=CHAINS, rollback_timeout=10))).result
    record = _rollback.read_record(result['rollback']['state_dir'])
    assert record['nft']['text'] == ''
    host = NftModule({}, tables={'snf_filter_FW': result['nft'].split('\n', 2)[2]})
    assert _rollback.fire(record['state_dir'], host)['status'] == 'rolled_back'
    assert host.writes()[-1][1] == 'table inet snf_filter_FW\ndelete table inet snf_filter_FW\n'
    # Armed again; the table was already put back by hand: nothing is written.
    result = outcome(NftModule(dict(chains=CHAINS, rollback_timeout=10))).result
    host = NftModule({})
    final = _rollback.fire(result['rollback']['state_dir'], host)
    assert final['status'] == 'rolled_back' and final['result']['unchanged'] == ['ipv4', 'ipv6']
    assert host.writes() == []


def test_a_tampered_nft_record_is_refused_and_restores_nothing(tmp_path, monkeypatch):
    from ansible_collections.stateful.netfilter.plugins.module_utils import _rollback
    monkeypatch.setattr(_rollback, '_detach', lambda cmd: 1)
    result = outcome(NftModule(dict(chains=CHAINS, rollback_timeout=10))).result
    state_dir = result['rollback']['state_dir']
    record = _rollback.read_record(state_dir)
    record['nft']['text'] = 'table inet snf_filter_FW {\n\tchain INPUT {\n\t\tip saddr 1.2.3.4 counter\n\t}\n}\n'
    _rollback.write_record(state_dir, record)
    host = NftModule({}, tables={'snf_filter_FW': result['nft'].split('\n', 2)[2]})
    final = _rollback.fire(state_dir, host)
    assert final['status'] == 'failed' and 'does not write' in final['result']['errors'][0]
    assert host.writes() == []
    record['nft']['table'] = 'foreign'
    _rollback.write_record(state_dir, record)
    with pytest.raises(_rollback.RollbackError):
        _rollback.read_record(state_dir)


def test_rollback_is_not_armed_in_check_mode_nor_without_change_nor_over_unreadable_content(no_lock):
    check = outcome(NftModule(dict(chains=CHAINS, rollback_timeout=10), check_mode=True)).result
    assert check['changed'] is True and check['rollback'] == dict(armed=False)
    text = applied_text()
    same = outcome(NftModule(dict(chains=CHAINS, rollback_timeout=10), tables={'snf_filter_FW': text})).result
    assert same['changed'] is False and same['rollback'] == dict(armed=False)
    odd = text.replace('accept comment "snf:ssh"', 'meta mark 0x1 accept')
    module = NftModule(dict(chains=CHAINS, rollback_timeout=10), tables={'snf_filter_FW': odd})
    result = outcome(module)
    assert isinstance(result, Failed) and result.result['param'] == 'rollback_timeout' and module.writes() == []


def test_a_failed_apply_cancels_the_armed_rollback(monkeypatch):
    from ansible_collections.stateful.netfilter.plugins.module_utils import _rollback
    monkeypatch.setattr(_rollback, '_detach', lambda cmd: 1)
    module = NftModule(dict(chains=CHAINS, rollback_timeout=10))
    real = module.run_command

    def failing(cmd, data=None, binary_data=False, environ_update=None):
        if cmd[1:] == ['-f', '-']:
            real(cmd, data, binary_data, environ_update)
            return 1, '', 'Error: Could not process rule: No buffer space available\n'
        return real(cmd, data, binary_data, environ_update)
    module.run_command = failing
    result = outcome(module)
    assert isinstance(result, Failed) and 'No buffer space' in str(result)
    records = _rollback.all_records()
    assert [record['status'] for record in records] == ['cancelled']


def nat(**params):
    base = dict(name=None, protocol=None, source=None, destination=None, in_interface=None, out_interface=None,
                source_port=None, destination_port=None, comment=None, to_source=None, to_destination=None,
                to_ports=None, random=False, random_fully=False, persistent=False, type='snat', state='present',
                family=None, order='last', relative_to=None, flush_conntrack=False, backend='nftables')
    base.update(params)
    return base


def run_nat(module):
    with pytest.raises((Exit, Failed)) as exc:
        _nft.run_nat_rule(module)
    return exc.value


def test_nat_rule_puts_the_rule_in_the_owned_nat_table_and_a_rerun_changes_nothing(no_lock):
    params = nat(name='lan-out', source='10.0.0.0/24', out_interface='eth0', to_source='203.0.113.5')
    check = run_nat(NftModule(params, check_mode=True)).result
    first = NftModule(params)
    result = run_nat(first).result
    assert result['changed'] is True and check['changed'] is True and check['nft'] == result['nft']
    assert result['table'] == 'inet snf_nat_NAT' and result['families'] == ['ipv4']
    assert result['rule'] == ('add rule inet snf_nat_NAT ipv4.SNF-NAT-POST ip saddr 10.0.0.0/24 oifname "eth0" '
                              'snat ip to 203.0.113.5 comment "snf:lan-out"')
    text = result['nft'].split('\n', 2)[2]
    assert 'type nat hook postrouting priority srcnat - 1; policy accept;' in text
    again = NftModule(params, tables={'snf_nat_NAT': text})
    assert run_nat(again).result['changed'] is False and again.writes() == []
    # A DNAT goes to the PRE chain of the same table; the SNAT stays.
    dnat = run_nat(NftModule(nat(name='web', type='dnat', in_interface='eth0', protocol='tcp', destination_port=8080,
                                 to_destination='10.0.0.10:80'), tables={'snf_nat_NAT': text})).result
    both = dnat['nft'].split('\n', 2)[2]
    assert 'tcp dport 8080 dnat ip to 10.0.0.10:80 comment "snf:web"' in both and 'snat ip to 203.0.113.5' in both
    assert 'type nat hook prerouting priority dstnat - 1; policy accept;' in both
    # Removed by name: the chain and its base chain go with it.
    gone = run_nat(NftModule(nat(name='web', type='dnat', state='absent'), tables={'snf_nat_NAT': both})).result
    assert gone['changed'] is True and gone['nft'].split('\n', 2)[2] == text
    last = run_nat(NftModule(nat(name='lan-out', state='absent'), tables={'snf_nat_NAT': text})).result
    assert last['nft'] == 'table inet snf_nat_NAT\ndelete table inet snf_nat_NAT\n'


def test_nat_rule_both_families_and_bad_input_naming_the_option(no_lock):
    result = run_nat(NftModule(nat(type='masquerade', out_interface='ppp+', family='both'))).result
    assert result['families'] == ['ipv4', 'ipv6'] and 'oifname "ppp*" masquerade' in result['nft']
    for params, param in ((nat(type='dnat', to_destination='10.0.0.1:80/8080', protocol='tcp',
                               destination_port=80), 'to_destination'),
                          (nat(to_source='203.0.113.5', source='10.0.0.0/8', family='both'), 'family'),
                          (nat(to_source='203.0.113.5', comment='a "b"'), 'comment')):
        module = NftModule(params)
        result = run_nat(module)
        assert isinstance(result, Failed) and result.result['param'] == param, result.result
        assert module.writes() == []


def test_persistence_file_from_the_model_replaces_each_owned_table_and_nothing_else():
    name, text = _nft.render_params(dict(table='filter', scope='FW', policies={'INPUT': 'DROP'}, chains=CHAINS))
    assert name == 'snf_filter_FW' and text == applied_text(dict(policies={'INPUT': 'DROP'}))
    nat_name, nat_text = _nft.render_params(dict(table='nat', scope='GW', chains=[
        dict(name='SNF-GW-POST', hook='POSTROUTING', rules=[dict(out_interface='eth0', jump='MASQUERADE')])]))
    out = _nft.persistence_file([(name, text), (nat_name, nat_text), ('snf_filter_OLD', '')])
    assert out.startswith('#!/usr/sbin/nft -f\n') and '\nflush' not in out
    assert ('\ntable inet snf_filter_FW\ndelete table inet snf_filter_FW\n' + text) in out
    assert out.endswith('\ntable inet snf_filter_OLD\ndelete table inet snf_filter_OLD\n')
    with pytest.raises(ValidationError) as exc:
        _nft.persistence_file([('filter; flush ruleset', '')])
    assert exc.value.param == 'table'
    with pytest.raises(ValidationError) as exc:
        _nft.render_params(dict(table='filter', family='ipv4', policies={'INPUT': 'DROP'}))
    assert exc.value.param == 'policies.INPUT'


@pytest.mark.skipif(shutil.which('nft') is None or os.geteuid() != 0, reason='needs nft and root')
def test_nft_checks_the_persistence_file_in_a_private_namespace():
    name, text = _nft.render_params(dict(table='filter', scope='FW', policies={'INPUT': 'DROP'}, chains=CHAINS))
    raw_name, raw_text = _nft.render_params(dict(table='raw', scope='FW', chains=[
        dict(name='SNF-FW-RAW', hook='PREROUTING', rules=[
            dict(protocol='tcp', destination_port=21, jump='CT', helper='ftp')])]))
    out = _nft.persistence_file([(name, text), (raw_name, raw_text)])
    done = subprocess.run(['unshare', '--net', 'nft', '-c', '-f', '-'], input=out.encode(), capture_output=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    broken = subprocess.run(['unshare', '--net', 'nft', '-c', '-f', '-'],
                            input=out.replace('policy drop', 'policy dorp').encode(), capture_output=True,
                            check=False)
    assert broken.returncode != 0


@pytest.mark.parametrize('key, value', [
    ('hashlimit_htable_size', 1024), ('hashlimit_htable_gcinterval', 500), ('some_future_option', True)])
def test_an_option_of_the_model_this_back_end_does_not_render_is_refused_naming_it(key, value):
    spec = {'protocol': 'tcp', 'destination_port': '22', key: value, 'jump': 'ACCEPT'}
    with pytest.raises(ValidationError) as exc:
        _nft.render_rule(spec, 'ipv4', 'chains[0].rules[3].')
    assert exc.value.param == 'chains[0].rules[3].' + key and 'nftables back end' in str(exc.value)


def ssh_states(policy='DROP', rules=(), last=()):
    states = {}
    for family in ('ipv4', 'ipv6'):
        mine = [raw for raw in rules if r.infer_family(raw) in (None, family)]
        chains = [r.Chain('SNF-FW-IN', ('INPUT', 'first'),
                          [_nft.rule_from_spec(r.make_rule(raw, family, 'filter'), family) for raw in mine]),
                  r.Chain('SNF-FW-SUB', None, [_nft.rule_from_spec(r.make_rule(dict(name='sub', protocol='tcp',
                                                                                    destination_port=2222,
                                                                                    jump='ACCEPT'), family,
                                                                               'filter'), family)])]
        if last:
            chains.append(r.Chain('SNF-FW-LAST', ('INPUT', 'last'),
                                  [_nft.rule_from_spec(r.make_rule(raw, family, 'filter'), family) for raw in last]))
        states[family] = r.Owned(chains, [('INPUT', policy)])
    return states


SSH = '192.0.2.7 40022 192.0.2.1 22'
EST = dict(name='est', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT')


@pytest.mark.parametrize('rules, last, policy, connection, accepted, decided_by', [
    ([EST], (), 'DROP', SSH, False, 'the INPUT policy DROP'),
    ([EST, dict(name='ssh', protocol='tcp', destination_port=22, jump='ACCEPT')], (), 'DROP', SSH, True, None),
    ([dict(name='ssh', protocol='tcp', destination_port=[22, '8000-8100'], source='192.0.2.0/24', jump='ACCEPT')],
     (), 'DROP', SSH, True, None),
    ([dict(name='ssh', protocol='tcp', destination_port=22, source='!192.0.2.0/24', jump='ACCEPT')], (), 'DROP', SSH,
     False, 'the INPUT policy DROP'),
    ([dict(name='no', protocol='tcp', source='192.0.2.7', jump='REJECT')], (), 'ACCEPT', SSH, False,
     'SNF-FW-IN rule no'),
    ([dict(name='v6', protocol='tcp', source='2001:db8::/64', destination_port=22, jump='ACCEPT')], (), 'DROP',
     '2001:db8::7 40022 2001:db8::1 22', True, None),
    # Through a jump: the sub-chain accepts 2222; a RETURN falls back to the policy.
    ([dict(name='to-sub', protocol='tcp', jump='SNF-FW-SUB')], (), 'DROP', '192.0.2.7 1 192.0.2.1 2222', True, None),
    ([dict(name='ret', protocol='tcp', jump='RETURN'), dict(name='all', jump='ACCEPT')], (), 'DROP', SSH, False,
     'the INPUT policy DROP'),
    # An accept in the first base chain sets the accept mark, which the last one accepts before its jumps.
    ([dict(name='all', jump='ACCEPT')], [dict(name='late', protocol='tcp', destination_port=22, jump='DROP')],
     'ACCEPT', SSH, True, None),
    ([], [dict(name='late', protocol='tcp', destination_port=22, jump='DROP')], 'ACCEPT', SSH, False,
     'SNF-FW-LAST rule late'),
    # IPv6 client, rules of the IPv6 chain; a rate-limited accept proves nothing.
    ([dict(name='lim', protocol='tcp', destination_port=22, limit='5/min', jump='ACCEPT')], (), 'DROP',
     '2001:db8::7 40022 2001:db8::1 22', False, 'the INPUT policy DROP'),
    ([], (), 'DROP', None, True, None),
])
def test_ssh_verdict_walks_the_base_chains_of_the_owned_table(rules, last, policy, connection, accepted, decided_by):
    verdict = _nft.ssh_verdict(ssh_states(policy, rules, last), connection)
    assert verdict['accepted'] is accepted and verdict['decided_by'] == decided_by, verdict


def test_ssh_verdict_asks_for_the_arrival_interface_when_a_rule_names_one():
    states = ssh_states('DROP', [dict(name='mgmt', in_interface='eth1', jump='ACCEPT')])
    assert _nft.ssh_verdict(states, SSH)['needs_route'] is True
    assert _nft.ssh_verdict(states, SSH, 'eth1')['accepted'] is True
    assert _nft.ssh_verdict(states, SSH, 'eth0')['accepted'] is False
    assert _nft.ssh_verdict(ssh_states('DROP', [dict(name='mgmt', in_interface='eth+', jump='ACCEPT')]), SSH,
                            'eth0')['accepted'] is True


def test_ruleset_refuses_a_change_that_drops_this_tasks_ssh_connection_unless_with_rollback(no_lock, monkeypatch):
    monkeypatch.setenv('SSH_CONNECTION', SSH)
    lock_out = dict(policies={'INPUT': 'DROP'}, chains=[dict(CHAINS[0], rules=[EST])])
    module = NftModule(lock_out)
    result = outcome(module)
    assert isinstance(result, Failed) and result.result['param'] == 'policies.INPUT', result.result
    assert '192.0.2.7' in str(result) and 'rollback_timeout' in str(result) and module.writes() == []
    check = NftModule(lock_out, check_mode=True)
    assert isinstance(outcome(check), Failed)
    # The same with the SSH port accepted, or with commit-confirm: applied.
    assert outcome(NftModule(dict(lock_out, chains=CHAINS))).result['changed'] is True
    monkeypatch.setattr(__import__('ansible_collections.stateful.netfilter.plugins.module_utils._rollback',
                                   fromlist=['_detach']), '_detach', lambda cmd: 1)
    armed = outcome(NftModule(dict(lock_out, rollback_timeout=30))).result
    assert armed['changed'] is True and armed['rollback']['armed'] is True
    # A table that already drops it (the play does not come in that way) is not a reason to refuse.
    monkeypatch.delenv('SSH_CONNECTION')
    other = dict(lock_out, scope='OT', chains=[dict(CHAINS[0], name='SNF-OT-IN', rules=[EST])])
    text = outcome(NftModule(other)).result['nft'].split('\n', 2)[2]
    monkeypatch.setenv('SSH_CONNECTION', SSH)
    more = text.replace('accept comment "snf:est"', 'accept comment "snf:est"\n\t\ttcp dport 80 accept')
    assert more != text
    _nft._ssh_guard(NftModule({}), _nft.parse_table(text, 'filter')[0], _nft.parse_table(more, 'filter')[0],
                    'snf_filter_OT', None)


def test_both_modules_hold_the_one_engine_lock_from_their_first_read_to_their_last_write(monkeypatch):
    from ansible_collections.stateful.netfilter.plugins.module_utils import _rollback
    events = []
    monkeypatch.setattr(_rollback, 'engine_lock', lambda: events.append('lock'))
    monkeypatch.setattr(_rollback, 'release_engine_lock', lambda: events.append('release'))
    for run, module in ((_nft.run_ruleset, NftModule(dict(chains=CHAINS))),
                        (_nft.run_nat_rule, NftModule(nat(type='masquerade', out_interface='eth0')))):
        del events[:]
        real = module.run_command

        def logged(cmd, data=None, binary_data=False, environ_update=None, real=real):
            events.append(' '.join(cmd[1:3]))
            return real(cmd, data, binary_data, environ_update)
        module.run_command = logged
        with pytest.raises(Exit):
            run(module)
        assert events[events.index('lock'):] == ['lock', '-t list', '-c -f', '-f -', 'release'], events


CONNLIMIT_RULES = [
    ('ipv4', dict(name='ssh', protocol='tcp', destination_port=22, ctstate=['NEW'], connlimit_above=3, jump='REJECT',
                  reject_with='tcp-reset')),
    ('ipv4', dict(protocol='tcp', destination_port=80, connlimit_above=100, connlimit_mask=24, jump='DROP')),
    ('ipv4', dict(protocol='tcp', connlimit_upto=8, connlimit_daddr=True, jump='ACCEPT')),
    ('ipv6', dict(protocol='tcp', destination_port=22, connlimit_above=3, connlimit_mask=64, jump='DROP')),
    ('ipv6', dict(protocol='udp', connlimit_upto=1, connlimit_mask=0, jump='ACCEPT')),
]


def connlimit_states():
    states = {}
    for family in ('ipv4', 'ipv6'):
        rules = [raw for fam, raw in CONNLIMIT_RULES if fam == family]
        states[family] = owned(family, 'filter', [('SNF-FW-IN', ('INPUT', 'first'), rules)])
    return states


def test_connlimit_renders_as_ct_count_in_a_dynamic_set_of_the_table_and_parses_back():
    states = connlimit_states()
    text = _nft.render_table('snf_filter_FW', 'filter', states)
    assert 'tcp dport 22 ct state new add @ipv4.count-' in text
    assert '{ ip saddr ct count over 3 } reject with tcp reset comment "snf:ssh"' in text
    assert '{ ip saddr & 255.255.255.0 ct count over 100 } drop' in text
    assert '{ ip daddr ct count 8 } accept' in text
    assert '{ ip6 saddr & ffff:ffff:ffff:ffff:: ct count over 3 } drop' in text
    assert text.count('\t\tflags dynamic\n') == 5 and text.count('type ipv6_addr') == 2
    parsed, unknown = _nft.parse_table(text, 'filter')
    assert unknown == []
    for family in ('ipv4', 'ipv6'):
        assert [rule.spec for rule in parsed[family].chains['SNF-FW-IN'].rules] == \
            [rule.spec for rule in states[family].chains['SNF-FW-IN'].rules]
    assert _nft.render_table('snf_filter_FW', 'filter', parsed) == text
    _nft.check_saved('snf_filter_FW', 'filter', text)
    # A set someone changed, or one no rule uses, is noticed.
    assert _nft.parse_table(text.replace('size 65535', 'size 10', 1), 'filter')[1]
    orphan = '\tset ipv4.count-000000000000 {\n\t\ttype ipv4_addr\n\t\tsize 65535\n\t\tflags dynamic\n\t}\n\n'
    extra = text.replace('\tchain ', orphan + '\tchain ', 1)
    assert _nft.parse_table(extra, 'filter')[1] == ['set ipv4.count-000000000000 { type ipv4_addr; size 65535; '
                                                    'flags dynamic }']


@pytest.mark.skipif(shutil.which('nft') is None or os.geteuid() != 0, reason='needs nft and root')
def test_nft_takes_the_connlimit_sets_and_prints_them_back_as_rendered():
    text = _nft.render_table('snf_filter_FW', 'filter', connlimit_states())
    done = subprocess.run(['unshare', '--net', 'sh', '-c', 'nft -f - && nft -t list table inet snf_filter_FW'],
                          input=text.encode(), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == text


def test_a_change_returns_the_table_as_gathered_before_it(no_lock):
    first = outcome(NftModule(dict(chains=CHAINS))).result
    assert first['gathered_before']['ipv4']['chains'] == []  # no table yet
    listing = first['nft'].split('\n', 2)[2]
    web = dict(name='web', protocol='tcp', destination_port=80, jump='ACCEPT')
    extra = [dict(name='SNF-FW-IN', hook='INPUT', rules=[web])]
    changed = outcome(NftModule(dict(chains=extra), tables={'snf_filter_FW': listing})).result
    gathered = outcome(NftModule(dict(state='gathered'), tables={'snf_filter_FW': listing})).result['gathered']
    assert changed['changed'] and changed['gathered_before'] == gathered
    assert 'gathered_before' not in outcome(NftModule(dict(chains=CHAINS), tables={'snf_filter_FW': listing})).result


# DNAT's port shift (A:P-Q/BASE): a map from each destination port of the rule (and the shift's window) to the port
# nf_nat gives it, P + ((dport - BASE) mod 2^16) mod (Q - P + 1).
def kernel_shift(dport, low, high, base):
    """nf_nat_l4proto_unique_tuple with NF_NAT_RANGE_PROTO_OFFSET, in C's u16 arithmetic step by step."""
    off = dport - base
    while off < 0:  # u16 off = ntohs(dport) - ntohs(base)
        off += 65536
    return low + off % (high - low + 1)


@pytest.mark.parametrize('family, raw, text', [
    ('ipv4', dict(protocol='tcp', destination_port='1000:1003', jump='DNAT', to_destination='10.0.0.5:3000-3003/1000'),
     'tcp dport 1000-1003 dnat ip to 10.0.0.5:tcp dport map { 1000 : 3000, 1001 : 3001, 1002 : 3002, 1003 : 3003 }'),
    # The base inside the rule's ports: the ports below it wrap through 2^16 (1000 - 1002 + 65536 = 65534,
    # 65534 mod 3 = 2), not the -2 mod 3 = 1 of plain arithmetic.
    ('ipv4', dict(protocol='udp', destination_port='1000:1004', jump='DNAT', to_destination='10.0.0.5:3000-3002/1002',
                  persistent=True),
     'udp dport 1000-1004 dnat ip to 10.0.0.5:udp dport map { 1000 : 3002, 1001 : 3000, 1002 : 3000, 1003 : 3001, '
     '1004 : 3002 } persistent'),
    # The window BASE..BASE+Q-P is listed too (ports 80 and 81 the rule never sends there): it shows P, Q and BASE.
    ('ipv6', dict(protocol='tcp', destination_port=[443, 8443], jump='DNAT', to_destination='[fd00::5]:3000-3001/80'),
     'tcp dport { 443, 8443 } dnat ip6 to [fd00::5]:tcp dport map { 80 : 3000, 81 : 3001, 443 : 3001, '
     '8443 : 3001 }'),
])
def test_a_dnat_port_shift_renders_as_a_port_map_and_parses_back(family, raw, text):
    spec = r.make_rule(raw, family, 'nat')
    assert _nft.render_rule(spec, family) == text
    assert _nft.parse_rule(text, family, 'nat') == spec
    entries = text.split(' map { ')[1].split(' }')[0].split(', ')
    low, high, base = [int(part) for part in spec['to_destination'].rsplit(':', 1)[1].replace('/', '-').split('-')]
    assert [tuple(int(word) for word in entry.split(' : ')) for entry in entries] == \
        [(int(key), kernel_shift(int(key), low, high, base)) for key in (e.split(' : ')[0] for e in entries)]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(['ipv4', 'ipv6']), protocol=st.sampled_from(['tcp', 'udp', 'sctp']),
       low=st.integers(1, 65000), size=st.integers(2, 300), base=st.integers(1, 65535),
       ports=st.lists(st.tuples(st.integers(1, 65535), st.integers(0, 200)), min_size=1, max_size=4),
       flags=st.sets(st.sampled_from(['random', 'persistent'])))
def test_a_dnat_port_shift_round_trips_through_its_map(family, protocol, low, size, base, ports, flags):
    high = min(low + size - 1, 65535)
    port_values = ['%d:%d' % (start, min(start + length, 65535)) if length else str(start) for start, length in ports]
    addr = '10.0.0.5' if family == 'ipv4' else '[fd00::5]'
    raw = dict(protocol=protocol, destination_port=port_values if len(port_values) > 1 else port_values[0],
               jump='DNAT', to_destination='%s:%d-%d/%d' % (addr, low, high, base))
    raw.update((flag, True) for flag in flags)
    spec = r.make_rule(raw, family, 'nat')
    text = _nft.render_rule(spec, family)
    back = _nft.parse_rule(text, family, 'nat')
    # The same text again (a re-run is changed: false); the same spec unless the window repeats inside the rule's
    # ports with a size dividing 2^16, where the lowest equal base is read.
    assert back is not None and _nft.render_rule(back, family) == text
    size = high - low + 1
    if 65536 % size:
        assert as_set(back) == as_set(spec)
    event('same spec' if as_set(back) == as_set(spec) else 'equal base')
    for entry in text.split(' map { ')[1].split(' }')[0].split(', '):
        key, value = (int(word) for word in entry.split(' : '))
        assert value == kernel_shift(key, low, high, base)


@pytest.mark.parametrize('raw, words', [
    (dict(protocol='tcp', jump='DNAT', to_destination='10.0.0.1:1000-1099/80'), 'give destination_port'),
    (dict(protocol='tcp', destination_port='!80', jump='DNAT', to_destination='10.0.0.1:1000-1099/80'),
     'not negated'),
    (dict(protocol='tcp', destination_port=80, jump='DNAT', to_destination='10.0.0.1-10.0.0.9:1000-1099/80'),
     'range of addresses'),
    (dict(protocol='tcp', destination_port='1000:6000', jump='DNAT', to_destination='10.0.0.1:3000-3099/1000'),
     'make 5001 ports, more than 4096'),
    (dict(protocol='tcp', destination_port=80, jump='DNAT', to_destination='10.0.0.1:1024-65535/80'),
     'make 64512 ports, more than 4096'),
])
def test_a_dnat_port_shift_nft_cannot_map_is_refused_naming_to_destination(raw, words):
    spec = r.make_rule(raw, 'ipv4', 'nat')
    with pytest.raises(ValidationError) as exc:
        _nft.render_rule(spec, 'ipv4', 'chains[0].rules[1].')
    assert exc.value.param == 'chains[0].rules[1].to_destination' and words in str(exc.value), str(exc.value)


def test_a_map_not_rendered_for_the_rule_is_kept_as_text():
    good = 'tcp dport 1000-1001 dnat ip to 10.0.0.5:tcp dport map { 1000 : 3000, 1001 : 3001 }'
    assert _nft.parse_rule(good, 'ipv4', 'nat')['to_destination'] == '10.0.0.5:3000-3001/1000'
    for text in (good.replace('1001 : 3001', '1001 : 3005'),  # not a shift
                 good.replace('{ 1000 : 3000, ', '{ '),  # a port of the rule missing
                 good.replace(' }', ', 7 : 3001 }'),  # a port neither the rule's nor the window's
                 good.replace('1000 : 3000, 1001 : 3001', '1000 : 3000, 1001 : 3000'),  # one port only
                 good.replace('tcp dport map', 'udp dport map'),
                 'tcp dport != 1000-1001 ' + good.split(' ', 3)[3],
                 good.split(' ', 3)[3]):
        assert _nft.parse_rule(text, 'ipv4', 'nat') is None, text


@needs_nft
def test_nft_takes_a_port_shift_map_and_prints_it_back_as_rendered():
    states = {}
    for family, to in (('ipv4', '10.0.0.5:3000-3099/1000'), ('ipv6', '[fd00::5]:3000-3099/1000')):
        spec = r.make_rule(dict(protocol='tcp', destination_port='1000:5095', jump='DNAT', random=True,
                                to_destination=to), family, 'nat')
        states[family] = r.Owned([r.Chain('SNF-PS', ('PREROUTING', 'first'), [_nft.rule_from_spec(spec, family)])])
    text = _nft.render_table('t', 'nat', states)
    rc, out = nft_listing(text)
    assert rc == 0 and out == text, out[:2000]
    parsed, unknown = _nft.parse_table(out, 'nat')
    assert unknown == [] and [parsed[family].chains['SNF-PS'].rules[0].spec['to_destination']
                              for family in ('ipv4', 'ipv6')] == ['10.0.0.5:3000-3099/1000', '[fd00::5]:3000-3099/1000']


# IPv6 addresses as nft 1.0.6 printed them (measured in a namespace: 320 addresses, among them these).
NFT6 = [('::', '::'), ('::1', '::1'), ('::102:304', '::1.2.3.4'), ('::ffff:102:304', '::ffff:1.2.3.4'),
        ('::ffff:0:0', '::ffff:0.0.0.0'), ('::1:0', '::0.1.0.0'), ('::ffff', '::ffff'), ('::1:ffff', '::0.1.255.255'),
        ('::ffff:0:102:304', '::ffff:0:102:304'), ('64:ff9b::102:304', '64:ff9b::102:304'), ('1:0:0:1::1', '1:0:0:1::1'),
        ('::1:0:0:1', '::1:0:0:1'), ('fe80::1', 'fe80::1'), ('::ffff:0:0/96', '::ffff:0.0.0.0/96')]


@pytest.mark.parametrize('python, nft', NFT6)
def test_ipv6_addresses_are_rendered_as_nft_prints_them(python, nft):
    assert _nft.nft6(python) == nft
    assert _nft.nft6(nft) == nft


@pytest.mark.parametrize('address', ['::102:304', '::ffff:102:304', '::1:0'])
def test_a_rule_with_an_address_nft_prints_dotted_parses_back(address):
    spec = r.make_rule(dict(source=address, destination=[address, 'fd00::/64'], protocol='tcp', jump='DNAT',
                            to_destination='[%s]:80' % address), 'ipv6', 'nat')
    text = _nft.render_rule(spec, 'ipv6')
    assert _nft.nft6(address) in text and address not in text.replace(_nft.nft6(address), '')
    assert as_set(_nft.parse_rule(text, 'ipv6', 'nat')) == as_set(spec), text


@needs_nft
def test_nft_prints_the_ipv6_forms_back_unchanged():
    table = ('table inet t {\n\tchain c {\n%s\t}\n}\n'
             % ''.join('\t\tip6 saddr %s accept\n' % nft for dummy, nft in NFT6 if '/' not in nft))
    rc, out = nft_listing(table)
    assert rc == 0 and out == table, out
