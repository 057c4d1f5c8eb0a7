# SPDX-License-Identifier: GPL-3.0-or-later
"""Connections against a per-source limit, for the firewall and gateway scenarios.

serve PORT...: (daemon) accept on every port, IPv4 and IPv6, and keep every connection open.
open HOST PORT COUNT hold|close: open COUNT TCP connections one after the other, holding them all open
(hold) or closing each at once (close); print JSON {open, refused, timeout}: refused is a TCP reset.
"""

import json
import os
import select
import socket
import sys


def serve(ports):
    if os.fork():
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    listeners = []
    for port in ports:
        for family, address in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address, port))
            sock.listen(64)
            listeners.append(sock)
    held = []
    while True:
        for sock in select.select(listeners, [], [])[0]:
            held.append(sock.accept()[0])


def open_connections(host, port, count, hold):
    out = {'open': 0, 'refused': 0, 'timeout': 0}
    kept = []
    for dummy in range(count):
        try:
            conn = socket.create_connection((host, port), timeout=3)
            out['open'] += 1
            if hold:
                kept.append(conn)
            else:
                conn.close()
        except ConnectionRefusedError:
            out['refused'] += 1
        except OSError:
            out['timeout'] += 1
    print(json.dumps(out))


if __name__ == '__main__':
    if sys.argv[1] == 'serve':
        serve([int(port) for port in sys.argv[2:]])
    else:
        open_connections(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == 'hold')
