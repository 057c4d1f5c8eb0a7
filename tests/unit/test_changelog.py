# SPDX-License-Identifier: GPL-3.0-or-later
"""The changelog fragments and changelogs/changelog.yaml pass antsibull-changelog's lint."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool():
    local = os.path.join(os.path.dirname(sys.executable), 'antsibull-changelog')
    return local if os.path.exists(local) else shutil.which('antsibull-changelog')


@pytest.mark.parametrize('command', [['lint'], ['lint-changelog-yaml', 'changelogs/changelog.yaml']])
def test_antsibull_changelog_lint(command):
    tool = _tool()
    assert tool, 'antsibull-changelog is not installed (make setup)'
    proc = subprocess.run([tool] + command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    # lint prints one line per problem and exits 3 when it found any.
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout


def test_fragments_are_yaml_files():
    fragments = os.path.join(ROOT, 'changelogs', 'fragments')
    names = [name for name in os.listdir(fragments) if not name.startswith('.')]
    assert names and all(name.endswith(('.yml', '.yaml')) for name in names), names
