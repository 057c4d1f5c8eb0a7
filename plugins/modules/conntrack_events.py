#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: conntrack_events
short_description: Sample connection tracking events for a few seconds
version_added: 0.1.0
description:
  - Watches the kernel's connection tracking events, like C(conntrack -E), for O(duration) seconds and returns how
    many entries were created, updated and destroyed, their rates, and the sources, destinations and ports of the
    new flows.
  - The conntrack filters apply to every event, as C(conntrack -E) applies its own.
  - When the kernel drops events because the module could not read them fast enough, RV(complete) is false and
    RV(overruns) and RV(lost) say so; the counts are then lower bounds.
  - Talks to the kernel over nfnetlink with the Python standard library only; the C(conntrack) tool is not needed.
author:
  - stateful.netfilter contributors (@stateful-netfilter)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - stateful.netfilter.conntrack_filters
attributes:
  check_mode:
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: linux
    details: Needs C(nf_conntrack_netlink) and conntrack events (C(net.netfilter.nf_conntrack_events) not V(0)).
options:
  duration:
    description: Seconds to listen, from V(0.1) to V(300).
    type: float
    default: 5
  events:
    description:
      - Kinds of events to watch. V(update) events (state and status changes, such as a TCP entry becoming
        C(ESTABLISHED)) are many on a busy host; they are left out unless asked for.
    type: list
    elements: str
    choices: [new, update, destroy]
    default: [new, destroy]
  sample:
    description: Return up to this many matching events in full (RV(sample)), 0-1000.
    type: int
    default: 0
seealso:
  - module: stateful.netfilter.conntrack_info
  - module: stateful.netfilter.conntrack_stats
'''

EXAMPLES = r'''
- name: New and destroyed entries for ten seconds (conntrack -E -e NEW,DESTROY)
  stateful.netfilter.conntrack_events:
    duration: 10
  register: ev

- name: Who opens the most connections right now
  ansible.builtin.debug:
    msg: "{{ ev.rates.new }} new flows/s; top sources {{ ev.top_new_sources[:3] }}"

- name: Refuse to draw conclusions from an incomplete sample
  ansible.builtin.assert:
    that: ev.complete
    fail_msg: "the kernel dropped {{ ev.lost }} events ({{ ev.overruns }} overruns)"

- name: New TCP connections to port 443 only, with five of them in full
  stateful.netfilter.conntrack_events:
    duration: 5
    events: [new]
    protocol: tcp
    dport: 443
    sample: 5
'''

RETURN = r'''
seconds:
  description: Seconds actually listened.
  returned: always
  type: float
  sample: 10.0
events:
  description: Matching events of each kind watched.
  returned: always
  type: dict
  sample: {new: 51200, destroy: 49870}
rates:
  description: The same per second.
  returned: always
  type: dict
  sample: {new: 5120.0, destroy: 4987.0}
top_new_sources:
  description: The ten original sources that opened the most new entries, with V(address) and V(count).
  returned: always
  type: list
  elements: dict
  sample: [{address: 10.0.0.2, count: 40000}]
top_new_destinations:
  description: The ten original destinations of the most new entries.
  returned: always
  type: list
  elements: dict
  sample: [{address: 198.51.100.1, count: 3000}]
top_new_ports:
  description: The ten destination ports (TCP, UDP, SCTP, UDP-Lite) of the most new entries.
  returned: always
  type: list
  elements: dict
  sample: [{protocol: udp, port: 53, count: 20000}]
overruns:
  description: Times the receive buffer overflowed (the kernel answered ENOBUFS); V(0) when nothing was lost.
  returned: always
  type: int
  sample: 0
lost:
  description:
    - Events the kernel dropped for this listener (the C(Drops) column of C(/proc/net/netlink)); V(null) when that
      cannot be read (then only RV(overruns) tells).
  returned: always
  type: int
  sample: 0
complete:
  description: True when no event was lost; otherwise every count is a lower bound.
  returned: always
  type: bool
  sample: true
sample:
  description:
    - Up to O(sample) matching events in full, as M(stateful.netfilter.conntrack_info) returns entries, each with
      V(event) (V(new), V(update) or V(destroy)).
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stateful.netfilter.plugins.module_utils._conntrack import ERRORS
from ansible_collections.stateful.netfilter.plugins.module_utils._ctevents import (
    EVENT_TYPES,
    check_options,
    sample_events,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._ctfilters import build_filter, filter_argument_spec


def main():
    argument_spec = filter_argument_spec()
    argument_spec.update(
        duration=dict(type='float', default=5),
        events=dict(type='list', elements='str', default=['new', 'destroy'], choices=list(EVENT_TYPES)),
        sample=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        duration, kinds, sample = check_options(module.params)
        flt = build_filter(module.params)
        result = sample_events(flt, duration, kinds, sample, netns=module.params['netns'])
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
