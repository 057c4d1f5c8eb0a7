# SPDX-License-Identifier: GPL-3.0-or-later
"""The netlink transport: framing, dumps, acknowledged batches, namespaces."""

import errno
import os
import socket
import threading

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _netlink as nl


def test_attribute_padding_and_index():
    data = nl.nla(1, b'\x01') + nl.nla_nested(2, nl.nla(1, b'abcd'), nl.nla(3, b'xy')) + nl.nla(4, b'')
    assert len(data) % 4 == 0
    found = nl.attributes(data, 0, len(data))
    assert sorted(found) == [1, 2, 4]
    assert data[found[1][0]:found[1][1]] == b'\x01'
    inner = nl.attributes(data, *found[2])
    assert data[inner[1][0]:inner[1][1]] == b'abcd' and data[inner[3][0]:inner[3][1]] == b'xy'
    assert found[4][0] == found[4][1]


def test_attributes_stop_at_a_malformed_length():
    data = nl.nla(1, b'abcd') + nl.NLA_HDR.pack(0, 2) + nl.nla(3, b'zz')
    assert sorted(nl.attributes(data, 0, len(data))) == [1]


def message(kind, seq, payload=b'', flags=0):
    return nl.NLMSGHDR.pack(nl.NLMSGHDR.size + len(payload), kind, flags, seq, 0) + payload


def ack(seq, code=0):
    return message(nl.NLMSG_ERROR, seq, nl.NLMSGERR.pack(-code) + nl.NLMSGHDR.pack(20, 0, 0, seq, 0))


class FakeKernel:
    """The socket under NetlinkSocket: records what is sent, replays replies."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.sent = []

    def send(self, data):
        self.sent.append(data)

    sendall = send

    def recvmsg(self, size):
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            reply = reply(self.sent)
        return reply, [], 0, None

    def close(self):
        pass


def netlink(replies, batch=1024):
    sock = nl.NetlinkSocket.__new__(nl.NetlinkSocket)
    sock.sock = FakeKernel(replies)
    sock.seq = 0
    sock.batch = batch
    return sock


def entry(seq, body):
    return message(0x100, seq, nl.NFGENMSG.pack(2, 0, 0) + body, flags=2)


def test_dump_yields_messages_across_chunks_until_done():
    first = entry(1, nl.nla(1, b'aaaa')) + entry(1, nl.nla(1, b'bbbb'))
    second = entry(1, nl.nla(1, b'cccc')) + message(nl.NLMSG_DONE, 1, b'\0\0\0\0')
    sock = netlink([first, second])
    found = [chunk[start + 4:end] for chunk, start, end in sock.dump(0x101, 2, b'')]
    assert found == [b'aaaa', b'bbbb', b'cccc']
    sent = sock.sock.sent[0]
    length, kind, flags, seq, dummy = nl.NLMSGHDR.unpack_from(sent)
    assert (kind, flags & nl.NLM_F_DUMP, seq, sent[16]) == (0x101, nl.NLM_F_DUMP, 1, 2)


def test_dump_refused_raises_with_errno():
    sock = netlink([ack(1, errno.EPERM)])
    with pytest.raises(nl.NetlinkError) as exc:
        list(sock.dump(0x101, 2))
    assert exc.value.errno == errno.EPERM


@pytest.mark.filterwarnings('ignore::pytest.PytestUnhandledThreadExceptionWarning')
def test_dump_that_stops_short_is_an_error():
    sock = netlink([entry(1, nl.nla(1, b'aaaa')), ValueError('reader crashed')])
    with pytest.raises(nl.NetlinkError) as exc:
        list(sock.dump(0x101, 2))
    assert exc.value.errno == errno.EPIPE


def test_abandoned_dump_lets_its_reader_finish():
    chunks = [entry(1, nl.nla(1, b'%04d' % i)) for i in range(3 * nl.PREFETCH)]
    sock = netlink(chunks + [message(nl.NLMSG_DONE, 1, b'\0\0\0\0')])
    before = threading.active_count()
    dump = sock.dump(0x101, 2)
    next(dump)
    assert threading.active_count() == before + 1
    dump.close()
    assert threading.active_count() == before


def test_dump_ignores_messages_of_other_requests():
    chunk = entry(7, nl.nla(1, b'old!')) + entry(1, nl.nla(1, b'mine')) + message(nl.NLMSG_DONE, 1, b'\0\0\0\0')
    sock = netlink([chunk])
    assert [c[s + 4:e] for c, s, e in sock.dump(0x101, 2)] == [b'mine']


def test_transact_reads_errors_up_to_the_ack_of_each_batch():
    # Batches of 2: errors come only for failed requests, the last request of
    # each batch is acknowledged either way; a stray reply (seq 99) is ignored.
    replies = [ack(99, errno.EPERM), ack(2, errno.ENOENT), ack(3, errno.EBUSY) + ack(4), ack(5)]
    sock = netlink(replies, batch=2)
    requests = [(0x102, 2, 0, nl.nla(12, b'\0\0\0%c' % i)) for i in range(5)]
    assert sock.transact(requests) == [0, errno.ENOENT, errno.EBUSY, 0, 0]
    assert sock.sock.replies == []
    assert len(sock.sock.sent) == 3
    for data, count in zip(sock.sock.sent, (2, 2, 1)):
        offset, flags = 0, []
        while offset < len(data):
            length, dummy, flag, dummy, dummy = nl.NLMSGHDR.unpack_from(data, offset)
            flags.append(flag & nl.NLM_F_ACK)
            offset += length
        assert flags == [0] * (count - 1) + [nl.NLM_F_ACK]


def test_an_error_of_the_last_request_also_ends_the_batch():
    sock = netlink([ack(1, errno.ENOENT)])
    assert sock.transact([(0x102, 2, 0, b'')]) == [errno.ENOENT]


def test_transact_reports_lost_acknowledgements():
    sock = netlink([OSError(errno.ENOBUFS, 'No buffer space available')])
    with pytest.raises(nl.NetlinkError) as exc:
        sock.transact([(0x102, 2, 0, b'')])
    assert exc.value.errno == errno.ENOBUFS and 'lost' in str(exc.value)


def test_truncated_message_is_an_error():
    sock = netlink([])

    def recvmsg(size):
        return b'x' * 16, [], socket.MSG_TRUNC, None
    sock.sock.recvmsg = recvmsg
    with pytest.raises(nl.NetlinkError):
        list(sock.dump(0x101, 2))


@pytest.mark.parametrize('name, fragment', [
    ('', 'not a namespace name'),
    ('../etc', 'not a namespace name'),
    ('..', 'not a namespace name'),
    ('snf-ct-surely-missing-%d' % os.getpid(), 'does not exist'),
])
def test_namespace_errors_name_the_parameter(monkeypatch, name, fragment):
    calls = []
    monkeypatch.setattr(nl, '_setns', lambda fd, kind: calls.append(fd))
    with pytest.raises(nl.NamespaceError) as exc:
        with nl.network_namespace(name):
            pass
    assert str(exc.value).startswith('netns: ') and fragment in str(exc.value)
    assert calls == []


def test_no_namespace_stays_here(monkeypatch):
    monkeypatch.setattr(nl, '_setns', lambda fd, kind: pytest.fail('setns called'))
    with nl.network_namespace(None):
        pass


def test_namespace_is_left_also_on_error(monkeypatch, tmp_path):
    monkeypatch.setattr(nl, 'NETNS_DIR', str(tmp_path))
    (tmp_path / 'web1').write_text('')
    calls = []
    monkeypatch.setattr(nl, '_setns', lambda fd, kind: calls.append((os.readlink('/proc/self/fd/%d' % fd), kind)))
    with pytest.raises(RuntimeError):
        with nl.network_namespace('web1'):
            raise RuntimeError('boom')
    # Entered the named namespace, then went back to the thread's own.
    assert len(calls) == 2 and calls[0][0] == str(tmp_path / 'web1') and calls[1][0].startswith('net:[')
    assert all(kind == nl.CLONE_NEWNET for path, kind in calls)


def test_namespace_that_cannot_be_entered(monkeypatch, tmp_path):
    monkeypatch.setattr(nl, 'NETNS_DIR', str(tmp_path))
    (tmp_path / 'stale').write_text('')

    def refuse(fd, kind):
        raise OSError(errno.EINVAL, 'Invalid argument')
    monkeypatch.setattr(nl, '_setns', refuse)
    with pytest.raises(nl.NamespaceError) as exc:
        with nl.network_namespace('stale'):
            pytest.fail('entered')
    assert 'is not a network namespace' in str(exc.value)
