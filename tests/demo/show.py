#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print module results of `ansible HOST -m MODULE -o` the way a person reads
conntrack: one line per entry with the original and the reply tuple.

  show.py entries < ansible-output     the entries (conntrack -L style)
  show.py conntrack < ansible-output   the entries as conntrack -L prints them
  show.py summary < ansible-output     count, total, max and the summary
  show.py stats < ansible-output       conntrack_stats: usage, counters, anomalies
  show.py talkers < ansible-output     the top talkers of a summary (bytes, packets)
  show.py flush < ansible-output       what a conntrack_flush deleted
Exits 1 when the module failed.
"""

import json
import sys


def result():
    text = sys.stdin.read()
    head, body = text.split('=>', 1)
    data = json.loads(body)
    if 'SUCCESS' not in head and 'CHANGED' not in head:
        print('module failed: %s' % data.get('msg', data))
        sys.exit(1)
    return data


def tuple_text(tup):
    words = ['src=%s' % tup['src'], 'dst=%s' % tup['dst']]
    if 'sport' in tup:
        words += ['sport=%s' % tup['sport'], 'dport=%s' % tup['dport']]
    elif 'type' in tup:
        words += ['type=%s' % tup['type'], 'code=%s' % tup['code'], 'id=%s' % tup['id']]
    return ' '.join(words)


def entry_text(entry):
    return '%-6s %-11s %s  =>  %s  [%s]' % (
        entry['protocol'], entry['state'] or '', tuple_text(entry['orig']),
        tuple_text(entry['reply']), entry['nat'])


def conntrack_text(entry):
    """An entry in conntrack -L's shape: proto, number, timeout, state, both tuples, counters, flags."""
    counters = entry.get('counters') or {}

    def side(name):
        words = [tuple_text(entry[name])]
        if name in counters:
            words.append('packets=%(packets)s bytes=%(bytes)s' % counters[name])
        return ' '.join(words)

    numbers = {'tcp': 6, 'udp': 17, 'icmp': 1, 'icmpv6': 58}
    words = ['%-8s' % entry['protocol'], str(numbers.get(entry['protocol'], '?')), str(entry['timeout'])]
    words += [entry['state']] if entry['state'] else []
    words.append(side('orig'))
    words += ['[UNREPLIED]'] if 'SEEN_REPLY' not in entry['status'] else []
    words.append(side('reply'))
    words += ['[ASSURED]'] if 'ASSURED' in entry['status'] else []
    words.append('mark=%s' % entry['mark'])
    return ' '.join(words)


def talkers(summary):
    """The top talkers of a summary with summary_details: [talkers]."""
    for key, unit in (('top_talkers_bytes', 'bytes'), ('top_talkers_packets', 'packets')):
        if key in summary:
            tops = ', '.join('%s (%s %s)' % (top['address'], top[unit], unit) for top in summary[key])
            print('  %-10s %s' % ('by ' + unit, tops))


def main():
    mode = sys.argv[1]
    data = result()
    if mode == 'entries':
        for entry in data['entries']:
            print('  ' + entry_text(entry))
        print('  (%d entries matched)' % data['count'])
    elif mode == 'conntrack':
        for entry in data['entries']:
            print('    ' + conntrack_text(entry))
    elif mode == 'stats':
        usage = 100.0 * data['count'] / data['max'] if data.get('max') else 0
        print('  table: %s entries of at most %s (%.2f%%)' % (data['count'], data['max'], usage))
        print('  counters (all CPUs): %s' % ', '.join('%s=%s' % item for item in sorted(data['totals'].items())))
        grown = (data.get('delta') or {}).get('counters') or {}
        grew = ', '.join('%s +%s' % item for item in sorted(grown.items()) if item[1]) or 'nothing'
        print('  grew in %ss: %s' % ((data.get('delta') or {}).get('seconds'), grew))
        checks = data.get('checks') or {}
        print('  checks: %d evaluated, anomalies: %s' % (
            sum(1 for check in checks.values() if check.get('evaluated')),
            '; '.join(item['msg'] for item in data.get('anomalies') or []) or 'none'))
    elif mode == 'summary':
        print('  table: %s entries of at most %s; %d matched' % (data['total'], data['max'], data['count']))
        for key in ('families', 'protocols', 'tcp_states', 'nat'):
            counts = data['summary'].get(key) or {}
            print('  %-10s %s' % (key, ', '.join('%s %s' % item for item in sorted(counts.items()))))
        tops = data['summary'].get('top_destinations') or []
        print('  %-10s %s' % ('top dst', ', '.join('%(address)s (%(count)s)' % top for top in tops)))
        tops = data['summary'].get('top_sources') or []
        print('  %-10s %s' % ('top src', ', '.join('%(address)s (%(count)s)' % top for top in tops)))
        talkers(data['summary'])
    elif mode == 'talkers':
        talkers(data['summary'])
    elif mode == 'flush':
        print('  changed: %s, matched %d, deleted %d' % (data['changed'], data['matched'], data['deleted']))
        for entry in data.get('sample', []):
            print('  deleted ' + entry_text(entry))
    return 0


if __name__ == '__main__':
    sys.exit(main())
