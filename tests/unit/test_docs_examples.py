# SPDX-License-Identifier: GPL-3.0-or-later
"""The marked examples of docs/ without a lab: each is well-formed and run by
tests/docs/examples.py (which runs them against the lab in make test)."""

import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = importlib.util.spec_from_file_location('doc_examples', os.path.join(ROOT, 'tests', 'docs', 'examples.py'))
examples = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(examples)

DOCS = examples.parse_docs()
with open(os.path.join(ROOT, 'tests', 'docs', 'examples.py')) as _handle:
    SOURCE = _handle.read()


def test_every_example_is_run_by_the_sequence():
    named = set(re.findall(r"block\('([a-z0-9-]+)'|run_(?:block|playbook|tasks)\('([a-z0-9-]+)'", SOURCE))
    used = {name for pair in named for name in pair if name}
    assert sorted(set(DOCS['example']) - used) == []
    assert sorted(used - set(DOCS['example'])) == []


def test_every_output_sample_is_produced():
    produced = set(re.findall(r"lab\.output\('([a-z0-9-]+)'", SOURCE))
    assert sorted(set(DOCS['output']) ^ produced) == []


@pytest.mark.parametrize('name', sorted(name for name, value in DOCS['example'].items() if value[1] == 'sh'))
def test_shell_examples_are_ansible_playbook_commands(name):
    argv = examples.commands(DOCS['example'][name][2])
    assert argv and all(command[:3] == ['ansible-playbook', '-i', 'inventory'] for command in argv)


def test_commands_join_continuations_and_skip_comments():
    text = "# a comment\nansible-playbook -i inventory x \\\n  -e '{\"a\": 1}'\n\nansible-playbook y  # trailing\n"
    assert examples.commands(text) == [['ansible-playbook', '-i', 'inventory', 'x', '-e', '{"a": 1}'],
                                       ['ansible-playbook', 'y']]
    with pytest.raises(examples.ExampleError):
        examples.commands('rm -rf /tmp/x\n')


def test_parse_output_reads_the_default_callback():
    text = '\n'.join([
        'TASK [Report the gateways] ****',
        'ok: [edge1] => {',
        '    "msg": [',
        '        "a",',
        '        "b"',
        '    ]',
        '}',
        'TASK [role : Apply] ****',
        'changed: [edge1]',
        'ok: [edge2 -> localhost]',
        'TASK [Fail] ****',
        'fatal: [edge1]: FAILED! => {"changed": false, "msg": "nope"}',
        '...ignoring',
        'fatal: [edge2]: FAILED! => {"changed": false, "msg": "no"}',
    ])
    doc = examples.parse_output(text)
    assert examples.msg_lines(doc, 'Report the gateways') == ['a', 'b']
    assert examples.results(doc, 'role : Apply')['edge1']['changed'] is True
    assert examples.results(doc, 'role : Apply')['edge2']['changed'] is False
    assert examples.failures(doc) == [('edge2', 'no')]
