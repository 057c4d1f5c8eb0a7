#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Renders a local HTML page in headless Chromium and checks what came out.

  browser.py PAGE.html SHOT.png [WIDTH HEIGHT]
      screenshot PAGE.html, print the console messages and the colours of
      the screenshot; exit 1 when the page logged anything or looks blank

Used by the docs stage (examples.py) on the conntrack report's page of the
lab fleet. Chromium (Debian's `chromium`, installed by tests/setup.sh) only
ever opens the file it is given: its host resolver maps every name to
nothing, background networking is off, and its profile lives in a temporary
directory that is removed afterwards.
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

# A console line of Chromium's log on stderr: [pid:tid:date:INFO:CONSOLE:line] "message", source: url (line)
CONSOLE_MARK = ':CONSOLE'


class BrowserError(Exception):
    pass


def screenshot(page, shot, width=1280, height=900, timeout=120):
    """Render page (a local file) into shot (PNG); return the console messages the page logged."""
    chromium = shutil.which('chromium')
    if chromium is None:
        raise BrowserError('chromium is not installed (tests/setup.sh installs it)')
    profile = tempfile.mkdtemp(prefix='snf-chromium-')
    try:
        proc = subprocess.run(
            [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--host-resolver-rules=MAP * ~NOTFOUND', '--user-data-dir=' + profile,
             '--enable-logging=stderr', '--v=0', '--hide-scrollbars',
             '--window-size=%d,%d' % (width, height), '--screenshot=' + os.path.abspath(shot),
             'file://' + os.path.abspath(page)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
            universal_newlines=True, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if proc.returncode != 0 or not os.path.exists(shot):
        raise BrowserError('chromium failed (rc %d): %s' % (proc.returncode, proc.stderr[-2000:]))
    return [line.split('] ', 1)[-1] for line in (proc.stdout + proc.stderr).splitlines() if CONSOLE_MARK in line]


def png_pixels(path):
    """(width, height, rows of RGB(A) tuples) of an 8-bit RGB or RGBA PNG, non-interlaced (what Chromium writes)."""
    with open(path, 'rb') as handle:
        data = handle.read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise BrowserError('%s: not a PNG' % path)
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b'IHDR':
            header = struct.unpack('>IIBBBBB', chunk)
        elif kind == b'IDAT':
            idat.append(chunk)
    width, height, depth, colour, dummy, dummy2, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise BrowserError('%s: only 8-bit RGB/RGBA non-interlaced PNGs are read (got depth %d, colour type %d)'
                           % (path, depth, colour))
    size = 3 if colour == 2 else 4
    raw = zlib.decompress(b''.join(idat))
    stride = width * size
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - size] if x >= size else 0
            up = previous[x]
            corner = previous[x - size] if x >= size else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xff
            elif kind == 2:
                line[x] = (line[x] + up) & 0xff
            elif kind == 3:
                line[x] = (line[x] + ((left + up) >> 1)) & 0xff
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xff
        rows.append(line)
        previous = line
    return width, height, [[tuple(line[i:i + size]) for i in range(0, stride, size)] for line in rows]


def colours(path):
    """{'width', 'height', 'distinct': number of distinct colours, 'background': share of the commonest colour}."""
    width, height, rows = png_pixels(path)
    counts = {}
    for row in rows:
        for pixel in row:
            counts[pixel] = counts.get(pixel, 0) + 1
    return dict(width=width, height=height, distinct=len(counts),
                background=round(max(counts.values()) / float(width * height), 3))


def check(page, shot, width=1280, height=900, min_colours=50, max_background=0.9):
    """Screenshot page; BrowserError when it logged to the console or looks blank. Returns colours()."""
    messages = screenshot(page, shot, width, height)
    if messages:
        raise BrowserError('%s: the page logged to the console: %s' % (page, messages))
    seen = colours(shot)
    if seen['distinct'] < min_colours or seen['background'] > max_background:
        raise BrowserError('%s: the screenshot looks blank: %s' % (shot, seen))
    return seen


if __name__ == '__main__':
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    size = [int(n) for n in sys.argv[3:5]] or [1280, 900]
    try:
        print(check(sys.argv[1], sys.argv[2], *size))
    except BrowserError as exc:
        sys.exit(str(exc))
