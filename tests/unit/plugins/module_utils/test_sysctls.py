# SPDX-License-Identifier: GPL-3.0-or-later
"""The sysctls module (module_utils/_sysctls.py) against a scratch /proc/sys and /etc/sysctl.d."""
import os
import re

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _sysctls
from stand_in import StandInModule, run as run_module


class FakeModule(StandInModule):
    pass


@pytest.fixture
def host(tmp_path, monkeypatch):
    proc = tmp_path / 'proc' / 'sys'
    for name, value, mode in (('net/ipv4/ip_forward', '0\n', 0o644),
                              ('net/ipv4/tcp_rmem', '4096\t131072\t6291456\n', 0o644),
                              ('net/netfilter/nf_conntrack_max', '65536\n', 0o444)):
        (proc / name).parent.mkdir(parents=True, exist_ok=True)
        (proc / name).write_text(value)
        os.chmod(str(proc / name), mode)
    monkeypatch.setattr(_sysctls, 'sysctl_path', lambda name: str(proc / name.replace('.', '/')))
    monkeypatch.setattr(_sysctls.os, 'access', lambda path, mode: bool(os.stat(path).st_mode & 0o200))
    return tmp_path


def run(host, check_mode=False, **params):
    return run_module(_sysctls.run_module, FakeModule, check_mode,
                      file=str(host / 'etc' / 'sysctl.d' / '60-test.conf'), **params)


def live(host, name):
    return (host / 'proc' / 'sys' / name.replace('.', '/')).read_text()


def test_only_differing_values_are_written_and_the_file_holds_them_all(host):
    values = {'net.ipv4.ip_forward': 1, 'net.ipv4.tcp_rmem': '4096 131072  6291456',
              'net.netfilter.nf_conntrack_max': 65536}
    predicted = run(host, check_mode=True, values=values)
    assert predicted['changes'] == {'net.ipv4.ip_forward': {'before': '0', 'after': '1'}} and predicted['file_changed']
    assert live(host, 'net.ipv4.ip_forward') == '0\n' and not (host / 'etc').exists()
    result = run(host, values=values)
    assert result['changes'] == predicted['changes'] and result['changed']
    assert live(host, 'net.ipv4.ip_forward') == '1\n'
    assert (host / 'etc' / 'sysctl.d' / '60-test.conf').read_text() == (
        _sysctls.HEADER + 'net.ipv4.ip_forward = 1\nnet.ipv4.tcp_rmem = 4096 131072 6291456\n'
        'net.netfilter.nf_conntrack_max = 65536\n')
    again = run(host, values=values)
    assert again['changed'] is False and again['changes'] == {} and again['file_changed'] is False
    gone = run(host, values={})
    assert gone['changed'] and not (host / 'etc' / 'sysctl.d' / '60-test.conf').exists()


@pytest.mark.parametrize('values, expect', [
    ({'net.ipv4.no_such': 1}, r'^values: no such sysctl on this host: net\.ipv4\.no_such \('),
    ({'net.netfilter.nf_conntrack_max': 262144}, r'^values: read-only on this host: net\.netfilter\.nf_conntrack_max'),
    ({'../../etc/passwd': 1}, r"^values: '\.\./\.\./etc/passwd' is not a sysctl name"),
    ({'net..ipv4': 1}, r"^values: 'net\.\.ipv4' is not a sysctl name"),
    ({'net.ipv4.ip_forward': [1]}, r'^values\.net\.ipv4\.ip_forward: must be a number or a string'),
])
def test_bad_values_are_refused_before_any_change(host, values, expect):
    result = run(host, values=dict(values, **{'net.ipv4.tcp_rmem': 1}))
    assert result['failed'] and re.match(expect, result['msg'])
    assert live(host, 'net.ipv4.tcp_rmem') == '4096\t131072\t6291456\n' and not (host / 'etc').exists()


@pytest.mark.parametrize('check_mode', [True, False])
def test_ruleset_sets_them_after_its_rules_as_the_module_does(host, check_mode):
    """ruleset's sysctls step (the nat_gateway role's translations) gives what the sysctls module gives."""
    values = {'net.ipv4.ip_forward': 1}
    path = str(host / 'etc' / 'sysctl.d' / '60-test.conf')
    module = FakeModule(_sysctls.ARGUMENT_SPEC, True)
    module.params = dict(sysctls=dict(values=values, file=path))
    module.check_mode = check_mode
    reference = run(host, check_mode=True, values=values)
    result = dict(changed=False)
    _sysctls.after_ruleset(module, result)
    assert result['sysctls'] == dict((key, reference[key]) for key in ('changed', 'changes', 'file_changed'))
    assert result['changed'] is True and result['diff'] == reference['diff']
    assert live(host, 'net.ipv4.ip_forward') == ('0\n' if check_mode else '1\n')
    armed = dict(changed=True, rollback=dict(id='ab12', armed=True))
    _sysctls.after_ruleset(module, armed)
    assert armed['sysctls'] == dict(deferred=True)


@pytest.mark.parametrize('values, expect', [
    ({'net.ipv4.no_such': 1}, 'sysctls.values: no such sysctl on this host'),
    ({'net.netfilter.nf_conntrack_max': 262144}, 'sysctls.values: read-only on this host'),
    ({'net.ipv4.ip_forward': [1]}, 'sysctls.values.net.ipv4.ip_forward: must be a number or a string'),
])
def test_ruleset_refuses_them_before_any_rule(host, values, expect):
    assert _sysctls.planned(values, 'sysctls.values')[0].startswith(expect)
    assert live(host, 'net.ipv4.ip_forward') == '0\n'
