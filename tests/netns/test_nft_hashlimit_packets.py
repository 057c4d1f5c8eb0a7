# SPDX-License-Identifier: GPL-3.0-or-later
"""hashlimit with backend nftables against the real kernel: a bucket per source in a dynamic set.

ruleset writes a rule that rejects NEW connections above 1/min (burst 2) per source address, in a private
mount and network namespace (conftest.Lab); a client namespace with two addresses opens five connections in
a row from the first (two get through, three are reset) and then two from the second (its own bucket).
"""
import shutil
import sys

import pytest

SERVER, FIRST, SECOND, PEER = '10.93.0.1', '10.93.0.2', '10.93.0.3', 'snf-h34-h'

pytestmark = pytest.mark.skipif(shutil.which('nft') is None, reason='nft is not installed')

CONNECT = ('import socket, sys\nout = []\nfor n in range(int(sys.argv[3])):\n'
           '    s = socket.socket(); s.settimeout(1.0); s.bind((sys.argv[1], 0))\n'
           '    try:\n        s.connect((sys.argv[2], 8080)); out.append("open")\n'
           '    except OSError:\n        out.append("closed")\n    s.close()\nprint(" ".join(out))')


def attempts(lab, source, count):
    return lab.run([sys.executable, '-c', CONNECT, source, SERVER, str(count)], PEER).split()


def args(**changes):
    out = dict(backend='nftables', table='filter', family='both', scope='HL', state='overridden',
               chains=[dict(name='SNF-HL-IN', hook='INPUT', rules=[
                   dict(name='rate', protocol='tcp', destination_port=8080, ctstate=['NEW'],
                        hashlimit_above='1/min', hashlimit_burst=2, hashlimit_mode=['srcip'], hashlimit_name='web',
                        jump='REJECT', reject_with='tcp-reset')])])
    out.update(changes)
    return out


def test_new_connections_above_the_rate_of_one_source_are_reset_and_another_source_has_its_own_bucket(lab):
    lab.link(PEER, SERVER, FIRST)
    lab.run(['ip', 'addr', 'add', SECOND + '/24', 'dev', 'snf1'], netns=PEER)
    lab.listen(SERVER, 8080)
    check = lab.module('ruleset', dict(args(), _ansible_check_mode=True))
    first = lab.module('ruleset', args())
    assert first['changed'] is True and check['nft'] == first['nft'], first
    listing = lab.run(['nft', 'list', 'table', 'inet', 'snf_filter_HL'])
    assert ('tcp dport 8080 ct state new add @ipv4.hashlimit-web { ip saddr limit rate over 1/minute burst 2 '
            'packets } reject with tcp reset comment "snf:rate"') in listing, listing
    assert attempts(lab, FIRST, 5) == ['open', 'open', 'closed', 'closed', 'closed']
    assert attempts(lab, SECOND, 2) == ['open', 'open']
    # The set holds the kernel's buckets now; a re-run compares the rules and the set's declaration only.
    again = lab.module('ruleset', args())
    assert again['changed'] is False and again['nft'] == '', again
    gathered = lab.module('ruleset', dict(backend='nftables', table='filter', family='ipv4', scope='HL',
                                          state='gathered'))['gathered']['ipv4']['chains'][0]['rules'][0]
    assert gathered['hashlimit_above'] == '1/min' and gathered['hashlimit_mode'] == ['srcip']
    assert lab.module('ruleset', dict(backend='nftables', table='filter', scope='HL', state='deleted'))['changed']
