# SPDX-License-Identifier: GPL-3.0-or-later
"""Parsing of captured iptables-save output and planning of owned-chain transactions."""
import copy
import os

import pytest

from ansible_collections.stateful.netfilter.plugins.module_utils import _rules as r
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import ValidationError

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'iptables')
CAPTURES = [(backend, family) for backend in ('nft', 'legacy') for family in ('ipv4', 'ipv6')]


def load(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def tables(backend, family):
    parsed, unknown = r.parse_save(load('%s-%s.save' % (backend, family)))
    assert unknown == []
    return parsed


def owned_lines(table):
    return [(chain, args) for chain, rules in table.rules.items() if chain.startswith(r.PREFIX) for args in rules]


def simulate(table, lines):
    """Apply iptables-restore --noflush input to a Table the way the kernel does (enough for these tests)."""
    table = copy.deepcopy(table)
    for line in lines:
        if line.startswith(':'):
            chain, policy = line[1:].split(' ')[:2]
            if chain in r.BUILTIN_CHAINS[table.name]:
                table.policies[chain] = policy
            else:
                table.add_chain(chain, '-')
                table.rules[chain] = []
        elif line.startswith('-D '):
            chain, dummy, args = line[3:].partition(' ')
            table.rules[chain].remove(args)
        elif line.startswith('-A '):
            chain, dummy, args = line[3:].partition(' ')
            table.rules.setdefault(chain, []).append(args)
        elif line.startswith('-I '):
            chain, index, args = line[3:].split(' ', 2)
            table.rules.setdefault(chain, []).insert(int(index) - 1, args)
        elif line.startswith('-X '):
            assert not table.rules.pop(line[3:])
            del table.policies[line[3:]]
        else:
            assert line in ('*%s' % table.name, 'COMMIT'), line
    return table


def foreign(table):
    return [(chain, args) for chain, rules in table.rules.items() for args in rules
            if not chain.startswith(r.PREFIX) and not (r._jump_of(args) or '').startswith(r.PREFIX)]


@pytest.mark.parametrize('backend, family', CAPTURES)
def test_owned_rules_of_real_output_round_trip(backend, family):
    """Every owned rule the kernel printed parses, and renders back to exactly the kernel's text."""
    count = 0
    for table in tables(backend, family).values():
        for chain, args in owned_lines(table):
            spec = r.parse_rule(args, family, table.name)
            assert spec is not None, args
            assert r.render(spec) == args
            count += 1
    assert count > 10


@pytest.mark.parametrize('family', ['ipv4', 'ipv6'])
def test_nft_and_legacy_print_the_same_tables(family):
    nft, legacy = tables('nft', family), tables('legacy', family)
    assert sorted(nft) == sorted(legacy) == ['filter', 'nat']
    for name in nft:
        assert nft[name].rules == legacy[name].rules
        assert nft[name].policies == legacy[name].policies


@pytest.mark.parametrize('backend', ['nft', 'legacy'])
def test_canonicalisation_captured(backend):
    """What the kernel made of non-canonical input (fixtures/iptables/input-canon.rules)."""
    parsed, dummy = r.parse_save(load('%s-canon.save' % backend))
    rules = parsed['nat'].rules['SNF-T']
    assert rules[0] == '-p tcp -j SNAT --to-source 1.2.3.4:80 --random --random-fully --persistent'
    assert rules[5] == '-m limit --limit 1/sec -j RETURN'
    assert rules[11] == '-p tcp -m tcp -j RETURN'  # --dport 0:65535 dropped, -m tcp kept
    # Whatever spelling the kernel keeps, parse + render is stable and equals make_rule of the intent.
    intent = r.make_rule(dict(protocol='tcp', destination_port='0:65535', jump='RETURN'), 'ipv4', 'nat')
    assert r.Rule.from_save(rules[11], 'ipv4', 'nat') == r.Rule.from_spec(intent)
    # Matches stay in the order they were given: a comment written first is printed first, and such a
    # rule is not the canonical one (the engine rewrites it once, then it is stable).
    assert rules[18] == '-p tcp -m comment --comment "snf:web" -m tcp --dport 80 -j RETURN'
    assert r.render(r.parse_rule(rules[18], 'ipv4', 'nat')) == '-p tcp -m tcp --dport 80 -m comment --comment "snf:web" -j RETURN'


@pytest.mark.parametrize('backend', ['nft', 'legacy'])
def test_syn_and_port_lists_captured(backend):
    """--syn is printed as its flag test after the ports; multiport keeps the order of the matches written."""
    rules = r.parse_save(load('%s-canon.save' % backend))[0]['nat'].rules['SNF-T'][19:]
    assert rules[0] == '-p tcp -m tcp --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN -j RETURN'
    assert r.render(r.parse_rule(rules[0], 'ipv4', 'nat')) == rules[0]
    # --syn written after multiport comes after it; the engine renders the tcp match first and rewrites it once.
    assert rules[1] == '-p tcp -m multiport --dports 80,443 -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j RETURN'
    assert r.render(r.parse_rule(rules[1], 'ipv4', 'nat')) == (
        '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m multiport --dports 80,443 -j RETURN')
    # A multiport match of one port is a single port for the model.
    assert rules[2] == '-p tcp -m multiport --dports 80 -j RETURN'
    assert r.render(r.parse_rule(rules[2], 'ipv4', 'nat')) == '-p tcp -m tcp --dport 80 -j RETURN'
    # Any spelling of the SYN flags is printed in the kernel's order.
    assert rules[3] == '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j RETURN'
    # Two source port matches cannot be one option: kept as text.
    assert rules[4] == '-p tcp -m multiport --sports 1,2 -m tcp --sport 3 -j RETURN'
    assert r.parse_rule(rules[4], 'ipv4', 'nat') is None


@pytest.mark.parametrize('args', [
    '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN ! --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT',
    '-p tcp -m tcp --dport 22 -m multiport --dports 80,443 -j ACCEPT',
    '-p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 -j ACCEPT',
    '-p tcp -m tcp --tcp-flags SYN,ACK FIN -j ACCEPT',
    '! -p tcp -j ACCEPT',
    '-m conntrack --ctexpire 5 -j ACCEPT',
    '-m conntrack ! --ctdir REPLY -j ACCEPT',
])
def test_flag_tests_and_port_matches_outside_the_model_are_kept_as_text(args):
    assert r.parse_rule(args, 'ipv4', 'filter') is None


@pytest.mark.parametrize('args', [
    '-p tcp -m tcp --tcp-flags SYN,ACK SYN -j ACCEPT',
    '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN,ACK -j ACCEPT',
    '-p tcp -m tcp ! --dport 22 -j ACCEPT',
    '-p tcp -m multiport --ports 80,443 -j ACCEPT',
    '-p tcp -m multiport ! --dports 80,443 -j ACCEPT',
])
def test_flag_tests_and_port_matches_the_model_now_reads_round_trip(args):
    spec = r.parse_rule(args, 'ipv4', 'filter')
    assert spec is not None and r.render(spec) == args


def test_foreign_rules_are_not_understood_but_kept_raw():
    table = tables('nft', 'ipv4')['nat']
    args = table.rules['KUBE-SVC-NPX46M4PTMTKRN6Y'][0]
    assert r.parse_rule(args, 'ipv4', 'nat') is None
    assert r.Rule.from_save(args, 'ipv4', 'nat').text == args


@pytest.mark.parametrize('backend, family', CAPTURES)
def test_read_owned_finds_chains_and_hooks(backend, family):
    filter_table = tables(backend, family)['filter']
    owned = r.read_owned(filter_table, 'SNF-FW-', family, ['INPUT'])
    assert list(owned.chains) == ['SNF-FW-INPUT'] + (['SNF-FW-LOG'] if family == 'ipv4' else [])
    assert owned.chains['SNF-FW-INPUT'].hook == ('INPUT', 'first')
    assert owned.policies == {'INPUT': 'ACCEPT'}
    nat = r.read_owned(tables(backend, family)['nat'], 'SNF-NAT-', family)
    # In the IPv4 capture POSTROUTING holds foreign rules before the jump: it is hooked last.
    assert nat.chains['SNF-NAT-POST'].hook == ('POSTROUTING', 'last' if family == 'ipv4' else 'first')


def chain(name, hook=None, *specs):
    return r.Chain(name, hook, [r.Rule.from_spec(r.make_rule(spec, 'ipv4', 'filter')) for spec in specs])


ACCEPT_LO = dict(name='lo', in_interface='lo', jump='ACCEPT')
ESTABLISHED = dict(ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT')
SSH = dict(name='ssh', protocol='tcp', destination_port=22, jump='ACCEPT')


def plan(table, wanted, scope='SNF-FW-'):
    live = r.read_owned(table, scope, 'ipv4', wanted.policies)
    r.check_references(table, scope, wanted)
    return r.Plan(table, scope, 'ipv4', live, wanted)


def converge(table, wanted, scope='SNF-FW-'):
    """Plan, apply in the simulator, and check that a second plan changes nothing."""
    first = plan(table, wanted, scope)
    after = simulate(table, first.lines)
    second = plan(after, wanted, scope)
    assert second.lines == [], second.lines
    assert foreign(after) == foreign(table)
    assert r.render_owned(r.read_owned(after, scope, 'ipv4', wanted.policies)) == first.after
    return first, after


def test_overridden_replaces_owned_chain_keeps_foreign_and_sets_policy_in_one_transaction():
    table = tables('nft', 'ipv4')['filter']
    wanted = r.Owned([chain('SNF-FW-INPUT', ('INPUT', 'first'), ACCEPT_LO, ESTABLISHED, SSH)], [('INPUT', 'DROP')])
    first, after = converge(table, wanted)
    assert first.lines[0] == '*filter' and first.lines[-1] == 'COMMIT'
    assert first.lines[1] == ':INPUT DROP [0:0]'
    assert ':SNF-FW-INPUT - [0:0]' in first.lines
    assert first.lines[-2] == '-X SNF-FW-LOG'
    assert not [line for line in first.lines if line.startswith(('-D', '-I'))]  # hook already in place
    assert after.policies['INPUT'] == 'DROP'
    assert after.rules['SNF-FW-INPUT'][0] == '-i lo -m comment --comment "snf:lo" -j ACCEPT'


def test_nothing_to_do_is_an_empty_transaction():
    table = tables('legacy', 'ipv4')['filter']
    live = r.read_owned(table, 'SNF-FW-', 'ipv4')
    assert r.Plan(table, 'SNF-FW-', 'ipv4', live, live.copy()).lines == []


def test_hook_moves_to_first_and_last_around_foreign_rules():
    table = tables('nft', 'ipv4')['nat']
    wanted = r.Owned([
        r.Chain('SNF-NAT-POST', ('POSTROUTING', 'first'), r.read_owned(table, 'SNF-NAT-', 'ipv4')
                .chains['SNF-NAT-POST'].rules),
        r.Chain('SNF-NAT-PRE', ('PREROUTING', 'last'), r.read_owned(table, 'SNF-NAT-', 'ipv4')
                .chains['SNF-NAT-PRE'].rules),
    ])
    first, after = converge(table, wanted, 'SNF-NAT-')
    # PREROUTING already ends with the jump; POSTROUTING's jump moves in front of Docker's and kube-proxy's.
    assert [line for line in first.lines if line.startswith(('-D', '-I', '-A'))] == [
        '-D POSTROUTING -j SNF-NAT-POST', '-I POSTROUTING 1 -j SNF-NAT-POST']
    assert after.rules['POSTROUTING'][0] == '-j SNF-NAT-POST'
    assert after.rules['PREROUTING'][-1] == '-j SNF-NAT-PRE'


def test_hooks_of_one_builtin_keep_declared_order_and_tolerate_other_scopes():
    table = r.empty_table('filter')
    table.rules['INPUT'] = ['-j KUBE-FIREWALL', '-j SNF-GW-IN']
    table.add_chain('SNF-GW-IN', '-')
    table.add_chain('KUBE-FIREWALL', '-')
    wanted = r.Owned([chain('SNF-FW-A', ('INPUT', 'first'), SSH), chain('SNF-FW-B', ('INPUT', 'first'), SSH),
                      chain('SNF-FW-Z', ('INPUT', 'last'), SSH)])
    dummy, after = converge(table, wanted)
    assert after.rules['INPUT'] == ['-j SNF-FW-A', '-j SNF-FW-B', '-j KUBE-FIREWALL', '-j SNF-GW-IN', '-j SNF-FW-Z']
    # Another scope hooking first later does not make ours move back and forth.
    after.rules['INPUT'].insert(0, '-j SNF-GW-FIRST')
    after.add_chain('SNF-GW-FIRST', '-')
    assert plan(after, wanted).lines == []


def test_a_jump_with_matches_into_an_owned_chain_is_foreign_and_kept():
    # The collection's hook is exactly '-j CHAIN'; an admin's '-s ... -j CHAIN' is not its to delete.
    table = r.empty_table('filter')
    table.add_chain('SNF-FW-IN', '-')
    admin = '-s 10.9.9.9/32 -m comment --comment "admin jump" -j SNF-FW-IN'
    table.rules['INPUT'] = [admin]
    first, after = converge(table, r.Owned([chain('SNF-FW-IN', ('INPUT', 'first'))]))
    assert not [line for line in first.lines if line.startswith('-D ')]
    assert after.rules['INPUT'] == ['-j SNF-FW-IN', admin]
    # Re-hooking (a move to last) keeps it byte-identical too.
    second, again = converge(after, r.Owned([chain('SNF-FW-IN', ('INPUT', 'last'))]))
    assert again.rules['INPUT'] == [admin, '-j SNF-FW-IN']
    assert '-D INPUT %s' % admin not in second.lines


def test_removing_a_chain_a_foreign_builtin_rule_jumps_to_is_refused():
    table = r.empty_table('filter')
    table.add_chain('SNF-FW-IN', '-')
    admin = '-s 10.9.9.9/32 -j SNF-FW-IN'
    table.rules['INPUT'] = ['-j SNF-FW-IN', admin]
    with pytest.raises(ValidationError, match=r'cannot remove SNF-FW-IN: rule "-A INPUT -s 10.9.9.9/32 -j SNF-FW-IN"'):
        r.check_references(table, 'SNF-FW-', r.Owned())
    # The plain hook alone goes with its chain.
    table.rules['INPUT'] = ['-j SNF-FW-IN']
    r.check_references(table, 'SNF-FW-', r.Owned())


def test_deleting_all_chains_of_a_scope_removes_hooks_and_nothing_else():
    table = tables('legacy', 'ipv4')['filter']
    first, after = converge(table, r.Owned())
    assert 'SNF-FW-INPUT' not in after.rules and 'SNF-FW-LOG' not in after.rules
    assert not [args for args in after.rules['INPUT'] if 'SNF-' in args]
    assert first.lines[-3:] == ['-X SNF-FW-INPUT', '-X SNF-FW-LOG', 'COMMIT']


def test_jump_to_undefined_owned_chain_is_refused():
    table = r.empty_table('filter')
    wanted = r.Owned([chain('SNF-FW-A', None, dict(jump='SNF-FW-MISSING'))])
    with pytest.raises(ValidationError, match='SNF-FW-MISSING, which is not defined'):
        plan(table, wanted)


def test_removing_a_chain_still_used_by_a_foreign_chain_is_refused():
    table = r.empty_table('filter')
    table.add_chain('SNF-FW-A', '-')
    table.add_chain('ADMIN', '-')
    table.rules['ADMIN'] = ['-j SNF-FW-A']
    with pytest.raises(ValidationError, match='outside the managed chains jumps to it'):
        plan(table, r.Owned())


def test_empty_table_renders_a_bootable_restore_file():
    table = r.empty_table('filter')
    wanted = r.Owned([chain('SNF-FW-IN', ('INPUT', 'first'), ACCEPT_LO)], [('INPUT', 'DROP')])
    assert plan(table, wanted).lines == [
        '*filter', ':INPUT DROP [0:0]', ':SNF-FW-IN - [0:0]',
        '-A SNF-FW-IN -i lo -m comment --comment "snf:lo" -j ACCEPT', '-I INPUT 1 -j SNF-FW-IN', 'COMMIT']


def test_put_rule_named_replaces_in_place_and_orders_new_rules():
    rules = chain('SNF-FW-A', None, ACCEPT_LO, ESTABLISHED, SSH).rules
    new_ssh = r.Rule.from_spec(r.make_rule(dict(SSH, destination_port=2222), 'ipv4', 'filter'))
    assert r.put_rule(rules, new_ssh) == 2
    assert '2222' in rules[2].text and len(rules) == 3
    # Unnamed rules: the spec is the identity.
    assert r.put_rule(rules, r.Rule.from_spec(r.make_rule(ESTABLISHED, 'ipv4', 'filter'))) == 1
    web = r.Rule.from_spec(r.make_rule(dict(name='web', protocol='tcp', destination_port=80, jump='ACCEPT'),
                                       'ipv4', 'filter'))
    assert r.put_rule(rules, web, 'before', 'ssh') == 2
    assert r.put_rule(rules, r.Rule.from_spec(r.make_rule(dict(jump='DROP'), 'ipv4', 'filter')), 'first') == 0
    with pytest.raises(ValidationError, match="^relative_to: no rule named 'nope'"):
        r.put_rule(rules, r.Rule.from_spec(r.make_rule(dict(jump='RETURN'), 'ipv4', 'filter')), 'after', 'nope',
                   'relative_to')
