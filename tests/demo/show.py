#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print module results of `ansible HOST -m MODULE -o` the way a person reads
conntrack: one line per entry with the original and the reply tuple.

  show.py entries < ansible-output     the entries (conntrack -L style)
  show.py summary < ansible-output     count, total, max and the summary
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


def main():
    mode = sys.argv[1]
    data = result()
    if mode == 'entries':
        for entry in data['entries']:
            print('  ' + entry_text(entry))
        print('  (%d entries matched)' % data['count'])
    elif mode == 'summary':
        print('  table: %s entries of at most %s; %d matched' % (data['total'], data['max'], data['count']))
        for key in ('families', 'protocols', 'tcp_states', 'nat'):
            counts = data['summary'].get(key) or {}
            print('  %-10s %s' % (key, ', '.join('%s %s' % item for item in sorted(counts.items()))))
        tops = data['summary'].get('top_destinations') or []
        print('  %-10s %s' % ('top dst', ', '.join('%(address)s (%(count)s)' % top for top in tops)))
    elif mode == 'flush':
        print('  changed: %s, matched %d, deleted %d' % (data['changed'], data['matched'], data['deleted']))
        for entry in data.get('sample', []):
            print('  deleted ' + entry_text(entry))
    return 0


if __name__ == '__main__':
    sys.exit(main())
