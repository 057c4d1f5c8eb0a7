# SPDX-License-Identifier: GPL-3.0-or-later
"""The nat_gateway role's conntrack helpers (raw table) and MSS clamping (mangle table): planning and bad input."""

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _nat_plan as npl
from ansible_collections.stateful.netfilter.plugins.module_utils._firewall_plan import render as render_model

FTP_LAN = dict(name='ftp-lan', helper='ftp', in_interface='eth0')
FTP_FORWARD = dict(name='ftp', port=21, in_interface='eth1', to='192.168.1.100', helper='ftp')


def rendered(chains, table):
    return render_model(dict(table=table, family='both', chains=chains), 'GW')


def test_no_helpers_and_no_clamping_plan_no_raw_or_mangle_chains():
    model = npl.plan(dict(nat_gateway_port_forwards=[dict(FTP_FORWARD, helper=None)]))
    assert model['raw_chains'] == [] and model['mangle_chains'] == []


def test_helpers_are_scoped_to_port_interface_and_destination():
    model = npl.plan(dict(
        nat_gateway_helpers=[FTP_LAN, dict(name='tftp', helper='TFTP', port=[69, 1069], in_interface='eth0',
                                           destination='203.0.113.0/24'),
                             dict(name='sip', helper='sip', protocol='tcp', destination='fd00:1::5')],
        nat_gateway_port_forwards=[FTP_FORWARD]))
    assert [(c['name'], c['hook'], c['hook_position']) for c in model['raw_chains']] == [
        ('SNF-GW-HELPERS', 'PREROUTING', 'first')]
    assert model['raw_chains'][0]['rules'] == [
        # The well-known port when the entry names none; the helper's protocol.
        dict(name='helper:ftp-lan', protocol='tcp', destination_port=21, jump='CT', helper='ftp', in_interface='eth0'),
        # The kernel's spelling of the name; port lists; a destination.
        dict(name='helper:tftp', protocol='udp', destination_port=[69, 1069], jump='CT', helper='tftp',
             in_interface='eth0', destination='203.0.113.0/24'),
        dict(name='helper:sip', protocol='tcp', destination_port=5060, jump='CT', helper='sip',
             destination='fd00:1::5'),
        # A port forward's helper matches the gateway's port on the arrival interface (raw comes before the DNAT).
        dict(name='pf:ftp', protocol='tcp', destination_port=21, in_interface='eth1', jump='CT', helper='ftp')]
    text = rendered(model['raw_chains'], 'raw')
    assert '-A SNF-GW-HELPERS -i eth0 -p tcp -m tcp --dport 21 -m comment --comment "snf:helper:ftp-lan" ' \
           '-j CT --helper ftp' in text['ipv4']
    assert '-I PREROUTING 1 -j SNF-GW-HELPERS' in text['ipv4']
    # A rule with an address of one family goes to that family only.
    assert 'snf:helper:tftp' in text['ipv4'] and 'snf:helper:tftp' not in text['ipv6']
    assert 'snf:helper:sip' in text['ipv6'] and 'snf:helper:sip' not in text['ipv4']


def test_mss_clamping_per_outbound_interface_on_syn_packets():
    model = npl.plan(dict(nat_gateway_mss_clamping=[dict(out_interface='ppp+', clamp_to_pmtu=True),
                                                    dict(out_interface='eth0', mss=1200, clamp_to_pmtu=False)]))
    assert [(c['name'], c['hook']) for c in model['mangle_chains']] == [('SNF-GW-MSS', 'FORWARD')]
    assert model['mangle_chains'][0]['rules'] == [
        dict(name='mss:ppp.x', protocol='tcp', tcp_flags='SYN,RST SYN', out_interface='ppp+', jump='TCPMSS',
             clamp_mss_to_pmtu=True),
        dict(name='mss:eth0', protocol='tcp', tcp_flags='SYN,RST SYN', out_interface='eth0', jump='TCPMSS',
             set_mss=1200)]
    text = rendered(model['mangle_chains'], 'mangle')
    for family in ('ipv4', 'ipv6'):
        assert '-A SNF-GW-MSS -o eth0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m comment --comment "snf:mss:eth0" ' \
               '-j TCPMSS --set-mss 1200' in text[family]
        assert '-j TCPMSS --clamp-mss-to-pmtu' in text[family]


@pytest.mark.parametrize('variables, message', [
    (dict(nat_gateway_helpers=[dict(FTP_LAN, helper='ftpd')]),
     'nat_gateway_helpers entry ftp-lan: helper: "ftpd" is not a conntrack helper'),
    (dict(nat_gateway_helpers=[dict(FTP_LAN, protocol='udp')]),
     'nat_gateway_helpers entry ftp-lan: helper: the ftp helper needs protocol tcp'),
    (dict(nat_gateway_helpers=[dict(name='ftp-any', helper='ftp', port=21)]),
     'nat_gateway_helpers entry ftp-any: give in_interface .* and/or destination'),
    (dict(nat_gateway_helpers=[FTP_LAN, FTP_LAN]), 'nat_gateway_helpers: a name is used twice: ftp-lan'),
    (dict(nat_gateway_helpers=[dict(FTP_LAN, name='bad name')]), 'nat_gateway_helpers: names must be'),
    (dict(nat_gateway_helpers=[dict(FTP_LAN, port=0)]), 'nat_gateway_helpers entry ftp-lan: port: '),
    (dict(nat_gateway_helpers=[dict(name='irc', helper='irc', destination='fd00::1')]),
     'nat_gateway_helpers entry irc: helper: the kernel has no irc helper for ipv6'),
    (dict(nat_gateway_port_forwards=[dict(FTP_FORWARD, helper='tftp')]),
     'nat_gateway_port_forwards entry ftp: helper: the tftp helper needs protocol udp'),
    (dict(nat_gateway_port_forwards=[dict(FTP_FORWARD, helper='nope')]),
     'nat_gateway_port_forwards entry ftp: helper: "nope" is not a conntrack helper'),
    (dict(nat_gateway_port_forwards=[dict(FTP_FORWARD, in_interface=None)]),
     'nat_gateway_port_forwards entry ftp: helper needs in_interface'),
    (dict(nat_gateway_mss_clamping=[dict(out_interface='eth1', mss=0)]),
     r'nat_gateway_mss_clamping entry eth1: mss: 0 is not an MSS \(88-65495 bytes\)'),
    (dict(nat_gateway_mss_clamping=[dict(out_interface='eth1', mss=65496)]),
     'nat_gateway_mss_clamping entry eth1: mss: 65496 is not an MSS'),
    (dict(nat_gateway_mss_clamping=[dict(out_interface='eth1', mss=1400, clamp_to_pmtu=True)]),
     'nat_gateway_mss_clamping entry eth1: clamp_to_pmtu and mss conflict'),
    (dict(nat_gateway_mss_clamping=[dict(out_interface='eth1')]),
     'nat_gateway_mss_clamping entry eth1: give clamp_to_pmtu: true or an mss'),
    (dict(nat_gateway_mss_clamping=[dict(mss=1400)]), 'nat_gateway_mss_clamping: every entry needs out_interface'),
    (dict(nat_gateway_mss_clamping=[dict(out_interface='eth1', mss=1400), dict(out_interface='eth1', mss=1300)]),
     'nat_gateway_mss_clamping: an out_interface is given twice: eth1'),
])
def test_bad_input_is_refused_naming_the_variable_and_the_entry(variables, message):
    with pytest.raises(npl.PlanError, match=message):
        npl.plan(variables)


def test_every_problem_of_the_input_at_once():
    with pytest.raises(npl.PlanError) as caught:
        npl.plan(dict(nat_gateway_helpers=[dict(name='a', helper='x', in_interface='eth0')],
                      nat_gateway_mss_clamping=[dict(out_interface='eth1')]))
    assert 'nat_gateway_helpers entry a' in str(caught.value)
    assert 'nat_gateway_mss_clamping entry eth1' in str(caught.value)
