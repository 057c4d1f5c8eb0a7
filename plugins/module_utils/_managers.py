# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Other firewall managers on a managed host: an active firewalld or ufw.

Both own the filter table's base chains of the host (firewalld, on its
nftables back end, a table of its own that also sees every packet; ufw its
ufw-* chains hooked into INPUT, FORWARD and OUTPUT) and rewrite them when they
reload, so a role of this collection working beside them must be asked for
knowingly. The decision is made here from state read on the host:

- processes: the command names of the running processes, one a line
  (`ps -e -o comm=`, or /proc/*/comm);
- ufw_conf: the text of /etc/ufw/ufw.conf, or None when there is none;
- rules: the text of `iptables-save` (and `ip6tables-save`), or None.

firewalld is active when a process of that name runs (it is a daemon; its
rules go when it stops). ufw is active when its configuration says
ENABLED=yes (what `ufw enable` writes; its boot script loads the rules then)
or its chains are loaded (ufw-user-input and the like), whichever is seen.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# The variable of each role that accepts a manager knowingly.
ACCEPT_VARIABLE = {
    'firewall': 'firewall_coexist',
    'nat_gateway': 'nat_gateway_coexist',
}

MANAGERS = ('firewalld', 'ufw')

_UFW_ENABLED = re.compile(r'^\s*ENABLED\s*=\s*(["\']?)yes\1\s*$', re.IGNORECASE | re.MULTILINE)
_UFW_CHAIN = re.compile(r'^:(ufw6?-[A-Za-z0-9_-]+) ', re.MULTILINE)


def detect(processes=None, ufw_conf=None, rules=None):
    """The active managers, in the order of MANAGERS: a list of
    {'manager': NAME, 'evidence': [what showed it, ...]}."""
    found = []
    names = set()
    for line in (processes or '').splitlines():
        name = line.strip()
        if name:
            names.add(name)
    if 'firewalld' in names:
        found.append({'manager': 'firewalld', 'evidence': ['a firewalld process runs']})
    evidence = []
    if ufw_conf is not None and _UFW_ENABLED.search(ufw_conf):
        evidence.append('/etc/ufw/ufw.conf says ENABLED=yes')
    chains = sorted(set(_UFW_CHAIN.findall(rules or '')))
    if chains:
        evidence.append('its chains are loaded (%s%s)' % (', '.join(chains[:3]), ', ...' if len(chains) > 3 else ''))
    if evidence:
        found.append({'manager': 'ufw', 'evidence': evidence})
    return found


def check(found, role, accepted, host='the host'):
    """The message to refuse with ('' when there is nothing to refuse):
    `found` is what detect() returned, `accepted` the list of managers the
    role's variable accepts (ACCEPT_VARIABLE[role])."""
    if role not in ACCEPT_VARIABLE:
        raise ValueError('unknown role %r' % (role,))
    variable = ACCEPT_VARIABLE[role]
    accepted = list(accepted or [])
    unknown = [name for name in accepted if name not in MANAGERS]
    if unknown:
        return '%s: unknown firewall manager(s) %s; choose from %s' % (
            variable, ', '.join(repr(name) for name in unknown), ', '.join(MANAGERS))
    refused = [entry for entry in found if entry['manager'] not in accepted]
    if not refused:
        return ''
    names = [entry['manager'] for entry in refused]
    return ('%s: %s manage%s this firewall too (%s). Its rules apply besides those of the %s role, and '
            'its reloads may rewrite or reorder them. Stop and disable it, or set %s: [%s] to run beside it '
            'knowingly (docs/guide.md, "Other firewall managers"). Nothing was changed.'
            % (host, ' and '.join(names), 's' if len(names) == 1 else '',
               '; '.join('%s: %s' % (entry['manager'], ', '.join(entry['evidence'])) for entry in refused),
               role, variable, ', '.join(names)))
