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
import unicodedata

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

_IFNAME = re.compile(r'[A-Za-z0-9_.:@-]+\+?')
_DIGITS = re.compile(r'[0-9]+')
IFNAMSIZ = 15
# How much of a bad value an error message quotes.
SHOW_MAX = 200
# Unicode categories no text may carry into restore input or a saved record:
# control characters (C0, DEL, C1 with NEL \x85), surrogates (not encodable), and
# the line and paragraph separators (U+2028, U+2029) that str.splitlines() and
# other readers take as line breaks.
FORBIDDEN_CATEGORIES = ('Cc', 'Cs', 'Zl', 'Zp')


class ValidationError(ValueError):
    """Bad user input; the message always starts with the parameter name."""

    def __init__(self, param, message):
        self.param = param
        super(ValidationError, self).__init__('%s: %s' % (param, message))


def show(value):
    """A bad value as an error message quotes it: repr, cut to SHOW_MAX characters."""
    text = repr(value)
    if len(text) > SHOW_MAX:
        text = '%s... (%d characters)' % (text[:SHOW_MAX], len(text))
    return text


def is_digits(text):
    """True for a non-empty string of ASCII digits (str.isdigit() also takes '²' and '٨')."""
    return isinstance(text, str) and _DIGITS.fullmatch(text) is not None


def check_text(value, param):
    """The one rule for every string that can reach restore text or a saved record.

    Refuses control characters (newline, carriage return, NUL, tab, vertical
    tab, form feed, \x1c-\x1f, DEL, \x85 ...), surrogates and the Unicode
    line and paragraph separators, so that no value can end a line of
    iptables-restore input or be split into two lines by any reader.
    """
    if not isinstance(value, str):
        raise ValidationError(param, 'expected a string, got %s' % show(value))
    for char in value:
        if unicodedata.category(char) in FORBIDDEN_CATEGORIES:
            raise ValidationError(param, 'must be a single line of printable text (U+%04X %s is not allowed): %s'
                                  % (ord(char), unicodedata.name(char, 'control character'), show(value)))
    return value


def _text(value, param):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError(param, 'expected a string, got %s' % show(value))
    return check_text(str(value), param).strip()


def _no_zone(text, param):
    # Python 3.9+ takes 'fe80::1%ZONE' with any text as the zone and prints it back.
    if '%' in text:
        raise ValidationError(param, '%s: an address with a zone (%%...) cannot be matched' % show(text))
    return text


def parse_network(value, param, family=None):
    """Return an ip_network for an address or CIDR ('10.0.0.1', '10.0.0.0/8').

    Host bits set in a CIDR are an error, as the kernel would silently
    drop them and the rule would not mean what was written.
    family, when given ('ipv4' or 'ipv6'), must match the address.
    """
    text = _no_zone(_text(value, param), param)
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        if '/' in text:
            try:
                loose = ipaddress.ip_network(text, strict=False)
            except ValueError:
                pass
            else:
                raise ValidationError(param, '%s has host bits set (the network is %s)' % (show(text), loose))
        raise ValidationError(param, '%s is not an IP address or CIDR' % (show(text),))
    check_family(net, family, param)
    return net


def parse_address(value, param, family=None):
    """Return an ip_address for a single address (no prefix)."""
    text = _no_zone(_text(value, param), param)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ValidationError(param, '%s is not an IP address' % (show(text),))
    check_family(addr, family, param)
    return addr


def family_of(addr):
    """'ipv4' or 'ipv6' for an ip_address or ip_network."""
    return 'ipv4' if addr.version == 4 else 'ipv6'


def check_family(addr, family, param):
    if family is not None and family_of(addr) != family:
        raise ValidationError(
            param, '%s is an %s address but the rule is %s' % (addr, family_of(addr), family))


def parse_port_range(value, param, allow_any=False):
    """Return (low, high) for a port (80) or a range ('1000-2000', '1000:2000').

    Ports are 1-65535; with allow_any, the whole range 0-65535 (any port, as iptables prints
    it back) is also taken.
    """
    if isinstance(value, bool):
        raise ValidationError(param, 'expected a port or a range, got %s' % (show(value),))
    if isinstance(value, int):
        low = high = value
    else:
        text = _text(value, param)
        parts = re.split(r'[-:]', text)
        if len(parts) > 2 or not all(is_digits(p) for p in parts):
            raise ValidationError(param, '%s is not a port or a range of ports (e.g. 80 or 1000-2000)' % (show(text),))
        low, high = int(parts[0]), int(parts[-1])
    if allow_any and (low, high) == (0, 65535):
        return low, high
    for port in (low, high):
        if port == 0:
            raise ValidationError(param, 'port 0 is not a port (1-65535); leave the option out to mean any port')
        if not 1 <= port <= 65535:
            raise ValidationError(param, 'port %d is out of range (1-65535)' % port)
    if low > high:
        raise ValidationError(param, 'range %d-%d is reversed' % (low, high))
    return low, high


def parse_protocol(value, param):
    """Return the protocol number for a name ('tcp') or a number (6, '6')."""
    text = _text(value, param).lower()
    if is_digits(text):
        number = int(text)
        if not 0 <= number <= 255:
            raise ValidationError(param, 'protocol number %d is out of range (0-255)' % number)
        return number
    if text not in PROTOCOLS:
        raise ValidationError(
            param, 'unknown protocol %s (one of %s, or a number)' % (show(text), ', '.join(sorted(PROTOCOLS))))
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
        raise ValidationError(param, '%s is longer than %d characters' % (show(text), IFNAMSIZ))
    if not _IFNAME.fullmatch(text) or text in ('.', '..'):
        raise ValidationError(param, '%s contains characters not allowed in an interface name' % (show(text),))
    return text


def check_comment(value, param, limit):
    """Return a comment (or log prefix) of at most limit bytes that iptables stores and prints back unchanged."""
    check_text(value, param)
    if len(value.encode('utf-8')) > limit:
        raise ValidationError(param, 'is longer than %d bytes' % limit)
    return value


def parse_mark(value, param):
    """Return (value, mask) for '0x10', 16 or '0x10/0xff'; mask defaults to all ones."""
    text = _text(value, param)
    parts = text.split('/')
    if len(parts) > 2:
        raise ValidationError(param, '%s is not a mark (value or value/mask)' % (show(text),))
    nums = []
    for part in parts:
        try:
            if not re.fullmatch(r'0[xX][0-9a-fA-F]+|[0-9]+', part):
                raise ValueError(part)
            num = int(part, 0)
        except ValueError:
            raise ValidationError(param, '%s is not a mark (value or value/mask)' % (show(text),))
        if not 0 <= num <= 0xFFFFFFFF:
            raise ValidationError(param, '%s is out of range (32 bits)' % (show(text),))
        nums.append(num)
    return nums[0], (nums[1] if len(nums) == 2 else 0xFFFFFFFF)
