# SPDX-License-Identifier: GPL-3.0-or-later
"""The refusal of a boot-time restore that nothing would run, and the boot_restore module (module_utils/_persist.py)."""
import itertools
import os
import subprocess

import pytest
from stand_in import StandInModule, run

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


# ---------------------------------------------------------------------------
# The boot_restore module's files, written under a scratch root. The checks of
# the rules files (iptables-restore --test, nft -c) are a stand-in here that
# records the command; the lab runs the real ones (the gateway and boot
# scenarios restore from these files).

NAT = {'table': 'nat', 'family': 'both', 'chains': [
    {'name': 'SNF-GW-POST', 'hook': 'POSTROUTING', 'rules': [{'name': 'masq', 'out_interface': 'eth0', 'jump': 'MASQUERADE'}]}]}
FILTER = {'table': 'filter', 'family': 'both', 'chains': [
    {'name': 'SNF-GW-FORWARD', 'hook': 'FORWARD', 'rules': [
        {'name': 'established', 'ctstate': ['ESTABLISHED', 'RELATED'], 'jump': 'ACCEPT'}]}]}
EMPTY_RAW = {'table': 'raw', 'family': 'both', 'chains': []}


class FakeModule(StandInModule):
    refuse = False
    commands = []

    def run_command(self, argv, environ_update=None):
        FakeModule.commands.append(argv[:-1])
        assert os.path.exists(argv[-1])  # the scratch file is checked before it is renamed into place
        return (1, '', 'line 2 failed') if FakeModule.refuse else (0, '', '')


def boot_restore(root, check_mode=False, **params):
    FakeModule.commands = []
    return run(p.run_boot_restore, FakeModule, check_mode, root=str(root), **params)


def tree(root):
    found = {}
    for directory, dummy, names in os.walk(str(root)):
        for name in names:
            path = os.path.join(directory, name)
            key = '/' + os.path.relpath(path, str(root))
            found[key] = os.readlink(path) if os.path.islink(path) else oct(os.stat(path).st_mode & 0o777)
    return found


RULES = '/etc/stateful-netfilter/nat_gateway.%s'
UNIT = '/etc/systemd/system/snf-nat-gateway.service'
LINK = '/etc/systemd/system/multi-user.target.wants/snf-nat-gateway.service'
SCRIPT = '/usr/local/sbin/snf-nat-gateway-restore'


def test_iptables_files_hold_every_table_per_family_and_a_rerun_changes_nothing(tmp_path):
    result = boot_restore(tmp_path, role='nat_gateway', tables=[NAT, FILTER, EMPTY_RAW])
    assert not result['failed'] and result['daemon_reload'] is False  # not reloaded under another root
    assert tree(tmp_path) == {RULES % 'ipv4.rules': '0o600', RULES % 'ipv6.rules': '0o600', SCRIPT: '0o755',
                              UNIT: '0o644', LINK: UNIT}
    assert sorted(result['changes'].values()) == ['created'] * 5
    assert FakeModule.commands == [['iptables-restore', '--test', '--noflush'],
                                   ['ip6tables-restore', '--test', '--noflush']]
    ipv4 = (tmp_path / (RULES % 'ipv4.rules').lstrip('/')).read_text()
    assert ipv4.startswith('*nat\n') and '\n*filter\n' in ipv4 and '*raw' not in ipv4
    assert '-A SNF-GW-POST -o eth0 -m comment --comment "snf:masq" -j MASQUERADE' in ipv4
    script = (tmp_path / SCRIPT.lstrip('/')).read_text()
    assert 'restore ip6tables /etc/stateful-netfilter/nat_gateway.ipv6.rules || status=1' in script
    assert "-A [A-Z]+ -j SNF-GW-[A-Za-z0-9_-]+" in script
    subprocess.check_call(['sh', '-n', str(tmp_path / SCRIPT.lstrip('/'))])
    unit = (tmp_path / UNIT.lstrip('/')).read_text()
    assert 'ExecStart=%s\n' % SCRIPT in unit and 'WantedBy=multi-user.target' in unit
    again = boot_restore(tmp_path, role='nat_gateway', tables=[NAT, FILTER, EMPTY_RAW])
    assert again['changed'] is False and again['changes'] == {} and FakeModule.commands == []


def test_check_mode_predicts_and_writes_nothing_and_a_refused_file_is_not_written(tmp_path):
    boot_restore(tmp_path, role='nat_gateway', tables=[NAT])
    before = (tmp_path / (RULES % 'ipv4.rules').lstrip('/')).read_text()
    predicted = boot_restore(tmp_path, check_mode=True, role='nat_gateway', tables=[NAT, FILTER])
    assert predicted['changes'] == {RULES % 'ipv4.rules': 'updated', RULES % 'ipv6.rules': 'updated'}
    assert (tmp_path / (RULES % 'ipv4.rules').lstrip('/')).read_text() == before
    FakeModule.refuse = True
    try:
        refused = boot_restore(tmp_path, role='nat_gateway', tables=[NAT, FILTER])
    finally:
        FakeModule.refuse = False
    assert refused['failed'] and refused['msg'].startswith(
        'iptables-restore --test --noflush refused the rules file for %s; nothing was written: line 2 failed'
        % (RULES % 'ipv4.rules'))
    assert (tmp_path / (RULES % 'ipv4.rules').lstrip('/')).read_text() == before
    assert not [name for name in os.listdir(str(tmp_path / 'etc' / 'stateful-netfilter')) if name.startswith('.')]


def test_switching_back_end_replaces_the_files_and_absent_removes_everything(tmp_path):
    older = tmp_path / 'etc' / 'stateful-netfilter' / 'nat_gateway.nat.ipv4.rules'  # one file per table, earlier
    older.parent.mkdir(parents=True)
    older.write_text('*nat\nCOMMIT\n')
    boot_restore(tmp_path, role='nat_gateway', tables=[NAT, FILTER])
    assert not older.exists()
    result = boot_restore(tmp_path, role='nat_gateway', backend='nftables', tables=[NAT, FILTER, EMPTY_RAW])
    assert result['changes'] == {RULES % 'ipv4.rules': 'removed', RULES % 'ipv6.rules': 'removed',
                                 RULES % 'nft': 'created', SCRIPT: 'updated', UNIT: 'updated'}
    assert FakeModule.commands == [['nft', '-c', '-f']]
    nft = (tmp_path / (RULES % 'nft').lstrip('/')).read_text()
    assert 'table inet snf_nat_GW\ndelete table inet snf_nat_GW\ntable inet snf_nat_GW {' in nft
    assert nft.rstrip().endswith('table inet snf_raw_GW\ndelete table inet snf_raw_GW')  # no raw rules: removed
    assert 'exec nft -f /etc/stateful-netfilter/nat_gateway.nft' in (tmp_path / SCRIPT.lstrip('/')).read_text()
    result = boot_restore(tmp_path, role='nat_gateway', state='absent')
    assert sorted(result['changes']) == sorted([RULES % 'nft', SCRIPT, UNIT, LINK])
    assert tree(tmp_path) == {}


def test_a_bad_model_is_refused_naming_the_table_and_nothing_is_written(tmp_path):
    bad = dict(FILTER, chains=[dict(FILTER['chains'][0], rules=[{'name': 'x', 'jump': 'ACCEPT', 'protocol': 'tcpp'}])])
    result = boot_restore(tmp_path, role='nat_gateway', tables=[NAT, bad])
    assert result['failed'] and result['msg'].startswith('tables[1].chains[0].rules[0].protocol')
    result = boot_restore(tmp_path, role='nat_gateway', tables=[dict(NAT, table='security')])
    assert result['failed'] and result['msg'].startswith('tables[0].table: must be one of filter, nat, raw, mangle')
    assert tree(tmp_path) == {}


# ---------------------------------------------------------------------------
# ruleset's persist option (after_ruleset): the same files from the task's own model, after its rules.

FW_CHAINS = [{'name': 'SNF-FW-INPUT', 'hook': 'INPUT', 'rules': [
    {'name': 'established', 'ctstate': ['ESTABLISHED', 'RELATED'], 'jump': 'ACCEPT'},
    {'name': 'ssh', 'protocol': 'tcp', 'destination_port': 22, 'jump': 'ACCEPT'}]}]


def ruleset_params(root, **changes):
    params = dict(table='filter', family='both', scope='FW', state='overridden', policies={'INPUT': 'DROP'},
                  chains=FW_CHAINS, backend='iptables', persist=dict(role='firewall', state='present', root=str(root)))
    params.update(changes)
    return params


GW_PERSIST = dict(role='nat_gateway', state='present', tables=[FILTER, EMPTY_RAW])


@pytest.mark.parametrize('changes, words', [
    (dict(), ''),
    (dict(state='merged'), 'persist: needs state overridden'),
    (dict(scope='GW'), 'holds the filter table of the scope FW, got table filter, scope GW'),
    (dict(table='nat'), 'holds the filter table of the scope FW, got table nat, scope FW'),
    (dict(persist=dict(role='firewall', state='present', tables=[NAT])), 'scope FW and persist.tables'),
    (dict(table='nat', scope='GW', chains=NAT['chains'], persist=GW_PERSIST), ''),
    (dict(table='nat', scope='FW', persist=GW_PERSIST), 'of the nat_gateway role holds the scope GW, got scope FW'),
    (dict(table='nat', scope='GW', persist=dict(GW_PERSIST, tables=[FILTER, NAT])),
     "persist.tables[1].table: one model per table other than the task's own"),
    (dict(table='nat', scope='GW', persist=dict(GW_PERSIST, tables=[dict(table='security')])),
     "persist.tables[0].table: one model per table other than the task's own"),
    (dict(table='nat', scope='GW', persist=dict(GW_PERSIST, tables=[dict(FILTER, chains=[
        dict(name='SNF-GW-FORWARD', rules=[dict(name='x', destination_port=80, jump='ACCEPT')])])])),
     'persist.tables[0].chains[0].rules[0].destination_port'),
])
def test_ruleset_persist_holds_the_roles_whole_scope(tmp_path, changes, words):
    message = p.check_ruleset_persist(ruleset_params(tmp_path, **changes))
    assert (words in message) if words else message == ''


@pytest.mark.parametrize('check_mode', [True, False])
def test_after_ruleset_writes_what_boot_restore_writes(tmp_path, check_mode):
    module = FakeModule(p.ARGUMENT_SPEC, True)
    module.params = ruleset_params(tmp_path / 'mine')
    module.check_mode = check_mode
    result = dict(changed=False, restore={'ipv4': '', 'ipv6': ''})
    p.after_ruleset(module, result)
    reference = boot_restore(tmp_path / 'theirs', check_mode, role='firewall', state='present', backend='iptables',
                             tables=[dict(family='both', policies={'INPUT': 'DROP'}, chains=FW_CHAINS)])
    assert result['changed'] is True  # only the files changed
    assert result['persisted'] == dict(changed=True, changes=reference['changes'], daemon_reload=False)
    assert result['diff'] == reference['diff']
    if not check_mode:
        assert tree(tmp_path / 'mine') == tree(tmp_path / 'theirs')
        again = dict(changed=False)
        p.after_ruleset(module, again)
        assert again == dict(changed=False, persisted=dict(changed=False, changes={}, daemon_reload=False), diff=[])
    else:
        assert not (tmp_path / 'mine').exists()


def test_after_ruleset_leaves_the_files_to_the_confirmation(tmp_path):
    module = FakeModule(p.ARGUMENT_SPEC, True)
    module.params = ruleset_params(tmp_path)
    result = dict(changed=True, rollback=dict(id='ab12', armed=True))
    p.after_ruleset(module, result)
    assert result['persisted'] == dict(deferred=True) and not tmp_path.joinpath('etc').exists()


def test_after_ruleset_writes_every_table_of_the_nat_gateway(tmp_path):
    """The nat_gateway role's translations call: its own nat model first, then persist.tables, as boot_restore
    writes them from the same list."""
    module = FakeModule(p.ARGUMENT_SPEC, True)
    module.params = dict(table='nat', family='both', scope='GW', state='overridden', policies=None,
                         chains=NAT['chains'], backend='iptables',
                         persist=dict(GW_PERSIST, root=str(tmp_path / 'mine')))
    module.check_mode = False
    result = dict(changed=False)
    p.after_ruleset(module, result)
    reference = boot_restore(tmp_path / 'theirs', role='nat_gateway', state='present', backend='iptables',
                             tables=[dict(NAT, policies={}), FILTER, EMPTY_RAW])
    assert result['persisted']['changes'] == reference['changes'] and result['changed']
    assert tree(tmp_path / 'mine') == tree(tmp_path / 'theirs')
    for family in ('ipv4', 'ipv6'):
        mine = (tmp_path / 'mine' / (RULES % (family + '.rules')).lstrip('/')).read_text()
        theirs = (tmp_path / 'theirs' / (RULES % (family + '.rules')).lstrip('/')).read_text()
        assert mine == theirs and mine.index('*nat') < mine.index('*filter')
