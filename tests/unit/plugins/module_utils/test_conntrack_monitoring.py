# SPDX-License-Identifier: GPL-3.0-or-later
"""Monitoring (issue 16): statistics, expectations and events decoded from captured kernel messages; the richer
summary against conntrack-tools' listing of the same table; status and ICMP filters; anomaly checks.

Fixtures: tests/unit/fixtures/conntrack, written by bench/capture_monitoring_fixtures.py (statistics,
expectations, events, with `conntrack -S`, `-C` and `-L expect` of the same namespace) and
bench/capture_fixtures.py (the table and `conntrack -L -o id,extended`).
"""

import os
import socket

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _conntrack as ct, _ctcodec, _ctfilters, _ctsummary
from ansible_collections.stateful.netfilter.plugins.module_utils import _ctanalysis, _ctevents, _ctstats, _netlink
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'conntrack')
FAMILY = {'ipv4': socket.AF_INET, 'ipv6': socket.AF_INET6}


def messages(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return [bytes.fromhex(line) for line in handle.read().split()]


def text(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


# ---------------------------------------------------------------- statistics

class StatsSocket:
    """Replays the captured statistics and expectation messages."""

    REPLIES = {_ctstats.CT_GET_STATS_CPU: 'stats-cpu.hex', _ctstats.EXP_GET_STATS_CPU: 'expect-stats-cpu.hex',
               _ctstats.EXP_GET: 'expect-ipv4.hex'}

    def __init__(self):
        self.asked = []

    def dump(self, msg_type, family, attrs=b'', version=0):
        self.asked.append((msg_type, family))
        if msg_type == _ctstats.EXP_GET and family != socket.AF_INET:
            return
        for msg in messages(self.REPLIES[msg_type]):
            yield msg, 20, len(msg)

    def request(self, msg_type, family, attrs=b'', version=0):
        assert msg_type == _ctstats.CT_GET_STATS
        return [(msg, 20, len(msg)) for msg in messages('stats.hex')]


def cli_stats():
    rows = {}
    for line in text('conntrack-S.txt').splitlines():
        fields = dict(token.split('=') for token in line.split())
        cpu = int(fields.pop('cpu'))
        rows[cpu] = dict((key, int(value)) for key, value in fields.items())
    return rows


def test_per_cpu_counters_are_what_conntrack_s_prints():
    one = _ctstats.sample(StatsSocket())
    assert dict((row['cpu'], dict((k, v) for k, v in row.items() if k != 'cpu')) for row in one['per_cpu']) \
        == cli_stats()
    for name in cli_stats()[0]:
        assert one['totals'][name] == sum(row[name] for row in cli_stats().values())
    assert one['totals']['invalid'] > 0        # the capture sent invalid segments
    assert one['count'] == int(text('conntrack-C.txt'))
    assert one['max'] > 0
    assert one['expect_totals']['create'] >= 1 and set(one['expect_totals']) == {'new', 'create', 'delete'}


def test_counters_the_kernel_stopped_sending_are_not_invented():
    one = _ctstats.sample(StatsSocket())
    assert not set(one['totals']) & {'searched', 'new', 'ignore', 'delete', 'delete_list'}


def test_delta_wraps_each_cpu_counter_at_32_bits():
    before = dict(time=10.0, per_cpu=[dict(cpu=0, drop=2 ** 32 - 3, insert=5), dict(cpu=1, drop=7, insert=1)],
                  totals=dict(drop=2 ** 32 + 4, insert=6))
    after = dict(time=12.0, per_cpu=[dict(cpu=0, drop=2, insert=5), dict(cpu=1, drop=9, insert=1)],
                 totals=dict(drop=11, insert=6))
    grown = _ctstats.delta(before, after)
    assert grown == dict(seconds=2.0, counters=dict(drop=5 + 2, insert=0), rates=dict(drop=3.5, insert=0.0))


def cli_expectation():
    """The one line of `conntrack -L expect`, parsed independently of the module."""
    tokens = text('conntrack-L-expect.txt').split()
    out = dict(timeout=int(tokens[0]), tuples=[])
    for token in tokens[1:]:
        key, value = token.split('=', 1)
        if key in ('src', 'mask-src', 'master-src'):
            out['tuples'].append(dict(src=value))
        elif key in ('dst', 'mask-dst', 'master-dst'):
            out['tuples'][-1]['dst'] = value
        elif key in ('sport', 'dport'):
            out['tuples'][-1][key] = int(value)
        else:
            out[key] = value
    return out


def test_expectation_is_what_conntrack_l_expect_prints():
    found = _ctstats.list_expectations(StatsSocket(), _ctstats.build_expect_filter(None))
    assert len(found) == 1
    exp, cli = found[0], cli_expectation()
    assert exp['protocol'] == 'tcp' and cli['proto'] == '6'
    assert [exp['tuple'], exp['mask'], exp['master']] == cli['tuples']
    assert exp['helper'] == cli['helper'] == 'ftp' and exp['class'] == int(cli['class']) == 0
    # Read a moment apart: the timeout may have ticked.
    assert 0 <= exp['timeout'] - cli['timeout'] <= 1 or 0 <= cli['timeout'] - exp['timeout'] <= 1
    assert exp['family'] == 'ipv4' and exp['zone'] == 0 and exp['flags'] == [] and isinstance(exp['id'], int)


@pytest.mark.parametrize('flt, found', [
    (None, 1), ({'helper': 'ftp'}, 1), ({'helper': 'sip'}, 0), ({'protocol': 'tcp'}, 1), ({'protocol': 'udp'}, 0),
    ({'dst': '127.0.0.0/8', 'dport': 50000}, 1), ({'dport': 50001}, 0), ({'src': '10.0.0.1'}, 0),
    ({'family': 'ipv6'}, 0),
])
def test_expectation_filters(flt, found):
    sock = StatsSocket()
    assert len(_ctstats.list_expectations(sock, _ctstats.build_expect_filter(flt))) == found


@pytest.mark.parametrize('flt, param, fragment', [
    ({'protocol': 'icmp'}, 'expect_filter.protocol', 'no conntrack helper expects icmp'),
    ({'protocol': 'nonsense'}, 'expect_filter.protocol', ''),
    ({'family': 'ipx'}, 'expect_filter.family', 'must be one of'),
    ({'src': '10.0.0.0/33'}, 'expect_filter.src', ''),
    ({'src': '10.0.0.1', 'dst': 'fd00::1'}, 'expect_filter.dst', ''),
    ({'dport': 0}, 'expect_filter.dport', 'must be a port'),
    ({'dport': True}, 'expect_filter.dport', 'must be a port'),
    ({'helper': 'ftp; rm'}, 'expect_filter.helper', 'helper name'),
    ({'colour': 'red'}, 'expect_filter.colour', 'unknown filter'),
])
def test_bad_expectation_filters_name_the_key(flt, param, fragment):
    with pytest.raises(ValidationError) as info:
        _ctstats.build_expect_filter(flt)
    assert info.value.param == param and fragment in str(info.value)


@pytest.mark.parametrize('value', [0, 0.05, 301, 3600, 'soon', True, float('nan')])
def test_intervals_of_zero_or_hours_are_refused(value):
    with pytest.raises(ValidationError) as info:
        _ctstats.check_interval(value)
    assert info.value.param == 'interval'


# ---------------------------------------------------------------- events

def test_events_are_classified_and_counted_as_they_happened():
    """The capture made 3 UDP flows and deleted them: 3 new, then 3 destroy (and updates, if any, between)."""
    kinds = []
    tally = _ctevents._Tally(sample=2)
    for msg in messages('events.hex'):
        length, msg_type, flags = _netlink.NLMSG_LEN_TYPE_FLAGS.unpack_from(msg, 0)
        kind = _ctevents._kind(msg_type, flags)
        kinds.append(kind)
        tally.add(kind, msg, 20, len(msg), msg[16])
    assert [kind for kind in kinds if kind != 'update'] == ['new'] * 3 + ['destroy'] * 3
    assert tally.events['new'] == 3 and tally.events['destroy'] == 3
    assert tally.sources == {(socket.AF_INET, socket.inet_aton('127.0.0.1')): 3}
    assert sorted(port for (proto, port) in tally.ports) == [7001, 7002, 7003]
    assert [entry['event'] for entry in tally.sampled] == ['new', 'new']
    assert tally.sampled[0]['protocol'] == 'udp' and tally.sampled[0]['orig']['dport'] == 7001


@pytest.mark.parametrize('params, param', [
    (dict(duration=0), 'duration'), (dict(duration=3600), 'duration'), (dict(duration='x'), 'duration'),
    (dict(duration=1, events=['created']), 'events'), (dict(duration=1, sample=-1), 'sample'),
    (dict(duration=1, sample=5000), 'sample'),
])
def test_bad_event_options_name_the_option(params, param):
    with pytest.raises(ValidationError) as info:
        _ctevents.check_options(params)
    assert info.value.param == param


def test_event_options():
    assert _ctevents.check_options(dict(duration=2.5)) == (2.5, ['new', 'destroy'], 0)
    assert _ctevents.check_options(dict(duration=1, events=['update', 'update'], sample=3)) == (1.0, ['update'], 3)


class EventSocket:
    """Replays the captured events; drops() says what the kernel dropped before and after."""

    def __init__(self, overruns=0, drops=(0, 0)):
        self.overruns = overruns
        self.drop_counts = list(drops)
        self.groups = None
        self.rcvbuf = None

    def __call__(self, rcvbuf=None):
        self.rcvbuf = rcvbuf
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def subscribe(self, groups):
        self.groups = list(groups)

    def drops(self):
        return self.drop_counts.pop(0) if self.drop_counts else 0

    def listen(self, seconds, clock):
        for msg in messages('events.hex'):
            length, msg_type, flags = _netlink.NLMSG_LEN_TYPE_FLAGS.unpack_from(msg, 0)
            yield msg, 20, len(msg), msg_type, flags


@pytest.mark.parametrize('overruns, drops, complete, lost', [
    (0, (0, 0), True, 0), (2, (0, 0), False, 0), (0, (5, 9), False, 4), (0, (None, None), True, None)])
def test_a_sample_says_when_events_were_lost(monkeypatch, overruns, drops, complete, lost):
    sock = EventSocket(overruns, drops)
    monkeypatch.setattr(_netlink, 'NetlinkSocket', sock)
    ticks = iter(range(100))
    result = _ctevents.sample_events(_ctfilters.build_filter({}), 1.0, ['new', 'destroy'], clock=lambda: next(ticks))
    assert sock.groups == [1, 3] and sock.rcvbuf == _ctevents.EVENTS_RCVBUF
    assert result['events'] == {'new': 3, 'destroy': 3} and result['rates'] == {'new': 3.0, 'destroy': 3.0}
    assert result['complete'] is complete and result['lost'] == lost and result['overruns'] == overruns
    assert result['top_new_sources'] == [{'address': '127.0.0.1', 'count': 3}]


def test_event_filters_apply_to_every_event(monkeypatch):
    monkeypatch.setattr(_netlink, 'NetlinkSocket', EventSocket())
    ticks = iter(range(100))
    result = _ctevents.sample_events(_ctfilters.build_filter({'dport': '7002', 'protocol': 'udp'}), 1.0,
                                     ['new', 'destroy'], clock=lambda: next(ticks))
    assert result['events'] == {'new': 1, 'destroy': 1}
    result = _ctevents.sample_events(_ctfilters.build_filter({'family': 'ipv6'}), 1.0, ['new'], clock=lambda: next(ticks))
    assert result['events'] == {'new': 0}


# ---------------------------------------------------------------- the summary against conntrack -L

def cli_entries():
    """Every entry of conntrack-ipv4.txt / -ipv6.txt as (family, tokens)."""
    out = []
    for label in FAMILY:
        for line in text('conntrack-%s.txt' % label).splitlines():
            if line.strip():
                out.append(line.split())
    return out


def entry_id(tokens):
    """The entry's id (the last token; ICMP tuples have an id= of their own)."""
    return int(tokens[-1].split('=')[1])


def field(tokens, key, nth=0):
    return [token.split('=', 1)[1] for token in tokens if token.startswith(key + '=')][nth]


class DumpSocket:
    def __call__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def dump(self, msg_type, family, attrs=b'', version=0):
        for msg in messages('dump-%s.hex' % _ctcodec.FAMILY_NAMES[family]):
            yield msg, 20, len(msg)


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setattr(_netlink, 'NetlinkSocket', DumpSocket())


def count(entries):
    counts = {}
    for key in entries:
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.parametrize('args', [dict(summary_only=True), dict(limit=0), dict(limit=5)])
def test_the_culprits_are_those_conntrack_tools_shows(table, args):
    summary = ct.list_entries(_ctfilters.build_filter({}), details=_ctsummary.DETAILS, **args)['summary']
    entries = cli_entries()
    assert summary['unreplied'] == sum('[UNREPLIED]' in tokens for tokens in entries)
    assert summary['assured'] == sum('[ASSURED]' in tokens for tokens in entries) > 0
    assert summary['half_open'] == sum(tokens[5] in ('SYN_SENT', 'SYN_RECV') for tokens in entries
                                       if tokens[2] == 'tcp') > 0
    sources = count(field(tokens, 'src') for tokens in entries)
    assert summary['top_sources'] == [dict(address=address, count=number) for address, number in sorted(
        sources.items(), key=lambda item: (-item[1], socket.inet_pton(
            socket.AF_INET6 if ':' in item[0] else socket.AF_INET, item[0])))][:_ctsummary.TOP_SIZE] or sources == {}
    # Source NAT: the reply comes back to another address than the original source.
    translated = count(field(tokens, 'dst', 1) for tokens in entries if field(tokens, 'dst', 1) != field(tokens, 'src'))
    assert dict((top['address'], top['count']) for top in summary['top_translated_sources']) == translated
    assert summary['top_translated_destinations'] == []     # no DNAT in the capture
    zones = count((int(field(tokens, key)), direction) if any(t.startswith(key + '=') for t in tokens) else None
                  for tokens in entries for key, direction in [next(
                      ((k, d) for k, d in (('zone', 'both'), ('zone-orig', 'orig'), ('zone-reply', 'reply'))
                       if any(t.startswith(k + '=') for t in tokens)), ('zone', 'both'))])
    zones[(0, 'both')] = zones.pop(None, 0)
    assert dict(((z['zone'], z['zone_dir']), z['count']) for z in summary['zones']) == \
        dict((key, value) for key, value in zones.items() if value)
    marks = count(int(field(tokens, 'mark')) for tokens in entries)
    assert dict((m['mark'], m['count']) for m in summary['marks']) == marks
    talkers = {}
    for tokens in entries:
        bytes_ = sum(int(token.split('=')[1]) for token in tokens if token.startswith('bytes='))
        packets = sum(int(token.split('=')[1]) for token in tokens if token.startswith('packets='))
        row = talkers.setdefault(field(tokens, 'src'), [0, 0, 0])
        row[0] += bytes_
        row[1] += packets
        row[2] += 1
    assert summary['accounted'] == len(entries)
    top = summary['top_talkers_bytes'][0]
    assert [top['bytes'], top['packets'], top['entries']] == talkers[top['address']]
    assert top['bytes'] == max(row[0] for row in talkers.values())
    top = summary['top_talkers_packets'][0]
    assert top['packets'] == max(row[1] for row in talkers.values())


def test_details_are_computed_only_when_asked(table):
    summary = ct.list_entries(_ctfilters.build_filter({}), summary_only=True)['summary']
    assert not set(summary) & {'zones', 'marks', 'accounted', 'top_talkers_bytes', 'top_talkers_packets'}


# ---------------------------------------------------------------- status and ICMP filters

@pytest.mark.parametrize('params, flag, present', [
    ({'status': ['UNREPLIED']}, '[UNREPLIED]', True),
    ({'status': ['!seen_reply']}, '[UNREPLIED]', True),
    ({'status': ['SEEN_REPLY']}, '[UNREPLIED]', False),
    ({'status': ['ASSURED']}, '[ASSURED]', True),
    ({'status': ['!ASSURED']}, '[ASSURED]', False),
])
def test_status_filters_select_what_conntrack_tools_marks(table, params, flag, present):
    listed = ct.list_entries(_ctfilters.build_filter(params), limit=0)
    expected = set(entry_id(tokens) for tokens in cli_entries() if (flag in tokens) == present)
    assert set(entry['id'] for entry in listed['entries']) == expected and expected


@pytest.mark.parametrize('params, predicate', [
    ({'protocol': 'icmp', 'icmp_type': 8}, lambda t: t[2] == 'icmp' and field(t, 'type') == '8'),
    ({'protocol': 'icmp', 'icmp_type': 0}, lambda t: False),
    ({'protocol': 'icmp', 'icmp_type': 8, 'icmp_code': 0}, lambda t: t[2] == 'icmp' and field(t, 'code') == '0'),
    ({'protocol': 'icmpv6', 'icmp_type': 128}, lambda t: t[2] == 'icmpv6' and field(t, 'type') == '128'),
])
def test_icmp_filters(table, params, predicate):
    listed = ct.list_entries(_ctfilters.build_filter(params), limit=0)
    assert set(entry['id'] for entry in listed['entries']) == set(
        entry_id(tokens) for tokens in cli_entries() if predicate(tokens))


@pytest.mark.parametrize('values, expected', [
    (['ASSURED'], (4, 4)), (['!ASSURED'], (0, 4)), (['UNREPLIED'], (0, 2)), (['!UNREPLIED'], (2, 2)),
    (['assured', '!src_nat'], (4, 4 | 16)),
])
def test_parse_status(values, expected):
    assert _ctfilters.parse_status(values, 'status') == expected


@pytest.mark.parametrize('params, param, fragment', [
    ({'status': ['ASSURED', '!ASSURED']}, 'status', 'both required and refused'),
    ({'status': ['UNREPLIED', 'SEEN_REPLY']}, 'status', 'both required and refused'),
    ({'status': ['UNREPLYED']}, 'status', 'unknown value'),
    ({'status': ['!SRC_NAT'], 'nat': 'snat'}, 'nat', 'contradicts'),
    ({'icmp_type': 8}, 'icmp_type', 'needs protocol icmp or icmpv6, not none'),
    ({'protocol': 'udp', 'icmp_code': 0}, 'icmp_code', 'not udp'),
    ({'protocol': 'icmp', 'icmp_type': 256}, 'icmp_type', '0-255'),
    ({'protocol': 'icmp', 'icmp_code': True}, 'icmp_code', '0-255'),
])
def test_bad_status_and_icmp_filters_name_the_option(params, param, fragment):
    with pytest.raises(ValidationError) as info:
        _ctfilters.build_filter(params)
    assert info.value.param == param and fragment in str(info.value)


def test_icmp_filters_stay_in_userspace():
    flt = _ctfilters.build_filter({'protocol': 'icmp', 'icmp_type': 8})
    assert flt.narrows and not flt.kernel_request(socket.AF_INET)[1]


# ---------------------------------------------------------------- anomaly checks

STATS = dict(count=900, max=1000, delta=dict(seconds=1.0, counters=dict(drop=0, early_drop=3, insert_failed=0)))
SUMMARY = dict(families=dict(ipv4=900), tcp_states=dict(SYN_SENT=150, ESTABLISHED=50), half_open=150,
               top_sources=[dict(address='10.0.0.9', count=600)])


def test_checks_fire_above_their_thresholds():
    checks, anomalies = _ctanalysis.evaluate(_ctanalysis.parse_thresholds({}), STATS, SUMMARY)
    assert checks['table_usage_percent'] == dict(evaluated=True, threshold=90.0, value=90.0, fired=False)
    assert checks['early_drop_increase']['fired'] and not checks['drop_increase']['fired']
    assert checks['top_source_percent'] == dict(evaluated=True, threshold=50.0, value=66.67, fired=True,
                                                source='10.0.0.9')
    assert checks['half_open_percent']['value'] == 75.0 and checks['half_open_percent']['fired']
    assert [a['check'] for a in anomalies] == ['early_drop_increase', 'half_open_percent', 'top_source_percent']
    assert anomalies[2]['msg'].startswith('top_source_percent: ') and '10.0.0.9' in anomalies[2]['msg']


def test_thresholds_move_the_verdicts():
    thresholds = _ctanalysis.parse_thresholds(dict(table_usage_percent=89.5, early_drop_increase=3,
                                                   top_source_percent=70, half_open_percent=80))
    checks, anomalies = _ctanalysis.evaluate(thresholds, STATS, SUMMARY)
    assert [a['check'] for a in anomalies] == ['table_usage_percent']


def test_checks_without_their_figures_are_not_evaluated_and_say_why():
    checks, anomalies = _ctanalysis.evaluate(_ctanalysis.parse_thresholds({}), dict(count=5, max=None))
    assert anomalies == [] and not any(check['evaluated'] for check in checks.values())
    assert checks['drop_increase']['reason'] == 'needs two samples (set interval)'
    assert checks['top_source_percent']['reason'] == 'needs the summary (set summary: true)'
    small = dict(SUMMARY, families=dict(ipv4=50), tcp_states=dict(SYN_SENT=10))
    checks, dummy = _ctanalysis.evaluate(_ctanalysis.parse_thresholds({}), STATS, small)
    assert 'min_entries=100' in checks['top_source_percent']['reason']
    assert not checks['half_open_percent']['evaluated']


@pytest.mark.parametrize('given, param', [
    (dict(table_usage_percent=101), 'thresholds.table_usage_percent'),
    (dict(table_usage_percent=-1), 'thresholds.table_usage_percent'),
    (dict(half_open_percent='lots'), 'thresholds.half_open_percent'),
    (dict(drop_increase=-1), 'thresholds.drop_increase'),
    (dict(drop_increase=1.5), 'thresholds.drop_increase'),
    (dict(min_entries=0), 'thresholds.min_entries'),
    (dict(top_source_percent=True), 'thresholds.top_source_percent'),
    (dict(usage=5), 'thresholds.usage'),
])
def test_bad_thresholds_name_the_key(given, param):
    with pytest.raises(ValidationError) as info:
        _ctanalysis.parse_thresholds(given)
    assert info.value.param == param
