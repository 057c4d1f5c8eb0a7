# SPDX-License-Identifier: GPL-3.0-or-later
"""Bench-only callback: the wall time of every task on every host, as JSON.

Enabled by bench/fleet_bench.py (ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins,
ANSIBLE_CALLBACKS_ENABLED=snf_host_timer); writes
[{"host", "task", "seconds", "status"}, ...] to $SNF_HOST_TIMER_FILE at the
end of the run. Not part of the collection.
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
    name: snf_host_timer
    type: aggregate
    short_description: per-host task timings for bench/fleet_bench.py
    description: Writes the wall time of every task on every host to $SNF_HOST_TIMER_FILE.
    requirements: [enable in configuration]
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'snf_host_timer'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._started = {}
        self._rows = []

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _done(self, result, status):
        key = (result._host.get_name(), result._task._uuid)
        start = self._started.pop(key, None)
        if start is not None:
            self._rows.append({'host': key[0], 'task': result._task.get_name(),
                               'seconds': round(time.monotonic() - start, 4), 'status': status})

    def v2_runner_on_ok(self, result):
        self._done(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._done(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._done(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get('SNF_HOST_TIMER_FILE')
        if path:
            with open(path, 'w') as handle:
                json.dump(self._rows, handle)
