# SPDX-License-Identifier: GPL-3.0-or-later
"""meta/execution-environment.yml is what ansible-builder reads of the
collection: its files exist and go into the collection artifact, and the
controller-side plugins need nothing beyond ansible-core, the standard
library and what meta/ee-requirements.txt lists."""

import ast
import fnmatch
import os
import re
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The plugin types that run in the controller's Python (an execution
# environment); modules and module_utils run on the managed hosts.
CONTROLLER_DIRS = ['plugins/action', 'plugins/filter', 'plugins/plugin_utils', 'plugins/doc_fragments']


def _load(path):
    with open(os.path.join(ROOT, path)) as handle:
        return yaml.safe_load(handle)


def _lines(path):
    with open(os.path.join(ROOT, path)) as handle:
        return [line.split('#', 1)[0].strip() for line in handle if line.split('#', 1)[0].strip()]


EE = _load('meta/execution-environment.yml')


def test_the_definition_names_its_files():
    assert EE['version'] == 1
    assert sorted(EE['dependencies']) == ['python', 'system']
    for path in EE['dependencies'].values():
        assert os.path.isfile(os.path.join(ROOT, path)), path


@pytest.mark.parametrize('path', ['meta/execution-environment.yml'] + sorted(EE['dependencies'].values()))
def test_the_files_are_in_the_artifact(path):
    # ansible-builder reads them from the installed collection: build_ignore must not drop them.
    ignored = _load('galaxy.yml').get('build_ignore') or []
    assert [pattern for pattern in ignored if fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip('/') + '/')] == []


def test_bindep_lines_name_a_package_and_a_platform():
    for line in _lines(EE['dependencies']['system']):
        assert re.match(r'^[a-z0-9][a-z0-9.+-]* \[platform:(rpm|dpkg)\]$', line), line


def _imports(path):
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split('.')[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split('.')[0]


@pytest.mark.skipif(not hasattr(sys, 'stdlib_module_names'), reason='needs Python 3.10+ (sys.stdlib_module_names)')
def test_controller_plugins_need_only_what_the_ee_requirements_list():
    listed = set(re.split(r'[ <>=!~;\[]', line, maxsplit=1)[0].lower().replace('-', '_')
                 for line in _lines(EE['dependencies']['python']))
    known = set(sys.stdlib_module_names) | {'ansible', 'ansible_collections'} | listed
    missing = {}
    for directory in CONTROLLER_DIRS:
        for name in sorted(os.listdir(os.path.join(ROOT, directory))):
            if name.endswith('.py'):
                path = os.path.join(ROOT, directory, name)
                extra = sorted(set(_imports(path)) - known)
                if extra:
                    missing[os.path.join(directory, name)] = extra
    assert missing == {}, 'add these to %s: %s' % (EE['dependencies']['python'], missing)
