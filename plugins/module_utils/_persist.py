# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The roles' boot-time restore: whether it would ever run on a host, and its files.

Both roles persist their rules as a systemd unit of the collection's own
(snf-firewall.service, snf-nat-gateway.service). On a host where systemd is
not running (no /run/systemd/system: a container, a host with another init)
nothing would read those files at boot, so persistence requested there is
refused before any change, unless the role is told that the files are wanted
anyway (an image built in a container or chroot that boots with systemd
later; a lab that runs the restore scripts itself).

The files (the boot_restore module) are written in one module run: the
rules files rendered on the host from the same models the role applied
(iptables-restore input per family, every table in one file; or one nft -f
file for the nftables back end), the restore script and the unit, all text
made here rather than in templates.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.stateful.netfilter.plugins.module_utils._files import BootRestore

SYSTEMD_RUNNING = '/run/systemd/system'

# role -> (the persistence variable, the variable that drops the systemd requirement, the unit)
VARIABLES = {
    'firewall': ('firewall_persist', 'firewall_persist_require_systemd', 'snf-firewall.service'),
    'nat_gateway': ('nat_gateway_persist', 'nat_gateway_persist_require_systemd', 'snf-nat-gateway.service'),
}


def check(role, persist, require_systemd, systemd_running, host='the host'):
    """The message to refuse with, '' when the role may go on."""
    if role not in VARIABLES:
        raise ValueError('unknown role %r' % (role,))
    persist_variable, require_variable, unit = VARIABLES[role]
    if not persist or not require_systemd or systemd_running:
        return ''
    return ('%s: %s is true, but systemd is not running there (no /run/systemd/system), so nothing would run '
            '%s to restore the rules at boot. Set %s: false to keep no boot-time restore, or %s: false to '
            'install the files anyway (an image that boots with systemd later). Nothing was changed.'
            % (host, persist_variable, unit, persist_variable, require_variable))


# ---------------------------------------------------------------------------
# The boot-time restore a role installs (the boot_restore module): the rules
# files rendered from the same model the role applied, a restore script and
# a systemd unit of the collection's own, written in one module run.

RULES_DIR = '/etc/stateful-netfilter'
SCRIPT_DIR = '/usr/local/sbin'
UNIT_DIR = '/etc/systemd/system'
WANTED_BY = 'multi-user.target'
FAMILY_COMMANDS = (('ipv4', 'iptables'), ('ipv6', 'ip6tables'))
TABLES = ('filter', 'nat', 'raw', 'mangle')

# role -> (scope prefix, what the unit restores, units it must come after besides the common ones)
ROLES = {
    'firewall': ('SNF-FW-', 'firewall rules', 'snf-nat-gateway.service'),
    'nat_gateway': ('SNF-GW-', 'NAT gateway rules', ''),
}

UNIT = '''# Written by stateful.netfilter (the %(role)s role); changes are overwritten on its next run.
# Restores the rules of the %(role)s role (%(owned)s) before the network comes up.
[Unit]
Description=stateful.netfilter %(what)s (%(owned)s)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
After=%(after)s
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=%(script)s

[Install]
WantedBy=%(wanted_by)s
'''

# The firewall unit runs after the nat_gateway one (when there is one): both
# insert their hooks first in FORWARD, so the boot leaves them in the order
# the gateway playbook does (SNF-FW-FORWARD above SNF-GW-FORWARD), not in the
# order two units happen to race in.
COMMON_AFTER = ('local-fs.target systemd-modules-load.service iptables.service ip6tables.service '
                'netfilter-persistent.service nftables.service')

IPTABLES_SCRIPT = '''#!/bin/sh
# Written by stateful.netfilter (the %(role)s role); changes are overwritten on its next run.
# Restores the %(prefix)s* chains of the role: one iptables-restore --noflush
# transaction per rules file (the model the role applied, rendered as the
# ruleset module's `rendered` output). Jumps into those chains left by an
# earlier restore are deleted in the same transaction, so running it twice
# gives the same ruleset.
set -eu

restore() {
    command=$1
    file=$2
    [ -s "$file" ] || return 0
    {
        table=
        unhooked=
        while IFS= read -r line; do
            case $line in
                '*'*)
                    table=${line#\\*}
                    unhooked=
                    ;;
                -*)
                    if [ -z "$unhooked" ]; then
                        "$command-save" -t "$table" \\
                            | grep -E -x -e '-A [A-Z]+ -j %(prefix)s[A-Za-z0-9_-]+' \\
                            | sed 's/^-A /-D /' || true
                        unhooked=1
                    fi
                    ;;
            esac
            printf '%%s\\n' "$line"
        done < "$file"
    } | "$command-restore" --noflush --wait
}

status=0
%(calls)sexit $status
'''

NFT_SCRIPT = '''#!/bin/sh
# Written by stateful.netfilter (the %(role)s role); changes are overwritten on its next run.
# Restores the nftables tables the role owns in one nft -f transaction: the
# file replaces each of them whole and touches no other table.
set -eu
exec nft -f %(file)s
'''


def unit_name(role):
    return 'snf-%s.service' % role.replace('_', '-')


def restore_script(role):
    return '%s/snf-%s-restore' % (SCRIPT_DIR, role.replace('_', '-'))


def rules_files(role, backend):
    """{key: path} of the rules files of a back end: ipv4/ipv6 (iptables-restore input) or nft (nft -f input)."""
    if backend == 'nftables':
        return {'nft': '%s/%s.nft' % (RULES_DIR, role)}
    return dict((family, '%s/%s.%s.rules' % (RULES_DIR, role, family)) for family, dummy in FAMILY_COMMANDS)


def stale_paths(role, backend):
    """The files of the role that the given back end does not use: the other back end's, and the one-file-per-table
    layout of earlier releases (nat_gateway.nat.ipv4.rules...)."""
    other = rules_files(role, 'iptables' if backend == 'nftables' else 'nftables')
    older = ['%s/%s.%s.%s.rules' % (RULES_DIR, role, table, family)
             for table in TABLES for family, dummy in FAMILY_COMMANDS]
    return sorted(other.values()) + older


def all_paths(role):
    """Every path the role's boot-time restore may have written (for state absent), the wants link first."""
    unit = unit_name(role)
    return (['%s/%s.wants/%s' % (UNIT_DIR, WANTED_BY, unit), '%s/%s' % (UNIT_DIR, unit), restore_script(role)]
            + sorted(rules_files(role, 'iptables').values()) + stale_paths(role, 'iptables'))


def render_rules(backend, scope, tables, planned=()):
    """{key of rules_files(): text} of the models in tables (ruleset-shaped: table, family, policies, chains);
    planned[N], when given, the {family: Owned} tables[N] was already checked into (iptables).

    iptables: per family, the iptables-restore input of every table, in the order given (a table without chains
    or policies renders to '', so a family with nothing at all is ''). nftables: one nft -f file that replaces each owned table (an empty model removes
    its table). Raises ValidationError naming tables[N].
    """
    from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError
    from ansible_collections.stateful.netfilter.plugins.module_utils import _firewall_plan, _nft

    def named(index, exc):
        return ValidationError('tables[%d].%s' % (index, exc.param), str(exc)[len(exc.param) + 2:]
                               if str(exc).startswith(exc.param + ': ') else str(exc))

    if backend == 'nftables':
        owned = []
        for index, model in enumerate(tables):
            try:
                owned.append(_nft.render_params(dict(model, scope=scope)))
            except ValidationError as exc:
                raise named(index, exc)
        return {'nft': _nft.persistence_file(owned)}
    texts = dict((family, []) for family, dummy in FAMILY_COMMANDS)
    for index, model in enumerate(tables):
        try:
            rendered = _firewall_plan.render(model, scope, planned=planned[index] if index < len(planned) else None)
        except ValidationError as exc:
            raise named(index, exc)
        for family, text in rendered.items():
            texts[family].append(text)
    return dict((family, ''.join(parts)) for family, parts in texts.items())


def script_text(role, backend):
    prefix = ROLES[role][0]
    if backend == 'nftables':
        return NFT_SCRIPT % dict(role=role, file=rules_files(role, backend)['nft'])
    files = rules_files(role, backend)
    calls = ''.join('restore %s %s || status=1\n' % (command, files[family]) for family, command in FAMILY_COMMANDS)
    return IPTABLES_SCRIPT % dict(role=role, prefix=prefix, calls=calls)


def unit_text(role, backend):
    prefix, what, after = ROLES[role]
    owned = 'its nftables tables' if backend == 'nftables' else '%s* chains' % prefix
    return UNIT % dict(role=role, owned=owned, what=what, script=restore_script(role),
                       wanted_by=WANTED_BY, after=(COMMON_AFTER + ' ' + after).strip())


ARGUMENT_SPEC = dict(
    role=dict(type='str', required=True, choices=sorted(ROLES)),
    state=dict(type='str', default='present', choices=['present', 'absent']),
    backend=dict(type='str', default='iptables', choices=['iptables', 'nftables']),
    tables=dict(type='list', elements='dict', default=[]),
    root=dict(type='path', default='/'),
)


def desired_files(role, backend, tables, planned=()):
    """{path: (text, mode)} of a present boot-time restore (rules files with nothing in them left out), and the
    paths to remove (planned: as render_rules). Raises ValidationError."""
    scope = ROLES[role][0][len('SNF-'):-1]
    texts = render_rules(backend, scope, tables, planned)
    files, remove = {}, list(stale_paths(role, backend))
    for key, path in sorted(rules_files(role, backend).items()):
        if texts[key]:
            files[path] = (texts[key], 0o600)
        else:
            remove.append(path)
    files[restore_script(role)] = (script_text(role, backend), 0o755)
    files['%s/%s' % (UNIT_DIR, unit_name(role))] = (unit_text(role, backend), 0o644)
    return files, sorted(remove)


def validator(backend, key):
    """The command (argv before the file name) that checks a rules file without applying it."""
    if backend == 'nftables':
        return ['nft', '-c', '-f']
    return [dict(FAMILY_COMMANDS)[key] + '-restore', '--test', '--noflush']


def write(module, role, backend, state, tables, root='/', planned=()):
    """Writes (state present) or removes (absent) the role's boot-time restore under root, in check mode only
    planning; returns {changes, daemon_reload, diff}. Fails the module (naming tables[N]) on a bad model or a rules
    file its validator refuses, before that file is written. planned: as render_rules."""
    from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

    unit = '%s/%s' % (UNIT_DIR, unit_name(role))
    wants = '%s/%s.wants/%s' % (UNIT_DIR, WANTED_BY, unit_name(role))
    files = BootRestore(module, root)
    if state == 'absent':
        for path in all_paths(role):
            files.remove(path)
    else:
        for index, model in enumerate(tables):
            table = model.get('table', 'filter')
            if table not in TABLES:
                module.fail_json(msg='tables[%d].table: must be one of %s, got %r' % (index, ', '.join(TABLES), table))
        try:
            wanted, remove = desired_files(role, backend, tables, planned)
        except ValidationError as exc:
            module.fail_json(msg=str(exc))
        keys = dict((path, key) for key, path in rules_files(role, backend).items())
        for path in sorted(wanted):
            text, mode = wanted[path]
            files.write(path, text, mode, validator(backend, keys[path]) if path in keys else None)
        files.link(wants, unit)
        for path in remove:
            files.remove(path)
    reload = (root == '/' and bool(set(files.changes) & set([unit, wants])) and os.path.isdir(SYSTEMD_RUNNING))
    if reload and not module.check_mode:
        rc, dummy, err = module.run_command(['systemctl', 'daemon-reload'])
        if rc != 0:
            module.fail_json(msg='systemctl daemon-reload failed: %s' % err.strip(), changes=files.changes)
    return dict(changes=files.changes, daemon_reload=reload, diff=files.diff)


def check_ruleset_persist(params):
    """ruleset's persist option: '' when the task can write the role's boot-time restore, else why not.

    The firewall role's restore holds the filter table of its scope: the task's own model. The nat_gateway
    role's holds every table of its scope: the task's model and those of persist.tables, one per table.
    """
    persist = params['persist']
    role = persist['role']
    scope = ROLES[role][0][len('SNF-'):-1]
    others = persist.get('tables') or []
    if params['state'] != 'overridden':
        return 'persist: needs state overridden (the boot-time restore holds the whole scope), got %s' % params['state']
    if role == 'firewall' and (params['scope'] != scope or params['table'] != 'filter' or others):
        return ('persist: the boot-time restore of the %s role holds the filter table of the scope %s, got table %s, '
                'scope %s%s' % (role, scope, params['table'], params['scope'],
                                ' and persist.tables' if others else ''))
    if params['scope'] != scope:
        return 'persist: the boot-time restore of the %s role holds the scope %s, got scope %s' % (
            role, scope, params['scope'])
    seen = [params['table']]
    for index, model in enumerate(others):
        table = model.get('table', 'filter') if isinstance(model, dict) else None
        if table not in TABLES or table in seen:
            return ('persist.tables[%d].table: one model per table other than the task\'s own (%s), got %r'
                    % (index, ', '.join(TABLES), table))
        seen.append(table)
    if others and persist.get('state') != 'absent':
        # Checked before any rule changes (the files are written after the rules went in).
        from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError
        try:
            render_rules(params.get('backend') or 'iptables', scope, others)
        except ValidationError as exc:
            return 'persist.%s' % exc
    return ''


def ruleset_tables(params):
    """The models a ruleset task's boot-time restore holds: the task's own first, then persist.tables."""
    model = dict(table=params['table'], family=params['family'], policies=params['policies'] or {},
                 chains=params['chains'])
    return [model] + list(params['persist'].get('tables') or [])


def after_ruleset(module, result):
    """ruleset's persist: once the task's rules are in place, the role's boot-time restore written (or removed)
    from the task's own model and persist.tables (ruleset_tables()), in the same module run, as boot_restore writes it; the result gets `persisted`
    and, when a file changed, changed and its diff. With a rollback armed the files wait for the confirmation
    (persisted: {deferred: true}): the action plugin writes them with boot_restore once the rules are confirmed."""
    params = module.params
    persist = params['persist']
    if (result.get('rollback') or {}).get('armed'):
        result['persisted'] = dict(deferred=True)
        return
    done = write(module, persist['role'], params['backend'], persist['state'],
                 ruleset_tables(params) if persist['state'] == 'present' else [], persist['root'] or '/',
                 planned=[module.planned] if getattr(module, 'planned', None) else ())
    result['persisted'] = dict(changed=bool(done['changes']), changes=done['changes'],
                               daemon_reload=done['daemon_reload'])
    result['changed'] = bool(result.get('changed')) or bool(done['changes'])
    if module._diff:
        result['diff'] = list(result.get('diff') or []) + done['diff']


def run_boot_restore(module_class):
    from ansible_collections.stateful.netfilter.plugins.module_utils._arguments import short_model

    module = module_class(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    # The invocation echoes each model's chains as counts (_arguments.Module; an AnsibleModule ignores this).
    module.shorten = lambda params: dict(params, tables=[short_model(model) for model in params['tables']])
    params = module.params
    done = write(module, params['role'], params['backend'], params['state'], params['tables'], params['root'])
    result = dict(changed=bool(done['changes']), changes=done['changes'], daemon_reload=done['daemon_reload'])
    if module._diff:
        result['diff'] = done['diff']
    module.exit_json(**result)
