# SPDX-License-Identifier: GPL-3.0-or-later
"""exit_large() prints what exit_json() would, faster, or is exit_json()."""

import copy
import json

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common import warnings
from ansible_collections.stateful.netfilter.tests.unit.compat import INVOCATION_BY_DEFAULT, invocation, patch_module_args
from ansible_collections.stateful.netfilter.plugins.module_utils._result import EncodedList, exit_large, exit_streamed

SPEC = dict(src=dict(type='str'), limit=dict(type='int', default=100), secret=dict(type='str', no_log=True))
ENTRY = dict(family='ipv4', protocol='udp', state=None, timeout=29, status=['SRC_NAT', 'CONFIRMED'],
             nat='snat', mark=0, zone=0, id=2535287334, counters=None,
             orig=dict(src='192.168.1.100', dst='203.0.113.8', sport=40000, dport=5000),
             reply=dict(src='203.0.113.8', dst='203.0.113.1', sport=5000, dport=40000))
RESULT = dict(changed=False, entries=[ENTRY] * 3, count=3, total=None, max=262144, truncated=False,
              summary=dict(families=dict(ipv4=3), top_ports=[dict(protocol='udp', port=5000, count=3)]))


pytestmark = pytest.mark.usefixtures('no_pending_messages')


@pytest.fixture
def module():
    """module(**args): an AnsibleModule, its arguments in place until the test ends."""
    contexts = []

    def make(**args):
        contexts.append(patch_module_args(dict(args)))
        contexts[-1].__enter__()
        return AnsibleModule(argument_spec=SPEC)
    yield make
    for context in reversed(contexts):
        context.__exit__(None, None, None)


def printed(capsys, call, **result):
    with pytest.raises(SystemExit) as exc:
        call(**copy.deepcopy(result or RESULT))
    assert exc.value.code == 0
    return capsys.readouterr().out


def forbid_exit_json(monkeypatch, mod):
    def refuse(**kwargs):
        raise AssertionError('exit_json called')
    monkeypatch.setattr(mod, 'exit_json', refuse)


def test_same_document_as_exit_json(module, capsys, monkeypatch):
    mod = module(src='192.168.1.0/24')
    slow = printed(capsys, mod.exit_json)
    forbid_exit_json(monkeypatch, mod)
    fast = printed(capsys, lambda **result: exit_large(mod, **result))
    assert json.loads(fast) == json.loads(slow)
    assert invocation(json.loads(fast)) in ({'module_args': {'src': '192.168.1.0/24', 'limit': 100, 'secret': None}},
                                            None if not INVOCATION_BY_DEFAULT else 'always there')
    assert fast.startswith('\n') and fast.endswith('}\n')


@pytest.mark.parametrize('why', ['no_log value', 'warning', 'deprecation', 'path', 'not JSON'])
def test_exit_json_whenever_it_could_differ(module, capsys, tmp_path, why):
    mod = module(secret='hunter2') if why == 'no_log value' else module()
    result = copy.deepcopy(RESULT)
    if why == 'no_log value':
        result['entries'][0]['orig']['src'] = 'hunter2'
    elif why == 'warning':
        mod.warn('careful')
    elif why == 'deprecation':
        mod.deprecate('old', version='9.0.0', collection_name='stateful.netfilter')
    elif why == 'path':
        result['path'] = str(tmp_path)
    else:
        result['summary'] = {'ratio': float('nan')}
    fast = json.loads(printed(capsys, lambda **res: exit_large(mod, **res), **result))
    slow = json.loads(printed(capsys, mod.exit_json, **result))
    assert fast == slow
    if why == 'no_log value':
        assert 'hunter2' not in json.dumps(fast)
    elif why == 'warning':
        assert fast['warnings']
    elif why == 'deprecation':
        assert fast['deprecations']
    elif why == 'path':
        assert fast['state'] == 'directory'


@pytest.mark.parametrize('warned', [False, True])
def test_an_encoded_list_is_the_list_it_encodes(module, capsys, monkeypatch, warned):
    mod = module()
    texts = [json.dumps(ENTRY), json.dumps(dict(ENTRY, id=1, counters=dict(orig=dict(packets=1, bytes=60))))]
    slow = printed(capsys, mod.exit_json, entries=[json.loads(text) for text in texts], count=2)
    if warned:
        mod.warn('careful')
    else:
        forbid_exit_json(monkeypatch, mod)
    fast = printed(capsys, lambda **result: exit_large(mod, **result), entries=EncodedList(texts), count=2)
    fast = json.loads(fast)
    assert fast.pop('warnings', None) is not None if warned else 'warnings' not in fast
    assert fast == json.loads(slow)
    assert EncodedList(texts) == [json.loads(text) for text in texts] and len(EncodedList(texts)) == 2


def test_works_with_the_warnings_api_of_ansible_core_2_16(module, capsys, monkeypatch):
    """ansible-core 2.16-2.18 have get_warning_messages/get_deprecation_messages, not get_warnings."""
    import importlib.util
    import sys
    import types
    from ansible_collections.stateful.netfilter.plugins.module_utils import _result
    old = types.ModuleType(warnings.__name__)  # the public names of 2.16's warnings.py
    old._global_warnings, old._global_deprecations = [], []
    old.warn = old._global_warnings.append
    old.deprecate = lambda msg, version=None, date=None, collection_name=None: old._global_deprecations.append(
        {'msg': msg, 'version': version, 'collection_name': collection_name})
    old.get_warning_messages = lambda: tuple(old._global_warnings)
    old.get_deprecation_messages = lambda: tuple(old._global_deprecations)
    monkeypatch.setitem(sys.modules, warnings.__name__, old)
    # A private copy of _result imported against it (the real one stays as other tests use it).
    spec = importlib.util.spec_from_file_location('_result_on_2_16', _result.__file__)
    copy_ = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy_)
    mod = module()
    seen = []

    def record(**result):
        seen.append(result)
        raise SystemExit(0)
    monkeypatch.setattr(mod, 'exit_json', record)
    old.warn('careful')
    printed(capsys, lambda **result: copy_.exit_large(mod, **result))
    assert seen and seen[0]['count'] == 3  # a pending warning: exit_json's way
    del old._global_warnings[:]
    old.deprecate('old', version='9.0.0')
    printed(capsys, lambda **result: copy_.exit_large(mod, **result))
    assert len(seen) == 2
    del old._global_deprecations[:]
    forbid_exit_json(monkeypatch, mod)
    assert json.loads(printed(capsys, lambda **result: copy_.exit_large(mod, **result)))['count'] == 3


# ---------------------------------------------------------------- exit_streamed

TEXTS = [json.dumps(dict(ENTRY, id=n)) for n in range(7)]
REST = dict(count=7, total=None, max=262144, truncated=False, summary=RESULT['summary'])


class Broken(Exception):
    pass


def producer(batches, fail=None, during=None):
    """produce(write): writes TEXTS in batches, then calls during(), raises fail or returns REST."""
    def produce(write):
        for start in range(0, len(TEXTS), batches):
            write(TEXTS[start:start + batches])
        if during:
            during()
        if fail is not None:
            raise fail
        return dict(REST)
    return produce


def streamed(capsys, mod, produce, code=0):
    with pytest.raises(SystemExit) as exc:
        exit_streamed(mod, dict(changed=False), 'entries', produce, errors=(Broken,))
    assert exc.value.code == code
    out = capsys.readouterr().out
    assert out.startswith('\n{"changed": false, "entries": [') and out.endswith('}\n')
    return out


@pytest.mark.parametrize('batches', [1, 3, 7])
def test_streamed_is_the_document_exit_json_prints(module, capsys, monkeypatch, batches):
    mod = module(src='192.168.1.0/24')
    slow = printed(capsys, mod.exit_json, changed=False, entries=[json.loads(t) for t in TEXTS], **REST)
    fast = streamed(capsys, mod, producer(batches))
    assert json.loads(fast) == json.loads(slow)
    assert list(json.loads(fast)) == list(json.loads(slow))


@pytest.mark.parametrize('raised', ['warning', 'deprecation'])
def test_streamed_warnings_raised_while_producing_are_exit_json_s(module, capsys, raised):
    mod = module()

    def during():
        if raised == 'warning':
            mod.warn('careful')
        else:
            mod.deprecate('old', version='9.0.0', collection_name='stateful.netfilter')
    fast = json.loads(streamed(capsys, mod, producer(3, during=during)))
    slow = json.loads(printed(capsys, mod.exit_json, changed=False, entries=[json.loads(t) for t in TEXTS], **REST))
    assert fast == slow and fast['warnings' if raised == 'warning' else 'deprecations']


@pytest.mark.parametrize('fail, fragment', [
    (Broken('conntrack_info: Connection reset by peer'), 'conntrack_info: Connection reset by peer (after 7 of'),
    (KeyError('proto'), "unexpected KeyError: 'proto' (after 7 of"),
])
def test_a_failure_midway_is_one_failed_result(module, capsys, fail, fragment):
    mod = module(src='10.0.0.0/8')
    result = json.loads(streamed(capsys, mod, producer(2, fail=fail), code=1))
    assert result['failed'] is True and result['changed'] is False and result['msg'].startswith(fragment)
    assert result['entries'] == [json.loads(t) for t in TEXTS]
    assert invocation(result) in ({'module_args': {'src': '10.0.0.0/8', 'limit': 100, 'secret': None}},
                                  None if not INVOCATION_BY_DEFAULT else 'always there')
    assert 'count' not in result


def test_a_failure_before_any_entry_is_fail_json_itself(module, capsys, monkeypatch):
    mod = module()

    def produce(write):
        raise Broken('conntrack_info: permission denied: needs root or CAP_NET_ADMIN')
    with pytest.raises(SystemExit) as exc:
        exit_streamed(mod, dict(changed=False), 'entries', produce, errors=(Broken,))
    assert exc.value.code == 1
    fast = json.loads(capsys.readouterr().out)
    with pytest.raises(SystemExit):
        mod.fail_json(msg='conntrack_info: permission denied: needs root or CAP_NET_ADMIN')
    assert fast == json.loads(capsys.readouterr().out)


def test_nothing_to_stream_and_no_log_values_print_what_exit_json_prints(module, capsys, monkeypatch):
    mod = module()
    slow = printed(capsys, mod.exit_json, changed=False, entries=[], **REST)
    forbid_exit_json(monkeypatch, mod)
    assert json.loads(streamed(capsys, mod, lambda write: dict(REST))) == json.loads(slow)
    mod = module(secret='10.0.0.5')    # a no_log value that an entry holds: masked, as exit_json does
    texts = [json.dumps(dict(ENTRY, orig=dict(ENTRY['orig'], src='10.0.0.5')))]
    slow = printed(capsys, mod.exit_json, changed=False, entries=[json.loads(t) for t in texts], **REST)

    def produce(write):
        write(texts)
        return dict(REST)
    with pytest.raises(SystemExit):
        exit_streamed(mod, dict(changed=False), 'entries', produce)
    fast = capsys.readouterr().out
    assert json.loads(fast) == json.loads(slow) and '10.0.0.5' not in fast
