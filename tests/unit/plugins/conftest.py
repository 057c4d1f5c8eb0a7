# SPDX-License-Identifier: GPL-3.0-or-later
"""Keep the engine lock of unit tests out of this machine's /run."""
import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _rollback


@pytest.fixture(autouse=True)
def engine_lock_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(_rollback, 'BASE', str(tmp_path / 'snf-base'))
    monkeypatch.setattr(_rollback, '_HELD', {})
