# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Large arguments of the ruleset, preflight and boot_restore modules: checked once, echoed in short.

The firewall role hands these modules a model of thousands of rules. Two
things AnsibleModule does with them cost more than the work itself
(profiled with 2,000 rules: a third and a sixth of the ruleset run):

- It checks every rule against the 60-odd documented rule options
  (aliases, defaults, types, choices for each option of each rule), and
  the rule engine (_rules.make_rule) then checks every rule again. So
  ruleset declares chains[].rules as a list of mappings and check_rules()
  here makes AnsibleModule's checks for the options a rule actually gives
  (unknown option, type, element type, choices, the required jump), from
  the same option table, naming chains[N].rules[M].OPTION; make_rule does
  the rest, as before.
- exit_json() and fail_json() echo every argument back as `invocation`
  (walked for no_log values, then encoded). Module (an AnsibleModule)
  echoes the same arguments with each chain's rules as a count instead,
  and prints a result of plain JSON values with the standard library's C
  encoder when exit_json() would print the same document.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import sys

from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import (
    check_type_bool,
    check_type_dict,
    check_type_int,
    check_type_list,
    check_type_str,
)
from ansible.module_utils.common.warnings import get_deprecation_messages, get_warning_messages

from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

_CHECKERS = dict(
    str=lambda value: check_type_str(value, allow_conversion=True),
    bool=check_type_bool,
    int=check_type_int,
    list=check_type_list,
    dict=check_type_dict,
    raw=lambda value: value,
)


def _typed(value, kind, param):
    try:
        return _CHECKERS[kind](value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(param, 'expected %s, got %r (%s)' % (kind, value, exc))


def check_rules(chains, options):
    """AnsibleModule's checks of chains[].rules[] against `options` (an argument spec without nesting), in place.

    For each option a rule gives: known, of its type (converted as AnsibleModule converts: 'yes' to true,
    '5' to 5, 'a,b' to a list), elements of the type given, one of the choices; and every required option
    given. Options a rule leaves out stay out (the engine reads a missing option as not set). Raises
    ValidationError naming chains[N].rules[M].OPTION.
    """
    required = [name for name, option in options.items() if option.get('required')]
    for index, chain in enumerate(chains or []):
        rules = chain.get('rules') if isinstance(chain, dict) else None
        for number, rule in enumerate(rules or []):
            param = 'chains[%d].rules[%d].' % (index, number)
            if not isinstance(rule, dict):
                raise ValidationError(param[:-1], 'must be a mapping, got %s' % type(rule).__name__)
            for name in list(rule):
                option = options.get(name) if isinstance(name, str) else None
                if option is None:
                    raise ValidationError(param + str(name), 'unknown rule option (supported: %s)'
                                          % ', '.join(sorted(options)))
                value = rule[name]
                if value is None:
                    continue
                value = _typed(value, option.get('type', 'str'), param + name)
                if option.get('elements'):
                    value = [_typed(item, option['elements'], '%s%s[%d]' % (param, name, position))
                             for position, item in enumerate(value)]
                if option.get('choices') and value not in option['choices']:
                    raise ValidationError(param + name, 'must be one of %s, got %r'
                                          % (', '.join(option['choices']), value))
                rule[name] = value
            for name in required:
                if rule.get(name) is None:
                    raise ValidationError(param + name, 'required')
    return chains


# ---------------------------------------------------------------------------
# The invocation, in short

def short_chains(chains):
    """chains with each chain's rules replaced by their number ('1001 rules')."""
    if not isinstance(chains, list):
        return chains
    out = []
    for chain in chains:
        if isinstance(chain, dict) and isinstance(chain.get('rules'), list):
            chain = dict(chain, rules='%d rules' % len(chain['rules']))
        out.append(chain)
    return out


def short_model(model):
    """A ruleset-shaped model (policies, chains, ...) with its chains in short."""
    if not isinstance(model, dict):
        return model
    return dict((key, short_chains(value) if key.endswith('chains') else value) for key, value in model.items())


def _echoes_invocation():
    """Whether exit_json() would add `invocation`: always before ansible-core 2.21; from 2.21 only when the
    controller asks for it (_ansible_inject_invocation)."""
    if '_ansible_inject_invocation' not in AnsibleModule._return_formatted.__code__.co_consts:
        return True
    return bool((getattr(basic, '_PARSED_MODULE_ARGS', None) or {}).get('_ansible_inject_invocation', False))


class Module(AnsibleModule):
    """AnsibleModule that echoes its arguments in short (shorten(params) -> module_args) as `invocation`, adds
    the keys of `returned` to its result whichever code ends the run, and runs before_exit(result) when it
    succeeds.

    exit_json() prints with the standard library's C encoder when that gives the document AnsibleModule
    would print: no no_log values to mask, no pending warnings or deprecations, no `path` (file attributes),
    only values json encodes (as _result.exit_large does). Otherwise, and for fail_json(), AnsibleModule does it, with the short invocation.
    """

    shorten = staticmethod(lambda params: params)
    # Keys every result of this run carries besides its own (ruleset's preflight, made before the rules).
    returned = None
    # before_exit(result): the last step of a run that succeeded (ruleset's persist), on the result exit_json prints.
    before_exit = None
    # {family: Owned} the task's chains were checked into (ruleset, _engine.planned_owned): the engine and
    # persist take it instead of checking every rule again.
    planned = None

    def _short(self, result):
        for key, value in (self.returned or {}).items():
            result.setdefault(key, value)
        if 'invocation' not in result and _echoes_invocation():
            result['invocation'] = dict(module_args=self.shorten(dict(self.params)))
        return result

    def exit_json(self, **result):
        if self.before_exit:
            step, self.before_exit = self.before_exit, None
            step(result)
        self._short(result)
        if self.no_log_values or get_warning_messages() or get_deprecation_messages() or 'path' in result:
            super(Module, self).exit_json(**result)
        try:
            # allow_nan=False: NaN is not JSON; a value json cannot represent goes the long way.
            text = json.dumps(result, allow_nan=False)
        except (TypeError, ValueError):
            super(Module, self).exit_json(**result)
        self.do_cleanup_files()
        sys.stdout.write('\n%s\n' % text)
        sys.stdout.flush()
        sys.exit(0)  # pylint: disable=ansible-bad-function

    def fail_json(self, msg, **result):
        self._short(result)
        super(Module, self).fail_json(msg, **result)
