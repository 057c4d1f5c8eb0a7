# SPDX-License-Identifier: GPL-3.0-or-later
"""A kernel without legacy xtables (Linux 6.17+): detected from the tools' captured output, before any change."""
import os

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _engine
from ansible_collections.stateful.netfilter.plugins.module_utils._iptables import (
    Backend,
    CommandError,
    legacy_refused,
)

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'iptables')


def captured(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


class Failed(Exception):
    def __init__(self, **result):
        super(Failed, self).__init__(result)
        self.result = result


class LegacyHost(object):
    """A host whose iptables selects the legacy back end; *-legacy-save answers with a captured failure."""

    def __init__(self, save_stderr):
        self.save_stderr = save_stderr
        self.check_mode = False
        self._diff = False
        self.calls = []
        self.warnings = []

    def get_bin_path(self, name, required=False):
        return '/usr/sbin/' + name

    def run_command(self, cmd, data=None, binary_data=False, environ_update=None):
        self.calls.append(cmd)
        if cmd[1:] == ['--version']:
            return 0, 'iptables v1.8.9 (legacy)\n', ''
        if cmd[0].endswith('-save'):
            return 1, '', self.save_stderr
        return 0, '', ''

    def warn(self, msg):
        self.warnings.append(msg)

    def fail_json(self, **result):
        raise Failed(**result)


@pytest.mark.parametrize('fixture, family, module', [
    ('legacy-refused-ipv4-save.stderr', 'ipv4', 'ip_tables'),
    ('legacy-refused-ipv6-save.stderr', 'ipv6', 'ip6_tables'),
])
def test_refusal_is_recognised_and_says_what_to_do(fixture, family, module):
    msg = legacy_refused('legacy', family, captured(fixture))
    assert msg is not None
    for fragment in ('legacy iptables back end is selected', 'CONFIG_NETFILTER_XTABLES_LEGACY', module,
                     'Nothing was changed', 'update-alternatives --set iptables /usr/sbin/iptables-nft'):
        assert fragment in msg


@pytest.mark.parametrize('backend, fixture', [
    ('nft', 'legacy-refused-ipv4-save.stderr'),      # the nft back end is not affected
    ('legacy', 'legacy-missing-table.stderr'),       # legacy works, the table does not exist
    ('legacy', 'legacy-refused-ipv4-restore.stderr'),  # restore does not say why
])
def test_other_failures_are_not_taken_for_a_refusal(backend, fixture):
    assert legacy_refused(backend, 'ipv4', captured(fixture)) is None


def test_other_failures_stay_command_errors():
    host = LegacyHost(captured('legacy-missing-table.stderr'))
    with pytest.raises(CommandError):
        Backend(host, 'ipv4', 'legacy').read('filter')


def test_ruleset_on_a_refusing_kernel_fails_with_the_reason_before_any_restore():
    host = LegacyHost(captured('legacy-refused-ipv4-save.stderr'))
    rule = dict(protocol='tcp', destination_port=22, jump='ACCEPT')
    host.params = dict(table='filter', family='both', state='overridden', scope='FW', policies={'INPUT': 'DROP'},
                       chains=[dict(name='SNF-FW-INPUT', hook='INPUT', rules=[rule])])
    with pytest.raises(Failed) as exc:
        _engine.run_ruleset(host)
    assert 'CONFIG_NETFILTER_XTABLES_LEGACY' in exc.value.result['msg']
    assert exc.value.result['cmd'][0].endswith('iptables-legacy-save')
    assert not [cmd for cmd in host.calls if cmd[0].endswith('-restore')]
