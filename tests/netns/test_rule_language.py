# SPDX-License-Identifier: GPL-3.0-or-later
"""The richer rule language (issue 14 section 4) against the real kernel, on the nft and legacy back ends.

Each test runs the ruleset module as Ansible runs it on a host, in a private
mount and network namespace (conftest.Lab), with `iptables` pointing at the
back end under test (a PATH shim, as bench/rules_bench.py does). It checks
that the kernel prints back exactly the text the engine rendered, that a
second run and a check-mode run change nothing, and, where it is cheap, what
the packets did.
"""
import os

import pytest

SERVER, CLIENT = '10.98.0.1', '10.98.0.2'

FILTER = [
    dict(name='neg-src', source='!10.0.0.0/8', in_interface='!lo', protocol='tcp', destination_port='!22',
         jump='RETURN'),
    dict(name='neg-ports', protocol='udp', port=['!', 53, '5000-5100'], jump='RETURN'),
    dict(name='flags', protocol='tcp', tcp_flags='ALL NONE', jump='DROP'),
    dict(name='xmas', protocol='tcp', tcp_flags={'flags': ['ALL'], 'flags_set': ['FIN', 'PSH', 'URG']},
         jump='DROP'),
    dict(name='not-syn', protocol='tcp', tcp_flags='!SYN,RST SYN', ctstate=['NEW'], jump='DROP'),
    dict(name='docker-user', protocol='tcp', ctorigdst='192.0.2.7', ctorigdstport=8443, ctstate='!INVALID',
         ctstatus=['ASSURED', 'SEEN_REPLY'], ctdir='ORIGINAL', jump='RETURN'),
    dict(name='repl', ctreplsrc='192.0.2.0/24', ctrepldstport='!1000-2000', ctstatus='!EXPECTED', jump='RETURN'),
]
FILTER6 = [
    dict(name='neg-src6', source='!fd00::/8', protocol='tcp', port='80,443', jump='RETURN'),
    dict(name='ct6', ctorigsrc='2001:db8::1', ctorigdst='!2001:db8:1::/64', jump='RETURN'),
]


@pytest.fixture(params=['nft', 'legacy'])
def backend(request, lab, tmp_path, monkeypatch):
    """`iptables` of the back end under test first on PATH for the modules the lab runs."""
    shim = tmp_path / 'shim'
    shim.mkdir()
    os.symlink('/usr/sbin/iptables-%s' % request.param, str(shim / 'iptables'))
    monkeypatch.setenv('PATH', '%s:%s' % (shim, os.environ.get('PATH', '/usr/sbin:/usr/bin')))
    return request.param


def owned_lines(lab, backend, family, table):
    """The kernel's owned chains' rules (-A SNF-...) as the back end's save prints them."""
    command = '%s-%s-save' % ('iptables' if family == 'ipv4' else 'ip6tables', backend)
    return [line for line in lab.run([command, '-t', table]).split('\n') if line.startswith('-A SNF-')]


def converge(lab, backend, args, tables_families):
    """Apply, then prove: kernel text == rendered text, second run and check mode change nothing."""
    first = lab.module('ruleset', args)
    assert first.get('changed') is True, first
    for family in tables_families:
        wanted = [line for line in first['restore'][family].split('\n') if line.startswith('-A SNF-')]
        # Chains in the order save prints them; rules of a chain in order.
        assert sorted(owned_lines(lab, backend, family, args['table']), key=lambda line: line.split()[1]) == \
            sorted(wanted, key=lambda line: line.split()[1]), (backend, family)
    again = lab.module('ruleset', args)
    assert again.get('changed') is False and again['backend'] == backend, again
    check = lab.module('ruleset', dict(args, _ansible_check_mode=True))
    assert check.get('changed') is False, check
    gathered = lab.module('ruleset', dict(table=args['table'], family=args['family'], scope=args['scope'],
                                          state='gathered'))
    return first, gathered


def test_negation_conntrack_multiport_and_flag_tests_round_trip_on_both_back_ends(lab, backend):
    args = dict(table='filter', family='both', scope='L', state='overridden', chains=[
        dict(name='SNF-L-FWD', hook='FORWARD', rules=FILTER + FILTER6)])
    first, gathered = converge(lab, backend, args, ['ipv4', 'ipv6'])
    assert '! -s 10.0.0.0/8 ! -i lo -p tcp -m tcp ! --dport 22' in first['restore']['ipv4']
    assert '-m conntrack ! --ctstate INVALID --ctorigdst 192.0.2.7 --ctorigdstport 8443 --ctstatus SEEN_REPLY,ASSURED' \
           ' --ctdir ORIGINAL' in first['restore']['ipv4']
    # What gathered reads back is accepted as input and changes nothing.
    rules = gathered['gathered']['ipv4']['chains'][0]['rules']
    assert [rule['name'] for rule in rules] == [rule['name'] for rule in FILTER]
    assert rules[0]['source'] == '!10.0.0.0/8' and rules[1]['port'] == ['!', '53', '5000:5100']
    again = lab.module('ruleset', dict(args, family='ipv4', chains=[dict(name='SNF-L-FWD', hook='FORWARD',
                                                                         rules=rules)]))
    assert again.get('changed') is False, again


def test_raw_helpers_mangle_mss_and_nat_ranges_round_trip_on_both_back_ends(lab, backend):
    raw = dict(table='raw', family='both', scope='L', state='overridden', chains=[
        dict(name='SNF-L-RAW', hook='PREROUTING', rules=[
            dict(name='ftp', in_interface='snf+', protocol='tcp', destination_port=21, jump='CT', helper='ftp'),
            dict(name='tftp', protocol='udp', destination_port=69, jump='CT', helper='tftp'),
            dict(name='sip', protocol='udp', destination_port=5060, jump='CT', helper='sip'),
            dict(name='quiet', protocol='udp', destination_port=123, jump='CT', notrack=True)])])
    converge(lab, backend, raw, ['ipv4', 'ipv6'])
    mangle = dict(table='mangle', family='both', scope='L', state='overridden', chains=[
        dict(name='SNF-L-MSS', hook='FORWARD', rules=[
            dict(name='clamp', out_interface='ppp+', protocol='tcp', tcp_flags='SYN,RST SYN', jump='TCPMSS',
                 clamp_mss_to_pmtu=True),
            dict(name='fixed', out_interface='wg0', protocol='tcp', syn=True, jump='TCPMSS', set_mss=1380)])])
    converge(lab, backend, mangle, ['ipv4', 'ipv6'])
    nat = dict(table='nat', family='ipv4', scope='L', state='overridden', chains=[
        dict(name='SNF-L-PRE', hook='PREROUTING', rules=[
            dict(name='shift', protocol='tcp', destination_port='8000-8099', jump='DNAT',
                 to_destination='10.0.0.5:9000-9099/8000'),
            dict(name='pool', protocol='tcp', destination_port=80, jump='DNAT',
                 to_destination='10.0.0.5-10.0.0.9:80')])])
    first, dummy = converge(lab, backend, nat, ['ipv4'])
    assert '--to-destination 10.0.0.5:9000-9099/8000' in first['restore']['ipv4']
    nat6 = dict(table='nat', family='ipv6', scope='L', state='overridden', chains=[
        dict(name='SNF-L-PRE', hook='PREROUTING', rules=[
            dict(name='range', protocol='tcp', destination_port=443, jump='DNAT',
                 to_destination='[fd00::1-fd00::9]:1025-65535')]),
        dict(name='SNF-L-POST', hook='POSTROUTING', rules=[
            dict(name='pool', out_interface='snf0', jump='SNAT', to_source='2001:db8::10-2001:db8::1f')])])
    first, dummy = converge(lab, backend, nat6, ['ipv6'])
    assert '--to-source 2001:db8::10-2001:db8::1f' in first['restore']['ipv6']


def test_bad_input_is_refused_before_any_change(lab):
    before = [lab.rules(table) for table in ('raw', 'mangle', 'filter')]
    cases = [
        (dict(table='raw', chains=[dict(name='SNF-B-X', hook='PREROUTING', rules=[
            dict(protocol='tcp', jump='CT', helper='bogus')])]), 'chains[0].rules[0].helper', 'not a conntrack helper'),
        (dict(table='raw', chains=[dict(name='SNF-B-X', hook='PREROUTING', rules=[
            dict(protocol='udp', jump='CT', helper='ftp')])]), 'chains[0].rules[0].helper', 'needs protocol tcp'),
        (dict(table='raw', chains=[dict(name='SNF-B-X', hook='PREROUTING', rules=[
            dict(protocol='tcp', jump='CT', helper='ftp', notrack=True)])]), 'chains[0].rules[0].helper', 'conflicts'),
        (dict(table='mangle', chains=[dict(name='SNF-B-X', hook='PREROUTING', rules=[
            dict(protocol='tcp', syn=True, jump='TCPMSS', clamp_mss_to_pmtu=True)])]),
         'chains[0].rules[0].clamp_mss_to_pmtu', 'FORWARD'),
        (dict(table='mangle', chains=[dict(name='SNF-B-X', hook='FORWARD', rules=[
            dict(protocol='tcp', jump='TCPMSS', set_mss=1400)])]), 'chains[0].rules[0].jump', 'SYN'),
        (dict(table='mangle', chains=[dict(name='SNF-B-X', hook='FORWARD', rules=[
            dict(protocol='tcp', syn=True, jump='TCPMSS', set_mss=0)])]), 'chains[0].rules[0].set_mss', 'not an MSS'),
        (dict(table='mangle', policies={'FORWARD': 'DROP'}), 'policies.FORWARD', 'ACCEPT'),
        (dict(table='filter', chains=[dict(name='SNF-B-X', rules=[
            dict(source='!0.0.0.0/0', jump='DROP')])]), 'chains[0].rules[0].source', 'matches nothing'),
        (dict(table='filter', chains=[dict(name='SNF-B-X', rules=[
            dict(protocol='tcp', syn=True, tcp_flags='SYN,ACK SYN', jump='DROP')])]),
         'chains[0].rules[0].tcp_flags', 'conflicts with syn'),
    ]
    for args, param, fragment in cases:
        result = lab.module('ruleset', dict(dict(family='ipv4', scope='B'), **args))
        assert result.get('failed') and result.get('param') == param and fragment in result['msg'], (args, result)
    assert [lab.rules(table) for table in ('raw', 'mangle', 'filter')] == before


def test_negated_source_and_original_destination_port_decide_with_packets(lab):
    lab.link('client', SERVER, CLIENT)
    lab.listen(SERVER, 8080)
    lab.listen(SERVER, 9090)

    def firewall(source):
        return dict(table='filter', family='ipv4', scope='P', state='overridden', chains=[
            dict(name='SNF-P-IN', hook='INPUT', rules=[
                dict(name='others', source=source, protocol='tcp', destination_port=8080, jump='DROP'),
                # Published as 7070, served on 9090: refused by the port the client used, not the served one.
                dict(name='published', protocol='tcp', ctorigdstport=7070, ctstate=['NEW'], jump='DROP')])])

    nat = dict(table='nat', family='ipv4', scope='P', state='overridden', chains=[
        dict(name='SNF-P-PRE', hook='PREROUTING', rules=[
            dict(name='publish', protocol='tcp', destination_port=7070, jump='DNAT', to_destination=SERVER + ':9090')])])
    assert lab.module('ruleset', nat)['changed']
    assert lab.module('ruleset', firewall('!' + CLIENT))['changed']
    assert lab.connects('client', SERVER, 8080)       # the client is not "not the client"
    assert lab.connects('client', SERVER, 9090)       # the served port, reached directly
    assert not lab.connects('client', SERVER, 7070)   # the same port through the DNAT: ctorigdstport 7070
    assert lab.module('ruleset', firewall('!192.0.2.1'))['changed']
    assert not lab.connects('client', SERVER, 8080)


def test_nat_rule_takes_negation_and_ipv6_ranges_but_no_flush_it_cannot_filter(lab):
    snat = dict(type='snat', name='pool6', family='ipv6', source='!fd00:1::/64', out_interface='!lo',
                to_source='2001:db8::10-2001:db8::1f')
    first = lab.module('nat_rule', snat)
    assert first.get('changed') is True, first
    assert first['rule'] == ('-A SNF-NAT-POST ! -s fd00:1::/64 ! -o lo -m comment --comment "snf:pool6" -j SNAT '
                             '--to-source 2001:db8::10-2001:db8::1f')
    assert lab.module('nat_rule', snat)['changed'] is False
    before = lab.run(['ip6tables-save', '-t', 'nat'])
    refused = lab.module('nat_rule', dict(snat, to_source='2001:db8::20', flush_conntrack=True))
    assert refused.get('failed') and refused['param'] == 'flush_conntrack' and 'negated source' in refused['msg'], refused
    after = lab.run(['ip6tables-save', '-t', 'nat'])
    assert [x for x in before.split('\n') if x.startswith('-A')] == [x for x in after.split('\n') if x.startswith('-A')]


def test_a_dnat_port_shift_moves_each_port_by_the_same_offset(lab):
    lab.link('client', SERVER, CLIENT)
    lab.listen(SERVER, 9091)
    nat = dict(table='nat', family='ipv4', scope='S', state='overridden', chains=[
        dict(name='SNF-S-PRE', hook='PREROUTING', rules=[
            dict(name='shift', protocol='tcp', destination_port='6000-6009', jump='DNAT',
                 to_destination=SERVER + ':9090-9099/6000')])])
    assert not lab.connects('client', SERVER, 6001)
    assert lab.module('ruleset', nat)['changed']
    assert lab.connects('client', SERVER, 6001)       # 6001 - 6000 + 9090 = 9091, where the server listens
    assert not lab.connects('client', SERVER, 6002)   # 9092: nobody listens
    assert lab.module('ruleset', nat)['changed'] is False
