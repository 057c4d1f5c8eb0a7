#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Counts, at the peer, every UDP and TCP packet from SOURCE4 and SOURCE6 to each port.

  count.py SOURCE4 SOURCE6 STOPFILE OUTFILE [MAX_SECONDS]
Detaches; reads every IPv4 and IPv6 packet wan receives (AF_PACKET), so a
packet counts whether or not a socket would accept it; writes
{"ipv4": {"udp/PORT": packets, ...}, "ipv6": {...}} half a second after
STOPFILE exists or MAX_SECONDS have passed. An IPv6 packet is read by its fixed header only (the
flood sends no extension headers).
"""
import json
import os
import select
import socket
import struct
import sys
import time

source4, source6, stop, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
max_seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 240
# family: (ethertype, wanted source, source offset, protocol offset, minimum length)
layouts = {
    'ipv4': (0x0800, socket.inet_pton(socket.AF_INET, source4), 12, 9, 24),
    'ipv6': (0x86DD, socket.inet_pton(socket.AF_INET6, source6), 8, 6, 44),
}
socks = {}
for name, layout in layouts.items():
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(layout[0]))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setblocking(False)
    socks[sock] = name
# The sockets are open before the command returns: from then on every packet counts.
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
counts = dict((name, {}) for name in layouts)


def count(name, packet):
    wanted, src, proto, minimum = layouts[name][1:]
    if len(packet) < minimum or packet[src:src + len(wanted)] != wanted:
        return
    offset = (packet[0] & 0x0F) * 4 if name == 'ipv4' else 40
    if packet[proto] not in (6, 17):
        return
    port = struct.unpack('!H', packet[offset + 2:offset + 4])[0]
    key = '%s/%d' % ('tcp' if packet[proto] == 6 else 'udp', port)
    counts[name][key] = counts[name].get(key, 0) + 1


# Once STOPFILE appears (or the time is up), the packets still on their way (the senders saw it at the same
# moment) are read for half a second more, so that the last one sent is not missed.
start, until = time.time(), None
while until is None or time.time() < until:
    if until is None and (os.path.exists(stop) or time.time() - start >= max_seconds):
        until = time.time() + 0.5
    ready = select.select(list(socks), [], [], 0.1)[0]
    for sock in ready:
        while True:
            try:
                packet = sock.recv(256)
            except BlockingIOError:
                break
            count(socks[sock], packet)
with open(out + '.tmp', 'w') as handle:
    json.dump(counts, handle)
os.rename(out + '.tmp', out)
