# SPDX-License-Identifier: GPL-3.0-or-later
"""The richer rule language (issue 14 section 4): negation, conntrack matches, multiport --ports, TCP flag
tests, the mangle and raw tables, DNAT port shifting and IPv6 NAT ranges.

The round-trip cases follow the forms the iptables project's own extension tests
(iptables/extensions/libxt_conntrack.t, libxt_multiport.t, libxt_tcp.t,
libxt_CT.t, libipt_DNAT.t, libip6t_DNAT.t) expect iptables-save to print, with
values of our own; the forms themselves were checked against iptables 1.8.9 on
both back ends (tests/netns/test_rule_language.py applies them to a kernel).
"""
import os
import shutil
import subprocess
import uuid

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _rules as r
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

# (save arguments as iptables-save prints them, family, table)
CANONICAL = [
    # libxt_conntrack.t: each option alone prints back as given.
    ('-m conntrack --ctstate UNTRACKED -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctstate SNAT,DNAT -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctorigsrc 198.51.100.3 -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctorigdst 198.51.100.3 -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctreplsrc 198.51.100.0/24 -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctrepldst 198.51.100.3 -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctdir ORIGINAL -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctdir REPLY -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctstatus NONE -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctstatus CONFIRMED -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctstatus EXPECTED -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctstatus SEEN_REPLY,ASSURED -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack --ctorigsrc 2001:db8::7 --ctorigdst 2001:db8:1::/48 -j ACCEPT', 'ipv6', 'filter'),
    # All options at once, in the order libxt_conntrack prints them (measured on nft and legacy).
    ('-m conntrack --ctstate NEW --ctorigsrc 192.0.2.1 --ctorigdst 192.0.2.2 --ctreplsrc 192.0.2.0/25 '
     '--ctrepldst 192.0.2.4 --ctorigsrcport 1024:65535 --ctorigdstport 443 --ctreplsrcport 8443 '
     '--ctrepldstport 2000:3000 --ctstatus ASSURED --ctdir ORIGINAL -j ACCEPT', 'ipv4', 'filter'),
    ('-m conntrack ! --ctstate NEW ! --ctorigdst 192.0.2.2 ! --ctorigdstport 80 ! --ctstatus EXPECTED,CONFIRMED '
     '-j DROP', 'ipv4', 'filter'),
    # libxt_multiport.t
    ('-p tcp -m multiport --ports 25,587:588 -j ACCEPT', 'ipv4', 'filter'),
    ('-p udp -m multiport --ports 123,10000:10100 -j ACCEPT', 'ipv4', 'filter'),
    ('-p sctp -m multiport --ports 9899 -j ACCEPT', 'ipv4', 'filter'),
    ('-p dccp -m multiport ! --ports 5004,5005 -j ACCEPT', 'ipv6', 'filter'),
    ('-p tcp -m multiport --ports 1,2,3,4,6,7,8,9,10,11,12,13,14,15,16 -j ACCEPT', 'ipv4', 'filter'),
    ('-p udplite -m multiport --sports 53,1024:65535 -m multiport --dports 53,54 -m multiport --ports 7 -j ACCEPT',
     'ipv4', 'filter'),
    # libxt_tcp.t: negated ports, and flag tests beyond --syn.
    ('-p tcp -m tcp ! --sport 1024 -j ACCEPT', 'ipv4', 'filter'),
    ('-p tcp -m tcp ! --dport 65535 -j ACCEPT', 'ipv4', 'filter'),
    ('-p tcp -m tcp ! --sport 1:1023 --dport 22 -j ACCEPT', 'ipv4', 'filter'),
    ('-p tcp -m tcp --sport 1023 ! --dport 22 -j ACCEPT', 'ipv4', 'filter'),
    ('-p udp -m udp ! --dport 53 -j ACCEPT', 'ipv6', 'filter'),
    ('-p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG SYN -j ACCEPT', 'ipv4', 'filter'),
    ('-p tcp -m tcp ! --tcp-flags FIN,SYN,RST,PSH,ACK,URG SYN -j ACCEPT', 'ipv4', 'filter'),
    ('-p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG RST -j DROP', 'ipv4', 'filter'),
    ('-p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j DROP', 'ipv4', 'filter'),
    ('-p tcp -m tcp --tcp-flags FIN,SYN FIN,SYN -j DROP', 'ipv6', 'filter'),
    ('-p tcp -m tcp --dport 80 --tcp-flags SYN,RST SYN -j ACCEPT', 'ipv4', 'filter'),
    # iptables' own negation of addresses and interfaces.
    ('! -s 192.0.2.0/24 ! -d 198.51.100.7/32 ! -i eth0 ! -o wg+ -j ACCEPT', 'ipv4', 'filter'),
    ('! -s fd00::/8 -j ACCEPT', 'ipv6', 'filter'),
    # libxt_CT.t, and the helpers of the kernel.
    ('-j CT --notrack', 'ipv4', 'raw'),
    ('-p tcp -m tcp --dport 21 -j CT --helper ftp', 'ipv4', 'raw'),
    ('-p udp -m udp --dport 69 -j CT --helper tftp', 'ipv6', 'raw'),
    ('-p tcp -m tcp --dport 1720 -j CT --helper Q.931', 'ipv4', 'raw'),
    ('-p udp -m udp --dport 137 -j CT --helper netbios-ns', 'ipv4', 'raw'),
    # TCPMSS, as libxt_TCPMSS prints it.
    ('-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu', 'ipv4', 'mangle'),
    ('-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1452', 'ipv6', 'mangle'),
    ('-o ppp0 -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j TCPMSS --set-mss 1400', 'ipv4', 'mangle'),
    # libipt_DNAT.t / libip6t_DNAT.t: ranges with and without ports, and DNAT's port shift.
    ('-j DNAT --to-destination 198.51.100.1-198.51.100.20', 'ipv4', 'nat'),
    ('-p tcp -j DNAT --to-destination 198.51.100.1-198.51.100.20:1025-65535', 'ipv4', 'nat'),
    ('-p tcp -j DNAT --to-destination 198.51.100.1:2000-2999/80', 'ipv4', 'nat'),
    ('-j DNAT --to-destination fd00::beef', 'ipv6', 'nat'),
    ('-j DNAT --to-destination fd00::beef-fd00::fee7', 'ipv6', 'nat'),
    ('-p tcp -j DNAT --to-destination [fd00::beef]:1025-65535', 'ipv6', 'nat'),
    ('-p tcp -j DNAT --to-destination [fd00::beef-fd00::fee7]:1025-65535', 'ipv6', 'nat'),
    ('-p udp -j DNAT --to-destination [fd00::1-fd00::9]:3000-3999/53', 'ipv6', 'nat'),
    ('-j SNAT --to-source 2001:db8::10-2001:db8::1f', 'ipv6', 'nat'),
    ('-p tcp -j SNAT --to-source [2001:db8::10-2001:db8::1f]:1024-65535', 'ipv6', 'nat'),
]


@pytest.mark.parametrize('args, family, table', CANONICAL)
def test_the_canonical_form_parses_and_renders_back_byte_for_byte(args, family, table):
    spec = r.parse_rule(args, family, table)
    assert spec is not None, args
    assert r.render(spec) == args
    # The spec is the model's input too: make_rule of it is itself.
    assert dict(r.make_rule(dict(spec), family, table)) == dict(spec)


# (what a user or another iptables spelling gives, family, table, the canonical text)
SPELLINGS = [
    ('-p tcp -m tcp --tcp-flags ALL NONE -j DROP', 'ipv4', 'filter',
     '-p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j DROP'),
    ('-p tcp -m tcp --tcp-flags ACK,SYN SYN -j DROP', 'ipv4', 'filter', '-p tcp -m tcp --tcp-flags SYN,ACK SYN -j DROP'),
    ('-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT', 'ipv4', 'filter',
     '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT'),
    ('-m conntrack --ctstatus ASSURED,SEEN_REPLY --ctstate ESTABLISHED,NEW -j ACCEPT', 'ipv4', 'filter',
     '-m conntrack --ctstate NEW,ESTABLISHED --ctstatus SEEN_REPLY,ASSURED -j ACCEPT'),
    ('-m conntrack --ctorigsrc 192.0.2.1/32 --ctorigsrcport 4:4 -j ACCEPT', 'ipv4', 'filter',
     '-m conntrack --ctorigsrc 192.0.2.1 --ctorigsrcport 4 -j ACCEPT'),
    ('-m conntrack --ctorigdst 2001:db8::1/128 -j ACCEPT', 'ipv6', 'filter', '-m conntrack --ctorigdst 2001:db8::1 -j ACCEPT'),
    ('-j DNAT --to-destination fd00::1-fd00::1', 'ipv6', 'nat', '-j DNAT --to-destination fd00::1'),
    ('-p tcp -m multiport ! --dports 80 -j ACCEPT', 'ipv4', 'filter', '-p tcp -m tcp ! --dport 80 -j ACCEPT'),
]


@pytest.mark.parametrize('args, family, table, canonical', SPELLINGS)
def test_other_spellings_read_as_the_canonical_rule(args, family, table, canonical):
    assert r.render(r.parse_rule(args, family, table)) == canonical


# (the user's rule, family, table, the text rendered)
USER = [
    (dict(source='!10.0.0.0/8', jump='DROP'), 'ipv4', 'filter', '! -s 10.0.0.0/8 -j DROP'),
    (dict(source=' ! 10.0.0.1 ', in_interface='! eth0', jump='DROP'), 'ipv4', 'filter', '! -s 10.0.0.1/32 ! -i eth0 -j DROP'),
    (dict(protocol='tcp', destination_port='!22', jump='DROP'), 'ipv4', 'filter', '-p tcp -m tcp ! --dport 22 -j DROP'),
    (dict(protocol='tcp', destination_port='!80,443', jump='DROP'), 'ipv4', 'filter',
     '-p tcp -m multiport ! --dports 80,443 -j DROP'),
    (dict(protocol='tcp', source_port=['!', 80, '1000-2000'], jump='DROP'), 'ipv4', 'filter',
     '-p tcp -m multiport ! --sports 80,1000:2000 -j DROP'),
    (dict(protocol='tcp', port=[80], jump='ACCEPT'), 'ipv4', 'filter', '-p tcp -m multiport --ports 80 -j ACCEPT'),
    (dict(protocol='tcp', port='!80', jump='ACCEPT'), 'ipv4', 'filter', '-p tcp -m multiport ! --ports 80 -j ACCEPT'),
    (dict(protocol='tcp', tcp_flags={'flags': ['SYN', 'RST'], 'flags_set': ['SYN']}, jump='ACCEPT'), 'ipv4',
     'filter', '-p tcp -m tcp --tcp-flags SYN,RST SYN -j ACCEPT'),
    (dict(protocol='tcp', tcp_flags={'flags': 'ALL'}, jump='ACCEPT'), 'ipv4', 'filter',
     '-p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j ACCEPT'),
    (dict(protocol='tcp', tcp_flags='!fin,syn,rst,ack syn', jump='ACCEPT'), 'ipv4', 'filter',
     '-p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT'),
    (dict(ctstate=['!NEW', 'related'], jump='ACCEPT'), 'ipv4', 'filter', '-m conntrack ! --ctstate NEW,RELATED -j ACCEPT'),
    (dict(ctstate='! INVALID', jump='ACCEPT'), 'ipv4', 'filter', '-m conntrack ! --ctstate INVALID -j ACCEPT'),
    (dict(protocol='tcp', ctorigdst='198.51.100.7', ctorigdstport='8000-8080', ctdir='original', jump='DROP'),
     'ipv4', 'filter', '-p tcp -m conntrack --ctorigdst 198.51.100.7 --ctorigdstport 8000:8080 --ctdir ORIGINAL -j DROP'),
    (dict(ctorigsrc='0.0.0.0/0', ctorigsrcport='0-65535', jump='ACCEPT'), 'ipv4', 'filter', '-j ACCEPT'),
    (dict(protocol='TCP', destination_port=21, jump='ct', helper='FTP'), 'ipv4', 'raw',
     '-p tcp -m tcp --dport 21 -j CT --helper ftp'),
    (dict(protocol='tcp', syn=True, jump='TCPMSS', set_mss='1400'), 'ipv4', 'mangle',
     '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j TCPMSS --set-mss 1400'),
    (dict(protocol='tcp', jump='DNAT', to_destination='[fd00::5]:8000-8099/80'), 'ipv6', 'nat',
     '-p tcp -j DNAT --to-destination [fd00::5]:8000-8099/80'),
]


@pytest.mark.parametrize('raw, family, table, text', USER)
def test_the_users_rule_renders_canonically_and_parses_back(raw, family, table, text):
    spec = r.make_rule(raw, family, table)
    assert r.render(spec) == text
    assert dict(r.parse_rule(text, family, table)) == dict(spec)


def test_negated_values_are_kept_apart_from_plain_ones():
    spec = r.make_rule(dict(source='!10.0.0.0/8', protocol='udp', port='!53,123', ctstatus='!ASSURED',
                            jump='DROP'), 'ipv4', 'filter')
    assert spec['source'] == '!10.0.0.0/8' and r.negated(spec['source']) and r.plain(spec['source']) == '10.0.0.0/8'
    assert spec['port'] == ['!', '53', '123'] and r.plain(spec['port']) == ['53', '123']
    assert spec['ctstatus'] == ['!', 'ASSURED']
    assert not r.negated('10.0.0.0/8') and not r.negated(['53'])


def test_a_family_is_inferred_from_conntrack_and_negated_addresses():
    assert r.infer_family(dict(ctorigdst='2001:db8::1')) == 'ipv6'
    assert r.infer_family(dict(source='!2001:db8::/32')) == 'ipv6'
    assert r.infer_family(dict(to_destination='fd00::1-fd00::9')) == 'ipv6'
    assert r.infer_family(dict(ctreplsrc='!192.0.2.0/24')) == 'ipv4'
    assert r.infer_family(dict(protocol='tcp', jump='CT', helper='IRC')) == 'ipv4'
    assert r.infer_family(dict(protocol='tcp', jump='CT', helper='ftp')) is None
    assert r.infer_family(dict(protocol='tcp')) is None


# (the user's rule, family, table, the option named, a fragment of the message)
BAD = [
    (dict(source='!', jump='DROP'), 'ipv4', 'filter', 'source', 'negates nothing'),
    (dict(source='!0.0.0.0/0', jump='DROP'), 'ipv4', 'filter', 'source', 'matches nothing'),
    (dict(destination='! ::/0', jump='DROP'), 'ipv6', 'filter', 'destination', 'matches nothing'),
    (dict(protocol='tcp', destination_port='!0-65535', jump='DROP'), 'ipv4', 'filter', 'destination_port',
     'matches nothing'),
    (dict(protocol='tcp', destination_port='!!22', jump='DROP'), 'ipv4', 'filter', 'destination_port', 'not a port'),
    (dict(in_interface='!', jump='DROP'), 'ipv4', 'filter', 'in_interface', 'negates nothing'),
    (dict(protocol='icmp', port=[1, 2], jump='DROP'), 'ipv4', 'filter', 'port', 'needs protocol'),
    (dict(protocol='tcp', port=list(range(1, 17)), jump='DROP'), 'ipv4', 'filter', 'port', 'at most 15'),
    (dict(protocol='tcp', port=['8000-7000'], jump='DROP'), 'ipv4', 'filter', 'port', 'reversed'),
    (dict(protocol='tcp', port=0, jump='DROP'), 'ipv4', 'filter', 'port', 'port 0'),
    (dict(protocol='tcp', tcp_flags='SYN', jump='DROP'), 'ipv4', 'filter', 'tcp_flags', 'FLAGS SET'),
    (dict(protocol='tcp', tcp_flags='SYN,XMAS SYN', jump='DROP'), 'ipv4', 'filter', 'tcp_flags', 'not a TCP flag'),
    (dict(protocol='tcp', tcp_flags='SYN ACK', jump='DROP'), 'ipv4', 'filter', 'tcp_flags', 'never match'),
    (dict(protocol='tcp', tcp_flags='NONE NONE', jump='DROP'), 'ipv4', 'filter', 'tcp_flags', 'examines no flag'),
    (dict(protocol='tcp', tcp_flags={'mask': ['SYN']}, jump='DROP'), 'ipv4', 'filter', 'tcp_flags', 'flags_set'),
    (dict(protocol='tcp', tcp_flags=7, jump='DROP'), 'ipv4', 'filter', 'tcp_flags', 'expected'),
    (dict(protocol='udp', tcp_flags='SYN SYN', jump='DROP'), 'ipv4', 'filter', 'tcp_flags', 'needs protocol tcp'),
    (dict(protocol='tcp', syn=False, tcp_flags='SYN SYN', jump='DROP'), 'ipv4', 'filter', 'tcp_flags', 'conflicts'),
    (dict(ctstate=['!'], jump='DROP'), 'ipv4', 'filter', 'ctstate', 'negates nothing'),
    (dict(ctstate=['NEW', '!RELATED'], jump='DROP'), 'ipv4', 'filter', 'ctstate', 'not a conntrack state'),
    (dict(ctorigdst='2001:db8::1', jump='DROP'), 'ipv4', 'filter', 'ctorigdst', 'ipv6 address'),
    (dict(ctorigsrc='10.0.0.1/8', jump='DROP'), 'ipv4', 'filter', 'ctorigsrc', 'host bits'),
    (dict(ctrepldst='!0.0.0.0/0', jump='DROP'), 'ipv4', 'filter', 'ctrepldst', 'matches nothing'),
    (dict(ctorigdstport=[80, 443], jump='DROP'), 'ipv4', 'filter', 'ctorigdstport', 'one port or range'),
    (dict(ctorigdstport=70000, jump='DROP'), 'ipv4', 'filter', 'ctorigdstport', 'out of range'),
    (dict(ctreplsrcport=0, jump='DROP'), 'ipv4', 'filter', 'ctreplsrcport', 'port 0'),
    (dict(ctstatus=['ASSURED', 'NONE'], jump='DROP'), 'ipv4', 'filter', 'ctstatus', 'cannot be combined'),
    (dict(ctstatus='DYING', jump='DROP'), 'ipv4', 'filter', 'ctstatus', 'not a conntrack status'),
    (dict(ctstatus=[True], jump='DROP'), 'ipv4', 'filter', 'ctstatus', 'expected'),
    (dict(ctdir='!REPLY', jump='DROP'), 'ipv4', 'filter', 'ctdir', 'not a direction'),
    (dict(ctdir=1, jump='DROP'), 'ipv4', 'filter', 'ctdir', 'not a direction'),
    (dict(jump='CT'), 'ipv4', 'raw', 'helper', 'needs helper'),
    (dict(jump='CT', notrack=False), 'ipv4', 'raw', 'helper', 'needs helper'),
    (dict(jump='CT', notrack='yes'), 'ipv4', 'raw', 'notrack', 'true or false'),
    (dict(protocol='tcp', jump='CT', helper='http'), 'ipv4', 'raw', 'helper', 'not a conntrack helper'),
    (dict(protocol='tcp', jump='CT', helper=['ftp']), 'ipv4', 'raw', 'helper', 'not a conntrack helper'),
    (dict(jump='CT', helper='ftp'), 'ipv4', 'raw', 'helper', 'needs protocol tcp'),
    (dict(protocol='tcp', jump='CT', helper='tftp'), 'ipv4', 'raw', 'helper', 'needs protocol udp'),
    (dict(protocol='tcp', jump='CT', helper='irc'), 'ipv6', 'raw', 'helper', 'no irc helper for ipv6'),
    (dict(protocol='tcp', jump='CT', helper='ftp', notrack=True), 'ipv4', 'raw', 'helper', 'conflicts'),
    (dict(protocol='tcp', jump='CT', helper='ftp'), 'ipv4', 'filter', 'jump', 'not a target of the filter table'),
    (dict(jump='CT', notrack=True), 'ipv4', 'mangle', 'jump', 'not a target of the mangle table'),
    (dict(jump='ACCEPT', helper='ftp'), 'ipv4', 'raw', 'helper', 'only valid with jump CT'),
    (dict(jump='DROP', notrack=True), 'ipv4', 'raw', 'notrack', 'only valid with jump CT'),
    (dict(protocol='tcp', syn=True, jump='TCPMSS'), 'ipv4', 'mangle', 'set_mss', 'needs set_mss'),
    (dict(protocol='tcp', syn=True, jump='TCPMSS', set_mss=1400, clamp_mss_to_pmtu=True), 'ipv4', 'mangle',
     'set_mss', 'conflicts'),
    (dict(protocol='tcp', syn=True, jump='TCPMSS', set_mss=0), 'ipv4', 'mangle', 'set_mss', 'not an MSS'),
    (dict(protocol='tcp', syn=True, jump='TCPMSS', set_mss=87), 'ipv4', 'mangle', 'set_mss', 'not an MSS'),
    (dict(protocol='tcp', syn=True, jump='TCPMSS', set_mss=65496), 'ipv4', 'mangle', 'set_mss', 'not an MSS'),
    (dict(protocol='tcp', syn=True, jump='TCPMSS', set_mss=True), 'ipv4', 'mangle', 'set_mss', 'not an MSS'),
    (dict(protocol='tcp', syn=True, jump='TCPMSS', set_mss='1400.5'), 'ipv4', 'mangle', 'set_mss', 'not an MSS'),
    (dict(protocol='tcp', syn=True, jump='TCPMSS', clamp_mss_to_pmtu='yes'), 'ipv4', 'mangle',
     'clamp_mss_to_pmtu', 'true or false'),
    (dict(protocol='tcp', jump='TCPMSS', set_mss=1400), 'ipv4', 'mangle', 'jump', 'SYN test'),
    (dict(protocol='udp', jump='TCPMSS', set_mss=1400), 'ipv4', 'mangle', 'jump', 'SYN test'),
    (dict(protocol='tcp', syn=False, jump='TCPMSS', set_mss=1400), 'ipv4', 'mangle', 'jump', 'SYN test'),
    (dict(protocol='tcp', tcp_flags='!SYN,RST SYN', jump='TCPMSS', set_mss=1400), 'ipv4', 'mangle', 'jump', 'SYN test'),
    (dict(protocol='tcp', tcp_flags='SYN,RST RST', jump='TCPMSS', set_mss=1400), 'ipv4', 'mangle', 'jump', 'SYN test'),
    (dict(protocol='tcp', syn=True, jump='TCPMSS', set_mss=1400), 'ipv4', 'filter', 'jump', 'not a target'),
    (dict(protocol='tcp', jump='SNAT', to_source='192.0.2.1:1000-2000/3000'), 'ipv4', 'nat', 'to_source',
     'DNAT only'),
    (dict(protocol='tcp', jump='DNAT', to_destination='192.0.2.1:1000/3000'), 'ipv4', 'nat', 'to_destination',
     'needs a range'),
    (dict(protocol='tcp', jump='DNAT', to_destination='192.0.2.1:1000-2000/0'), 'ipv4', 'nat', 'to_destination',
     'port 0'),
    (dict(protocol='tcp', jump='DNAT', to_destination='192.0.2.1:1000-2000/3000-3100'), 'ipv4', 'nat',
     'to_destination', 'one port'),
    (dict(protocol='tcp', jump='DNAT', to_destination='192.0.2.1:1000-2000/x'), 'ipv4', 'nat', 'to_destination',
     'not a port'),
    (dict(jump='DNAT', to_destination='[fd00::1]:1025-65535'), 'ipv6', 'nat', 'to_destination', 'ports need protocol'),
    (dict(jump='DNAT', to_destination='fd00::9-fd00::1'), 'ipv6', 'nat', 'to_destination', 'reversed'),
    (dict(jump='DNAT', to_destination='fd00::1-fd00::5-fd00::9'), 'ipv6', 'nat', 'to_destination',
     'not an address or a range'),
    (dict(jump='DNAT', to_destination='fd00::1-10.0.0.1'), 'ipv6', 'nat', 'to_destination', 'ipv4 address'),
    (dict(protocol='tcp', jump='DNAT', to_destination='[fd00::1-fd00::9]:65536'), 'ipv6', 'nat', 'to_destination',
     'out of range'),
    (dict(policy='DROP', jump='ACCEPT'), 'ipv4', 'raw', 'policy', 'unknown rule option'),
]


@pytest.mark.parametrize('raw, family, table, option, fragment', BAD)
def test_bad_input_is_refused_naming_the_option_and_the_rule(raw, family, table, option, fragment):
    with pytest.raises(ValidationError) as exc:
        r.make_rule(raw, family, table, 'chains[1].rules[4].')
    assert exc.value.param == 'chains[1].rules[4].' + option, str(exc.value)
    assert fragment in str(exc.value)


@pytest.mark.parametrize('hook, ok', [('FORWARD', True), ('OUTPUT', True), ('POSTROUTING', True),
                                      ('PREROUTING', False), ('INPUT', False)])
def test_clamping_to_the_path_mtu_only_where_the_kernel_takes_it(hook, ok):
    spec = r.make_rule(dict(protocol='tcp', syn=True, jump='TCPMSS', clamp_mss_to_pmtu=True), 'ipv4', 'mangle')
    if ok:
        r.check_hook(spec, hook)
        r.check_hook(r.make_rule(dict(protocol='tcp', syn=True, jump='TCPMSS', set_mss=1400), 'ipv4', 'mangle'), hook)
    else:
        with pytest.raises(ValidationError) as exc:
            r.check_hook(spec, hook, 'chains[0].rules[0].')
        assert exc.value.param == 'chains[0].rules[0].clamp_mss_to_pmtu'


def test_raw_and_mangle_tables_have_their_builtin_chains():
    assert r.BUILTIN_CHAINS['raw'] == ('PREROUTING', 'OUTPUT')
    assert r.BUILTIN_CHAINS['mangle'] == ('PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING')
    empty = r.empty_table('raw')
    assert list(empty.policies) == ['PREROUTING', 'OUTPUT']
    # A raw rule hooked from OUTPUT cannot name an input interface (the kernel does not know it there).
    spec = r.make_rule(dict(in_interface='eth0', jump='CT', notrack=True), 'ipv4', 'raw')
    with pytest.raises(ValidationError):
        r.check_hook(spec, 'OUTPUT')


def test_a_raw_table_plan_creates_the_chain_and_its_hook():
    desired = r.Owned([r.Chain('SNF-GW-RAW', ('PREROUTING', 'first'), [r.Rule.from_spec(r.make_rule(
        dict(protocol='tcp', destination_port=21, jump='CT', helper='ftp'), 'ipv4', 'raw'))])])
    empty = r.empty_table('raw')
    plan = r.Plan(empty, 'SNF-GW-', 'ipv4', r.read_owned(empty, 'SNF-GW-', 'ipv4'), desired)
    assert plan.lines == ['*raw', ':SNF-GW-RAW - [0:0]', '-A SNF-GW-RAW -p tcp -m tcp --dport 21 -j CT --helper ftp',
                          '-I PREROUTING 1 -j SNF-GW-RAW', 'COMMIT']


@pytest.fixture(scope='module')
def netns():
    """A network namespace of this test's own, where the kernel prints the rules back; removed afterwards."""
    if os.geteuid() != 0 or not shutil.which('ip') or not shutil.which('iptables-nft-restore'):
        pytest.skip('needs root, ip and the iptables tools (the rules are applied in a namespace of its own)')
    name = 'snf-lang-%s' % uuid.uuid4().hex[:8]
    subprocess.run(['ip', 'netns', 'add', name], check=True)
    try:
        yield name
    finally:
        subprocess.run(['ip', 'netns', 'delete', name], check=False)


@pytest.mark.parametrize('backend', ['nft', 'legacy'])
def test_the_kernel_prints_every_canonical_form_back_unchanged(netns, backend):
    """Each case of CANONICAL restored into a chain of its table, on each back end, and saved again."""
    groups = {}
    for args, family, table in CANONICAL:
        groups.setdefault((family, table), []).append(args)
    for (family, table), rules in sorted(groups.items()):
        tool = '%s-%s' % ('iptables' if family == 'ipv4' else 'ip6tables', backend)
        text = r.restore_text(['*%s' % table, ':SNF-LANG - [0:0]'] + ['-A SNF-LANG %s' % args for args in rules]
                              + ['COMMIT'])
        done = subprocess.run(['ip', 'netns', 'exec', netns, tool + '-restore', '--noflush'], input=text.encode(),
                              capture_output=True, check=False)
        assert done.returncode == 0, (backend, family, table, done.stderr)
        saved = subprocess.run(['ip', 'netns', 'exec', netns, tool + '-save', '-t', table], capture_output=True,
                               check=True).stdout.decode()
        assert r.parse_save(saved)[0][table].rules['SNF-LANG'] == rules, (backend, family, table)
        flush = r.restore_text(['*%s' % table, '-F SNF-LANG', '-X SNF-LANG', 'COMMIT'])
        subprocess.run(['ip', 'netns', 'exec', netns, tool + '-restore', '--noflush'], input=flush.encode(),
                       check=True)
