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
"""

from __future__ import absolute_import, division, print_function

import json
import sys
from collections.abc import Sequence

# get_warning_messages/get_deprecation_messages: the names every ansible-core
# from 2.15 to 2.21 has (get_warnings/get_deprecations are 2.19's only).
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
    document = dict(result)
    document.setdefault('invocation', {'module_args': module.params})
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


def _exit_json(module, result):
    module.exit_json(**dict((key, list(value) if isinstance(value, EncodedList) else value)
                            for key, value in result.items()))
