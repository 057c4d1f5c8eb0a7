# SPDX-License-Identifier: GPL-3.0-or-later
"""Commit-confirm: saved state, restore planning, timer commands, confirm/fire races. No iptables is run."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _engine, _rollback
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import parse_save, read_owned, render_owned

BEFORE = '''*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:SNF-FW-INPUT - [0:0]
-A INPUT -j SNF-FW-INPUT
-A INPUT -j DOCKER
-A DOCKER -p tcp -m tcp --dport 80 -j ACCEPT
-A SNF-FW-INPUT -i lo -j ACCEPT
-A SNF-FW-INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
'''

# What a push that drops SSH and sets INPUT to DROP leaves, with a foreign rule added since.
AFTER = '''*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:SNF-FW-INPUT - [0:0]
:SNF-FW-NEW - [0:0]
-A INPUT -j SNF-FW-INPUT
-A INPUT -j SNF-FW-NEW
-A INPUT -j DOCKER
-A DOCKER -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER -p tcp -m tcp --dport 443 -j ACCEPT
-A SNF-FW-INPUT -p tcp -m tcp --dport 22 -j DROP
-A SNF-FW-NEW -i lo -j ACCEPT
COMMIT
'''


def table(text):
    return parse_save(text)[0]['filter']


def saved_state():
    live = read_owned(table(BEFORE), 'SNF-FW-', 'ipv4', ['INPUT'])
    return _rollback.owned_from_data(json.loads(json.dumps(_rollback.owned_to_data(live))), 'ipv4', 'filter', 'SNF-FW-')


class Done(Exception):
    def __init__(self, failed, result):
        super(Done, self).__init__(result)
        self.failed = failed
        self.result = result


class FakeModule(object):
    def __init__(self, check_mode=False, bins=None):
        self.check_mode = check_mode
        self.bins = bins or {}
        self.calls = []

    def get_bin_path(self, name, required=False):
        return self.bins.get(name)

    def run_command(self, cmd, data=None, **kwargs):
        self.calls.append(cmd)
        return 0, '', ''

    def exit_json(self, **result):
        raise Done(False, result)

    def fail_json(self, **result):
        raise Done(True, result)


class FakeHost(object):
    """HostCommands with iptables answered from text; restores recorded, optionally failing."""

    def __init__(self, saves, fail=False):
        self.saves = saves
        self.fail = fail
        self.restores = []
        self.warnings = []

    def get_bin_path(self, name, required=False):
        return '/usr/sbin/' + name

    def run_command(self, cmd, data=None, binary_data=False, environ_update=None):
        assert isinstance(cmd, list)
        name = os.path.basename(cmd[0])
        if cmd[1:] == ['--version']:
            return 0, 'iptables v1.8.9 (nf_tables)\n', ''
        if name.endswith('-save'):
            return 0, self.saves['ipv6' if name.startswith('ip6') else 'ipv4'], ''
        self.restores.append((name, data))
        if self.fail:
            return 4, '', 'iptables-restore: line 3 failed\n'
        return 0, '', ''

    def warn(self, msg):
        self.warnings.append(msg)

    def fail_json(self, **result):
        raise _rollback.RollbackError(result['msg'])


@pytest.mark.parametrize('value, ok', [
    (5, True), (60, True), (86400, True), (4, False), (0, False), (-10, False), (86401, False),
    (True, False), ('60', False), (1.5, False), (None, False),
])
def test_check_timeout(value, ok):
    if ok:
        assert _rollback.check_timeout(value) == value
    else:
        with pytest.raises(ValueError, match='rollback_timeout'):
            _rollback.check_timeout(value)


@pytest.mark.parametrize('value, ok', [
    ('0123456789abcdef', True), ('0123456789ABCDEF', False), ('../../etc/passwd', False), ('', False),
    ('0123456789abcde', False), ('0123456789abcdef0', False), (12, False), ('0123456789abcde;', False),
])
def test_check_id(value, ok):
    if ok:
        assert _rollback.check_id(value) == value
    else:
        with pytest.raises(ValueError, match='rollback_confirm'):
            _rollback.check_id(value)


def test_new_id_is_a_valid_id():
    assert _rollback.check_id(_rollback.new_id())


def test_saved_state_round_trips_through_json():
    live = read_owned(table(BEFORE), 'SNF-FW-', 'ipv4', ['INPUT'])
    assert render_owned(saved_state()) == render_owned(live)
    assert list(saved_state().policies.items()) == [('INPUT', 'ACCEPT')]


def test_restore_plan_from_the_state_when_the_timer_fires():
    plan = _rollback.restore_plan(table(AFTER), 'SNF-FW-', 'ipv4', saved_state())
    assert plan.lines == [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':SNF-FW-INPUT - [0:0]',
        ':SNF-FW-NEW - [0:0]',
        '-D INPUT -j SNF-FW-INPUT',
        '-D INPUT -j SNF-FW-NEW',
        '-A SNF-FW-INPUT -i lo -j ACCEPT',
        '-A SNF-FW-INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
        '-I INPUT 1 -j SNF-FW-INPUT',
        '-X SNF-FW-NEW',
        'COMMIT',
    ]
    # One transaction: a single COMMIT; foreign chains (DOCKER, its new rule) are not named.
    assert plan.text.count('COMMIT') == 1 and 'DOCKER' not in plan.text


def test_restore_plan_is_empty_when_nothing_changed():
    assert not _rollback.restore_plan(table(BEFORE), 'SNF-FW-', 'ipv4', saved_state()).changed


@pytest.mark.parametrize('scope, table_name, families, blocked', [
    ('SNF-FW-', 'filter', ['ipv4'], True),
    ('SNF-', 'filter', ['ipv4'], True),          # the whole-table scope covers SNF-FW-
    ('SNF-FW-', 'filter', ['ipv6'], False),      # other family
    ('SNF-FW-', 'nat', ['ipv4'], False),         # other table
    ('SNF-GW-', 'filter', ['ipv4', 'ipv6'], False),
])
def test_blocking(scope, table_name, families, blocked):
    records = [dict(status='pending', table='filter', scope_prefix='SNF-FW-', families={'ipv4': {}}),
               dict(status='confirmed', table='filter', scope_prefix='SNF-GW-', families={'ipv4': {}})]
    assert bool(_rollback.blocking(records, table_name, scope, families)) == blocked


def test_systemd_run_command():
    cmd = _rollback.systemd_run_command('/usr/bin/systemd-run', 'snf-rollback-0123456789abcdef', 45,
                                        '/usr/bin/python3', '/run/x/runner.py', '/run/x')
    assert cmd == ['/usr/bin/systemd-run', '--quiet', '--collect', '--unit', 'snf-rollback-0123456789abcdef',
                   '--description', 'stateful.netfilter rollback /run/x', '--on-active=45s',
                   '--timer-property=AccuracySec=1s', '/usr/bin/python3', '-I', '-B', '/run/x/runner.py', 'fire', '/run/x']


def test_use_systemd(tmp_path):
    assert _rollback.use_systemd('/usr/bin/systemd-run', str(tmp_path))
    assert not _rollback.use_systemd(None, str(tmp_path))
    assert not _rollback.use_systemd('/usr/bin/systemd-run', str(tmp_path / 'absent'))


def make_record(root, status='pending', deadline_in=30, families=None):
    ident = _rollback.new_id()
    state_dir = os.path.join(str(root), ident)
    os.makedirs(state_dir)
    data = _rollback.owned_to_data(read_owned(table(BEFORE), 'SNF-FW-', 'ipv4', ['INPUT']))
    record = dict(id=ident, status=status, table='filter', scope_prefix='SNF-FW-', backend='nft',
                  families=families or {'ipv4': data}, created=0, timeout=30,
                  deadline=_rollback.time.time() + deadline_in, state_dir=state_dir, result=None,
                  timer=dict(kind='process', pid=None), netns=_rollback.netns_id())
    _rollback.write_record(state_dir, record)
    return record


def test_fire_restores_one_transaction_per_family(tmp_path):
    record = make_record(tmp_path)
    host = FakeHost({'ipv4': AFTER})
    final = _rollback.fire(record['state_dir'], host)
    assert final['status'] == 'rolled_back' and final['result']['restored'] == ['ipv4']
    assert len(host.restores) == 1
    name, text = host.restores[0]
    assert name == 'iptables-nft-restore' and text.count('COMMIT') == 1 and ':INPUT ACCEPT [0:0]' in text
    assert _rollback.read_record(record['state_dir'])['status'] == 'rolled_back'
    # A second firing (or a confirm after it) finds nothing pending and does nothing.
    assert _rollback.fire(record['state_dir'], host)['status'] == 'rolled_back'
    assert len(host.restores) == 1


def test_fire_skips_a_confirmed_record(tmp_path):
    record = make_record(tmp_path, status='confirmed')
    host = FakeHost({'ipv4': AFTER})
    assert _rollback.fire(record['state_dir'], host)['status'] == 'confirmed'
    assert host.restores == []


def test_fire_records_a_failed_restore(tmp_path):
    record = make_record(tmp_path)
    final = _rollback.fire(record['state_dir'], FakeHost({'ipv4': AFTER}, fail=True))
    assert final['status'] == 'failed'
    assert 'line 3 failed' in final['result']['errors'][0]


def test_fire_with_nothing_to_undo(tmp_path):
    record = make_record(tmp_path)
    host = FakeHost({'ipv4': BEFORE})
    final = _rollback.fire(record['state_dir'], host)
    assert final['status'] == 'rolled_back' and final['result']['unchanged'] == ['ipv4'] and host.restores == []


def test_wait_stops_when_confirmed(tmp_path):
    record = make_record(tmp_path)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        if len(slept) == 3:
            current = _rollback.read_record(record['state_dir'])
            current['status'] = 'confirmed'
            _rollback.write_record(record['state_dir'], current)

    assert _rollback.wait_then_fire(record['state_dir'], sleep=sleep)['status'] == 'confirmed'
    assert slept == [1.0, 1.0, 1.0]


def test_wait_stops_when_the_record_is_removed(tmp_path):
    assert _rollback.wait_then_fire(str(tmp_path / 'gone'), sleep=lambda s: None) is None


def test_confirm_pending(tmp_path):
    record = make_record(tmp_path)
    with pytest.raises(Done) as done:
        _rollback.confirm(FakeModule(), record['id'], root=str(tmp_path))
    assert not done.value.failed and done.value.result['changed']
    assert done.value.result['rollback']['status'] == 'confirmed'
    assert 0 < done.value.result['rollback']['seconds_left'] <= 30
    assert not os.path.exists(record['state_dir'])


def test_confirm_systemd_stops_the_timer(tmp_path):
    record = make_record(tmp_path)
    record['timer'] = dict(kind='systemd', unit='snf-rollback-%s.timer' % record['id'])
    _rollback.write_record(record['state_dir'], record)
    module = FakeModule(bins={'systemctl': '/bin/systemctl'})
    with pytest.raises(Done):
        _rollback.confirm(module, record['id'], root=str(tmp_path))
    assert module.calls == [['/bin/systemctl', 'stop', 'snf-rollback-%s.timer' % record['id']]]


def test_confirm_too_late(tmp_path):
    record = make_record(tmp_path)
    _rollback.fire(record['state_dir'], FakeHost({'ipv4': AFTER}))
    with pytest.raises(Done) as done:
        _rollback.confirm(FakeModule(), record['id'], root=str(tmp_path))
    assert done.value.failed and 'too late' in done.value.result['msg']
    assert 'rolled_back' in done.value.result['msg']


def test_confirm_unknown(tmp_path):
    with pytest.raises(Done) as done:
        _rollback.confirm(FakeModule(), '0123456789abcdef', root=str(tmp_path))
    assert done.value.failed and 'no rollback 0123456789abcdef' in done.value.result['msg']


def test_guard_names_the_pending_rollback(tmp_path):
    record = make_record(tmp_path)
    with pytest.raises(Done) as done:
        _rollback.guard(FakeModule(), 'filter', 'SNF-FW-', ['ipv4'], root=str(tmp_path))
    assert done.value.failed and record['id'] in done.value.result['msg']
    _rollback.guard(FakeModule(), 'filter', 'SNF-GW-', ['ipv4'], root=str(tmp_path))  # other scope: no error


class Plan(object):
    def __init__(self, family, changed=True):
        self.family = family
        self.changed = changed
        self.live = read_owned(table(BEFORE), 'SNF-FW-', family, ['INPUT'])


def test_arm_detached_process(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(_rollback, '_detach', lambda cmd: started.append(cmd) or 4242)
    module = FakeModule()
    record = _rollback.arm(module, 'filter', 'SNF-FW-', [Plan('ipv4'), Plan('ipv6', False)], 'nft', 30,
                           root=str(tmp_path))
    assert record['timer'] == {'kind': 'process', 'pid': 4242}
    assert list(record['families']) == ['ipv4']  # only the changed family is saved
    state_dir = record['state_dir']
    assert started == [[sys.executable, '-I', '-B', os.path.join(state_dir, 'runner.py'), 'wait', state_dir]]
    assert _rollback.read_record(state_dir)['status'] == 'pending'
    lib = os.path.join(state_dir, 'lib', 'ansible_collections', 'stateful', 'netfilter', 'plugins', 'module_utils')
    assert sorted(os.listdir(lib)) == ['_iptables.py', '_nft.py', '_rollback.py', '_rules.py', '_validate.py']


def test_arm_systemd(tmp_path, monkeypatch):
    monkeypatch.setattr(_rollback, 'timer_netns', lambda path: (True, None))
    module = FakeModule(bins={'systemd-run': '/usr/bin/systemd-run'})
    record = _rollback.arm(module, 'filter', 'SNF-FW-', [Plan('ipv4')], 'nft', 30, root=str(tmp_path))
    assert record['timer'] == {'kind': 'systemd', 'unit': 'snf-rollback-%s.timer' % record['id']}
    assert module.calls[0][:5] == ['/usr/bin/systemd-run', '--quiet', '--collect', '--unit',
                                   'snf-rollback-' + record['id']]


def test_arm_nothing_in_check_mode_or_without_change(tmp_path):
    assert _rollback.arm(FakeModule(check_mode=True), 'filter', 'SNF-FW-', [Plan('ipv4')], 'nft', 30,
                         root=str(tmp_path)) is None
    assert _rollback.arm(FakeModule(), 'filter', 'SNF-FW-', [Plan('ipv4', False)], 'nft', 30,
                         root=str(tmp_path)) is None
    assert os.listdir(str(tmp_path)) == []


def test_runner_is_self_contained(tmp_path, monkeypatch):
    """The copied lib imports on its own (isolated Python), and a confirmed record makes it exit at once."""
    monkeypatch.setattr(_rollback, '_detach', lambda cmd: 1)
    record = _rollback.arm(FakeModule(), 'filter', 'SNF-FW-', [Plan('ipv4')], 'nft', 30, root=str(tmp_path))
    runner = os.path.join(record['state_dir'], 'runner.py')
    usage = subprocess.run([sys.executable, '-I', runner], capture_output=True, cwd='/', check=False)
    assert usage.returncode == 2 and b'usage' in usage.stderr
    current = _rollback.read_record(record['state_dir'])
    current['status'] = 'confirmed'
    _rollback.write_record(record['state_dir'], current)
    for verb in ('wait', 'fire'):
        done = subprocess.run([sys.executable, '-I', runner, verb, record['state_dir']], capture_output=True,
                              cwd='/', timeout=10, check=False)
        assert done.returncode == 0, done.stderr


def test_prune_keeps_pending_and_the_newest_done(tmp_path):
    pending = make_record(tmp_path)
    done = [make_record(tmp_path, status='confirmed') for dummy in range(3)]
    _rollback._prune(str(tmp_path), keep=1)
    left = sorted(os.listdir(str(tmp_path)))
    assert pending['id'] in left and len(left) == 2
    assert any(record['id'] in left for record in done)


def test_engine_cancels_the_timer_when_the_push_fails(monkeypatch):
    from test_rules_engine import FakeModule as EngineModule, Failed
    armed, cancelled = [], []
    monkeypatch.setattr(_rollback, 'guard', lambda *a, **k: None)
    monkeypatch.setattr(_rollback, 'arm', lambda module, *a, **k: armed.append(a) or {'id': 'x'})
    monkeypatch.setattr(_rollback, 'cancel', lambda module, record: cancelled.append(record))
    params = dict(table='filter', family='ipv4', state='overridden', scope='FW', policies=None,
                  chains=[dict(name='SNF-FW-INPUT', hook='INPUT', hook_position='first',
                               rules=[dict(protocol='tcp', destination_port=22, jump='DROP')])],
                  rollback_timeout=30, rollback_confirm=None)
    module = EngineModule(params, fail_restore=lambda cmd, data: '--test' not in cmd)
    with pytest.raises(Failed):
        _engine.run_ruleset(module)
    assert len(armed) == 1 and cancelled == [{'id': 'x'}]


def test_engine_lock_excludes_another_process():
    first = _rollback.engine_lock()
    assert _rollback.engine_lock() == first  # the same process holds it once
    other = subprocess.run([sys.executable, '-c', 'import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); '
                            'fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)', _rollback.engine_lock_path()],
                           capture_output=True, check=False)
    assert other.returncode != 0 and b'BlockingIOError' in other.stderr


def test_fire_is_not_starved_by_the_engine_lock(tmp_path, monkeypatch):
    """A lock held past FIRE_LOCK_WAIT does not stop the restore: it goes ahead and says so."""
    record = make_record(tmp_path)
    holder = subprocess.Popen([sys.executable, '-c', 'import fcntl, os, sys, time; '
                               'os.makedirs(os.path.dirname(sys.argv[1]), 0o700, exist_ok=True); '
                               'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); '
                               'fcntl.flock(fd, fcntl.LOCK_EX); print("held", flush=True); time.sleep(30)',
                               _rollback.engine_lock_path()], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b'held\n'
        monkeypatch.setattr(_rollback, 'FIRE_LOCK_WAIT', 0.5)
        host = FakeHost({'ipv4': AFTER})
        final = _rollback.fire(record['state_dir'], host)
    finally:
        holder.kill()
        holder.wait()
    assert final['status'] == 'rolled_back' and len(host.restores) == 1
    assert 'restored without the engine lock' in final['result']['warnings'][0]


# ---------------------------------------------------------------------------
# migrate: a record that also saved the scope on the other back end.

def nft_saved():
    """The owned nft table of scope FW as the nftables back end writes it."""
    from ansible_collections.stateful.netfilter.plugins.module_utils import _nft
    return _nft.render_params(dict(table='filter', scope='FW', policies={'INPUT': 'DROP'}, chains=[
        dict(name='SNF-FW-INPUT', hook='INPUT', rules=[dict(name='ssh', protocol='tcp', destination_port=22,
                                                            jump='ACCEPT')])]))


class FakeNftHost(FakeHost):
    """FakeHost that also answers nft: the owned table is absent now; every command in order in self.calls."""

    def __init__(self, saves, nft_fail=False):
        super(FakeNftHost, self).__init__(saves)
        self.calls = []
        self.nft_fail = nft_fail

    def run_command(self, cmd, data=None, binary_data=False, environ_update=None):
        name = os.path.basename(cmd[0])
        self.calls.append(name + ('' if data is None else ' <- ' + data.split('\n')[0]))
        if name != 'nft':
            return super(FakeNftHost, self).run_command(cmd, data, binary_data, environ_update)
        if cmd[1:] == ['--version']:
            return 0, 'nftables v1.0.6 (Lester Gooch #5)\n', ''
        if 'list' in cmd:
            return (0, '', '') if cmd[-1] == 'tables' else (1, '', 'Error: No such file or directory\n')
        if self.nft_fail and '-c' not in cmd:
            return 1, '', 'Error: Could not process rule\n'
        return 0, '', ''


def migrated_record(root, **extra):
    record = make_record(root)
    record.update(extra)
    _rollback.write_record(record['state_dir'], record)
    return record


def test_a_migration_record_puts_the_other_back_end_back_first(tmp_path):
    """iptables -> ... the push moved the scope off nftables: the table comes back before the chains change."""
    name, text = nft_saved()
    record = migrated_record(tmp_path, nft=dict(table=name, text=text))
    host = FakeNftHost({'ipv4': AFTER})
    final = _rollback.fire(record['state_dir'], host)
    assert final['status'] == 'rolled_back' and final['result']['errors'] == [], final
    assert final['result']['migrated']['restored'] == ['ipv4'] and final['result']['restored'] == ['ipv4']
    applied = [call for call in host.calls if ' <- ' in call]
    assert applied[0] == 'nft <- table inet snf_filter_FW' and 'nft -c' not in applied
    assert applied[-1].startswith('iptables-') and len(applied) == 3, host.calls  # nft -c, nft -f, restore


def test_a_migration_record_to_nftables_restores_the_iptables_chains_before_the_table(tmp_path):
    name, text = nft_saved()
    data = _rollback.owned_to_data(read_owned(table(BEFORE), 'SNF-FW-', 'ipv4', ['INPUT']))
    record = migrated_record(tmp_path, backend='nftables', families={'ipv4': {}, 'ipv6': {}},
                             nft=dict(table=name, text=''), iptables=dict(backend='nft', families={'ipv4': data}))
    host = FakeNftHost({'ipv4': AFTER})
    final = _rollback.fire(record['state_dir'], host)
    # The table did not exist before the push and does not now: only the iptables side is restored.
    assert final['status'] == 'rolled_back' and final['result']['migrated']['restored'] == ['ipv4'], final
    assert final['result']['unchanged'] == ['ipv4', 'ipv6']
    assert [call for call in host.calls if ' <- ' in call] == ['iptables-nft-restore <- *filter'], host.calls


def test_a_failed_restore_of_the_other_back_end_is_reported(tmp_path):
    name, text = nft_saved()
    record = migrated_record(tmp_path, nft=dict(table=name, text=text))
    final = _rollback.fire(record['state_dir'], FakeNftHost({'ipv4': AFTER}, nft_fail=True))
    assert final['status'] == 'failed' and final['result']['errors'][0].startswith('migrated: nftables:'), final


@pytest.mark.parametrize('extra, message', [
    (dict(iptables=dict(backend='nft', families={'ipv4': {}})), 'not the saved iptables side'),
    (dict(backend='nftables', families={'ipv4': {}}, nft=dict(table='snf_filter_FW', text=''),
          iptables=dict(backend='iptables', families={'ipv4': {}})), 'not the saved iptables side'),
    (dict(backend='nftables', families={'ipv4': {}}, nft=dict(table='snf_filter_FW', text=''),
          iptables=dict(backend='nft', families={'ipv5': {}})), 'not the saved iptables side'),
    (dict(nft=dict(table='snf_filter_OTHER', text='')), 'is not the saved owned table snf_filter_FW'),
])
def test_a_migration_record_of_the_wrong_shape_is_refused(tmp_path, extra, message):
    record = make_record(tmp_path)
    record.update(extra)
    with pytest.raises(ValueError, match=message):
        _rollback.check_record(record, record['state_dir'])
