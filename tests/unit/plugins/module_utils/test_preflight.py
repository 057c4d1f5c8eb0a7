# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight module's reads and the order of its refusals (module_utils/_preflight.py).

The module runs with a stand-in AnsibleModule class; the host state it reads
(/proc, ufw's configuration, /run/systemd/system, the sysctls) is a scratch
directory tree, so every combination can be shown."""
import os
import re

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _preflight as pf


class Done(Exception):
    pass


class FakeModule(object):
    params = None

    def __init__(self, argument_spec, supports_check_mode):
        assert supports_check_mode
        params = dict((name, spec.get('default')) for name, spec in argument_spec.items())
        params.update(FakeModule.params)
        self.params = params

    def get_bin_path(self, name):
        return None

    def exit_json(self, **result):
        raise Done(dict(result, failed=False))

    def fail_json(self, **result):
        raise Done(dict(result, failed=True))


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A scratch host: /proc with one sshd, no ufw, no systemd, /proc/sys with two sysctls."""
    proc = tmp_path / 'proc'
    (proc / '1').mkdir(parents=True)
    (proc / '1' / 'comm').write_text('sshd\n')
    (proc / 'self').mkdir()
    sys_dir = proc / 'sys' / 'net' / 'ipv4'
    sys_dir.mkdir(parents=True)
    (sys_dir / 'ip_forward').write_text('0\n')
    netfilter = proc / 'sys' / 'net' / 'netfilter'
    netfilter.mkdir()
    (netfilter / 'nf_conntrack_max').write_text('65536\n')
    os.chmod(str(netfilter / 'nf_conntrack_max'), 0o444)
    monkeypatch.setattr(pf, 'UFW_CONF', str(tmp_path / 'etc' / 'ufw' / 'ufw.conf'))
    monkeypatch.setattr(pf, 'SYSTEMD_DIR', str(tmp_path / 'run' / 'systemd' / 'system'))
    real_names = pf.process_names
    monkeypatch.setattr(pf, 'process_names', lambda: real_names(str(proc)))
    monkeypatch.setattr(pf, 'sysctl_path', lambda name: str(proc / 'sys' / name.replace('.', '/')))
    # root may write a 0444 file; /proc/sys does not let it: the stand-in is os.access on the mode bits
    monkeypatch.setattr(pf.os, 'access', lambda path, mode: bool(os.stat(path).st_mode & 0o200))
    return tmp_path


def run(**params):
    FakeModule.params = params
    with pytest.raises(Done) as done:
        pf.run_module(FakeModule)
    return done.value.args[0]


def test_a_plain_host_without_systemd(host):
    result = run(role='firewall', persist=False, host='gw')
    assert result == dict(changed=False, failed=False, managers=[], systemd=False, sysctls={}, sysctl_changes=[])


def test_persistence_without_systemd_is_refused_then_allowed_where_systemd_runs(host):
    result = run(role='firewall', host='gw')
    assert result['failed'] and result['msg'].startswith('gw: firewall_persist is true, but systemd is not running')
    (host / 'run' / 'systemd' / 'system').mkdir(parents=True)
    result = run(role='firewall', host='gw')
    assert not result['failed'] and result['systemd'] is True


def test_a_firewall_manager_is_refused_first_unless_accepted(host):
    (host / 'proc' / '1' / 'comm').write_text('firewalld\n')
    result = run(role='nat_gateway', host='gw')
    assert result['failed'] and result['msg'].startswith('gw: firewalld manages this firewall too')
    assert result['managers'] == [{'manager': 'firewalld', 'evidence': ['a firewalld process runs']}]
    result = run(role='nat_gateway', host='gw', coexist=['firewalld'])
    assert result['msg'].startswith('gw: nat_gateway_persist is true')
    (host / 'etc' / 'ufw').mkdir(parents=True)
    (host / 'etc' / 'ufw' / 'ufw.conf').write_text('ENABLED=yes\n')
    result = run(role='nat_gateway', host='gw', coexist=['firewalld'], persist=False)
    assert result['msg'].startswith('gw: ufw manages this firewall too (ufw: /etc/ufw/ufw.conf says ENABLED=yes)')


def test_sysctls_read_changed_and_refused(host):
    result = run(role='nat_gateway', persist=False, host='gw', sysctls={'net.ipv4.ip_forward': 1})
    assert not result['failed']
    assert result['sysctls'] == {'net.ipv4.ip_forward': {'value': '0', 'writable': True}}
    assert result['sysctl_changes'] == ['net.ipv4.ip_forward']
    result = run(role='nat_gateway', persist=False, host='gw', sysctls={'net.netfilter.nf_conntrack_max': 65536})
    assert not result['failed'] and result['sysctl_changes'] == []
    result = run(role='nat_gateway', persist=False, host='gw', sysctls={'net.netfilter.nf_conntrack_max': 262144})
    assert result['failed'] and result['msg'].startswith(
        'nat_gateway_conntrack_max: net.netfilter.nf_conntrack_max is read-only on gw (the role would change it to 262144)')
    result = run(role='nat_gateway', persist=False, host='gw', sysctls={'net.netfilter.nf_conntrack_udp_timeout': 60})
    assert result['failed'] and 'no such sysctl on gw' in result['msg']
    assert result['sysctls'] == {'net.netfilter.nf_conntrack_udp_timeout': {'value': None, 'writable': False}}


@pytest.mark.parametrize('params, expect', [
    (dict(role='firewall', sysctls={'net.ipv4.ip_forward': 1}), '^sysctls: only the nat_gateway role sets sysctls'),
    (dict(role='nat_gateway', sysctls={'../../etc/passwd': 1}), "^sysctls: '../../etc/passwd' is not a sysctl name"),
    (dict(role='nat_gateway', sysctls={'net/ipv4': 1}), "^sysctls: 'net/ipv4' is not a sysctl name"),
])
def test_bad_sysctl_names_are_refused_before_anything_is_read(host, params, expect):
    result = run(persist=False, **params)
    assert result['failed']
    assert re.match(expect, result["msg"])
    assert 'managers' not in result


def test_process_names_of_this_machine_are_read():
    names = pf.process_names().splitlines()
    assert names == sorted(set(names)) and names
