# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-source limits with packets (issue 14 section 3): the roles' plans applied by the ruleset module in a
private namespace, a client opens more connections than the limit, and exactly the excess is refused.

- firewall_input_allow with max_connections_per_source: N connections held open, the next ones refused
  (TCP reset), on the nft and the legacy back end;
- firewall_input_allow with rate_per_source 1/min and rate_burst 2: of five connections in a row the first
  two pass, the other three are refused;
- nat_gateway_port_forwards with max_connections_per_source: the same through DNAT and FORWARD.
"""
import json
import os
import subprocess
import sys

import pytest

from netns_lab import COLLECTIONS

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
from ansible_collections.stateful.netfilter.plugins.module_utils import _firewall_plan as fw  # noqa: E402
from ansible_collections.stateful.netfilter.plugins.module_utils import _nat_plan as nat  # noqa: E402

GATEWAY, CLIENT = '10.97.0.1', '10.97.0.2'
INSIDE, SERVER = '10.96.0.1', '10.96.0.2'

# Accepts on every port given and keeps every connection open (until the lab is killed).
HOLD = ('import select, socket, sys\nsocks = []\nfor port in sys.argv[2:]:\n'
        '    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
        '    s.bind((sys.argv[1], int(port))); s.listen(64); socks.append(s)\n'
        'print("up", flush=True)\nheld = []\nwhile True:\n'
        '    for s in select.select(socks, [], [])[0]:\n        held.append(s.accept()[0])\n')
# Opens COUNT connections to ADDRESS:PORT, one after the other; holds them open (hold) or closes each at once.
# Prints how many were accepted, refused (a TCP reset) and timed out.
CLIENT_CODE = ('import json, socket, sys\naddress, port, count, hold = sys.argv[1], int(sys.argv[2]), '
               'int(sys.argv[3]), sys.argv[4] == "hold"\nout = dict(open=0, refused=0, timeout=0)\nkeep = []\n'
               'for i in range(count):\n    try:\n        c = socket.create_connection((address, port), timeout=2)\n'
               '        out["open"] += 1\n        keep.append(c) if hold else c.close()\n'
               '    except ConnectionRefusedError:\n        out["refused"] += 1\n'
               '    except OSError:\n        out["timeout"] += 1\nprint(json.dumps(out))\n')


@pytest.fixture(params=['nft', 'legacy'])
def backend(request, tmp_path, monkeypatch):
    """`iptables` of the back end under test first on PATH for the modules the lab runs."""
    shim = tmp_path / 'shim'
    shim.mkdir()
    for tool in ('iptables', 'ip6tables'):
        os.symlink('/usr/sbin/%s-%s' % (tool, request.param), str(shim / tool))
    monkeypatch.setenv('PATH', '%s:%s' % (shim, os.environ.get('PATH', '/usr/sbin:/usr/bin')))
    return request.param


def hold(lab, address, ports, netns=None):
    proc = subprocess.Popen(lab.cmd([sys.executable, '-c', HOLD, address] + [str(p) for p in ports], netns),
                            stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b'up\n'
    return proc


def connect(lab, netns, address, port, count, keep):
    return json.loads(lab.run([sys.executable, '-c', CLIENT_CODE, address, str(port), str(count),
                               'hold' if keep else 'close'], netns))


def apply(lab, table, scope, model_chains, policies=None, family='ipv4'):
    result = lab.module('ruleset', dict(table=table, family=family, scope=scope, state='overridden',
                                        policies=policies or {}, chains=model_chains))
    assert result.get('changed') is True and not result.get('failed'), result
    again = lab.module('ruleset', dict(table=table, family=family, scope=scope, state='overridden',
                                       policies=policies or {}, chains=model_chains))
    assert again.get('changed') is False, again
    return result


def test_input_connection_and_rate_limits_refuse_exactly_the_excess(lab, backend):
    lab.link('cl', GATEWAY, CLIENT)
    model = fw.plan(dict(firewall_families=['ipv4'], firewall_input_allow=[
        dict(name='web', port=8080, max_connections_per_source=3),
        dict(name='slow', port=8081, rate_per_source='1/min', rate_burst=2)]))
    applied = apply(lab, 'filter', 'FW', model['chains'], model['policies'])
    assert '-m connlimit --connlimit-above 3 --connlimit-mask 32 --connlimit-saddr' in applied['restore']['ipv4']
    saved = lab.run(['iptables-%s-save' % backend, '-t', 'filter'])
    assert '--hashlimit-above 1/min --hashlimit-burst 2 --hashlimit-mode srcip' in saved, backend
    hold(lab, GATEWAY, [8080, 8081])
    # Six connections held open at once: three pass, three are refused by a reset (not timed out).
    assert connect(lab, 'cl', GATEWAY, 8080, 6, keep=True) == dict(open=3, refused=3, timeout=0)
    # Five new connections in a row (each closed at once): the burst of two passes, then 1/min refuses three.
    assert connect(lab, 'cl', GATEWAY, 8081, 5, keep=False) == dict(open=2, refused=3, timeout=0)


def test_port_forward_connection_limit_refuses_exactly_the_excess(lab):
    lab.link('cl', GATEWAY, CLIENT)
    lab.add_netns('srv')
    lab.run(['ip', 'link', 'add', 'snf2', 'type', 'veth', 'peer', 'name', 'snf3', 'netns', 'srv'])
    lab.run(['ip', 'addr', 'add', INSIDE + '/24', 'dev', 'snf2'])
    lab.run(['ip', 'link', 'set', 'snf2', 'up'])
    lab.run(['ip', 'addr', 'add', SERVER + '/24', 'dev', 'snf3'], netns='srv')
    lab.run(['ip', 'link', 'set', 'snf3', 'up'], netns='srv')
    lab.run(['ip', 'route', 'add', 'default', 'via', INSIDE], netns='srv')
    # The lab's own namespace is the gateway: forwarding there changes nothing of this machine.
    lab.run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
    model = nat.plan(dict(nat_gateway_forward_outbound=False, nat_gateway_port_forwards=[
        dict(name='web', port=8080, to='%s:80' % SERVER, in_interface='snf0', max_connections_per_source=2)]))
    apply(lab, 'nat', 'GW', model['nat_chains'])
    apply(lab, 'filter', 'GW', model['filter_chains'])
    hold(lab, SERVER, [80], netns='srv')
    assert connect(lab, 'cl', GATEWAY, 8080, 5, keep=True) == dict(open=2, refused=3, timeout=0)
    # Only the two accepted connections reached the server (the refused ones never were confirmed).
    conntrack = lab.run(['conntrack', '-L', '-p', 'tcp', '--orig-port-dst', '8080'], check=False)
    assert conntrack.count('src=%s' % SERVER) == 2 and conntrack.count('[ASSURED]') == 2, conntrack
