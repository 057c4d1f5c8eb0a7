#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small FTP server and client for the lab (IPv4; PORT, PASV, RETR, LIST), copied to lab hosts by the scenario.

  snf_ftp.py serve [--port 21] [--log /run/snf-ftp.log]
      Daemon: serves one file, "probe.bin" (PROBE_SIZE bytes), to any user and password. In passive mode it
      announces the address the control connection reached (as a server behind NAT does); in active mode it
      connects from an ephemeral port to the address of the PORT command. Logs every data connection.
  snf_ftp.py get HOST [--port 21] [--mode active|passive] [--hold SECONDS [--release FILE]] [--timeout 4]
      Fetches probe.bin with Python's ftplib and prints JSON: {"ok", "mode", "bytes", "reply" (the 227 reply of
      PASV, or the PORT command sent), "data" (local and peer address of the data connection), "error"}.
      In passive mode it connects to the address of the 227 reply (what the helper of a NAT gateway rewrites),
      not to the control connection's peer. --hold waits between PASV/PORT and the transfer, so that the
      expectation a conntrack helper made can be read meanwhile; with --release, only until FILE exists.

Always exits 0 after printing JSON, so a failed transfer is data, not an error.
"""

import argparse
import ftplib
import json
import os
import socket
import sys
import threading
import time

PROBE_SIZE = 100000
LOG = '/run/snf-ftp.log'


def _payload():
    return bytes(bytearray(index % 251 for index in range(PROBE_SIZE)))


class Session(threading.Thread):
    def __init__(self, control, log):
        super(Session, self).__init__()
        self.daemon = True
        self.control = control
        self.reader = control.makefile('rb')
        self.log = log
        self.passive = None
        self.active = None

    def reply(self, text):
        self.control.sendall((text + '\r\n').encode('ascii'))

    def data_connection(self):
        if self.passive is not None:
            self.passive.settimeout(5)
            conn, peer = self.passive.accept()
            self.passive.close()
            self.passive = None
            return conn
        if self.active is not None:
            conn = socket.create_connection(self.active, timeout=3)
            self.active = None
            return conn
        raise OSError('no PORT or PASV')

    def send_data(self, data):
        try:
            conn = self.data_connection()
        except OSError as exc:
            self.reply("425 Can't open data connection: %s" % exc)
            return
        self.reply('150 Opening data connection')
        with open(self.log, 'a') as handle:
            handle.write(json.dumps(dict(local=conn.getsockname()[:2], peer=conn.getpeername()[:2])) + '\n')
        conn.sendall(data)
        conn.close()
        self.reply('226 Transfer complete')

    def run(self):
        try:
            self.reply('220 snf-ftp ready')
            for line in self.reader:
                command, dummy, argument = line.decode('ascii', 'replace').strip().partition(' ')
                command = command.upper()
                if command == 'USER':
                    self.reply('331 Password please')
                elif command == 'PASS':
                    self.reply('230 Logged in')
                elif command in ('TYPE', 'MODE', 'STRU'):
                    self.reply('200 OK')
                elif command == 'SYST':
                    self.reply('215 UNIX Type: L8')
                elif command == 'PWD':
                    self.reply('257 "/"')
                elif command == 'PASV':
                    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    listener.bind((self.control.getsockname()[0], 0))
                    listener.listen(1)
                    self.passive = listener
                    address, port = listener.getsockname()[:2]
                    self.reply('227 Entering Passive Mode (%s,%d,%d)' % (address.replace('.', ','), port >> 8,
                                                                         port & 255))
                elif command == 'PORT':
                    parts = argument.split(',')
                    self.active = ('.'.join(parts[:4]), int(parts[4]) * 256 + int(parts[5]))
                    self.reply('200 PORT OK')
                elif command == 'RETR':
                    self.send_data(_payload())
                elif command in ('LIST', 'NLST'):
                    self.send_data(b'-rw-r--r-- 1 ftp ftp %d Dec  5 00:00 probe.bin\r\n' % PROBE_SIZE)
                elif command == 'QUIT':
                    self.reply('221 Bye')
                    break
                else:
                    self.reply('502 Not implemented')
        except OSError:
            pass
        finally:
            self.control.close()


def serve(args):
    if os.fork():
        return
    os.setsid()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(('0.0.0.0', args.port))
    except OSError:
        os._exit(0)  # a server runs already (prepare runs more than once)
    listener.listen(16)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    while True:
        control, dummy = listener.accept()
        Session(control, args.log).start()


def _hold(args):
    deadline = time.time() + args.hold
    while time.time() < deadline:
        if args.release and os.path.exists(args.release):
            break
        time.sleep(0.1)


def get(args):
    result = dict(ok=False, mode=args.mode, bytes=0, reply=None, data=None, error=None)
    ftp = ftplib.FTP(timeout=args.timeout)
    # Connect where the 227 reply says, as a client that trusts it (what a helper rewrites is what is tested).
    ftp.trust_server_pasv_ipv4_address = True
    try:
        ftp.connect(args.host, args.port)
        ftp.login('probe', 'probe')
        ftp.voidcmd('TYPE I')
        if args.mode == 'passive':
            result['reply'] = ftp.sendcmd('PASV')
            host, port = ftplib.parse227(result['reply'])
            _hold(args)
            conn = socket.create_connection((host, port), timeout=args.timeout)
            ftp.sendcmd('RETR probe.bin')
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind((ftp.sock.getsockname()[0], 0))
            listener.listen(1)
            listener.settimeout(args.timeout)
            address, port = listener.getsockname()[:2]
            result['reply'] = 'PORT %s,%d,%d' % (address.replace('.', ','), port >> 8, port & 255)
            ftp.voidcmd(result['reply'])
            _hold(args)
            ftp.sendcmd('RETR probe.bin')
            conn, dummy = listener.accept()
            listener.close()
        result['data'] = dict(local=conn.getsockname()[:2], peer=conn.getpeername()[:2])
        conn.settimeout(args.timeout)
        received = b''
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        conn.close()
        ftp.voidresp()
        result['bytes'] = len(received)
        result['ok'] = received == _payload()
        ftp.quit()
    except (OSError, EOFError, ftplib.Error) as exc:
        result['error'] = '%s: %s' % (type(exc).__name__, exc)
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command')
    p_serve = sub.add_parser('serve')
    p_serve.add_argument('--port', type=int, default=21)
    p_serve.add_argument('--log', default=LOG)
    p_get = sub.add_parser('get')
    p_get.add_argument('host')
    p_get.add_argument('--port', type=int, default=21)
    p_get.add_argument('--mode', choices=['active', 'passive'], default='passive')
    p_get.add_argument('--hold', type=float, default=0)
    p_get.add_argument('--release')
    p_get.add_argument('--timeout', type=float, default=4)
    args = parser.parse_args()
    if args.command == 'serve':
        serve(args)
    elif args.command == 'get':
        get(args)
    else:
        parser.print_help()
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
