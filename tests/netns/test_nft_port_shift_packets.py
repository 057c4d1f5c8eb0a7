# SPDX-License-Identifier: GPL-3.0-or-later
"""DNAT port shifting (to_destination A:P-Q/BASE) on both back ends, with packets (issue 15 item 1).

The lab's namespace is the gateway between a client and a server namespace (conftest.Lab). A rule in
PREROUTING sends the client's connections to the gateway's ports 1000-1019 to the server's ports 3000-3009 with
base 1005, IPv4 and IPv6; the server answers each connection with the port it was accepted on. nf_nat gives
port P + ((dport - BASE) mod 2^16) mod (Q - P + 1): the ports below the base wrap through 2^16 (1000 goes to
3001, where plain arithmetic would say 3005). On iptables (nft and legacy) the kernel does that from
`--to-destination A:3000-3009/1005`; on nftables, which has no syntax for a base, the rule is a map from each
destination port to its shifted port. Both deliver every connection to the same port, the one computed here;
check mode predicts each apply, a re-run changes nothing, gathered reads the rule back as written. nat_rule
writes the same map. The one difference docs/nftables.md names is measured too: a second connection held from
the same client port to a port shifted to the same port.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(shutil.which('nft') is None, reason='nft is not installed')

CLIENT, SERVER = 'snf-h39-c', 'snf-h39-s'
PORTS = range(1000, 1020)
LOW, HIGH, BASE = 3000, 3009, 1005
TARGETS = {'ipv4': ('10.39.1.1', '10.39.2.2'), 'ipv6': ('fd39:1::1', 'fd39:2::2')}

SERVE = ('import selectors, socket\nsel = selectors.DefaultSelector()\n'
         'for port in range(%d, %d):\n'
         '    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
         '    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", port)); s.listen(16)\n'
         '    sel.register(s, selectors.EVENT_READ)\n'
         'print("up", flush=True)\n'
         'while True:\n'
         '    for key, dummy in sel.select():\n'
         '        c, a = key.fileobj.accept(); c.sendall(str(c.getsockname()[1]).encode()); c.close()\n'
         % (LOW, HIGH + 1))
# Each port of PORTS in turn: the port the server says it accepted the connection on, or 0.
CONNECT = ('import json, socket, sys\nout = {}\n'
           'for port in range(%d, %d):\n'
           '    try:\n'
           '        c = socket.create_connection((sys.argv[1], port), timeout=6); out[port] = int(c.recv(16) or 0)\n'
           '        c.close()\n'
           '    except OSError:\n'
           '        out[port] = 0\n'
           'print(json.dumps(out))' % (PORTS[0], PORTS[-1] + 1))


def kernel_port(dport):
    """nf_nat_l4proto_unique_tuple with NF_NAT_RANGE_PROTO_OFFSET: u16 off = dport - base; min + off % size."""
    off = (dport - BASE) % 65536
    return LOW + off % (HIGH - LOW + 1)


def args(backend, **changes):
    rules = [dict(name='shift%s' % family[-1], protocol='tcp', destination=gateway,
                  destination_port='%d:%d' % (PORTS[0], PORTS[-1]), jump='DNAT',
                  to_destination=('%s:%d-%d/%d' if family == 'ipv4' else '[%s]:%d-%d/%d') % (server, LOW, HIGH, BASE))
             for family, (gateway, server) in sorted(TARGETS.items())]
    out = dict(backend=backend, table='nat', family='both', scope='PS', state='overridden',
               chains=[dict(name='SNF-PS-PRE', hook='PREROUTING', rules=rules)])
    out.update(changes)
    return out


def delivered(lab):
    return dict((family, dict((int(port), got) for port, got in json.loads(lab.run(
        [sys.executable, '-c', CONNECT, gateway], CLIENT)).items())) for family, (gateway, dummy) in TARGETS.items())


def apply_and_measure(lab, backend, variant=None):
    check = lab.module('ruleset', dict(args(backend), _ansible_check_mode=True))
    first = lab.module('ruleset', args(backend))
    assert first['changed'] is True and check['changed'] is True, first
    key = 'nft' if backend == 'nftables' else 'restore'
    assert check[key] == first[key], (check, first)
    seen = delivered(lab)
    again = lab.module('ruleset', args(backend))
    assert again['changed'] is False, again
    gathered = lab.module('ruleset', dict(backend=backend, table='nat', family='both', scope='PS',
                                          state='gathered'))['gathered']
    assert [gathered[family]['chains'][0]['rules'][0]['to_destination'] for family in ('ipv4', 'ipv6')] == \
        ['10.39.2.2:3000-3009/1005', '[fd39:2::2]:3000-3009/1005'], gathered
    if backend == 'nftables':
        listing = lab.run(['nft', 'list', 'table', 'inet', 'snf_nat_PS'])
        assert 'tcp dport 1000-1019 dnat ip to 10.39.2.2:tcp dport map { 1000 : 3001, 1001 : 3002, ' in listing
        assert 'dnat ip6 to [fd39:2::2]:tcp dport map { 1000 : 3001, ' in listing, listing
    else:
        saved = lab.run(['iptables-%s-save' % variant, '-t', 'nat'])
        assert '-j DNAT --to-destination 10.39.2.2:3000-3009/1005' in saved, saved
    gone = lab.module('ruleset', dict(backend=backend, table='nat', family='both', scope='PS', state='deleted'))
    assert gone['changed'] is True, gone
    return seen


def test_a_port_shift_delivers_to_the_same_ports_on_nftables_as_on_iptables(lab, tmp_path, monkeypatch):
    lab.gateway((CLIENT, 'snfc', ['10.39.1.1/24', 'fd39:1::1/64'], ['10.39.1.2/24', 'fd39:1::2/64'], []),
                (SERVER, 'snfs', ['10.39.2.1/24', 'fd39:2::1/64'], ['10.39.2.2/24', 'fd39:2::2/64'],
                 [['default', 'via', '10.39.2.1'], ['default', 'via', 'fd39:2::1']]))
    server = subprocess.Popen(lab.cmd([sys.executable, '-c', SERVE], SERVER), stdout=subprocess.PIPE)
    assert server.stdout.readline() == b'up\n'
    expected = dict((port, kernel_port(port)) for port in PORTS)
    assert expected[1000] == 3001 and expected[1005] == 3000 and expected[1019] == 3004
    # No rule: nothing listens on the gateway's ports.
    assert set(delivered(lab)['ipv4'].values()) == {0}
    seen = {}
    for variant in ('nft', 'legacy'):
        shim = tmp_path / variant
        shim.mkdir()
        for tool in ('iptables', 'ip6tables'):
            os.symlink('/usr/sbin/%s-%s' % (tool, variant), str(shim / tool))
        monkeypatch.setenv('PATH', '%s:%s' % (shim, os.environ.get('PATH', '/usr/sbin:/usr/bin')))
        seen['iptables-' + variant] = apply_and_measure(lab, 'iptables', variant)
    monkeypatch.undo()
    seen['nftables'] = apply_and_measure(lab, 'nftables')
    for name, result in seen.items():
        assert result == {'ipv4': expected, 'ipv6': expected}, (name, result)


def test_nat_rule_writes_a_port_shift_into_the_owned_nat_table_and_refuses_one_it_cannot_map(lab):
    rule = dict(backend='nftables', type='dnat', name='shift', family='ipv6', protocol='tcp',
                destination_port='1000:1019', to_destination='[fd39:2::2]:3000-3009/1005')
    check = lab.module('nat_rule', dict(rule, _ansible_check_mode=True))
    first = lab.module('nat_rule', rule)
    assert check['changed'] is True and first['changed'] is True and check['rule'] == first['rule'], first
    assert 'tcp dport 1000-1019 dnat ip6 to [fd39:2::2]:tcp dport map { 1000 : 3001, ' in first['rule']
    assert lab.module('nat_rule', rule)['changed'] is False
    before = lab.run(['nft', 'list', 'table', 'inet', 'snf_nat_NAT'])
    loose = dict(rule, name='loose')
    del loose['destination_port']
    refused = lab.module('nat_rule', loose)
    assert refused.get('failed') and refused['param'] == 'to_destination' and 'give destination_port' in refused['msg']
    assert lab.run(['nft', 'list', 'table', 'inet', 'snf_nat_NAT']) == before


# Two connections held open from one client port (one for each back end) to 1005 and 1015, which the shift sends to the same port 3000: the
# server answers with the port it accepted on and the client port it sees.
HOLD = SERVE.replace('sel = selectors', 'held = []\nsel = selectors').replace(
    'c.sendall(str(c.getsockname()[1]).encode()); c.close()',
    'c.sendall(("%d %d" % (c.getsockname()[1], a[1])).encode()); held.append(c)')
SAME_SOURCE = ('import socket, sys\nout, held = [], []\n'
               'for port in (1005, 1015):\n'
               '    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
               '    s.bind(("10.39.1.2", int(sys.argv[1]))); s.settimeout(2); s.connect(("10.39.1.1", port))\n'
               '    out.append([int(word) for word in s.recv(32).split()]); held.append(s)\n'
               'print(out)')


def test_a_second_connection_from_the_same_client_port_to_the_same_shifted_port(lab):
    """The documented difference: iptables' range moves it to the next port of P-Q, the map's one port stays and
    nf_nat gives the connection another source port instead."""
    lab.gateway((CLIENT, 'snfc', ['10.39.1.1/24'], ['10.39.1.2/24'], []),
                (SERVER, 'snfs', ['10.39.2.1/24'], ['10.39.2.2/24'], [['default', 'via', '10.39.2.1']]))
    server = subprocess.Popen(lab.cmd([sys.executable, '-c', HOLD], SERVER), stdout=subprocess.PIPE)
    assert server.stdout.readline() == b'up\n'
    seen = {}
    for backend, client_port in (('iptables', 40000), ('nftables', 40001)):
        assert lab.module('ruleset', args(backend))['changed']
        seen[backend] = json.loads(lab.run([sys.executable, '-c', SAME_SOURCE, str(client_port)], CLIENT))
        assert lab.module('ruleset', dict(args(backend), state='deleted'))['changed']
    assert seen['iptables'] == [[3000, 40000], [3001, 40000]], seen
    assert seen['nftables'][0] == [3000, 40001] and seen['nftables'][1][0] == 3000 \
        and seen['nftables'][1][1] != 40001, seen
