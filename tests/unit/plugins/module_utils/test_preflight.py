# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight module's reads and the order of its refusals (module_utils/_preflight.py).

The module runs with a stand-in AnsibleModule class; the host state it reads
(/proc, ufw's configuration, /run/systemd/system, the sysctls) is a scratch
directory tree, so every combination can be shown."""
import os
import re

import pytest

import stand_in
from stand_in import StandInModule

from ansible_collections.stateful.netfilter.plugins.module_utils import _nat_plan as npl, _preflight as pf, _sysctls


class FakeModule(StandInModule):
    pass


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
    monkeypatch.setattr(_sysctls, 'sysctl_path', lambda name: str(proc / 'sys' / name.replace('.', '/')))
    # root may write a 0444 file; /proc/sys does not let it: the stand-in is os.access on the mode bits
    monkeypatch.setattr(pf.os, 'access', lambda path, mode: bool(os.stat(path).st_mode & 0o200))
    return tmp_path


def run(module_class=FakeModule, **params):
    return stand_in.run(pf.run_module, module_class, **params)


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


def test_ssh_connection_is_the_modules_own_or_the_nearest_ancestors(tmp_path):
    proc = tmp_path / 'proc'
    for pid, parent, environ in ((300, 200, b'PATH=/usr/bin\0HOME=/root\0'),
                                 (200, 100, b'USER=admin\0SSH_CONNECTION=192.0.2.7 40022 192.0.2.1 22\0'),
                                 (100, 1, b'SSH_CONNECTION=198.51.100.9 1 198.51.100.1 22\0')):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / 'environ').write_bytes(environ)
        (proc / str(pid) / 'status').write_text('Name:\tsh\nPPid:\t%d\n' % parent)
    assert pf.ssh_connection({'SSH_CONNECTION': '203.0.113.8 1 203.0.113.1 22'}, str(proc), 300) == \
        '203.0.113.8 1 203.0.113.1 22'
    # sudo reset the environment: the shell sshd started (pid 200) still has it, the nearer one wins
    assert pf.ssh_connection({}, str(proc), 300) == '192.0.2.7 40022 192.0.2.1 22'
    (proc / '200' / 'environ').write_bytes(b'USER=admin\0')
    assert pf.ssh_connection({}, str(proc), 300) == '198.51.100.9 1 198.51.100.1 22'
    # a process gone, or none with it: no SSH connection
    assert pf.ssh_connection({}, str(proc), 999) == ''
    (proc / '100' / 'environ').write_bytes(b'')
    assert pf.ssh_connection({}, str(proc), 300) == ''


GUARDED = dict(
    family='both', policies={'INPUT': 'DROP', 'OUTPUT': 'ACCEPT'},
    chains=[{'name': 'SNF-FW-INPUT', 'hook': 'INPUT', 'hook_position': 'first', 'rules': [
        {'name': 'established', 'ctstate': ['ESTABLISHED', 'RELATED'], 'jump': 'ACCEPT'},
        {'name': 'allow:web', 'protocol': 'tcp', 'destination_port': 443, 'jump': 'ACCEPT'}]}])


def with_rule(rule):
    model = dict(GUARDED, chains=[dict(GUARDED['chains'][0], rules=GUARDED['chains'][0]['rules'] + [rule])])
    return model


class RoutedModule(FakeModule):
    commands = []

    def get_bin_path(self, name, required=False):
        return '/usr/sbin/ip' if name == 'ip' else None  # no iptables-save: ufw is read from its configuration

    def run_command(self, argv, environ_update=None):
        RoutedModule.commands.append(argv)
        return 0, '%s dev eth1 src 192.0.2.1 uid 0\n    cache\n' % argv[-1], ''


def guard(**params):
    RoutedModule.commands = []
    return run(RoutedModule, **dict(dict(role='firewall', persist=False, host='gw', ssh_guard=True,
                                         ssh_connection='192.0.2.7 40022 192.0.2.1 22'), **params))


def test_the_ssh_guard_refuses_a_plan_that_drops_the_session_and_accepts_one_that_does_not(host):
    result = guard(model=GUARDED)
    assert result['failed'] and result['msg'].startswith(
        'firewall_ssh_guard: refusing to apply; a new SSH connection from 192.0.2.7 to port 22 (ipv4) would be '
        'dropped by the INPUT policy DROP')
    assert RoutedModule.commands == []
    result = guard(model=with_rule({'name': 'allow:ssh', 'protocol': 'tcp', 'destination_port': 22,
                                    'jump': 'ACCEPT'}))
    assert not result['failed'] and result['ssh']['accepted']
    assert result['ssh']['decided_by'] == 'SNF-FW-INPUT rule allow:ssh'


def test_the_ssh_guard_reads_the_route_only_when_an_interface_could_decide(host):
    for interface, accepted in (('eth1', True), ('eth0', False)):
        result = guard(model=with_rule({'name': 'allow:ssh', 'protocol': 'tcp', 'destination_port': 22,
                                        'in_interface': interface, 'jump': 'ACCEPT'}))
        assert RoutedModule.commands == [['/usr/sbin/ip', 'route', 'get', '192.0.2.7']]
        assert result['failed'] is not accepted


def test_the_ssh_guard_without_a_session_or_family_checks_nothing(host, monkeypatch):
    monkeypatch.setattr(pf, 'ssh_connection', lambda: '')  # none given, none found on the host
    result = guard(model=GUARDED, ssh_connection=None, families=['ipv4'])
    assert not result['failed'] and result['ssh']['checked'] is False
    result = guard(model=GUARDED, ssh_connection='2001:db8::7 40022 2001:db8::1 22', families=['ipv4'])
    assert not result['failed'] and result['ssh']['accepted']


@pytest.mark.parametrize('params, expect', [
    (dict(model=None), '^model: with ssh_guard, the planned model'),
    (dict(model={'chains': []}), '^model: with ssh_guard, the planned model'),
    (dict(model=GUARDED, role='nat_gateway'), '^ssh_guard: only the firewall role has an SSH guard'),
])
def test_the_ssh_guard_refuses_what_it_cannot_check(host, params, expect):
    result = guard(**params)
    assert result['failed'] and re.match(expect, result['msg'])


class SavingModule(FakeModule):
    """iptables-save prints SNF-GW-* chains in the mangle table of IPv6 only; nft lists one owned table."""
    commands = []
    saved = {'iptables-save': '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n',
             'ip6tables-save': '*mangle\n:PREROUTING ACCEPT [0:0]\n:SNF-GW-MSS - [0:0]\nCOMMIT\n'}
    nft = 'table ip filter\ntable inet snf_nat_GW\ntable inet firewalld\n'

    def get_bin_path(self, name, required=False):
        return '/usr/sbin/' + name if name in ('iptables-save', 'ip6tables-save', 'nft') else None

    def run_command(self, argv, environ_update=None):
        SavingModule.commands.append(argv)
        command = os.path.basename(argv[0])
        if command == 'nft':
            return 0, SavingModule.nft, ''
        return 0, SavingModule.saved[command], ''


def test_owned_tables_are_found_on_either_back_end_and_a_bad_scope_is_refused(host):
    params = dict(role='nat_gateway', persist=False, host='gw', scope='GW', owned_tables=['nat', 'raw', 'mangle'])
    SavingModule.commands = []
    result = run(SavingModule, **params)
    assert result['owned'] == {'nat': True, 'raw': False, 'mangle': True}
    # One iptables-save per family (no -t: no table is loaded to be listed) serves the managers' check too.
    assert SavingModule.commands == [['/usr/sbin/iptables-save'], ['/usr/sbin/ip6tables-save'],
                                     ['/usr/sbin/nft', 'list', 'tables']]
    for scope, expect in ((None, '^scope: required with owned_tables'), ('G-W', '^scope: .G-W. is not a scope')):
        params['scope'] = scope
        result = run(SavingModule, **params)
        assert result['failed'] and re.match(expect, result['msg'])


# ---------------------------------------------------------------------------
# Sysctls the nat_gateway role sets (sysctl_check)

SYSCTLS = {'net.ipv4.ip_forward': 1, 'net.netfilter.nf_conntrack_max': 262144,
           'net.netfilter.nf_conntrack_udp_timeout': 60}


def test_sysctl_changes():
    current = {'net.ipv4.ip_forward': '1', 'net.netfilter.nf_conntrack_max': '65536',
               'net.netfilter.nf_conntrack_udp_timeout': '30'}
    assert pf.sysctl_check(SYSCTLS, current, dict.fromkeys(SYSCTLS, True)) == dict(
        message='', changes=['net.netfilter.nf_conntrack_max', 'net.netfilter.nf_conntrack_udp_timeout'])
    assert pf.sysctl_check({}, {}, {}) == dict(changes=[], message='')


def test_a_missing_sysctl_is_refused_naming_its_variable():
    current = {'net.ipv4.ip_forward': '1', 'net.netfilter.nf_conntrack_max': '65536'}
    assert pf.sysctl_check(SYSCTLS, current, dict.fromkeys(current, True), host='gw')['message'] == (
        'nat_gateway_conntrack_timeouts: net.netfilter.nf_conntrack_udp_timeout: no such sysctl on gw '
        '(/proc/sys/net/netfilter/nf_conntrack_udp_timeout), the role cannot set it. Nothing was changed.')


def test_a_read_only_sysctl_to_change_is_refused_naming_its_variable():
    current = {'net.ipv4.ip_forward': '0', 'net.netfilter.nf_conntrack_max': '65536',
               'net.netfilter.nf_conntrack_udp_timeout': '60'}
    writable = {'net.ipv4.ip_forward': True}
    assert pf.sysctl_check(SYSCTLS, current, writable, 'edge1')['message'] == (
        "nat_gateway_conntrack_max: net.netfilter.nf_conntrack_max is read-only on edge1 (the role would change it "
        "to 262144). Inside a container's network namespace the kernel keeps nf_conntrack_max global: set it on the "
        "host, or leave the variable unset. Nothing was changed.")
    current['net.netfilter.nf_conntrack_udp_timeout'] = '30'
    assert pf.sysctl_check(SYSCTLS, current, {})['message'].startswith(
        'nat_gateway_forwarding: net.ipv4.ip_forward; nat_gateway_conntrack_max: net.netfilter.nf_conntrack_max; '
        'nat_gateway_conntrack_timeouts: net.netfilter.nf_conntrack_udp_timeout is read-only on the host '
        '(the role would change it to 1, 262144, 60).')
    # a read-only sysctl that keeps its value is no reason to refuse
    current = {'net.ipv4.ip_forward': '1', 'net.netfilter.nf_conntrack_max': '262144',
               'net.netfilter.nf_conntrack_udp_timeout': '60'}
    assert pf.sysctl_check(SYSCTLS, current, {}) == dict(changes=[], message='')


def test_conntrack_accounting_is_a_sysctl_of_its_own_variable():
    assert 'net.netfilter.nf_conntrack_acct' not in npl.plan({})['sysctls']
    assert npl.plan(dict(nat_gateway_conntrack_accounting=True))['sysctls']['net.netfilter.nf_conntrack_acct'] == 1
    assert npl.plan(dict(nat_gateway_conntrack_accounting=False))['sysctls']['net.netfilter.nf_conntrack_acct'] == 0
    with pytest.raises(npl.PlanError, match='^nat_gateway_conntrack_accounting: expected true, false or null, got "yes"'):
        npl.plan(dict(nat_gateway_conntrack_accounting='yes'))
    message = pf.sysctl_check({'net.netfilter.nf_conntrack_acct': 1}, {'net.netfilter.nf_conntrack_acct': '0'}, {},
                              'gw')['message']
    assert message.startswith('nat_gateway_conntrack_accounting: net.netfilter.nf_conntrack_acct is read-only on gw')
