# SPDX-License-Identifier: GPL-3.0-or-later
"""ruleset's preflight and persist options (issue 14: the firewall role's host part in one module run), against
the kernel of a namespace of its own.

The real ruleset module runs the preflight module's checks before reading or
changing any rule: a refusal (the SSH guard, persistence without systemd, a
sysctl) changes nothing and says why; an accepted run applies the rules and
returns what the checks read. The guard evaluates the task's own policies and
chains. persist writes the boot-time restore after the rules, under a root of
the test's own (never this machine's /etc), byte for byte what boot_restore
writes from the same model.
"""
import os
import sys

from netns_lab import COLLECTIONS

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
from ansible_collections.stateful.netfilter.plugins.module_utils import _firewall_plan as fp  # noqa: E402

CLIENT = '10.98.0.2'


def firewall_args(allow_from, **preflight):
    model = fp.plan(dict(firewall_families=['ipv4'],
                         firewall_input_allow=[dict(name='ssh', port=22, sources=[allow_from])]))
    checks = dict(role='firewall', persist=False, host='gw', ssh_guard=True, families=['ipv4'],
                  ssh_connection='%s 40022 10.98.0.1 22' % CLIENT)
    checks.update(preflight)
    return dict(table='filter', family=model['family'], scope='FW', state='overridden', policies=model['policies'],
                chains=model['chains'], preflight=checks)


def owned(lab):
    return [line for line in lab.save().splitlines() if 'SNF-FW' in line or line.startswith(':INPUT')]


def test_the_guard_refuses_before_any_change_then_accepts(lab):
    lab.link('peer', '10.98.0.1', CLIENT)  # the route to the client (the guard reads its interface)
    before = owned(lab)
    refused = lab.module('ruleset', firewall_args('192.0.2.0/24'))
    assert refused.get('failed'), refused
    assert refused['msg'].startswith('firewall_ssh_guard: refusing to apply; a new SSH connection from %s' % CLIENT)
    assert refused['preflight']['ssh']['accepted'] is False
    assert refused.get('changed') is False and 'restore' not in refused
    assert owned(lab) == before  # nothing was applied

    # Check mode, then the real run: the same verdict, the checks' reads in the result, the rules in place.
    predicted = lab.module('ruleset', dict(firewall_args(CLIENT + '/32'), _ansible_check_mode=True))
    applied = lab.module('ruleset', firewall_args(CLIENT + '/32'))
    for result in (predicted, applied):
        assert not result.get('failed'), result
        assert result['changed'] is True
        assert result['preflight']['ssh']['accepted'] is True
        assert result['preflight']['ssh']['decided_by'] == 'SNF-FW-INPUT rule allow:ssh'
        assert result['preflight']['managers'] == [] and result['preflight']['sysctl_changes'] == []
    assert predicted['restore'] == applied['restore']
    assert any(line.startswith(':INPUT DROP') for line in owned(lab))
    again = lab.module('ruleset', firewall_args(CLIENT + '/32'))
    assert again['changed'] is False and again['preflight']['ssh']['accepted'] is True


def test_other_refusals_name_the_variable_and_change_nothing(lab):
    lab.link('peer', '10.98.0.1', CLIENT)
    before = owned(lab)
    # The lab's namespace has no systemd of its own (/run is a tmpfs of the lab).
    refused = lab.module('ruleset', firewall_args(CLIENT + '/32', persist=True))
    assert refused.get('failed') and 'firewall_persist is true, but systemd is not running' in refused['msg']
    assert refused['preflight']['systemd'] is False
    wrong = lab.module('ruleset', firewall_args(CLIENT + '/32', sysctls={'net.ipv4.ip_forward': 1}))
    assert wrong.get('failed') and wrong['msg'] == 'sysctls: only the nat_gateway role sets sysctls, got role firewall'
    unknown = lab.module('ruleset', firewall_args(CLIENT + '/32', colour='red'))
    assert unknown.get('failed') and 'colour' in unknown['msg']
    assert owned(lab) == before


def test_nat_gateway_checks_sysctls_and_owned_tables(lab):
    args = dict(table='nat', family='both', scope='GW', state='overridden', chains=[dict(
        name='SNF-GW-POST', hook='POSTROUTING', rules=[dict(name='masq', out_interface='eth9', jump='MASQUERADE')])],
        preflight=dict(role='nat_gateway', persist=False, host='gw', scope='GW', owned_tables=['raw', 'mangle'],
                       sysctls={'net.ipv4.ip_forward': 1, 'net.ipv4.no_such_thing': 1}))
    refused = lab.module('ruleset', args)
    assert refused.get('failed') and 'net.ipv4.no_such_thing' in refused['msg'], refused
    assert 'SNF-GW' not in lab.save('nat')
    args['preflight']['sysctls'] = {'net.ipv4.ip_forward': 1}
    applied = lab.module('ruleset', args)
    assert applied['changed'] is True, applied
    assert applied['preflight']['owned'] == dict(raw=False, mangle=False)
    assert list(applied['preflight']['sysctls']) == ['net.ipv4.ip_forward']
    assert '-A SNF-GW-POST' in lab.save('nat')


def test_persist_writes_the_boot_time_restore_boot_restore_writes(lab):
    """persist: the firewall role's files from the task's own model, in the same run, byte for byte what the
    boot_restore module writes from the same model; check mode predicts, a re-run changes nothing, absent
    removes them."""
    lab.link('peer', '10.98.0.1', CLIENT)
    root, reference = lab.tmp + '/root', lab.tmp + '/reference'
    args = dict(firewall_args(CLIENT + '/32'), persist=dict(role='firewall', root=root))
    predicted = lab.module('ruleset', dict(args, _ansible_check_mode=True, _ansible_diff=True))
    applied = lab.module('ruleset', dict(args, _ansible_diff=True))
    for result in (predicted, applied):
        assert result['changed'] is True, result
        assert sorted(result['persisted']['changes']) == [
            '/etc/stateful-netfilter/firewall.ipv4.rules', '/etc/systemd/system/multi-user.target.wants/snf-firewall.service',
            '/etc/systemd/system/snf-firewall.service', '/usr/local/sbin/snf-firewall-restore']
        assert [entry['after_header'] for entry in result['diff']][-3:] == [
            '/etc/stateful-netfilter/firewall.ipv4.rules', '/etc/systemd/system/snf-firewall.service',
            '/usr/local/sbin/snf-firewall-restore']
    model = dict((key, args[key]) for key in ('family', 'policies', 'chains'))
    written = lab.module('boot_restore', dict(role='firewall', tables=[model], root=reference))
    assert written['changed'] is True
    assert written['changes'] == applied['persisted']['changes']
    for path in applied['persisted']['changes']:
        if os.path.islink(root + path):
            assert os.readlink(root + path) == os.readlink(reference + path), path
            continue
        with open(root + path, 'rb') as mine, open(reference + path, 'rb') as theirs:
            assert mine.read() == theirs.read(), path
        assert os.stat(root + path).st_mode == os.stat(reference + path).st_mode, path
    # Only the files changed: the rules are in place, the files are not.
    os.unlink(root + '/usr/local/sbin/snf-firewall-restore')
    again = lab.module('ruleset', args)
    assert again['changed'] is True and again['persisted']['changes'] == {
        '/usr/local/sbin/snf-firewall-restore': 'created'}
    assert again['restore'] == dict(ipv4='', ipv6='') or not any(again['restore'].values())
    unchanged = lab.module('ruleset', args)
    assert unchanged['changed'] is False and unchanged['persisted'] == dict(changed=False, changes={},
                                                                            daemon_reload=False)
    removed = lab.module('ruleset', dict(args, persist=dict(role='firewall', state='absent', root=root)))
    assert removed['changed'] is True and set(removed['persisted']['changes'].values()) == {'removed'}
    assert not os.path.exists(root + '/etc/stateful-netfilter/firewall.ipv4.rules')


def test_persist_is_refused_where_the_restore_would_not_hold_the_scope(lab):
    args = dict(firewall_args(CLIENT + '/32'), persist=dict(role='firewall', root=lab.tmp + '/root'))
    for wrong, words in ((dict(state='merged'), 'needs state overridden'), (dict(scope='GW'), 'scope FW, got table'),
                         (dict(table='nat', policies={}), 'filter table of the scope FW')):
        refused = lab.module('ruleset', dict(args, **wrong))
        assert refused.get('failed') and refused['param'] == 'persist' and words in refused['msg'], refused
    assert not os.path.exists(lab.tmp + '/root')
