# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/reference/ is what docs/gen_reference.py makes of the current documentation.

A module's DOCUMENTATION, a doc fragment, a filter's docs or a role's
meta/argument_specs.yml changed without `make docs`: this test fails and
names the stale pages.
"""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _generator():
    spec = importlib.util.spec_from_file_location('gen_reference', os.path.join(ROOT, 'docs', 'gen_reference.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()


@pytest.fixture(scope='module')
def pages():
    return GEN.render()


def test_reference_pages_are_up_to_date(pages):
    stale = GEN.stale(pages)
    assert not stale, 'docs/reference is stale, run `make docs`: %s' % ', '.join(stale)


def test_every_module_role_and_filter_has_a_page(pages):
    expected = set()
    for folder, kind in (('plugins/modules', 'modules'), ('plugins/filter', 'filters')):
        expected.update('%s/%s.md' % (kind, name[:-3]) for name in os.listdir(os.path.join(ROOT, folder))
                        if name.endswith('.py') and not name.startswith('_'))
    expected.update('roles/%s.md' % name for name in os.listdir(os.path.join(ROOT, 'roles'))
                    if os.path.exists(os.path.join(ROOT, 'roles', name, 'meta', 'argument_specs.yml')))
    assert expected <= set(pages)
    index = pages['README.md']
    assert all('](%s)' % path in index for path in expected)


def test_markup_becomes_markdown_links_and_code(pages):
    page = pages['modules/conntrack_flush.md']
    assert '[`all=true`](#option-all)' in page
    assert '<a id="option-max-entries"></a>`max_entries`' in page
    assert '## Examples' in page and '## Return values' in page
    assert 'C(' not in page and 'O(' not in page


def test_stale_and_removed_pages_are_reported(tmp_path):
    pages = {'README.md': 'index\n', 'modules/a.md': 'a\n'}
    GEN.write(pages, str(tmp_path))
    assert GEN.stale(pages, str(tmp_path)) == []
    (tmp_path / 'modules' / 'a.md').write_text('edited\n')
    (tmp_path / 'modules' / 'gone.md').write_text('old\n')
    assert GEN.stale(pages, str(tmp_path)) == ['modules/a.md', 'modules/gone.md']
    GEN.write(pages, str(tmp_path))
    assert GEN.stale(pages, str(tmp_path)) == [] and not (tmp_path / 'modules' / 'gone.md').exists()
