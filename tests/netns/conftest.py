# SPDX-License-Identifier: GPL-3.0-or-later
"""The fixtures of the namespace tests: `lab` (netns_lab.Lab, a private mount and network namespace) and
`backend` (each test once per iptables back end; a test module may define its own)."""
import os

import pytest

from netns_lab import Lab, missing


@pytest.fixture
def lab():
    reason = missing()
    if reason:
        pytest.skip(reason)
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(params=['nft', 'legacy'])
def backend(request, lab, tmp_path, monkeypatch):
    """`iptables` and `ip6tables` of the back end under test first on PATH for the modules the lab runs."""
    shim = tmp_path / 'shim'
    shim.mkdir()
    for tool in ('iptables', 'ip6tables'):
        os.symlink('/usr/sbin/%s-%s' % (tool, request.param), str(shim / tool))
    monkeypatch.setenv('PATH', '%s:%s' % (shim, os.environ.get('PATH', '/usr/sbin:/usr/bin')))
    return request.param
