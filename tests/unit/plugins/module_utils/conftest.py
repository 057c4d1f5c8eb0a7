# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the module_utils tests."""

import pytest


@pytest.fixture
def no_lock(monkeypatch):
    """The engine lock of _rollback taken and released as no-ops (the tests run without /run)."""
    from ansible_collections.stateful.netfilter.plugins.module_utils import _rollback
    monkeypatch.setattr(_rollback, 'engine_lock', lambda: None)
    monkeypatch.setattr(_rollback, 'release_engine_lock', lambda: None)


@pytest.fixture
def no_pending_messages(monkeypatch):
    """Warnings and deprecations recorded afresh, as a module run starts with none; and, once controller code is
    imported (other tests), warn() records instead of displaying."""
    from ansible.module_utils.common import warnings
    try:
        from ansible.module_utils import _internal  # ansible-core 2.19+
        monkeypatch.setattr(_internal, 'is_controller', False)
    except ImportError:
        pass
    # Dicts from 2.19, lists before.
    monkeypatch.setattr(warnings, '_global_warnings', type(warnings._global_warnings)())
    monkeypatch.setattr(warnings, '_global_deprecations', type(warnings._global_deprecations)())
