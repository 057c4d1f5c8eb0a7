# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for AnsibleModule, for running a module's run_module(module_class) in a unit test.

Subclass it to give a test's host commands (run_command, get_bin_path);
run() returns what the module exited or failed with.
"""

import pytest


class Done(Exception):
    pass


class StandInModule(object):
    params = None
    check_mode = False
    _diff = True

    def __init__(self, argument_spec, supports_check_mode):
        assert supports_check_mode
        self.params = dict((name, spec.get('default')) for name, spec in argument_spec.items())
        self.params.update(type(self).params)

    def get_bin_path(self, name, required=False):
        return None

    def exit_json(self, **result):
        raise Done(dict(result, failed=False))

    def fail_json(self, **result):
        raise Done(dict(result, failed=True))


def run(run_module, module_class, check_mode=False, **params):
    """The result of run_module(module_class) with params (and failed: True/False)."""
    module_class.params = params
    module_class.check_mode = check_mode
    with pytest.raises(Done) as done:
        run_module(module_class)
    return done.value.args[0]
