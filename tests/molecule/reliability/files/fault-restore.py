#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault injection: stands in front of iptables-nft-restore / ip6tables-nft-restore on gw.

Without SNF_FAULT (or with --test) it runs the real command. Otherwise, on
the committing call, it breaks the transaction in the middle:
  invalid   a rule the kernel refuses (port 99999) half-way through
  jump      a jump to an owned chain that does not exist, half-way through
  kill      feeds half of the input to the real command, then SIGKILLs it
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
