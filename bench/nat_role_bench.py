#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): whole ansible-playbook runs of the nat_gateway role with N port forwards on a lab host.

Target (issue 14): with 200 port forwards, a run < 5 s (a whole
ansible-playbook run, controller start-up included). Runs on the gw
container of a lab of its own (prefix --prefix, default snf-bench-nat),
reached over real SSH with pipelining as an operator's inventory reaches
it (--connection ssh, the default), with podman exec (--connection
podman), or both in the same rounds (--connection both); the harness,
its options and its clean-up: bench/_role_bench.py.

Each round: a reset run (a masquerade and one port forward, no rules
files, no stale flush: removing N forwards would flush N times), then the
first run of the N port forwards (every DNAT and FORWARD rule, the stale
flush of the reset run's removed forward, the rules files, the restore
script and the unit written), then a no-change re-run.

    python bench/nat_role_bench.py --rounds 2
    python bench/nat_role_bench.py --connection podman --ref HEAD~20
    python bench/nat_role_bench.py --connection both --rounds 2
    python bench/nat_role_bench.py --vars-from inventory --rounds 2
"""

from __future__ import absolute_import, division, print_function

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _role_bench  # noqa: E402

# From tests/lab/topology.yml: gw's wan interface.
WAN_IF = 'eth1'
MASQUERADE = [dict(source='192.168.50.0/24', out_interface=WAN_IF), dict(source='fd00:50::/64', out_interface=WAN_IF)]
BASE_FORWARDS = [dict(name='web', port=8080, in_interface=WAN_IF, to='192.168.50.10:80')]


def forwards(count):
    """count port forwards: alternately TCP and UDP, IPv4 and IPv6 servers, one port each (some to another port)."""
    out = []
    for index in range(count):
        server = ('192.168.50.%d' % (10 + index % 200) if index % 2 == 0 else '[fd00:50::%x]' % (10 + index))
        out.append(dict(name='pf-%d' % index, protocol='tcp' if index % 4 < 2 else 'udp', port=20000 + index,
                        in_interface=WAN_IF, to='%s:%d' % (server, 30000 + index) if index % 3 else
                        server.strip('[]')))
    return out


PLAYBOOK = '''---
- name: NAT gateway role ({label})
  hosts: gw
  gather_facts: false
  tasks:
    - name: Apply the role
      ansible.builtin.include_role:
        name: stateful.netfilter.nat_gateway
      vars:
        nat_gateway_masquerade: {masquerade}
{forwards}        nat_gateway_persist: {persist}
        nat_gateway_persist_require_systemd: false  # the lab container does not run systemd
        nat_gateway_flush_stale: {flush}
'''


def write_playbook(lab, label, port_forwards, persist, flush=True, vars_from='lookup'):
    line, path = _role_bench.big_variable(lab, label, 'nat_gateway_port_forwards', port_forwards, vars_from)
    with open(path, 'w') as handle:
        handle.write(PLAYBOOK.format(label=label, masquerade=json.dumps(MASQUERADE), forwards=line,
                                     persist='true' if persist else 'false', flush='true' if flush else 'false'))
    return path


def main():
    parser = _role_bench.parser(__doc__.splitlines()[0], 'snf-bench-nat')
    parser.add_argument('--forwards', type=int, default=200)
    options = _role_bench.parse(parser)

    def playbooks(lab, _connection):
        # The reset removes N port forwards: with the stale flush that is N conntrack_flush calls (one a
        # translation), which is not what is measured here.
        return (write_playbook(lab, 'reset', BASE_FORWARDS, persist=False, flush=False),
                write_playbook(lab, 'bulk', forwards(options.forwards), persist=True, vars_from=options.vars_from))

    return _role_bench.bench(options, playbooks, '%d port forwards (a DNAT and a FORWARD accept each, half IPv4, '
                             'half IPv6) from %s' % (options.forwards, options.vars_from), first_target=5, rerun_target=5)


if __name__ == '__main__':
    sys.exit(main())
