# SPDX-License-Identifier: GPL-3.0-or-later
"""The refusal of a boot-time restore that nothing would run (module_utils/_persist.py, filter persist_preflight)."""
import itertools

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.filter.persist_preflight import FilterModule
from ansible_collections.stateful.netfilter.plugins.module_utils import _persist as p

preflight = FilterModule().filters()['persist_preflight']


@pytest.mark.parametrize('persist, require, running', itertools.product((True, False), repeat=3))
def test_refused_only_when_persistence_needs_a_systemd_that_does_not_run(persist, require, running):
    message = p.check('firewall', persist, require, running, 'edge1')
    assert bool(message) == (persist and require and not running)


@pytest.mark.parametrize('role, unit', [('firewall', 'snf-firewall.service'), ('nat_gateway', 'snf-nat-gateway.service')])
def test_the_message_names_host_variables_and_unit(role, unit):
    message = preflight(True, role=role, systemd=False, host='edge1')
    assert message.startswith('edge1: %s_persist is true, but systemd is not running there' % role)
    assert unit in message
    assert 'Set %s_persist: false' % role in message
    assert '%s_persist_require_systemd: false' % role in message
    assert message.endswith('Nothing was changed.')


def test_the_filter_goes_on_where_systemd_runs_or_is_not_required():
    assert preflight(True, role='firewall', systemd=True) == ''
    assert preflight(True, role='nat_gateway', require_systemd=False, systemd=False) == ''
    assert preflight(False, role='nat_gateway', systemd=False) == ''


@pytest.mark.parametrize('kwargs, expect', [
    ({'role': 'router', 'systemd': True}, 'role is one of firewall, nat_gateway'),
    ({'role': 'firewall', 'systemd': 'yes'}, 'systemd must be a boolean'),
    ({'role': 'firewall', 'systemd': True, 'require_systemd': None}, 'firewall_persist_require_systemd must be a boolean'),
])
def test_the_filter_refuses_bad_arguments(kwargs, expect):
    with pytest.raises(AnsibleFilterError, match=expect):
        preflight(True, **kwargs)


def test_a_persistence_variable_of_another_type_is_refused_naming_it():
    with pytest.raises(AnsibleFilterError, match='nat_gateway_persist must be a boolean'):
        preflight('true', role='nat_gateway', systemd=True)


def test_an_unknown_role_is_a_programming_error():
    with pytest.raises(ValueError):
        p.check('router', True, True, False)
