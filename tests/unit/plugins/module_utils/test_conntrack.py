# SPDX-License-Identifier: GPL-3.0-or-later
"""The conntrack codec against real captured dumps; filters; delete planning.

Fixtures (tests/unit/fixtures/conntrack, written by bench/capture_fixtures.py
from a scratch namespace): raw nfnetlink dump messages and the output of
`conntrack -L -o id,extended` for the same table. The decoder is checked
against conntrack-tools' reading of the very same entries.
"""

import errno
import ipaddress
import json
import os
import socket

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _conntrack as ct, _ctcodec, _ctfilters, _ctsummary
from ansible_collections.stateful.netfilter.plugins.module_utils import _netlink
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'conntrack')
FAMILY = {'ipv4': socket.AF_INET, 'ipv6': socket.AF_INET6}


def load_messages(label):
    with open(os.path.join(FIXTURES, 'dump-%s.hex' % label)) as handle:
        return [bytes.fromhex(line) for line in handle.read().split()]


def parse_cli(line):
    """One line of `conntrack -L -o id,extended`, parsed independently of the module."""
    tokens = line.split()
    entry = dict(family=tokens[0], protocol=tokens[2], state=None, mark=None, zone=0, zone_dir='both', zones={},
                 flags=set(), id=int(tokens[-1].split('=')[1]), tuples=[], counters=[])
    if '=' not in tokens[5] and not tokens[5].startswith('['):
        entry['state'] = tokens[5]
    for token in tokens[5:-1]:
        if token.startswith('['):
            entry['flags'].add(token.strip('[]'))
            continue
        if '=' not in token:
            continue
        key, value = token.split('=', 1)
        if key == 'src':
            entry['tuples'].append(dict(src=value))
        elif key == 'dst':
            entry['tuples'][-1]['dst'] = value
        elif key in ('sport', 'dport', 'type', 'code', 'id'):
            entry['tuples'][-1][key] = int(value)
        elif key == 'packets':
            entry['counters'].append(dict(packets=int(value)))
        elif key == 'bytes':
            entry['counters'][-1]['bytes'] = int(value)
        elif key == 'mark':
            entry['mark'] = int(value)
        elif key in CLI_ZONES:
            # zone=, zone-orig=, zone-reply= as printed; the module's zone_dir.
            entry['zones'][key] = entry['zone'] = int(value)
            entry['zone_dir'] = CLI_ZONES[key]
    return entry


CLI_ZONES = {'zone': 'both', 'zone-orig': 'orig', 'zone-reply': 'reply'}


def load_cli(label):
    with open(os.path.join(FIXTURES, 'conntrack-%s.txt' % label)) as handle:
        return dict((e['id'], e) for e in (parse_cli(line) for line in handle if line.strip()))


MESSAGES = dict((label, load_messages(label)) for label in FAMILY)
CLI = dict((label, load_cli(label)) for label in FAMILY)
ALL_CLI = list(CLI['ipv4'].values()) + list(CLI['ipv6'].values())


def decoded(label):
    return [_ctcodec.decode_entry(msg, 20, len(msg), FAMILY[label]) for msg in MESSAGES[label]]


class FakeSocket:
    """Stands in for _netlink.NetlinkSocket: replays the captured dumps.

    The kernel filter attributes of a dump are recorded and ignored, as a
    kernel without CTA_FILTER would: the userspace check must do the work.
    A test of a kernel that applies its filters sets `kernel` to the
    predicate that kernel would apply to a message.
    """

    def __init__(self, probe=0, results=None):
        self.probe = probe
        self.results = results
        self.kernel = None
        self.dumps = []
        self.transactions = []

    def __call__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def dump(self, msg_type, family, attrs=b'', version=0):
        assert msg_type == _ctcodec.CT_GET
        self.dumps.append((family, attrs))
        label = _ctcodec.FAMILY_NAMES[family]
        for msg in MESSAGES[label]:
            if not attrs or self.kernel is None or self.kernel(msg):
                yield msg, 20, len(msg)

    def transact(self, requests):
        requests = list(requests)
        self.transactions.append(requests)
        if len(requests) == 1 and _is_probe(requests[0]):
            return [self.probe]
        if self.results is not None:
            return [self.results(request) for request in requests]
        return [0] * len(requests)


def _is_probe(request):
    attrs = _netlink.attributes(request[3], 0, len(request[3]))
    return CTA_MARK_MASK_ZERO == request[3][attrs[_ctcodec.CTA_MARK_MASK][0]:attrs[_ctcodec.CTA_MARK_MASK][1]] \
        if _ctcodec.CTA_MARK_MASK in attrs else False


CTA_MARK_MASK_ZERO = b'\0\0\0\0'


@pytest.fixture
def fake(monkeypatch):
    sock = FakeSocket()
    monkeypatch.setattr(_netlink, 'NetlinkSocket', sock)
    return sock


# ---------------------------------------------------------------- decoding

@pytest.mark.parametrize('label', sorted(FAMILY))
def test_decoding_agrees_with_conntrack_tools(label):
    entries = decoded(label)
    assert len(entries) == len(CLI[label]) > 0
    for entry in entries:
        expected = CLI[label][entry['id']]
        assert entry['family'] == label
        assert entry['protocol'] == expected['protocol']
        assert entry['state'] == expected['state']
        assert entry['orig'] == expected['tuples'][0]
        assert entry['reply'] == expected['tuples'][1]
        assert entry['mark'] == expected['mark']
        assert entry['zone'] == expected['zone']
        assert entry['zone_dir'] == expected['zone_dir']
        assert ('ASSURED' in entry['status']) == ('ASSURED' in expected['flags'])
        assert ('SEEN_REPLY' in entry['status']) == ('UNREPLIED' not in expected['flags'])
        assert entry['counters'] == dict(orig=expected['counters'][0], reply=expected['counters'][1])
        assert 0 < entry['timeout'] <= 3600


def test_fixture_covers_what_the_decoder_must_handle():
    entries = decoded('ipv4') + decoded('ipv6')
    assert set(e['protocol'] for e in entries) == {'tcp', 'udp', 'icmp', 'icmpv6'}
    assert {7, 9, 11, 0} <= set(e['zone'] for e in entries)
    # -j CT --zone 7, --zone-orig 9, --zone-reply 11 (see bench/capture_fixtures.py).
    assert set((e['zone'], e['zone_dir']) for e in entries) == {(0, 'both'), (7, 'both'), (9, 'orig'), (11, 'reply')}
    assert 0x42 in set(e['mark'] for e in entries)
    assert {'snat', 'none'} <= set(e['nat'] for e in entries)
    assert {'TIME_WAIT', 'SYN_SENT'} <= set(e['state'] for e in entries)


@pytest.mark.parametrize('label', sorted(FAMILY))
def test_fast_tuple_path_agrees_with_the_full_walk(label):
    for msg in MESSAGES[label]:
        attrs = _netlink.attributes(msg, 20, len(msg))
        for kind in (_ctcodec.CTA_TUPLE_ORIG, _ctcodec.CTA_TUPLE_REPLY):
            assert _ctcodec._tuple(msg, *attrs[kind]) == _ctcodec._tuple_slow(msg, *attrs[kind])


def _swap_port_attributes(msg):
    """The message with the orig tuple's SRC_PORT and DST_PORT attributes swapped in place."""
    attrs = _netlink.attributes(msg, 20, len(msg))
    start, end = attrs[_ctcodec.CTA_TUPLE_ORIG]
    proto = _netlink.attributes(msg, start, end)[_ctcodec.CTA_TUPLE_PROTO]
    inner = _netlink.attributes(msg, *proto)
    sport, dport = inner[_ctcodec.CTA_PROTO_SRC_PORT], inner[_ctcodec.CTA_PROTO_DST_PORT]
    data = bytearray(msg)
    src_attr = bytes(data[sport[0] - 4:sport[0] + 4])
    dst_attr = bytes(data[dport[0] - 4:dport[0] + 4])
    data[sport[0] - 4:sport[0] + 4] = dst_attr
    data[dport[0] - 4:dport[0] + 4] = src_attr
    return bytes(data)


def test_unexpected_layout_falls_back_to_the_full_walk():
    msg = next(m for m in MESSAGES['ipv4'] if _ctcodec.decode_entry(m, 20, len(m), socket.AF_INET)['protocol'] == 'udp')
    before = _ctcodec.decode_entry(msg, 20, len(msg), socket.AF_INET)['orig']
    after = _ctcodec.decode_entry(_swap_port_attributes(msg), 20, len(msg), socket.AF_INET)['orig']
    assert after == before


def test_summary_counts_every_match(fake):
    result = ct.list_entries(_ctfilters.build_filter({}), limit=5)
    assert result['count'] == len(ALL_CLI)
    assert len(result['entries']) == 5 and result['truncated']
    summary = result['summary']
    assert summary['families'] == {'ipv4': len(CLI['ipv4']), 'ipv6': len(CLI['ipv6'])}
    protocols = {}
    for entry in ALL_CLI:
        protocols[entry['protocol']] = protocols.get(entry['protocol'], 0) + 1
    assert summary['protocols'] == protocols
    states = {}
    for entry in ALL_CLI:
        if entry['state']:
            states[entry['state']] = states.get(entry['state'], 0) + 1
    assert summary['tcp_states'] == states
    assert sum(summary['nat'].values()) == len(ALL_CLI)
    dsts = {}
    for entry in ALL_CLI:
        dsts[entry['tuples'][0]['dst']] = dsts.get(entry['tuples'][0]['dst'], 0) + 1
    top = summary['top_destinations'][0]
    assert top['count'] == max(dsts.values()) and dsts[top['address']] == top['count']
    assert len(summary['top_destinations']) == min(_ctsummary.TOP_SIZE, len(dsts))
    assert summary['top_ports'][0] == dict(protocol='udp', port=1024, count=sum(
        1 for e in ALL_CLI if e['protocol'] == 'udp' and e['tuples'][0].get('dport') == 1024))


def test_limit_zero_returns_everything_and_summary_only_nothing(fake):
    assert len(ct.list_entries(_ctfilters.build_filter({}), limit=0)['entries']) == len(ALL_CLI)
    result = ct.list_entries(_ctfilters.build_filter({}), summary_only=True)
    assert result['entries'] == [] and result['count'] == len(ALL_CLI) and result['truncated']


def test_both_families_are_dumped_by_default(fake):
    ct.list_entries(_ctfilters.build_filter({}))
    assert [family for family, dummy in fake.dumps] == [socket.AF_INET, socket.AF_INET6]


# ---------------------------------------------------------------- filters

def in_net(address, network):
    return ipaddress.ip_address(address) in ipaddress.ip_network(network)


def has_ports(entry):
    return entry['protocol'] in ('tcp', 'udp')


FILTER_CASES = [
    ({}, lambda e: True),
    ({'family': 'ipv6'}, lambda e: e['family'] == 'ipv6'),
    ({'src': '10.0.0.2'}, lambda e: e['tuples'][0]['src'] == '10.0.0.2'),
    ({'src': '10.0.0.2/31'}, lambda e: e['family'] == 'ipv4' and in_net(e['tuples'][0]['src'], '10.0.0.2/31')),
    ({'src': 'fd00::2'}, lambda e: e['tuples'][0]['src'] == 'fd00::2'),
    ({'dst': '198.51.100.0/29'}, lambda e: e['family'] == 'ipv4' and in_net(e['tuples'][0]['dst'], '198.51.100.0/29')),
    ({'protocol': 'icmp'}, lambda e: e['protocol'] == 'icmp'),
    ({'protocol': '58'}, lambda e: e['protocol'] == 'icmpv6'),
    ({'dport': 1024}, lambda e: has_ports(e) and e['tuples'][0]['dport'] == 1024),
    ({'dport': '400-500', 'protocol': 'tcp'}, lambda e: e['protocol'] == 'tcp' and 400 <= e['tuples'][0]['dport'] <= 500),
    ({'reply_sport': '8080'}, lambda e: has_ports(e) and e['tuples'][1]['sport'] == 8080),
    ({'reply_dst': '203.0.113.1'}, lambda e: e['tuples'][1]['dst'] == '203.0.113.1'),
    ({'reply_src': '2001:db8:2::/64'}, lambda e: e['family'] == 'ipv6' and in_net(e['tuples'][1]['src'], '2001:db8:2::/64')),
    ({'state': ['time_wait']}, lambda e: e['state'] == 'TIME_WAIT'),
    ({'state': ['SYN_SENT', 'ESTABLISHED']}, lambda e: e['state'] == 'SYN_SENT'),
    ({'status': ['assured']}, lambda e: 'ASSURED' in e['flags']),
    ({'nat': 'none'}, lambda e: e['tuples'][1]['dst'] == e['tuples'][0]['src']),
    ({'nat': 'snat'}, lambda e: e['tuples'][1]['dst'] != e['tuples'][0]['src']),
    ({'nat': 'any'}, lambda e: e['tuples'][1]['dst'] != e['tuples'][0]['src']),
    ({'nat': 'dnat'}, lambda e: False),
    ({'mark': '0x42'}, lambda e: e['mark'] == 0x42),
    ({'mark': '0x40/0xf0'}, lambda e: e['mark'] & 0xf0 == 0x40),
    # zone: the id in whichever direction it applies (nft's `ct zone`); with
    # zone_dir exactly what conntrack -L -w / --orig-zone / --reply-zone list.
    ({'zone': 7}, lambda e: e['zone'] == 7),
    ({'zone': 9}, lambda e: e['zone'] == 9),
    ({'zone': 11}, lambda e: e['zone'] == 11),
    ({'zone': 7, 'zone_dir': 'both'}, lambda e: e['zones'].get('zone') == 7),
    ({'zone': 9, 'zone_dir': 'orig'}, lambda e: e['zones'].get('zone-orig') == 9),
    ({'zone': 11, 'zone_dir': 'reply'}, lambda e: e['zones'].get('zone-reply') == 11),
    ({'zone': 9, 'zone_dir': 'reply'}, lambda e: False),
    ({'zone': 11, 'zone_dir': 'both'}, lambda e: False),
    # Zone 0 is the default zone in both directions: no zone printed at all
    # (conntrack -L -w 0 lists directional zones' entries too).
    ({'zone': 0, 'protocol': 'udp', 'family': 'ipv4'},
     lambda e: not e['zones'] and e['protocol'] == 'udp' and e['family'] == 'ipv4'),
    ({'zone': 0, 'zone_dir': 'both'}, lambda e: not e['zones']),
    ({'src': '10.0.0.3', 'dst': '198.51.100.8', 'mark': '66', 'protocol': 'udp', 'sport': '40000'},
     lambda e: e['tuples'][0]['src'] == '10.0.0.3' and e['tuples'][0]['dst'] == '198.51.100.8'),
]


@pytest.mark.parametrize('params, predicate', FILTER_CASES)
def test_filters_select_what_conntrack_tools_shows(fake, params, predicate):
    expected = sorted(e['id'] for e in ALL_CLI if predicate(e))
    result = ct.list_entries(_ctfilters.build_filter(params), limit=0)
    assert sorted(e['id'] for e in result['entries']) == expected
    assert result['count'] == len(expected)


def test_filters_are_tested_on_a_non_trivial_selection():
    for params, predicate in FILTER_CASES[1:]:
        if params not in ({'nat': 'dnat'}, {'zone': 9, 'zone_dir': 'reply'}, {'zone': 11, 'zone_dir': 'both'}):
            assert 0 < sum(1 for e in ALL_CLI if predicate(e)) < len(ALL_CLI), params


def kernel_parts(params, family=socket.AF_INET):
    attrs, exact = _ctfilters.build_filter(params).kernel_request(family)
    top = _netlink.attributes(attrs, 0, len(attrs))
    parts = {}
    if _ctcodec.CTA_FILTER in top:
        flags = _netlink.attributes(attrs, *top[_ctcodec.CTA_FILTER])
        for kind, name in ((_ctcodec.CTA_FILTER_ORIG_FLAGS, 'orig'), (_ctcodec.CTA_FILTER_REPLY_FLAGS, 'reply')):
            if kind in flags:
                parts[name] = _ctcodec.HOST32.unpack_from(attrs, flags[kind][0])[0]
        for kind, name in ((_ctcodec.CTA_TUPLE_ORIG, 'orig_tuple'), (_ctcodec.CTA_TUPLE_REPLY, 'reply_tuple')):
            if kind in top:
                parts[name] = _ctcodec._tuple_slow(attrs, *top[kind])
    for kind, name in ((_ctcodec.CTA_MARK, 'mark'), (_ctcodec.CTA_MARK_MASK, 'mark_mask'),
                       (_ctcodec.CTA_STATUS, 'status'), (_ctcodec.CTA_STATUS_MASK, 'status_mask')):
        if kind in top:
            parts[name] = _ctcodec.BE32.unpack_from(attrs, top[kind][0])[0]
    return parts, exact


IP4 = socket.inet_pton(socket.AF_INET, '10.0.0.2')
F = _ctcodec  # shorter lines in the table below


@pytest.mark.parametrize('params, family, parts, exact', [
    ({}, socket.AF_INET, {}, True),
    ({'src': '10.0.0.2'}, socket.AF_INET,
     {'orig': F.FILTER_IP_SRC, 'orig_tuple': (None, IP4, b'', None, None, None, 0)}, True),
    # The kernel compares IPv6 addresses inverted: they stay in userspace.
    ({'src': 'fd00::2'}, socket.AF_INET6, {}, False),
    ({'dst': 'fd00::2', 'protocol': 'udp', 'dport': 53}, socket.AF_INET6,
     {'orig': F.FILTER_PROTO_NUM | F.FILTER_DST_PORT, 'orig_tuple': (17, b'', b'', None, 53, None, 0)}, False),
    ({'src': '10.0.0.0/24'}, socket.AF_INET, {}, False),
    ({'protocol': 'udp', 'dport': '53'}, socket.AF_INET,
     {'orig': F.FILTER_PROTO_NUM | F.FILTER_DST_PORT, 'orig_tuple': (17, b'', b'', None, 53, None, 0)}, True),
    ({'dport': '53'}, socket.AF_INET, {}, False),
    ({'protocol': 'udp', 'dport': '53-54'}, socket.AF_INET,
     {'orig': F.FILTER_PROTO_NUM, 'orig_tuple': (17, b'', b'', None, None, None, 0)}, False),
    ({'protocol': 'sctp', 'dport': '5'}, socket.AF_INET,
     {'orig': F.FILTER_PROTO_NUM, 'orig_tuple': (132, b'', b'', None, None, None, 0)}, False),
    ({'reply_src': '10.0.0.2', 'protocol': 'tcp', 'reply_sport': 8080}, socket.AF_INET,
     {'orig': F.FILTER_PROTO_NUM, 'orig_tuple': (6, b'', b'', None, None, None, 0),
      'reply': F.FILTER_PROTO_NUM | F.FILTER_IP_SRC | F.FILTER_SRC_PORT,
      'reply_tuple': (6, IP4, b'', 8080, None, None, 0)}, True),
    ({'mark': '0x10/0xf0'}, socket.AF_INET, {'mark': 0x10, 'mark_mask': 0xf0}, True),
    ({'status': ['ASSURED'], 'nat': 'snat'}, socket.AF_INET,
     {'status': F.STATUS_BITS['ASSURED'] | F.SRC_NAT, 'status_mask': F.STATUS_BITS['ASSURED'] | F.SRC_NAT}, True),
    ({'nat': 'none'}, socket.AF_INET, {'status': 0, 'status_mask': F.SRC_NAT | F.DST_NAT}, True),
    ({'nat': 'any'}, socket.AF_INET, {}, False),
    ({'zone': 3}, socket.AF_INET, {}, False),
    ({'zone': 3, 'zone_dir': 'orig', 'protocol': 'udp', 'dport': 53}, socket.AF_INET,
     {'orig': F.FILTER_PROTO_NUM | F.FILTER_DST_PORT, 'orig_tuple': (17, b'', b'', None, 53, None, 0)}, False),
    ({'state': ['ESTABLISHED']}, socket.AF_INET,
     {'orig': F.FILTER_PROTO_NUM, 'orig_tuple': (6, b'', b'', None, None, None, 0)}, False),
])
def test_what_goes_to_the_kernel(params, family, parts, exact):
    assert kernel_parts(params, family) == (parts, exact)


@pytest.mark.parametrize('params, families', [
    ({}, (socket.AF_INET, socket.AF_INET6)),
    ({'family': 'both'}, (socket.AF_INET, socket.AF_INET6)),
    ({'family': None}, (socket.AF_INET, socket.AF_INET6)),
    ({'family': 'ipv4'}, (socket.AF_INET,)),
    ({'dst': '2001:db8::/32'}, (socket.AF_INET6,)),
    ({'reply_dst': '203.0.113.1'}, (socket.AF_INET,)),
])
def test_families(params, families):
    assert _ctfilters.build_filter(params).families == families


def test_filter_with_every_option_missing_is_empty():
    flt = _ctfilters.build_filter(dict((name, None) for name in _ctfilters.FILTER_OPTIONS))
    assert not flt.narrows and flt.families == (socket.AF_INET, socket.AF_INET6)


@pytest.mark.parametrize('params, param, fragment', [
    ({'family': 'ipx'}, 'family', 'must be one of'),
    ({'protocol': 'tcpp'}, 'protocol', 'unknown protocol'),
    ({'src': '10.0.0.1/8'}, 'src', 'host bits'),
    ({'dst': '300.1.1.1'}, 'dst', 'not an IP address'),
    ({'src': 'fd00::1', 'family': 'ipv4'}, 'src', 'ipv6 address'),
    ({'src': '10.0.0.1', 'reply_dst': 'fd00::1'}, 'reply_dst', 'ipv6 address'),
    ({'sport': 22, 'protocol': 'icmp'}, 'sport', 'has no ports'),
    ({'dport': '70000'}, 'dport', 'out of range'),
    ({'reply_dport': 'http'}, 'reply_dport', 'not a port'),
    ({'reply_sport': '20-10'}, 'reply_sport', 'reversed'),
    ({'state': ['ESTAB']}, 'state', 'unknown value'),
    ({'state': ['ESTABLISHED'], 'protocol': 'udp'}, 'state', 'need protocol tcp'),
    ({'status': ['ASSURD']}, 'status', 'unknown value'),
    ({'nat': 'masquerade'}, 'nat', 'must be one of'),
    ({'nat': 'none', 'status': ['SRC_NAT']}, 'nat', 'contradicts'),
    ({'mark': 'x'}, 'mark', 'not a mark'),
    ({'mark': '0x10/0x0f'}, 'mark', 'outside mask'),
    ({'zone': 70000}, 'zone', '0-65535'),
    ({'zone': -1}, 'zone', '0-65535'),
    ({'zone': True}, 'zone', '0-65535'),
    ({'zone': 5, 'zone_dir': 'original'}, 'zone_dir', 'must be one of'),
    ({'zone_dir': 'orig'}, 'zone_dir', 'needs zone'),
    ({'zone': 0, 'zone_dir': 'reply'}, 'zone_dir', 'both directions'),
])
def test_bad_filters_name_the_option(params, param, fragment):
    with pytest.raises(ValidationError) as exc:
        _ctfilters.build_filter(params)
    assert str(exc.value).startswith(param + ': ')
    assert fragment in str(exc.value)


# ---------------------------------------------------------------- deleting

def request_attrs(request):
    return _netlink.attributes(request[3], 0, len(request[3]))


def deleted_ids(transaction):
    ids = []
    for request in transaction:
        attrs = request_attrs(request)
        ids.append(_ctcodec.BE32.unpack_from(request[3], attrs[_ctcodec.CTA_ID][0])[0])
    return sorted(ids)


def test_check_mode_counts_and_sends_nothing(fake):
    result = ct.flush_entries(_ctfilters.build_filter({'protocol': 'udp'}), check_mode=True)
    udp = [e for e in ALL_CLI if e['protocol'] == 'udp']
    assert result['deleted'] == result['matched'] == len(udp)
    assert len(result['sample']) == ct.SAMPLE_SIZE
    assert all(e['protocol'] == 'udp' for e in result['sample'])
    assert fake.transactions == []


def kernel_applies(fake, flt):
    fake.kernel = lambda msg: flt.matches(msg, 20, len(msg))
    return flt


def test_kernel_flushes_an_expressible_filter_after_a_safe_probe(fake):
    result = ct.flush_entries(kernel_applies(fake, _ctfilters.build_filter({'src': '10.0.0.2'})))
    expected = [e for e in ALL_CLI if e['tuples'][0]['src'] == '10.0.0.2']
    assert result['deleted'] == len(expected)
    probe, flush = fake.transactions
    assert len(probe) == 1 and _is_probe(probe[0])
    attrs = request_attrs(probe[0])
    # The probe can never flush: its tuple has no address (single-entry delete
    # path: EINVAL on old kernels) and its mark never matches.
    assert _ctcodec._tuple_slow(probe[0][3], *attrs[_ctcodec.CTA_TUPLE_ORIG])[1:3] == (b'', b'')
    assert len(flush) == 1
    msg_type, family, version, payload = flush[0]
    assert (msg_type, family, version) == (_ctcodec.CT_DELETE, socket.AF_INET, 1)
    top = request_attrs(flush[0])
    assert _ctcodec.CTA_FILTER in top and _ctcodec.CTA_ID not in top
    assert _ctcodec._tuple_slow(payload, *top[_ctcodec.CTA_TUPLE_ORIG])[1] == IP4


def test_unfiltered_flush_sends_one_filtered_request_per_family(fake):
    ct.flush_entries(_ctfilters.build_filter({}))
    flush = fake.transactions[1]
    assert [(r[1], r[2]) for r in flush] == [(socket.AF_INET, 1), (socket.AF_INET6, 1)]
    assert all(_ctcodec.CTA_FILTER in request_attrs(r) for r in flush)


def test_one_family_flush_names_that_family_only(fake):
    ct.flush_entries(_ctfilters.build_filter({'family': 'ipv6'}))
    assert [r[1] for r in fake.transactions[1]] == [socket.AF_INET6]


def test_cidr_is_deleted_entry_by_entry_by_reply_tuple_zone_and_id(fake):
    result = ct.flush_entries(_ctfilters.build_filter({'dst': '198.51.100.6/31'}))
    expected = dict((e['id'], e) for e in ALL_CLI
                    if e['family'] == 'ipv4' and in_net(e['tuples'][0]['dst'], '198.51.100.6/31'))
    assert result['deleted'] == len(expected)
    (requests,) = fake.transactions
    assert deleted_ids(requests) == sorted(expected)
    zones = set()
    for request in requests:
        assert request[:3] == (_ctcodec.CT_DELETE, socket.AF_INET, 0)
        attrs = request_attrs(request)
        assert _ctcodec.CTA_TUPLE_ORIG not in attrs
        entry = expected[_ctcodec.BE32.unpack_from(request[3], attrs[_ctcodec.CTA_ID][0])[0]]
        reply = json.loads(_ctcodec._tuple_text(_ctcodec._tuple_slow(request[3], *attrs[_ctcodec.CTA_TUPLE_REPLY])))
        assert reply == entry['tuples'][1]
        if _ctcodec.CTA_ZONE in attrs:
            zones.add(_ctcodec.BE16.unpack_from(request[3], attrs[_ctcodec.CTA_ZONE][0])[0])
    # zone 7 (both directions) travels as CTA_ZONE; the directional zone 9
    # belongs to the original direction only and the reply tuple needs none.
    assert zones == {7}


@pytest.mark.parametrize('zone, cta_zone, reply_zone', [
    (7, 7, 0),      # --zone 7: CTA_ZONE, as dumped
    (9, None, 0),   # --zone-orig 9: the reply direction is in zone 0, no zone named
    (11, None, 11),  # --zone-reply 11: CTA_TUPLE_ZONE inside the reply tuple, as dumped
])
def test_entries_of_each_kind_of_zone_are_deleted_in_their_reply_zone(fake, zone, cta_zone, reply_zone):
    fake.probe = errno.EINVAL
    expected = dict((e['id'], e) for e in ALL_CLI if e['zone'] == zone)
    result = ct.flush_entries(_ctfilters.build_filter({'zone': zone}))
    assert result['deleted'] == len(expected) == 4
    requests = fake.transactions[-1]
    assert deleted_ids(requests) == sorted(expected)
    for request in requests:
        attrs = request_attrs(request)
        assert set(attrs) <= {_ctcodec.CTA_TUPLE_REPLY, _ctcodec.CTA_ZONE, _ctcodec.CTA_ID}
        found = _ctcodec.BE16.unpack_from(request[3], attrs[_ctcodec.CTA_ZONE][0])[0] if _ctcodec.CTA_ZONE in attrs else None
        assert found == cta_zone
        reply = _ctcodec._tuple_slow(request[3], *attrs[_ctcodec.CTA_TUPLE_REPLY])
        assert reply[6] == reply_zone
        assert json.loads(_ctcodec._tuple_text(reply)) == expected[_ctcodec.BE32.unpack_from(request[3], attrs[_ctcodec.CTA_ID][0])[0]]['tuples'][1]


def test_zone_filter_deletes_entries_of_that_zone(fake):
    result = ct.flush_entries(_ctfilters.build_filter({'zone': 7}))
    assert deleted_ids(fake.transactions[0]) == sorted(e['id'] for e in ALL_CLI if e['zone'] == 7)
    assert result['deleted'] == 4


def test_kernel_flush_counts_what_the_kernel_sends(fake):
    # The kernel that flushes by filter also filters dumps: no second look.
    fake.kernel = lambda msg: msg in MESSAGES['ipv4'][:3]
    assert ct.flush_entries(_ctfilters.build_filter({'src': '10.0.0.2'}))['deleted'] == 3


def test_kernel_without_filtered_flush_gets_entry_by_entry_deletes(fake):
    fake.probe = errno.EINVAL
    result = ct.flush_entries(_ctfilters.build_filter({'src': '10.0.0.2'}))
    probe, requests = fake.transactions
    assert deleted_ids(requests) == sorted(e['id'] for e in ALL_CLI if e['tuples'][0]['src'] == '10.0.0.2')
    assert result['deleted'] == len(requests)


def test_vanished_entries_are_not_counted(fake):
    fake.probe = errno.EINVAL
    fake.results = lambda request: errno.ENOENT if request_attrs(request).get(_ctcodec.CTA_ZONE) else 0
    result = ct.flush_entries(_ctfilters.build_filter({'dst': '198.51.100.7'}))
    assert result['matched'] == 4 and result['deleted'] == 0


def test_a_delete_error_fails(fake):
    fake.results = lambda request: errno.EPERM
    with pytest.raises(ct.ConntrackError) as exc:
        ct.flush_entries(_ctfilters.build_filter({'dst': '198.51.100.0/30'}))
    assert 'CAP_NET_ADMIN' in str(exc.value)


def test_max_entries_refuses_and_deletes_nothing(fake):
    with pytest.raises(ct.ConntrackError) as exc:
        ct.flush_entries(_ctfilters.build_filter({'protocol': 'udp'}), max_entries=3)
    assert str(exc.value).startswith('max_entries: ')
    assert all(_is_probe(t[0]) for t in fake.transactions)


def test_max_entries_allows_up_to_the_limit(fake):
    count = sum(1 for e in ALL_CLI if e['protocol'] == 'icmp')
    flt = kernel_applies(fake, _ctfilters.build_filter({'protocol': 'icmp'}))
    assert ct.flush_entries(flt, max_entries=count)['deleted'] == count


LOCAL = [e for e in ALL_CLI if e['state'] == 'TIME_WAIT']


def ssh_tuple(entry):
    orig = entry['tuples'][0]
    return (orig['src'], str(orig['sport']), orig['dst'], str(orig['dport']))


def test_protected_connection_is_kept_even_by_a_kernel_flush(fake):
    keep = LOCAL[0]
    flt = kernel_applies(fake, _ctfilters.build_filter({'protocol': 'tcp'}))
    result = ct.flush_entries(flt, protect=[ssh_tuple(keep)])
    tcp = [e for e in ALL_CLI if e['protocol'] == 'tcp']
    assert result['matched'] == len(tcp) and result['deleted'] == len(tcp) - 1
    assert [e['id'] for e in result['protected']] == [keep['id']]
    # The kernel could flush the filter, but not around the protected entry.
    requests = fake.transactions[-1]
    assert deleted_ids(requests) == sorted(e['id'] for e in tcp if e is not keep)


def test_protection_matches_the_reply_direction_too(fake):
    keep = LOCAL[1]
    reply = keep['tuples'][1]
    # Seen from the client the server is the reply source (e.g. SSH via DNAT).
    protect = [(reply['dst'], reply['dport'], reply['src'], reply['sport'])]
    result = ct.flush_entries(_ctfilters.build_filter({'state': ['TIME_WAIT']}), protect=protect)
    assert [e['id'] for e in result['protected']] == [keep['id']]


def test_protection_with_a_mutable_filter_never_uses_a_kernel_flush(fake):
    ct.flush_entries(_ctfilters.build_filter({'mark': '0'}), protect=[('192.0.2.1', 1, '192.0.2.2', 22)])
    assert not any(_is_probe(t[0]) for t in fake.transactions)


@pytest.mark.parametrize('environ, expected', [
    ({'SSH_CONNECTION': '192.0.2.10 53122 192.0.2.1 22'}, [('192.0.2.10', '53122', '192.0.2.1', '22')]),
    ({'SSH_CONNECTION': 'fe80::1%eth0 53122 fe80::2%eth0 22'}, [('fe80::1%eth0', '53122', 'fe80::2%eth0', '22')]),
    ({'SSH_CONNECTION': ''}, []),
    ({}, []),
])
def test_control_connection(environ, expected):
    assert ct.control_connection(environ) == expected


@pytest.mark.parametrize('value', ['garbage', '192.0.2.10 x 192.0.2.1 22', 'a b c d'])
def test_malformed_ssh_connection_fails_rather_than_protecting_nothing(value):
    with pytest.raises(ValidationError) as exc:
        ct.control_connection({'SSH_CONNECTION': value})
    assert str(exc.value).startswith('protect_control_connection: ')


def test_protect_keys_normalise_mapped_and_scoped_addresses():
    keys = ct._protect_keys([('::ffff:192.0.2.10', '1', 'fe80::1%eth0', 22)])
    assert keys == {(socket.inet_pton(socket.AF_INET, '192.0.2.10'), 1,
                     socket.inet_pton(socket.AF_INET6, 'fe80::1'), 22)}


def test_bad_protect_tuple_is_a_validation_error():
    with pytest.raises(ValidationError) as exc:
        ct._protect_keys([('host', 1, '192.0.2.1', 22)])
    assert str(exc.value).startswith('protect: ')


# ---------------------------------------------------------------- kernel errors

@pytest.mark.parametrize('code, fragment', [
    (errno.EPERM, 'needs root or CAP_NET_ADMIN'),
    (errno.EPROTONOSUPPORT, 'no conntrack netlink support'),
    (errno.ENOENT, 'no conntrack netlink support'),
    (errno.EOPNOTSUPP, 'no conntrack netlink support'),
])
def test_kernel_errors_are_explained(monkeypatch, code, fragment):
    def refuse():
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(_netlink, 'NetlinkSocket', refuse)
    with pytest.raises(ct.ConntrackError) as exc:
        ct.list_entries(_ctfilters.build_filter({}))
    assert str(exc.value).startswith('conntrack_info: ') and fragment in str(exc.value)


def test_refused_kernel_filter_is_retried_in_userspace(monkeypatch):
    class Refusing(FakeSocket):
        def dump(self, msg_type, family, attrs=b'', version=0):
            if attrs:
                raise _netlink.NetlinkError(errno.EOPNOTSUPP, 'no')
            return FakeSocket.dump(self, msg_type, family, attrs, version)

    monkeypatch.setattr(_netlink, 'NetlinkSocket', Refusing())
    result = ct.list_entries(_ctfilters.build_filter({'src': '10.0.0.2'}), limit=0)
    assert result['count'] == sum(1 for e in ALL_CLI if e['tuples'][0]['src'] == '10.0.0.2')


def test_dump_error_midway_is_explained(monkeypatch):
    class Failing(FakeSocket):
        def dump(self, msg_type, family, attrs=b'', version=0):
            yield MESSAGES['ipv4'][0], 20, len(MESSAGES['ipv4'][0])
            raise _netlink.NetlinkError(errno.EPERM, 'no')

    monkeypatch.setattr(_netlink, 'NetlinkSocket', Failing())
    with pytest.raises(ct.ConntrackError):
        ct.list_entries(_ctfilters.build_filter({}))


def test_total_and_max_come_from_the_namespace_proc(fake, monkeypatch, tmp_path):
    (tmp_path / 'nf_conntrack_count').write_text('202400\n')
    (tmp_path / 'nf_conntrack_max').write_text('262144\n')
    monkeypatch.setattr(ct, 'PROC_NETFILTER', str(tmp_path) + '/')
    result = ct.list_entries(_ctfilters.build_filter({'protocol': 'icmp'}))
    assert (result['total'], result['max']) == (202400, 262144)
    monkeypatch.setattr(ct, 'PROC_NETFILTER', str(tmp_path / 'missing') + '/')
    result = ct.list_entries(_ctfilters.build_filter({}))
    assert (result['total'], result['max']) == (None, None)


@pytest.mark.parametrize('label', sorted(FAMILY))
def test_shapes_read_what_the_attribute_walk_reads(label, monkeypatch):
    monkeypatch.setattr(_ctcodec, '_SHAPES', {})
    shaped = set()
    for msg in MESSAGES[label]:
        assert _ctcodec._fields(msg, 20, len(msg)) == _ctcodec._walk(msg, 20, len(msg))
        if _ctcodec._Shape.of(msg, 20, len(msg)) is not None:
            shaped.add(_ctcodec.decode_entry(msg, 20, len(msg), FAMILY[label])['protocol'])
    # Port-protocol entries (TCP with CTA_PROTOINFO, UDP) are read by shapes;
    # ICMP tuples and directional zones are walked.
    assert shaped == {'tcp', 'udp'}


@pytest.mark.parametrize('label', sorted(FAMILY))
def test_listing_writes_each_entry_as_the_attribute_walk_reads_it(fake, label, monkeypatch):
    """The listing's template path (_FastShape) against _walk, entry by entry, text and summary."""
    monkeypatch.setattr(_ctcodec, '_SHAPES', {})
    templated = []
    real = _ctcodec._FastShape.template

    def template(self, key):
        templated.append(key)
        return real(self, key)
    monkeypatch.setattr(_ctcodec._FastShape, 'template', template)
    walked = []
    for msg in MESSAGES[label]:
        monkeypatch.setattr(_ctcodec, '_fields', _ctcodec._walk)
        walked.append(_ctcodec._entry_text(msg, 20, len(msg), FAMILY[label])[0])
    monkeypatch.undo()
    monkeypatch.setattr(_netlink, 'NetlinkSocket', fake)
    monkeypatch.setattr(_ctcodec, '_SHAPES', {})
    monkeypatch.setattr(_ctcodec._FastShape, 'template', template)
    flt = _ctfilters.build_filter({'family': label})
    listed = ct.list_entries(flt, limit=0)
    assert listed['entries'].texts == walked
    assert templated, 'no entry took the template path'
    # The same summary as counting every entry from its decoded fields.
    summary = _ctsummary._Summary()
    for msg in MESSAGES[label]:
        summary.add(msg, 20, len(msg), FAMILY[label])
    assert listed['summary'] == summary.result()
    streamed = []
    result = ct.list_entries(flt, limit=0, write=streamed.append)
    assert 'entries' not in result and sum(streamed, []) == walked and result['summary'] == summary.result()
    assert all(len(batch) <= ct.WRITE_BATCH for batch in streamed)


def test_entry_by_entry_deletes_go_out_while_the_dump_runs(fake, monkeypatch):
    """No request is held for the whole table: batches leave before the dump ends."""
    fake.probe = errno.EINVAL
    monkeypatch.setattr(ct, 'DELETE_BATCH', 3)
    dumped = []
    sent_at = []
    replay = fake.dump
    send = fake.transact

    def dump(*args, **kwargs):
        for message in replay(*args, **kwargs):
            dumped.append(message)
            yield message

    def transact(requests):
        sent_at.append(len(dumped))
        return send(requests)
    monkeypatch.setattr(fake, 'dump', dump)
    monkeypatch.setattr(fake, 'transact', transact)
    result = ct.flush_entries(_ctfilters.build_filter({'protocol': 'udp'}))
    udp = [e for e in ALL_CLI if e['protocol'] == 'udp']
    batches = fake.transactions[1:]    # after the probe
    assert result['deleted'] == result['matched'] == len(udp)
    assert [len(b) for b in batches[:-1]] == [3] * (len(batches) - 1) and 1 <= len(batches[-1]) <= 3
    assert deleted_ids(sum(batches, [])) == sorted(e['id'] for e in udp)
    assert sent_at[1] < len(dumped) / 2    # the first batch went out early in the dump


def test_a_delete_error_midway_says_what_was_deleted_before(fake, monkeypatch):
    fake.probe = errno.EINVAL
    monkeypatch.setattr(ct, 'DELETE_BATCH', 2)
    calls = []

    def results(request):
        calls.append(request)
        return errno.EPERM if len(calls) > 4 else 0
    fake.results = results
    with pytest.raises(ct.ConntrackError) as exc:
        ct.flush_entries(_ctfilters.build_filter({'protocol': 'udp'}))
    assert 'CAP_NET_ADMIN' in str(exc.value) and str(exc.value).endswith('(4 entries were deleted before)')


def test_max_entries_holds_no_more_requests_than_it_allows(fake, monkeypatch):
    fake.probe = errno.EINVAL
    monkeypatch.setattr(ct, 'DELETE_BATCH', 2)
    held = []
    real = ct._holder

    def holder(limit):
        delete, requests = real(limit)
        held.append(requests)
        return delete, requests
    monkeypatch.setattr(ct, '_holder', holder)
    with pytest.raises(ct.ConntrackError):
        ct.flush_entries(_ctfilters.build_filter({'protocol': 'udp'}), max_entries=3)
    assert len(held[0]) == 4 and len(fake.transactions) == 1    # the probe only
    udp = sum(1 for e in ALL_CLI if e['protocol'] == 'udp')
    assert ct.flush_entries(_ctfilters.build_filter({'protocol': 'udp'}), max_entries=udp)['deleted'] == udp
    assert len(held[1]) == udp and len(fake.transactions[-1]) == udp


@pytest.mark.parametrize('args', [dict(summary_only=True), dict(limit=0)])
def test_counts_folded_midway_when_there_are_many_templates(fake, args, monkeypatch):
    """With room for 2 templates, listed entries are folded into the summary many times: same result."""
    whole = ct.list_entries(_ctfilters.build_filter({}), **args)
    monkeypatch.setattr(_ctcodec, '_TEMPLATES', 2)
    monkeypatch.setattr(_ctcodec, '_SHAPES', {})
    small = ct.list_entries(_ctfilters.build_filter({}), **args)
    assert small['summary'] == whole['summary'] and small['entries'] == whole['entries']
