# SPDX-License-Identifier: GPL-3.0-or-later
"""The conntrack report's HTML page: self-contained, escaped, red and amber where it should be."""

import html.parser

import pytest
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.stateful.netfilter.plugins.filter.conntrack_html import FilterModule
from ansible_collections.stateful.netfilter.plugins.plugin_utils import _report_html as page
from ansible_collections.stateful.netfilter.plugins.plugin_utils._report import ReportError

# conntrack_info (summary_only, summary_details: [talkers]) and conntrack_stats results as the modules return them.
GW = dict(
    changed=False, count=1250, total=1250, max=262144, truncated=True, entries=[],
    summary=dict(
        families=dict(ipv4=1240, ipv6=10), protocols=dict(tcp=1000, udp=230, icmp=20),
        tcp_states=dict(ESTABLISHED=640, SYN_SENT=300, TIME_WAIT=60), nat=dict(snat=1100, none=150),
        unreplied=320, assured=610, half_open=300,
        top_sources=[dict(address='10.0.0.2', count=400), dict(address='10.0.0.3', count=200)],
        top_destinations=[dict(address='198.51.100.1', count=300)],
        top_translated_sources=[dict(address='203.0.113.1', count=1100)],
        top_translated_destinations=[], top_ports=[dict(protocol='tcp', port=443, count=900)],
        accounted=1250,
        top_talkers_bytes=[dict(address='10.0.0.5', bytes=912040000, packets=608000, entries=10)],
        top_talkers_packets=[dict(address='10.0.0.2', bytes=1510000, packets=50350, entries=400)],
    ),
)
STATS_QUIET = dict(
    changed=False, count=1250, max=262144, totals=dict(found=0, invalid=12, drop=0, early_drop=0),
    delta=dict(seconds=1.0, counters=dict(invalid=2), rates=dict(invalid=2.0)),
    checks=dict(table_usage_percent=dict(evaluated=True, value=0.48, threshold=90.0, fired=False),
                drop_increase=dict(evaluated=True, value=0, threshold=0, fired=False),
                half_open_percent=dict(evaluated=False, threshold=25.0, fired=False, reason='no summary')),
    anomalies=[])


def anomaly(check, value, threshold):
    return dict(check=check, value=value, threshold=threshold, msg='%s: %s above %s' % (check, value, threshold))


def stats_with(*anomalies):
    out = dict(STATS_QUIET, anomalies=list(anomalies), checks=dict(STATS_QUIET['checks']))
    for item in anomalies:
        out['checks'][item['check']] = dict(evaluated=True, value=item['value'], threshold=item['threshold'], fired=True)
    return out


class Parsed(html.parser.HTMLParser):
    """Tags, attributes and text of a page."""

    def __init__(self, text):
        html.parser.HTMLParser.__init__(self, convert_charrefs=True)
        self.tags, self.attrs, self.text = set(), [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


# Every tag and attribute the page is made of: anything else came from a host.
TAGS = {'html', 'head', 'meta', 'title', 'style', 'body', 'main', 'h1', 'h2', 'h3', 'p', 'div', 'span', 'table',
        'thead', 'tbody', 'tr', 'th', 'td', 'a', 'section', 'header', 'ul', 'li', 'svg', 'rect', 'line', 'text', 'g',
        'br', 'footer'}
ATTRS = {'lang', 'charset', 'name', 'content', 'http-equiv', 'class', 'id', 'href', 'colspan', 'style', 'width',
         'height', 'viewbox', 'role', 'aria-label', 'rx', 'fill', 'x', 'y', 'x1', 'x2', 'y1', 'y2', 'stroke',
         'stroke-width', 'text-anchor'}


def render(hosts, stats=None, **kwargs):
    return page.conntrack_html(dict(hosts=hosts, stats=stats or {}), **kwargs)


class TestPage:

    def test_self_contained(self):
        text = render({'gw': GW}, {'gw': STATS_QUIET})
        parsed = Parsed(text)
        assert text.startswith('<!DOCTYPE html>')
        assert parsed.tags <= TAGS and 'script' not in parsed.tags
        assert {name for name, dummy in parsed.attrs} <= ATTRS
        assert 'http://' not in text and 'https://' not in text and 'url(' not in text and '@import' not in text
        assert all(value.startswith('#host-') for name, value in parsed.attrs if name == 'href')
        assert "default-src 'none'" in text

    def test_summary_row_and_sections(self):
        text = render({'gw': GW}, {'gw': STATS_QUIET}, title='Gateways', generated='2026-12-05 04:00 UTC')
        body = ' '.join(Parsed(text).text)
        assert '<title>Gateways</title>' in text and '2026-12-05 04:00 UTC' in body
        assert '1,250 of 262,144 entries (0.5%)' in body
        for shown in ('ESTABLISHED', 'SYN_SENT', 'snat', '10.0.0.2', '198.51.100.1', '203.0.113.1',
                      '869.8 MiB', '608,000', 'invalid', '+2', 'no summary'):
            assert shown in body, shown
        assert text.count('<svg') >= 6  # usage bars and the charts
        assert 'class="pill ok"' in text and 'class="red"' not in text and 'class="amber"' not in text

    def test_accounting_off_and_not_asked(self):
        off = dict(GW, summary=dict(GW['summary'], accounted=0))
        assert 'accounting (nf_conntrack_acct) is off' in render({'gw': off})
        plain = dict(GW, summary=dict((k, v) for k, v in GW['summary'].items() if not k.startswith(('top_talkers', 'accounted'))))
        assert 'not asked for (summary_details: talkers)' in render({'gw': plain})

    @pytest.mark.parametrize('check, level', [
        ('table_usage_percent', 'red'), ('drop_increase', 'red'), ('early_drop_increase', 'red'),
        ('insert_failed_increase', 'red'), ('top_source_percent', 'amber'), ('half_open_percent', 'amber'),
        ('some_future_check', 'amber'),
    ])
    def test_anomaly_levels(self, check, level):
        text = render({'gw': GW}, {'gw': stats_with(anomaly(check, 91, 90))})
        assert '<tr class="%s">' % level in text
        assert '<li class="%s">%s: 91 above 90</li>' % (level, check) in text
        assert page.host_level(GW, stats_with(anomaly(check, 91, 90))) == level

    def test_red_before_amber(self):
        stats = stats_with(anomaly('half_open_percent', 30, 25), anomaly('drop_increase', 4, 0))
        assert [level for level, dummy in page.host_anomalies(stats)] == ['red', 'amber']

    def test_usage_levels_follow_the_threshold(self):
        assert page.usage_level(95.0, 90.0) == 'red'
        assert page.usage_level(63.0, 90.0) == 'amber'
        assert page.usage_level(62.9, 90.0) == 'ok'
        assert page.usage_level(None, 90.0) is None
        near = dict(GW, total=170000)  # 64.9 %
        assert page.host_level(near, STATS_QUIET) == 'amber'
        assert page.host_level(near, dict(STATS_QUIET, checks=dict(table_usage_percent=dict(threshold=99.0)))) == 'ok'

    def test_unreadable_hosts(self):
        failed = dict(failed=True, msg='conntrack_info: permission denied')
        text = render({'gw': GW, 'gw2': failed}, {'gw': dict(failed=True, msg='conntrack_stats: no module')})
        body = ' '.join(Parsed(text).text)
        assert '2 hosts, 1 unreadable' in body and 'conntrack_info: permission denied' in body
        assert 'statistics: conntrack_stats: no module' in body
        assert page.host_level(failed, {}) == 'red' and page.host_level(GW, dict(failed=True)) == 'red'

    @pytest.mark.parametrize('report, message', [
        ([], 'report: expected a dictionary'),
        (dict(hosts=['gw']), 'hosts: expected a dictionary'),
        (dict(hosts={'gw': 'x'}), 'hosts.gw: expected a dictionary'),
        (dict(hosts={'gw': GW}, stats={'gw': [1]}), 'stats.gw: expected a dictionary'),
        (dict(hosts={'gw': dict(GW, summary=dict(GW['summary'], top_sources='10.0.0.1'))}),
         'top_sources: expected a list of dictionaries'),
    ])
    def test_bad_input(self, report, message):
        with pytest.raises(ReportError, match=message):
            page.conntrack_html(report)

    def test_filter(self):
        conntrack_html = FilterModule().filters()['conntrack_html']
        assert '<title>Fleet</title>' in conntrack_html(dict(hosts={'gw': GW}), 'Fleet', '2026')
        with pytest.raises(AnsibleFilterError, match='conntrack_html: hosts: expected a dictionary'):
            conntrack_html(dict(hosts=3))
        with pytest.raises(AnsibleFilterError, match='conntrack_html: title: expected text'):
            conntrack_html(dict(hosts={}), 3)


# Text a host could send back: host names, addresses, states, counter names, messages.
hostile = st.text(st.characters(blacklist_categories=('Cs',)), min_size=1, max_size=40) | st.sampled_from([
    '<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' onmouseover='x", '</style><b>',
    '&lt;already&gt;', '<!--', ']]>', '<svg onload=alert(1)>'])


class TestEscaping:

    @settings(max_examples=150, deadline=None)
    @given(host=hostile, value=hostile)
    def test_host_text_never_becomes_markup(self, host, value):
        summary = dict(GW['summary'], tcp_states={value: 3}, nat={value: 2}, protocols={value: 1},
                       top_sources=[dict(address=value, count=5)], top_destinations=[dict(address=value, count=4)],
                       top_translated_sources=[dict(address=value, count=1)],
                       top_talkers_bytes=[dict(address=value, bytes=1, packets=1, entries=1)],
                       top_talkers_packets=[dict(address=value, bytes=1, packets=1, entries=1)])
        stats = dict(STATS_QUIET, totals={value: 1}, checks={value: dict(evaluated=False, fired=False, reason=value)},
                     anomalies=[dict(check=value, value=1, threshold=0, msg=value)])
        failed = dict(failed=True, msg=value)
        text = render({host: dict(GW, summary=summary), host + '2': failed}, {host: stats}, title=value, generated=value)
        parsed = Parsed(text)
        assert parsed.tags <= TAGS
        assert {name for name, dummy in parsed.attrs} <= ATTRS
        body = ''.join(parsed.text)
        assert host in body and value in body

    @given(hostile)
    def test_esc_round_trips(self, value):
        escaped = page.esc(value)
        assert not set('<>"\'') & set(escaped)
        assert html.unescape(escaped) == value
