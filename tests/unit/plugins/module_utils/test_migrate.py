# SPDX-License-Identifier: GPL-3.0-or-later
"""ruleset migrate with the commands replaced: the order of the two back ends, check mode, the undo on a
failure, and the hosts that have nothing to migrate (no nft, an nft that cannot talk to the kernel, a kernel
without legacy xtables). The packets are in tests/netns/test_migrate_backends.py."""
import os

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _engine

from test_rules_engine import Failed, FakeModule, ruleset_params, run

LISTING = 'table inet snf_filter_FW {\n}\n'
REFUSED = 'iptables-legacy-save v1.8.9 (legacy): iptables who? (do you need to insmod?)\n'


class MigrateModule(FakeModule):
    """FakeModule that also answers nft (the owned table as `listing`, '' when absent) and can select legacy
    iptables on a kernel that refuses it."""

    def __init__(self, params, listing=LISTING, nft_version='nftables v1.0.6 (Lester Gooch #5)',
                 nft_fail=False, legacy=False, **kwargs):
        super(MigrateModule, self).__init__(params, **kwargs)
        self.listing = listing
        self.nft_version = nft_version
        self.nft_fail = nft_fail
        self.legacy = legacy

    def run_command(self, cmd, data=None, binary_data=False, environ_update=None):
        name = os.path.basename(cmd[0])
        if name == 'nft':
            self.calls.append((cmd, data))
            if cmd[1:] == ['--version']:
                return 0, self.nft_version + '\n', ''
            if cmd[1:] == ['list', 'tables']:
                return 0, '', ''
            if 'list' in cmd:
                return (0, self.listing, '') if self.listing else (1, '', 'Error: No such file or directory\n')
            if self.nft_fail and '-c' not in cmd:
                return 1, '', 'Error: Could not process rule: Device or resource busy\n'
            return 0, '', ''
        if self.legacy and cmd[1:] == ['--version']:
            self.calls.append((cmd, data))
            return 0, 'iptables v1.8.9 (legacy)\n', ''
        if self.legacy and '-legacy-save' in name:
            self.calls.append((cmd, data))
            return 4, '', REFUSED
        return super(MigrateModule, self).run_command(cmd, data, binary_data, environ_update)

    def applied(self):
        """What changed the host, in order: restores (not --test) and nft -f (not -c)."""
        return [os.path.basename(cmd[0]) for cmd, data in self.calls
                if (cmd[0].endswith('-restore') and '--test' not in cmd)
                or (os.path.basename(cmd[0]) == 'nft' and '-f' in cmd and '-c' not in cmd)]


def migrate_params(**overrides):
    overrides.setdefault('family', 'both')
    return ruleset_params(migrate=True, **overrides)


def test_to_iptables_the_chains_go_in_first_then_the_table_goes():
    module = MigrateModule(migrate_params(), diff=True)
    result = run(_engine.run_ruleset, module).result
    assert result['changed'] is True and result['migrated']['changed'] is True, result
    assert result['migrated']['nft'] == 'table inet snf_filter_FW\ndelete table inet snf_filter_FW\n'
    assert module.applied() == ['iptables-nft-restore', 'ip6tables-nft-restore', 'nft'], module.calls
    assert result['diff'][-1] == dict(before=LISTING, after='', before_header='inet snf_filter_FW (before)',
                                      after_header='inet snf_filter_FW (after)')
    # The nft transaction was checked before anything was applied.
    names = [(os.path.basename(cmd[0]), '-c' in cmd or '--test' in cmd) for cmd, data in module.calls
             if cmd[0].endswith('-restore') or (os.path.basename(cmd[0]) == 'nft' and '-f' in cmd)]
    assert names.index(('nft', True)) < names.index(('iptables-nft-restore', False))


def test_check_mode_predicts_the_migration_and_changes_nothing():
    module = MigrateModule(migrate_params(), check_mode=True, diff=True)
    check = run(_engine.run_ruleset, module).result
    real = run(_engine.run_ruleset, MigrateModule(migrate_params(), diff=True)).result
    assert module.applied() == [] and check['changed'] is True
    assert check['diff'] == real['diff'] and check['migrated'] == real['migrated']


def test_only_the_other_back_end_holds_the_scope_still_a_change():
    # The chains are in place already when the fixture holds them; here the wanted state is what the table
    # has: deleting a scope that iptables does not hold, while nftables does.
    module = MigrateModule(migrate_params(state='deleted', scope='NONE', chains=[], policies={}),
                           listing='table inet snf_filter_NONE {\n}\n')
    result = run(_engine.run_ruleset, module).result
    assert result['changed'] is True and result['restore'] == {'ipv4': '', 'ipv6': ''}, result
    assert module.applied() == ['nft']


def test_a_failed_removal_puts_the_chains_back():
    module = MigrateModule(migrate_params(), nft_fail=True)
    failed = run(_engine.run_ruleset, module)
    assert isinstance(failed, Failed) and failed.result['msg'].startswith('migrate: nft -f failed')
    assert failed.result['rolled_back'] == ['ipv4', 'ipv6'], failed.result
    # Applied, then the nft attempt; the undo re-read both families (the fake's tables never change, so it
    # found nothing to put back).
    assert module.applied() == ['iptables-nft-restore', 'ip6tables-nft-restore', 'nft']
    last = [os.path.basename(cmd[0]) for cmd, data in module.calls][-2:]
    assert last == ['iptables-nft-save', 'ip6tables-nft-save']


@pytest.mark.parametrize('kwargs', [dict(listing=''), dict(nft_version='nftables v0.9.0 (Fearless Fosdick)')])
def test_nothing_to_migrate_without_the_table_or_with_an_nft_the_back_end_cannot_use(kwargs):
    module = MigrateModule(migrate_params(), **kwargs)
    result = run(_engine.run_ruleset, module).result
    assert result['migrated']['changed'] is False and 'nft' not in module.applied()


def test_no_nft_command_nothing_to_migrate():
    module = MigrateModule(migrate_params())
    module.get_bin_path = lambda name, required=False: None if name == 'nft' else '/usr/sbin/' + name
    assert run(_engine.run_ruleset, module).result['migrated']['changed'] is False


def test_a_kernel_without_legacy_xtables_has_no_iptables_side():
    module = MigrateModule(migrate_params(), legacy=True)
    side = _engine.IptablesSide(module, migrate_params(), 'filter', 'SNF-FW-', ['ipv4', 'ipv6'])
    assert side.changed is False and side.apply() is None and side.result()['restore'] == {}


TWO_FAMILIES = ('table inet snf_filter_FW {\n\tchain ipv4.SNF-FW-INPUT {\n\t\taccept\n\t}\n\n'
                '\tchain ipv6.SNF-FW-INPUT {\n\t\taccept\n\t}\n}\n')


def test_one_family_removes_the_table_only_when_it_holds_nothing_of_the_other():
    ipv4 = migrate_params(family='ipv4', chains=[dict(name='SNF-FW-INPUT', hook='INPUT', rules=[
        dict(name='ssh', protocol='tcp', destination_port=22, jump='ACCEPT')])])
    ipv6_too = MigrateModule(ipv4, listing=TWO_FAMILIES)
    failed = run(_engine.run_ruleset, ipv6_too)
    assert isinstance(failed, Failed) and failed.result['param'] == 'migrate' and 'ipv6' in failed.result['msg']
    assert ipv6_too.applied() == []
    ipv4_only = TWO_FAMILIES.replace('\n\tchain ipv6.SNF-FW-INPUT {\n\t\taccept\n\t}\n', '')
    module = MigrateModule(ipv4, listing=ipv4_only)
    assert run(_engine.run_ruleset, module).result['migrated']['changed'] is True
    assert module.applied() == ['iptables-nft-restore', 'nft']


def test_gathered_is_unaffected():
    module = MigrateModule(migrate_params(state='gathered', family='ipv4'))
    result = run(_engine.run_ruleset, module).result
    assert 'migrated' not in result and module.applied() == []
