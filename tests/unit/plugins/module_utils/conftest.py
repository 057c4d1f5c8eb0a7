# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the module_utils tests."""

import pytest


@pytest.fixture
def no_lock(monkeypatch):
    """The engine lock of _rollback taken and released as no-ops (the tests run without /run)."""
    from ansible_collections.stateful.netfilter.plugins.module_utils import _rollback
    monkeypatch.setattr(_rollback, 'engine_lock', lambda: None)
    monkeypatch.setattr(_rollback, 'release_engine_lock', lambda: None)
