# SPDX-License-Identifier: GPL-3.0-or-later
"""ruleset with backend nftables against the real kernel (issue 15, first slice).

Each test runs the ruleset module as Ansible runs it on a host, in a private
mount and network namespace (conftest.Lab): the owned inet table is applied,
read back, re-applied without change and predicted in check mode; a foreign nft
table and iptables-nft chains stay byte-identical; packets between namespaces
are decided by the rules.
"""
import shutil

import pytest

SERVER, CLIENT = '10.97.0.1', '10.97.0.2'

pytestmark = pytest.mark.skipif(shutil.which('nft') is None, reason='nft is not installed')

FOREIGN = '''table inet foreign {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\ttcp dport 9999 counter packets 0 bytes 0 accept
\t}
}
'''

FILTER_RULES = [
    dict(name='loopback', in_interface='lo', jump='ACCEPT'),
    dict(name='established', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
    dict(name='invalid', ctstate=['INVALID'], jump='DROP'),
    dict(name='new-not-syn', protocol='tcp', syn=False, ctstate=['NEW'], jump='DROP'),
    dict(name='ping', protocol='icmp', icmp_type='echo-request', jump='ACCEPT'),
    dict(name='ndp', protocol='icmpv6', icmp_type='neighbour-solicitation', jump='ACCEPT'),
    dict(name='ssh', protocol='tcp', destination_port=22, source='10.97.0.0/24', jump='ACCEPT'),
    dict(name='web', protocol='tcp', destination_port=[443, 80, '8000-8100'], jump='ACCEPT'),
    dict(name='neg', protocol='tcp', source='!10.0.0.0/8', in_interface='!lo', destination_port='!22',
         jump='RETURN'),
    dict(name='flags', protocol='tcp', tcp_flags='ALL NONE', jump='DROP'),
    dict(name='xmas', protocol='tcp', tcp_flags='ALL FIN,PSH,URG', jump='DROP'),
    dict(name='ct', protocol='tcp', ctorigdst='192.0.2.7', ctorigdstport=8443, ctstate='!INVALID',
         ctstatus=['ASSURED', 'SEEN_REPLY'], ctdir='ORIGINAL', jump='RETURN'),
    dict(name='reset', protocol='tcp', destination_port=23, jump='REJECT', reject_with='tcp-reset'),
    dict(name='log', limit='5/min', limit_burst=10, jump='LOG', log_prefix='snf-drop: ', log_level='info',
         comment='drops, rate limited'),
    dict(name='to-sub', protocol='udp', source_port='1000-2000', jump='SNF-NF-SUB'),
]


def nft(lab, *args):
    return lab.run(['nft'] + list(args))


def ruleset(lab, **args):
    args.setdefault('backend', 'nftables')
    return lab.module('ruleset', args)


def but(args, **changes):
    """A copy of module arguments with some changed."""
    out = dict(args)
    out.update(changes)
    return out


def test_filter_table_applies_reads_back_is_idempotent_and_leaves_foreign_rules_alone(lab):
    lab.run(['nft', '-f', '-'], data=FOREIGN.encode())
    lab.restore('*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -s 192.0.2.0/24 -j RETURN\n'
                '-A INPUT -p tcp --dport 9998 -j ACCEPT\nCOMMIT\n')
    foreign_before = nft(lab, 'list', 'table', 'inet', 'foreign')
    ipt_before = lab.rules('filter')
    args = dict(table='filter', family='both', scope='NF', state='overridden', policies={'INPUT': 'DROP'},
                chains=[dict(name='SNF-NF-IN', hook='INPUT', rules=FILTER_RULES),
                        dict(name='SNF-NF-SUB', rules=[dict(name='drop', jump='DROP')])])
    check = ruleset(lab, _ansible_check_mode=True, **args)
    assert check['changed'] is True and check['table'] == 'inet snf_filter_NF', check
    assert 'snf_filter_NF' not in nft(lab, 'list', 'tables')
    first = ruleset(lab, **args)
    assert first['changed'] is True, first
    listing = nft(lab, 'list', 'table', 'inet', 'snf_filter_NF')
    # The kernel prints back exactly the canonical text the engine renders.
    rendered = ruleset(lab, **but(args, state='rendered'))['rendered']['nftables']
    assert listing == rendered
    assert 'tcp dport { 80, 443, 8000-8100 } accept comment "snf:web"' in listing
    assert 'type filter hook input priority filter - 1; policy drop;' in listing
    again = ruleset(lab, **args)
    assert again['changed'] is False and again['nft'] == '', again
    assert ruleset(lab, _ansible_check_mode=True, **args)['changed'] is False
    gathered = ruleset(lab, table='filter', family='both', scope='NF', state='gathered')['gathered']
    assert gathered['ipv4']['policies']['INPUT'] == 'DROP'
    names = [rule['name'] for rule in gathered['ipv4']['chains'][0]['rules']]
    assert names == [rule['name'] for rule in FILTER_RULES if rule['name'] != 'ndp']
    assert [rule['name'] for rule in gathered['ipv6']['chains'][0]['rules']] == \
        [rule['name'] for rule in FILTER_RULES if rule['name'] not in ('ping', 'ssh', 'neg', 'ct')]
    # What gathered returns is accepted as input and changes nothing.
    back = but(args, chains=[dict(name=c['name'], hook=c['hook'], rules=c['rules'])
                             for c in gathered['ipv4']['chains']], family='ipv4', policies={})
    assert ruleset(lab, **back)['changed'] is False
    # A change: one rule less, policy back to ACCEPT.
    changed = ruleset(lab, **but(args, policies={'INPUT': 'ACCEPT'},
                                 chains=[dict(name='SNF-NF-IN', hook='INPUT', rules=FILTER_RULES[:3])]))
    assert changed['changed'] is True
    assert 'policy accept' in nft(lab, 'list', 'table', 'inet', 'snf_filter_NF')
    # Removal: the table goes, everything else is as it was.
    removed = ruleset(lab, table='filter', scope='NF', state='deleted', policies={'INPUT': 'ACCEPT'})
    assert removed['changed'] is True
    assert 'snf_filter_NF' not in nft(lab, 'list', 'tables')
    assert nft(lab, 'list', 'table', 'inet', 'foreign') == foreign_before
    assert lab.rules('filter') == ipt_before


def test_packets_are_decided_by_the_owned_table(lab):
    lab.link('snf-h25-c', SERVER, CLIENT)
    listener = lab.listen(SERVER, 8080)
    lab.listen(SERVER, 8081)
    assert lab.connects('snf-h25-c', SERVER, 8080) and lab.connects('snf-h25-c', SERVER, 8081)
    args = dict(table='filter', family='both', scope='NF', state='overridden', policies={'INPUT': 'DROP'},
                chains=[dict(name='SNF-NF-IN', hook='INPUT', rules=[
                    dict(name='lo', in_interface='lo', jump='ACCEPT'),
                    dict(name='est', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
                    dict(name='web', protocol='tcp', destination_port=[8080, 9000], source=CLIENT, jump='ACCEPT'),
                ])])
    assert ruleset(lab, **args)['changed'] is True
    assert lab.connects('snf-h25-c', SERVER, 8080)
    assert not lab.connects('snf-h25-c', SERVER, 8081, timeout=0.5)
    # Removing the accept rule closes the port; the DROP policy of the base chain decides.
    args['chains'][0]['rules'] = args['chains'][0]['rules'][:2]
    assert ruleset(lab, **args)['changed'] is True
    assert not lab.connects('snf-h25-c', SERVER, 8080, timeout=0.5)
    assert ruleset(lab, table='filter', scope='NF', state='deleted', policies={'INPUT': 'ACCEPT'})['changed']
    assert lab.connects('snf-h25-c', SERVER, 8081)
    listener.kill()


def test_nat_in_the_inet_table_translates(lab):
    lab.link('snf-h25-c', SERVER, CLIENT)
    lab.listen(SERVER, 8080)
    args = dict(table='nat', family='both', scope='NF', state='overridden', chains=[
        dict(name='SNF-NF-PRE', hook='PREROUTING', rules=[
            dict(name='fwd', protocol='tcp', destination_port=80, jump='REDIRECT', to_ports=8080)]),
        dict(name='SNF-NF-POST', hook='POSTROUTING', hook_position='last', rules=[
            dict(name='masq', out_interface='eth9', source='10.0.0.0/24', jump='MASQUERADE', random=True),
            dict(name='snat', protocol='tcp', out_interface='eth8', jump='SNAT', to_source='10.0.0.1-10.0.0.9:1000',
                 persistent=True),
            dict(name='snat6', protocol='udp', out_interface='eth8', jump='SNAT',
                 to_source='[dead::1-dead::9]:1000-2000')]),
    ])
    assert not lab.connects('snf-h25-c', SERVER, 80, timeout=0.5)
    first = ruleset(lab, **args)
    assert first['changed'] is True, first
    listing = nft(lab, 'list', 'table', 'inet', 'snf_nat_NF')
    assert 'type nat hook prerouting priority dstnat - 1; policy accept;' in listing
    assert 'type nat hook postrouting priority srcnat + 1; policy accept;' in listing
    assert 'snat ip6 to [dead::1]-[dead::9]:1000-2000' in listing
    assert ruleset(lab, **args)['changed'] is False
    assert lab.connects('snf-h25-c', SERVER, 80)


def test_mangle_and_raw_targets(lab):
    for table, chains in (
            ('mangle', [dict(name='SNF-NF-MSS', hook='FORWARD', rules=[
                dict(name='clamp', protocol='tcp', tcp_flags='SYN,RST SYN', jump='TCPMSS', clamp_mss_to_pmtu=True),
                dict(name='set', protocol='tcp', syn=True, out_interface='ppp0', jump='TCPMSS', set_mss=1400)])]),
            ('raw', [dict(name='SNF-NF-RAW', hook='PREROUTING', rules=[
                dict(name='dns', protocol='udp', destination_port=53, jump='CT', notrack=True),
                dict(name='ftp', protocol='tcp', destination_port=21, jump='CT', helper='ftp'),
                dict(name='irc', protocol='tcp', destination_port=6667, jump='CT', helper='irc')])])):
        args = dict(table=table, family='both', scope='NF', state='overridden', chains=chains)
        first = ruleset(lab, **args)
        assert first['changed'] is True, first
        assert ruleset(lab, **args)['changed'] is False, table
        assert ruleset(lab, _ansible_check_mode=True, **args)['changed'] is False, table
    listing = nft(lab, 'list', 'table', 'inet', 'snf_raw_NF')
    assert 'ct helper snf-ftp-tcp {' in listing and 'tcp dport 21 ct helper set "snf-ftp-tcp"' in listing
    # irc is IPv4 only: its rule is in the IPv4 chain alone, its object an l3proto ip one.
    assert 'l3proto ip\n' in listing and listing.count('snf-irc-tcp"') == 1


def test_what_nft_cannot_take_is_refused_naming_the_option_before_any_change(lab):
    lab.run(['nft', '-f', '-'], data=FOREIGN.encode())
    for rule, param in ((dict(protocol='tcp', port=[80, 443], jump='ACCEPT'), 'port'),
                        (dict(ctstate=['SNAT', 'NEW'], jump='ACCEPT'), 'ctstate'),
                        (dict(comment='say "hi"', jump='ACCEPT'), 'comment')):
        result = ruleset(lab, table='filter', family='ipv4', scope='NF', state='overridden',
                         chains=[dict(name='SNF-NF-IN', hook='INPUT', rules=[rule])])
        assert result.get('failed') and result['param'] == 'chains[0].rules[0].' + param, result
    result = ruleset(lab, table='filter', family='ipv4', scope='NF', policies={'INPUT': 'DROP'})
    assert result.get('failed') and result['param'] == 'policies.INPUT', result
    result = ruleset(lab, table='filter', scope='NF', rollback_timeout=30)
    assert result.get('failed') and result['param'] == 'rollback_timeout', result
    assert nft(lab, 'list', 'tables').split() == ['table', 'inet', 'foreign']


def test_every_base_chain_decides_an_accept_elsewhere_does_not_override_a_drop(lab):
    """What docs/nftables.md says about coexistence, with packets: each table's base chain can drop."""
    lab.link('snf-h25-c', SERVER, CLIENT)
    lab.listen(SERVER, 8080)
    lab.listen(SERVER, 8081)
    # iptables-nft (Docker-like) accepts 8080; the owned table's policy drop still drops it.
    lab.restore('*filter\n-A INPUT -p tcp --dport 8080 -j ACCEPT\nCOMMIT\n')
    args = dict(table='filter', family='both', scope='NF', state='overridden', policies={'INPUT': 'DROP'},
                chains=[dict(name='SNF-NF-IN', hook='INPUT', rules=[
                    dict(name='est', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
                    dict(name='web', protocol='tcp', destination_port=8081, jump='ACCEPT')])])
    assert ruleset(lab, **args)['changed'] is True
    assert not lab.connects('snf-h25-c', SERVER, 8080, timeout=0.5)
    assert lab.connects('snf-h25-c', SERVER, 8081)
    # A foreign table that drops 8081 wins over the owned table's accept.
    lab.run(['nft', '-f', '-'], data=b'table inet foreign {\n chain input {\n  type filter hook input priority 10;'
                                     b' policy accept;\n  tcp dport 8081 drop\n }\n}\n')
    assert not lab.connects('snf-h25-c', SERVER, 8081, timeout=0.5)
    # Neither the iptables-nft rule nor the foreign table was touched by a re-run.
    before = nft(lab, 'list', 'ruleset')
    assert ruleset(lab, **args)['changed'] is False
    assert nft(lab, 'list', 'ruleset') == before
