# SPDX-License-Identifier: GPL-3.0-or-later
"""conntrack_info and conntrack_flush: options reach module_utils as intended."""

import json
import os

import pytest

from ansible_collections.stateful.netfilter.tests.unit.compat import INVOCATION_BY_DEFAULT, invocation, patch_module_args
from ansible_collections.stateful.netfilter.plugins.module_utils import _conntrack, _ctcodec, _netlink
from ansible_collections.stateful.netfilter.plugins.modules import conntrack_flush, conntrack_info


def run(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def flush(monkeypatch):
    calls = []

    def fake(flt, netns=None, max_entries=None, check_mode=False, protect=None):
        calls.append(dict(flt=flt, netns=netns, max_entries=max_entries, check_mode=check_mode, protect=protect))
        return dict(deleted=2, matched=2, sample=[], protected=[])
    monkeypatch.setattr(conntrack_flush, 'flush_entries', fake)
    monkeypatch.setenv('SSH_CONNECTION', '192.0.2.10 53122 192.0.2.1 22')
    return calls


def test_flush_without_filter_needs_all(flush, capsys):
    result = run(conntrack_flush, {}, capsys)
    assert result['failed'] and result['msg'].startswith('all: ')
    assert flush == []


def test_family_alone_is_no_filter(flush, capsys):
    result = run(conntrack_flush, {'family': 'ipv6'}, capsys)
    assert result['failed'] and result['msg'].startswith('all: ')


def test_all_with_filters_is_refused(flush, capsys):
    result = run(conntrack_flush, {'all': True, 'src': '10.0.0.1', 'zone': 0}, capsys)
    assert result['failed'] and result['msg'] == (
        'all: flushes every entry and cannot be combined with filters (src, zone)')
    assert flush == []


def test_all_flushes_and_protects_the_ssh_session(flush, capsys):
    result = run(conntrack_flush, {'all': True, 'family': 'ipv4', '_ansible_check_mode': True}, capsys)
    assert result['changed'] and result['deleted'] == 2
    (call,) = flush
    assert call['check_mode'] and call['protect'] == [('192.0.2.10', '53122', '192.0.2.1', '22')]
    assert not call['flt'].narrows and len(call['flt'].families) == 1


def test_protection_can_be_turned_off(flush, capsys):
    run(conntrack_flush, {'src': '192.168.1.100', 'protect_control_connection': False, 'max_entries': 5}, capsys)
    assert flush[0]['protect'] == [] and flush[0]['max_entries'] == 5


def test_no_match_is_no_change(monkeypatch, capsys):
    monkeypatch.setattr(conntrack_flush, 'flush_entries',
                        lambda *a, **k: dict(deleted=0, matched=0, sample=[], protected=[]))
    result = run(conntrack_flush, {'src': '192.168.1.100'}, capsys)
    assert not result.get('failed') and not result['changed']


def test_bad_filter_fails_naming_it(flush, capsys):
    result = run(conntrack_flush, {'dport': '99999'}, capsys)
    assert result['failed'] and result['msg'].startswith('dport: ')
    assert flush == []


def test_kernel_error_fails(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise _conntrack.ConntrackError('conntrack_flush: permission denied: needs root or CAP_NET_ADMIN')
    monkeypatch.setattr(conntrack_flush, 'flush_entries', refuse)
    result = run(conntrack_flush, {'src': '192.168.1.100'}, capsys)
    assert result['failed'] and 'CAP_NET_ADMIN' in result['msg']


def test_info_passes_limit_and_netns(monkeypatch, capsys):
    calls = []

    def fake(flt, netns=None, limit=None, summary_only=False, write=None, details=()):
        calls.append((netns, limit, summary_only, flt.families, details))
        return dict(count=0, total=5, max=262144, truncated=False, summary={})
    monkeypatch.setattr(conntrack_info, 'list_entries', fake)
    result = run(conntrack_info, {'netns': 'web1', 'limit': 0, 'summary_only': True}, capsys)
    assert not result['changed'] and result['total'] == 5
    assert calls == [('web1', 0, True, (2, 10), [])]
    run(conntrack_info, {'summary_details': ['talkers', 'zones']}, capsys)
    assert calls[-1][-1] == ['talkers', 'zones']


def test_info_refuses_negative_limit(capsys):
    result = run(conntrack_info, {'limit': -1}, capsys)
    assert result['failed'] and result['msg'].startswith('limit: ')


def test_info_fails_midway_with_one_valid_result(monkeypatch, capsys):
    """A dump that breaks after 3 entries: the entries went out, the result still says it failed."""

    fixtures = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'conntrack', 'dump-ipv4.hex')
    with open(fixtures) as handle:
        messages = [bytes.fromhex(line) for line in handle.read().split()][:3]

    class Breaking:
        def __call__(self):
            return self

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            pass

        def dump(self, msg_type, family, attrs=b'', version=0):
            for msg in messages:
                yield msg, 20, len(msg)
            raise _netlink.NetlinkError(104, 'Connection reset by peer')

    monkeypatch.setattr(_netlink, 'NetlinkSocket', Breaking())
    monkeypatch.setattr(_conntrack, 'WRITE_BATCH', 2)
    with patch_module_args({'limit': 0, 'family': 'ipv4'}):
        with pytest.raises(SystemExit) as exc:
            conntrack_info.main()
    assert exc.value.code == 1
    out = capsys.readouterr().out
    result = json.loads(out)   # one document, nothing after it
    assert result['failed'] and result['msg'].startswith('conntrack_info: Connection reset by peer')
    assert 'after 3 of the entries were written' in result['msg']
    assert [e['id'] for e in result['entries']] == [
        _ctcodec.decode_entry(m, 20, len(m), 2)['id'] for m in messages]
    assert 'count' not in result
    assert not INVOCATION_BY_DEFAULT or invocation(result)['module_args']['limit'] == 0
