#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bounded forbidden traffic from lan: UDP datagrams and TCP SYNs to HOST.

  flood.py HOST UDP_PORT TCP_PORT STOPFILE OUTFILE [MAX_SECONDS] [MAX_PACKETS]
Detaches, sends about 1000 UDP datagrams and 50 TCP connection attempts a
second until STOPFILE exists or a bound is hit, then writes the counts.
"""
import errno
import json
import os
import socket
import sys
import time

host, uport, tport, stop, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
max_seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 180
max_packets = int(sys.argv[7]) if len(sys.argv) > 7 else 250000
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = dict(udp=0, tcp=0)
start = time.time()
pending = []
while not os.path.exists(stop) and time.time() - start < max_seconds and sent['udp'] < max_packets:
    for dummy in range(20):
        udp.sendto(b'forbidden', (host, uport))
        sent['udp'] += 1
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setblocking(False)
    try:
        tcp.connect((host, tport))
    except (OSError, IOError) as exc:
        if exc.errno not in (errno.EINPROGRESS, errno.EAGAIN):
            raise
    sent['tcp'] += 1
    pending.append(tcp)
    if len(pending) > 50:
        pending.pop(0).close()
    time.sleep(0.02)
sent['seconds'] = round(time.time() - start, 1)
with open(out + '.tmp', 'w') as handle:
    json.dump(sent, handle)
os.rename(out + '.tmp', out)
