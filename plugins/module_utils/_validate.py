# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validation of user input shared by every module of the collection.

Private to the collection. Each function takes the raw value and the name of
the parameter it came from, and either returns a normalised value or raises
ValidationError naming that parameter. Pure Python, no I/O: unit tests reach
it without root.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

FAMILIES = ('ipv4', 'ipv6')

# Protocol names accepted wherever a protocol is given, with their numbers.
PROTOCOLS = {
    'icmp': 1,
    'tcp': 6,
    'udp': 17,
    'dccp': 33,
    'gre': 47,
    'esp': 50,
    'ah': 51,
    'icmpv6': 58,
    'ipv6-icmp': 58,
    'sctp': 132,
    'udplite': 136,
}
PROTOCOL_NAMES = {
    1: 'icmp', 6: 'tcp', 17: 'udp', 47: 'gre', 50: 'esp', 51: 'ah',
    58: 'icmpv6', 132: 'sctp', 136: 'udplite',
}
PORT_PROTOCOLS = ('tcp', 'udp', 'sctp', 'udplite')

_IFNAME = re.compile(r'^[A-Za-z0-9_.:@-]+\+?$')
IFNAMSIZ = 15


class ValidationError(ValueError):
    """Bad user input; the message always starts with the parameter name."""

    def __init__(self, param, message):
        self.param = param
        super(ValidationError, self).__init__('%s: %s' % (param, message))


def _text(value, param):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError(param, 'expected a string, got %r' % (value,))
    return str(value).strip()


def parse_network(value, param, family=None):
    """Return an ip_network for an address or CIDR ('10.0.0.1', '10.0.0.0/8').

    Host bits set in a CIDR are an error, as the kernel would silently
    drop them and the rule would not mean what was written.
    family, when given ('ipv4' or 'ipv6'), must match the address.
    """
    text = _text(value, param)
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if '/' in text:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                pass
            else:
                raise ValidationError(param, '%r has host bits set (%s)' % (text, exc))
        raise ValidationError(param, '%r is not an IP address or CIDR' % (text,))
    check_family(net, family, param)
    return net


def parse_address(value, param, family=None):
    """Return an ip_address for a single address (no prefix)."""
    text = _text(value, param)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ValidationError(param, '%r is not an IP address' % (text,))
    check_family(addr, family, param)
    return addr


def family_of(addr):
    """'ipv4' or 'ipv6' for an ip_address or ip_network."""
    return 'ipv4' if addr.version == 4 else 'ipv6'


def check_family(addr, family, param):
    if family is not None and family_of(addr) != family:
        raise ValidationError(
            param, '%s is an %s address but the rule is %s' % (addr, family_of(addr), family))


def parse_port_range(value, param):
    """Return (low, high) for a port (80) or a range ('1000-2000', '1000:2000')."""
    if isinstance(value, bool):
        raise ValidationError(param, 'expected a port or a range, got %r' % (value,))
    if isinstance(value, int):
        low = high = value
    else:
        text = _text(value, param)
        parts = re.split(r'[-:]', text)
        if len(parts) > 2 or not all(p.isdigit() for p in parts):
            raise ValidationError(param, '%r is not a port or a range of ports (e.g. 80 or 1000-2000)' % (text,))
        low, high = int(parts[0]), int(parts[-1])
    for port in (low, high):
        if not 0 <= port <= 65535:
            raise ValidationError(param, 'port %d is out of range (0-65535)' % port)
    if low > high:
        raise ValidationError(param, 'range %d-%d is reversed' % (low, high))
    return low, high


def parse_protocol(value, param):
    """Return the protocol number for a name ('tcp') or a number (6, '6')."""
    text = _text(value, param).lower()
    if text.isdigit():
        number = int(text)
        if not 0 <= number <= 255:
            raise ValidationError(param, 'protocol number %d is out of range (0-255)' % number)
        return number
    if text not in PROTOCOLS:
        raise ValidationError(
            param, 'unknown protocol %r (one of %s, or a number)' % (text, ', '.join(sorted(PROTOCOLS))))
    return PROTOCOLS[text]


def protocol_name(number):
    """The canonical name of a protocol number, or the number as text."""
    return PROTOCOL_NAMES.get(number, str(number))


def check_interface(value, param):
    """Return an interface name (a trailing '+' is iptables' wildcard)."""
    text = _text(value, param)
    if not text:
        raise ValidationError(param, 'interface name is empty')
    if len(text.rstrip('+')) > IFNAMSIZ:
        raise ValidationError(param, '%r is longer than %d characters' % (text, IFNAMSIZ))
    if not _IFNAME.match(text) or text in ('.', '..'):
        raise ValidationError(param, '%r contains characters not allowed in an interface name' % (text,))
    return text


def check_comment(value, param, limit):
    """Return a comment (or log prefix) of at most limit bytes that iptables stores and prints back unchanged."""
    if not isinstance(value, str):
        raise ValidationError(param, 'expected a string, got %r' % (value,))
    if any(c in value for c in '\r\n\0'):
        raise ValidationError(param, 'must be a single line (no newline or NUL)')
    if len(value.encode('utf-8')) > limit:
        raise ValidationError(param, 'is longer than %d bytes' % limit)
    return value


def parse_mark(value, param):
    """Return (value, mask) for '0x10', 16 or '0x10/0xff'; mask defaults to all ones."""
    text = _text(value, param)
    parts = text.split('/')
    if len(parts) > 2:
        raise ValidationError(param, '%r is not a mark (value or value/mask)' % (text,))
    nums = []
    for part in parts:
        try:
            num = int(part, 0)
        except ValueError:
            raise ValidationError(param, '%r is not a mark (value or value/mask)' % (text,))
        if not 0 <= num <= 0xFFFFFFFF:
            raise ValidationError(param, '%r is out of range (32 bits)' % (text,))
        nums.append(num)
    return nums[0], (nums[1] if len(nums) == 2 else 0xFFFFFFFF)
