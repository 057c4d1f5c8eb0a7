# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules of ruleset checked once (check_rules), and the arguments echoed in short (Module)."""

import copy
import json

import pytest
import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.stateful.netfilter.tests.unit.compat import INVOCATION_BY_DEFAULT, invocation, patch_module_args
from ansible_collections.stateful.netfilter.plugins.module_utils._arguments import (
    Module,
    check_rules,
    short_chains,
    short_model,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError
from ansible_collections.stateful.netfilter.plugins.modules import ruleset

OPTIONS = ruleset.rule_options()


pytestmark = pytest.mark.usefixtures('no_pending_messages')


def checked(*rules):
    return check_rules([dict(name='SNF-FW-INPUT', rules=[dict(rule) for rule in rules])], OPTIONS)[0]['rules']


def by_ansible(rule):
    """What AnsibleModule's validation of the documented suboptions made of a rule (None: refused)."""
    result = ArgumentSpecValidator(OPTIONS).validate(dict(rule))
    return None if result.error_messages else result.validated_parameters


@pytest.mark.parametrize('rule', [
    dict(jump='ACCEPT'),
    dict(name='ssh', protocol='tcp', destination_port=22, jump='ACCEPT', comment='admins'),
    dict(protocol='tcp', syn='yes', jump='DROP'),
    dict(ctstate='NEW,ESTABLISHED', jump='ACCEPT'),
    dict(ctstate=['NEW', 'ESTABLISHED'], jump='ACCEPT'),
    dict(limit='5/second', limit_burst='7', jump='ACCEPT'),
    dict(protocol='tcp', destination_port=80, connlimit_above='10', connlimit_daddr='no', jump='REJECT'),
    dict(hashlimit_upto='10/second', hashlimit_mode='srcip,dstport', hashlimit_name='web', jump='ACCEPT'),
    dict(name=123, jump='ACCEPT'),
    dict(family='ipv6', source='2001:db8::/32', jump='ACCEPT'),
    dict(ct_timeout='tcp_established=300', jump='CT'),
    dict(source=['10.0.0.0/8', '192.168.0.0/16'], jump='ACCEPT', comment=None),
])
def test_the_values_ansible_module_would_give(rule):
    """Each option a rule gives comes out as AnsibleModule converted it; options left out stay out (the
    engine reads them as not set, as it reads AnsibleModule's None and false defaults)."""
    expected = by_ansible(rule)
    got = checked(rule)[0]
    assert set(got) == set(rule)
    assert got == dict((key, expected[key]) for key in rule)
    assert all(expected[key] in (None, False) for key in set(expected) - set(rule))


@pytest.mark.parametrize('rule, param, words', [
    (dict(jump='ACCEPT', colour='red'), 'chains[0].rules[1].colour', 'unknown rule option'),
    (dict(protocol='tcp'), 'chains[0].rules[1].jump', 'required'),
    (dict(protocol='tcp', syn='maybe', jump='DROP'), 'chains[0].rules[1].syn', 'expected bool'),
    (dict(limit='5/second', limit_burst='many', jump='ACCEPT'), 'chains[0].rules[1].limit_burst', 'expected int'),
    (dict(family='ipv5', jump='ACCEPT'), 'chains[0].rules[1].family', 'must be one of ipv4, ipv6'),
    (dict(ctdir='BOTH', ctstate=['NEW'], jump='ACCEPT'), 'chains[0].rules[1].ctdir', 'must be one of ORIGINAL'),
    (dict(connlimit_above=2, connlimit_mask=[24], jump='REJECT'), 'chains[0].rules[1].connlimit_mask', 'expected int'),
    (dict(ct_timeout=['tcp'], jump='CT'), 'chains[0].rules[1].ct_timeout', 'expected dict'),
])
def test_bad_input_is_refused_naming_the_rule_and_option(rule, param, words):
    assert by_ansible(rule) is None  # AnsibleModule refused it too
    with pytest.raises(ValidationError) as exc:
        checked(dict(jump='ACCEPT'), rule)
    assert exc.value.param == param
    assert words in str(exc.value)


def test_a_rule_that_is_not_a_mapping():
    with pytest.raises(ValidationError) as exc:
        check_rules([dict(name='SNF-FW-INPUT', rules=[dict(jump='ACCEPT'), 'ACCEPT'])], OPTIONS)
    assert exc.value.param == 'chains[0].rules[1]'


def test_the_documented_suboptions_are_the_checked_ones():
    """check_rules() checks against rule_options(); the docs of chains[].rules[] must say the same."""
    documented = yaml.safe_load(ruleset.DOCUMENTATION)['options']['chains']['suboptions']['rules']['suboptions']
    assert sorted(documented) == sorted(OPTIONS)
    for name, option in OPTIONS.items():
        doc = documented[name]
        assert doc.get('type', 'str') == option.get('type', 'str'), name
        assert doc.get('elements') == option.get('elements'), name
        assert doc.get('choices') == option.get('choices'), name
        assert bool(doc.get('required')) == bool(option.get('required')), name
        assert doc.get('default') == option.get('default'), name


def test_short_chains_and_models():
    chains = [dict(name='SNF-FW-INPUT', hook='INPUT', rules=[dict(jump='ACCEPT')] * 1001), dict(name='SNF-FW-X')]
    assert short_chains(chains) == [dict(name='SNF-FW-INPUT', hook='INPUT', rules='1001 rules'), dict(name='SNF-FW-X')]
    assert len(chains[0]['rules']) == 1001  # not changed in place
    model = dict(family='both', policies=dict(INPUT='DROP'), chains=chains, nat_chains=chains, sysctls={})
    assert short_model(model) == dict(family='both', policies=dict(INPUT='DROP'), chains=short_chains(chains),
                                      nat_chains=short_chains(chains), sysctls={})
    assert short_chains('x') == 'x' and short_model(None) is None


SPEC = dict(chains=dict(type='list', elements='dict', default=[]), secret=dict(type='str', no_log=True))
RULES = [dict(jump='ACCEPT', name='rule-%d' % number) for number in range(500)]


def run(capsys, call, args, **result):
    with patch_module_args(args):
        module = Module(argument_spec=SPEC)
        module.shorten = lambda params: dict(params, chains=short_chains(params['chains']))
        with pytest.raises(SystemExit) as exc:
            getattr(module, call)(**copy.deepcopy(result))
    return exc.value.code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize('call', ['exit_json', 'fail_json'])
def test_the_invocation_is_in_short(capsys, call):
    args = dict(chains=[dict(name='SNF-FW-INPUT', rules=RULES)])
    extra = dict(msg='no') if call == 'fail_json' else {}
    code, result = run(capsys, call, args, changed=True, restore=dict(ipv4='*filter\n'), **extra)
    assert code == (1 if call == 'fail_json' else 0)
    assert result['changed'] is True and result['restore'] == dict(ipv4='*filter\n')
    assert invocation(result) in (dict(module_args=dict(chains=[dict(name='SNF-FW-INPUT', rules='500 rules')],
                                                        secret=None)),
                                  None if not INVOCATION_BY_DEFAULT else 'always there')


@pytest.mark.parametrize('why', ['none', 'no_log value', 'warning', 'not JSON'])
def test_exit_prints_what_exit_json_prints(capsys, monkeypatch, why):
    """The fast print is the document AnsibleModule.exit_json() prints for the same result and invocation."""
    args = dict(chains=[dict(name='SNF-FW-INPUT', rules=RULES[:3])])
    if why == 'no_log value':
        args['secret'] = 'hunter2'
    result = dict(changed=False, text='hunter2' if why == 'no_log value' else 'x',
                  ratio=float('nan') if why == 'not JSON' else 0.5)
    with patch_module_args(args):
        module = Module(argument_spec=SPEC)
        module.shorten = lambda params: dict(params, chains=short_chains(params['chains']))
        if why == 'warning':
            module.warn('careful')
        with pytest.raises(SystemExit):
            module.exit_json(**copy.deepcopy(result))
        fast = capsys.readouterr().out
        with pytest.raises(SystemExit):
            # AnsibleModule's own, given the same short invocation.
            super(Module, module).exit_json(**module._short(copy.deepcopy(result)))
        slow = capsys.readouterr().out
    if why == 'not JSON':
        assert fast == slow and 'NaN' in fast  # both AnsibleModule's
    else:
        assert json.loads(fast) == json.loads(slow)
    if why == 'no_log value':
        assert 'hunter2' not in fast
