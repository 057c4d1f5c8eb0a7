# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Files a module writes on the host: atomic writes, symlinks and removals under a root, planned in check mode.

Private to the collection. Its own module, importing nothing of the collection, so that a module that only
writes files (sysctls) does not carry the rule engine in its AnsiballZ payload.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile


class BootRestore(object):
    """Writes and removes the files of a role's boot-time restore under root; each write is atomic (a temporary
    file in the same directory, checked, then renamed), and nothing is written in check mode."""

    def __init__(self, module, root):
        self.module = module
        self.root = root
        self.changes = {}
        self.diff = []

    def path(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def _current(self, path):
        try:
            with open(self.path(path), 'rb') as handle:
                return handle.read().decode('utf-8', 'replace'), os.stat(self.path(path)).st_mode & 0o7777
        except (IOError, OSError):
            return None, None

    def write(self, path, text, mode, check=None):
        before, before_mode = self._current(path)
        if before == text and before_mode == mode:
            return
        self.changes[path] = 'created' if before is None else 'updated'
        self.diff.append(dict(before_header=path, after_header=path, before=before or '', after=text))
        if self.module.check_mode:
            return
        real = self.path(path)
        directory = os.path.dirname(real)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        handle, scratch = tempfile.mkstemp(prefix='.snf-', dir=directory)
        try:
            with os.fdopen(handle, 'wb') as out:
                out.write(text.encode('utf-8'))
            os.chmod(scratch, mode)
            if os.geteuid() == 0:
                os.chown(scratch, 0, 0)
            if check:
                rc, dummy, err = self.module.run_command(check + [scratch], environ_update=dict(LC_ALL='C'))
                if rc != 0:
                    self.module.fail_json(msg='%s refused the rules file for %s; nothing was written: %s'
                                          % (' '.join(check), path, err.strip()), changes=self.changes)
            os.rename(scratch, real)
        finally:
            if os.path.exists(scratch):
                os.unlink(scratch)

    def link(self, path, target):
        real = self.path(path)
        if os.path.islink(real) and os.readlink(real) == target:
            return
        self.changes[path] = 'updated' if os.path.lexists(real) else 'created'
        if self.module.check_mode:
            return
        if not os.path.isdir(os.path.dirname(real)):
            os.makedirs(os.path.dirname(real), 0o755)
        if os.path.lexists(real):
            os.unlink(real)
        os.symlink(target, real)

    def remove(self, path):
        real = self.path(path)
        if not os.path.lexists(real):
            return
        self.changes[path] = 'removed'
        if not self.module.check_mode:
            os.unlink(real)
