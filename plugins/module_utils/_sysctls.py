# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sysctls, read and set in one module run (the sysctls module; the preflight module reads them).

The live values are written to /proc/sys only where they differ (so check
mode tells exactly what would change), and the same values are kept in one
file of /etc/sysctl.d, written only when its text differs and removed when
there are no values.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.stateful.netfilter.plugins.module_utils._files import BootRestore

HEADER = '# Written by stateful.netfilter; changes are overwritten on its next run.\n'

ARGUMENT_SPEC = dict(
    values=dict(type='dict', default={}),
    file=dict(type='path'),
)


def sysctl_path(name):
    """The /proc/sys file of a sysctl name (net.ipv4.ip_forward)."""
    return '/proc/sys/%s' % name.replace('.', '/')


def name_problem(name):
    """Why name cannot be a sysctl name ('' when it can): it becomes a path under /proc/sys."""
    if not isinstance(name, str) or not name or name.startswith('.') or '/' in name or '..' in name \
            or not all(part for part in name.split('.')):
        return '%r is not a sysctl name' % (name,)
    return ''


def read_text(path):
    """The text of a file, None when it cannot be read."""
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def read_sysctls(names):
    """{name: value text or None}, {name: writable}."""
    current, writable = {}, {}
    for name in names:
        path = sysctl_path(name)
        text = read_text(path)
        current[name] = None if text is None else text.strip()
        writable[name] = text is not None and os.access(path, os.W_OK)
    return current, writable


def _text(value):
    """A value as the kernel prints it back: words separated by one tab (bool as 0/1)."""
    if isinstance(value, bool):
        value = int(value)
    return '\t'.join(str(value).split())


def file_text(values):
    return HEADER + ''.join('%s = %s\n' % (name, ' '.join(_text(values[name]).split('\t')))
                            for name in sorted(values))


def differing(values, current):
    """The names of values (in their order) whose value differs from the one read (current), compared as the
    kernel prints a value back."""
    return [name for name in values if _text(current[name]) != _text(values[name])]


def planned(values, param='values'):
    """(message, changes): why values cannot be set on this host (a bad name or value, a sysctl missing, or
    read-only where it would change; '' when they can), and {name: {before, after}} of those that differ."""
    for name in sorted(values):
        problem = name_problem(name)
        if problem:
            return '%s: %s' % (param, problem), {}
        if values[name] is None or isinstance(values[name], (dict, list)):
            return '%s.%s: must be a number or a string, got %r' % (param, name, values[name]), {}
    current, writable = read_sysctls(values)
    missing = sorted(name for name in values if current[name] is None)
    if missing:
        return ('%s: no such sysctl on this host: %s (%s); nothing was changed'
                % (param, ', '.join(missing), ', '.join(sysctl_path(name) for name in missing))), {}
    changes = dict((name, dict(before=current[name], after=_text(values[name])))
                   for name in sorted(differing(values, current)))
    readonly = sorted(name for name in changes if not writable[name])
    if readonly:
        return '%s: read-only on this host: %s; nothing was changed' % (param, ', '.join(readonly)), changes
    return '', changes


def apply(module, values, path, param='values'):
    """Sets values live where they differ and keeps them in the file path (removed when there are none; no file
    when path is empty), in check mode only planning; returns {changed, changes, file_changed, diff}. Fails the
    module, naming param, when planned() says no (before any change) or a write fails."""
    message, changes = planned(values, param)
    if message:
        module.fail_json(msg=message)
    if not module.check_mode:
        for name in sorted(changes):
            try:
                with open(sysctl_path(name), 'w') as handle:
                    handle.write(str(values[name] if not isinstance(values[name], bool) else int(values[name])) + '\n')
            except (IOError, OSError) as exc:
                module.fail_json(msg='%s.%s: writing %s failed: %s' % (param, name, sysctl_path(name), exc),
                                 changes=changes)
    files = BootRestore(module, '/')
    if path:
        if values:
            files.write(path, file_text(values), 0o644)
        else:
            files.remove(path)
    diff = [dict(before=''.join('%s = %s\n' % (name, change['before']) for name, change in changes.items()),
                 after=''.join('%s = %s\n' % (name, change['after']) for name, change in changes.items()),
                 before_header='/proc/sys', after_header='/proc/sys')] + files.diff
    return dict(changed=bool(changes or files.changes), changes=changes, file_changed=bool(files.changes), diff=diff)


def after_ruleset(module, result):
    """ruleset's sysctls: once the task's rules are in place, its values set and kept in its file as the sysctls
    module does, in the same module run; the result gets `sysctls` (changed, changes, file_changed) and, when one
    changed, changed and its diff. With a rollback armed they wait for the confirmation (sysctls: {deferred:
    true}): the action plugin sets them with the sysctls module once the rules are confirmed."""
    if (result.get('rollback') or {}).get('armed'):
        result['sysctls'] = dict(deferred=True)
        return
    option = module.params['sysctls']
    done = apply(module, option['values'] or {}, option.get('file'), 'sysctls.values')
    diff = done.pop('diff')
    result['sysctls'] = done
    result['changed'] = bool(result.get('changed')) or done['changed']
    if module._diff and done['changed']:
        result['diff'] = list(result.get('diff') or []) + diff


def run_module(module_class):
    module = module_class(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = apply(module, module.params['values'], module.params['file'])
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    module.exit_json(**result)
