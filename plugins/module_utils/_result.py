# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Returning a large result (hundreds of thousands of conntrack entries) from a module.

AnsibleModule.exit_json() walks the whole result twice before printing
it: remove_values() copies it with every no_log value masked, and
ansible-core's result encoder serialises it through Python-level hooks.
For a table of 200,000 entries those two walks took most of the module's
time (see docs/conntrack.md). When neither can change a byte of the
output, exit_large() prints the same document with the standard
library's C encoder instead:

- the module holds no no_log values (nothing to mask);
- no warnings or deprecations are pending (exit_json would add them);
- the result has no `path` key (exit_json would add file attributes);
- every value is a plain JSON type (the encoder has nothing to convert).

In every other case it is exit_json() itself.

A list of entries can also arrive already encoded (EncodedList, written
by _conntrack without building a dict per entry): exit_large() prints its
text as it is, and decodes it only for exit_json().

exit_streamed() goes further for a list too large to hold (a full
conntrack table): its items are written to stdout as they are produced,
inside the document, and the rest of the result follows them in the same
JSON object, as exit_json() (or fail_json(), when producing fails midway)
prints it. Memory then stays flat whatever the number of items.
"""

from __future__ import absolute_import, division, print_function

import io
import json
import sys
from collections.abc import Sequence

# get_warning_messages/get_deprecation_messages: the names every ansible-core
# from 2.15 to 2.21 has (get_warnings/get_deprecations are 2.19's only).
from ansible.module_utils import basic
from ansible.module_utils.common.warnings import get_deprecation_messages, get_warning_messages


class EncodedList(Sequence):
    """A list whose items are kept as their JSON texts; items decode on access."""

    def __init__(self, texts=None):
        self.texts = [] if texts is None else texts

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [json.loads(text) for text in self.texts[index]]
        return json.loads(self.texts[index])

    def __eq__(self, other):
        return list(self) == list(other) if isinstance(other, (list, EncodedList)) else NotImplemented

    __hash__ = None

    def encoded(self):
        return '[%s]' % ', '.join(self.texts)


def exit_large(module, **result):
    """module.exit_json(**result), printed by the C encoder when that is the same."""
    if module.no_log_values or get_warning_messages() or get_deprecation_messages() or 'path' in result:
        _exit_json(module, result)
    document = _with_invocation(module, dict(result))
    try:
        # allow_nan=False: NaN is not JSON; a value json cannot represent
        # goes the long way, where ansible-core decides what to do with it.
        parts = ['%s: %s' % (json.dumps(key), value.encoded() if isinstance(value, EncodedList)
                             else json.dumps(value, allow_nan=False))
                 for key, value in document.items()]
    except (TypeError, ValueError):
        _exit_json(module, result)
    module.do_cleanup_files()
    sys.stdout.write('\n{')
    sys.stdout.write(', '.join(parts))
    sys.stdout.write('}\n')
    sys.stdout.flush()
    # exit_json's own ending (clean-up, the document, exit 0), for results
    # it would print as the same document, only slower.
    sys.exit(0)  # pylint: disable=ansible-bad-function


def _with_invocation(module, document):
    """The invocation as exit_json() adds it: always before ansible-core 2.21; from 2.21 only when the
    controller asks for it (_ansible_inject_invocation, off by default), else not at all."""
    if '_ansible_inject_invocation' in basic.AnsibleModule._return_formatted.__code__.co_consts \
            and not (getattr(basic, '_PARSED_MODULE_ARGS', None) or {}).get('_ansible_inject_invocation', False):
        document.pop('invocation', None)
    else:
        document.setdefault('invocation', {'module_args': module.params})
    return document


def _exit_json(module, result):
    module.exit_json(**dict((key, list(value) if isinstance(value, EncodedList) else value)
                            for key, value in result.items()))


class _Stream:
    """write(texts): appends JSON texts to the list `key` of a document on stdout.

    Nothing is printed before the first item: until then the module can
    still end the usual way (exit_large, fail_json).
    """

    def __init__(self, head, key):
        self.opening = '\n{%s' % ''.join('%s: %s, ' % (json.dumps(name), json.dumps(value, allow_nan=False))
                                         for name, value in head.items())
        self.opening += '%s: [' % json.dumps(key)
        self.opened = list(head) + [key]
        self.written = 0

    def __call__(self, texts):
        if not texts:
            return
        write = sys.stdout.write
        write(self.opening if not self.written else ', ')
        write(', '.join(texts))
        self.written += len(texts)


def exit_streamed(module, head, key, produce, errors=()):
    """module.exit_json(**head, key=[...], **rest), the list written as it is produced.

    produce(write) returns the rest of the result (a dict) and hands the
    items of the list, as JSON texts, to write() in batches on the way.
    head holds the keys that come before the list (plain JSON values).

    The items are printed as they come; the rest of the document is what
    exit_json() prints for the same result with an empty list, spliced in
    after them: invocation, warnings and deprecations (also those raised
    while producing) are exit_json's own. When produce() raises after items
    went out, the document is closed the way fail_json() would write it
    (failed, msg, invocation...) with the items written so far, so the
    controller still reads one JSON result that says the module failed.
    An exception of `errors` fails with its text as the message (before
    any item, that is fail_json() itself); any other is a failure naming
    it. The module exits (0, or 1 on failure).

    With no_log values, where every item would have to be masked, the
    items are held and the result goes through exit_large() (exit_json).
    """
    if module.no_log_values:
        held = EncodedList()
        try:
            rest = produce(held.texts.extend)
        except errors as exc:
            module.fail_json(msg=str(exc))
        exit_large(module, **_document(head, key, held, rest))
    stream = _Stream(head, key)
    try:
        rest = produce(stream)
    except BaseException as exc:  # pylint: disable=broad-except
        if not stream.written:
            if isinstance(exc, errors):
                module.fail_json(msg=str(exc))
            raise
        if isinstance(exc, errors):
            msg = str(exc)
        else:
            msg = 'unexpected %s: %s' % (type(exc).__name__, exc)
        msg += ' (after %d of the %s were written; they are incomplete)' % (stream.written, key)
        _close(module, stream, module.fail_json, dict(_document(head, key, [], {}), msg=msg))
    if not stream.written:
        exit_large(module, **_document(head, key, [], rest))
    _close(module, stream, module.exit_json, _document(head, key, [], rest))


def _document(head, key, items, rest):
    document = dict(head)
    document[key] = items
    document.update(rest)
    return document


def _close(module, stream, ending, result):
    """After the streamed items, print the rest of what ending(**result) prints; exit as it does."""
    captured = io.StringIO()
    stdout = sys.stdout
    sys.stdout = captured
    try:
        ending(**result)
        code = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.stdout = stdout
    document = json.loads(captured.getvalue())
    for name in stream.opened:   # already printed: the head and the list itself
        document.pop(name, None)
    stdout.write('], ' if document else ']')
    stdout.write(', '.join('%s: %s' % (json.dumps(name), json.dumps(value)) for name, value in document.items()))
    stdout.write('}\n')
    stdout.flush()
    sys.exit(code)  # pylint: disable=ansible-bad-function
