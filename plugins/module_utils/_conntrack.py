# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The conntrack table over nfnetlink: list and delete.

Private to the collection; the engine of conntrack_info and conntrack_flush,
also called by nat_rule. Standard library only (see _netlink). Its parts:
_ctcodec (message shapes and decoding), _ctfilters (the filters),
_ctsummary (the summary); this module reads the kernel with them (dumps,
/proc counts) and deletes. The notes below cover the whole engine.

Speed comes from decoding lazily: a field of a dump message is found and
decoded only when a filter, the summary or a returned entry needs it; the
common tuple layout is read with one struct call after its headers are
checked, and a returned entry is read whole by the learnt shape of its
message (_Shape) and written directly as JSON text (_entry_text). Filters go to the kernel where it honours them
and are always checked again in userspace, so a kernel that ignores a
filter attribute (older than the feature) costs time, never correctness.

What the kernel is asked to filter (all per address family, nfgenmsg):
- family: every kernel;
- mark/mask (CTA_MARK, CTA_MARK_MASK): dumps since Linux 3.x;
- status flags (CTA_STATUS, CTA_STATUS_MASK): dumps since Linux 5.15;
  ignored before;
- exact IPv4 addresses, protocol number, and single TCP/UDP ports of
  either direction (CTA_FILTER with CTA_TUPLE_ORIG / CTA_TUPLE_REPLY):
  dumps on Linux 5.8 and later; ignored before 5.8; a kernel that refuses
  the request is asked again without it.
IPv6 addresses never go to the kernel: its CTA_FILTER compares them
inverted (ctnetlink_filter_match_tuple tests !ipv6_addr_cmp, so an equal
address fails the filter), seen on Linux 6.18 here: a dump skipped exactly
the matching entries and a filtered flush deleted the others.
CIDRs that are not a single host, IPv6 addresses, port ranges, ports of
other protocols, zones, TCP states and `nat: any` are filtered in userspace
only. Zones stay out of the kernel: CTA_ZONE is compared in dumps and
flushes only since the kernel's "ctnetlink: support filtering by zone"
(late 2023); an older kernel ignores it, and a flush request that names
no tuple then deletes every zone.

Zones (see _zone): an entry's zone is an id and the directions it applies
to. ctnetlink dumps a zone of both directions (-j CT --zone) as CTA_ZONE and
a directional one (--zone-orig, --zone-reply) as CTA_TUPLE_ZONE inside the
tuple of its direction, with no CTA_ZONE. The `zone` filter compares the id
whatever the direction, as nft's `ct zone` and the kernel's own CTA_ZONE
filter (nf_ct_zone_equal_any) do; `zone_dir` narrows it to one kind.

Deleting: a kernel that can flush by CTA_FILTER (Linux 6.12 and later,
detected by a harmless probe, see _flush_filter_supported) deletes a fully
kernel-expressible filter in one request. Otherwise every matching entry is deleted by its
reply tuple, zone and id (see _delete_request), in acknowledged batches.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import os
import socket

from ansible_collections.stateful.netfilter.plugins.module_utils import _ctcodec, _ctfilters, _netlink
from ansible_collections.stateful.netfilter.plugins.module_utils._ctcodec import (
    BE32,
    CTA_FILTER,
    CTA_FILTER_ORIG_FLAGS,
    CTA_ID,
    CTA_MARK,
    CTA_MARK_MASK,
    CTA_PROTO_NUM,
    CTA_TUPLE_ORIG,
    CTA_TUPLE_PROTO,
    CTA_TUPLE_REPLY,
    CTA_ZONE,
    CT_DELETE,
    CT_GET,
    FILTER_PROTO_NUM,
    HOST32,
    PORT_PROTOCOL_NUMBERS,
    TCP,
    _entry_text,
    _learn,
    _orig,
    _reply,
    decode_entry,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._ctsummary import (
    _Summary,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._result import EncodedList
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import (
    ValidationError,
    show,
)

# nat_rule's flush (_engine) loads this module lazily and uses it whole:
# the filter it builds comes from here too.
build_filter = _ctfilters.build_filter

DEFAULT_LIMIT = 100
# Entries handed at once to list_entries()'s write (about 300 KiB of JSON).
WRITE_BATCH = 1024
# Delete requests sent at once while a flush dumps (see _plan).
DELETE_BATCH = 1024
SAMPLE_SIZE = 10
PROC_NETFILTER = '/proc/sys/net/netfilter/'


class ConntrackError(Exception):
    """The kernel refused or failed a conntrack operation (message for the user)."""


# Everything build_filter(), list_entries() and flush_entries() raise for the
# user to read (bad input, a namespace that cannot be entered, the kernel's
# refusal); each message starts with the option or operation at fault.
ERRORS = (ValidationError, ConntrackError, _netlink.NamespaceError)


# ---------------------------------------------------------------- kernel access

def _read_proc(name):
    try:
        with open(PROC_NETFILTER + name) as handle:
            return int(handle.read())
    except (IOError, OSError, ValueError):
        return None


def _kernel_error(exc, what):
    code = exc.errno
    if code == errno.EPERM:
        return ConntrackError('%s: permission denied: needs root or CAP_NET_ADMIN' % what)
    if code in (errno.EPROTONOSUPPORT, errno.EOPNOTSUPP, errno.ENOENT, errno.EAFNOSUPPORT):
        return ConntrackError('%s: the kernel has no conntrack netlink support (nf_conntrack_netlink): %s'
                              % (what, exc.strerror or exc))
    return ConntrackError('%s: %s' % (what, exc.strerror or exc))


def _open(what):
    try:
        return _netlink.NetlinkSocket()
    except OSError as exc:
        raise _kernel_error(exc, what)


def _dump(sock, flt, family, what, kernel=True, trusted=False):
    """Yield (chunk, start, end) of the entries of one family that match flt.

    trusted: the kernel is known to apply this (exact) filter completely,
    so the entries it sends need no second look.
    """
    request = flt.kernel_request(family)[0] if kernel else b''
    try:
        messages = sock.dump(CT_GET, family, request)
        first = next(messages, None)
    except OSError as exc:
        if request and exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            # A kernel that knows CTA_FILTER but refuses this one (5.8 had
            # a broken flag check): filter in userspace only.
            yield from _dump(sock, flt, family, what, kernel=False)
            return
        raise _kernel_error(exc, what)
    if first is None:
        return
    try:
        if not flt.narrows or (trusted and request):
            yield first
            yield from messages
            return
        matches = flt.matches
        if matches(*first):
            yield first
        for chunk, start, end in messages:
            if matches(chunk, start, end):
                yield chunk, start, end
    except OSError as exc:
        raise _kernel_error(exc, what)


def list_entries(flt, netns=None, limit=DEFAULT_LIMIT, summary_only=False, write=None, details=()):
    """Read the table: dict(entries, count, total, max, truncated, summary).

    entries is an EncodedList: the entries as JSON text, decoded on access.
    With write, entries are not held: write(texts) receives them, in
    batches of up to WRITE_BATCH JSON texts as they are decoded, and the
    result has no `entries` (conntrack_info prints them as they come, see
    _result.exit_streamed). Entries decoded before an error are written
    before it is raised.

    count and summary cover every matching entry; entries holds at most
    `limit` of them (0: no cap; none with summary_only). total and max are
    nf_conntrack_count and nf_conntrack_max as the namespace sees them.
    details: names of DETAILS the summary adds (zones, marks, talkers),
    which cost a read of every entry's numbers.
    """
    held = EncodedList()
    texts = held.texts if write is None else []
    listed = 0
    count = 0
    summary = _Summary(details)
    detail = summary.detail if details else None
    cap = 0 if summary_only else (limit or None)
    # The fast path (see _FastShape), inlined: it runs once per entry.
    shapes = _ctcodec._SHAPES
    from_bytes = int.from_bytes
    ports = summary.ports
    tally = {}      # template -> entries listed with it, folded into summary
    seen = {}       # template -> (fast shape, key), for the fold
    counted = {}    # key -> entries counted only (beyond the limit), folded into summary
    owners = {}     # key -> a fast shape of that key, for the fold
    try:
        with _netlink.network_namespace(netns):
            with _open('conntrack_info') as sock:
                for family in flt.families:
                    for chunk, start, end in _dump(sock, flt, family, 'conntrack_info'):
                        count += 1
                        if detail is not None:
                            detail(chunk, start, end, family)
                        if cap is not None and listed >= cap:
                            # Counted only: the key and port of a fast shape suffice.
                            shape = shapes.get(end - start)
                            fast = shape.fast if shape is not None else None
                            if fast is not None and from_bytes(chunk[start:end], 'big') & fast.mask == fast.expected:
                                values = fast.unpack(chunk, start)
                                key = fast.key(values)
                                number = counted.get(key)
                                if number is None:
                                    if len(counted) >= _ctcodec._TEMPLATES:
                                        summary.fold_keys(counted, owners)
                                    counted[key] = 1
                                    owners[key] = fast
                                else:
                                    counted[key] = number + 1
                                port = fast.port(values)
                                if port[0] in PORT_PROTOCOL_NUMBERS:
                                    ports[port] = ports.get(port, 0) + 1
                            else:
                                summary.add(chunk, start, end, family)
                                if shape is None:
                                    _learn(chunk, start, end)
                            continue
                        listed += 1
                        shape = shapes.get(end - start)
                        fast = shape.fast if shape is not None else None
                        if fast is not None and from_bytes(chunk[start:end], 'big') & fast.mask == fast.expected:
                            values = fast.unpack(chunk, start)
                            key = fast.key(values)
                            template = fast.templates.get(key)
                            if template is None:
                                template = fast.template(key)
                            if template:
                                texts.append(template % fast.numbers(values))
                                port = fast.port(values)
                                ports[port] = ports.get(port, 0) + 1
                                number = tally.get(template)
                                if number is None:
                                    if len(tally) >= _ctcodec._TEMPLATES:
                                        summary.fold(tally, seen)
                                    tally[template] = 1
                                    seen[template] = (fast, key)
                                else:
                                    tally[template] = number + 1
                                if write is not None and len(texts) == WRITE_BATCH:
                                    write(texts)
                                    texts = []
                                continue
                        text, orig, state, status, reply = _entry_text(chunk, start, end, family)
                        texts.append(text)
                        summary.count(family, orig, state, status, reply)
                        if write is not None and len(texts) == WRITE_BATCH:
                            write(texts)
                            texts = []
            total = _read_proc('nf_conntrack_count')
            maximum = _read_proc('nf_conntrack_max')
    finally:
        if write is not None:
            write(texts)
    summary.fold(tally, seen)
    summary.fold_keys(counted, owners)
    result = dict(count=count, total=total, max=maximum, truncated=listed < count, summary=summary.result())
    if write is None:
        result = dict(entries=held, **result)
    return result


# ---------------------------------------------------------------- deleting

def control_connection(environ):
    """The protect tuple of the SSH session in environ, or [] without one.

    SSH_CONNECTION is 'client_ip client_port server_ip server_port' as sshd
    sets it. The result is a list of (client, client_port, server,
    server_port) tuples, the form flush_entries() takes as `protect`.
    """
    text = (environ.get('SSH_CONNECTION') or '').strip()
    if not text:
        return []
    fields = text.split()
    if len(fields) != 4:
        raise ValidationError('protect_control_connection',
                              'SSH_CONNECTION %s is not "client port server port"' % (show(text),))
    protect = [tuple(fields)]
    _protect_keys(protect, 'protect_control_connection')
    return protect


def _packed(address):
    addr = ipaddress.ip_address(str(address).split('%', 1)[0])
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.packed


def _protect_keys(protect, param='protect'):
    """{(client, cport, server, sport)} with packed addresses and int ports."""
    keys = set()
    for client, cport, server, sport in protect or ():
        try:
            keys.add((_packed(client), int(cport), _packed(server), int(sport)))
        except (TypeError, ValueError):
            raise ValidationError(param, '%s is not (client, port, server, port)'
                                  % show((client, cport, server, sport)))
    return keys


def _is_protected(buf, start, end, keys):
    """A TCP entry of a protected connection, seen from either direction.

    The original tuple is client -> server; or, when the server side was
    NATed (e.g. DNAT to this host), the reply tuple is server -> client.
    """
    orig = _orig(buf, start, end)
    if orig[0] != TCP:
        return False
    if (orig[1], orig[3], orig[2], orig[4]) in keys:
        return True
    reply = _reply(buf, start, end)
    return (reply[2], reply[4], reply[1], reply[3]) in keys


_DELETE_KEYS = frozenset((CTA_TUPLE_REPLY, CTA_ZONE, CTA_ID))


def _delete_request(buf, start, end, family):
    """An IPCTNL_MSG_CT_DELETE request for exactly this entry.

    The entry is named by its reply tuple, its CTA_ZONE, and CTA_ID, copied
    byte for byte from the dump. Zones: the kernel looks the reply tuple up
    in the zone the request names for the reply direction
    (nf_conntrack_find_get, nf_ct_zone_equal). A zone of both directions
    travels as CTA_ZONE; a reply-direction zone as the CTA_TUPLE_ZONE inside
    the copied reply tuple; an original-direction zone leaves the reply
    direction in zone 0, which is what a request without zone names.
    The reply tuple carries the NAT mapping: an entry
    recreated under the same original tuple but NATed elsewhere (a new
    backend) is a different reply tuple and is not found. The kernel also
    compares CTA_ID; ids are 32-bit hashes, so a recreated entry with the
    same reply tuple *and* a colliding id (about 1 in 4 billion) would be
    deleted: that is the residual risk.
    """
    unpack = _netlink.NLA_HDR.unpack_from
    request = []
    pos = start
    while pos + 4 <= end:
        length, kind = unpack(buf, pos)
        if length < 4:
            break
        stop = pos + ((length + 3) & ~3)
        if kind & _netlink.NLA_TYPE_MASK in _DELETE_KEYS:
            request.append(buf[pos:stop])
        pos = stop
    return (CT_DELETE, family, 0, b''.join(request))


def _flush_filter_supported(sock):
    """Can this kernel delete by CTA_FILTER (flush with a filter)?

    The probe is a DELETE carrying CTA_FILTER (protocol 255), a mark that
    can never match (mark & 0 == 1), and an original tuple without
    addresses. A kernel that flushes by CTA_FILTER matches nothing and
    answers 0. Any other kernel takes the tuple for a single-entry delete
    and rejects it (EINVAL: no addresses), so the probe deletes nothing
    anywhere. It costs the kernel one walk over the table (about 50 ms for
    200,000 entries on the benchmark machine).
    """
    attrs = (_netlink.nla_nested(CTA_TUPLE_ORIG, _netlink.nla_nested(
        CTA_TUPLE_PROTO, _netlink.nla(CTA_PROTO_NUM, b'\xff')))
        + _netlink.nla(CTA_MARK, BE32.pack(1)) + _netlink.nla(CTA_MARK_MASK, BE32.pack(0))
        + _netlink.nla_nested(CTA_FILTER, _netlink.nla(CTA_FILTER_ORIG_FLAGS, HOST32.pack(FILTER_PROTO_NUM))))
    return sock.transact([(CT_DELETE, socket.AF_INET, 1, attrs)]) == [0]


def _kernel_flush_request(flt, family):
    """A filtered flush of one family, or None when the kernel cannot express flt."""
    attrs, exact = flt.kernel_request(family)
    if not exact:
        return None
    if CTA_FILTER not in _netlink.attributes(attrs, 0, len(attrs)):
        # Always send CTA_FILTER: it makes the kernel honour the family.
        attrs += _netlink.nla_nested(CTA_FILTER, _netlink.nla(CTA_FILTER_ORIG_FLAGS, HOST32.pack(0)))
    return (CT_DELETE, family, 1, attrs)


def _delete(sock, requests, what):
    """Send delete requests; count successes (ENOENT: already gone, no error)."""
    try:
        results = sock.transact(requests)
    except OSError as exc:
        raise _kernel_error(exc, what)
    for code in results:
        if code not in (0, errno.ENOENT):
            raise _kernel_error(OSError(code, os.strerror(code)), what)
    return results.count(0)


def _plan(sock, flt, keys, trusted, what, delete=None):
    """Dump the matches: (count, sample, protected entries, deleted).

    delete: called with the delete requests of the matches in batches of
    up to DELETE_BATCH as the dump goes on (none are held meanwhile);
    deleted adds up what it returns.
    """
    count = deleted = 0
    sample = []
    protected = []
    requests = []
    for family in flt.families:
        for chunk, start, end in _dump(sock, flt, family, what, trusted=trusted):
            if keys and _is_protected(chunk, start, end, keys):
                protected.append(decode_entry(chunk, start, end, family))
                continue
            count += 1
            if len(sample) < SAMPLE_SIZE:
                sample.append(decode_entry(chunk, start, end, family))
            if delete is not None:
                requests.append(_delete_request(chunk, start, end, family))
                if len(requests) == DELETE_BATCH:
                    deleted += delete(requests)
                    requests = []
    if requests:
        deleted += delete(requests)
    return count, sample, protected, deleted


def _deleter(what):
    """delete(requests) on a socket of its own, usable while a dump runs; and its socket.

    Entries are deleted as the dump finds them, as `conntrack -D` does:
    the kernel resumes a dump after the last entry it could not send yet,
    which no delete of an entry already received can remove.
    """
    sock = _open(what)
    done = [0]

    def delete(requests):
        try:
            deleted = _delete(sock, requests, what)
        except ConntrackError as exc:
            raise ConntrackError('%s (%d entries were deleted before)' % (exc, done[0]))
        done[0] += deleted
        return deleted
    return delete, sock


def _holder(limit):
    """delete(requests) that only keeps the requests, up to limit + 1 of them, in `held`."""
    held = []

    def delete(requests):
        if len(held) <= limit:
            held.extend(requests[:limit + 1 - len(held)])
        return 0
    return delete, held


def flush_entries(flt, netns=None, max_entries=None, check_mode=False, protect=None):
    """Delete the entries matching flt: dict(deleted, matched, sample, protected).

    protect: iterable of (client, client_port, server, server_port) TCP
    connections whose entries are kept, in either direction (see
    control_connection()). matched counts every matching entry, protected
    ones included; deleted counts the entries deleted (in check mode: that
    would be deleted); sample holds up to SAMPLE_SIZE of them; protected
    lists the kept entries. With max_entries, more candidates than that
    raise ConntrackError and nothing is deleted.

    On a kernel that flushes by CTA_FILTER and a filter it can express,
    one request per family deletes in the kernel and deleted is the
    number of candidates counted just before. Otherwise each candidate is
    deleted by reply tuple, zone and id (_delete_request); entries that
    vanished meanwhile are not counted. Those deletes go out in batches
    while the dump runs, so memory stays flat whatever the table size;
    with max_entries they are held (at most max_entries of them) until
    the count is known.
    """
    what = 'conntrack_flush'
    keys = _protect_keys(protect)
    with _netlink.network_namespace(netns):
        with _open(what) as sock:
            kernel = None
            if not check_mode and not (keys and flt.mutable):
                requests = [_kernel_flush_request(flt, family) for family in flt.families]
                if all(requests) and _flush_filter_supported(sock):
                    kernel = requests
            # A kernel that flushes by filter applies the whole (exact) filter
            # to dumps too: its answer is counted without a second look.
            held = []
            if check_mode or kernel is not None:
                count, sample, protected, deleted = _plan(sock, flt, keys, kernel is not None, what)
                deleted = count
            elif max_entries is not None:
                delete, held = _holder(max_entries)
                count, sample, protected, deleted = _plan(sock, flt, keys, False, what, delete)
            else:
                delete, deleter = _deleter(what)
                with deleter:
                    count, sample, protected, deleted = _plan(sock, flt, keys, False, what, delete)
            if max_entries is not None and count > max_entries:
                raise ConntrackError('max_entries: %d entries match, more than max_entries=%d; nothing deleted'
                                     % (count, max_entries))
            if count and not check_mode:
                if kernel is None:
                    if max_entries is not None:
                        deleted = _delete(sock, held, what)
                elif not protected:
                    _delete(sock, kernel, what)
                else:
                    delete, deleter = _deleter(what)
                    with deleter:
                        deleted = _plan(sock, flt, keys, True, what, delete)[3]
    return dict(deleted=deleted, matched=count + len(protected), sample=sample, protected=protected)
