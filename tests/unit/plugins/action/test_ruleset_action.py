# SPDX-License-Identifier: GPL-3.0-or-later
"""The ruleset action's check of the shape of chains and rules (names the parameter)."""
import pytest

from ansible_collections.stateful.netfilter.plugins.action.ruleset import shape_error


@pytest.mark.parametrize('args, expected', [
    ({}, None),
    ({'chains': []}, None),
    ({'chains': [{'name': 'SNF-X', 'rules': [{'jump': 'ACCEPT'}]}]}, None),
    ({'chains': 'text'}, 'chains must be a list'),
    ({'chains': ['text']}, 'chains[0] must be a mapping'),
    ({'chains': [{'name': 'SNF-X', 'rules': 'text'}]}, 'chains[0].rules must be a list'),
    ({'chains': [{'name': 'SNF-X', 'rules': [{'jump': 'ACCEPT'}, 'text']}]}, 'chains[0].rules[1] must be a mapping'),
])
def test_shape_error(args, expected):
    error = shape_error(args)
    assert (error is None) if expected is None else error.startswith(expected)


class FakeShell(object):
    tmpdir = None


class FakeConnection(object):
    has_native_async = False
    _shell = FakeShell()

    def reset(self):
        self.resets = getattr(self, 'resets', 0) + 1


class FakeTask(object):
    async_val = 0

    def __init__(self, args):
        self.args = args


def action_run(monkeypatch, args, answers):
    """ActionModule.run with the module runs answered from answers (a list, in order); returns (result, calls)."""
    from ansible.plugins.action import ActionBase
    from ansible_collections.stateful.netfilter.plugins.action import ruleset as action

    calls = []

    def execute(self, module_name, module_args, task_vars, wrap_async=False):
        calls.append((module_name, module_args))
        return dict(answers.pop(0))

    monkeypatch.setattr(ActionBase, 'run', lambda self, tmp=None, task_vars=None: {})
    monkeypatch.setattr(action.ActionModule, '_execute_module', execute)
    monkeypatch.setattr(action.ActionModule, '_remove_tmp_path', lambda self, path: None)
    plugin = action.ActionModule.__new__(action.ActionModule)
    plugin._task = FakeTask(args)
    plugin._connection = FakeConnection()
    return plugin.run(task_vars={}), calls


CHAINS = [{'name': 'SNF-FW-INPUT', 'hook': 'INPUT', 'rules': [{'name': 'ssh', 'jump': 'ACCEPT'}]}]
ARGS = dict(table='filter', family='ipv4', scope='FW', state='overridden', policies={'INPUT': 'DROP'}, chains=CHAINS,
            rollback_timeout=60, persist={'role': 'firewall', 'state': 'present'})
ARMED = dict(changed=True, restore={'ipv4': '*filter\n'}, rollback={'id': 'ab12', 'armed': True, 'timeout': 60},
             persisted={'deferred': True})


def test_persist_waits_for_the_confirmation(monkeypatch):
    """With a rollback armed, the module leaves the boot-time restore alone; the action writes it with boot_restore,
    from the task's model, only once the change is confirmed over a new connection."""
    written = dict(changed=True, changes={'/etc/stateful-netfilter/firewall.ipv4.rules': 'created'},
                   daemon_reload=False, diff=[{'before': '', 'after': 'x'}])
    result, calls = action_run(monkeypatch, dict(ARGS), [ARMED, dict(rollback={'status': 'confirmed'}), written])
    assert [name for name, dummy in calls] == ['stateful.netfilter.ruleset', 'stateful.netfilter.ruleset',
                                               'stateful.netfilter.boot_restore']
    assert calls[1][1] == dict(rollback_confirm='ab12')
    assert calls[2][1] == dict(role='firewall', backend='iptables', state='present', root='/', tables=[dict(
        table='filter', family='ipv4', policies={'INPUT': 'DROP'}, chains=CHAINS)])
    assert result['rollback']['confirmed'] is True and not result.get('failed')
    assert result['persisted'] == dict(changed=True, changes=written['changes'], daemon_reload=False)
    assert result['diff'] == written['diff']


def test_no_files_when_the_confirmation_fails(monkeypatch):
    result, calls = action_run(monkeypatch, dict(ARGS), [ARMED, dict(failed=True, msg='no such rollback')])
    assert [name for name, dummy in calls] == ['stateful.netfilter.ruleset'] * 2
    assert result['failed'] and result['persisted'] == {'deferred': True}


def test_a_failed_write_after_the_confirmation_fails_the_task(monkeypatch):
    refused = dict(failed=True, msg='iptables-restore --test --noflush refused the rules file', changes={})
    result, dummy = action_run(monkeypatch, dict(ARGS), [ARMED, dict(rollback={'status': 'confirmed'}), refused])
    assert result['failed'] and result['rollback']['confirmed'] is True
    assert result['msg'].startswith('the rules were applied and confirmed, but writing the boot-time restore failed')


def test_nothing_deferred_without_a_rollback(monkeypatch):
    done = dict(changed=False, restore={}, persisted=dict(changed=False, changes={}, daemon_reload=False))
    args = dict(ARGS)
    del args['rollback_timeout']
    result, calls = action_run(monkeypatch, args, [done])
    assert len(calls) == 1 and result['persisted'] == done['persisted']


NAT_CHAINS = [{'name': 'SNF-GW-POST', 'hook': 'POSTROUTING', 'rules': [{'name': 'm', 'jump': 'MASQUERADE'}]}]
OTHER = [{'table': 'filter', 'family': 'both', 'chains': []}]
NAT_ARGS = dict(table='nat', family='both', scope='GW', state='overridden', chains=NAT_CHAINS, rollback_timeout=60,
                sysctls={'values': {'net.ipv4.ip_forward': 1}, 'file': '/etc/sysctl.d/60-x.conf'},
                persist={'role': 'nat_gateway', 'state': 'present', 'tables': OTHER})


def test_sysctls_and_files_wait_for_the_confirmation_in_that_order(monkeypatch):
    """The nat_gateway role's translations: forwarding goes on and the restore (every table) is written only once
    the change is confirmed."""
    armed = dict(ARMED, sysctls={'deferred': True})
    sysctls = dict(changed=True, changes={'net.ipv4.ip_forward': {'before': '0', 'after': '1'}}, file_changed=True,
                   diff=[{'before': 'net.ipv4.ip_forward = 0\n', 'after': 'net.ipv4.ip_forward = 1\n'}])
    written = dict(changed=False, changes={}, daemon_reload=False)
    result, calls = action_run(monkeypatch, dict(NAT_ARGS), [armed, dict(rollback={'status': 'confirmed'}), sysctls,
                                                             written])
    assert [name for name, dummy in calls] == ['stateful.netfilter.ruleset', 'stateful.netfilter.ruleset',
                                               'stateful.netfilter.sysctls', 'stateful.netfilter.boot_restore']
    assert calls[2][1] == dict(values={'net.ipv4.ip_forward': 1}, file='/etc/sysctl.d/60-x.conf')
    assert calls[3][1]['tables'] == [dict(table='nat', family='both', policies={}, chains=NAT_CHAINS)] + OTHER
    assert result['sysctls'] == dict(changed=True, changes=sysctls['changes'], file_changed=True)
    assert result['diff'] == sysctls['diff'] and result['changed'] and not result.get('failed')


def test_a_failed_sysctl_after_the_confirmation_fails_the_task_and_writes_no_files(monkeypatch):
    armed = dict(ARMED, sysctls={'deferred': True})
    refused = dict(failed=True, msg='values.net.ipv4.ip_forward: writing /proc/sys/net/ipv4/ip_forward failed')
    result, calls = action_run(monkeypatch, dict(NAT_ARGS), [armed, dict(rollback={'status': 'confirmed'}), refused])
    assert [name for name, dummy in calls][-1] == 'stateful.netfilter.sysctls'
    assert result['failed'] and result['msg'].startswith('the rules were applied and confirmed, but setting the sysctls')
    assert result['persisted'] == {'deferred': True}


FW_VARIABLES = dict(firewall_input_allow=[dict(name='ssh', port=22, sources=['192.0.2.0/24'])],
                    firewall_families=['ipv4'])


def test_the_plan_is_made_on_the_controller_and_the_module_gets_the_model(monkeypatch):
    """The firewall role's task: the action plans family, policies and chains as the filter does; the module never
    sees plan."""
    from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import plan

    done = dict(changed=False, restore={})
    args = dict(plan=dict(role='firewall', variables=FW_VARIABLES), table='filter', scope='FW', state='overridden',
                backend='nftables')
    result, calls = action_run(monkeypatch, args, [done])
    model = plan(FW_VARIABLES, 'FW', 'nftables')
    assert len(calls) == 1 and 'plan' not in calls[0][1] and not result.get('failed')
    assert dict((key, calls[0][1][key]) for key in ('family', 'policies', 'chains')) == model
    assert model['family'] == 'ipv4' and model['chains'][0]['name'] == 'SNF-FW-INPUT'


def test_a_rule_the_module_refuses_is_told_by_the_variable_and_the_entry(monkeypatch):
    """The planned rules are checked once, by the module before any change; its message names the variable and
    the entry as the filter firewall_plan (which checks them on the controller) does."""
    from ansible.errors import AnsibleFilterError
    from ansible_collections.stateful.netfilter.plugins.filter.firewall_plan import _firewall_plan
    from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import draft

    variables = dict(FW_VARIABLES, firewall_input_allow=[dict(name='ssh', port=22), dict(name='web', port=70000)])
    with pytest.raises(AnsibleFilterError) as caught:
        _firewall_plan(variables)
    assert 'firewall_input_allow entry web: port: ' in str(caught.value)
    # What the module says of that rule, by its place in the chains it got.
    number = [rule.get('name') for rule in draft(variables)[0]['chains'][0]['rules']].index('allow:web')
    param = 'chains[0].rules[%d].destination_port' % number
    refused = dict(failed=True, param=param, msg='%s: 70000 is not a port (1-65535)' % param)
    args = dict(plan=dict(role='firewall', variables=variables), table='filter', scope='FW', state='overridden')
    result, calls = action_run(monkeypatch, args, [refused])
    assert len(calls) == 1 and result['failed']
    assert result['msg'] == 'firewall_input_allow entry web: port: 70000 is not a port (1-65535)'
    # A failure that is not a planned rule's is left as the module gave it.
    other = dict(failed=True, msg='firewall_ssh_guard: refusing to apply')
    assert action_run(monkeypatch, dict(args), [other])[0]['msg'] == other['msg']


@pytest.mark.parametrize('plan_option, extra, words', [
    (dict(role='firewall', variables=dict(firewall_input_allow=[dict(name='a', port=1), dict(name='a', port=2)])), {},
     'firewall_input_allow: a name is used twice: a'),
    (dict(role='firewall', variables=FW_VARIABLES), dict(backend='pf'), 'firewall_backend: must be iptables or'),
    (dict(role='firewall', variables=FW_VARIABLES), dict(chains=[dict(name='SNF-FW-X')]), 'plan: the plan gives the'),
    (dict(role='firewall', variables=['x']), {}, 'plan.variables: expected the role variables as a mapping'),
    (dict(role='nat_gateway', variables={}), {}, 'plan: needs role firewall'),
])
def test_bad_role_variables_fail_before_the_host_is_reached(monkeypatch, plan_option, extra, words):
    args = dict(plan=plan_option, table='filter', scope='FW', state='overridden', **extra)
    result, calls = action_run(monkeypatch, args, [])
    assert calls == [] and result['failed'] and words in result['msg'], result['msg']
