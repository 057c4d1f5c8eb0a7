# SPDX-License-Identifier: GPL-3.0-or-later
"""What an attacker tried against the engine (issue 12), each refused: no rule nobody asked for."""
import os
import stat

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _engine, _rollback
from ansible_collections.stateful.netfilter.plugins.module_utils import _rules as r
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import (
    ValidationError,
    check_text,
    parse_port_range,
    show,
)

from test_rollback import AFTER, FakeHost, FakeModule as RollbackModule, Done, make_record
from test_rules_engine import Failed, FakeModule, run

# Every character some reader takes as the end of a line, and the other controls.
BREAKS = ['\n', '\r', '\0', '\t', '\v', '\f', '\x1c', '\x1d', '\x1e', '\x1f', '\x7f', '\x85', '\u2028', '\u2029',
          '\ud800']


@pytest.mark.parametrize('char', BREAKS)
@pytest.mark.parametrize('option', ['comment', 'log_prefix'])
def test_free_text_with_a_line_break_of_any_reader_is_refused(char, option):
    raw = dict(jump='LOG', comment='admins', log_prefix='drop ')
    raw[option] = 'admins%s-A SNF-X-IN -j ACCEPT%s-A X --comment "' % (char, char)
    with pytest.raises(ValidationError) as exc:
        r.make_rule(raw, 'ipv4', 'filter', 'chains[0].rules[0].')
    assert str(exc.value).startswith('chains[0].rules[0].%s: must be a single line' % option)


@pytest.mark.parametrize('option, value', [
    ('in_interface', 'eth0\u2028'), ('out_interface', 'eth0\f'), ('source', '10.0.0.1\x85'),
    ('destination', 'fe80::1%x -j ACCEPT'), ('protocol', 'tcp\v'), ('destination_port', '22\u2029'),
    ('limit', '5/min\x1e'), ('name', 'ssh\n'), ('icmp_type', 'echo-request\n'),
])
def test_every_string_option_is_refused_with_a_break_naming_the_option(option, value):
    raw = dict(jump='ACCEPT', protocol='icmp' if option == 'icmp_type' else 'tcp')
    raw[option] = value
    with pytest.raises(ValidationError) as exc:
        r.make_rule(raw, 'ipv4', 'filter', 'rules[0].')
    assert exc.value.param == 'rules[0].' + option


@pytest.mark.parametrize('check, value, param', [
    (r.check_chain_name, 'SNF-INJ-IN\n', 'chains[0].name'),
    (r.check_scope, 'INJ\n', 'scope'),
])
def test_names_with_a_trailing_newline_are_refused(check, value, param):
    with pytest.raises(ValidationError) as exc:
        check(value, param)
    assert exc.value.param == param


@pytest.mark.parametrize('option, value', [
    ('destination_port', '²'), ('destination_port', '٨٠'), ('destination_port', '1-²'), ('protocol', '²'),
    ('limit_burst', '²'), ('limit', '²/min'),
])
def test_non_ascii_digits_are_refused_naming_the_option(option, value):
    raw = dict(jump='ACCEPT', protocol='tcp')
    if option == 'limit_burst':
        raw['limit'] = '5/min'
    raw[option] = value
    with pytest.raises(ValidationError) as exc:
        r.make_rule(raw, 'ipv4', 'filter')
    assert exc.value.param == option


def test_a_huge_bad_value_is_quoted_short():
    with pytest.raises(ValidationError) as exc:
        r.make_rule(dict(name='x' * 1000000 + '!', jump='ACCEPT'), 'ipv4', 'filter')
    assert len(str(exc.value)) < 400 and '(1000003 characters)' in str(exc.value)
    assert len(show('y' * 10 ** 6)) < 250


@pytest.mark.parametrize('raw, param', [
    (dict(jump='MASQUERADE', to_ports='0'), 'to_ports'),
    (dict(jump='REDIRECT', protocol='tcp', to_ports=0), 'to_ports'),
    (dict(jump='DNAT', protocol='tcp', to_destination='10.0.0.1:0'), 'to_destination'),
    (dict(jump='SNAT', protocol='udp', to_source='10.0.0.1:0-100'), 'to_source'),
    (dict(jump='ACCEPT', protocol='tcp', destination_port=0), 'destination_port'),
    (dict(jump='ACCEPT', protocol='tcp', source_port='0:80'), 'source_port'),
    (dict(jump='ACCEPT', protocol='tcp', destination_port=[22, 0]), 'destination_port[1]'),
])
def test_port_zero_is_refused_wherever_a_port_is_meant(raw, param):
    with pytest.raises(ValidationError) as exc:
        r.make_rule(raw, 'ipv4', 'nat' if raw['jump'] in ('MASQUERADE', 'REDIRECT', 'DNAT', 'SNAT') else 'filter')
    assert exc.value.param == param


def test_the_whole_range_still_means_any_port():
    assert parse_port_range('0-65535', 'p', allow_any=True) == (0, 65535)
    with pytest.raises(ValidationError):
        parse_port_range('0-65535', 'p')


def test_check_text_names_the_character():
    with pytest.raises(ValidationError, match=r'comment: must be a single line .*U\+2028 LINE SEPARATOR'):
        check_text('a\u2028b', 'comment')
    assert check_text('caf\u00e9 \U0001f600 "quoted" \\ back', 'comment')


# ---------------------------------------------------------------------------
# Reading: one line per '\n', and what cannot be read is never written back.

INJECTED = '''*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:SNF-X-IN - [0:0]
-A INPUT -j SNF-X-IN
-A SNF-X-IN -p tcp -m tcp --dport 22 -m comment --comment "admins\u2028-A SNF-X-IN -j ACCEPT\u2028-A X --comment \\"" -j ACCEPT
COMMIT
'''


def test_save_output_splits_at_newline_only():
    tables, unknown = r.parse_save(INJECTED)
    assert unknown == [] and len(tables['filter'].rules['SNF-X-IN']) == 1


def test_an_unreadable_rule_of_an_owned_chain_is_never_replayed():
    live_table = r.parse_save(INJECTED)[0]['filter']
    live = r.read_owned(live_table, 'SNF-X-', 'ipv4')
    assert live.chains['SNF-X-IN'].rules[0].spec is None
    new = r.Rule.from_spec(r.make_rule(dict(protocol='tcp', destination_port=80, jump='ACCEPT'), 'ipv4', 'filter'))
    wanted = live.copy()
    r.merge_rules(wanted.chains['SNF-X-IN'].rules, [new])
    with pytest.raises(ValidationError, match='cannot read: "-A SNF-X-IN -p tcp .*admins\\\\u2028-A SNF-X-IN'):
        r.Plan(live_table, 'SNF-X-', 'ipv4', live, wanted)
    # Replacing the chain (overridden) drops it, writing only what was asked for.
    replaced = r.Owned([r.Chain('SNF-X-IN', ('INPUT', 'first'), [new])])
    plan = r.Plan(live_table, 'SNF-X-', 'ipv4', live, replaced)
    assert '\u2028' not in plan.text and plan.lines.count('-A SNF-X-IN -p tcp -m tcp --dport 80 -j ACCEPT') == 1


def test_restore_text_refuses_a_break_whatever_the_path():
    with pytest.raises(ValidationError):
        r.restore_text(['*filter', '-A SNF-X -j ACCEPT\x85-A SNF-X -j DROP', 'COMMIT'])


# ---------------------------------------------------------------------------
# merged is linear and means what put_rule means.

def test_merge_rules_matches_put_rule():
    def rule(name=None, port=1):
        spec = r.make_rule(dict(name=name, protocol='tcp', destination_port=port, jump='ACCEPT'), 'ipv4', 'filter')
        return r.Rule.from_spec(spec)

    current = [rule('a', 1), rule(None, 2), rule('b', 3), rule(None, 2)]
    new = [rule('b', 30), rule(None, 2), rule(None, 4), rule('c', 5), rule('a', 10), rule(None, 4)]
    one, other = list(current), list(current)
    for item in new:
        r.put_rule(one, item)
    r.merge_rules(other, new)
    assert [x.text for x in one] == [x.text for x in other]


# ---------------------------------------------------------------------------
# The state directory: private, per namespace, every record checked.

def test_state_is_private_whatever_the_umask(tmp_path, monkeypatch):
    from test_rollback import Plan
    monkeypatch.setattr(_rollback, '_detach', lambda cmd: 4242)
    old = os.umask(0)
    try:
        record = _rollback.arm(RollbackModule(), 'filter', 'SNF-FW-', [Plan('ipv4')], 'nft', 30)
    finally:
        os.umask(old)
    state_dir = record['state_dir']
    assert state_dir.startswith(os.path.join(_rollback.BASE, 'netns-%d' % _rollback.netns_id(), 'rollback') + os.sep)
    path = state_dir
    while path != os.path.dirname(_rollback.BASE):
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700, path
        path = os.path.dirname(path)
    for top, dirs, files in os.walk(state_dir):
        for name in dirs:
            assert stat.S_IMODE(os.lstat(os.path.join(top, name)).st_mode) == 0o700
        for name in files:
            assert stat.S_IMODE(os.lstat(os.path.join(top, name)).st_mode) == 0o600


def test_a_state_directory_others_can_write_is_refused(tmp_path):
    record = make_record(tmp_path)
    os.chmod(str(tmp_path), 0o777)
    with pytest.raises(Done) as done:
        _rollback.guard(RollbackModule(), 'filter', 'SNF-GW-', ['ipv4'], root=str(tmp_path))
    assert done.value.failed and 'writable by group or others' in done.value.result['msg']
    with pytest.raises(_rollback.RollbackError, match='writable by group or others'):
        _rollback.fire(record['state_dir'], FakeHost({'ipv4': AFTER}))
    os.chmod(str(tmp_path), 0o700)
    os.symlink(str(tmp_path), str(tmp_path / 'link'))
    with pytest.raises(_rollback.RollbackError, match='not a directory'):
        _rollback.all_records(str(tmp_path))


@pytest.mark.parametrize('field, value, message', [
    ('id', '/etc', 'rollback_confirm|id'),
    ('id', '0123456789abcdef', 'do not name this directory'),
    ('state_dir', '/etc', 'do not name this directory'),
    ('status', 'pending\n', 'status'),
    ('table', 'security', 'table'),
    ('scope_prefix', 'SNF-X\n-', 'scope_prefix'),
    ('families', {'ipv5': {}}, 'families'),
    ('deadline', 'soon', 'deadline'),
    ('netns', None, 'netns'),
    ('timer', {'kind': 'systemd', 'unit': '../../x.timer'}, 'timer unit'),
])
def test_every_record_field_is_checked(tmp_path, field, value, message):
    record = make_record(tmp_path)
    state_dir = record['state_dir']
    record[field] = value
    _rollback.write_record(state_dir, record)
    with pytest.raises(_rollback.RollbackError) as exc:
        _rollback.read_record(state_dir)
    assert state_dir in str(exc.value) and 'remove' in str(exc.value)
    assert any(part in str(exc.value) for part in message.split('|'))
    # Nothing is deleted on the strength of a bad record.
    if field != 'status':
        _rollback.write_record(state_dir, dict(record, status='confirmed'))
    with pytest.raises(_rollback.RollbackError):
        _rollback._prune(str(tmp_path), keep=0)
    assert os.path.isdir(state_dir)


def test_a_corrupt_record_fails_with_the_file_and_what_to_do(tmp_path):
    record = make_record(tmp_path)
    for text in ('[1, 2]', '{"id": ', '"pending"'):
        with open(os.path.join(record['state_dir'], 'state.json'), 'w') as handle:
            handle.write(text)
        with pytest.raises(Done) as done:
            _rollback.guard(RollbackModule(), 'filter', 'SNF-FW-', ['ipv4'], root=str(tmp_path))
        msg = done.value.result['msg']
        assert done.value.failed and os.path.join(record['state_dir'], 'state.json') in msg and 'remove' in msg


def test_a_saved_rule_is_checked_like_user_input_before_it_is_restored(tmp_path):
    record = make_record(tmp_path)
    rules = record['families']['ipv4']['chains'][0]['rules']
    rules.append('-j ACCEPT -m comment --comment "x\u2028-A SNF-FW-INPUT -j ACCEPT"')
    _rollback.write_record(record['state_dir'], record)
    host = FakeHost({'ipv4': AFTER})
    final = _rollback.fire(record['state_dir'], host)
    assert final['status'] == 'failed' and host.restores == []
    assert 'ipv4: the saved state is refused' in final['result']['errors'][0]


def test_a_rollback_fires_only_in_the_namespace_it_was_armed_in(tmp_path, monkeypatch):
    record = make_record(tmp_path)
    here = _rollback.netns_id()
    monkeypatch.setattr(_rollback, 'netns_id', lambda: here + 1)
    host = FakeHost({'ipv4': AFTER})
    final = _rollback.fire(record['state_dir'], host)
    assert final['status'] == 'failed' and host.restores == []
    assert 'armed in %d' % here in final['result']['errors'][0]


def test_state_is_kept_per_network_namespace(monkeypatch):
    first = _rollback.state_root()
    monkeypatch.setattr(_rollback, 'netns_id', lambda: 1234)
    assert _rollback.state_root() != first and _rollback.state_root().endswith('/netns-1234/rollback')
    assert _rollback.engine_lock_path().endswith('/netns-1234/engine.lock')


def test_systemd_timer_runs_in_a_named_namespace(tmp_path, monkeypatch):
    cmd = _rollback.systemd_run_command('/usr/bin/systemd-run', 'snf-rollback-0123456789abcdef', 45,
                                        '/usr/bin/python3', '/r/runner.py', '/r', '/run/netns/blue')
    assert '--property=NetworkNamespacePath=/run/netns/blue' in cmd
    assert cmd.index('--property=NetworkNamespacePath=/run/netns/blue') < cmd.index('/usr/bin/python3')
    here = _rollback.netns_of()
    monkeypatch.setattr(_rollback, 'use_systemd', lambda path: True)
    monkeypatch.setattr(_rollback, 'netns_of', lambda path='/proc/self/ns/net': here if path != '/proc/1/ns/net'
                        else (0, 1))
    (tmp_path / 'blue').write_text('')
    monkeypatch.setattr(_rollback, 'named_netns_path', lambda ns: None)
    assert _rollback.timer_netns('/usr/bin/systemd-run') == (False, None)  # unnamed: the detached process
    monkeypatch.setattr(_rollback, 'named_netns_path', lambda ns: '/run/netns/blue')
    assert _rollback.timer_netns('/usr/bin/systemd-run') == (True, '/run/netns/blue')


def test_another_scopes_pending_rollback_of_a_policy_blocks_changing_it(tmp_path):
    make_record(tmp_path)  # scope FW saved INPUT ACCEPT, and will set it back
    with pytest.raises(Done) as done:
        _rollback.guard(RollbackModule(), 'filter', 'SNF-GW-', ['ipv4'], policies={'ipv4': {'INPUT': 'DROP'}},
                        changed=False, root=str(tmp_path))
    msg = done.value.result['msg']
    assert done.value.failed and 'INPUT policy of filter (ipv4)' in msg and 'rollback_confirm=' in msg
    # The same value, another chain or another family does not conflict.
    _rollback.guard(RollbackModule(), 'filter', 'SNF-GW-', ['ipv4'], policies={'ipv4': {'INPUT': 'ACCEPT'}},
                    root=str(tmp_path))
    _rollback.guard(RollbackModule(), 'filter', 'SNF-GW-', ['ipv4', 'ipv6'],
                    policies={'ipv4': {'FORWARD': 'DROP'}, 'ipv6': {'INPUT': 'DROP'}}, root=str(tmp_path))


# ---------------------------------------------------------------------------
# Through the engine, with the iptables commands faked.

def test_nat_rule_with_a_form_feed_changes_nothing():
    params = dict(type='dnat', state='present', name='web', family=None, protocol='tcp', source=None,
                  destination=None, in_interface='eth1', out_interface=None, source_port=None, destination_port=80,
                  to_source=None, to_destination='192.168.1.100', to_ports=None, random=False, random_fully=False,
                  persistent=False, comment='x\f-A SNF-NAT-PRE -p tcp -j DNAT --to-destination 10.6.6.6\f',
                  order='last', relative_to=None, flush_conntrack=False)
    module = FakeModule(params)
    failed = run(_engine.run_nat_rule, module)
    assert isinstance(failed, Failed) and failed.result['param'] == 'comment'
    assert module.calls == []


def test_ruleset_chain_name_with_a_newline_changes_nothing():
    params = dict(table='filter', family='ipv4', state='merged', scope='INJ', policies=None,
                  chains=[dict(name='SNF-INJ-IN\n', hook='INPUT', hook_position='first', rules=[])],
                  rollback_timeout=None, rollback_confirm=None)
    module = FakeModule(params)
    failed = run(_engine.run_ruleset, module)
    assert isinstance(failed, Failed) and failed.result['param'] == 'chains[0].name' and module.calls == []


def test_the_engine_lock_is_released_after_apply():
    from test_rules_engine import ruleset_params
    module = FakeModule(ruleset_params())
    run(_engine.run_ruleset, module)
    assert _rollback._HELD == {}
