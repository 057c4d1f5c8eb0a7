# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Named anomaly checks on conntrack statistics and summaries, as data.

Private to the collection (conntrack_stats). Each check compares one
figure with a threshold the user may set and says whether it fired; a
check whose figure is not available (no second sample, no summary, an
empty table) is reported as not evaluated, never as passed silently.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError, show

# name -> (default threshold, kind, what the figure is). Percentages are
# 0-100; increases are counts (fire when the counter grew by more).
CHECKS = {
    'table_usage_percent': (90.0, 'percent', 'entries in the table, % of nf_conntrack_max'),
    'drop_increase': (0, 'count', 'growth of the drop counter between the two samples'),
    'early_drop_increase': (0, 'count', 'growth of the early_drop counter between the two samples'),
    'insert_failed_increase': (0, 'count', 'growth of the insert_failed counter between the two samples'),
    'top_source_percent': (50.0, 'percent', 'entries of the busiest original source, % of all entries'),
    'half_open_percent': (25.0, 'percent', 'TCP entries in SYN_SENT or SYN_RECV, % of TCP entries'),
}
# The share checks need at least this many entries (TCP entries for
# half_open_percent) to mean anything; settable as min_entries.
MIN_ENTRIES = 100
SUMMARY_CHECKS = ('top_source_percent', 'half_open_percent')
DELTA_CHECKS = ('drop_increase', 'early_drop_increase', 'insert_failed_increase')


def thresholds_argument_spec():
    """Suboptions of the thresholds option (defaults applied)."""
    spec = dict((name, dict(type='float' if kind == 'percent' else 'int', default=default))
                for name, (default, kind, dummy) in CHECKS.items())
    spec['min_entries'] = dict(type='int', default=MIN_ENTRIES)
    return spec


def parse_thresholds(given, param='thresholds'):
    """{check: threshold} plus min_entries, defaults filled in; ValidationError naming the bad key."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(CHECKS) - {'min_entries'})
    if unknown:
        raise ValidationError('%s.%s' % (param, unknown[0]), 'unknown check (one of %s, min_entries)'
                              % ', '.join(sorted(CHECKS)))
    out = {}
    for name, (default, kind, dummy) in CHECKS.items():
        value = given.get(name)
        value = default if value is None else value
        number = _number(value)
        if kind == 'percent' and not (number is not None and 0 <= number <= 100):
            raise ValidationError('%s.%s' % (param, name), 'must be a percentage 0-100, got %s' % show(value))
        if kind == 'count' and not (number is not None and number >= 0 and number == int(number)):
            raise ValidationError('%s.%s' % (param, name), 'must be a whole number 0 or more, got %s' % show(value))
        out[name] = number if kind == 'percent' else int(number)
    minimum = given.get('min_entries')
    minimum = MIN_ENTRIES if minimum is None else minimum
    number = _number(minimum)
    if number is None or number < 1 or number != int(number):
        raise ValidationError(param + '.min_entries', 'must be a whole number 1 or more, got %s' % show(minimum))
    out['min_entries'] = int(number)
    return out


def _number(value):
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _percent(part, whole):
    return round(100.0 * part / whole, 2)


def evaluate(thresholds, stats, summary=None):
    """(checks, anomalies): every check's figure and verdict, and the ones that fired.

    stats: conntrack_stats' result (count, max, delta when sampled
    twice); summary: conntrack_info's summary of the whole table, or None.
    """
    checks = {}

    def verdict(name, value=None, reason=None, **extra):
        threshold = thresholds[name]
        if value is None:
            checks[name] = dict(evaluated=False, threshold=threshold, reason=reason, fired=False)
        else:
            checks[name] = dict(evaluated=True, threshold=threshold, value=value, fired=value > threshold, **extra)

    count, maximum = stats.get('count'), stats.get('max')
    if count is None or not maximum:
        verdict('table_usage_percent', reason='the kernel reports no table size')
    else:
        verdict('table_usage_percent', _percent(count, maximum))
    delta = stats.get('delta')
    for name in DELTA_CHECKS:
        counter = name[:-len('_increase')]
        if delta is None:
            verdict(name, reason='needs two samples (set interval)')
        elif counter not in delta['counters']:
            verdict(name, reason='the kernel does not report %s' % counter)
        else:
            verdict(name, delta['counters'][counter])
    minimum = thresholds['min_entries']
    if summary is None:
        for name in SUMMARY_CHECKS:
            verdict(name, reason='needs the summary (set summary: true)')
    else:
        entries = sum(summary['families'].values())
        top = summary['top_sources'][0] if summary['top_sources'] else None
        if entries < minimum or top is None:
            verdict('top_source_percent', reason='%d entries, fewer than min_entries=%d' % (entries, minimum))
        else:
            verdict('top_source_percent', _percent(top['count'], entries), source=top['address'])
        tcp = sum(summary['tcp_states'].values())
        if tcp < minimum:
            verdict('half_open_percent', reason='%d TCP entries, fewer than min_entries=%d' % (tcp, minimum))
        else:
            verdict('half_open_percent', _percent(summary['half_open'], tcp))
    anomalies = []
    for name in sorted(checks):
        check = checks[name]
        if check['fired']:
            anomalies.append(dict(check=name, value=check['value'], threshold=check['threshold'],
                                  msg=_message(name, check)))
    return checks, anomalies


def _message(name, check):
    what = CHECKS[name][2]
    if 'source' in check:
        what += ' (%s)' % check['source']
    return '%s: %s is %s, above %s' % (name, what, check['value'], check['threshold'])
