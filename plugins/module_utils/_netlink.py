# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small netlink transport on the standard library only.

Private to the collection. It knows netlink framing (message headers,
attributes, dumps, acknowledgements) and network namespaces; it knows
nothing about conntrack. Python 3.8+, no third-party package: the modules
that use it run on every managed host as they are.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import ctypes
import errno
import os
import queue
import select
import socket
import struct
import threading

from ansible_collections.stateful.netfilter.plugins.module_utils._validate import show

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
SO_RCVBUFFORCE = 33
MSG_TRUNC = int(socket.MSG_TRUNC)

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

NLMSGHDR = struct.Struct('=IHHII')
NLMSG_LEN_TYPE_FLAGS = struct.Struct('=IHH')
NLMSG_LEN_TYPE_SEQ = struct.Struct('=IHxxI')
NLA_HDR = struct.Struct('=HH')
NLMSGERR = struct.Struct('=i')
NFGENMSG = struct.Struct('=BBH')

# A dump arrives in chunks of at most 32 KiB; a bigger buffer costs nothing.
RECV_SIZE = 65536
# Asked for; the kernel doubles it and root may exceed rmem_max (FORCE).
RCVBUF = 8 * 1024 * 1024
# What one queued error reply costs in the receive buffer (skb truesize,
# rounded up), used to size batches so that no reply is dropped.
ACK_COST = 1024
BATCH_MAX = 1024
# Dump chunks received ahead of the decoder (at most 32 KiB each).
PREFETCH = 64

CLONE_NEWNET = 0x40000000
NETNS_DIR = '/run/netns'


class NetlinkError(OSError):
    """The kernel answered a request with an error (errno set)."""


def nla(attr_type, payload):
    """One attribute: header, payload, padding to 4 bytes."""
    length = NLA_HDR.size + len(payload)
    return NLA_HDR.pack(length, attr_type) + payload + b'\0' * (-length % 4)


def nla_nested(attr_type, *children):
    return nla(attr_type | NLA_F_NESTED, b''.join(children))


def attributes(buf, start, end):
    """{type: (payload start, payload end)} of the attributes in buf[start:end].

    Only offsets are computed: payloads are decoded by whoever needs them.
    """
    found = {}
    unpack = NLA_HDR.unpack_from
    while start + 4 <= end:
        length, attr_type = unpack(buf, start)
        if length < 4:
            break
        found[attr_type & NLA_TYPE_MASK] = (start + 4, start + length)
        start += (length + 3) & ~3
    return found


def nfmessage(msg_type, flags, seq, family, version, attrs):
    """A complete nfnetlink message: nlmsghdr + nfgenmsg + attributes."""
    body = NFGENMSG.pack(family, version, 0) + attrs
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, flags, seq, 0) + body


class NetlinkSocket:
    """A NETLINK_NETFILTER socket with dump and batched-request helpers.

    Use as a context manager. The socket belongs to the network namespace
    the thread is in when it is created, whatever happens afterwards.
    """

    def __init__(self, protocol=NETLINK_NETFILTER, rcvbuf=RCVBUF):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        try:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            try:
                # Error replies then carry only the header of the failed
                # request (Linux 4.3+); without it ACK_COST still covers
                # an echoed delete request.
                self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            except OSError:
                pass
            self.sock.bind((0, 0))
            rcvbuf = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except OSError:
            self.sock.close()
            raise
        self.batch = max(1, min(BATCH_MAX, rcvbuf // (2 * ACK_COST)))
        self.seq = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.sock.close()

    def _next_seq(self):
        self.seq += 1
        return self.seq

    def _recv(self):
        data, dummy, flags, dummy = self.sock.recvmsg(RECV_SIZE)
        if flags & MSG_TRUNC:
            raise NetlinkError(errno.EMSGSIZE, 'netlink message truncated')
        return data

    def dump(self, msg_type, family, attrs=b'', version=0):
        """Yield (chunk, start, end) for each message of a dump.

        start/end delimit the attributes (after nlmsghdr and nfgenmsg).
        Raises NetlinkError when the kernel refuses the request.

        A reader thread receives the chunks while the caller works on the
        ones before: the kernel builds each chunk inside recvmsg(), so on a
        host with two cores or more building and decoding overlap.
        """
        seq = self._next_seq()
        self.sock.send(nfmessage(msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, family, version, attrs))
        chunks = queue.Queue(PREFETCH)
        stop = threading.Event()
        reader = threading.Thread(target=self._read_dump, args=(seq, chunks, stop))
        reader.daemon = True
        reader.start()
        unpack = NLMSG_LEN_TYPE_SEQ.unpack_from
        hdr = NLMSGHDR.size + NFGENMSG.size
        try:
            while True:
                chunk = chunks.get()
                if not isinstance(chunk, bytes):
                    raise chunk or NetlinkError(errno.EPIPE, 'netlink dump ended early')
                offset = 0
                size = len(chunk)
                while offset + NLMSGHDR.size <= size:
                    length, kind, msg_seq = unpack(chunk, offset)
                    if length < NLMSGHDR.size:
                        raise NetlinkError(errno.EBADMSG, 'malformed netlink message')
                    if msg_seq == seq:
                        if kind in (NLMSG_DONE, NLMSG_ERROR):
                            code = 0
                            if length >= NLMSGHDR.size + NLMSGERR.size:
                                code = NLMSGERR.unpack_from(chunk, offset + NLMSGHDR.size)[0]
                            if code:
                                raise NetlinkError(-code, os.strerror(-code))
                            return
                        yield chunk, offset + hdr, offset + length
                    offset += (length + 3) & ~3
        finally:
            # Let a reader blocked on the full queue finish the dump.
            stop.set()
            while reader.is_alive():
                try:
                    chunks.get(timeout=0.05)
                except queue.Empty:
                    pass

    def _read_dump(self, seq, chunks, stop):
        """Reader thread of dump(): queue chunks up to the end of the dump.

        Queues an OSError the socket raised, and None when it stops without
        having seen the end of the dump.
        """
        unpack = NLMSG_LEN_TYPE_SEQ.unpack_from
        ending = None
        ended = False
        try:
            while not stop.is_set():
                chunk = self._recv()
                chunks.put(chunk)
                offset = 0
                while offset + NLMSGHDR.size <= len(chunk):
                    length, kind, msg_seq = unpack(chunk, offset)
                    if length < NLMSGHDR.size or (msg_seq == seq and kind in (NLMSG_DONE, NLMSG_ERROR)):
                        ended = True
                        return
                    offset += (length + 3) & ~3
        except OSError as exc:
            ending = exc
        finally:
            if not ended:
                chunks.put(ending)

    def request(self, msg_type, family, attrs=b'', version=0):
        """Send one request (not a dump) with an acknowledgement; return its reply messages.

        Each reply is (chunk, start, end) as dump() yields them; reading stops
        at the acknowledgement. Raises NetlinkError when the kernel refuses.
        """
        seq = self._next_seq()
        self.sock.send(nfmessage(msg_type, NLM_F_REQUEST | NLM_F_ACK, seq, family, version, attrs))
        unpack = NLMSG_LEN_TYPE_SEQ.unpack_from
        hdr = NLMSGHDR.size + NFGENMSG.size
        replies = []
        while True:
            chunk = self._recv()
            offset = 0
            while offset + NLMSGHDR.size <= len(chunk):
                length, kind, msg_seq = unpack(chunk, offset)
                if length < NLMSGHDR.size:
                    raise NetlinkError(errno.EBADMSG, 'malformed netlink message')
                if msg_seq == seq:
                    if kind in (NLMSG_ERROR, NLMSG_DONE):
                        code = 0
                        if length >= NLMSGHDR.size + NLMSGERR.size:
                            code = NLMSGERR.unpack_from(chunk, offset + NLMSGHDR.size)[0]
                        if code:
                            raise NetlinkError(-code, os.strerror(-code))
                        return replies
                    if length >= hdr:
                        replies.append((chunk, offset + hdr, offset + length))
                offset += (length + 3) & ~3

    def subscribe(self, groups):
        """Join multicast groups (numbers, as the kernel's NFNLGRP_* enum has them)."""
        for group in groups:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)

    def listen(self, seconds, clock):
        """Yield (chunk, start, end, msg_type, flags) of every message multicast to this socket for seconds.

        start/end delimit the attributes, as dump() gives them. A receive
        buffer overrun (ENOBUFS: the kernel dropped messages it could not
        queue) does not end the listening: it is counted in self.overruns,
        and drops() tells how many messages were lost.
        """
        self.overruns = 0
        deadline = clock() + seconds
        unpack = NLMSG_LEN_TYPE_FLAGS.unpack_from
        hdr = NLMSGHDR.size + NFGENMSG.size
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        receive = self.sock.recvmsg
        while True:
            left = deadline - clock()
            if left <= 0:
                return
            if not poller.poll(max(1, int(left * 1000))):
                continue
            # Each event is a message of its own: drain what is queued, one
            # system call per message, before waiting again (a flood that
            # never lets the queue empty still ends at the deadline).
            drained = 0
            while True:
                drained += 1
                if not drained % 4096 and clock() >= deadline:
                    break
                try:
                    chunk, dummy, flags, dummy = receive(RECV_SIZE, 0, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno == errno.ENOBUFS:
                        self.overruns += 1
                        continue
                    raise
                if flags & MSG_TRUNC:
                    raise NetlinkError(errno.EMSGSIZE, 'netlink message truncated')
                offset = 0
                size = len(chunk)
                while offset + NLMSGHDR.size <= size:
                    length, kind, msg_flags = unpack(chunk, offset)
                    if length < NLMSGHDR.size:
                        raise NetlinkError(errno.EBADMSG, 'malformed netlink message')
                    if length >= hdr:
                        yield chunk, offset + hdr, offset + length, kind, msg_flags
                    offset += (length + 3) & ~3

    def drops(self):
        """Messages the kernel dropped for this socket (the Drops column of /proc/net/netlink), or None."""
        inode = os.fstat(self.sock.fileno()).st_ino
        for path in ('/proc/thread-self/net/netlink', '/proc/self/net/netlink'):
            try:
                with open(path) as handle:
                    lines = handle.read().splitlines()
            except (IOError, OSError):
                continue
            for line in lines[1:]:
                fields = line.split()
                if len(fields) >= 10 and fields[9] == str(inode):
                    return int(fields[8])
        return None

    def transact(self, messages):
        """Send (msg_type, family, version, attrs) requests in batches.

        Returns one errno per request (0 for success), in order. See
        _send_batch() for why no error reply can be lost.
        """
        results = []
        batch = []
        for request in messages:
            batch.append(request)
            if len(batch) == self.batch:
                results.extend(self._send_batch(batch))
                batch = []
        if batch:
            results.extend(self._send_batch(batch))
        return results

    def _send_batch(self, batch):
        """Send a batch in one write; read every reply to it.

        Only the last request carries NLM_F_ACK: the kernel answers each
        failed request whether or not it asked for it (netlink_rcv_skb acks
        any error) and handles the requests of one write in order, so the
        acknowledgement of the last request follows every error of the
        batch, and reading up to it drains them all. The batch is sized so
        that the receive buffer holds a reply for every request; a reply
        lost anyway (ENOBUFS) raises NetlinkError.
        """
        first = self.seq + 1
        last = first + len(batch) - 1
        data = []
        for msg_type, family, version, attrs in batch:
            seq = self._next_seq()
            flags = NLM_F_REQUEST | (NLM_F_ACK if seq == last else 0)
            data.append(nfmessage(msg_type, flags, seq, family, version, attrs))
        self.sock.sendall(b''.join(data))
        results = [0] * len(batch)
        unpack = NLMSG_LEN_TYPE_SEQ.unpack_from
        while True:
            try:
                chunk = self._recv()
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    raise NetlinkError(errno.ENOBUFS, 'netlink replies were lost (receive buffer overrun)')
                raise
            offset = 0
            done = False
            while offset + NLMSGHDR.size <= len(chunk):
                length, kind, msg_seq = unpack(chunk, offset)
                if length < NLMSGHDR.size:
                    raise NetlinkError(errno.EBADMSG, 'malformed netlink message')
                if kind == NLMSG_ERROR and first <= msg_seq <= last:
                    results[msg_seq - first] = -NLMSGERR.unpack_from(chunk, offset + NLMSGHDR.size)[0]
                    done = done or msg_seq == last
                offset += (length + 3) & ~3
            if done:
                return results


def _libc_setns(fd, nstype):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


_setns = getattr(os, 'setns', _libc_setns)


class NamespaceError(Exception):
    """A named network namespace cannot be entered."""


@contextlib.contextmanager
def network_namespace(name, param='netns'):
    """Run the body in the named network namespace (None: stay here).

    The namespace must exist under /run/netns (as `ip netns add` creates
    it); it is never created. The thread returns to its original
    namespace when the body ends, also on error.
    """
    if name is None:
        yield
        return
    if not name or '/' in name or name in ('.', '..') or '\0' in name:
        raise NamespaceError('%s: %s is not a namespace name' % (param, show(name)))
    path = os.path.join(NETNS_DIR, name)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NamespaceError('%s: network namespace %s does not exist (no %s)' % (param, show(name), path))
    except OSError as exc:
        raise NamespaceError('%s: cannot open %s: %s' % (param, path, exc.strerror))
    try:
        origin = os.open('/proc/thread-self/ns/net', os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                _setns(target, CLONE_NEWNET)
            except OSError as exc:
                if exc.errno == errno.EPERM:
                    raise NamespaceError('%s: entering %s needs root (CAP_SYS_ADMIN)' % (param, show(name)))
                raise NamespaceError('%s: %s is not a network namespace (%s)' % (param, path, exc.strerror))
            try:
                yield
            finally:
                _setns(origin, CLONE_NEWNET)
        finally:
            os.close(origin)
    finally:
        os.close(target)
