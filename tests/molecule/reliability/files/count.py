#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Counts, at the peer, every IPv4 UDP and TCP packet from SOURCE to each port.

  count.py SOURCE STOPFILE OUTFILE [MAX_SECONDS]
Detaches; reads every IPv4 packet wan receives (AF_PACKET), so a packet
counts whether or not a socket would accept it; writes {port: packets}
when STOPFILE exists or after MAX_SECONDS.
"""
import json
import os
import socket
import struct
import sys
import time

source, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
max_seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 240
sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
sock.settimeout(0.2)
if os.fork():
    with open(out + '.ready', 'w') as handle:
        handle.write('ready')
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
wanted = socket.inet_aton(source)
counts = {}
start = time.time()
while not os.path.exists(stop) and time.time() - start < max_seconds:
    try:
        packet = sock.recv(256)
    except socket.timeout:
        continue
    if len(packet) < 24 or packet[12:16] != wanted or packet[9] not in (6, 17):
        continue
    offset = (packet[0] & 0x0F) * 4
    port = struct.unpack('!H', packet[offset + 2:offset + 4])[0]
    key = '%s/%d' % ('tcp' if packet[9] == 6 else 'udp', port)
    counts[key] = counts.get(key, 0) + 1
with open(out + '.tmp', 'w') as handle:
    json.dump(counts, handle)
os.rename(out + '.tmp', out)
