# SPDX-License-Identifier: GPL-3.0-or-later
"""Egress filtering of the firewall role's planning (issue 14, part 3), against the kernel, in namespaces of its own.

The model the role would apply (_firewall_plan.plan) goes through the real
ruleset module into the lab's namespace; packets then show that the allowed
destination and port are reached and another port is not, that a TCP session
opened before the change (the stand-in of the SSH session) keeps working, and
that the drops meet the OUTPUT chain's LOG rule, counted (a namespace's LOG
lines reach the kernel log only with the host's nf_log_all_netns).
"""
import os
import re
import subprocess
import sys

from netns_lab import COLLECTIONS, wait_for

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
from ansible_collections.stateful.netfilter.plugins.module_utils import _firewall_plan as fp  # noqa: E402

HOST, PEER = '10.98.0.1', '10.98.0.2'
HELD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    'molecule', 'firewall', 'files', 'snf_held_session.py')
# Listeners on the peer's ports (kept referenced: a closed socket would refuse), killed with the lab.
LISTEN = ('import socket, sys, time\nheld = []\nfor port in sys.argv[2:]:\n    s = socket.socket(); held.append(s); '
          's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(port))); s.listen(16)\n'
          'print("up", flush=True)\ntime.sleep(600)')


def egress_model():
    return fp.plan(dict(
        firewall_families=['ipv4'],
        firewall_input_allow=[dict(name='ssh', port=22, sources=[PEER + '/32'])],
        firewall_output_policy='drop',
        firewall_output_allow=[dict(name='web', port=8080, destinations=[PEER], out_interface='snf0')],
        firewall_log_chains=dict(output=dict(enabled=True, prefix='snf-egress: ', rate='60/min', burst=5))))


def log_count(lab):
    saved = lab.run(['iptables-save', '-c', '-t', 'filter'])
    match = re.search(r'^\[([0-9]+):[0-9]+\] -A SNF-FW-OUTPUT-LOG .*--log-prefix "snf-egress: "', saved, re.M)
    assert match, saved
    return int(match.group(1))


def test_output_drop_policy_with_allow_entries(lab):
    lab.link('peer', HOST, PEER)
    listener = subprocess.Popen(lab.cmd([sys.executable, '-c', LISTEN, PEER, '8080', '8081'], 'peer'),
                                stdout=subprocess.PIPE)
    assert listener.stdout.readline() == b'up\n'
    # The session opened before the change: peer -> host port 22, from the client port SSH_CONNECTION names.
    server = subprocess.Popen(lab.cmd([sys.executable, HELD, 'serve', '22', '60']), stdout=subprocess.PIPE)
    ready, go = os.path.join(lab.tmp, 'ready'), os.path.join(lab.tmp, 'go')
    client = subprocess.Popen(lab.cmd([sys.executable, HELD, 'hold', HOST, '22', '40022', ready, go, '60'], 'peer'),
                              stdout=subprocess.PIPE)
    assert wait_for(lambda: os.path.exists(ready), 20)
    assert lab.connects(None, PEER, 8080) and lab.connects(None, PEER, 8081)  # both open before the change

    model = egress_model()
    verdict = fp.ssh_verdict(model, '%s 40022 %s 22' % (PEER, HOST), '%s dev snf0 src %s' % (PEER, HOST))
    assert verdict['accepted'] and verdict['output_decided_by'] == 'SNF-FW-OUTPUT rule base:established', verdict
    result = lab.module('ruleset', dict(table='filter', family=model['family'], scope='FW', state='overridden',
                                        policies=model['policies'], chains=model['chains']))
    assert result.get('changed') is True, result
    assert ':OUTPUT DROP' in lab.save()

    before = log_count(lab)
    assert lab.connects(None, PEER, 8080), lab.run(['iptables-save', '-c'])
    assert not lab.connects(None, PEER, 8081)
    assert log_count(lab) - before >= 1

    with open(go, 'w'):
        pass
    out = client.communicate(timeout=30)[0]
    assert out.decode().strip() == '{"before": "gw:before", "after": "gw:after", "error": null}'
    server.wait(timeout=30)
    # The same plan again changes nothing.
    again = lab.module('ruleset', dict(table='filter', family=model['family'], scope='FW', state='overridden',
                                       policies=model['policies'], chains=model['chains']))
    assert again.get('changed') is False, again
