# SPDX-License-Identifier: GPL-3.0-or-later
"""Bench-only callback: a run's wall time split into tasks that ran on the host and the rest.

Enabled by bench/_role_bench.py (ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins,
ANSIBLE_CALLBACKS_ENABLED=snf_bench_split); writes {"controller": seconds,
"host": seconds, "host_tasks": count} to $SNF_BENCH_SPLIT at the end of the
run, and "tasks": [[name, seconds], ...] of the host tasks. A task counts as a host task when it ran an action other than the
controller-only ones below (planning, checks, includes) and was not skipped;
the rest is controller time. Generic: it knows no role's task names. Not
part of the collection.
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
    name: snf_bench_split
    type: aggregate
    short_description: host and controller time of a run for bench/_role_bench.py
    description: Writes the seconds of host tasks and of controller-only tasks to $SNF_BENCH_SPLIT.
    requirements: [enable in configuration]
'''

LOCAL = ('set_fact', 'assert', 'fail', 'debug', 'include_tasks', 'import_tasks', 'include_role', 'meta',
         'validate_argument_spec', 'include_vars')


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'snf_bench_split'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.current = None
        self.ran = False
        self.split = dict(controller=0.0, host=0.0, host_tasks=0, tasks=[])

    def _close(self):
        if self.current:
            name, action, start = self.current
            host = self.ran and action.split('.')[-1] not in LOCAL
            seconds = time.monotonic() - start
            self.split['host' if host else 'controller'] += seconds
            if host:
                self.split['host_tasks'] += 1
                self.split['tasks'].append([name, round(seconds, 2)])
        self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = (task.get_name(), task.action, time.monotonic())
        self.ran = False

    def v2_runner_item_on_ok(self, result):
        self.ran = True

    def v2_runner_on_ok(self, result):
        self.ran = self.ran or not result._result.get('skipped')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self.ran = True

    def v2_playbook_on_stats(self, stats):
        self._close()
        with open(os.environ['SNF_BENCH_SPLIT'], 'w') as handle:
            json.dump(self.split, handle)
