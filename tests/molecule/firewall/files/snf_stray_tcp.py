# SPDX-License-Identifier: GPL-3.0-or-later
"""Send one stray TCP segment (no connection behind it) and report whether a
RST came back: python3 snf_stray_tcp.py SRC DST PORT FLAGS (FLAGS: A, FA, ...).

A host that answers a segment of no known connection answers with a RST; a
firewall that drops the segment (conntrack INVALID) leaves it unanswered.
Prints JSON {"flags", "sport", "rst"}.
"""

import json
import random
import select
import socket
import struct
import sys
import time

FLAG_BITS = {'F': 0x01, 'S': 0x02, 'R': 0x04, 'P': 0x08, 'A': 0x10}


def checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def main():
    src, dst, port, flags = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    sport = random.randint(20000, 60000)
    bits = sum(FLAG_BITS[c] for c in flags)
    seq, ack = random.getrandbits(32), random.getrandbits(32)
    header = struct.pack('!HHIIBBHHH', sport, port, seq, ack, 5 << 4, bits, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, socket.IPPROTO_TCP, len(header))
    header = header[:16] + struct.pack('!H', checksum(pseudo + header)) + header[18:]
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    sock.sendto(header, (dst, 0))
    rst = False
    deadline = time.time() + 2
    while time.time() < deadline and not rst:
        ready = select.select([sock], [], [], max(0, deadline - time.time()))[0]
        if not ready:
            break
        data, peer = sock.recvfrom(4096)
        tcp = data[(data[0] & 0x0F) * 4:]
        their_sport, their_dport = struct.unpack('!HH', tcp[:4])
        if peer[0] == dst and their_sport == port and their_dport == sport and tcp[13] & FLAG_BITS['R']:
            rst = True
    print(json.dumps({'flags': flags, 'sport': sport, 'rst': rst}))


if __name__ == '__main__':
    main()
