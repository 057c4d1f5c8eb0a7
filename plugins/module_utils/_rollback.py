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
import stat
import subprocess
import sys
import time
from contextlib import contextmanager

from ansible_collections.stateful.netfilter.plugins.module_utils._iptables import (
    Backend,
    CommandError,
    detect_backend,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import (
    BUILTIN_CHAINS,
    POLICIES,
    PREFIX,
    Chain,
    Owned,
    Plan,
    Rule,
    check_chain_name,
    check_scope,
    read_owned,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import FAMILIES, ValidationError, show

# Everything the collection keeps on a host is under BASE, in a directory per network namespace
# (netns-INODE, the inode of /proc/self/ns/net): the rollback records (rollback/ID/) and the locks.
# Every directory is 0700 and every file 0600, owned by root, whatever the umask; a directory that is
# a symlink, owned by another user or writable by group or others is refused.
BASE = '/run/snf-netfilter'
# Held by every run of the engine from its first read to its last write, and by the rollback runner, so
# that two changes to the same network namespace (two plays at once) never plan on a state the other
# is changing. A run takes the turnstile first and lets it go once it holds the engine lock; a firing
# rollback keeps the turnstile while it waits, so no new run can overtake it.
ENGINE_LOCK_WAIT = 60
FIRE_LOCK_WAIT = 10
_HELD = {}
STATUSES = ('pending', 'confirmed', 'cancelled', 'rolled_back', 'failed')
UNIT_PREFIX = 'snf-rollback-'
PACKAGE = 'ansible_collections.stateful.netfilter.plugins.module_utils'
# What the runner imports on the host, copied from the module's own payload.
LIB_MODULES = ('_rollback', '_rules', '_iptables', '_validate', '_nft')
TIMEOUT_MIN = 5
TIMEOUT_MAX = 86400
PENDING = 'pending'
NFTABLES = 'nftables'
SEARCH_PATH = ('/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin')
RUNNER = '''# Written by stateful.netfilter: restores the owned iptables state saved here (run as python -I -B).
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


def owned_from_data(data, family, table, scope_prefix):
    """The saved Owned state, every field checked as user input is; raises ValueError naming what is wrong.

    A saved rule is parsed with the rule model, exactly like a rule read from
    the kernel: text the collection would not write is refused, never restored.
    """
    if not isinstance(data, dict) or not isinstance(data.get('chains'), list) \
            or not isinstance(data.get('policies'), list):
        raise ValueError('%s: expected chains and policies' % family)
    policies = []
    for item in data['policies']:
        if not isinstance(item, list) or len(item) != 2 or item[0] not in BUILTIN_CHAINS[table] \
                or item[1] not in POLICIES:
            raise ValueError('%s: %s is not a policy of a built-in chain' % (family, show(item)))
        policies.append(tuple(item))
    chains = []
    for raw in data['chains']:
        if not isinstance(raw, dict) or not isinstance(raw.get('rules'), list):
            raise ValueError('%s: %s is not a chain' % (family, show(raw)))
        try:
            name = check_chain_name(raw.get('name'), 'name')
        except ValidationError as exc:
            raise ValueError('%s: %s' % (family, exc))
        if not name.startswith(scope_prefix):
            raise ValueError('%s: chain %s is outside the scope %s*' % (family, name, scope_prefix))
        hook = raw.get('hook')
        if hook is not None and (not isinstance(hook, list) or len(hook) != 2 or hook[0] not in BUILTIN_CHAINS[table]
                                 or hook[1] not in ('first', 'last')):
            raise ValueError('%s: chain %s has no valid hook: %s' % (family, name, show(hook)))
        rules = []
        for text in raw['rules']:
            rule = Rule.from_save(text, family, table) if isinstance(text, str) else None
            if rule is None or rule.spec is None:
                raise ValueError('%s: chain %s: %s is not a rule the collection writes' % (family, name, show(text)))
            rules.append(rule)
        chains.append(Chain(name, tuple(hook) if hook else None, rules))
    return Owned(chains, policies)


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


def policy_conflicts(records, table, scope_prefix, policies):
    """(record, family, chain, saved policy) for each pending rollback of another scope that would set a
    built-in policy this push manages back to something else when it fires.

    policies: {family: {chain: policy}} the push wants.
    """
    found = []
    for record in records:
        if record.get('status') != PENDING or record.get('table') != table \
                or scopes_overlap(record.get('scope_prefix', ''), scope_prefix):
            continue
        for family, wanted in sorted(policies.items()):
            saved = dict((chain, policy) for chain, policy in
                         (record.get('families', {}).get(family) or {}).get('policies', []))
            for chain, policy in sorted(wanted.items()):
                if chain in saved and saved[chain] != policy:
                    found.append((record, family, chain, saved[chain]))
    return found


def systemd_run_command(systemd_run, unit, timeout, python, runner, state_dir, netns_path=None):
    """The systemd-run call that fires the runner once, timeout seconds from now.

    netns_path: the network namespace to run it in (a named namespace's /run/netns/NAME), when the
    module does not run in PID 1's.
    """
    cmd = [systemd_run, '--quiet', '--collect', '--unit', unit,
           '--description', 'stateful.netfilter rollback %s' % state_dir,
           '--on-active=%ds' % timeout, '--timer-property=AccuracySec=1s']
    if netns_path:
        cmd.append('--property=NetworkNamespacePath=%s' % netns_path)
    return cmd + [python, '-I', '-B', runner, 'fire', state_dir]


def runner_command(python, runner, verb, state_dir):
    return [python, '-I', '-B', runner, verb, state_dir]


def use_systemd(systemd_run, systemd_dir='/run/systemd/system'):
    return bool(systemd_run) and os.path.isdir(systemd_dir)


# ---------------------------------------------------------------------------
# The record of one rollback on the host: ROOT/ID/{state.json,lock,runner.py,lib/}.

def netns_of(path='/proc/self/ns/net'):
    """(device, inode) of a network namespace file; the inode names the namespace while it exists."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def netns_id():
    return netns_of()[1]


def named_netns_path(ns, directory='/run/netns'):
    """The /run/netns/NAME of the namespace ns ((device, inode)), or None if it has no name."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return None
    for name in names:
        path = os.path.join(directory, name)
        try:
            if netns_of(path) == ns:
                return path
        except OSError:
            continue
    return None


def timer_netns(systemd_run):
    """(use systemd, NetworkNamespacePath or None) for a timer that must fire in this network namespace.

    systemd starts units in PID 1's namespace unless told another one, which it can only open by a
    path: a named namespace (ip netns). In an unnamed one the detached process (which keeps the
    namespace it was started in) is the timer.
    """
    if not use_systemd(systemd_run):
        return False, None
    here = netns_of()
    try:
        if netns_of('/proc/1/ns/net') == here:
            return True, None
    except OSError:
        return False, None
    path = named_netns_path(here)
    return (True, path) if path else (False, None)


def ns_dir():
    """This network namespace's directory under BASE."""
    return os.path.join(BASE, 'netns-%d' % netns_id())


def state_root():
    return os.path.join(ns_dir(), 'rollback')


def engine_lock_path():
    return os.path.join(ns_dir(), 'engine.lock')


@contextmanager
def _private():
    """Files and directories created inside are closed to group and others, whatever the caller's umask."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def check_private_dir(path):
    """Refuse a directory that another user could change: a symlink, not a directory, owned by someone
    else, or writable by group or others. Raises RollbackError."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise RollbackError('cannot check %s: %s' % (path, exc))
    if not stat.S_ISDIR(st.st_mode):
        raise RollbackError('%s is not a directory (a symlink or a file is never used as state)' % path)
    if st.st_uid != os.geteuid():
        raise RollbackError('%s is owned by uid %d, not by uid %d: remove it (after checking who created it)'
                            % (path, st.st_uid, os.geteuid()))
    if st.st_mode & 0o022:
        raise RollbackError('%s is writable by group or others (mode %04o): another user could plant rollback '
                            'records; remove it (after checking who changed it)' % (path, stat.S_IMODE(st.st_mode)))


def private_dir(path):
    """Create path and its missing parents up from BASE as 0700 directories, and check each level."""
    parts = [path]
    while parts[-1] != BASE and os.path.dirname(parts[-1]) != parts[-1] and parts[-1].startswith(BASE + os.sep):
        parts.append(os.path.dirname(parts[-1]))
    for level in reversed(parts):
        with _private():
            try:
                os.mkdir(level, 0o700)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise RollbackError('cannot create %s: %s' % (level, exc))
        check_private_dir(level)
    return path


def _state_path(state_dir):
    return os.path.join(state_dir, 'state.json')


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_record(record, state_dir):
    """Every field of a record read from disk, checked before anything uses it; raises ValueError."""
    if not isinstance(record, dict):
        raise ValueError('not a JSON object')
    ident = record.get('id')
    check_id(ident, 'id')
    if ident != os.path.basename(state_dir.rstrip(os.sep)) or record.get('state_dir') != state_dir:
        raise ValueError('id %s and state_dir %s do not name this directory' % (show(ident), show(record.get('state_dir'))))
    if record.get('status') not in STATUSES:
        raise ValueError('status %s is not one of %s' % (show(record.get('status')), ', '.join(STATUSES)))
    table = record.get('table')
    if table not in BUILTIN_CHAINS:
        raise ValueError('table %s is not one of %s' % (show(table), ', '.join(sorted(BUILTIN_CHAINS))))
    scope_prefix = record.get('scope_prefix')
    scope = scope_prefix[len(PREFIX):-1] if isinstance(scope_prefix, str) and scope_prefix != PREFIX else None
    if not isinstance(scope_prefix, str) or not scope_prefix.startswith(PREFIX) \
            or check_scope_text(scope) != scope_prefix:
        raise ValueError('scope_prefix %s is not a scope' % show(scope_prefix))
    if record.get('backend') not in ('nft', 'legacy', NFTABLES):
        raise ValueError('backend %s is not nft, legacy or nftables' % show(record.get('backend')))
    if record['backend'] == NFTABLES or 'nft' in record:
        saved = record.get('nft')
        wanted = nft_table_name(table, scope_prefix)
        if not isinstance(saved, dict) or saved.get('table') != wanted or not isinstance(saved.get('text'), str):
            raise ValueError('nft %s is not the saved owned table %s' % (show(saved), wanted))
    if 'iptables' in record:
        # A migration to nftables: the iptables chains it removed (checked rule by rule when it fires).
        other = record['iptables']
        if record['backend'] != NFTABLES or not isinstance(other, dict) \
                or other.get('backend') not in ('nft', 'legacy') or not isinstance(other.get('families'), dict) \
                or not other['families'] or set(other['families']) - set(FAMILIES):
            raise ValueError('iptables %s is not the saved iptables side of an nftables rollback' % show(other))
    for key in ('created', 'timeout', 'deadline'):
        if not _number(record.get(key)):
            raise ValueError('%s %s is not a number' % (key, show(record.get(key))))
    if not isinstance(record.get('netns'), int) or isinstance(record.get('netns'), bool):
        raise ValueError('netns %s is not a namespace inode' % show(record.get('netns')))
    families = record.get('families')
    if not isinstance(families, dict) or not families or set(families) - set(FAMILIES):
        raise ValueError('families %s are not ipv4 and/or ipv6' % show(families))
    timer = record.get('timer')
    if timer is not None:
        if not isinstance(timer, dict) or timer.get('kind') not in ('systemd', 'process'):
            raise ValueError('timer %s is not a timer' % show(timer))
        if timer['kind'] == 'systemd' and timer.get('unit') != UNIT_PREFIX + ident + '.timer':
            raise ValueError('timer unit %s is not the unit of this rollback' % show(timer.get('unit')))
        if timer['kind'] == 'process' and timer.get('pid') is not None and \
                (not isinstance(timer['pid'], int) or isinstance(timer['pid'], bool)):
            raise ValueError('timer pid %s is not a process id' % show(timer.get('pid')))
    return record


def nft_table_name(table, scope_prefix):
    """The owned nft table of a table and scope prefix (as _nft.table_name: snf_filter, snf_filter_FW)."""
    scope = scope_prefix[len(PREFIX):-1] if scope_prefix != PREFIX else None
    return 'snf_%s%s' % (table, '_' + scope if scope else '')


def check_scope_text(scope):
    try:
        return check_scope(scope, 'scope')
    except ValidationError:
        return None


def read_record(state_dir):
    """The record of a state directory, checked; None when it has none (yet, or any more).

    Raises RollbackError naming the file when it is not a record the collection wrote.
    """
    path = _state_path(state_dir)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise RollbackError('cannot read the rollback record %s: %s' % (path, exc))
    try:
        with os.fdopen(fd) as handle:
            record = json.load(handle)
        return check_record(record, state_dir)
    except ValueError as exc:
        raise RollbackError('the rollback record %s is corrupt or was not written by stateful.netfilter (%s): '
                            'check the rules (iptables-save), then remove %s' % (path, exc, state_dir))


def write_record(state_dir, record):
    path = _state_path(state_dir)
    tmp = path + '.tmp'
    with _private():
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, 'O_NOFOLLOW', 0), 0o600)
    with os.fdopen(fd, 'w') as handle:
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
        with _private():
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _flock(path, wait, sleep):
    """An open descriptor of path holding an exclusive lock, or None after `wait` seconds."""
    private_dir(os.path.dirname(path))
    with _private():
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), 0o600)
    waited = 0.0
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
        if waited >= wait:
            os.close(fd)
            return None
        sleep(0.1)
        waited += 0.1


def engine_lock(wait=None, sleep=time.sleep, keep_turnstile=False):
    """Take the engine lock of this network namespace (kept until release or exit); raises RollbackError.

    The turnstile is taken first and let go once the engine lock is held, unless keep_turnstile (the
    firing rollback keeps it while it waits, so that no new run takes the engine lock before it).
    """
    path = engine_lock_path()
    if path in _HELD:
        return _HELD[path]
    wait = ENGINE_LOCK_WAIT if wait is None else wait
    started = time.time()
    turnstile = _flock(path + '.turnstile', wait, sleep)
    if turnstile is None:
        raise RollbackError('another stateful.netfilter change in this network namespace held %s for %d s'
                            % (path, wait))
    try:
        fd = _flock(path, max(0.0, wait - (time.time() - started)), sleep)
    finally:
        if not keep_turnstile:
            os.close(turnstile)
    if fd is None:
        if keep_turnstile:
            os.close(turnstile)
        raise RollbackError('another stateful.netfilter change in this network namespace held %s for %d s'
                            % (path, wait))
    _HELD[path] = fd
    if keep_turnstile:
        _HELD[path + '.turnstile'] = turnstile
    return fd


def release_engine_lock():
    """Let the engine lock (and a kept turnstile) go: the run has planned and applied."""
    for path in sorted(_HELD, reverse=True):
        os.close(_HELD.pop(path))


def all_records(root=None):
    """Every record under root, checked (RollbackError names a corrupt one)."""
    root = root or state_root()
    if not os.path.lexists(root):
        return []
    check_private_dir(root)
    records = []
    for name in sorted(os.listdir(root)):
        state_dir = os.path.join(root, name)
        check_private_dir(state_dir)
        record = read_record(state_dir)
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

def guard(module, table, scope_prefix, families, policies=None, changed=True, root=None):
    """Refuse a push that a pending rollback would undo later.

    A rollback of an overlapping scope blocks any change of it; a rollback of
    another scope that saved a built-in policy blocks a push that manages that
    policy with another value (when it fired it would set it back).
    policies: {family: {chain: policy}} the push manages.
    """
    try:
        records = all_records(root)
    except (RollbackError, OSError) as exc:
        module.fail_json(msg='cannot read the pending rollbacks: %s' % exc)
    for record, family, chain, saved in policy_conflicts(records, table, scope_prefix, policies or {}):
        module.fail_json(
            msg='the %s policy of %s (%s) is also saved by the pending rollback %s of scope %s*, which sets it back '
                'to %s when it fires at %s: confirm that rollback (rollback_confirm=%s) or let it fire before '
                'changing this policy' % (chain, table, family, record['id'], record['scope_prefix'], saved,
                                          time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(record['deadline'])),
                                          record['id']),
            rollback=public(record))
    pending = blocking(records, table, scope_prefix, families) if changed else []
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


def arm(module, table, scope_prefix, plans, backend, timeout, root=None, extra=None):
    """Save the owned state each changed plan found, start the timer; returns the record (None if nothing changes).

    extra: the scope's other back end as it is, when the same run removes it (migrate):
    {'nft': {'table': NAME, 'text': LISTING}}; every family's state is saved then, and the timer puts the
    nft table back before the iptables chains.
    """
    todo = [plan for plan in plans if plan.changed or extra]
    if not todo or module.check_mode:
        return None
    for plan in todo:
        for chain in plan.live.chains.values():
            unreadable = [rule.text for rule in chain.rules if rule.spec is None]
            if unreadable:
                module.fail_json(msg='rollback_timeout: the owned chain %s (%s) holds a rule the collection cannot '
                                     'read, which a rollback would have to restore: "-A %s %s"; nothing was applied'
                                     % (chain.name, plan.family, chain.name, show(unreadable[0])[1:-1]))
    fields = dict(table=table, scope_prefix=scope_prefix, backend=backend,
                  families=dict((plan.family, owned_to_data(plan.live)) for plan in todo))
    fields.update(extra or {})
    return _arm(module, fields, timeout, root)


def arm_nft(module, table, scope_prefix, name, saved, timeout, root=None, extra=None):
    """Save the owned nft table as it is (saved: its canonical listing, '' when absent) and start the timer.

    When it fires, the table is put back whole with one nft -f transaction. The record covers both
    families: the table holds both and is restored as one. extra: the scope's iptables chains as they
    are, when the same run removes them (migrate): {'iptables': {'backend': B, 'families': {...}}}; the
    timer puts them back before the nft table.
    """
    if module.check_mode:
        return None
    fields = dict(table=table, scope_prefix=scope_prefix, backend=NFTABLES,
                  families=dict((family, {}) for family in FAMILIES), nft=dict(table=name, text=saved))
    fields.update(extra or {})
    return _arm(module, fields, timeout, root)


def _arm(module, fields, timeout, root):
    ident = new_id()
    now = time.time()
    state_dir = None
    try:
        root = private_dir(root or state_root())
        _prune(root)
        state_dir = os.path.join(root, ident)
        record = dict(id=ident, status=PENDING, netns=netns_id(), created=now, timeout=timeout,
                      deadline=now + timeout, state_dir=state_dir, result=None, **fields)
        private_dir(state_dir)
        with _private():
            runner = _write_lib(state_dir)
        python = sys.executable
        systemd, netns_path = timer_netns(module.get_bin_path('systemd-run'))
        if systemd:
            unit = UNIT_PREFIX + ident
            record['timer'] = dict(kind='systemd', unit=unit + '.timer')
            write_record(state_dir, record)
            cmd = systemd_run_command(module.get_bin_path('systemd-run'), unit, timeout, python, runner, state_dir,
                                      netns_path)
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
        if state_dir:
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
    state_dir = os.path.join(root or state_root(), ident)
    try:
        if os.path.lexists(state_dir):
            check_private_dir(os.path.dirname(state_dir))
            check_private_dir(state_dir)
        record = read_record(state_dir)
    except RollbackError as exc:
        module.fail_json(msg='rollback_confirm: %s' % exc)
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
        """AnsibleModule.run_command's contract for the detached rollback runner, which has no AnsibleModule
        (it outlives the task that armed it): an argument list only, never a shell."""
        if not isinstance(cmd, (list, tuple)):
            raise TypeError('run_command takes an argument list, not %r' % (cmd,))
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
    """Put the saved state back, unless the record was confirmed; returns the final record.

    Refuses a state directory another user could have written (RollbackError). A run of the module in
    progress finishes first (its plan and apply take seconds) and no new one starts meanwhile; if the
    engine lock is still held after FIRE_LOCK_WAIT seconds the restore goes ahead without it and says so.
    """
    commands = commands or HostCommands()
    check_private_dir(os.path.dirname(state_dir))
    check_private_dir(state_dir)
    record = read_record(state_dir)
    if record is None or record['status'] != PENDING:
        return record
    try:
        engine_lock(wait=FIRE_LOCK_WAIT, keep_turnstile=True)
    except (RollbackError, OSError) as exc:
        commands.warn('restored without the engine lock: %s' % exc)
    try:
        return _fire(state_dir, commands)
    finally:
        release_engine_lock()


def _fire(state_dir, commands):
    with Locked(state_dir):
        record = read_record(state_dir)
        if record is None or record['status'] != PENDING:
            return record
        result = dict(at=time.time(), by='timer', restored=[], unchanged=[], errors=[])
        try:
            if netns_id() != record['netns']:
                raise RollbackError('the timer runs in network namespace %d, the rollback was armed in %d: '
                                    'nothing restored' % (netns_id(), record['netns']))
            # A migration's other back end first (as it was before the push), then this one: while both
            # hold the scope the host is never without its rules.
            if record['backend'] == NFTABLES:
                if 'iptables' in record:
                    result['migrated'] = _fire_other(_fire_iptables, record, commands, result,
                                                     record['iptables']['families'])
                _fire_nft(record, commands, result)
            else:
                if 'nft' in record:
                    result['migrated'] = _fire_other(_fire_nft, record, commands, result)
                _fire_iptables(record, commands, result)
        except (CommandError, RollbackError, OSError) as exc:
            result['errors'].append(str(exc))
        result['warnings'] = commands.warnings
        record['status'] = 'failed' if result['errors'] else 'rolled_back'
        record['result'] = result
        write_record(state_dir, record)
    return record


def _fire_other(fire, record, commands, result, *args):
    """Restore a migration's other back end; its outcome (restored, unchanged, errors) apart, its errors
    also in result's."""
    other = dict(restored=[], unchanged=[], errors=[])
    try:
        fire(record, commands, other, *args)
    except (CommandError, RollbackError, OSError) as exc:
        other['errors'].append(str(exc))
    result['errors'].extend('migrated: %s' % error for error in other['errors'])
    return other


def _fire_iptables(record, commands, result, families=None):
    """Put the saved owned chains back with one iptables-restore --noflush per family; fills result."""
    backend = detect_backend(commands)
    families = record['families'] if families is None else families
    for family in sorted(families):
        engine = Backend(commands, family, backend)
        table = engine.read(record['table'])
        try:
            saved = owned_from_data(families[family], family, record['table'], record['scope_prefix'])
            plan = restore_plan(table, record['scope_prefix'], family, saved)
        except (ValueError, ValidationError) as exc:
            result['errors'].append('%s: the saved state is refused: %s' % (family, exc))
            continue
        if not plan.changed:
            result['unchanged'].append(family)
            continue
        try:
            engine.apply(plan.text)
        except CommandError as exc:
            result['errors'].append('%s: %s' % (family, exc))
            continue
        result['restored'].append(family)


def _fire_nft(record, commands, result):
    """Put the saved owned nft table back with one nft -f (nft -c first); fills result."""
    # Imported here: the iptables rollback needs none of it.
    from ansible_collections.stateful.netfilter.plugins.module_utils import _nft
    saved = record['nft']
    try:
        changed, text = _nft.restore_transaction(commands, saved['table'], record['table'], saved['text'])
        if changed:
            result['restored'].extend(sorted(record['families']))
        else:
            result['unchanged'].extend(sorted(record['families']))
        result['nft'] = text
    except (_nft.NftError, ValueError) as exc:
        result['errors'].append('nftables: %s' % exc)


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
    os.umask(0o077)  # whatever the module's umask was: what the runner writes is root's alone
    try:
        record = wait_then_fire(state_dir) if verb == 'wait' else fire(state_dir)
    except RollbackError as exc:
        sys.stderr.write('rollback refused: %s\n' % exc)
        return 1
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return 0  # confirmed and removed under our feet
        raise
    if record and record.get('status') == 'failed':
        sys.stderr.write('rollback failed: %s\n' % '; '.join(record['result']['errors']))
        return 1
    return 0
