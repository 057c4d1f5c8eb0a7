# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: conntrack_html
short_description: Render the conntrack report of a fleet as one self-contained HTML page
version_added: 0.1.0
description:
  - Turns the results the stateful.netfilter.conntrack_report playbook gathers into one HTML page that
    needs nothing else - no network fetch, no script; the style is inline and the charts are inline SVG.
  - A summary row per host (status, table usage against C(nf_conntrack_max) with the host's
    C(table_usage_percent) threshold marked, counts, the anomalies that fired), then a section per host with the
    TCP states, NAT kinds, protocols, top sources, destinations and translated sources, the top talkers by bytes
    and packets when accounting is on, the kernel's statistics and every anomaly check.
  - Hosts with an anomaly that loses packets or state (table usage, C(drop), C(early_drop), C(insert_failed)) or
    that could not be read are shown red, hosts with a share anomaly (top source, half-open) or a table above
    70 % of its threshold amber.
  - Every text that comes from a host is HTML-escaped.
author:
  - stateful.netfilter contributors
positional: title, generated
options:
  _input:
    description:
      - A dictionary with C(hosts), host name to M(stateful.netfilter.conntrack_info) result (C(summary_only),
        optionally with C(summary_details=[talkers])), and C(stats), host name to
        M(stateful.netfilter.conntrack_stats) result.
    type: dict
    required: true
  title:
    description: The page's title.
    type: str
    default: Conntrack report
  generated:
    description: A time stamp printed under the title.
    type: str
'''

EXAMPLES = r'''
- name: Write the page
  ansible.builtin.copy:
    dest: /var/tmp/conntrack-report.html
    content: "{{ {'hosts': results, 'stats': stats} | stateful.netfilter.conntrack_html('Gateways', now(utc=true)) }}"
    mode: "0644"
  delegate_to: localhost
'''

RETURN = r'''
_value:
  description: The page (HTML text).
  type: str
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.plugin_utils._report import ReportError
from ansible_collections.stateful.netfilter.plugins.plugin_utils._report_html import conntrack_html


def _conntrack_html(report, title='Conntrack report', generated=None):
    if not isinstance(title, str):
        raise AnsibleFilterError('conntrack_html: title: expected text, got %r' % (title,))
    try:
        return conntrack_html(report, title, None if generated is None else str(generated))
    except ReportError as exc:
        raise AnsibleFilterError('conntrack_html: %s' % exc)


class FilterModule(object):

    def filters(self):
        return {'conntrack_html': _conntrack_html}
