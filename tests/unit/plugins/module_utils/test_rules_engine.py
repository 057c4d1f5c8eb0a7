# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine behind ruleset and nat_rule, with the iptables commands replaced by captured output."""
import functools
import os
import types

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _engine

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'iptables')
CONNTRACK = 'ansible_collections.stateful.netfilter.plugins.module_utils._conntrack'


class Exit(Exception):
    def __init__(self, **result):
        super(Exit, self).__init__(result)
        self.result = result


class Failed(Exit):
    pass


class FakeModule(object):
    """Just enough of AnsibleModule: commands answered from captures, restores recorded."""

    def __init__(self, params, check_mode=False, diff=False, fail_restore=None, legacy_save=''):
        self.params = params
        self.legacy_save = legacy_save
        self.check_mode = check_mode
        self._diff = diff
        self.fail_restore = fail_restore or (lambda cmd, data: False)
        self.calls = []
        self.warnings = []

    def get_bin_path(self, name, required=False):
        return '/usr/sbin/' + name

    def run_command(self, cmd, data=None, binary_data=False, environ_update=None):
        assert isinstance(cmd, list) and environ_update['LC_ALL'] == 'C'
        self.calls.append((cmd, data))
        name = os.path.basename(cmd[0])
        if cmd[1:] == ['--version']:
            return 0, 'iptables v1.8.9 (nf_tables)\n', ''
        if name.endswith('-save'):
            if '-legacy-' in name:
                assert len(cmd) == 1  # no -t: reading must not create a legacy table
                return 0, self.legacy_save, ''
            family = 'ipv6' if name.startswith('ip6') else 'ipv4'
            with open(os.path.join(FIXTURES, 'nft-%s.save' % family)) as handle:
                return 0, handle.read(), ''
        if self.fail_restore(cmd, data):
            return 2, '', 'iptables-restore: line 3 failed\n'
        return 0, '', ''

    def restores(self):
        return [(os.path.basename(cmd[0]), '--test' in cmd, data) for cmd, data in self.calls
                if cmd[0].endswith('-restore')]

    def warn(self, msg):
        self.warnings.append(msg)

    def exit_json(self, **result):
        raise Exit(**result)

    def fail_json(self, **result):
        raise Failed(**result)


def ruleset_params(**overrides):
    params = dict(table='filter', family='ipv4', state='overridden', scope='FW', policies={'INPUT': 'DROP'},
                  chains=[dict(name='SNF-FW-INPUT', hook='INPUT', hook_position='first', rules=[
                      dict(name='lo', in_interface='lo', jump='ACCEPT'),
                      dict(ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
                      dict(name='ssh', protocol='tcp', destination_port=22, jump='ACCEPT'),
                      dict(name='ping6', protocol='icmpv6', icmp_type='echo-request', jump='ACCEPT'),
                  ])])
    params.update(overrides)
    return params


def run(runner, module):
    with pytest.raises(Exit) as exc:
        runner(module)
    return exc.value


def test_check_mode_plans_the_same_and_applies_nothing():
    check = FakeModule(ruleset_params(family='both'), check_mode=True, diff=True)
    predicted = run(_engine.run_ruleset, check).result
    real = FakeModule(ruleset_params(family='both'), diff=True)
    applied = run(_engine.run_ruleset, real).result
    assert check.restores() == []
    assert predicted['changed'] is applied['changed'] is True
    assert predicted['restore'] == applied['restore']
    assert predicted['diff'] == applied['diff']
    text, text6 = applied['restore']['ipv4'], applied['restore']['ipv6']
    assert real.restores() == [('iptables-nft-restore', True, text), ('ip6tables-nft-restore', True, text6),
                               ('iptables-nft-restore', False, text), ('ip6tables-nft-restore', False, text6)]
    assert '-p ipv6-icmp -m icmp6 --icmpv6-type 128' in text6
    assert ':INPUT DROP [0:0]' in text and 'ipv6-icmp' not in text
    assert '-X SNF-FW-LOG' in text and 'DOCKER' not in text and 'KUBE' not in text


def test_both_families_validated_before_any_apply_and_rolled_back_on_failure():
    module = FakeModule(ruleset_params(family='both'),
                        fail_restore=lambda cmd, data: 'ip6tables' in cmd[0] and '--test' not in cmd)
    failed = run(_engine.run_ruleset, module)
    assert isinstance(failed, Failed)
    calls = [(name, test) for name, test, dummy in module.restores()]
    assert calls[:4] == [('iptables-nft-restore', True), ('ip6tables-nft-restore', True),
                         ('iptables-nft-restore', False), ('ip6tables-nft-restore', False)]
    # The IPv4 transaction already applied is undone (the fake kernel did not change, so nothing to undo here).
    assert failed.result['rolled_back'] == ['ipv4']
    assert failed.result['rc'] == 2 and failed.result['stderr'] == 'iptables-restore: line 3 failed\n'
    assert failed.result['cmd'][0].endswith('ip6tables-nft-restore')
    assert 'failed with rc 2' in failed.result['msg']


def test_failed_test_run_applies_nothing():
    module = FakeModule(ruleset_params(family='both'), fail_restore=lambda cmd, data: '--test' in cmd)
    failed = run(_engine.run_ruleset, module)
    assert isinstance(failed, Failed)
    assert [test for dummy, test, dummy in module.restores()] == [True]


@pytest.mark.parametrize('overrides, param, fragment', [
    (dict(scope='F W'), 'scope', 'not a scope'),
    (dict(policies={'INPUT': 'REJECT'}), 'policies.INPUT', 'not a policy'),
    (dict(policies={'DOCKER': 'DROP'}), 'policies.DOCKER', 'not a built-in chain'),
    (dict(table='nat', policies={'PREROUTING': 'DROP'}, chains=[]), 'policies.PREROUTING', 'not a policy'),
    (dict(chains=[dict(name='SNF-GW-X', rules=[])]), 'chains[0].name', 'outside the scope'),
    (dict(chains=[dict(name='SNF-FW-X', rules=[]), dict(name='SNF-FW-X', rules=[])]), 'chains[1].name', 'twice'),
    (dict(chains=[dict(name='SNF-FW-X', hook='PREROUTING', rules=[])]), 'chains[0].hook', 'not a built-in'),
    (dict(chains=[dict(name='SNF-FW-X', rules=[dict(name='a', jump='ACCEPT'), dict(name='a', jump='DROP')])]),
     'chains[0].rules', 'used twice'),
    (dict(chains=[dict(name='SNF-FW-X', rules=[dict(source='2001:db8::1', jump='ACCEPT')])]),
     'chains[0].rules[0].source', 'ipv6 address but the rule is ipv4'),
    (dict(chains=[dict(name='SNF-FW-X', rules=[dict(jump='SNF-FW-NOPE')])]), 'jump', 'not defined'),
    (dict(chains=[dict(name='SNF-FW-X', hook='INPUT', rules=[dict(out_interface='eth0', jump='ACCEPT')])]),
     'chains[0].rules[0].out_interface', 'never match'),
    (dict(chains=[dict(name='SNF-FW-X', rules=[dict(protocol='icmpv6', jump='ACCEPT')])]),
     'chains[0].rules[0].protocol', 'not a protocol of ipv4 rules'),
])
def test_ruleset_bad_input_fails_before_anything_is_applied(overrides, param, fragment):
    module = FakeModule(ruleset_params(**overrides))
    failed = run(_engine.run_ruleset, module)
    assert isinstance(failed, Failed)
    assert failed.result['param'] == param and failed.result['msg'].startswith(param + ': ')
    assert fragment in failed.result['msg']
    assert module.restores() == []


def test_rendered_touches_nothing_and_both_families_get_their_rules():
    module = FakeModule(ruleset_params(family='both', state='rendered'))
    result = run(_engine.run_ruleset, module).result
    assert module.calls == []
    assert 'icmp6' not in result['rendered']['ipv4'] and '-p ipv6-icmp' in result['rendered']['ipv6']
    assert result['rendered']['ipv4'].endswith('-I INPUT 1 -j SNF-FW-INPUT\nCOMMIT\n')


def test_gathered_returns_reusable_structure():
    module = FakeModule(ruleset_params(state='gathered', chains=[]))
    gathered = run(_engine.run_ruleset, module).result['gathered']['ipv4']
    assert gathered['policies'] == {'INPUT': 'ACCEPT', 'FORWARD': 'ACCEPT', 'OUTPUT': 'ACCEPT'}
    first = gathered['chains'][0]
    assert (first['name'], first['hook'], first['hook_position']) == ('SNF-FW-INPUT', 'INPUT', 'first')
    assert first['rules'][1] == {'ctstate': ['RELATED', 'ESTABLISHED'], 'jump': 'ACCEPT'}
    ssh = [rule for rule in first['rules'] if rule.get('name') == 'ssh'][0]
    assert ssh == {'name': 'ssh', 'protocol': 'tcp', 'source': '10.0.0.1/32', 'destination_port': '22',
                   'comment': 'allow "admin" ssh', 'jump': 'ACCEPT'}


def test_merged_replaces_named_rule_in_place_and_keeps_the_rest():
    module = FakeModule(ruleset_params(state='merged', policies=None, chains=[dict(
        name='SNF-FW-INPUT', hook=None, hook_position='first',
        rules=[dict(name='ssh', protocol='tcp', destination_port=2222, jump='ACCEPT')])]))
    text = run(_engine.run_ruleset, module).result['restore']['ipv4']
    rules = [line for line in text.splitlines() if line.startswith('-A SNF-FW-INPUT')]
    assert '-X' not in text and ':INPUT' not in text
    assert rules[6] == '-A SNF-FW-INPUT -p tcp -m tcp --dport 2222 -m comment --comment "snf:ssh" -j ACCEPT'
    assert len(rules) == 31


def nat_params(**overrides):
    params = dict(type='snat', state='present', name='lan', family=None, source='10.0.0.0/24', destination=None,
                  in_interface=None, out_interface='eth0', protocol=None, source_port=None, destination_port=None,
                  to_source='203.0.113.9', to_destination=None, to_ports=None, random=False, random_fully=False,
                  persistent=False, comment=None, order='last', relative_to=None, flush_conntrack=True)
    params.update(overrides)
    return params


@pytest.fixture
def conntrack():
    fake = types.ModuleType(CONNTRACK)
    fake.calls = []

    def build_filter(params):
        return dict(params)

    def flush_entries(flt, netns=None, max_entries=None, check_mode=False, protect=None):
        assert protect == [('192.0.2.1', '50000', '192.0.2.2', '22')]
        fake.calls.append((flt, check_mode))
        return dict(deleted=3, matched=3, sample=[])

    class ConntrackError(Exception):
        pass

    fake.build_filter = build_filter
    fake.flush_entries = flush_entries
    fake.ConntrackError = ConntrackError
    fake.control_connection = lambda environ: [('192.0.2.1', '50000', '192.0.2.2', '22')]
    return fake


def test_nat_rule_new_rule_is_appended_and_flushes_conntrack(conntrack):
    module = FakeModule(nat_params())
    result = run(functools.partial(_engine.run_nat_rule, conntrack=conntrack), module).result
    assert result['changed'] and result['families'] == ['ipv4'] and result['chain'] == 'SNF-NAT-POST'
    assert result['rule'] == ('-A SNF-NAT-POST -s 10.0.0.0/24 -o eth0 -m comment --comment "snf:lan" '
                              '-j SNAT --to-source 203.0.113.9')
    text = module.restores()[-1][2]
    # Appended after the six existing rules, hook moved in front of Docker's and kube-proxy's rules.
    assert text.splitlines()[-3] == result['rule']
    assert '-I POSTROUTING 1 -j SNF-NAT-POST' in text
    assert result['conntrack_deleted'] == 3
    assert conntrack.calls == [(dict(family='ipv4', protocol=None, src='10.0.0.0/24', dst=None, sport=None,
                                     dport=None, reply_src=None, reply_dst=None, reply_sport=None,
                                     reply_dport=None, state=None, status=None, nat=None, mark=None,
                                     zone=None), False)]


def test_nat_rule_unchanged_rule_does_not_flush(conntrack):
    module = FakeModule(nat_params(name=None, to_source='203.0.113.5', source='10.0.0.0/24'))
    result = run(functools.partial(_engine.run_nat_rule, conntrack=conntrack), module).result
    # The rule exists (unnamed, same spec); only the hook position differs, so the hook moves.
    assert result['conntrack_deleted'] == 0 and conntrack.calls == []


def test_nat_rule_check_mode_counts_without_deleting(conntrack):
    module = FakeModule(nat_params(), check_mode=True)
    result = run(functools.partial(_engine.run_nat_rule, conntrack=conntrack), module).result
    assert module.restores() == [] and result['changed']
    # flush_entries counts what it would delete in check mode.
    assert conntrack.calls[0][1] is True and result['conntrack_deleted'] == 3


def test_nat_rule_named_rule_replaced_in_place_flushes_old_and_new_match(conntrack):
    module = FakeModule(nat_params(type='dnat', name='web', source=None, out_interface=None, to_source=None,
                                   in_interface='eth0', protocol='tcp', destination_port=8080,
                                   to_destination='10.0.0.99:80'))
    run(functools.partial(_engine.run_nat_rule, conntrack=conntrack), module)
    lines = module.restores()[-1][2].splitlines()
    web = [i for i, line in enumerate(lines) if 'snf:web' in line]
    assert len(web) == 1 and lines[web[0] - 1].endswith('--to-destination 10.0.0.13:53 --random --persistent')
    assert [flt['dport'] for flt, dummy in conntrack.calls] == ['80', '8080']


@pytest.mark.parametrize('check_mode', [True, False])
def test_nat_rule_new_target_same_match_flushes_once(conntrack, check_mode):
    # Found in the lab: a new to_source with the same match flushed the same filter twice, so check
    # mode counted every entry twice while the real run deleted each once.
    module = FakeModule(nat_params(type='dnat', name='web', source=None, out_interface=None, to_source=None,
                                   in_interface='eth0', protocol='tcp', destination_port=80,
                                   to_destination='10.0.0.99'), check_mode=check_mode)
    result = run(functools.partial(_engine.run_nat_rule, conntrack=conntrack), module).result
    assert result['changed'] and result['conntrack_deleted'] == 3
    assert [(flt['dport'], check) for flt, check in conntrack.calls] == [('80', check_mode)]


def test_nat_rule_conntrack_failure_is_reported_after_the_rule_landed(conntrack):
    def flush_entries(flt, netns=None, max_entries=None, check_mode=False, protect=None):
        raise conntrack.ConntrackError('netlink: operation not permitted')

    conntrack.flush_entries = flush_entries
    module = FakeModule(nat_params())
    failed = run(functools.partial(_engine.run_nat_rule, conntrack=conntrack), module)
    assert isinstance(failed, Failed) and 'the rule is in place' in failed.result['msg']
    assert 'operation not permitted' in failed.result['msg'] and module.restores()


def test_nat_rule_absent_by_name_removes_it():
    module = FakeModule(nat_params(type='dnat', name='web', state='absent', source=None, out_interface=None,
                                   to_source=None, flush_conntrack=False))
    result = run(_engine.run_nat_rule, module).result
    assert result['changed'] and result['rule'] is None
    assert 'snf:web' not in module.restores()[-1][2]


ALT_REDIRECT = '-A SNF-NAT-PRE -i eth0 -p tcp -m tcp --dport 2222 -m comment --comment "snf:alt" -j REDIRECT --to-ports 5000\n'


class AltInBothFamilies(FakeModule):
    """The captured tables, plus a redirect named alt in the nat table of each family (added with family both)."""

    def run_command(self, cmd, data=None, binary_data=False, environ_update=None):
        rc, out, err = super(AltInBothFamilies, self).run_command(cmd, data, binary_data, environ_update)
        if cmd[0].endswith('-nft-save'):
            out = out.replace('-A PREROUTING -j SNF-NAT-PRE\n', '-A PREROUTING -j SNF-NAT-PRE\n' + ALT_REDIRECT)
        return rc, out, err


@pytest.mark.parametrize('overrides, families', [
    (dict(), ['ipv4', 'ipv6']),
    (dict(family='ipv6'), ['ipv6']),
    (dict(source='10.0.0.0/24'), ['ipv4']),
    (dict(to_destination='[fd00::10]:80'), ['ipv6']),
])
def test_nat_rule_absent_by_name_without_family_removes_both_halves(overrides, families):
    params = nat_params(type='redirect', name='alt', state='absent', source=None, out_interface=None,
                        to_source=None, flush_conntrack=False)
    params.update(overrides)
    assert sorted(_engine.nat_rule_specs(params)) == families
    module = AltInBothFamilies(params)
    result = run(_engine.run_nat_rule, module).result
    assert result['changed'] and sorted(result['families']) == families
    applied = [(name, data) for name, test, data in module.restores() if not test]
    assert [name.split('-')[0] for name, dummy in applied] == [
        {'ipv4': 'iptables', 'ipv6': 'ip6tables'}[family] for family in families]
    for dummy, data in applied:
        assert 'snf:alt' not in data and ':SNF-NAT-PRE - [0:0]' in data


def test_nat_rule_without_conntrack_support_fails_before_applying():
    module = FakeModule(nat_params())
    failed = run(_engine.run_nat_rule, module)
    assert isinstance(failed, Failed) and failed.result['msg'].startswith('flush_conntrack: ')
    assert module.restores() == []


@pytest.mark.parametrize('overrides, param', [
    (dict(in_interface='eth1'), 'in_interface'),
    (dict(type='dnat', out_interface='eth0', to_destination='10.0.0.1', source=None, to_source=None),
     'out_interface'),
    (dict(family='both'), 'family'),
    (dict(to_source=None), 'to_source'),
    (dict(to_source='203.0.113.9:99'), 'to_source'),
    (dict(source='fd00::/64'), 'to_source'),
    (dict(type='masquerade', to_source=None, to_ports=70000, protocol='tcp'), 'to_ports'),
    (dict(comment='a\nb'), 'comment'),
    (dict(out_interface='averyveryverylongname'), 'out_interface'),
    (dict(order='after', relative_to='nope'), 'relative_to'),
])
def test_nat_rule_bad_input(overrides, param):
    module = FakeModule(nat_params(**overrides))
    failed = run(_engine.run_nat_rule, module)
    assert isinstance(failed, Failed) and failed.result['msg'].startswith(param + ': ')
    assert module.restores() == []


@pytest.mark.parametrize('raw', [
    dict(source='10.0.0.0/24', out_interface='eth0', jump='SNAT', to_source='203.0.113.9'),
    dict(in_interface='eth0', protocol='udp', destination_port='5000-5010', source_port=53, jump='DNAT',
         to_destination='10.0.0.12'),
])
def test_conntrack_filter_is_accepted_by_the_conntrack_module(raw):
    from ansible_collections.stateful.netfilter.plugins.module_utils import _conntrack
    from ansible_collections.stateful.netfilter.plugins.module_utils._rules import make_rule

    flts = [_conntrack.build_filter(params) for params in _engine._conntrack_filters(make_rule(raw, 'ipv4', 'nat'), 'ipv4')]
    assert len(flts) == 1 and flts[0].protocol in (None, 17)


def test_a_port_list_is_flushed_port_by_port():
    from ansible_collections.stateful.netfilter.plugins.module_utils import _conntrack
    from ansible_collections.stateful.netfilter.plugins.module_utils._rules import make_rule

    raw = dict(protocol='tcp', source_port='1,2', destination_port=[80, '8000-8100'], jump='DNAT',
               to_destination='10.0.0.12')
    filters = _engine._conntrack_filters(make_rule(raw, 'ipv4', 'nat'), 'ipv4')
    assert [(f['sport'], f['dport']) for f in filters] == [('1', '80'), ('1', '8000:8100'), ('2', '80'), ('2', '8000:8100')]
    for params in filters:
        _conntrack.build_filter(params)


def test_a_name_is_unique_across_the_nat_chains():
    from ansible_collections.stateful.netfilter.plugins.module_utils import _rules

    with open(os.path.join(FIXTURES, 'nft-ipv4.save')) as handle:
        table = _rules.parse_save(handle.read())[0]['nat']
    live = _rules.read_owned(table, 'SNF-NAT-', 'ipv4')
    params = nat_params(type='snat', name='web', to_source='203.0.113.9', source='10.0.0.0/24')
    rule = _engine.nat_rule_specs(params)['ipv4']
    wanted, touched = _engine.place_nat_rule(live, rule, params)
    # The DNAT rule named web left SNF-NAT-PRE; both matches are flushed.
    assert not [r for r in wanted.chains['SNF-NAT-PRE'].rules if r.name == 'web']
    assert wanted.chains['SNF-NAT-POST'].rules[-1] == rule
    assert [spec.get('jump') for spec in touched] == ['DNAT', 'SNAT']


def test_jump_target_ignores_text_inside_comments():
    from ansible_collections.stateful.netfilter.plugins.module_utils import _rules

    assert _rules._jump_of('-m comment --comment "see -j SNF-FW-X" -j DOCKER') == 'DOCKER'
    assert _rules._jump_of('-g SNF-FW-X') == 'SNF-FW-X'
    assert _rules._jump_of('-m comment --comment "unterminated') is None


def test_restore_commands_and_warning_about_the_other_backend():
    module = FakeModule(ruleset_params(family='both'),
                        legacy_save='*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\nCOMMIT\n')
    run(_engine.run_ruleset, module)
    restores = [cmd for cmd, dummy in module.calls if cmd[0].endswith('/iptables-nft-restore')]
    assert restores == [['/usr/sbin/iptables-nft-restore', '--noflush', '--test', '--wait=10'],
                        ['/usr/sbin/iptables-nft-restore', '--noflush', '--wait=10']]
    assert ['/usr/sbin/iptables-nft-save', '-t', 'filter'] in [cmd for cmd, dummy in module.calls]
    # The fake legacy save answers for both families.
    assert [w for w in module.warnings if 'other iptables back end also holds ipv4 rules' in w]


def test_a_change_returns_the_scope_as_gathered_before_it():
    before = run(_engine.run_ruleset, FakeModule(ruleset_params(family='both', state='gathered'))).result['gathered']
    predicted = run(_engine.run_ruleset, FakeModule(ruleset_params(family='both'), check_mode=True)).result
    applied = run(_engine.run_ruleset, FakeModule(ruleset_params(family='both'))).result
    assert applied['changed'] and applied['gathered_before'] == predicted['gathered_before'] == before
    assert [chain['name'] for chain in before['ipv4']['chains']]  # the fixture holds SNF-FW-* chains
