#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault injection: stands in front of iptables-nft-restore / ip6tables-nft-restore on gw.

Without SNF_FAULT (or with --test) it runs the real command. Otherwise, on
the committing call, it breaks the transaction in the middle:
  invalid   a rule the kernel refuses (port 99999) half-way through
  jump      a jump to an owned chain that does not exist, half-way through
  kill      feeds half of the input to the real command, then SIGKILLs it
  enomem    runs the real command with its whole input in a full memory
            cgroup: it fills gw's cgroup (limited from the controller with
            the OOM killer off, see memcg.py) with memory of its own until
            what is left covers the command's user-space peak (measured
            here on a --test run of the same input) plus SNF_FAULT_KERNEL
            bytes, the kernel memory the same commit was measured to take.
            The command parses its input and sends the transaction; the
            kernel cannot charge the memory of all the rules and refuses
            the whole batch with ENOMEM. Nothing in the error is made up.
SNF_FAULT_FAMILY=ipv6 limits the fault to ip6tables (IPv4 commits first).
"""
import os
import signal
import subprocess
import sys
import time

name = os.path.basename(sys.argv[0])
real = os.path.join('/usr/sbin', name)
fault = os.environ.get('SNF_FAULT')
family = 'ipv6' if name.startswith('ip6') else 'ipv4'
if not fault or '--test' in sys.argv or (os.environ.get('SNF_FAULT_FAMILY') or family) != family:
    os.execv(real, [real] + sys.argv[1:])


def enomem(data):
    cg = '/sys/fs/cgroup/memory/'
    test = subprocess.Popen([real, '--test'] + sys.argv[1:], stdin=subprocess.PIPE)
    test.stdin.write(data)
    test.stdin.close()
    peak = os.wait4(test.pid, 0)[2].ru_maxrss * 1024
    with open(cg + 'memory.stat') as f:
        stat = dict(line.split() for line in f)
    with open(cg + 'memory.usage_in_bytes') as f:
        used = int(f.read()) - int(stat['total_inactive_file']) - int(stat['total_active_file'])
    with open(cg + 'memory.limit_in_bytes') as f:
        limit = int(f.read())
    room = peak + int(os.environ['SNF_FAULT_KERNEL'])
    if limit - used - room < 0 or limit > 1 << 40:
        sys.stderr.write('%s: memory cgroup limit %d, %d in use: no room to fill (fault injection)\n'
                         % (name, limit, used))
        sys.exit(2)
    fill = b'\x01' * (limit - used - room)  # written, so charged
    sys.stderr.write('%s: memory cgroup filled to %d of %d bytes, %d left (fault injection)\n'
                     % (name, limit - room, limit, room))
    sys.stderr.flush()
    done = subprocess.run([real] + sys.argv[1:], input=data, check=False)
    del fill
    sys.exit(done.returncode)


if fault == 'enomem':
    enomem(sys.stdin.buffer.read())
lines = sys.stdin.read().splitlines(True)
half = max(1, len(lines) // 2)
chain = next((line.split()[1] for line in lines if line.startswith('-A SNF-')), 'INPUT')
if fault == 'invalid':
    lines.insert(half, '-A %s -p tcp -m tcp --dport 99999 -j ACCEPT\n' % chain)
elif fault == 'jump':
    lines.insert(half, '-A %s -j SNF-RELF-MISSING\n' % chain)
if fault in ('invalid', 'jump'):
    done = subprocess.run([real] + sys.argv[1:], input=''.join(lines).encode(), check=False)
    sys.exit(done.returncode)
proc = subprocess.Popen([real] + sys.argv[1:], stdin=subprocess.PIPE)
proc.stdin.write(''.join(lines[:half]).encode())
proc.stdin.flush()
time.sleep(0.2)
proc.send_signal(signal.SIGKILL)
proc.wait()
sys.stderr.write('%s killed with SIGKILL after %d of %d input lines (fault injection)\n' % (name, half, len(lines)))
sys.exit(137)
