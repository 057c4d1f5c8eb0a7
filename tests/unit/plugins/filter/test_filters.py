# SPDX-License-Identifier: GPL-3.0-or-later
"""The filter plugins: registered names, and errors as AnsibleFilterError."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.stateful.netfilter.plugins.filter import conntrack_fleet, conntrack_rows, text_table, to_csv

PLUGINS = {
    'text_table': text_table,
    'to_csv': to_csv,
    'conntrack_rows': conntrack_rows,
    'conntrack_fleet': conntrack_fleet,
}


@pytest.mark.parametrize('name', sorted(PLUGINS))
def test_registered_under_its_file_name(name):
    assert list(PLUGINS[name].FilterModule().filters()) == [name]


@pytest.mark.parametrize('name', sorted(PLUGINS))
def test_bad_input_is_a_filter_error_naming_the_filter(name):
    function = PLUGINS[name].FilterModule().filters()[name]
    with pytest.raises(AnsibleFilterError, match='^%s: ' % name):
        function('not a list of dictionaries')


def test_through_the_filters():
    filters = {}
    for plugin in PLUGINS.values():
        filters.update(plugin.FilterModule().filters())
    result = dict(count=2, total=2, max=100, summary=dict(protocols=dict(udp=2)))
    rows = filters['conntrack_rows'](dict(gw=result))
    assert filters['text_table'](rows, ['host', 'udp', 'usage_percent']) == [
        'host  udp  usage_percent', '----  ---  -------------', 'gw      2            2.0']
    assert filters['to_csv'](rows, ['host', 'udp']) == 'host,udp\ngw,2\n'
    assert filters['conntrack_fleet']([result, result])['total'] == 4
