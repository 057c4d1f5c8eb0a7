# SPDX-License-Identifier: GPL-3.0-or-later
"""The `lab` fixture of the namespace tests (netns_lab.Lab): a private mount and network namespace."""
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
