# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: text_table
short_description: Render a list of dictionaries as an aligned text table
version_added: 0.1.0
description:
  - Turns rows (dictionaries) into lines of text - a header, a rule and one line per row - for a readable
    C(ansible.builtin.debug) report.
  - Numbers are right-aligned, everything else left-aligned; V(null) shows as C(-), booleans as C(yes) or C(no).
author:
  - stateful.netfilter contributors
positional: columns, headers, max_width
options:
  _input:
    description: The rows.
    type: list
    elements: dict
    required: true
  columns:
    description: The keys to show, in order. Default is every key, in the order they first appear.
    type: list
    elements: str
  headers:
    description: Column titles by key; a key without a title is its own title.
    type: dict
  max_width:
    description: Cut longer cells to this many characters, ending in C(...); at least V(4). No limit by default.
    type: int
'''

EXAMPLES = r'''
- name: Print a per-host table
  ansible.builtin.debug:
    msg: "{{ rows | stateful.netfilter.text_table(['host', 'matched', 'deleted'], {'deleted': 'would delete'}) }}"
  vars:
    rows:
      - {host: gw1, matched: 12, deleted: 12}
      - {host: gw2, matched: 3, deleted: 3}
# msg:
#   - "host  matched  would delete"
#   - "----  -------  ------------"
#   - "gw1        12            12"
#   - "gw2         3             3"
'''

RETURN = r'''
_value:
  description: The lines of the table.
  type: list
  elements: str
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.plugin_utils._report import ReportError, text_table


def _text_table(rows, columns=None, headers=None, max_width=None):
    try:
        return text_table(rows, columns, headers, max_width)
    except ReportError as exc:
        raise AnsibleFilterError('text_table: %s' % exc)


class FilterModule(object):

    def filters(self):
        return {'text_table': _text_table}
