# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Report helpers of the collection playbooks (controller side, private).

Plain functions on plain data, used by the filter plugins: a text table,
CSV, one flat row per host from a conntrack_info result, and the fleet total
of many conntrack_info results.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import io
import json

from ansible_collections.stateful.netfilter.plugins.module_utils._validate import show

TOP_SIZE = 10

# The columns of conntrack_row() and conntrack_rows(), in order; also the CSV header.
ROW_COLUMNS = (
    'host', 'error', 'total', 'max', 'usage_percent', 'matched',
    'ipv4', 'ipv6', 'tcp', 'udp', 'icmp', 'other',
    'established', 'time_wait', 'snat', 'dnat', 'top_destination',
)


class ReportError(ValueError):
    """Bad input to a report filter."""


def _cell(value):
    if value is None:
        return '-'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    if isinstance(value, float):
        return '%.1f' % value
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _columns(rows, columns):
    if columns is None:
        columns = []
        for row in rows:
            columns.extend(key for key in row if key not in columns)
    if isinstance(columns, str) or not all(isinstance(key, str) for key in columns):
        raise ReportError('columns: expected a list of key names, got %s' % (show(columns),))
    return list(columns)


def _rows(rows):
    if not isinstance(rows, (list, tuple)) or not all(isinstance(row, dict) for row in rows):
        raise ReportError('expected a list of dictionaries, got %s' % (show(rows),))
    return rows


def _cut(text, width):
    if width is None or len(text) <= width:
        return text
    return text[:max(width - 3, 0)] + '...'


def text_table(rows, columns=None, headers=None, max_width=None):
    """Rows (dicts) as aligned text lines: a header, a rule, one line per row.

    columns: the keys shown, in order (default: every key, in order of first
    appearance); headers: titles for some keys (default: the key); max_width:
    longer cells are cut, ending in '...'. Numbers are right-aligned, the rest
    left-aligned; None shows as '-', booleans as yes/no.
    """
    rows = _rows(rows)
    columns = _columns(rows, columns)
    headers = headers or {}
    if not isinstance(headers, dict):
        raise ReportError('headers: expected a dictionary of titles, got %s' % (show(headers),))
    if max_width is not None and (isinstance(max_width, bool) or not isinstance(max_width, int) or max_width < 4):
        raise ReportError('max_width: expected an integer of 4 or more, got %s' % (show(max_width),))
    titles = [str(headers.get(key, key)) for key in columns]
    cells = [[_cut(_cell(row.get(key)), max_width) for key in columns] for row in rows]
    right = [any(_is_number(row.get(key)) for row in rows) for key in columns]
    widths = [max([len(title)] + [len(line[i]) for line in cells]) for i, title in enumerate(titles)]

    def line(values):
        return '  '.join(value.rjust(width) if align else value.ljust(width)
                         for value, width, align in zip(values, widths, right)).rstrip()

    return [line(titles), '  '.join('-' * width for width in widths)] + [line(values) for values in cells]


def to_csv(rows, columns=None):
    """Rows (dicts) as CSV text with a header line; None is an empty cell."""
    rows = _rows(rows)
    columns = _columns(rows, columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(columns)
    for row in rows:
        writer.writerow(['' if row.get(key) is None else
                         json.dumps(row[key], sort_keys=True) if isinstance(row[key], (dict, list)) else
                         row[key] for key in columns])
    return out.getvalue()


def usage_percent(total, maximum):
    """total of maximum in percent, one decimal; None when either is unknown."""
    if not _is_number(total) or not _is_number(maximum) or maximum <= 0:
        return None
    return round(100.0 * total / maximum, 1)


def _summary(result):
    summary = result.get('summary') or {}
    if not isinstance(summary, dict):
        raise ReportError('summary: expected a dictionary, got %s' % (show(summary),))
    return summary


def conntrack_row(result, host=None):
    """One flat row (ROW_COLUMNS) from a conntrack_info result.

    A failed or unreachable result gives a row with its error and no counts.
    """
    if not isinstance(result, dict):
        raise ReportError('expected a conntrack_info result (a dictionary), got %s' % (show(result),))
    row = dict.fromkeys(ROW_COLUMNS)
    row['host'] = host
    if result.get('failed') or result.get('unreachable') or result.get('skipped'):
        row['error'] = result.get('msg') or ('skipped' if result.get('skipped') else 'failed')
        return row
    summary = _summary(result)
    families = summary.get('families') or {}
    protocols = dict(summary.get('protocols') or {})
    states = summary.get('tcp_states') or {}
    nat = summary.get('nat') or {}
    row.update(
        total=result.get('total'),
        max=result.get('max'),
        usage_percent=usage_percent(result.get('total'), result.get('max')),
        matched=result.get('count'),
        ipv4=families.get('ipv4', 0),
        ipv6=families.get('ipv6', 0),
        tcp=protocols.pop('tcp', 0),
        udp=protocols.pop('udp', 0),
        icmp=protocols.pop('icmp', 0) + protocols.pop('icmpv6', 0),
        other=sum(protocols.values()),
        established=states.get('ESTABLISHED', 0),
        time_wait=states.get('TIME_WAIT', 0),
        snat=nat.get('snat', 0) + nat.get('both', 0),
        dnat=nat.get('dnat', 0) + nat.get('both', 0),
    )
    top = summary.get('top_destinations') or []
    if top:
        row['top_destination'] = '%s (%s)' % (top[0].get('address'), top[0].get('count'))
    return row


def conntrack_rows(results):
    """conntrack_row() of each host of a dict host: result, in its order."""
    if not isinstance(results, dict):
        raise ReportError('expected a dictionary of host name to conntrack_info result, got %s' % (show(results),))
    return [conntrack_row(result, host) for host, result in results.items()]


def _add(into, counts):
    for key, value in (counts or {}).items():
        into[key] = into.get(key, 0) + value


def _top(counts):
    return sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))[:TOP_SIZE]


def conntrack_fleet(results):
    """The fleet total of conntrack_info results (a list, or a dict host: result).

    Sums the counts and the summaries of the results that succeeded; merges
    the top destinations and ports (which are each host's top ten, so the
    fleet's are a lower bound for addresses outside them). Failed results are
    counted in hosts_failed.
    """
    if isinstance(results, dict):
        results = list(results.values())
    if not isinstance(results, (list, tuple)):
        raise ReportError('expected a list of conntrack_info results, got %s' % (show(results),))
    fleet = dict(hosts=0, hosts_failed=0, total=0, max=0, usage_percent=None, matched=0,
                 families={}, protocols={}, tcp_states={}, nat={}, top_destinations=[], top_ports=[])
    destinations, ports = {}, {}
    max_known = True
    for result in results:
        if not isinstance(result, dict):
            raise ReportError('expected a conntrack_info result (a dictionary), got %s' % (show(result),))
        fleet['hosts'] += 1
        if result.get('failed') or result.get('unreachable') or result.get('skipped'):
            fleet['hosts_failed'] += 1
            continue
        fleet['total'] += result.get('total') or 0
        fleet['matched'] += result.get('count') or 0
        if _is_number(result.get('max')):
            fleet['max'] += result['max']
        else:
            max_known = False
        summary = _summary(result)
        for key in ('families', 'protocols', 'tcp_states', 'nat'):
            _add(fleet[key], summary.get(key))
        for item in summary.get('top_destinations') or []:
            destinations[item['address']] = destinations.get(item['address'], 0) + item['count']
        for item in summary.get('top_ports') or []:
            key = (item['protocol'], item['port'])
            ports[key] = ports.get(key, 0) + item['count']
    if not max_known:
        fleet['max'] = None
    fleet['usage_percent'] = usage_percent(fleet['total'], fleet['max'])
    fleet['top_destinations'] = [dict(address=address, count=count) for address, count in _top(destinations)]
    fleet['top_ports'] = [dict(protocol=key[0], port=key[1], count=count) for key, count in _top(ports)]
    return fleet
