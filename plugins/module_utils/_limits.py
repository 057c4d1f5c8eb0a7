# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-source limits of a role entry: connections (connlimit) and rate of new connections (hashlimit).

Private to the collection. Pure Python, no I/O. One idea used by both roles:
an allow entry of the firewall role (firewall_input_allow) and a port forward
of the nat_gateway role (nat_gateway_port_forwards) take the same options

    max_connections_per_source: N   more than N open connections from one address are refused
    rate_per_source: RATE           new connections from one address above RATE (10/sec, 30/min) are refused
    rate_burst: B                   connections of one address let through at once before the rate applies
    limit_action: reject | drop     how a refused connection ends (default reject)

and limit_rules() turns them into rules of the model placed in front of the
entry's ACCEPT rule: they match what that rule matches, on the first packet
of a connection only, and end it with REJECT (a TCP reset for TCP, an ICMP
port unreachable otherwise) or DROP. reject is the default: the client learns
at once that it hit a limit, instead of resending its SYN for seconds while
the slot may or may not free up; drop gives a flood nothing back.

The engine checks the values (connlimit and hashlimit of _rules); OPTIONS maps
its keys back to the entry options so that an error names the option the user
wrote.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

ENTRY_KEYS = ('max_connections_per_source', 'rate_per_source', 'rate_burst', 'limit_action')
ACTIONS = ('reject', 'drop')
DEFAULT_ACTION = 'reject'
# Model key of a limit rule -> the entry option it came from (for error messages).
OPTIONS = {'connlimit_above': 'max_connections_per_source', 'hashlimit_above': 'rate_per_source',
           'hashlimit_burst': 'rate_burst', 'hashlimit_name': 'name'}
# What a limit rule copies of the rule it guards: the matches, never the target.
MATCH_KEYS = ('family', 'protocol', 'source', 'destination', 'in_interface', 'destination_port')
_UNSAFE = re.compile(r'[^A-Za-z0-9_.-]')


def _given(value):
    return value is not None and value != ''


def has_limits(entry):
    return any(_given(entry.get(key)) for key in ENTRY_KEYS[:2])


def problems(variable, entry):
    """What the argument spec cannot check of an entry's limit options, as messages naming variable and entry."""
    found = []
    name = entry.get('name')
    action = entry.get('limit_action')
    if _given(action) and str(action).lower() not in ACTIONS:
        found.append('%s entry %s: limit_action: %r is not %s.' % (variable, name, action, ' or '.join(ACTIONS)))
    if _given(action) and not has_limits(entry):
        found.append('%s entry %s: limit_action: needs max_connections_per_source or rate_per_source.'
                     % (variable, name))
    if _given(entry.get('rate_burst')) and not _given(entry.get('rate_per_source')):
        found.append('%s entry %s: rate_burst: needs rate_per_source.' % (variable, name))
    return found


def table_name(tag, entry_name):
    """A hashlimit table name of an entry: readable, at most 31 characters, distinct per entry (hash suffix)."""
    digest = hashlib.sha1(('%s/%s' % (tag, entry_name)).encode('utf-8')).hexdigest()[:6]
    return '%s-%s-%s' % (tag, _UNSAFE.sub('_', str(entry_name))[:31 - len(tag) - 8], digest)


def limit_rules(rule, entry, tag, ctstate=('NEW',)):
    """The rules that enforce an entry's limits, to put in front of its ACCEPT rule (empty without limits).

    rule is the ACCEPT rule of the model the limits guard; tag names the role's table of rate buckets
    ('in', 'pf'); ctstate is the conntrack state of the packets to count (the first of a connection).
    """
    if not has_limits(entry):
        return []
    base = dict((key, rule[key]) for key in MATCH_KEYS if key in rule)
    base['ctstate'] = list(ctstate)
    action = str(entry.get('limit_action') or DEFAULT_ACTION).lower()
    if action == 'drop':
        base['jump'] = 'DROP'
    else:
        base['jump'] = 'REJECT'
        if str(rule.get('protocol', '')).lower() in ('tcp', '6'):
            base['reject_with'] = 'tcp-reset'
    out = []
    if _given(entry.get('max_connections_per_source')):
        out.append(dict(base, name='conn:%s' % rule['name'], connlimit_above=entry['max_connections_per_source']))
    if _given(entry.get('rate_per_source')):
        limit = dict(base, name='rate:%s' % rule['name'], hashlimit_above=entry['rate_per_source'],
                     hashlimit_mode=['srcip'], hashlimit_name=table_name(tag, entry['name']))
        if _given(entry.get('rate_burst')):
            limit['hashlimit_burst'] = entry['rate_burst']
        out.append(limit)
    return out
