# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Commit-confirm for the ruleset module: arm, confirm and fire a rollback.

Private to the collection. Before a push with rollback_timeout, the owned
state of every changed table and family (chains, hooks, managed policies)
is written to a directory on the host, together with a copy of the few
module_utils files the restore needs and a small runner. A timer that does
not depend on the Ansible connection (a transient systemd timer where
systemd runs, else a detached double-forked process) runs the runner when
the timeout expires: it reads the tables as they are *then*, plans the
transaction that puts the saved owned state back (the same Plan the engine
uses) and commits it with one iptables-restore --noflush per table and
family. A confirm, sent over a new connection by the action plugin, marks
the record confirmed first; the record's lock decides which of the two won.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import errno
import fcntl
import importlib
import json
import os
import shutil
import subprocess
import sys
import time

from ansible_collections.stateful.netfilter.plugins.module_utils._iptables import (
    Backend,
    CommandError,
    detect_backend,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import (
    Chain,
    Owned,
    Plan,
    Rule,
    read_owned,
)

STATE_ROOT = '/run/snf-netfilter/rollback'
# Held by every run of the engine from its first read to its last write, and by the rollback runner, so
# that two changes to the same host (two plays at once) never plan on a state the other is changing.
ENGINE_LOCK = '/run/snf-netfilter/engine.lock'
ENGINE_LOCK_WAIT = 60
FIRE_LOCK_WAIT = 600
_HELD = {}
UNIT_PREFIX = 'snf-rollback-'
PACKAGE = 'ansible_collections.stateful.netfilter.plugins.module_utils'
# What the runner imports on the host, copied from the module's own payload.
LIB_MODULES = ('_rollback', '_rules', '_iptables', '_validate')
TIMEOUT_MIN = 5
TIMEOUT_MAX = 86400
PENDING = 'pending'
SEARCH_PATH = ('/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin')
RUNNER = '''# Written by stateful.netfilter: restores the owned iptables state saved here.
import os
import sys
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, 'lib'))
from ansible_collections.stateful.netfilter.plugins.module_utils._rollback import main
sys.exit(main(sys.argv[1:]))
'''


class RollbackError(Exception):
    pass


# ---------------------------------------------------------------------------
# Pure helpers (unit-tested without root).

def check_timeout(value, param='rollback_timeout'):
    """The timeout in whole seconds; raises ValueError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError('%s must be a whole number of seconds, got %r' % (param, value))
    if not TIMEOUT_MIN <= value <= TIMEOUT_MAX:
        raise ValueError('%s must be between %d and %d seconds, got %d' % (param, TIMEOUT_MIN, TIMEOUT_MAX, value))
    return value


def check_id(value, param='rollback_confirm'):
    if not isinstance(value, str) or len(value) != 16 or any(c not in '0123456789abcdef' for c in value):
        raise ValueError('%s must be the 16 hexadecimal digits of rollback.id, got %r' % (param, value))
    return value


def new_id():
    return binascii.hexlify(os.urandom(8)).decode('ascii')


def owned_to_data(owned):
    """An Owned state as JSON-ready data: rules kept in canonical save syntax."""
    return dict(policies=[[chain, policy] for chain, policy in owned.policies.items()],
                chains=[dict(name=chain.name, hook=list(chain.hook) if chain.hook else None,
                             rules=[rule.text for rule in chain.rules])
                        for chain in owned.chains.values()])


def owned_from_data(data):
    chains = [Chain(raw['name'], tuple(raw['hook']) if raw.get('hook') else None,
                    [Rule(None, text) for text in raw['rules']])
              for raw in data['chains']]
    return Owned(chains, [tuple(item) for item in data['policies']])


def restore_plan(table, scope_prefix, family, saved):
    """The transaction that turns the table as it is now back into the saved owned state."""
    now = read_owned(table, scope_prefix, family, list(saved.policies))
    return Plan(table, scope_prefix, family, now, saved)


def scopes_overlap(one, other):
    return one.startswith(other) or other.startswith(one)


def blocking(records, table, scope_prefix, families):
    """The pending records a push to (table, scope, families) must not run under."""
    return [record for record in records
            if record.get('status') == PENDING and record.get('table') == table
            and scopes_overlap(record.get('scope_prefix', ''), scope_prefix)
            and set(record.get('families', {})) & set(families)]


def systemd_run_command(systemd_run, unit, timeout, python, runner, state_dir):
    """The systemd-run call that fires the runner once, timeout seconds from now."""
    return [systemd_run, '--quiet', '--collect', '--unit', unit,
            '--description', 'stateful.netfilter rollback %s' % state_dir,
            '--on-active=%ds' % timeout, '--timer-property=AccuracySec=1s',
            python, '-I', runner, 'fire', state_dir]


def runner_command(python, runner, verb, state_dir):
    return [python, '-I', runner, verb, state_dir]


def use_systemd(systemd_run, systemd_dir='/run/systemd/system'):
    return bool(systemd_run) and os.path.isdir(systemd_dir)


# ---------------------------------------------------------------------------
# The record of one rollback on the host: ROOT/ID/{state.json,lock,runner.py,lib/}.

def _state_path(state_dir):
    return os.path.join(state_dir, 'state.json')


def read_record(state_dir):
    try:
        with open(_state_path(state_dir)) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def write_record(state_dir, record):
    path = _state_path(state_dir)
    tmp = path + '.tmp'
    with open(tmp, 'w') as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, path)


class Locked(object):
    """An exclusive lock on a record; confirm and fire both take it, so exactly one of them acts."""

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, 'lock')
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def engine_lock(wait=None, sleep=time.sleep):
    """Take the engine lock (a file descriptor kept open until the process ends); raises RollbackError."""
    path = ENGINE_LOCK
    if path in _HELD:
        return _HELD[path]
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    waited = 0.0
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _HELD[path] = fd
            return fd
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if waited >= (ENGINE_LOCK_WAIT if wait is None else wait):
            os.close(fd)
            raise RollbackError('another stateful.netfilter change on this host held %s for %d s' % (path, waited))
        sleep(0.1)
        waited += 0.1


def all_records(root=None):
    root = root or STATE_ROOT
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    records = []
    for name in names:
        record = read_record(os.path.join(root, name))
        if record:
            records.append(record)
    return records


def _write_lib(state_dir):
    """Copy the module_utils the runner needs, from wherever this module was loaded (AnsiballZ zip or files)."""
    lib = os.path.join(state_dir, 'lib', *PACKAGE.split('.'))
    os.makedirs(lib)
    for name in LIB_MODULES:
        fullname = '%s.%s' % (PACKAGE, name)
        module = importlib.import_module(fullname)
        source = module.__loader__.get_source(fullname)
        if source is None:
            raise RollbackError('cannot read the source of %s for the rollback runner' % fullname)
        with open(os.path.join(lib, name + '.py'), 'w') as handle:
            handle.write(source)
    runner = os.path.join(state_dir, 'runner.py')
    with open(runner, 'w') as handle:
        handle.write(RUNNER)
    return runner


def _detach(cmd):
    """Start cmd as a daemon (double fork, new session, no inherited descriptors) and return at once."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read_end)
            os.setsid()
            if os.fork():
                os._exit(0)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.write(write_end, str(os.getpid()).encode('ascii'))
            os.closerange(3, 65536)
            os.chdir('/')
            os.execv(cmd[0], cmd)
        finally:
            os._exit(127)
    os.close(write_end)
    os.waitpid(pid, 0)
    data = b''
    while True:
        chunk = os.read(read_end, 64)
        if not chunk:
            break
        data += chunk
    os.close(read_end)
    return int(data) if data else None


# ---------------------------------------------------------------------------
# In the module: guard, arm, cancel, confirm.

def guard(module, table, scope_prefix, families, root=None):
    """Refuse a change while a rollback of an overlapping scope is pending: it would undo this push later."""
    root = root or STATE_ROOT
    pending = blocking(all_records(root), table, scope_prefix, families)
    if pending:
        record = pending[0]
        module.fail_json(
            msg='a rollback of the %s table (scope %s*, %s) armed by an earlier push is pending until %s: '
                'confirm it (rollback_confirm=%s) or let it fire before changing this scope again'
                % (table, record['scope_prefix'], ', '.join(sorted(record['families'])),
                   time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(record['deadline'])), record['id']),
            rollback=public(record))


def public(record, **extra):
    """What the module returns about a record."""
    info = dict((key, record.get(key)) for key in ('id', 'status', 'table', 'scope_prefix', 'timeout', 'deadline',
                                                   'timer', 'state_dir', 'result'))
    info['families'] = sorted(record.get('families', {}))
    info.update(extra)
    return info


def arm(module, table, scope_prefix, plans, backend, timeout, root=None):
    """Save the owned state each changed plan found, start the timer; returns the record (None if nothing changes)."""
    todo = [plan for plan in plans if plan.changed]
    if not todo or module.check_mode:
        return None
    root = root or STATE_ROOT
    _prune(root)
    ident = new_id()
    state_dir = os.path.join(root, ident)
    now = time.time()
    record = dict(id=ident, status=PENDING, table=table, scope_prefix=scope_prefix, backend=backend,
                  families=dict((plan.family, owned_to_data(plan.live)) for plan in todo),
                  created=now, timeout=timeout, deadline=now + timeout, state_dir=state_dir, result=None)
    try:
        os.makedirs(state_dir, 0o700)
        runner = _write_lib(state_dir)
        python = sys.executable
        systemd_run = module.get_bin_path('systemd-run')
        if use_systemd(systemd_run):
            unit = UNIT_PREFIX + ident
            record['timer'] = dict(kind='systemd', unit=unit + '.timer')
            write_record(state_dir, record)
            cmd = systemd_run_command(systemd_run, unit, timeout, python, runner, state_dir)
            rc, out, err = module.run_command(cmd)
            if rc != 0:
                raise CommandError(cmd, rc, out, err)
        else:
            record['timer'] = dict(kind='process', pid=None)
            write_record(state_dir, record)
            pid = _detach(runner_command(python, runner, 'wait', state_dir))
            with Locked(state_dir):
                current = read_record(state_dir)
                current['timer']['pid'] = pid
                write_record(state_dir, current)
            record = current
    except (OSError, IOError, RollbackError, CommandError) as exc:
        shutil.rmtree(state_dir, ignore_errors=True)
        module.fail_json(msg='rollback_timeout: could not arm the rollback timer, nothing was applied: %s' % exc)
    return record


def cancel(module, record):
    """Disarm a record whose push failed (the engine already put the old state back)."""
    if record is None:
        return
    _disarm(module, record, 'cancelled')


def _disarm(module, record, status):
    state_dir = record['state_dir']
    with Locked(state_dir):
        current = read_record(state_dir)
        if current is None or current['status'] != PENDING:
            return current
        current['status'] = status
        current['result'] = dict(at=time.time())
        write_record(state_dir, current)
    timer = current.get('timer') or {}
    if timer.get('kind') == 'systemd':
        systemctl = module.get_bin_path('systemctl')
        if systemctl:
            module.run_command([systemctl, 'stop', timer['unit']])
    # A detached runner polls its record and ends by itself once it is no longer pending.
    return current


def confirm(module, ident, root=None):
    """Confirm a pending rollback: returns the module result (fails when it fired or is unknown)."""
    state_dir = os.path.join(root or STATE_ROOT, ident)
    record = read_record(state_dir)
    if record is None:
        module.fail_json(msg='rollback_confirm: no rollback %s on this host (unknown id, or its record is gone)'
                             % ident)
    if module.check_mode:
        module.exit_json(changed=record['status'] == PENDING, rollback=public(record))
    current = _disarm(module, record, 'confirmed')
    if current is None or current['status'] != 'confirmed':
        module.fail_json(msg='rollback_confirm: too late, rollback %s is %s: the previous rules were put back'
                             % (ident, (current or record)['status']), rollback=public(current or record))
    shutil.rmtree(state_dir, ignore_errors=True)
    left = max(0.0, current['deadline'] - time.time())
    module.exit_json(changed=True, rollback=public(current, seconds_left=round(left, 1)))


def _prune(root, keep=20):
    """Remove records that are no longer pending, keeping the newest few for inspection."""
    done = [record for record in all_records(root) if record.get('status') != PENDING]
    done.sort(key=lambda record: record.get('created', 0))
    for record in done[:-keep] if keep else done:
        shutil.rmtree(os.path.join(root, record['id']), ignore_errors=True)


# ---------------------------------------------------------------------------
# On the host, run by the timer (no Ansible connection, no AnsibleModule).

class HostCommands(object):
    """The part of AnsibleModule that _iptables uses, for the runner: argument lists, never a shell."""

    def __init__(self):
        self.warnings = []

    def get_bin_path(self, name, required=False):
        for directory in os.environ.get('PATH', '').split(os.pathsep) + list(SEARCH_PATH):
            path = os.path.join(directory, name)
            if directory and os.path.isfile(path) and os.access(path, os.X_OK):
                return path
        if required:
            self.fail_json(msg='%s not found' % name)
        return None

    def run_command(self, cmd, data=None, binary_data=False, environ_update=None):
        env = dict(os.environ)
        env.update(environ_update or {})
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, close_fds=True)
        out, err = proc.communicate(data.encode('utf-8') if data is not None else None)
        return proc.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')

    def warn(self, msg):
        self.warnings.append(msg)

    def fail_json(self, **result):
        raise RollbackError(result.get('msg'))


def fire(state_dir, commands=None):
    """Put the saved state back, unless the record was confirmed; returns the final record."""
    commands = commands or HostCommands()
    record = read_record(state_dir)
    if record is None or record['status'] != PENDING:
        return record
    try:
        # A run of the module in progress finishes first; the restore then plans on what it left.
        engine_lock(wait=FIRE_LOCK_WAIT)
    except (RollbackError, OSError) as exc:
        with Locked(state_dir):
            record = read_record(state_dir)
            if record is not None and record['status'] == PENDING:
                record['status'] = 'failed'
                record['result'] = dict(at=time.time(), by='timer', restored=[], unchanged=[], errors=[str(exc)])
                write_record(state_dir, record)
        return record
    return _fire(state_dir, commands)


def _fire(state_dir, commands):
    with Locked(state_dir):
        record = read_record(state_dir)
        if record is None or record['status'] != PENDING:
            return record
        result = dict(at=time.time(), by='timer', restored=[], unchanged=[], errors=[])
        try:
            backend = detect_backend(commands)
            for family in sorted(record['families']):
                engine = Backend(commands, family, backend)
                table = engine.read(record['table'])
                plan = restore_plan(table, record['scope_prefix'], family,
                                    owned_from_data(record['families'][family]))
                if not plan.changed:
                    result['unchanged'].append(family)
                    continue
                try:
                    engine.apply(plan.text)
                except CommandError as exc:
                    result['errors'].append('%s: %s' % (family, exc))
                    continue
                result['restored'].append(family)
        except (CommandError, RollbackError, OSError) as exc:
            result['errors'].append(str(exc))
        result['warnings'] = commands.warnings
        record['status'] = 'failed' if result['errors'] else 'rolled_back'
        record['result'] = result
        write_record(state_dir, record)
    return record


def wait_then_fire(state_dir, sleep=time.sleep, clock=time.time):
    """The detached timer: poll the record once a second until its deadline, then fire."""
    while True:
        record = read_record(state_dir)
        if record is None or record['status'] != PENDING:
            return record
        left = record['deadline'] - clock()
        if left <= 0:
            return fire(state_dir)
        sleep(min(1.0, left))


def main(argv):
    """Entry point of runner.py: `wait DIR` (detached timer) or `fire DIR` (systemd timer)."""
    if len(argv) != 2 or argv[0] not in ('wait', 'fire'):
        sys.stderr.write('usage: runner.py wait|fire STATE_DIR\n')
        return 2
    verb, state_dir = argv
    try:
        record = wait_then_fire(state_dir) if verb == 'wait' else fire(state_dir)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return 0  # confirmed and removed under our feet
        raise
    if record and record.get('status') == 'failed':
        sys.stderr.write('rollback failed: %s\n' % '; '.join(record['result']['errors']))
        return 1
    return 0
