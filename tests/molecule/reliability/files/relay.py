#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""ssh ProxyCommand run inside the wan container: relays stdin/stdout to HOST PORT.

The controller's SSH session to gw thus travels over the lab's wan network,
into gw's eth1 and through gw's INPUT chain, like a remote operator's.
"""
import os
import select
import socket
import sys

sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
sock.settimeout(None)
stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
inputs = [stdin, sock]
while inputs:
    ready = select.select(inputs, [], [])[0]
    if stdin in ready:
        data = os.read(stdin, 65536)
        if data:
            sock.sendall(data)
        else:
            sock.shutdown(socket.SHUT_WR)
            inputs.remove(stdin)
    if sock in ready:
        data = sock.recv(65536)
        if not data:
            break
        os.write(stdout, data)
