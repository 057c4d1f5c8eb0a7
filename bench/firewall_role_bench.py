#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): whole ansible-playbook runs of the firewall role with N allow entries on a lab host.

Target (issue 14): with 1,000 allow entries, the first run < 5 s and a
no-change re-run < 3 s (whole ansible-playbook runs, controller start-up
included). Runs on the gw container of a lab of its own (prefix --prefix,
default snf-bench-fw), reached over real SSH with pipelining as an
operator's inventory reaches it (--connection ssh, the default), with
podman exec (--connection podman), or both in the same rounds (--connection
both); the harness, its options and its clean-up: bench/_role_bench.py.

Each round: a reset run (the ssh entry alone, no rules files), then the
first run of the N entries (every rule, the rules files, the restore script
and the unit written), then a no-change re-run. The SSH guard runs: over
ssh it reads the SSH_CONNECTION sshd set (the relay on wan to gw's wan
address); over podman exec, which has no SSH session, the play sets that
same connection in its environment.

    python bench/firewall_role_bench.py --rounds 2
    python bench/firewall_role_bench.py --connection podman --ref HEAD~20
    python bench/firewall_role_bench.py --connection both --rounds 2
    python bench/firewall_role_bench.py --backend nftables --rounds 1
    python bench/firewall_role_bench.py --vars-from inventory --rounds 2
"""

from __future__ import absolute_import, division, print_function

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _role_bench  # noqa: E402

# From tests/lab/topology.yml: the SSH client is the wan host, gw's wan address the server.
SSH_CONNECTION = '203.0.113.8 40022 203.0.113.1 22'
BASE_ALLOW = [dict(name='ssh', port=22, sources=['203.0.113.0/24', '2001:db8:113::/64'], comment='administrators')]


def entries(count):
    """count allow entries: alternately TCP and UDP, one port each, an IPv4 and an IPv6 source each."""
    return BASE_ALLOW + [dict(name='bulk-%d' % index, protocol='tcp' if index % 2 == 0 else 'udp',
                              port=10000 + index % 50000,
                              sources=['10.%d.%d.0/24' % (index // 250 % 250, index % 250), 'fd00:%x::/64' % index])
                         for index in range(count)]


PLAYBOOK = '''---
- name: Firewall role ({label})
  hosts: gw
  gather_facts: false
{environment}  tasks:
    - name: Apply the role
      ansible.builtin.include_role:
        name: stateful.netfilter.firewall
      vars:
{allow}        firewall_persist: {persist}
        firewall_persist_require_systemd: false  # the lab container does not run systemd
        firewall_backend: {backend}
'''

# Over podman exec only: the session an operator's SSH would have.
ENVIRONMENT = '''  environment:
    SSH_CONNECTION: "%s"
''' % SSH_CONNECTION


def write_playbook(lab, connection, label, allow, persist, backend, vars_from):
    label = '%s-%s' % (label, connection)
    line, path = _role_bench.big_variable(lab, label, 'firewall_input_allow', allow, vars_from)
    with open(path, 'w') as handle:
        handle.write(PLAYBOOK.format(label=label, allow=line, persist='true' if persist else 'false',
                                     backend=backend,
                                     environment=ENVIRONMENT if connection == 'podman' else ''))
    return path


def main():
    parser = _role_bench.parser(__doc__.splitlines()[0], 'snf-bench-fw')
    parser.add_argument('--entries', type=int, default=1000)
    parser.add_argument('--backend', choices=['iptables', 'nftables'], default='iptables',
                        help='firewall_backend of the play (issue 15: compare the two back ends)')
    options = _role_bench.parse(parser)

    def playbooks(lab, connection):
        return (write_playbook(lab, connection, 'reset', BASE_ALLOW, persist=False, backend=options.backend,
                               vars_from='lookup'),
                write_playbook(lab, connection, 'bulk', entries(options.entries), persist=True,
                               backend=options.backend, vars_from=options.vars_from))

    return _role_bench.bench(options, playbooks, '%d allow entries (%d rules per family), %s back end, the entries '
                             'from %s' % (options.entries, options.entries + 1, options.backend, options.vars_from),
                             first_target=5, rerun_target=3)


if __name__ == '__main__':
    sys.exit(main())
