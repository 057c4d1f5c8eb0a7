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
    # The policy is the last base chain's, after every scope's first chains (the accept mark, _nft.ACCEPT_MARK).
    assert 'type filter hook input priority filter + 1; policy drop;' in listing
    assert 'type filter hook input priority filter - 1; policy accept;' in listing
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
    assert 'policy drop' not in nft(lab, 'list', 'table', 'inet', 'snf_filter_NF')
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
                dict(name='ftp', protocol='tcp', destination_port=21, jump='CT', helper='ftp'),
                dict(name='irc', protocol='tcp', destination_port=6667, jump='CT', helper='irc')])]),
            ('raw', [dict(name='SNF-NT-RAW', hook='PREROUTING', rules=[
                dict(name='dns', protocol='udp', destination_port=53, jump='CT', notrack=True)])])):
        args = dict(table=table, family='both', scope=chains[0]['name'][4:6], state='overridden', chains=chains)
        first = ruleset(lab, **args)
        assert first['changed'] is True, first
        assert ruleset(lab, **args)['changed'] is False, table
        assert ruleset(lab, _ansible_check_mode=True, **args)['changed'] is False, table
    listing = nft(lab, 'list', 'table', 'inet', 'snf_raw_NF')
    assert 'ct helper snf-ftp-tcp {' in listing and 'tcp dport 21 ct helper set "snf-ftp-tcp"' in listing
    # irc is IPv4 only: its rule is in the IPv4 chain alone, its object an l3proto ip one.
    assert 'l3proto ip\n' in listing and listing.count('snf-irc-tcp"') == 1
    # nft sets a helper on the connection conntrack made: the chain runs after conntrack; notrack before it.
    assert 'type filter hook prerouting priority mangle - 2; policy accept;' in listing
    assert 'type filter hook prerouting priority raw - 1; policy accept;' in nft(lab, 'list', 'table', 'inet',
                                                                                 'snf_raw_NT')
    mixed = ruleset(lab, table='raw', family='both', scope='NF', state='merged', chains=[dict(
        name='SNF-NF-RAW', rules=[dict(name='dns', protocol='udp', destination_port=53, jump='CT', notrack=True)])])
    assert mixed.get('failed') and mixed['param'] == 'notrack' and 'scope of their own' in mixed['msg'], mixed


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
    result = ruleset(lab, table='filter', scope='NF', rollback_timeout=4)
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


# ---------------------------------------------------------------------------
# Commit-confirm, nat_rule and the persistence file on this back end (issue 15, second slice).

def read_record(lab, state_dir):
    import json
    return json.loads(lab.run(['cat', state_dir + '/state.json']))


def test_rollback_fires_and_restores_the_owned_table_whole_and_a_confirm_keeps_the_change(lab):
    from netns_lab import wait_for
    lab.link('snf-h31-c', SERVER, CLIENT)
    lab.listen(SERVER, 8080)
    lab.listen(SERVER, 8081)
    lab.run(['nft', '-f', '-'], data=FOREIGN.encode())
    lab.restore('*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -s 192.0.2.0/24 -j RETURN\nCOMMIT\n')
    good = dict(table='filter', family='both', scope='NF', state='overridden', policies={'INPUT': 'DROP'},
                chains=[dict(name='SNF-NF-IN', hook='INPUT', rules=[
                    dict(name='est', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
                    dict(name='ssh', protocol='tcp', destination_port=8080, jump='ACCEPT')])])
    assert ruleset(lab, **good)['changed'] is True
    before = nft(lab, 'list', 'table', 'inet', 'snf_filter_NF')
    foreign = nft(lab, 'list', 'table', 'inet', 'foreign')
    ipt = lab.rules('filter')
    assert lab.connects('snf-h31-c', SERVER, 8080)
    # A push that cuts "SSH" (8080) and is never confirmed: the timer puts the table back.
    bad = but(good, rollback_timeout=5, chains=[dict(good['chains'][0], rules=[
        dict(name='est', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
        dict(name='other', protocol='tcp', destination_port=8081, jump='ACCEPT')])])
    pushed = ruleset(lab, **bad)
    assert pushed['changed'] is True and pushed['rollback']['armed'] is True, pushed
    assert pushed['rollback']['timer']['kind'] == 'process'
    assert not lab.connects('snf-h31-c', SERVER, 8080, timeout=0.5)
    assert lab.connects('snf-h31-c', SERVER, 8081)
    # Another push to the scope is refused while the rollback is pending.
    refused = ruleset(lab, **good)
    assert refused.get('failed') and pushed['rollback']['id'] in refused['msg'], refused
    assert wait_for(lambda: lab.connects('snf-h31-c', SERVER, 8080, timeout=0.3), 20)
    state_dir = pushed['rollback']['state_dir']
    assert wait_for(lambda: read_record(lab, state_dir)['status'] == 'rolled_back', 10)
    record = read_record(lab, state_dir)
    assert record['result']['restored'] == ['ipv4', 'ipv6'] and record['result']['errors'] == []
    assert nft(lab, 'list', 'table', 'inet', 'snf_filter_NF') == before
    assert nft(lab, 'list', 'table', 'inet', 'foreign') == foreign and lab.rules('filter') == ipt
    assert not lab.connects('snf-h31-c', SERVER, 8081, timeout=0.5)
    # The same push confirmed (as the action plugin does: the module with rollback_confirm alone, whose
    # default back end is iptables; the record says which back end armed it): the change stays.
    pushed = ruleset(lab, **bad)
    assert pushed['rollback']['armed'] is True
    confirmed = lab.module('ruleset', dict(rollback_confirm=pushed['rollback']['id']))
    assert confirmed['changed'] is True and confirmed['rollback']['status'] == 'confirmed', confirmed
    import time
    time.sleep(6)
    assert lab.connects('snf-h31-c', SERVER, 8081) and not lab.connects('snf-h31-c', SERVER, 8080, timeout=0.5)
    assert ruleset(lab, **but(bad, rollback_timeout=None))['changed'] is False
    # A rollback armed over an absent table removes the table it created.
    ruleset(lab, table='filter', scope='NF', state='deleted', policies={'INPUT': 'ACCEPT'})
    created = ruleset(lab, **but(good, rollback_timeout=5))
    assert created['rollback']['armed'] is True
    assert wait_for(lambda: 'snf_filter_NF' not in nft(lab, 'list', 'tables'), 20)
    assert nft(lab, 'list', 'table', 'inet', 'foreign') == foreign and lab.rules('filter') == ipt


GW_LAN, LAN_HOST = '10.97.0.1', '10.97.0.2'
GW_WAN, WAN_HOST = '10.98.0.1', '10.98.0.2'
# A TCP server that prints the address of every peer it accepts.
PEER_SERVER = ('import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); '
               's.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16); print("up", flush=True)\n'
               'while True:\n    c, a = s.accept(); print(a[0], flush=True); c.close()')


def gateway(lab):
    """lan namespace -- lab namespace (forwarding) -- wan namespace; the wan host has no route back."""
    import subprocess
    import sys
    lab.link('snf-h31-lan', GW_LAN, LAN_HOST)
    lab.run(['ip', 'route', 'add', 'default', 'via', GW_LAN], netns='snf-h31-lan')
    lab.add_netns('snf-h31-wan')
    lab.run(['ip', 'link', 'add', 'snf2', 'type', 'veth', 'peer', 'name', 'snf3', 'netns', 'snf-h31-wan'])
    lab.run(['ip', 'addr', 'add', GW_WAN + '/24', 'dev', 'snf2'])
    lab.run(['ip', 'link', 'set', 'snf2', 'up'])
    lab.run(['ip', 'addr', 'add', WAN_HOST + '/24', 'dev', 'snf3'], netns='snf-h31-wan')
    lab.run(['ip', 'link', 'set', 'snf3', 'up'], netns='snf-h31-wan')
    lab.run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
    servers = {}
    for netns in ('snf-h31-lan', 'snf-h31-wan'):
        proc = subprocess.Popen(lab.cmd([sys.executable, '-c', PEER_SERVER, '8080'], netns), stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b'up\n'
        servers[netns] = proc
    return servers


def nat_rule(lab, **args):
    args.setdefault('backend', 'nftables')
    return lab.module('nat_rule', args)


@pytest.fixture
def servers(lab):
    """The gateway lab and its two peer servers (killed at the end: `ip netns exec` gives each a mount
    namespace of its own, out of reach of Lab.close)."""
    procs = gateway(lab)
    try:
        yield procs
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def test_nat_rule_snat_and_dnat_on_nftables_with_packets_foreign_tables_untouched(lab, servers):
    lab.run(['nft', '-f', '-'], data=FOREIGN.encode())
    lab.restore('*nat\n:DOCKER - [0:0]\n-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n'
                '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\nCOMMIT\n')
    foreign, ipt = nft(lab, 'list', 'table', 'inet', 'foreign'), lab.rules('nat')
    # Without SNAT the wan host has no route back to the lan: no connection.
    assert not lab.connects('snf-h31-lan', WAN_HOST, 8080, timeout=0.5)
    snat = dict(name='lan-out', type='snat', source='10.97.0.0/24', out_interface='snf2', to_source=GW_WAN)
    check = nat_rule(lab, _ansible_check_mode=True, _ansible_diff=True, **snat)
    assert check['changed'] is True and 'snf_nat_NAT' not in nft(lab, 'list', 'tables'), check
    done = nat_rule(lab, _ansible_diff=True, **snat)
    assert done['changed'] is True and done['nft'] == check['nft'] and done['diff'] == check['diff'], done
    assert lab.connects('snf-h31-lan', WAN_HOST, 8080)
    assert servers['snf-h31-wan'].stdout.readline() == (GW_WAN + '\n').encode()
    assert nat_rule(lab, **snat)['changed'] is False
    assert nat_rule(lab, _ansible_check_mode=True, **snat)['changed'] is False
    # A port forward from the gateway's wan address to the lan host.
    dnat = dict(name='web', type='dnat', in_interface='snf2', protocol='tcp', destination_port=80,
                to_destination=LAN_HOST + ':8080')
    assert nat_rule(lab, **dnat)['changed'] is True
    assert lab.connects('snf-h31-wan', GW_WAN, 80)
    assert servers['snf-h31-lan'].stdout.readline() == (WAN_HOST + '\n').encode()
    assert nat_rule(lab, **dnat)['changed'] is False
    listing = nft(lab, 'list', 'table', 'inet', 'snf_nat_NAT')
    assert 'type nat hook prerouting priority dstnat - 1; policy accept;' in listing
    assert 'iifname "snf2" tcp dport 80 dnat ip to 10.97.0.2:8080 comment "snf:web"' in listing
    # ruleset with the same scope reads back what nat_rule wrote.
    gathered = lab.module('ruleset', dict(backend='nftables', table='nat', scope='NAT', family='ipv4',
                                          state='gathered'))['gathered']['ipv4']
    assert sorted(chain['name'] for chain in gathered['chains']) == ['SNF-NAT-POST', 'SNF-NAT-PRE']
    assert nft(lab, 'list', 'table', 'inet', 'foreign') == foreign and lab.rules('nat') == ipt
    # Removal: the forward goes, then the last rule takes the table with it.
    assert nat_rule(lab, name='web', type='dnat', state='absent')['changed'] is True
    assert not lab.connects('snf-h31-wan', GW_WAN, 80, timeout=0.5)
    assert nat_rule(lab, name='lan-out', type='snat', state='absent')['changed'] is True
    assert 'snf_nat_NAT' not in nft(lab, 'list', 'tables')
    assert not lab.connects('snf-h31-lan', WAN_HOST, 8080, timeout=0.5)
    assert nft(lab, 'list', 'table', 'inet', 'foreign') == foreign and lab.rules('nat') == ipt
    # Bad input: refused naming the option, nothing written.
    bad = nat_rule(lab, type='snat', to_source='203.0.113.5', comment='say "hi"')
    assert bad.get('failed') and bad['param'] == 'comment', bad
    assert 'snf_nat_NAT' not in nft(lab, 'list', 'tables')


def test_the_persistence_file_loads_the_owned_tables_and_leaves_the_rest(lab):
    import sys
    from netns_lab import COLLECTIONS
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    from ansible_collections.stateful.netfilter.plugins.module_utils import _nft
    lab.run(['nft', '-f', '-'], data=FOREIGN.encode())
    foreign = nft(lab, 'list', 'table', 'inet', 'foreign')
    args = dict(table='filter', family='both', scope='NF', policies={'INPUT': 'DROP'},
                chains=[dict(name='SNF-NF-IN', hook='INPUT', rules=FILTER_RULES),
                        dict(name='SNF-NF-SUB', rules=[dict(name='drop', jump='DROP')])])
    name, text = _nft.render_params(args)
    persisted = _nft.persistence_file([(name, text)])
    lab.run(['nft', '-c', '-f', '-'], data=persisted.encode())
    # Loaded twice (a boot, then a reload): the table is the one the module writes, the foreign one stays.
    for dummy in range(2):
        lab.run(['nft', '-f', '-'], data=persisted.encode())
    assert nft(lab, 'list', 'table', 'inet', name) == text
    assert ruleset(lab, state='overridden', **args)['changed'] is False
    assert nft(lab, 'list', 'table', 'inet', 'foreign') == foreign


HOLDING_SERVER = ('import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); '
                  's.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16); print("up", flush=True); held = []\n'
                  'while True:\n    held.append(s.accept()[0])')
# Opens N connections one after the other and keeps them open; prints open/closed for each.
CLIENTS = ('import socket, sys\nheld = []\nfor n in range(int(sys.argv[3])):\n    try:\n'
           '        held.append(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.0)); '
           'print("open")\n    except OSError:\n        print("closed")')


def test_connlimit_counts_connections_per_source_with_ct_count(lab):
    import subprocess
    import sys
    lab.link('snf-h31-c', SERVER, CLIENT)
    server = subprocess.Popen(lab.cmd([sys.executable, '-c', HOLDING_SERVER, SERVER, '8080']), stdout=subprocess.PIPE)
    assert server.stdout.readline() == b'up\n'
    args = dict(table='filter', family='both', scope='NF', state='overridden', chains=[
        dict(name='SNF-NF-IN', hook='INPUT', rules=[
            dict(name='two-each', protocol='tcp', destination_port=8080, ctstate=['NEW'], connlimit_above=2,
                 jump='REJECT', reject_with='tcp-reset')])])
    assert ruleset(lab, **args)['changed'] is True
    listing = nft(lab, 'list', 'table', 'inet', 'snf_filter_NF')
    assert 'ct state new add @ipv4.count-' in listing and '{ ip saddr ct count over 2 } reject with tcp reset' in listing
    tried = lab.run([sys.executable, '-c', CLIENTS, SERVER, '8080', '3'], 'snf-h31-c').split()
    assert tried == ['open', 'open', 'closed'], tried
    # The set holds the kernel's count now; a re-run and a check-mode run see no change.
    assert ruleset(lab, **args)['changed'] is False
    assert ruleset(lab, _ansible_check_mode=True, **args)['changed'] is False
    gathered = ruleset(lab, table='filter', scope='NF', family='ipv4', state='gathered')['gathered']['ipv4']
    assert gathered['chains'][0]['rules'][0]['connlimit_above'] == 2
    # Three allowed: the third connects.
    three = dict(args['chains'][0]['rules'][0], connlimit_above=3)
    raised = but(args, chains=[dict(args['chains'][0], rules=[three])])
    assert ruleset(lab, **raised)['changed'] is True
    assert lab.run([sys.executable, '-c', CLIENTS, SERVER, '8080', '3'], 'snf-h31-c').split() == ['open'] * 3
    server.kill()
