# SPDX-License-Identifier: GPL-3.0-or-later
"""What an attacker tried (issue 12), against the real modules and the kernel, in namespaces of the test's own.

Each test runs the modules as Ansible runs them on a host, inside a private
mount and network namespace (conftest.Lab), and checks the ruleset with
iptables-save and, where the defect was about packets, with packets.
"""
import os

from netns_lab import wait_for

PAYLOAD = '-A SNF-X-IN -j ACCEPT'
SERVER, CLIENT = '10.99.0.1', '10.99.0.2'


def firewall(scope='X', **extra):
    args = dict(table='filter', family='ipv4', scope=scope, state='overridden', policies={'INPUT': 'DROP'},
                chains=[dict(name='SNF-%s-IN' % scope, hook='INPUT', rules=[
                    dict(in_interface='lo', jump='ACCEPT'),
                    dict(ctstate=['ESTABLISHED', 'RELATED'], jump='ACCEPT'),
                    dict(name='ssh', protocol='tcp', destination_port=22, jump='ACCEPT')])])
    args.update(extra)
    return args


def served(lab):
    lab.link('client', SERVER, CLIENT)
    lab.listen(SERVER, 8080)
    assert lab.connects('client', SERVER, 8080)  # open before any rule
    result = lab.module('ruleset', firewall())
    assert result.get('changed') is True, result
    assert not lab.connects('client', SERVER, 8080)


def test_line_breaks_in_text_inject_nothing_and_the_port_stays_closed(lab):
    served(lab)
    before = lab.rules()
    for sep in ('\u2028', '\f', '\x85', '\v', '\x1e'):
        comment = 'admins%s%s%s-A X --comment "' % (sep, PAYLOAD, sep)
        attempt = lab.module('ruleset', dict(firewall(), state='merged', policies=None, chains=[dict(
            name='SNF-X-IN', rules=[dict(name='web', protocol='tcp', destination_port=80, comment=comment,
                                         jump='ACCEPT')])]))
        assert attempt.get('failed') and attempt['param'] == 'chains[0].rules[0].comment', attempt
        assert 'single line' in attempt['msg']
        nat = lab.module('nat_rule', dict(type='dnat', name='web', in_interface='snf0', protocol='tcp',
                                          destination_port=80, to_destination='10.99.0.2', comment=comment))
        assert nat.get('failed') and nat['param'] == 'comment', nat
        armed = lab.module('ruleset', dict(firewall(), rollback_timeout=30, chains=[dict(
            name='SNF-X-IN', hook='INPUT', rules=[dict(jump='LOG', log_prefix='x%s%s' % (sep, PAYLOAD))])]))
        assert armed.get('failed') and armed['param'] == 'chains[0].rules[0].log_prefix', armed
    assert lab.rules() == before and lab.rules('nat') == lab.rules('nat')
    assert 'DNAT' not in lab.save('nat')
    assert lab.run(['ls', '/run/snf-netfilter/netns-%d/rollback' % lab.netns], check=False).split() == []
    assert not lab.connects('client', SERVER, 8080)


def test_a_rule_the_parser_cannot_read_fails_the_run_and_is_never_replayed(lab):
    served(lab)
    # What an older version let through: one rule whose comment holds a line separator and a rule.
    planted = '-A SNF-X-IN -p tcp -m tcp --dport 9 -m comment --comment "x\u2028%s\u2028" -j ACCEPT' % PAYLOAD
    lab.restore('*filter\n%s\nCOMMIT\n' % planted)
    before = lab.rules()
    assert planted in before
    change = lab.module('ruleset', dict(firewall(), state='merged', policies=None, chains=[dict(
        name='SNF-X-IN', rules=[dict(name='web', protocol='tcp', destination_port=80, jump='ACCEPT')])]))
    assert change.get('failed') and 'cannot read' in change['msg'] and '\\u2028' in change['msg'], change
    assert lab.rules() == before and '%s' % PAYLOAD not in before
    assert not lab.connects('client', SERVER, 8080)
    # The rollback timer would have to restore it: refused before anything is applied.
    armed = lab.module('ruleset', dict(firewall(), rollback_timeout=30, chains=[dict(
        name='SNF-X-IN', hook='INPUT', rules=[dict(in_interface='lo', jump='ACCEPT')])]))
    assert armed.get('failed') and 'cannot read' in armed['msg'] and lab.rules() == before, armed
    # Replacing the chain writes exactly what was asked for, and the planted rule is gone.
    replaced = lab.module('ruleset', firewall())
    assert replaced['changed'] and planted not in lab.rules() and not lab.connects('client', SERVER, 8080)


def test_names_with_a_trailing_newline_change_nothing(lab):
    before = lab.rules()
    for args, param in ((dict(firewall(), chains=[dict(name='SNF-X-IN\n', hook='INPUT')]), 'chains[0].name'),
                        (dict(firewall(), scope='X\n'), 'scope')):
        result = lab.module('ruleset', args)
        assert result.get('failed') and result['param'] == param, result
    assert lab.rules() == before


def test_numbers_and_huge_values_are_refused_naming_the_option(lab):
    before, nat_before = lab.rules(), lab.rules('nat')
    for rule, param in ((dict(protocol='tcp', destination_port='²', jump='ACCEPT'), 'destination_port'),
                        (dict(protocol='²', jump='ACCEPT'), 'protocol'),
                        (dict(name='n' * 1000000, jump='ACCEPT'), 'name')):
        result = lab.module('ruleset', dict(firewall(), chains=[dict(name='SNF-X-IN', hook='INPUT', rules=[rule])]))
        assert result.get('failed') and result['param'] == 'chains[0].rules[0].%s' % param, result
        assert len(result['msg']) < 500
    for args, param in ((dict(type='masquerade', out_interface='snf0', to_ports='0'), 'to_ports'),
                        (dict(type='dnat', protocol='tcp', destination_port=80, to_destination='10.99.0.2:0'),
                         'to_destination'),
                        (dict(type='dnat', protocol='tcp', destination_port='٨٠', to_destination='10.99.0.2'),
                         'destination_port')):
        result = lab.module('nat_rule', args)
        assert result.get('failed') and result['param'] == param, result
    assert lab.rules() == before and lab.rules('nat') == nat_before


def state_dir(lab, netns=None):
    inode = lab.netns if netns is None else int(lab.run(['stat', '-L', '-c', '%i', '/run/netns/%s' % netns]))
    return '/run/snf-netfilter/netns-%d/rollback' % inode


def modes(lab, path):
    out = lab.run(['find', path, '-printf', '%m %u %y %p\\n'])
    return [line.split(' ', 3) for line in out.strip().split('\n')]


def test_state_is_private_under_umask_000_and_planted_records_are_refused(lab):
    armed = lab.module('ruleset', dict(firewall(), rollback_timeout=60), umask='000')
    assert armed['changed'] and armed['rollback']['armed'] and armed['rollback']['status'] == 'pending', armed
    root = state_dir(lab)
    assert armed['rollback']['state_dir'].startswith(root + '/')
    entries = modes(lab, '/run/snf-netfilter')
    wrong = [entry for entry in entries if entry[:3] != ['700' if entry[2] == 'd' else '600', 'root', entry[2]]]
    assert len(entries) > 10 and wrong == [], wrong
    # An unprivileged user can neither swap the pending record nor plant one.
    nobody = lab.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c',
                      'echo {} > %s/state.json; echo {} > %s/x' % (armed['rollback']['state_dir'], root)], check=False)
    assert lab.run(['ls', root]).split() == [armed['rollback']['id']], nobody
    confirmed = lab.module('ruleset', dict(rollback_confirm=armed['rollback']['id']))
    assert confirmed['changed'] and confirmed['rollback']['status'] == 'confirmed', confirmed
    before = lab.rules()
    change = dict(firewall(), rollback_timeout=60, chains=[dict(name='SNF-X-IN', hook='INPUT', rules=[
        dict(in_interface='lo', jump='ACCEPT')])])

    # A state directory others can write: refused, nothing applied.
    lab.run(['chmod', '0777', root])
    refused = lab.module('ruleset', change)
    assert refused.get('failed') and root in refused['msg'] and 'writable by group or others' in refused['msg']
    assert lab.rules() == before
    lab.run(['chmod', '0700', root])

    # A record whose id is an absolute path: refused, naming the file; the directory it names is left alone.
    victim = lab.run(['mktemp', '-d', '/run/snf-victim.XXXXXX']).strip()
    planted = os.path.join(root, '0123456789abcdef')
    lab.run(['mkdir', '-m', '0700', planted])
    lab.run(['sh', '-c', 'umask 077; printf %s "$1" > "$2"', 'sh',
             '{"id": "%s", "status": "confirmed", "state_dir": "%s"}' % (victim, victim),
             planted + '/state.json'])
    refused = lab.module('ruleset', change)
    assert refused.get('failed') and planted + '/state.json' in refused['msg'] and 'remove' in refused['msg'], refused
    assert lab.rules() == before and lab.run(['ls', '-d', victim]).strip() == victim

    # A corrupt record: the same clear failure, with what to do.
    lab.run(['sh', '-c', 'printf "[1, 2" > "$1"', 'sh', planted + '/state.json'])
    refused = lab.module('ruleset', change)
    assert refused.get('failed') and 'corrupt' in refused['msg'] and planted in refused['msg'], refused
    assert lab.rules() == before
    lab.run(['rm', '-r', planted])
    assert lab.module('ruleset', change)['changed']


def test_rollback_state_is_per_network_namespace(lab):
    lab.add_netns('other')
    first = lab.module('ruleset', dict(firewall('P'), policies=None, rollback_timeout=5))
    assert first['rollback']['status'] == 'pending'
    applied = lab.rules()
    # The pending rollback of the lab's namespace does not block the same scope in another namespace...
    other = lab.module('ruleset', dict(firewall('P'), policies=None), netns='other')
    assert other['changed'] and not other.get('failed'), other
    other_rules = lab.rules(netns='other')
    assert lab.run(['ls', state_dir(lab, 'other')], check=False).split() == []
    # ...and fires in its own namespace only.
    record = os.path.join(first['rollback']['state_dir'], 'state.json')
    assert wait_for(lambda: '"rolled_back"' in lab.run(['cat', record]), timeout=20), lab.run(['cat', record])
    assert lab.rules() != applied and not [line for line in lab.rules() if 'SNF-P-' in line]
    assert lab.rules(netns='other') == other_rules


def test_a_pending_rollback_of_another_scope_blocks_changing_its_policy(lab):
    first = lab.module('ruleset', dict(firewall('A'), rollback_timeout=60))
    ident = first['rollback']['id']
    before = lab.rules()
    second = lab.module('ruleset', firewall('B'))
    assert second.get('failed') and ident in second['msg'] and 'rollback_confirm=%s' % ident in second['msg'], second
    assert 'INPUT policy' in second['msg'] and lab.rules() == before
    # Without the policy, the other scope is free to change.
    assert lab.module('ruleset', dict(firewall('B'), policies=None))['changed']
    assert lab.module('ruleset', dict(rollback_confirm=ident))['changed']
    assert not lab.module('ruleset', firewall('B')).get('failed')


def test_a_foreign_jump_into_an_owned_chain_is_kept_byte_identical(lab):
    args = dict(table='filter', family='ipv4', scope='OW', state='overridden',
                chains=[dict(name='SNF-OW-INPUT', hook='INPUT',
                             rules=[dict(protocol='tcp', destination_port=22, jump='ACCEPT')])])
    assert lab.module('ruleset', args)['changed']
    admin = '-A INPUT -s 10.9.9.9/32 -m comment --comment "admin jump" -j SNF-OW-INPUT'
    lab.restore('*filter\n%s\nCOMMIT\n' % admin)
    for position in ('last', 'first'):
        moved = lab.module('ruleset', dict(args, chains=[dict(args['chains'][0], hook_position=position)]))
        assert moved['changed'] and admin in lab.rules(), moved
        assert lab.rules().count('-A INPUT -j SNF-OW-INPUT') == 1
    before = lab.rules()
    removed = lab.module('ruleset', dict(args, state='deleted'))
    assert removed.get('failed') and admin[3:] in removed['msg'] and removed['param'] == 'chains', removed
    assert lab.rules() == before
