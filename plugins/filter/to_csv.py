# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: to_csv
short_description: Render a list of dictionaries as CSV text
version_added: 0.1.0
description:
  - Turns rows (dictionaries) into CSV with a header line, quoted where needed, for spreadsheets and dashboards.
  - V(null) becomes an empty cell; lists and dictionaries are written as JSON.
author:
  - stateful.netfilter contributors
positional: columns
options:
  _input:
    description: The rows.
    type: list
    elements: dict
    required: true
  columns:
    description: The keys to write, in order. Default is every key, in the order they first appear.
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: Write a conntrack report for a dashboard
  ansible.builtin.copy:
    dest: /var/tmp/conntrack.csv
    content: "{{ rows | stateful.netfilter.to_csv(['host', 'total', 'max']) }}"
    mode: "0644"
  delegate_to: localhost
'''

RETURN = r'''
_value:
  description: The CSV text, lines ending in a newline.
  type: str
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.plugin_utils._report import ReportError, to_csv


def _to_csv(rows, columns=None):
    try:
        return to_csv(rows, columns)
    except ReportError as exc:
        raise AnsibleFilterError('to_csv: %s' % exc)


class FilterModule(object):

    def filters(self):
        return {'to_csv': _to_csv}
