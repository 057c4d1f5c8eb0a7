# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The roles' checks of a host before any change, in one read (the preflight module).

What the firewall and nat_gateway roles must know of a host before they
change anything, read in one module run rather than a task each (every task
is a round trip over the connection):

- other firewall managers: the running processes' names (/proc/*/comm),
  ufw's configuration and the filter table (decided by _managers.py);
- whether systemd runs (/run/systemd/system), which the boot-time restore
  needs (decided by _persist.py), also told to the roles' handlers;
- the sysctls the nat_gateway role sets: their values and whether they can
  be written (sysctl_check());
- which tables hold the role's chains (SNF-GW-* in iptables, or its owned
  nftables table), so the role skips the ruleset call of a table it has
  nothing in and never had;
- the firewall role's SSH guard: would the planned INPUT and OUTPUT accept a
  new connection of the SSH client the play runs over, and its replies
  (decided by _firewall_plan.ssh_verdict()).

The module only reads. Each check that fails gives its message; the first
one fails the run, in the order above.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.stateful.netfilter.plugins.module_utils import _managers, _persist
from ansible_collections.stateful.netfilter.plugins.module_utils._arguments import short_model
from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import ssh_verdict
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import check_scope
from ansible_collections.stateful.netfilter.plugins.module_utils._sysctls import (
    differing,
    name_problem,
    read_sysctls,
    read_text,
    sysctl_path,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

SYSTEMD_DIR = _persist.SYSTEMD_RUNNING
# The nat_gateway role's variable that sets a sysctl, by the sysctl's name (first match).
SYSCTL_VARIABLES = (
    (re.compile(r'net\.netfilter\.nf_conntrack_max'), 'nat_gateway_conntrack_max'),
    (re.compile(r'net\.netfilter\.nf_conntrack_.*timeout.*'), 'nat_gateway_conntrack_timeouts'),
    (re.compile(r'net\.netfilter\.nf_conntrack_acct'), 'nat_gateway_conntrack_accounting'),
    (re.compile(r'net\.ipv[46]\..*'), 'nat_gateway_forwarding'),
)
UFW_CONF = '/etc/ufw/ufw.conf'

ARGUMENT_SPEC = dict(
    role=dict(type='str', required=True, choices=sorted(_persist.VARIABLES)),
    coexist=dict(type='list', elements='str', default=[], choices=list(_managers.MANAGERS)),
    persist=dict(type='bool', default=True),
    persist_require_systemd=dict(type='bool', default=True),
    sysctls=dict(type='dict', default={}),
    host=dict(type='str', default='the host'),
    ssh_guard=dict(type='bool', default=False),
    model=dict(type='dict'),
    families=dict(type='list', elements='str', default=['ipv4', 'ipv6'], choices=['ipv4', 'ipv6']),
    ssh_connection=dict(type='str'),
    scope=dict(type='str'),
    owned_tables=dict(type='list', elements='str', default=[], choices=['filter', 'nat', 'raw', 'mangle']),
)


def process_names(proc='/proc'):
    """The command names of the running processes, one a line (what `ps -e -o comm=` prints)."""
    names = []
    for entry in os.listdir(proc):
        if entry.isdigit():
            name = read_text(os.path.join(proc, entry, 'comm'))
            if name:
                names.append(name.strip())
    return '\n'.join(sorted(set(names)))


def ssh_connection(environ=None, proc='/proc', pid=None):
    """SSH_CONNECTION of the session the module runs in: its own environment's, else the nearest ancestor's.

    Privilege escalation (sudo's env_reset, su -) drops SSH_CONNECTION from the module's environment, but the
    shell sshd started for the session still holds it, and root (or the same user) can read its environ.
    '' when there is none (a local, container or other non-SSH connection).
    """
    environ = os.environ if environ is None else environ
    if environ.get('SSH_CONNECTION'):
        return environ['SSH_CONNECTION']
    pid = os.getppid() if pid is None else pid
    for dummy in range(64):
        if pid <= 1:
            break
        try:
            with open(os.path.join(proc, str(pid), 'environ'), 'rb') as handle:
                variables = handle.read().split(b'\0')
            with open(os.path.join(proc, str(pid), 'status')) as handle:
                status = handle.read()
        except (IOError, OSError):
            break
        for variable in variables:
            if variable.startswith(b'SSH_CONNECTION='):
                return variable[len(b'SSH_CONNECTION='):].decode('ascii', 'replace')
        parent = [line.split()[1] for line in status.splitlines() if line.startswith('PPid:')]
        pid = int(parent[0]) if parent else 0
    return ''


def ssh_guard(module, params):
    """The firewall role's SSH guard on the planned model (_firewall_plan.ssh_verdict), reading the arrival
    interface with `ip route get CLIENT` only when a rule that could decide names one."""
    model = params['model']
    if not isinstance(model, dict) or not isinstance(model.get('chains'), list) \
            or not isinstance(model.get('policies'), dict):
        module.fail_json(msg='model: with ssh_guard, the planned model (policies, chains) is required')
    connection = params['ssh_connection'] or ssh_connection()
    verdict = ssh_verdict(model, connection, None, params['families'], params['host'])
    if verdict['needs_route']:
        client = connection.split()[0]
        rc, out, err = module.run_command([module.get_bin_path('ip', required=True), 'route', 'get', client],
                                          environ_update=dict(LC_ALL='C'))
        if rc != 0:
            module.fail_json(msg='firewall_ssh_guard: ip route get %s failed: %s' % (client, err.strip()))
        verdict = ssh_verdict(model, connection, out, params['families'], params['host'])
    return verdict


def sysctl_check(sysctls, current, writable, host='the host'):
    """Whether the host lets the role set its sysctls, from what the preflight module read there.

    sysctls: the planned {name: value}. current: {name: the value read, or
    None where the path does not exist}. writable: {name: whether the path
    can be written}. Returns {changes, message}: the names whose value
    changes, and the message to fail with ('' when all is well).
    """
    missing = [name for name in sysctls if current.get(name) is None]
    if missing:
        return dict(changes=[], message='%s: no such sysctl on %s (%s), the role cannot set it. Nothing was '
                    'changed.' % ('; '.join(_named(name) for name in missing), host,
                                  ', '.join(sysctl_path(name) for name in missing)))
    changes = differing(sysctls, current)
    readonly = [name for name in changes if not writable.get(name)]
    message = ''
    if readonly:
        message = (
            '%s is read-only on %s (the role would change it to %s). Inside a container\'s network namespace the '
            'kernel keeps nf_conntrack_max global: set it on the host, or leave the variable unset. Nothing was '
            'changed.' % ('; '.join(_named(name) for name in readonly), host,
                          ', '.join(str(sysctls[name]) for name in readonly)))
    return dict(changes=changes, message=message)


def _named(name):
    """A sysctl as a message names it: with the variable that sets it."""
    for pattern, variable in SYSCTL_VARIABLES:
        if pattern.fullmatch(name):
            return '%s: %s' % (variable, name)
    return name


def saved_tables(module, command):
    """{table: its lines} of every table of one family, in one run of command (iptables-save or
    ip6tables-save, without -t: a table nothing uses is not loaded to be listed); None when the command is
    missing or fails."""
    path = module.get_bin_path(command)
    if not path:
        return None
    rc, out, dummy = module.run_command([path], environ_update=dict(LC_ALL='C'))
    if rc != 0:
        return None
    tables, name = {}, None
    for line in out.splitlines():
        if line.startswith('*'):
            name = line[1:].strip()
            tables[name] = []
        elif name is not None:
            tables[name].append(line)
    return tables


def owned_tables(module, scope, tables, saved):
    """{table: whether the scope has chains there}, on either back end: SNF-<scope>-* chains in the iptables
    table of either family (saved: {command: saved_tables() of it}), or the owned nftables table
    snf_<table>_<scope>. A table that cannot be read counts as holding them (the role then calls ruleset for
    it, which reports why)."""
    found = dict((table, False) for table in tables)
    declared = ':SNF-%s-' % scope
    for command in ('iptables-save', 'ip6tables-save'):
        if not module.get_bin_path(command):
            continue
        dump = saved[command]
        for table in tables:
            if dump is None or any(line.startswith(declared) for line in dump.get(table, ())):
                found[table] = True
    nft = module.get_bin_path('nft')
    if nft and tables:
        rc, out, dummy = module.run_command([nft, 'list', 'tables'], environ_update=dict(LC_ALL='C'))
        names = set(line.split()[-1] for line in out.splitlines() if line.startswith('table inet '))
        for table in tables:
            if rc != 0 or 'snf_%s_%s' % (table, scope) in names:
                found[table] = True
    return found


def checks(module, params, model=None):
    """The checks of one preflight, for the preflight module or another module that makes them first (ruleset's
    preflight option): (the result's keys, the message of the first check that fails or '').

    params are the preflight options (ARGUMENT_SPEC); model, when given, is the planned model the SSH guard
    evaluates instead of params['model'] (ruleset's own policies and chains). A parameter that is wrong fails
    the module here, naming it.
    """
    role, host = params['role'], params['host']
    sysctls = params['sysctls'] or {}
    if sysctls and role != 'nat_gateway':
        module.fail_json(msg='sysctls: only the nat_gateway role sets sysctls, got role %s' % role)
    for name in sysctls:
        if name_problem(name):
            module.fail_json(msg='sysctls: %s' % name_problem(name))
    if params['owned_tables']:
        try:
            if params['scope'] is None:
                raise ValidationError('scope', 'required with owned_tables')
            check_scope(params['scope'], 'scope')
        except ValidationError as exc:
            module.fail_json(msg=str(exc))
    if params['ssh_guard'] and role != 'firewall':
        module.fail_json(msg='ssh_guard: only the firewall role has an SSH guard, got role %s' % role)

    # One iptables-save per family serves the managers' check (IPv4's filter table) and owned_tables.
    saved = dict((command, saved_tables(module, command)) for command in
                 (('iptables-save', 'ip6tables-save') if params['owned_tables'] else ('iptables-save',)))
    ipv4 = saved['iptables-save']
    rules = None if ipv4 is None else ''.join(line + '\n' for line in ipv4.get('filter', ()))
    found = _managers.detect(process_names(), read_text(UFW_CONF), rules)
    systemd = os.path.isdir(SYSTEMD_DIR)
    current, writable = read_sysctls(sysctls)
    checked = sysctl_check(sysctls, current, writable, host)
    result = dict(
        managers=found,
        systemd=systemd,
        sysctls=dict((name, dict(value=current[name], writable=writable[name])) for name in sysctls),
        sysctl_changes=checked['changes'],
    )
    if params['owned_tables']:
        result['owned'] = owned_tables(module, params['scope'], params['owned_tables'], saved)
    if params['ssh_guard']:
        result['ssh'] = ssh_guard(module, dict(params, model=params.get('model') if model is None else model))
    for message in (_managers.check(found, role, params['coexist'], host),
                    _persist.check(role, params['persist'], params['persist_require_systemd'], systemd, host),
                    checked['message'],
                    '' if result.get('ssh', dict(accepted=True))['accepted'] else result['ssh']['message']):
        if message:
            return result, message
    return result, ''


def run_module(module_class):
    module = module_class(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    # The invocation echoes the model's chains as counts (_arguments.Module; an AnsibleModule ignores this).
    module.shorten = lambda params: dict(params, model=short_model(params['model']))
    result, message = checks(module, module.params)
    if message:
        module.fail_json(msg=message, changed=False, **result)
    module.exit_json(changed=False, **result)
