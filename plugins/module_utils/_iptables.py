# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The iptables backend: read tables with *-save, write them with *-restore.

Private to the collection. Drives whichever back end the host's `iptables`
selects (nf_tables or legacy) through its save/restore commands, with
argument lists (never a shell) and the C locale.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stateful.netfilter.plugins.module_utils._rules import empty_table, parse_save

C_LOCALE = {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}
COMMAND_PREFIX = {'ipv4': 'iptables', 'ipv6': 'ip6tables'}
BACKENDS = ('nft', 'legacy')
# Seconds iptables-restore waits for the xtables lock held by another writer.
LOCK_WAIT = '10'


class CommandError(Exception):
    """An external command failed; carries what ran and what it said."""

    def __init__(self, cmd, rc, stdout, stderr):
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        super(CommandError, self).__init__('%s failed with rc %d: %s' % (' '.join(cmd), rc, stderr.strip()))

    def result(self):
        """Keyword arguments for module.fail_json()."""
        return dict(msg=str(self), cmd=self.cmd, rc=self.rc, stdout=self.stdout, stderr=self.stderr)


def detect_backend(module):
    """'nft' or 'legacy', from `iptables --version` ("iptables v1.8.9 (nf_tables)")."""
    cmd = [module.get_bin_path('iptables', required=True), '--version']
    rc, out, err = module.run_command(cmd, environ_update=C_LOCALE)
    if rc != 0:
        raise CommandError(cmd, rc, out, err)
    return 'nft' if '(nf_tables)' in out else 'legacy'


# Linux 6.17 and later can be built without legacy xtables
# (CONFIG_NETFILTER_XTABLES_LEGACY unset): the kernel then answers the legacy
# get/setsockopt interface with ENOPROTOOPT, which libiptc prints as
# "iptables who? (do you need to insmod?)"; the same when an older kernel's
# ip_tables/ip6_tables module cannot be loaded. *-legacy-save -t TABLE says so
# (tests/unit/fixtures/iptables/legacy-refused-*.stderr); the engine reads
# every table before it changes one, so this is seen before any change.
LEGACY_REFUSED = 'who? (do you need to insmod?)'


def legacy_refused(backend, family, stderr):
    """The message to fail with when the kernel refuses the legacy back end, else None."""
    if backend != 'legacy' or LEGACY_REFUSED not in (stderr or ''):
        return None
    prefix = COMMAND_PREFIX[family]
    return ('The legacy iptables back end is selected (%s --version says "legacy"), but this kernel refuses legacy '
            'xtables: Linux 6.17 and later can be built without CONFIG_NETFILTER_XTABLES_LEGACY, and older kernels '
            'need the %s module. Nothing was changed. Select the nf_tables back end (on Debian and Ubuntu: '
            'update-alternatives --set iptables /usr/sbin/iptables-nft and '
            'update-alternatives --set ip6tables /usr/sbin/ip6tables-nft), or boot a kernel with legacy xtables.'
            % (prefix, 'ip_tables' if family == 'ipv4' else 'ip6_tables'))


class Backend(object):
    """Save and restore of one family's tables through the selected back end."""

    def __init__(self, module, family, backend):
        self.module = module
        self.family = family
        self.backend = backend
        self.save_cmd = self._find('save', backend)
        self.restore_cmd = self._find('restore', backend)

    def _find(self, verb, backend, required=True):
        prefix = COMMAND_PREFIX[self.family]
        names = ['%s-%s-%s' % (prefix, backend, verb)]
        if backend == 'legacy':
            # iptables before 1.8 has no -legacy- names.
            names.append('%s-%s' % (prefix, verb))
        for name in names:
            path = self.module.get_bin_path(name)
            if path:
                return path
        if required:
            self.module.fail_json(msg='%s not found: the %s back end of %s is not installed'
                                  % (' or '.join(names), backend, prefix))
        return None

    def _run(self, cmd, data=None):
        rc, out, err = self.module.run_command(cmd, data=data, binary_data=True, environ_update=C_LOCALE)
        if rc != 0:
            refused = legacy_refused(self.backend, self.family, err)
            if refused:
                self.module.fail_json(msg=refused, cmd=cmd, rc=rc, stdout=out, stderr=err)
            raise CommandError(cmd, rc, out, err)
        return out

    def read(self, table):
        """The table as a _rules.Table (the kernel's built-in state when it does not exist yet)."""
        tables, unknown = parse_save(self._run([self.save_cmd, '-t', table]))
        for line in unknown:
            self.module.warn('%s: line not understood: %s' % (self.save_cmd, line))
        return tables.get(table) or empty_table(table)

    def test(self, text):
        """Let iptables-restore parse the transaction without committing it."""
        self._run([self.restore_cmd, '--noflush', '--test', '--wait=%s' % LOCK_WAIT], data=text)

    def apply(self, text):
        """Commit one transaction; the kernel takes all of it or none."""
        self._run([self.restore_cmd, '--noflush', '--wait=%s' % LOCK_WAIT], data=text)

    def other_backend_rules(self):
        """True when the back end the host does not select also holds rules or a DROP policy.

        Reads without -t, so that no table is created as a side effect.
        """
        other = [name for name in BACKENDS if name != self.backend][0]
        cmd = self._find('save', other, required=False)
        if not cmd:
            return False
        rc, out, dummy = self.module.run_command([cmd], environ_update=C_LOCALE)
        if rc != 0:
            return False
        tables, dummy = parse_save(out)
        return any(any(rules) or 'DROP' in table.policies.values()
                   for table in tables.values() for rules in table.rules.values())
