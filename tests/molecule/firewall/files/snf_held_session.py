# SPDX-License-Identifier: GPL-3.0-or-later
"""A TCP session held open across a firewall change: the stand-in of the play's SSH session.

serve PORT: accept one connection, answer every line with "gw:<line>" until the peer closes.
hold HOST PORT SPORT READY GO: connect from source port SPORT, exchange a line, create READY,
wait until the file GO exists, exchange a second line on the same connection; print JSON
{before, after, error} (before/after: the answers, or null).
"""

import json
import os
import socket
import sys
import time


def serve(port, timeout):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('0.0.0.0', port))
    listener.listen(1)
    listener.settimeout(timeout)
    conn = listener.accept()[0]
    conn.settimeout(timeout)
    with conn, conn.makefile('rwb') as stream:
        for line in stream:
            stream.write(b'gw:' + line)
            stream.flush()
    print(json.dumps({'served': True}))


def hold(host, port, sport, ready, go, timeout):
    result = {'before': None, 'after': None, 'error': None}
    deadline = time.time() + timeout
    try:
        sock = None
        while sock is None:
            try:
                sock = socket.create_connection((host, port), timeout=5, source_address=('0.0.0.0', sport))
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        sock.settimeout(5)
        stream = sock.makefile('rwb')
        stream.write(b'before\n')
        stream.flush()
        result['before'] = stream.readline().decode().strip()
        with open(ready, 'w'):
            pass
        while not os.path.exists(go):
            if time.time() > deadline:
                raise RuntimeError('%s did not appear in %d s' % (go, timeout))
            time.sleep(0.2)
        stream.write(b'after\n')
        stream.flush()
        result['after'] = stream.readline().decode().strip() or None
        sock.close()
    except (OSError, RuntimeError) as exc:
        result['error'] = str(exc)
    print(json.dumps(result))


def main(argv):
    if argv[1] == 'serve':
        serve(int(argv[2]), float(argv[3]))
    else:
        hold(argv[2], int(argv[3]), int(argv[4]), argv[5], argv[6], float(argv[7]))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
