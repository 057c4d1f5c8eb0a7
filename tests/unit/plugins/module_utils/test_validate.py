# SPDX-License-Identifier: GPL-3.0-or-later
import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _validate as v


@pytest.mark.parametrize('value, expected', [
    ('192.168.1.0/24', '192.168.1.0/24'),
    ('10.0.0.1', '10.0.0.1/32'),
    ('2001:db8::/32', '2001:db8::/32'),
])
def test_parse_network(value, expected):
    assert str(v.parse_network(value, 'source')) == expected


@pytest.mark.parametrize('func, args, fragment', [
    (v.parse_network, ('10.0.0.1/8', 'source'), 'host bits'),
    (v.parse_network, ('300.1.1.1', 'source'), 'not an IP address'),
    (v.parse_network, ('2001:db8::1', 'source', 'ipv4'), 'ipv6 address'),
    (v.parse_address, ('10.0.0.0/8', 'to_source'), 'not an IP address'),
    (v.parse_port_range, ('70000', 'dport'), 'out of range'),
    (v.parse_port_range, ('20-10', 'dport'), 'reversed'),
    (v.parse_port_range, ('http', 'dport'), 'not a port'),
    (v.parse_port_range, (True, 'dport'), 'expected a port'),
    (v.parse_protocol, ('tcpp', 'protocol'), 'unknown protocol'),
    (v.parse_protocol, ('256', 'protocol'), 'out of range'),
    (v.check_interface, ('a' * 16, 'out_interface'), 'longer than 15'),
    (v.check_interface, ('eth0;reboot', 'out_interface'), 'not allowed'),
    (v.check_comment, ('two\nlines', 'comment', 255), 'single line'),
    (v.check_comment, ('x' * 256, 'comment', 255), 'longer than 255'),
    (v.parse_mark, ('0x1/0x1/1', 'mark'), 'not a mark'),
    (v.parse_mark, ('0x100000000', 'mark'), 'out of range'),
])
def test_bad_input_names_parameter(func, args, fragment):
    with pytest.raises(v.ValidationError) as exc:
        func(*args)
    assert str(exc.value).startswith(args[1] + ': ')
    assert fragment in str(exc.value)


def test_ports_and_protocols():
    assert v.parse_port_range(80, 'dport') == (80, 80)
    assert v.parse_port_range('1000:2000', 'dport') == (1000, 2000)
    assert v.parse_protocol('UDP', 'protocol') == 17
    assert v.parse_protocol(132, 'protocol') == 132
    assert v.protocol_name(58) == 'icmpv6'
    assert v.check_interface('veth+', 'in_interface') == 'veth+'
    assert v.parse_mark('0x10/0xff', 'mark') == (16, 255)
    assert v.parse_mark(7, 'mark') == (7, 0xFFFFFFFF)
