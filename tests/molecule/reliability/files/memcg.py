#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""The memory cgroup of a lab container, seen and limited from the controller (host root).

  memcg.py CONTAINER show                 JSON: usage, file pages, unreclaimable, peak, limit, failcnt
  memcg.py CONTAINER settle               the same, 2 s later (nf_tables frees replaced rules after the commit)
  memcg.py CONTAINER reset-peak           2 s later, zero the peak (memory.max_usage_in_bytes), then show
  memcg.py CONTAINER limit BYTES SECONDS  OOM killer off, limit = unreclaimable usage + BYTES; a detached
                                          watchdog lifts both after SECONDS unless `lift` came first
  memcg.py CONTAINER lift                 no limit, OOM killer back on

Only the container's own cgroup (found through its init process) is
written; nothing of the host's. cgroup v1 only: its oom_kill_disable makes a
charge the cgroup cannot take fail with ENOMEM in the kernel instead of
killing a process (with the killer on, the kernel would kill).
"""
import json
import os
import subprocess
import sys
import time


def cgroup_dir(container):
    pid = subprocess.run(['podman', 'inspect', '--format', '{{.State.Pid}}', container],
                         check=True, capture_output=True, text=True).stdout.strip()
    with open('/proc/%s/cgroup' % pid) as f:
        for line in f:
            dummy, controllers, path = line.rstrip('\n').split(':', 2)
            if 'memory' in controllers.split(','):
                return '/sys/fs/cgroup/memory' + path
    sys.exit('%s: no cgroup v1 memory controller (cgroup v2 has no oom_kill_disable); not supported' % container)


def read(cg, name):
    with open(os.path.join(cg, name)) as f:
        return f.read()


def write(cg, name, value):
    with open(os.path.join(cg, name), 'w') as f:
        f.write(str(value))


def show(cg):
    stat = dict(line.split() for line in read(cg, 'memory.stat').splitlines())
    usage = int(read(cg, 'memory.usage_in_bytes'))
    files = int(stat['total_inactive_file']) + int(stat['total_active_file'])
    return dict(usage=usage, files=files, unreclaimable=usage - files,
                peak=int(read(cg, 'memory.max_usage_in_bytes')), limit=int(read(cg, 'memory.limit_in_bytes')),
                failcnt=int(read(cg, 'memory.failcnt')),
                oom_kill_disable=int(read(cg, 'memory.oom_control').split()[1]))


def lift(cg):
    write(cg, 'memory.limit_in_bytes', -1)
    write(cg, 'memory.oom_control', 0)


def main():
    container, verb = sys.argv[1:3]
    cg = cgroup_dir(container)
    if verb in ('settle', 'reset-peak'):
        time.sleep(2)
    if verb == 'reset-peak':
        write(cg, 'memory.max_usage_in_bytes', 0)
    elif verb == 'limit':
        headroom, seconds = int(sys.argv[3]), float(sys.argv[4])
        write(cg, 'memory.oom_control', 1)
        write(cg, 'memory.limit_in_bytes', show(cg)['unreclaimable'] + headroom)
        if os.fork() == 0:
            # Watchdog: a user-space page fault at the limit waits (the OOM
            # killer is off) until memory is freed or the limit goes.
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(0.5)
                try:
                    if int(read(cg, 'memory.oom_control').split()[1]) == 0:
                        os._exit(0)
                except OSError:
                    os._exit(0)
            try:
                lift(cg)
            except OSError:
                pass
            os._exit(0)
    elif verb == 'lift':
        lift(cg)
    elif verb not in ('show', 'settle'):
        sys.exit('unknown verb %s' % verb)
    print(json.dumps(show(cg)))


if __name__ == '__main__':
    main()
