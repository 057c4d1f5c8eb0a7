# SPDX-License-Identifier: GPL-3.0-or-later
"""Detection of other firewall managers, on state read on lab hosts (fixtures/managers/README.md)."""
import os

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _managers as m

HERE = os.path.join(os.path.dirname(__file__), 'fixtures', 'managers')


def fixture(name):
    with open(os.path.join(HERE, name)) as handle:
        return handle.read()


def test_nothing_on_a_plain_host():
    assert m.detect(fixture('ps.ufw').replace('firewalld', ''), None, '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n') == []
    assert m.detect(None, None, None) == []


def test_ufw_installed_but_disabled_is_not_active():
    assert m.detect(fixture('ps.ufw'), fixture('ufw.conf.disabled'), '') == []


def test_ufw_enabled_and_loaded():
    found = m.detect(fixture('ps.ufw'), fixture('ufw.conf.enabled'), fixture('iptables-save.ufw'))
    assert [entry['manager'] for entry in found] == ['ufw']
    evidence = found[0]['evidence']
    assert evidence[0] == '/etc/ufw/ufw.conf says ENABLED=yes'
    assert evidence[1].startswith('its chains are loaded (ufw-after-forward, ')
    assert evidence[1].endswith(', ...)')


def test_ufw_chains_without_its_configuration():
    # ufw's chains loaded by hand, or its configuration gone: still active.
    found = m.detect('', None, fixture('iptables-save.ufw'))
    assert [entry['manager'] for entry in found] == ['ufw']
    assert len(found[0]['evidence']) == 1


def test_ufw_enabled_but_not_loaded_yet():
    # ENABLED=yes: its boot script loads the chains at the next boot.
    found = m.detect('', fixture('ufw.conf.enabled'), '')
    assert found == [{'manager': 'ufw', 'evidence': ['/etc/ufw/ufw.conf says ENABLED=yes']}]


@pytest.mark.parametrize('line', ['ENABLED=yes', 'ENABLED = "yes"', "  ENABLED='YES'  "])
def test_ufw_enabled_spellings(line):
    assert m.detect('', line + '\n', '')[0]['manager'] == 'ufw'


@pytest.mark.parametrize('line', ['#ENABLED=yes', 'ENABLED=yess', 'ENABLED="yes\'', 'NOTENABLED=yes'])
def test_ufw_not_enabled_spellings(line):
    assert m.detect('', line + '\n', '') == []


def test_firewalld_process():
    found = m.detect(fixture('ps.firewalld'), None, '')
    assert found == [{'manager': 'firewalld', 'evidence': ['a firewalld process runs']}]


def test_firewalld_only_by_exact_name():
    assert m.detect('firewalld-helper\nmyfirewalld\n', None, '') == []


def test_both():
    found = m.detect(fixture('ps.firewalld'), fixture('ufw.conf.enabled'), fixture('iptables-save.ufw'))
    assert [entry['manager'] for entry in found] == ['firewalld', 'ufw']


def test_refusal_names_the_manager_and_the_variable():
    found = m.detect(fixture('ps.ufw'), fixture('ufw.conf.enabled'), fixture('iptables-save.ufw'))
    message = m.check(found, 'firewall', [], 'gw')
    assert message.startswith('gw: ufw manages this firewall too (ufw: /etc/ufw/ufw.conf says ENABLED=yes, its chains')
    assert 'set firewall_coexist: [ufw]' in message
    assert 'Nothing was changed.' in message
    message = m.check(m.detect(fixture('ps.firewalld'), fixture('ufw.conf.enabled'), ''), 'nat_gateway', [], 'gw')
    assert message.startswith('gw: firewalld and ufw manage this firewall too')
    assert 'set nat_gateway_coexist: [firewalld, ufw]' in message


def test_accepted_knowingly():
    found = m.detect(fixture('ps.firewalld'), fixture('ufw.conf.enabled'), '')
    assert m.check(found, 'firewall', ['firewalld', 'ufw']) == ''
    # Accepting one does not accept the other.
    message = m.check(found, 'firewall', ['ufw'])
    assert message.startswith('the host: firewalld manages this firewall too')
    assert 'set firewall_coexist: [firewalld]' in message
    # Accepting a manager that is not there is fine.
    assert m.check([], 'firewall', ['ufw']) == ''


def test_unknown_manager_name_is_refused():
    assert m.check([], 'firewall', ['shorewall']) == (
        "firewall_coexist: unknown firewall manager(s) 'shorewall'; choose from firewalld, ufw")


def test_unknown_role():
    with pytest.raises(ValueError):
        m.check([], 'other', [])
