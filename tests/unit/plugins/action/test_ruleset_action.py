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
