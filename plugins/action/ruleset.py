# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of stateful.netfilter.ruleset: the firewall role's plan, and commit-confirm over a new connection.

With plan, the role variables are planned into family, policies and chains
here, on the controller (module_utils/_firewall_plan.py; bad variables fail
the task before the host is reached), and handed to the module as they are:
no task templates the 2,000-rule model of 1,000 allow entries into a fact
and again into the arguments. The module checks every planned rule before
it changes anything; a rule it refuses is told here by the variable and the
entry it came from.

Runs the module. When it armed a rollback (rollback_timeout and a change),
the connection is reset (for SSH: the ControlPersist master is stopped, so
the next command opens a new TCP connection and a new SSH session) and the
module is run again with rollback_confirm. A push that cut the way in
cannot be confirmed that way, and the timer on the host puts the previous
rules back. With sysctls and persist, the module left the sysctls and the
boot-time restore for after the confirmation (deferred): they are set and
written then, with the sysctls and boot_restore modules and the task's
models. Without rollback_timeout this is the normal action.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gc
import time

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.action import ActionBase
from ansible.plugins.connection import ConnectionBase

from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import PlanError, draft, told_by_entry

MODULE = 'stateful.netfilter.ruleset'
PERSIST_MODULE = 'stateful.netfilter.boot_restore'
SYSCTLS_MODULE = 'stateful.netfilter.sysctls'


def resolve_plan(args):
    """ruleset's plan option, planned here on the controller: args get the role's family, policies and chains
    (the module never sees plan). Returns (message, origins): the message naming the variable and the entry when
    the role variables are bad (else None), and where each planned rule comes from (None on failure).

    The planned rules are checked once, by the module before it changes anything (the filter firewall_plan
    checks them on the controller as well); a rule it refuses is told in terms of the variable and the entry
    (told_by_entry), as the filter tells it.
    """
    option = args.pop('plan')
    if not isinstance(option, dict) or option.get('role') != 'firewall':
        return 'plan: needs role firewall and the role variables, got %r' % (option,), None
    variables = option.get('variables')
    if not isinstance(variables, dict):
        return 'plan.variables: expected the role variables as a mapping, got %s' % type(variables).__name__, None
    given = [key for key in ('family', 'policies', 'chains') if args.get(key)]
    if given:
        return 'plan: the plan gives the %s; leave %s out' % (', '.join(given), ', '.join(given)), None
    try:
        model, origins = draft(variables, args.get('scope') or 'FW', args.get('backend') or 'iptables')
    except PlanError as exc:
        return str(exc), None
    args.update(family=model['family'], policies=model['policies'], chains=model['chains'])
    return None, origins


def shape_error(args):
    """A message naming the parameter when chains or their rules are not lists of mappings, else None.

    AnsibleModule reports such a value as 'dictionary requested, could not parse JSON or key=value',
    without saying which option it was.
    """
    chains = args.get('chains')
    if chains is None:
        return None
    if not isinstance(chains, list):
        return 'chains must be a list of chains (mappings), got %s' % type(chains).__name__
    for index, chain in enumerate(chains):
        if not isinstance(chain, dict):
            return 'chains[%d] must be a mapping (name, hook, rules), got %s' % (index, type(chain).__name__)
        rules = chain.get('rules')
        if rules is None:
            continue
        if not isinstance(rules, list):
            return 'chains[%d].rules must be a list of rules (mappings), got %s' % (index, type(rules).__name__)
        for number, rule in enumerate(rules):
            if not isinstance(rule, dict):
                return 'chains[%d].rules[%d] must be a mapping, got %s' % (index, number, type(rule).__name__)
    return None


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = True

    def _reconnect(self):
        """Drop the current connection so that the next command opens a new one; False if the plugin cannot."""
        if type(self._connection).reset is ConnectionBase.reset:
            return False  # e.g. a container engine's exec: there is no network session to renew
        self._connection.reset()
        return True

    def _persist(self, args, result, task_vars):
        """ruleset's persist after a confirmed change (the module defers it while a rollback is armed): the
        boot_restore module with the task's model. Updates result (persisted, changed, diff); returns the
        failure's message or None."""
        persist = args['persist']
        state = persist.get('state') or 'present'
        model = dict(table=args.get('table') or 'filter', family=args.get('family') or 'both',
                     policies=args.get('policies') or {}, chains=args.get('chains') or [])
        done = self._execute_module(module_name=PERSIST_MODULE, task_vars=task_vars, module_args=dict(
            role=persist['role'], backend=args.get('backend') or 'iptables', state=state,
            tables=[model] + list(persist.get('tables') or []) if state == 'present' else [],
            root=persist.get('root') or '/'))
        if done.get('failed'):
            result['persisted'] = dict(changed=False, changes=done.get('changes') or {}, daemon_reload=False)
            return done.get('msg')
        result['persisted'] = dict(changed=bool(done.get('changed')), changes=done.get('changes') or {},
                                   daemon_reload=bool(done.get('daemon_reload')))
        result['changed'] = bool(result.get('changed')) or bool(done.get('changed'))
        if done.get('diff'):
            result['diff'] = list(result.get('diff') or []) + list(done['diff'])
        return None

    def _sysctls(self, args, result, task_vars):
        """ruleset's sysctls after a confirmed change (deferred like persist): the sysctls module with the task's
        values. Updates result (sysctls, changed, diff); returns the failure's message or None."""
        option = args['sysctls']
        module_args = dict(values=option.get('values') or {})
        if option.get('file'):
            module_args['file'] = option['file']
        done = self._execute_module(module_name=SYSCTLS_MODULE, task_vars=task_vars, module_args=module_args)
        result['sysctls'] = dict(changed=bool(done.get('changed')), changes=done.get('changes') or {},
                                 file_changed=bool(done.get('file_changed')))
        if done.get('failed'):
            return done.get('msg')
        result['changed'] = bool(result.get('changed')) or bool(done.get('changed'))
        if done.get('changed') and done.get('diff'):
            result['diff'] = list(result.get('diff') or []) + list(done['diff'])
        return None

    def run(self, tmp=None, task_vars=None):
        # The task's worker process is forked for this task and ends with it. What it holds now (the play's
        # variables, the role's 1,000 allow entries) lives until then: frozen, the cyclic collector stops
        # walking it again and again while the module is built (AnsiballZ compiles some 18,000 lines of
        # module_utils, the collection's and ansible-core's, into syntax trees).
        # bench/firewall_role_bench.py: about 0.1 s of a task.
        gc.freeze()
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        origins = None
        if args.get('plan') is not None:
            error, origins = resolve_plan(args)
        else:
            error = shape_error(args)
        if error:
            result.update(failed=True, msg=error)
            return result
        wrap_async = self._task.async_val and not self._connection.has_native_async
        if wrap_async and args.get('rollback_timeout') is not None:
            result.update(failed=True, msg='rollback_timeout cannot be used with async: the confirm must follow the '
                                           'push over a new connection')
            return result
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars,
                                           wrap_async=wrap_async))
        if origins is not None and result.get('failed') and isinstance(result.get('msg'), str):
            result['msg'] = told_by_entry(result['msg'], result.get('param'), origins)
        rollback = result.get('rollback') or {}
        if result.get('failed') or not rollback.get('armed'):
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result

        # The rules are live and the timer runs on the host. Do not touch the old session again: confirm
        # over a new one, or not at all.
        first_tmp = self._connection._shell.tmpdir
        started = time.time()
        rollback['reconnected'] = self._reconnect()
        try:
            confirmed = self._execute_module(module_name=MODULE, module_args=dict(rollback_confirm=rollback['id']),
                                             task_vars=task_vars)
        except AnsibleConnectionFailure as exc:
            rollback['confirmed'] = False
            result['rollback'] = rollback
            result['failed'] = True
            result['msg'] = ('the rules were applied, but the host could not be reached over a new connection to '
                             'confirm them (%s); its rollback timer puts the previous rules back %d s after the '
                             'push' % (exc, rollback.get('timeout') or 0))
            return result
        if confirmed.get('failed'):
            rollback['confirmed'] = False
            result['rollback'] = rollback
            result['failed'] = True
            result['msg'] = 'the rules were applied, but confirming them failed: %s' % confirmed.get('msg')
            return result
        rollback.update(confirmed.get('rollback') or {})
        rollback['confirmed'] = True
        rollback['confirm_seconds'] = round(time.time() - started, 2)
        result['rollback'] = rollback
        if (result.get('sysctls') or {}).get('deferred'):
            failure = self._sysctls(args, result, task_vars)
            if failure:
                result.update(failed=True, msg='the rules were applied and confirmed, but setting the sysctls '
                                               'failed: %s' % failure)
        if (result.get('persisted') or {}).get('deferred') and not result.get('failed'):
            # persist waited for the confirmation: the boot-time restore from the same model, now.
            failure = self._persist(args, result, task_vars)
            if failure:
                result.update(failed=True, msg='the rules were applied and confirmed, but writing the boot-time '
                                               'restore failed: %s' % failure)
        second_tmp = self._connection._shell.tmpdir
        self._remove_tmp_path(first_tmp)
        if second_tmp and second_tmp != first_tmp:
            self._remove_tmp_path(second_tmp)
        return result
