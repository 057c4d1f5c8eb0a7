# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The conntrack report of a fleet as one self-contained HTML page (private).

conntrack_html() turns what the conntrack_report playbook gathers (per host
the conntrack_info result and the conntrack_stats result) into a page that
needs nothing else: the style is inline, the charts are inline SVG, there is
no script and no fetch. Everything that comes from a host (names, addresses,
states, counters, messages) is escaped where it is written, by esc(); the
rest of the page is constant text and numbers this module formats.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import html

from ansible_collections.stateful.netfilter.plugins.module_utils._validate import show
from ansible_collections.stateful.netfilter.plugins.plugin_utils._report import (
    ReportError,
    conntrack_fleet,
    conntrack_row,
    usage_percent,
)

# How a fired check is shown: red when packets or state are being lost or the
# table is full, amber when a share looks wrong (a culprit to look at).
SEVERITY = {
    'table_usage_percent': 'red',
    'drop_increase': 'red',
    'early_drop_increase': 'red',
    'insert_failed_increase': 'red',
    'top_source_percent': 'amber',
    'half_open_percent': 'amber',
}
DEFAULT_USAGE_THRESHOLD = 90.0
TOP_ROWS = 5
LABEL_CHARS = 28

# Chart colours by series; states and NAT kinds not listed take PALETTE in order.
PALETTE = ('#4c78a8', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac')
FIXED_COLOURS = {
    'ESTABLISHED': '#4c78a8', 'SYN_SENT': '#e45756', 'SYN_RECV': '#f58518', 'TIME_WAIT': '#bab0ac',
    'none': '#bab0ac', 'snat': '#4c78a8', 'dnat': '#72b7b2', 'both': '#b279a2',
    'tcp': '#4c78a8', 'udp': '#72b7b2', 'icmp': '#eeca3b', 'icmpv6': '#f2cf5b',
}

STYLE = '''
:root { --ink: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #f6f8fa; --card: #ffffff;
        --red: #cf222e; --red-bg: #ffebe9; --amber: #9a6700; --amber-bg: #fff8c5;
        --green: #1a7f37; --green-bg: #dafbe1; --accent: #4c78a8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.5 -apple-system, "Segoe UI", "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 26px; margin: 0 0 2px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 0; }
h3 { font-size: 13px; margin: 0 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.05em; }
.sub { color: var(--muted); margin: 0 0 22px; }
.num { font-variant-numeric: tabular-nums; text-align: right; white-space: nowrap; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px; margin-bottom: 22px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
.card .k { color: var(--muted); font-size: 13px; }
.card .v { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { text-align: left; font-size: 12px; color: var(--muted); font-weight: 600; text-transform: uppercase;
     letter-spacing: 0.04em; background: var(--bg); }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 8px; margin-bottom: 22px; overflow-x: auto; }
.panel td, .panel th { padding: 6px 7px; font-size: 14px; }
.panel th { font-size: 11px; }
.nowrap { white-space: nowrap; }
.panel > table td:first-child, .panel > table th:first-child { padding-left: 16px; }
.host { background: var(--card); border: 1px solid var(--line); border-radius: 8px; margin-bottom: 22px; }
.host header { display: flex; align-items: baseline; gap: 14px; padding: 14px 16px; border-bottom: 1px solid var(--line); }
.host header .meta { color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 18px 28px; padding: 16px; }
.grid table td, .grid table th { padding: 3px 8px 3px 0; }
.pill { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.pill.red { background: var(--red-bg); color: var(--red); }
.pill.amber { background: var(--amber-bg); color: var(--amber); }
.pill.ok { background: var(--green-bg); color: var(--green); }
tr.red td { background: var(--red-bg); }
tr.amber td { background: var(--amber-bg); }
.alerts { margin: 0; padding: 12px 16px; list-style: none; border-bottom: 1px solid var(--line); }
.alerts li { padding: 6px 10px; border-radius: 6px; margin: 4px 0; border-left: 4px solid; }
.alerts li.red { background: var(--red-bg); border-color: var(--red); }
.alerts li.amber { background: var(--amber-bg); border-color: var(--amber); }
.note { color: var(--muted); font-size: 13px; }
.error, .red-text { color: var(--red); }
.amber-text { color: var(--amber); }
.panel .red-text, .panel .amber-text { font-size: 13px; font-weight: 600; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
svg text { font: 12px "DejaVu Sans", Arial, sans-serif; fill: var(--ink); }
svg .muted { fill: var(--muted); }
footer { color: var(--muted); font-size: 12px; margin-top: 28px; }
'''


def esc(value):
    """Any value as HTML text: escaped, quotes included (safe in text and in attribute values)."""
    return html.escape('' if value is None else str(value), quote=True)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _num(value):
    """A count or figure for people: thousands separated; '-' when unknown; anything else escaped."""
    if value is None:
        return '-'
    if isinstance(value, bool) or not _is_number(value):
        return esc(value)
    if isinstance(value, float) and value != int(value):
        return '{0:,.1f}'.format(value)
    return '{0:,}'.format(int(value))


def _bytes(value):
    if not _is_number(value):
        return _num(value)
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if value < 1024 or unit == 'GiB':
            return ('%d %s' % (value, unit)) if unit == 'B' else ('%.1f %s' % (value, unit))
        value /= 1024.0
    return _num(value)  # pragma: no cover - the loop always returns


def _cut(text, chars=LABEL_CHARS):
    text = '' if text is None else str(text)
    return text if len(text) <= chars else text[:chars - 1] + '\u2026'


def _dict(value, what):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReportError('%s: expected a dictionary, got %s' % (what, show(value)))
    return value


def _list(value, what):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ReportError('%s: expected a list of dictionaries, got %s' % (what, show(value)))
    return value


def _failed(result):
    return bool(result.get('failed') or result.get('unreachable') or result.get('skipped'))


def _colour(key, index):
    return FIXED_COLOURS.get(key, PALETTE[index % len(PALETTE)])


def usage_level(percent, threshold):
    """'red' at or above the threshold, 'amber' from 70 % of it, else 'ok'; None when unknown."""
    if not _is_number(percent):
        return None
    if percent >= threshold:
        return 'red'
    if percent >= 0.7 * threshold:
        return 'amber'
    return 'ok'


def usage_bar(percent, threshold, width=160, height=12):
    """Inline SVG: a bar of the table's usage with a tick at the threshold."""
    level = usage_level(percent, threshold) or 'ok'
    colour = {'red': '#cf222e', 'amber': '#d4a72c', 'ok': '#2da44e'}[level]
    filled = 0 if not _is_number(percent) else max(0.0, min(percent, 100.0)) * width / 100.0
    mark = max(0.0, min(threshold, 100.0)) * width / 100.0
    title = 'unknown' if not _is_number(percent) else '%s%% of the table, threshold %s%%' % (_num(percent), _num(threshold))
    return ('<svg width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">'
            '<title>%s</title>'
            '<rect width="%d" height="%d" rx="3" fill="#eaeef2"/>'
            '<rect width="%.1f" height="%d" rx="3" fill="%s"/>'
            '<line x1="%.1f" x2="%.1f" y1="0" y2="%d" stroke="#1f2328" stroke-width="1.5"/></svg>'
            % (width, height, width, height, esc(title), esc(title), width, height, filled, height, colour,
               mark, mark, height))


def bar_chart(items, width=330, unit=None):
    """Inline SVG of horizontal bars: items is [(label, value, colour)], value a number.

    Labels are cut to LABEL_CHARS and escaped; the full label is the bar's title.
    """
    items = [(label, value, colour) for label, value, colour in items if _is_number(value)]
    if not items:
        return '<p class="note">none</p>'
    row, label_w, value_w = 20, 130, 70
    bar_w = width - label_w - value_w
    top = max(value for dummy, value, dummy in items) or 1
    parts = ['<svg width="%d" height="%d" viewBox="0 0 %d %d" role="img">' % (width, row * len(items), width, row * len(items))]
    for i, (label, value, colour) in enumerate(items):
        y = i * row
        shown = unit(value) if unit else _num(value)
        parts.append(
            '<g><title>%s: %s</title>'
            '<text x="%d" y="%d" text-anchor="end">%s</text>'
            '<rect x="%d" y="%d" width="%.1f" height="%d" rx="2" fill="%s"/>'
            '<text x="%.1f" y="%d" class="muted">%s</text></g>'
            % (esc(label), shown, label_w - 8, y + 14, esc(_cut(label, 18)),
               label_w, y + 3, max(1.0, bar_w * value / float(top)), row - 6, esc(colour),
               label_w + max(1.0, bar_w * value / float(top)) + 6, y + 14, shown))
    parts.append('</svg>')
    return ''.join(parts)


def _counts_chart(counts, what):
    counts = _dict(counts, what)
    ranked = sorted(((k, v) for k, v in counts.items() if _is_number(v) and v > 0), key=lambda kv: (-kv[1], str(kv[0])))
    return bar_chart([(key, value, _colour(key, i)) for i, (key, value) in enumerate(ranked)])


def _address_table(items, what, columns):
    """A small table of ranked addresses; columns is [(title, key, formatter)]."""
    items = _list(items, what)[:TOP_ROWS]
    if not items:
        return '<p class="note">none</p>'
    head = ''.join('<th%s>%s</th>' % ('' if i == 0 else ' class="num"', esc(title))
                   for i, (title, dummy, dummy2) in enumerate(columns))
    body = []
    for item in items:
        cells = []
        for i, (dummy, key, fmt) in enumerate(columns):
            value = item.get(key)
            cells.append('<td>%s</td>' % esc(value) if i == 0 else '<td class="num">%s</td>' % fmt(value))
        body.append('<tr>%s</tr>' % ''.join(cells))
    return '<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table>' % (head, ''.join(body))


def host_anomalies(stats):
    """The anomalies of a conntrack_stats result as [(severity, message)], worst first."""
    stats = _dict(stats, 'stats')
    out = []
    for item in _list(stats.get('anomalies'), 'anomalies'):
        check = item.get('check')
        message = item.get('msg') or '%s: %s above %s' % (check, item.get('value'), item.get('threshold'))
        out.append((SEVERITY.get(check, 'amber'), message))
    return sorted(out, key=lambda pair: pair[0] != 'red')


def _usage_threshold(stats):
    check = _dict(_dict(stats.get('checks'), 'checks').get('table_usage_percent'), 'checks.table_usage_percent')
    threshold = check.get('threshold')
    return float(threshold) if _is_number(threshold) else DEFAULT_USAGE_THRESHOLD


def host_level(result, stats):
    """'red', 'amber' or 'ok' for a host: unreadable or a red anomaly is red."""
    if _failed(result) or (stats and _failed(stats)):
        return 'red'
    levels = [level for level, dummy in host_anomalies(stats)]
    if 'red' in levels:
        return 'red'
    if 'amber' in levels:
        return 'amber'
    row = conntrack_row(result)
    return 'amber' if usage_level(row['usage_percent'], _usage_threshold(stats)) == 'amber' else 'ok'


def _pill(level, text=None):
    text = text or {'red': 'alert', 'amber': 'warning', 'ok': 'ok'}[level]
    return '<span class="pill %s">%s</span>' % (level, esc(text))


def _summary_table(hosts, results, stats):
    head = ('<tr><th>Host</th><th>Status</th><th>Usage</th><th class="num">Entries</th>'
            '<th class="num">TCP</th><th class="num">UDP</th><th class="num">ICMP</th>'
            '<th class="num">Established</th><th class="num">Half-open</th><th class="num">Unreplied</th>'
            '<th class="num">SNAT</th><th class="num">DNAT</th><th>Anomalies</th></tr>')
    body = []
    for index, host in enumerate(hosts, 1):
        result, host_stats = results[host], stats.get(host) or {}
        level = host_level(result, host_stats)
        link = '<a href="#host-%d">%s</a>' % (index, esc(host))
        if _failed(result):
            body.append('<tr class="red"><td>%s</td><td>%s</td><td colspan="11" class="error">%s</td></tr>'
                        % (link, _pill('red', 'unreadable'), esc(conntrack_row(result, host)['error'])))
            continue
        row = conntrack_row(result, host)
        summary = _dict(result.get('summary'), 'summary')
        anomalies = host_anomalies(host_stats)
        if _failed(host_stats):
            named = '<span class="error">statistics: %s</span>' % esc(host_stats.get('msg') or 'failed')
        else:
            named = '<br>'.join('<span class="%s-text">%s</span>' % (sev, esc(message.split(':', 1)[0]))
                                for sev, message in anomalies) or '<span class="note">none</span>'
        body.append(
            '<tr class="%s"><td>%s</td><td>%s</td><td class="nowrap">%s <span class="num">%s%%</span></td>%s<td>%s</td></tr>'
            % ('' if level == 'ok' else level, link, _pill(level),
               usage_bar(row['usage_percent'], _usage_threshold(host_stats), width=90), _num(row['usage_percent']),
               ''.join('<td class="num">%s</td>' % _num(value) for value in (
                   row['total'], row['tcp'], row['udp'], row['icmp'], row['established'],
                   summary.get('half_open'), summary.get('unreplied'), row['snat'], row['dnat'])),
               named))
    return '<div class="panel"><table><thead>%s</thead><tbody>%s</tbody></table></div>' % (head, ''.join(body))


def _stats_block(stats):
    if not stats:
        return '<p class="note">not read</p>'
    if _failed(stats):
        return '<p class="error">%s</p>' % esc(stats.get('msg') or 'failed')
    totals = _dict(stats.get('totals'), 'totals')
    delta = _dict(stats.get('delta'), 'delta')
    grown = _dict(delta.get('counters'), 'delta.counters')
    rows = ''.join('<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td></tr>'
                   % (esc(name), _num(value), ('+' + _num(grown[name])) if _is_number(grown.get(name)) and grown[name] else '')
                   for name, value in sorted(totals.items(), key=lambda kv: str(kv[0])))
    seconds = delta.get('seconds')
    caption = ('<p class="note">growth over %s s between two samples</p>' % _num(seconds)) if _is_number(seconds) else ''
    table = ('<table><thead><tr><th>Counter</th><th class="num">Total</th><th class="num">Growth</th></tr></thead>'
             '<tbody>%s</tbody></table>' % rows) if rows else '<p class="note">no counters</p>'
    return table + caption


def _checks_block(stats):
    checks = _dict(stats.get('checks'), 'checks') if stats and not _failed(stats) else {}
    if not checks:
        return '<p class="note">no checks</p>'
    rows = []
    for name, check in sorted(checks.items(), key=lambda kv: str(kv[0])):
        check = _dict(check, 'checks.%s' % name)
        if check.get('fired'):
            verdict = _pill(SEVERITY.get(name, 'amber'), 'fired')
        elif check.get('evaluated'):
            verdict = _pill('ok')
        else:
            verdict = '<span class="note">%s</span>' % esc(check.get('reason') or 'not evaluated')
        rows.append('<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td><td>%s</td></tr>'
                    % (esc(name), _num(check.get('value')), _num(check.get('threshold')), verdict))
    return ('<table><thead><tr><th>Check</th><th class="num">Value</th><th class="num">Threshold</th><th></th></tr></thead>'
            '<tbody>%s</tbody></table>' % ''.join(rows))


def _host_section(index, host, result, stats):
    level = host_level(result, stats)
    if _failed(result):
        return ('<section class="host" id="host-%d"><header><h2>%s</h2>%s</header>'
                '<p class="error" style="padding:0 16px">%s</p></section>'
                % (index, esc(host), _pill('red', 'unreadable'), esc(conntrack_row(result, host)['error'])))
    row = conntrack_row(result, host)
    summary = _dict(result.get('summary'), 'summary')
    alerts = host_anomalies(stats)
    alert_list = ('<ul class="alerts">%s</ul>' % ''.join('<li class="%s">%s</li>' % (sev, esc(msg)) for sev, msg in alerts)
                  if alerts else '')
    meta = '%s of %s entries (%s%%)' % (_num(row['total']), _num(row['max']), _num(row['usage_percent']))
    if row['matched'] != row['total']:
        meta += ', %s match the filters' % _num(row['matched'])
    talker_cols_b = [('Address', 'address', None), ('Bytes', 'bytes', _bytes), ('Packets', 'packets', _num),
                     ('Entries', 'entries', _num)]
    talker_cols_p = [('Address', 'address', None), ('Packets', 'packets', _num), ('Bytes', 'bytes', _bytes),
                     ('Entries', 'entries', _num)]
    if 'accounted' not in summary:
        talkers = '<p class="note">not asked for (summary_details: talkers)</p>'
    elif not summary.get('accounted'):
        talkers = '<p class="note">no accounted entries: accounting (nf_conntrack_acct) is off</p>'
    else:
        talkers = ('<h3>Top talkers by bytes</h3>%s<h3 style="margin-top:12px">by packets</h3>%s'
                   % (_address_table(summary.get('top_talkers_bytes'), 'top_talkers_bytes', talker_cols_b),
                      _address_table(summary.get('top_talkers_packets'), 'top_talkers_packets', talker_cols_p)))
    ranked = [('Address', 'address', None), ('Entries', 'count', _num)]
    flags = bar_chart([(name, summary.get(key), colour) for name, key, colour in (
        ('assured', 'assured', '#4c78a8'), ('unreplied', 'unreplied', '#bab0ac'), ('half-open', 'half_open', '#e45756'))])
    blocks = [
        ('Table usage', '%s <span class="num">%s%%</span><p class="note">%s</p>'
         % (usage_bar(row['usage_percent'], _usage_threshold(stats), width=300, height=16), _num(row['usage_percent']), meta)),
        ('TCP states', _counts_chart(summary.get('tcp_states'), 'tcp_states')),
        ('NAT kinds', _counts_chart(summary.get('nat'), 'nat')),
        ('Protocols', _counts_chart(summary.get('protocols'), 'protocols')),
        ('Assured, unreplied, half-open', flags),
        ('Top sources', _address_table(summary.get('top_sources'), 'top_sources', ranked)),
        ('Top destinations', _address_table(summary.get('top_destinations'), 'top_destinations', ranked)),
        ('Top translated sources', _address_table(summary.get('top_translated_sources'), 'top_translated_sources', ranked)),
        ('Talkers', talkers),
        ('Kernel statistics', _stats_block(stats)),
        ('Anomaly checks', _checks_block(stats)),
    ]
    return ('<section class="host" id="host-%d"><header><h2>%s</h2>%s<span class="meta">%s</span></header>%s'
            '<div class="grid">%s</div></section>'
            % (index, esc(host), _pill(level), meta, alert_list,
               ''.join('<div><h3>%s</h3>%s</div>' % (esc(title), body) for title, body in blocks)))


def conntrack_html(report, title='Conntrack report', generated=None):
    """The page, as text, of report = dict(hosts={host: conntrack_info result}, stats={host: conntrack_stats result}).

    generated: a time stamp (text) printed under the title. ReportError on
    input of the wrong shape.
    """
    report = _dict(report, 'report')
    results = _dict(report.get('hosts'), 'hosts')
    stats = _dict(report.get('stats'), 'stats')
    for host, result in results.items():
        _dict(result, 'hosts.%s' % host)
        _dict(stats.get(host), 'stats.%s' % host)
    hosts = list(results)
    fleet = conntrack_fleet(results)
    levels = [host_level(results[host], stats.get(host) or {}) for host in hosts]
    anomalies = sum(len(host_anomalies(stats.get(host) or {})) for host in hosts)
    cards = [
        ('Hosts', _num(fleet['hosts']), None),
        ('Entries', _num(fleet['total']), None),
        ('Fleet usage', '%s%%' % _num(usage_percent(fleet['total'], fleet['max'])), None),
        ('Alerts', _num(levels.count('red')), 'red' if 'red' in levels else None),
        ('Warnings', _num(levels.count('amber')), 'amber' if 'amber' in levels else None),
        ('Anomalies', _num(anomalies), None),
    ]
    card_html = ''.join('<div class="card"><div class="k">%s</div><div class="v"%s>%s</div></div>'
                        % (esc(k), ' style="color:var(--%s)"' % level if level else '', v) for k, v, level in cards)
    sub = '%d host%s' % (len(hosts), '' if len(hosts) == 1 else 's')
    if fleet['hosts_failed']:
        sub += ', %d unreadable' % fleet['hosts_failed']
    if generated:
        sub += ' \u00b7 %s' % generated
    sections = ''.join(_host_section(i, host, results[host], stats.get(host) or {}) for i, host in enumerate(hosts, 1))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; img-src data:">'
        '<title>%s</title><style>%s</style></head>\n<body><main>'
        '<h1>%s</h1><p class="sub">%s</p><div class="cards">%s</div>%s%s'
        '<footer>stateful.netfilter conntrack_report \u00b7 usage bars mark each host\'s table_usage_percent threshold'
        '</footer></main></body></html>\n'
        % (esc(title), STYLE, esc(title), esc(sub), card_html, _summary_table(hosts, results, stats), sections))
