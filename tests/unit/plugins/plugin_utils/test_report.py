# SPDX-License-Identifier: GPL-3.0-or-later
"""Report helpers of the playbooks: text table, CSV, rows, fleet total."""

import pytest

from ansible_collections.stateful.netfilter.plugins.plugin_utils import _report as report

# A conntrack_info result (summary_only) as the module returns it.
GW = dict(
    changed=False, count=12, total=12, max=262144, truncated=True, entries=[],
    summary=dict(
        families=dict(ipv4=10, ipv6=2),
        protocols=dict(tcp=5, udp=4, icmp=1, icmpv6=1, sctp=1),
        tcp_states=dict(ESTABLISHED=3, TIME_WAIT=2),
        nat=dict(snat=6, dnat=1, both=1, none=4),
        top_destinations=[dict(address='198.51.100.1', count=7), dict(address='2001:db8::1', count=2)],
        top_ports=[dict(protocol='udp', port=53, count=4), dict(protocol='tcp', port=443, count=3)],
    ),
)
GW2 = dict(
    changed=False, count=3, total=5, max=65536, truncated=True, entries=[],
    summary=dict(
        families=dict(ipv4=3), protocols=dict(udp=3), tcp_states={}, nat=dict(none=3),
        top_destinations=[dict(address='203.0.113.9', count=2), dict(address='198.51.100.1', count=1)],
        top_ports=[dict(protocol='udp', port=53, count=3)],
    ),
)
FAILED = dict(failed=True, msg='conntrack_info: permission denied (needs root)')
UNREACHABLE = dict(unreachable=True, msg='Failed to connect to the host via ssh')


class TestTextTable:

    def test_aligns_numbers_right_and_text_left(self):
        rows = [dict(host='gw', matched=3, failed=False), dict(host='gateway-2', matched=120, failed=True)]
        assert report.text_table(rows) == [
            'host       matched  failed',
            '---------  -------  ------',
            'gw               3  no',
            'gateway-2      120  yes',
        ]

    def test_columns_pick_and_order_headers_rename(self):
        rows = [dict(a=1, b='x', c=None)]
        assert report.text_table(rows, ['c', 'a'], {'a': 'would delete'}) == [
            'c  would delete',
            '-  ------------',
            '-             1',
        ]

    def test_missing_keys_and_floats(self):
        rows = [dict(host='gw', usage=12.345), dict(host='gw2')]
        assert report.text_table(rows, ['host', 'usage']) == [
            'host  usage', '----  -----', 'gw     12.3', 'gw2       -']

    def test_max_width_cuts_long_cells(self):
        rows = [dict(host='gw', error='max_entries: 3 entries match, more than max_entries=0; nothing deleted')]
        assert report.text_table(rows, ['host', 'error'], max_width=20) == [
            'host  error', '----  --------------------', 'gw    max_entries: 3 en...']

    @pytest.mark.parametrize('width', [0, 3, True, '20', 2.5])
    def test_bad_max_width(self, width):
        with pytest.raises(report.ReportError):
            report.text_table([dict(a=1)], max_width=width)

    def test_no_rows(self):
        assert report.text_table([], ['host']) == ['host', '----']

    @pytest.mark.parametrize('rows, columns, headers', [
        ('gw', None, None),
        ([1, 2], None, None),
        ([dict(a=1)], 'a', None),
        ([dict(a=1)], [1], None),
        ([dict(a=1)], None, ['x']),
    ])
    def test_bad_input(self, rows, columns, headers):
        with pytest.raises(report.ReportError):
            report.text_table(rows, columns, headers)


class TestCsv:

    def test_header_quoting_none_and_nested(self):
        rows = [dict(host='gw', error=None, top='a, b', ports=[53]), dict(host='gw2', error='say "no"')]
        assert report.to_csv(rows, ['host', 'error', 'top', 'ports']) == (
            'host,error,top,ports\n'
            'gw,,"a, b",[53]\n'
            'gw2,"say ""no""",,\n')

    def test_default_columns(self):
        assert report.to_csv([dict(a=1), dict(b=2)]) == 'a,b\n1,\n,2\n'


class TestRows:

    def test_row_of_a_result(self):
        row = report.conntrack_row(GW, 'gw')
        assert list(row) == list(report.ROW_COLUMNS)
        assert row == dict(
            host='gw', error=None, total=12, max=262144, usage_percent=0.0, matched=12,
            ipv4=10, ipv6=2, tcp=5, udp=4, icmp=2, other=1, established=3, time_wait=2,
            snat=7, dnat=2, top_destination='198.51.100.1 (7)')

    @pytest.mark.parametrize('result, error', [
        (FAILED, FAILED['msg']),
        (UNREACHABLE, UNREACHABLE['msg']),
        (dict(skipped=True), 'skipped'),
        (dict(failed=True), 'failed'),
    ])
    def test_row_of_a_failure(self, result, error):
        row = report.conntrack_row(result, 'gw')
        assert row['host'] == 'gw' and row['error'] == error
        assert all(row[key] is None for key in report.ROW_COLUMNS if key not in ('host', 'error'))

    def test_rows_keep_the_order_of_hosts(self):
        rows = report.conntrack_rows(dict(gw2=GW2, gw=GW, gw3=FAILED))
        assert [row['host'] for row in rows] == ['gw2', 'gw', 'gw3']
        assert rows[0]['usage_percent'] == 0.0 and rows[0]['udp'] == 3 and rows[0]['top_destination'] == '203.0.113.9 (2)'

    def test_empty_summary(self):
        row = report.conntrack_row(dict(count=0, total=0, max=None, summary={}), 'gw')
        assert row['usage_percent'] is None and row['tcp'] == 0 and row['top_destination'] is None

    @pytest.mark.parametrize('bad', ['gw', [GW], None])
    def test_bad_input(self, bad):
        with pytest.raises(report.ReportError):
            report.conntrack_rows(bad)
        if not isinstance(bad, list):
            with pytest.raises(report.ReportError):
                report.conntrack_row(bad)


@pytest.mark.parametrize('total, maximum, percent', [
    (0, 100, 0.0), (50, 200, 25.0), (1, 3, 33.3), (262144, 262144, 100.0),
    (5, None, None), (None, 5, None), (5, 0, None), (True, 5, None),
])
def test_usage_percent(total, maximum, percent):
    assert report.usage_percent(total, maximum) == percent


class TestFleet:

    def test_sums_and_merges(self):
        fleet = report.conntrack_fleet([GW, GW2, FAILED])
        assert fleet['hosts'] == 3 and fleet['hosts_failed'] == 1
        assert fleet['total'] == 17 and fleet['max'] == 262144 + 65536 and fleet['matched'] == 15
        assert fleet['usage_percent'] == 0.0
        assert fleet['families'] == dict(ipv4=13, ipv6=2)
        assert fleet['protocols'] == dict(tcp=5, udp=7, icmp=1, icmpv6=1, sctp=1)
        assert fleet['tcp_states'] == dict(ESTABLISHED=3, TIME_WAIT=2)
        assert fleet['nat'] == dict(snat=6, dnat=1, both=1, none=7)
        assert fleet['top_destinations'] == [
            dict(address='198.51.100.1', count=8), dict(address='2001:db8::1', count=2),
            dict(address='203.0.113.9', count=2)]
        assert fleet['top_ports'] == [dict(protocol='udp', port=53, count=7), dict(protocol='tcp', port=443, count=3)]

    def test_dict_input_and_unknown_max(self):
        fleet = report.conntrack_fleet(dict(gw=GW, gw2=dict(GW2, max=None)))
        assert fleet['hosts'] == 2 and fleet['max'] is None and fleet['usage_percent'] is None

    def test_top_is_capped(self):
        results = [dict(total=1, max=10, count=1, summary=dict(top_destinations=[dict(address='10.0.0.%d' % i, count=i)]))
                   for i in range(1, 15)]
        top = report.conntrack_fleet(results)['top_destinations']
        assert len(top) == report.TOP_SIZE and top[0] == dict(address='10.0.0.14', count=14)

    def test_empty(self):
        fleet = report.conntrack_fleet([])
        assert fleet['hosts'] == 0 and fleet['total'] == 0 and fleet['usage_percent'] is None

    @pytest.mark.parametrize('bad', ['gw', [1], [dict(summary='x')]])
    def test_bad_input(self, bad):
        with pytest.raises(report.ReportError):
            report.conntrack_fleet(bad)
