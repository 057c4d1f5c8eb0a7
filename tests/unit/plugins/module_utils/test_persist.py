# SPDX-License-Identifier: GPL-3.0-or-later
"""The refusal of a boot-time restore that nothing would run (module_utils/_persist.py)."""
import itertools

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _persist as p


@pytest.mark.parametrize('persist, require, running', itertools.product((True, False), repeat=3))
def test_refused_only_when_persistence_needs_a_systemd_that_does_not_run(persist, require, running):
    message = p.check('firewall', persist, require, running, 'edge1')
    assert bool(message) == (persist and require and not running)


@pytest.mark.parametrize('role, unit', [('firewall', 'snf-firewall.service'), ('nat_gateway', 'snf-nat-gateway.service')])
def test_the_message_names_host_variables_and_unit(role, unit):
    message = p.check(role, True, True, False, 'edge1')
    assert message.startswith('edge1: %s_persist is true, but systemd is not running there' % role)
    assert unit in message
    assert 'Set %s_persist: false' % role in message
    assert '%s_persist_require_systemd: false' % role in message
    assert message.endswith('Nothing was changed.')


def test_an_unknown_role_is_a_programming_error():
    with pytest.raises(ValueError):
        p.check('router', True, True, False)
