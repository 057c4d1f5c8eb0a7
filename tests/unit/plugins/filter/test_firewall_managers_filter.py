# SPDX-License-Identifier: GPL-3.0-or-later
"""The firewall_managers filter: what the roles pass it, what they get back."""
import os

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.stateful.netfilter.plugins.filter.firewall_managers import FilterModule

FIXTURES = os.path.join(os.path.dirname(__file__), '..', 'module_utils', 'fixtures', 'managers')
firewall_managers = FilterModule().filters()['firewall_managers']


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def test_refuses_ufw_naming_the_variable():
    result = firewall_managers(fixture('ps.ufw'), ufw_conf=fixture('ufw.conf.enabled'),
                               rules=fixture('iptables-save.ufw'), role='nat_gateway', accept=[], host='gw')
    assert [entry['manager'] for entry in result['found']] == ['ufw']
    assert result['accepted'] == []
    assert result['message'].startswith('gw: ufw manages this firewall too')
    assert 'nat_gateway_coexist: [ufw]' in result['message']


def test_accepted_firewalld_passes():
    result = firewall_managers(fixture('ps.firewalld'), ufw_conf=fixture('ufw.conf.disabled'), rules='',
                               role='firewall', accept=['firewalld'])
    assert result == {'found': [{'manager': 'firewalld', 'evidence': ['a firewalld process runs']}],
                      'accepted': ['firewalld'], 'message': ''}


def test_nothing_found():
    assert firewall_managers('sleep\nsshd\n', role='firewall')['message'] == ''


@pytest.mark.parametrize('kwargs, fragment', [
    ({'role': 'other'}, 'role is one of firewall, nat_gateway'),
    ({'role': 'firewall', 'accept': 'ufw'}, 'firewall_coexist must be a list of names'),
    ({'role': 'firewall', 'ufw_conf': ['ENABLED=yes']}, 'ufw_conf must be text'),
])
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(AnsibleFilterError, match=fragment):
        firewall_managers('', **kwargs)
