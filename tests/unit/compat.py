# SPDX-License-Identifier: GPL-3.0-or-later
"""What the unit tests need from ansible-core, on every line the collection supports (2.16+).

ansible-core 2.19 added ansible.module_utils.testing.patch_module_args; the
older lines read a module's arguments from basic._ANSIBLE_ARGS. The smoke
stage (tests/smoke/smoke.sh) runs the plugin unit tests on 2.16 and 2.21.
"""

import contextlib
import json

try:  # ansible-core 2.19+
    from ansible.module_utils.testing import patch_module_args  # noqa: F401 pylint: disable=unused-import
except ImportError:  # ansible-core 2.16 - 2.18
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes

    @contextlib.contextmanager
    def patch_module_args(args=None):
        """The arguments AnsibleModule() reads, until the block ends."""
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args or {}}))
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved


def _invocation_by_default():
    from ansible.module_utils import basic as _basic
    return '_ansible_inject_invocation' not in _basic.AnsibleModule._return_formatted.__code__.co_consts


# exit_json() adds `invocation` by itself before ansible-core 2.21; from 2.21 only when the controller asks.
INVOCATION_BY_DEFAULT = _invocation_by_default()


def invocation(result):
    """The invocation of a module result as this ansible-core's exit_json() would give it (None from 2.21)."""
    if INVOCATION_BY_DEFAULT:
        return result['invocation']
    assert 'invocation' not in result
    return None
