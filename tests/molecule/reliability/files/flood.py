#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bounded forbidden traffic from lan: UDP datagrams and TCP SYNs to HOST4 and HOST6.

  flood.py HOST4 HOST6 UDP_PORT TCP_PORT STOPFILE OUTFILE [MAX_SECONDS] [MAX_PACKETS]
Detaches, sends to each address (IPv4 and IPv6 alike) about 1000 UDP
datagrams and 50 TCP connection attempts a second until STOPFILE exists or a
bound is hit (MAX_PACKETS: UDP datagrams per family), then writes the counts
per family: {"ipv4": {"udp": N, "tcp": N}, "ipv6": {...}, "seconds": S}.
"""
import errno
import json
import os
import socket
import sys
import time

host4, host6, uport, tport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
stop, out = sys.argv[5], sys.argv[6]
max_seconds = float(sys.argv[7]) if len(sys.argv) > 7 else 180
max_packets = int(sys.argv[8]) if len(sys.argv) > 8 else 250000
targets = (('ipv4', socket.AF_INET, host4), ('ipv6', socket.AF_INET6, host6))
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
udp = dict((name, socket.socket(family, socket.SOCK_DGRAM)) for name, family, host in targets)
sent = dict((name, dict(udp=0, tcp=0)) for name, family, host in targets)
pending = dict((name, []) for name, family, host in targets)
start = time.time()
while (not os.path.exists(stop) and time.time() - start < max_seconds
       and max(sent[name]['udp'] for name in sent) < max_packets):
    for name, family, host in targets:
        for dummy in range(20):
            udp[name].sendto(b'forbidden', (host, uport))
            sent[name]['udp'] += 1
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setblocking(False)
        try:
            tcp.connect((host, tport))
        except (OSError, IOError) as exc:
            if exc.errno not in (errno.EINPROGRESS, errno.EAGAIN):
                raise
        sent[name]['tcp'] += 1
        pending[name].append(tcp)
        if len(pending[name]) > 50:
            pending[name].pop(0).close()
    time.sleep(0.02)
sent['seconds'] = round(time.time() - start, 1)
with open(out + '.tmp', 'w') as handle:
    json.dump(sent, handle)
os.rename(out + '.tmp', out)
