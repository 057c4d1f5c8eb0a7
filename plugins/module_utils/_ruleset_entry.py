# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the ruleset module does around its engine (either back end), in the same module run.

- The rules of chains[].rules checked once (_arguments.check_rules), the
  invocation echoed in short.
- preflight: the preflight module's checks (_preflight.checks) before any
  rule is read or changed; the SSH guard evaluates the task's own policies
  and chains. A check that says no fails the run; the result carries what
  they read either way.
- sysctls: after the rules went in, the values set and kept in their file
  (_sysctls.after_ruleset), as the sysctls module does.
- persist: then a role's boot-time restore written from the task's own
  model and persist.tables (_persist.after_ruleset), as the boot_restore
  module writes it.

The firewall role makes its whole host part one module run this way, the
nat_gateway role its checks with the first table, and the translations
with the sysctls and the boot-time restore: each module run saved is an
AnsiballZ build on the controller, a copy of the arguments, a round trip
and a Python start on the host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stateful.netfilter.plugins.module_utils._arguments import check_rules, short_chains
from ansible_collections.stateful.netfilter.plugins.module_utils._engine import planned_owned
from ansible_collections.stateful.netfilter.plugins.module_utils import _sysctls
from ansible_collections.stateful.netfilter.plugins.module_utils._persist import after_ruleset, check_ruleset_persist
from ansible_collections.stateful.netfilter.plugins.module_utils._preflight import checks
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError


def start(module, rule_options):
    """Before the engine runs: the rules checked, the sysctls and persist steps checked and set up, the preflight
    checks made (fails the module, naming the parameter, when one says no)."""
    params = module.params
    module.shorten = lambda args: dict(args, chains=short_chains(args['chains']))
    try:
        check_rules(params['chains'], rule_options)
    except ValidationError as exc:
        module.fail_json(msg=str(exc), param=exc.param)
    # The steps after the rules are checked now, before any change: a bad value fails the run with nothing done.
    steps = []
    if params['sysctls']:
        problem = _sysctls.planned(params['sysctls']['values'] or {}, 'sysctls.values')[0]
        if params['state'] not in ('overridden', 'merged', 'deleted'):
            problem = 'sysctls: needs a state that changes rules, got %s' % params['state']
        if problem:
            module.fail_json(msg=problem, param='sysctls')
        steps.append(_sysctls.after_ruleset)
    if params['persist']:
        problem = check_ruleset_persist(params)
        if problem:
            module.fail_json(msg=problem, param='persist')
        steps.append(after_ruleset)
    if steps:
        module.before_exit = lambda result: [step(module, result) for step in steps]
    if params['preflight']:
        # The planned rules checked before the checks that read them (the SSH guard), so that a bad rule is told
        # as such; the engine takes the result (module.planned) instead of checking again.
        try:
            planned_owned(module)
        except ValidationError as exc:
            module.fail_json(msg=str(exc), param=exc.param)
        found, message = checks(module, params['preflight'],
                                model=dict(policies=params['policies'] or {}, chains=params['chains']))
        module.returned = dict(preflight=found)
        if message:
            module.fail_json(msg=message, changed=False)
