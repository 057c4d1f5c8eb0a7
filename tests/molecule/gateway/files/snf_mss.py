#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""The MSS option of the SYNs a lab host receives, read from the packets themselves (IPv4), without tcpdump.

  snf_mss.py serve --port P [--log /run/snf-mss.log]
      Daemon: listens on TCP port P (so that handshakes complete; unless another server does) and, on a raw
      socket (NET_RAW), reads every TCP SYN to port P, logging {"src", "sport", "mss"}: the MSS option as it
      arrived.
  snf_mss.py connect HOST --port P
      Opens one connection and prints JSON {"ok", "sport", "error"}.
  snf_mss.py seen --sport N [--log /run/snf-mss.log]
      Prints the logged SYN of that source port as JSON (null when none arrived).
"""

import argparse
import json
import os
import socket
import struct
import sys
import time

LOG = '/run/snf-mss.log'


def _mss(options):
    """The MSS option (kind 2) of a TCP header's options, or None."""
    index = 0
    while index < len(options):
        kind = options[index]
        if kind == 0:
            break
        if kind == 1:
            index += 1
            continue
        if index + 1 >= len(options):
            break
        length = options[index + 1]
        if kind == 2 and length == 4:
            return struct.unpack('!H', options[index + 2:index + 4])[0]
        index += max(length, 2)
    return None


def serve(args):
    if os.fork():
        return
    os.setsid()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(('0.0.0.0', args.port))
        listener.listen(16)
        listener.setblocking(False)
    except OSError:
        listener.close()  # another server answers on the port: only read its SYNs
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    while True:
        packet = raw.recv(65535)
        try:
            while True:
                listener.accept()[0].close()
        except OSError:
            pass
        header = (packet[0] & 15) * 4
        tcp = packet[header:]
        if len(tcp) < 20:
            continue
        sport, dport = struct.unpack('!HH', tcp[:4])
        offset, flags = (tcp[12] >> 4) * 4, tcp[13]
        if dport != args.port or not flags & 0x02 or flags & 0x10:
            continue
        with open(args.log, 'a') as handle:
            handle.write(json.dumps(dict(src=socket.inet_ntoa(packet[12:16]), sport=sport,
                                         mss=_mss(bytearray(tcp[20:offset])))) + '\n')


def connect(args):
    result = dict(ok=False, sport=None, error=None)
    try:
        conn = socket.create_connection((args.host, args.port), timeout=4)
        result['sport'] = conn.getsockname()[1]
        result['ok'] = True
        conn.close()
    except OSError as exc:
        result['error'] = str(exc)
    print(json.dumps(result))


def seen(args):
    found = None
    for dummy in range(20):
        if os.path.exists(args.log):
            with open(args.log) as handle:
                for line in handle:
                    entry = json.loads(line)
                    if entry['sport'] == args.sport:
                        found = entry
        if found:
            break
        time.sleep(0.1)
    print(json.dumps(found))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command')
    p_serve = sub.add_parser('serve')
    p_serve.add_argument('--port', type=int, required=True)
    p_serve.add_argument('--log', default=LOG)
    p_connect = sub.add_parser('connect')
    p_connect.add_argument('host')
    p_connect.add_argument('--port', type=int, required=True)
    p_seen = sub.add_parser('seen')
    p_seen.add_argument('--sport', type=int, required=True)
    p_seen.add_argument('--log', default=LOG)
    args = parser.parse_args()
    handlers = dict(serve=serve, connect=connect, seen=seen)
    if args.command not in handlers:
        parser.print_help()
        return 2
    handlers[args.command](args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
