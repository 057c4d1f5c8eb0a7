# SPDX-License-Identifier: GPL-3.0-or-later
"""Rule model: canonical rendering and every kind of bad input."""
import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _rules as r
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError


def rendered(family='ipv4', table='filter', **raw):
    return r.render(r.make_rule(raw, family, table))


@pytest.mark.parametrize('family, table, raw, expected', [
    # Canonical forms the kernel prints back (see fixtures/iptables/*.save).
    ('ipv4', 'filter', dict(source='10.0.0.1', protocol='tcp', destination_port=22, jump='accept'),
     '-s 10.0.0.1/32 -p tcp -m tcp --dport 22 -j ACCEPT'),
    ('ipv4', 'filter', dict(source='0.0.0.0/0', destination='10.0.0.0/8', jump='RETURN'), '-d 10.0.0.0/8 -j RETURN'),
    ('ipv6', 'filter', dict(source='2001:DB8:0:0::/64', jump='DROP'), '-s 2001:db8::/64 -j DROP'),
    ('ipv4', 'filter', dict(ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
     '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'),
    ('ipv4', 'filter', dict(ctstate='established,related', jump='ACCEPT'),
     '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'),
    ('ipv4', 'filter', dict(protocol='icmp', icmp_type='echo-request', jump='ACCEPT'),
     '-p icmp -m icmp --icmp-type 8 -j ACCEPT'),
    ('ipv4', 'filter', dict(protocol='icmp', icmp_type='port-unreachable', jump='ACCEPT'),
     '-p icmp -m icmp --icmp-type 3/3 -j ACCEPT'),
    ('ipv6', 'filter', dict(protocol='icmpv6', icmp_type='neighbour-solicitation', jump='ACCEPT'),
     '-p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT'),
    ('ipv6', 'filter', dict(protocol='ipv6-icmp', icmp_type='1/4', jump='ACCEPT'),
     '-p ipv6-icmp -m icmp6 --icmpv6-type 1/4 -j ACCEPT'),
    ('ipv4', 'filter', dict(protocol='47', jump='ACCEPT'), '-p gre -j ACCEPT'),
    ('ipv4', 'filter', dict(protocol='udp', destination_port='1000-2000', source_port='53:53', jump='ACCEPT'),
     '-p udp -m udp --sport 53 --dport 1000:2000 -j ACCEPT'),
    ('ipv4', 'filter', dict(protocol='tcp', destination_port='0-65535', jump='ACCEPT'), '-p tcp -j ACCEPT'),
    ('ipv4', 'filter', dict(in_interface='eth+', destination='10.1.2.0/24', jump='RETURN'),
     '-d 10.1.2.0/24 -i eth+ -j RETURN'),
    ('ipv4', 'filter', dict(protocol='udp', jump='REJECT'), '-p udp -j REJECT --reject-with icmp-port-unreachable'),
    ('ipv6', 'filter', dict(jump='REJECT'), '-j REJECT --reject-with icmp6-port-unreachable'),
    ('ipv4', 'filter', dict(limit='60/minute', limit_burst=5, jump='LOG', log_level='warning'),
     '-m limit --limit 1/sec -j LOG'),
    ('ipv4', 'filter', dict(limit='5/min', limit_burst=10, jump='SNF-FW-LOG'),
     '-m limit --limit 5/min --limit-burst 10 -j SNF-FW-LOG'),
    ('ipv4', 'filter', dict(limit='3/s', jump='LOG', log_prefix='SNF drop: ', log_level='info'),
     '-m limit --limit 3/sec -j LOG --log-prefix "SNF drop: " --log-level 6'),
    ('ipv4', 'filter', dict(comment='plain', jump='DROP'), '-m comment --comment plain -j DROP'),
    ('ipv4', 'filter', dict(comment='it\'s "q" \\ $HOME', jump='DROP'),
     '-m comment --comment "it\\\'s \\"q\\" \\\\ $HOME" -j DROP'),
    ('ipv4', 'filter', dict(name='ssh', comment='admin ssh', protocol='tcp', destination_port=22, jump='ACCEPT'),
     '-p tcp -m tcp --dport 22 -m comment --comment "snf:ssh admin ssh" -j ACCEPT'),
    ('ipv4', 'nat', dict(source='10.0.1.0/24', protocol='udp', jump='SNAT',
                         to_source='203.0.113.5-203.0.113.9:1024-65535', persistent=True, random=True),
     '-s 10.0.1.0/24 -p udp -j SNAT --to-source 203.0.113.5-203.0.113.9:1024-65535 --random --persistent'),
    ('ipv4', 'nat', dict(protocol='tcp', jump='SNAT', to_source='1.2.3.4:80-80', random_fully=True),
     '-p tcp -j SNAT --to-source 1.2.3.4:80 --random-fully'),
    ('ipv4', 'nat', dict(jump='SNAT', to_source='1.2.3.4-1.2.3.4'), '-j SNAT --to-source 1.2.3.4'),
    ('ipv6', 'nat', dict(protocol='tcp', jump='SNAT', to_source='[2001:DB8::5]:1024-2048'),
     '-p tcp -j SNAT --to-source [2001:db8::5]:1024-2048'),
    ('ipv6', 'nat', dict(jump='DNAT', to_destination='fd00::11'), '-j DNAT --to-destination fd00::11'),
    ('ipv4', 'nat', dict(in_interface='eth0', protocol='tcp', destination_port=8080, jump='DNAT',
                         to_destination='10.0.0.10:80'),
     '-i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.10:80'),
    ('ipv4', 'nat', dict(protocol='tcp', jump='MASQUERADE', to_ports='10', random=True, random_fully=True),
     '-p tcp -j MASQUERADE --to-ports 10 --random --random-fully'),
    ('ipv4', 'nat', dict(protocol='tcp', jump='REDIRECT', to_ports='10:20'), '-p tcp -j REDIRECT --to-ports 10-20'),
    # Port lists: multiport, one match per direction, after the protocol's own match; one port keeps -m tcp.
    ('ipv4', 'filter', dict(protocol='tcp', destination_port=[80, 443, '8000-8100'], jump='ACCEPT'),
     '-p tcp -m multiport --dports 80,443,8000:8100 -j ACCEPT'),
    ('ipv4', 'filter', dict(protocol='udp', source_port=' 53, 123:123 ', jump='ACCEPT'),
     '-p udp -m multiport --sports 53,123 -j ACCEPT'),
    ('ipv6', 'filter', dict(protocol='sctp', source_port='5,6', destination_port=[7, '8:9'], jump='ACCEPT'),
     '-p sctp -m multiport --sports 5,6 -m multiport --dports 7,8:9 -j ACCEPT'),
    ('ipv4', 'filter', dict(protocol='udplite', destination_port='5,6', jump='ACCEPT'),
     '-p udplite -m multiport --dports 5,6 -j ACCEPT'),
    ('ipv4', 'filter', dict(protocol='33', destination_port='5,6', jump='ACCEPT'),
     '-p dccp -m multiport --dports 5,6 -j ACCEPT'),
    ('ipv4', 'filter', dict(protocol='tcp', destination_port=['22'], jump='ACCEPT'), '-p tcp -m tcp --dport 22 -j ACCEPT'),
    ('ipv4', 'filter', dict(protocol='tcp', destination_port='1000-2000', jump='ACCEPT'),
     '-p tcp -m tcp --dport 1000:2000 -j ACCEPT'),
    ('ipv4', 'filter', dict(protocol='tcp', destination_port=['1:2'] + list(range(3, 16)), jump='ACCEPT'),
     '-p tcp -m multiport --dports 1:2,%s -j ACCEPT' % ','.join(str(p) for p in range(3, 16))),
    # --syn and ! --syn as iptables-save prints them.
    ('ipv4', 'filter', dict(protocol='tcp', syn=True, jump='ACCEPT'),
     '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT'),
    ('ipv6', 'filter', dict(protocol='tcp', syn=False, ctstate=['NEW'], name='new-not-syn', jump='DROP'),
     '-p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -m conntrack --ctstate NEW -m comment '
     '--comment "snf:new-not-syn" -j DROP'),
    ('ipv4', 'filter', dict(protocol='tcp', source_port='1024-65535', syn=False, destination_port='1,2', jump='ACCEPT'),
     '-p tcp -m tcp --sport 1024:65535 ! --tcp-flags FIN,SYN,RST,ACK SYN -m multiport --dports 1,2 -j ACCEPT'),
    ('ipv4', 'nat', dict(in_interface='eth0', protocol='tcp', destination_port='80,443', jump='DNAT',
                         to_destination='10.0.0.10'),
     '-i eth0 -p tcp -m multiport --dports 80,443 -j DNAT --to-destination 10.0.0.10'),
])
def test_render_canonical(family, table, raw, expected):
    assert rendered(family, table, **raw) == expected


@pytest.mark.parametrize('rate, expected', [
    ('5/min', '5/min'), ('60/min', '1/sec'), ('7/d', '7/day'), ('1000/second', '1000/sec'),
    ('3/hour', '3/hour'), ('7/m', '7/min'), ('2/h', '2/hour'),
])
def test_canonical_rate(rate, expected):
    assert r.canonical_rate(rate, 'limit') == expected


@pytest.mark.parametrize('family, table, raw, param, fragment', [
    ('ipv4', 'filter', dict(source='10.0.0.1/8', jump='ACCEPT'), 'source', 'host bits'),
    ('ipv4', 'filter', dict(source='10.0.0.300', jump='ACCEPT'), 'source', 'not an IP address'),
    ('ipv4', 'filter', dict(destination='2001:db8::1', jump='ACCEPT'), 'destination', 'ipv6 address'),
    ('ipv6', 'filter', dict(source='10.0.0.1', jump='ACCEPT'), 'source', 'ipv4 address'),
    ('ipv4', 'filter', dict(protocol='tcp', destination_port=70000, jump='ACCEPT'), 'destination_port',
     'out of range'),
    ('ipv4', 'filter', dict(protocol='tcp', source_port='20-10', jump='ACCEPT'), 'source_port', 'reversed'),
    ('ipv4', 'filter', dict(destination_port=22, jump='ACCEPT'), 'destination_port', 'need protocol'),
    ('ipv4', 'filter', dict(protocol='icmp', destination_port=22, jump='ACCEPT'), 'destination_port',
     'need protocol'),
    ('ipv4', 'filter', dict(protocol='udplite', source_port=22, jump='ACCEPT'), 'source_port', 'need protocol'),
    ('ipv4', 'filter', dict(protocol='tcpp', jump='ACCEPT'), 'protocol', 'unknown protocol'),
    ('ipv4', 'filter', dict(protocol='0', jump='ACCEPT'), 'protocol', 'any protocol'),
    ('ipv4', 'filter', dict(in_interface='a' * 16, jump='ACCEPT'), 'in_interface', 'longer than 15'),
    ('ipv4', 'filter', dict(out_interface='eth0 -j DROP', jump='ACCEPT'), 'out_interface', 'not allowed'),
    ('ipv4', 'filter', dict(out_interface='eth0;reboot', jump='ACCEPT'), 'out_interface', 'not allowed'),
    ('ipv4', 'filter', dict(comment='two\nlines', jump='ACCEPT'), 'comment', 'single line'),
    ('ipv4', 'filter', dict(comment='x' * 256, jump='ACCEPT'), 'comment', 'longer than 255'),
    ('ipv4', 'filter', dict(comment='\u00e9' * 128, jump='ACCEPT'), 'comment', 'longer than 255'),
    ('ipv4', 'filter', dict(name='n', comment='x' * 252, jump='ACCEPT'), 'comment', 'longer than 255'),
    ('ipv4', 'filter', dict(comment='snf:fake', jump='ACCEPT'), 'comment', 'reserved'),
    ('ipv4', 'filter', dict(name='has space', jump='ACCEPT'), 'name', 'not a rule name'),
    ('ipv4', 'filter', dict(jump=None), 'jump', 'target is required'),
    ('ipv4', 'filter', dict(jump='SNAT', to_source='1.2.3.4'), 'jump', 'not a target of the filter table'),
    ('ipv4', 'nat', dict(jump='DROP'), 'jump', 'not a target of the nat table'),
    ('ipv4', 'filter', dict(jump='DOCKER'), 'jump', 'not a target'),
    ('ipv4', 'filter', dict(jump='SNF-' + 'A' * 25), 'jump', 'longer than 28'),
    ('ipv4', 'nat', dict(jump='SNAT'), 'to_source', 'required'),
    ('ipv4', 'nat', dict(jump='DNAT'), 'to_destination', 'required'),
    ('ipv4', 'nat', dict(jump='SNAT', to_source='2001:db8::1'), 'to_source', 'ipv6 address'),
    ('ipv6', 'nat', dict(jump='DNAT', to_destination='10.0.0.1'), 'to_destination', 'ipv4 address'),
    ('ipv4', 'nat', dict(jump='SNAT', to_source='1.2.3.4:80'), 'to_source', 'ports need protocol'),
    ('ipv4', 'nat', dict(protocol='tcp', jump='SNAT', to_source='1.2.3.4:99999'), 'to_source', 'out of range'),
    ('ipv4', 'nat', dict(jump='SNAT', to_source='1.2.3.9-1.2.3.4'), 'to_source', 'reversed'),
    ('ipv4', 'nat', dict(jump='SNAT', to_source='example.com'), 'to_source', 'not an IP address'),
    ('ipv6', 'nat', dict(jump='SNAT', to_source='[2001:db8::1:80'), 'to_source', 'not [address]:port'),
    ('ipv4', 'nat', dict(jump='MASQUERADE', to_ports=80), 'to_ports', 'ports need protocol'),
    ('ipv4', 'nat', dict(jump='MASQUERADE', to_source='1.2.3.4'), 'to_source', 'only valid with jump SNAT'),
    ('ipv4', 'nat', dict(jump='DNAT', to_destination='1.2.3.4', random_fully=True), 'random_fully',
     'only valid with'),
    ('ipv4', 'filter', dict(jump='ACCEPT', reject_with='tcp-reset'), 'reject_with', 'only valid with jump REJECT'),
    ('ipv4', 'filter', dict(jump='REJECT', reject_with='icmp6-adm-prohibited'), 'reject_with', 'not an ipv4'),
    ('ipv4', 'filter', dict(jump='REJECT', reject_with='tcp-reset'), 'reject_with', 'needs protocol tcp'),
    ('ipv4', 'filter', dict(jump='LOG', log_level='loud'), 'log_level', 'not a log level'),
    ('ipv4', 'filter', dict(jump='LOG', log_prefix='x' * 30), 'log_prefix', 'longer than 29'),
    ('ipv4', 'filter', dict(jump='ACCEPT', limit='5/fortnight'), 'limit', 'not a rate'),
    ('ipv4', 'filter', dict(jump='ACCEPT', limit='0/sec'), 'limit', 'out of range'),
    ('ipv4', 'filter', dict(jump='ACCEPT', limit_burst=5), 'limit_burst', 'needs limit'),
    ('ipv4', 'filter', dict(jump='ACCEPT', limit='1/sec', limit_burst=0), 'limit_burst', 'not a burst'),
    ('ipv4', 'filter', dict(jump='ACCEPT', ctstate=['ESTABLISHED', 'BOGUS']), 'ctstate', 'not a conntrack state'),
    ('ipv4', 'filter', dict(jump='ACCEPT', icmp_type='echo-request'), 'icmp_type', 'needs protocol icmp'),
    ('ipv6', 'filter', dict(jump='ACCEPT', protocol='icmp', icmp_type='echo-request'), 'protocol',
     'not a protocol of ipv6'),
    ('ipv6', 'filter', dict(jump='ACCEPT', icmp_type='echo-request'), 'icmp_type', 'needs protocol icmpv6'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='icmp', icmp_type='neighbour-solicitation'), 'icmp_type',
     'not an ICMP type'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='icmp', icmp_type='3/256'), 'icmp_type', 'not an ICMP type'),
    ('ipv4', 'filter', dict(jump='ACCEPT', family='ipv6'), 'family', 'applied to ipv4'),
    ('ipv4', 'filter', dict(jump='ACCEPT', bogus=1), 'bogus', 'unknown rule option'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='tcp', destination_port=list(range(1, 17))), 'destination_port',
     '16 ports given (a range counts 2); the kernel takes at most 15'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='tcp', source_port=['1:2'] + list(range(3, 17))), 'source_port',
     '16 ports given'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='gre', destination_port=[80, 443]), 'destination_port',
     'a list of ports needs protocol tcp, udp, udplite, sctp, dccp'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='udplite', destination_port=80), 'destination_port',
     'ports need protocol tcp, udp, sctp'),
    ('ipv4', 'filter', dict(jump='ACCEPT', destination_port='80,443'), 'destination_port', 'needs protocol'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='tcp', destination_port=[80, 'http']), 'destination_port[1]',
     'not a port or a range'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='tcp', destination_port='80,,443'), 'destination_port[1]',
     'port'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='tcp', destination_port=[80, '2000-1000']),
     'destination_port[1]', 'reversed'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='tcp', destination_port=[80, 70000]), 'destination_port[1]',
     'out of range'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='udp', syn=True), 'syn', 'needs protocol tcp'),
    ('ipv4', 'filter', dict(jump='ACCEPT', syn=False), 'syn', 'needs protocol tcp'),
    ('ipv4', 'filter', dict(jump='ACCEPT', protocol='tcp', syn='yes'), 'syn', 'expected true or false'),
])
def test_bad_input_names_parameter(family, table, raw, param, fragment):
    with pytest.raises(ValidationError) as exc:
        r.make_rule(raw, family, table, 'chains[0].rules[1].')
    assert exc.value.param == 'chains[0].rules[1].' + param
    assert str(exc.value).startswith('chains[0].rules[1].%s: ' % param)
    assert fragment in str(exc.value)


@pytest.mark.parametrize('raw, expected', [
    (dict(source='10.0.0.1', jump='ACCEPT'), 'ipv4'),
    (dict(destination='2001:db8::/32', jump='ACCEPT'), 'ipv6'),
    (dict(to_source='[2001:db8::1]:80', jump='SNAT'), 'ipv6'),
    (dict(to_source='1.2.3.4-1.2.3.9:80', jump='SNAT'), 'ipv4'),
    (dict(protocol='icmpv6', jump='ACCEPT'), 'ipv6'),
    (dict(protocol='icmp', jump='ACCEPT'), 'ipv4'),
    (dict(protocol='tcp', jump='ACCEPT'), None),
    (dict(family='ipv6', source='10.0.0.1', jump='ACCEPT'), 'ipv6'),
    (dict(source='garbage', jump='ACCEPT'), None),
])
def test_infer_family(raw, expected):
    assert r.infer_family(raw) == expected


@pytest.mark.parametrize('value', ['plain', 'with space', 'it\'s', 'a"b', 'back\\slash', '', 'snf:x y', '\u00fc\u2713'])
def test_quote_round_trip(value):
    assert r.split_args('-m comment --comment %s -j DROP' % r.quote(value)) == [
        '-m', 'comment', '--comment', value, '-j', 'DROP']


def test_scope_and_chain_names():
    assert r.check_scope(None, 'scope') == 'SNF-'
    assert r.check_scope('FW', 'scope') == 'SNF-FW-'
    for bad in ('F W', 'FW-', '', 'x' * 17):
        with pytest.raises(ValidationError, match='^scope: '):
            r.check_scope(bad, 'scope')
    for bad in ('DOCKER', 'SNF-', 'SNF-a b', 'SNF-' + 'A' * 25):
        with pytest.raises(ValidationError, match='^chains: '):
            r.check_chain_name(bad, 'chains')


@pytest.mark.parametrize('raw, builtin, param', [
    (dict(out_interface='eth0', jump='ACCEPT'), 'INPUT', 'out_interface'),
    (dict(out_interface='eth0', jump='ACCEPT'), 'PREROUTING', 'out_interface'),
    (dict(in_interface='eth0', jump='ACCEPT'), 'OUTPUT', 'in_interface'),
    (dict(in_interface='eth0', jump='MASQUERADE'), 'POSTROUTING', 'in_interface'),
    (dict(jump='SNAT', to_source='1.2.3.4'), 'PREROUTING', 'jump'),
    (dict(jump='DNAT', to_destination='1.2.3.4'), 'POSTROUTING', 'jump'),
    (dict(jump='MASQUERADE'), 'OUTPUT', 'jump'),
])
def test_rules_that_cannot_work_from_their_hook(raw, builtin, param):
    table = 'nat' if raw['jump'] in r.TARGETS['nat'] and raw['jump'] != 'ACCEPT' else 'filter'
    spec = r.make_rule(raw, 'ipv4', table)
    with pytest.raises(ValidationError, match='^p.%s: ' % param):
        r.check_hook(spec, builtin, 'p.')


@pytest.mark.parametrize('raw, builtin', [
    (dict(in_interface='eth0', out_interface='eth1', jump='ACCEPT'), 'FORWARD'),
    (dict(in_interface='eth0', jump='DNAT', to_destination='1.2.3.4'), 'PREROUTING'),
    (dict(out_interface='eth0', jump='SNAT', to_source='1.2.3.4'), 'POSTROUTING'),
    (dict(jump='DNAT', to_destination='1.2.3.4'), 'OUTPUT'),
])
def test_rules_that_work_from_their_hook(raw, builtin):
    r.check_hook(r.make_rule(raw, 'ipv4', 'nat' if raw['jump'] != 'ACCEPT' else 'filter'), builtin)
