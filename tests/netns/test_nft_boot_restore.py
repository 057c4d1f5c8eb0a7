# SPDX-License-Identifier: GPL-3.0-or-later
"""The boot-time restore on the nftables back end, and coexistence with Docker-like rules (issue 15 items 3, 6).

lan (10.91.0.2) - gw (the lab's namespace: 10.91.0.1, 10.92.0.1) - wan (10.92.0.2, no route back to lan). A
firewall scope (FW: INPUT and FORWARD policy drop) and a nat_gateway scope (GW: what _nat_plan plans from role
variables - masquerade, a port forward, an ftp helper, MSS clamping) are applied with ruleset, backend nftables.
The boot_restore module writes each role's nft -f file under a scratch root from the same models; the owned
tables are deleted (what a reboot leaves), the files loaded with nft -f as the restore scripts do: every owned
table lists byte for byte as ruleset wrote it, packets pass and are dropped as before, a second load changes
nothing. A foreign nft table and iptables-nft chains stay byte-identical throughout.
"""
import os
import shutil
import sys

import pytest

from netns_lab import COLLECTIONS

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
from ansible_collections.stateful.netfilter.plugins.module_utils import _nat_plan as npl  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which('nft') is None, reason='nft is not installed')

LAN_NS, WAN_NS = 'snf-h37-lan', 'snf-h37-wan'
GW_LAN, LAN, GW_WAN, WAN = '10.91.0.1', '10.91.0.2', '10.92.0.1', '10.92.0.2'
# Seconds a connection expected to open may take (a loaded machine); one expected dropped is given 0.5.
OPEN = 3.0
FOREIGN = ('table inet foreign {\n\tchain forward {\n\t\ttype filter hook forward priority filter + 10; '
           'policy accept;\n\t\tudp dport 9999 counter packets 0 bytes 0 accept\n\t}\n}\n')
# Docker-like iptables-nft rules: its filter chains accept the bridge's traffic, its nat masquerades it.
DOCKER = ('*filter\n:DOCKER-USER - [0:0]\n:DOCKER - [0:0]\n-A FORWARD -j DOCKER-USER\n'
          '-A FORWARD -i snfl -j DOCKER\n-A DOCKER -j ACCEPT\n-A DOCKER-USER -j RETURN\nCOMMIT\n'
          '*nat\n:DOCKER - [0:0]\n-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n'
          '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\nCOMMIT\n')

FIREWALL = dict(table='filter', family='both', policies={'INPUT': 'DROP', 'FORWARD': 'DROP'}, chains=[
    dict(name='SNF-FW-INPUT', hook='INPUT', rules=[
        dict(name='loopback', in_interface='lo', jump='ACCEPT'),
        dict(name='established', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
        dict(name='ssh', protocol='tcp', destination_port=22, source=[LAN, '10.91.0.0/24'], jump='ACCEPT')]),
    dict(name='SNF-FW-FORWARD', hook='FORWARD', rules=[
        dict(name='established', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
        dict(name='lan-web', in_interface='snfl', protocol='tcp', destination_port=8080, jump='ACCEPT'),
        dict(name='forwarded', ctstate=['DNAT'], jump='ACCEPT'),
        dict(name='log', limit='5/min', jump='LOG', log_prefix='snf-fw-drop: ')])])
# No FORWARD accept of all outbound flows in the gateway scope: lan -> wan goes through the firewall scope's
# lan-web (8080) or its policy drop (8081); the two scopes' verdicts compose as on iptables.
GATEWAY_VARIABLES = dict(
    nat_gateway_forward_outbound=False,
    nat_gateway_masquerade=[dict(source='10.91.0.0/24', out_interface='snfw')],
    nat_gateway_port_forwards=[dict(name='web', port=8090, in_interface='snfw', to=LAN + ':8080')],
    nat_gateway_helpers=[dict(name='ftp-out', helper='ftp', port=21, in_interface='snfl')],
    nat_gateway_mss_clamping=[dict(out_interface='snfw', clamp_to_pmtu=True)],
)


def nft(lab, *args):
    return lab.run(['nft'] + list(args))


def gateway_tables(variables):
    """The nat_gateway role's models (roles/nat_gateway/vars/main.yml: the translations and __nat_gateway_other_tables)."""
    model = npl.plan(variables)
    return [dict(table=table, family='both', chains=model[table + '_chains'])
            for table in ('nat', 'filter', 'raw', 'mangle')]


def apply(lab, scope, models):
    for model in models:
        result = lab.module('ruleset', dict(model, backend='nftables', scope=scope, state='overridden'))
        assert not result.get('failed'), result


def owned(lab):
    """{table name: `nft list table inet NAME`} of every table the collection owns."""
    names = [line.split()[2] for line in nft(lab, 'list', 'tables').splitlines() if line.split()[2].startswith('snf_')]
    return dict((name, nft(lab, 'list', 'table', 'inet', name)) for name in names)


def foreign(lab):
    """The foreign nft table and the iptables-nft tables (stateless: the counters of Docker-like rules move)."""
    return dict((table, nft(lab, '-s', 'list', 'table', *table.split()))
                for table in ('inet foreign', 'ip filter', 'ip nat'))


def decisions(lab, servers):
    """What the rules decide: lan -> wan 8080 masqueraded, 8081 dropped, the port forward, gw's INPUT."""
    out = dict(lan_wan_8080=lab.connects(LAN_NS, WAN, 8080, OPEN), lan_wan_8081=lab.connects(LAN_NS, WAN, 8081, 0.5),
               wan_forward_8090=lab.connects(WAN_NS, GW_WAN, 8090, OPEN),
               wan_gw_22=lab.connects(WAN_NS, GW_WAN, 22, 0.5), lan_gw_22=lab.connects(LAN_NS, GW_LAN, 22, OPEN))
    if out['lan_wan_8080']:
        out['wan_sees'] = servers[WAN_NS].stdout.readline().decode().strip()
    if out['wan_forward_8090']:
        out['lan_sees'] = servers[LAN_NS].stdout.readline().decode().strip()
    return out


@pytest.fixture
def servers(lab):
    lab.gateway((LAN_NS, 'snfl', [GW_LAN + '/24'], [LAN + '/24'], [['default', 'via', GW_LAN]]),
                (WAN_NS, 'snfw', [GW_WAN + '/24'], [WAN + '/24'], []))
    procs = {LAN_NS: lab.serve(LAN_NS, 8080), WAN_NS: lab.serve(WAN_NS, 8080)}
    lab.serve(WAN_NS, 8081)
    lab.listen('0.0.0.0', 22)
    try:
        yield procs
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def test_the_boot_files_restore_the_owned_tables_exactly_and_leave_the_rest(lab, servers, tmp_path):
    lab.run(['nft', '-f', '-'], data=FOREIGN.encode())
    lab.restore(DOCKER)
    others = foreign(lab)
    gateway = gateway_tables(GATEWAY_VARIABLES)
    apply(lab, 'FW', [FIREWALL])
    apply(lab, 'GW', gateway)
    written = owned(lab)
    assert sorted(written) == ['snf_filter_FW', 'snf_filter_GW', 'snf_mangle_GW', 'snf_nat_GW', 'snf_raw_GW']
    assert 'ct helper' in written['snf_raw_GW'] and 'maxseg size set rt mtu' in written['snf_mangle_GW']
    expected = dict(lan_wan_8080=True, wan_sees=GW_WAN, lan_wan_8081=False, wan_forward_8090=True, lan_sees=WAN,
                    wan_gw_22=False, lan_gw_22=True)
    assert decisions(lab, servers) == expected
    # The roles' boot_restore, from the same models, under a scratch root (the nft -c check runs in the lab).
    root = str(tmp_path / 'root')
    files = {}
    for role, models in (('firewall', [FIREWALL]), ('nat_gateway', gateway)):
        args = dict(role=role, backend='nftables', tables=models, root=root)
        result = lab.module('boot_restore', args)
        assert result['changed'] is True and not result.get('failed'), result
        assert lab.module('boot_restore', args)['changed'] is False
        path = '/etc/stateful-netfilter/%s.nft' % role
        with open(root + '/usr/local/sbin/snf-%s-restore' % role.replace('_', '-')) as handle:
            assert handle.read().rstrip('\n').endswith('\nexec nft -f %s' % path)
        with open(root + path) as handle:
            files[role] = handle.read()
        statements = [line for line in files[role].splitlines() if not line.startswith('#')]
        assert not [line for line in statements if 'flush' in line or 'foreign' in line], files[role]
    assert not os.path.exists(root + '/etc/stateful-netfilter/nat_gateway.ipv4.rules')
    assert owned(lab) == written and foreign(lab) == others
    # A reboot leaves no owned table; the units load the files (nat_gateway's first, then the firewall's).
    for name in written:
        nft(lab, 'delete', 'table', 'inet', name)
    assert owned(lab) == {} and foreign(lab) == others
    for load in range(2):
        for role in ('nat_gateway', 'firewall'):
            lab.run(['nft', '-f', '-'], data=files[role].encode())
        # Byte for byte what ruleset wrote, at boot and loaded again over the live tables.
        assert owned(lab) == written, load
        assert foreign(lab) == others, load
        assert decisions(lab, servers) == expected, load
    # ruleset finds nothing to change in the restored tables.
    for scope, models in (('FW', [FIREWALL]), ('GW', gateway)):
        for model in models:
            result = lab.module('ruleset', dict(model, backend='nftables', scope=scope, state='overridden'))
            assert result['changed'] is False, result
    # A model without MSS clamping: the file removes the mangle table at boot, loaded whether it exists or not.
    smaller = gateway_tables(dict(GATEWAY_VARIABLES, nat_gateway_mss_clamping=[]))
    apply(lab, 'GW', smaller)
    assert 'snf_mangle_GW' not in owned(lab)
    smaller_written = owned(lab)
    result = lab.module('boot_restore', dict(role='nat_gateway', backend='nftables', tables=smaller, root=root))
    assert result['changed'] is True, result
    with open(root + '/etc/stateful-netfilter/nat_gateway.nft') as handle:
        text = handle.read()
    assert 'delete table inet snf_mangle_GW' in text and 'table inet snf_mangle_GW {' not in text
    lab.run(['nft', '-f', '-'], data=written['snf_mangle_GW'].encode())
    for dummy in range(2):
        lab.run(['nft', '-f', '-'], data=text.encode())
        assert owned(lab) == smaller_written and foreign(lab) == others


def test_a_forward_policy_drop_drops_what_dockers_rules_accept_unless_its_interfaces_are_trusted(lab, servers):
    """docs/nftables.md, Coexistence: every base chain on the hook decides. Docker's iptables-nft FORWARD rules
    accept the bridge's traffic (snfl here), the owned table's policy drop still drops it; accepting the bridge
    in the owned chain lets it through. Foreign tables byte-identical through converge, change and removal."""
    lab.run(['ip', 'route', 'add', '10.91.0.0/24', 'via', GW_WAN], netns=WAN_NS)
    lab.run(['nft', '-f', '-'], data=FOREIGN.encode())
    lab.restore(DOCKER)
    others = foreign(lab)
    assert lab.connects(LAN_NS, WAN, 8081, OPEN)
    rules = [dict(name='established', ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
             dict(name='lan-web', in_interface='snfl', protocol='tcp', destination_port=8080, jump='ACCEPT')]
    args = dict(backend='nftables', table='filter', family='both', scope='FW', state='overridden',
                policies={'FORWARD': 'DROP'}, chains=[dict(name='SNF-FW-FORWARD', hook='FORWARD', rules=rules)])
    assert lab.module('ruleset', args)['changed'] is True
    assert foreign(lab) == others
    # Docker's DOCKER chain accepts everything from the bridge; the owned policy drop drops it anyway.
    assert lab.connects(LAN_NS, WAN, 8080, OPEN)
    assert not lab.connects(LAN_NS, WAN, 8081, timeout=0.5)
    # The documented way: trust the container interfaces in the owned chain.
    trusted = dict(args, chains=[dict(args['chains'][0], rules=rules + [
        dict(name='docker0', in_interface='snfl', jump='ACCEPT'),
        dict(name='bridges', in_interface='br-+', jump='ACCEPT')])])
    result = lab.module('ruleset', trusted)
    assert result['changed'] is True, result
    assert 'iifname "br-*" accept' in nft(lab, 'list', 'table', 'inet', 'snf_filter_FW')
    assert lab.connects(LAN_NS, WAN, 8081, OPEN) and lab.connects(LAN_NS, WAN, 8080, OPEN)
    assert lab.module('ruleset', trusted)['changed'] is False
    assert foreign(lab) == others
    # Removal: the table goes, Docker's rules decide alone again, nothing of theirs moved.
    assert lab.module('ruleset', dict(args, state='deleted', policies={'FORWARD': 'ACCEPT'}, chains=[]))['changed']
    assert 'snf_filter_FW' not in nft(lab, 'list', 'tables')
    assert lab.connects(LAN_NS, WAN, 8081, OPEN)
    assert foreign(lab) == others
