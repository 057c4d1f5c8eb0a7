# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether a role's boot-time restore would ever run on a host.

Both roles persist their rules as a systemd unit of the collection's own
(snf-firewall.service, snf-nat-gateway.service). On a host where systemd is
not running (no /run/systemd/system: a container, a host with another init)
nothing would read those files at boot, so persistence requested there is
refused before any change, unless the role is told that the files are wanted
anyway (an image built in a container or chroot that boots with systemd
later; a lab that runs the restore scripts itself).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# role -> (the persistence variable, the variable that drops the systemd requirement, the unit)
VARIABLES = {
    'firewall': ('firewall_persist', 'firewall_persist_require_systemd', 'snf-firewall.service'),
    'nat_gateway': ('nat_gateway_persist', 'nat_gateway_persist_require_systemd', 'snf-nat-gateway.service'),
}


def check(role, persist, require_systemd, systemd_running, host='the host'):
    """The message to refuse with, '' when the role may go on."""
    if role not in VARIABLES:
        raise ValueError('unknown role %r' % (role,))
    persist_variable, require_variable, unit = VARIABLES[role]
    if not persist or not require_systemd or systemd_running:
        return ''
    return ('%s: %s is true, but systemd is not running there (no /run/systemd/system), so nothing would run '
            '%s to restore the rules at boot. Set %s: false to keep no boot-time restore, or %s: false to '
            'install the files anyway (an image that boots with systemd later). Nothing was changed.'
            % (host, persist_variable, unit, persist_variable, require_variable))
