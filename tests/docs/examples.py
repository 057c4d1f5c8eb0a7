#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs the examples of the documentation against one lab, as written.

  examples.py run      bring up the lab (lan, gw, gw2, wan), run every marked
                       example in order, write the output samples it produced
                       to .cache/doc-examples/outputs.json, remove the lab;
                       fails when an example fails, misbehaves, or an output
                       sample in docs/ differs from what the run printed
  examples.py update   rewrite the output samples in docs/ from the last run,
                       and docs/conntrack-report.png from its screenshot of
                       the report page (make docs does this)
  examples.py list     the marked examples and output samples

A runnable code block is marked by an HTML comment on the line before it,
`<!-- example: NAME -->`; an output sample by `<!-- output: NAME -->`.
Shell blocks are run command by command (`ansible-playbook` only, split like
a shell would, no shell involved), in a working directory holding
`inventory/hosts.yml` (the guide's inventory) and `inventory/lab.yml`, the
lab overlay of docs/lab.md, which points the hosts at the lab's containers.
That overlay is the only substitution. Every marked block must be run by the
sequence below, and every output sample produced by it.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402  (tests/docs/browser.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = ['docs/guide.md', 'docs/roles.md', 'docs/conntrack.md', 'docs/lab.md']
CAPTURE = os.path.join(ROOT, '.cache', 'doc-examples', 'outputs.json')
# The report page as Chromium drew it in the last run; `update` copies it to docs/.
SCREENSHOT = os.path.join(ROOT, '.cache', 'doc-examples', 'conntrack-report.png')
DOCS_SCREENSHOT = os.path.join(ROOT, 'docs', 'conntrack-report.png')
PLATFORMS = ['lan', 'gw', 'gw2', 'wan']
BLOCK = re.compile(r'^<!-- (example|output): ([a-z0-9-]+) -->\n```([a-z]*)\n(.*?)^```$', re.M | re.S)


class ExampleError(Exception):
    pass


def parse_docs():
    """{'example': {name: (path, lang, text)}, 'output': {name: (path, text)}}."""
    found = {'example': {}, 'output': {}}
    for path in DOCS:
        with open(os.path.join(ROOT, path)) as handle:
            text = handle.read()
        for kind, name, lang, body in BLOCK.findall(text):
            if name in found[kind]:
                raise ExampleError('%s: %s %s is marked twice' % (path, kind, name))
            found[kind][name] = (path, lang, body)
        for line in text.splitlines():
            if line.startswith('<!-- example') or line.startswith('<!-- output'):
                if not re.match(r'^<!-- (example|output): [a-z0-9-]+ -->$', line):
                    raise ExampleError('%s: malformed marker %r' % (path, line))
    return found


def commands(text):
    """The commands of a shell block: continuation lines joined, comments skipped."""
    joined = re.sub(r'\\\n\s*', ' ', text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        argv = shlex.split(line, comments=True)
        if argv[0] != 'ansible-playbook':
            raise ExampleError('only ansible-playbook commands are run, not %r' % line)
        out.append(argv)
    return out


class Lab:
    def __init__(self, prefix, docs):
        self.prefix = prefix
        self.docs = docs
        self.used = set()
        self.outputs = {}
        self.work = tempfile.mkdtemp(prefix='snf-doc-examples.')
        self.env = dict(os.environ, SNF_LAB_PREFIX=prefix, ANSIBLE_STDOUT_CALLBACK='ansible.builtin.default',
                        ANSIBLE_CALLBACK_RESULT_FORMAT='json', ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0')
        for name in ('CI_PROJECT_DIR', 'CI_COMMIT_BRANCH'):
            self.env.pop(name, None)
        self.log = open(os.path.join(self.work, 'examples.log'), 'w')

    # --- the lab
    def podman(self, host, *argv):
        return subprocess.run(['podman', 'exec', '%s.%s' % (self.prefix, host)] + list(argv),
                              check=True, capture_output=True, text=True).stdout

    def up(self):
        subprocess.run(['ansible-playbook', os.path.join(ROOT, 'tests/lab/create.yml'),
                        '-e', json.dumps({'lab_platforms': PLATFORMS})],
                       check=True, env=self.env,
                       stdout=self.log, stderr=subprocess.STDOUT)
        # Idle entries stay ten minutes, so that none expires between an example and the next.
        for host in ('gw', 'gw2'):
            for name in ('nf_conntrack_udp_timeout', 'nf_conntrack_udp_timeout_stream', 'nf_conntrack_icmp_timeout'):
                self.podman(host, 'sysctl', '-q', '-w', 'net.netfilter.%s=600' % name)

    def down(self):
        subprocess.run(['bash', os.path.join(ROOT, 'tests/lab/clean.sh'), self.prefix], check=False)

    def ruleset(self, host):
        return ''.join(self.podman(host, cmd) for cmd in ('iptables-save', 'ip6tables-save'))

    def owned(self, host):
        lines = [line for line in self.ruleset(host).splitlines()
                 if 'SNF-' in line or line.startswith(':') or line.startswith('*')]
        return '\n'.join(re.sub(r'\[[0-9]+:[0-9]+\]', '', line) for line in lines)

    def probe(self, host, proto, dst):
        """One snf-probe from host to dst; the source address the peer saw."""
        sent = json.loads(self.podman(host, 'snf-probe', 'send', proto, dst))
        if not sent['ok']:
            raise ExampleError('lab traffic: %s from %s to %s got no answer: %s' % (proto, host, dst, sent))
        return (sent.get('seen') or {}).get('src')

    def udp(self, host, dst, count):
        """count UDP probes from host to dst (one conntrack entry each)."""
        for dummy in range(count):
            self.probe(host, 'udp', dst)

    # --- the examples
    def block(self, name, lang=None):
        if name not in self.docs['example']:
            raise ExampleError('no example marked %s in %s' % (name, ', '.join(DOCS)))
        self.used.add(name)
        path, found_lang, text = self.docs['example'][name]
        if lang and found_lang != lang:
            raise ExampleError('%s: example %s is %s, expected %s' % (path, name, found_lang, lang))
        return text

    def write(self, relpath, text):
        path = os.path.join(self.work, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as handle:
            handle.write(text)

    def play(self, argv, expect_rc=0, env=None, label=None):
        """Runs ansible-playbook in the work directory; returns what it printed, parsed."""
        label = label or ' '.join(argv)
        start = time.time()
        proc = subprocess.run(argv, cwd=self.work, env=dict(self.env, PWD=self.work, **(env or {})),
                              capture_output=True, text=True, check=False)
        self.log.write('=== %s (rc %d, %.0fs)\n%s\n%s\n' % (label, proc.returncode, time.time() - start,
                                                            proc.stdout, proc.stderr))
        self.log.flush()
        print('  %-70s rc %d  %4.0fs' % (label[:70], proc.returncode, time.time() - start), flush=True)
        doc = parse_output(proc.stdout)
        if proc.returncode != expect_rc:
            raise ExampleError('%s: rc %d (expected %d)\n%s\n%s'
                               % (label, proc.returncode, expect_rc, proc.stdout[-4000:], proc.stderr[-2000:]))
        return doc

    def run_block(self, name, expect_rc=(), env=None):
        docs = []
        for index, argv in enumerate(commands(self.block(name, 'sh'))):
            rc = expect_rc[index] if index < len(expect_rc) else 0
            docs.append(self.play(argv, rc, env, label='%s: %s' % (name, ' '.join(argv))))
        return docs

    def run_playbook(self, name, filename, expect_rc=0, extra=(), env=None):
        self.write(filename, self.block(name, 'yaml'))
        return self.play(['ansible-playbook', '-i', 'inventory', filename] + list(extra), expect_rc, env,
                         label='%s: ansible-playbook -i inventory %s %s' % (name, filename, ' '.join(extra)))

    def run_tasks(self, name, hosts='gateways'):
        """A block of tasks, run as the tasks of a play on hosts."""
        text = self.block(name, 'yaml')
        play = '- name: %s\n  hosts: %s\n  gather_facts: false\n  tasks:\n%s' % (
            name, hosts, ''.join('    ' + line + '\n' for line in text.splitlines()))
        self.write(name + '.yml', play)
        return self.play(['ansible-playbook', '-i', 'inventory', name + '.yml'], label='%s (tasks, hosts %s)' % (name, hosts))

    def output(self, name, text):
        self.outputs[name] = text.rstrip('\n') + '\n'


HOST_LINE = re.compile(r'^(ok|changed|fatal|failed|skipping): \[([^\]]+?)(?: -> [^\]]+)?\](?:: FAILED!)?(?: => (.*))?$')


def parse_output(text):
    """What the default callback printed, as {'plays': [{'tasks': [{'task': {'name'}, 'hosts': {host: result}}]}]}:
    the result printed after "=>" (debug messages, failures), else only changed/failed."""
    tasks = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        task = re.match(r'^TASK \[(.*)\] \**$', line)
        if task:
            tasks.append({'task': {'name': task.group(1)}, 'hosts': {}})
            continue
        host = HOST_LINE.match(line)
        if not host or not tasks:
            if line.startswith('...ignoring') and tasks and tasks[-1].get('last'):
                tasks[-1]['hosts'][tasks[-1]['last']]['ignore_errors'] = True
            continue
        status, name, rest = host.groups()
        result = {}
        if rest == '{':
            body = ['{']
            while index < len(lines):
                body.append(lines[index])
                index += 1
                if lines[index - 1] == '}':
                    break
            try:
                result = json.loads('\n'.join(body))
            except ValueError:
                result = {}
        elif rest and rest.startswith('{'):
            try:
                result = json.loads(rest)
            except ValueError:
                result = {}
        result.setdefault('changed', status == 'changed')
        result['failed'] = status in ('fatal', 'failed')
        previous = tasks[-1]['hosts'].get(name)
        if previous:  # a loop: changed or failed if any item was
            result['changed'] = result['changed'] or previous.get('changed', False)
            result['failed'] = result['failed'] or previous.get('failed', False)
            for key, value in previous.items():
                result.setdefault(key, value)
        tasks[-1]['hosts'][name] = result
        tasks[-1]['last'] = name
    return {'plays': [{'tasks': tasks}]}


def results(doc, task):
    """{host: result} of the last run of the task named task."""
    found = {}
    for play in doc['plays']:
        for entry in play['tasks']:
            if entry['task']['name'] == task:
                found = entry['hosts']
    return found


def msg_lines(doc, task):
    res = results(doc, task)
    if not res:
        raise ExampleError('task %r did not run' % task)
    msg = list(res.values())[0]['msg']
    return msg if isinstance(msg, list) else [msg]


def failures(doc):
    return [(host, res.get('msg', '')) for play in doc['plays'] for entry in play['tasks']
            for host, res in entry['hosts'].items() if res.get('failed') and not res.get('ignore_errors')]


def check(condition, message):
    if not condition:
        raise ExampleError(message)


def say(text):
    print('- ' + text, flush=True)


def sequence(lab):
    lab.write('inventory/hosts.yml', lab.block('guide-inventory', 'yaml'))
    lab.write('inventory/lab.yml', lab.block('lab-overlay', 'yaml'))

    say('guide, job 1: preview, apply, apply again')
    check_doc, first, second = lab.run_block('guide-gateway')
    table = 'Report the gateways'
    check(msg_lines(check_doc, table) == msg_lines(first, table),
          'the check-mode table does not predict the real run:\n%s\n%s'
          % ('\n'.join(msg_lines(check_doc, table)), '\n'.join(msg_lines(first, table))))
    check(all(' yes ' in line for line in msg_lines(first, table)[2:]), 'the first run changed nothing')
    check(all(' no ' in line for line in msg_lines(second, table)[2:]), 'the second run changed something')
    lab.output('gateway', '\n'.join(msg_lines(first, table) + ['...'] + msg_lines(second, table)[2:]))
    converged = {host: lab.owned(host) for host in ('gw', 'gw2')}

    say('guide: a read-only nf_conntrack_max is refused before any change, in check mode too (issue 19 item 2)')
    changed_rules = {'nat_gateway_snat': [{'source': '10.99.0.0/16', 'out_interface': 'eth1', 'to_source': '203.0.113.1'}]}
    sized = lab.block('guide-conntrack-max', 'yaml')
    lab.write('inventory/host_vars/edge1.yml', sized)
    for extra in (['--check'], []):
        doc = lab.play(['ansible-playbook', '-i', 'inventory', 'stateful.netfilter.gateway', '--limit', 'edge1',
                        '-e', json.dumps(changed_rules)] + extra, expect_rc=2, label='guide-conntrack-max %s' % ' '.join(extra))
        failed = failures(doc)
        # edge1's refusal, then the playbook's own last task on edge1 (the rollout's failed hosts).
        check(sorted({host for host, dummy in failed}) == ['edge1'] and 'nat_gateway_conntrack_max' in failed[0][1],
              'expected edge1 to refuse nat_gateway_conntrack_max, got %s' % failed)
        check(lab.owned('gw') == converged['gw'], 'the refused run changed the rules of gw')
    lab.output('conntrack-max-refused', failed[0][1])
    os.remove(os.path.join(lab.work, 'inventory/host_vars/edge1.yml'))

    say('a timeout name ending in a newline is refused before any change (issue 12 item 2)')
    bad = dict(changed_rules, nat_gateway_conntrack_timeouts={'nf_conntrack_tcp_timeout_established\n': 600})
    doc = lab.play(['ansible-playbook', '-i', 'inventory', 'stateful.netfilter.gateway', '--limit', 'edge1', '-e', json.dumps(bad)],
                   expect_rc=2, label='gateway with a timeout key ending in a newline')
    check([host for host, message in failures(doc) if 'nat_gateway_conntrack_timeouts' in message] == ['edge1'],
          'expected edge1 to refuse the key: %s' % failures(doc))
    check({host: lab.owned(host) for host in ('gw', 'gw2')} == converged, 'the refused run changed the rules')

    say('guide: the roles in a playbook of your own (on edge1: the same as above), and one nat_rule')
    doc = lab.run_playbook('guide-own-playbook', 'gateways.yml', extra=['--limit', 'edge1'])
    check(not any(res.get('changed') for res in results(doc, 'stateful.netfilter.firewall : Apply the filter chains and policies').values()),
          'the own playbook changed the converged firewall')
    lab.run_tasks('guide-nat-rule')

    say('guide, job 2: the flush playbook (3 UDP flows through edge1, 2 from edge2)')
    lab.udp('lan', '203.0.113.8', 3)
    lab.udp('gw2', '203.0.113.8', 2)
    dry, real = lab.run_block('guide-flush')
    flush_table = 'Show the table'
    check(msg_lines(dry, flush_table)[-1].split()[1:4] == ['-', '5', '5'], 'dry run: %s' % msg_lines(dry, flush_table))
    check(msg_lines(real, flush_table)[-1].split()[1:4] == ['-', '5', '5'], 'real run: %s' % msg_lines(real, flush_table))
    lab.output('flush', '\n'.join(msg_lines(dry, flush_table) + msg_lines(dry, 'Say what is next') + ['']
                                  + msg_lines(real, flush_table) + msg_lines(real, 'Say what is next')))

    say('the flush playbook with --check: the hint says what the real run needs (issue 19 item 5)')
    lab.udp('gw2', '203.0.113.8', 1)
    argv = commands(lab.block('guide-flush'))[1] + ['--check']
    doc = lab.play(argv, label='guide-flush, the second command with --check')
    hint = ' '.join(msg_lines(doc, 'Say what is next'))
    check('--check' in hint and 'flush_dry_run=false' not in hint and '1 entry' in hint and '1 entries' not in hint,
          'the hint after --check: %s' % hint)
    lab.output('flush-check-hint', hint)

    say('guide: a host over its flush_max_entries fails alone; a failed canary halts the rollout')
    flush_real = commands(lab.block('guide-flush'))[1]
    lab.udp('lan', '203.0.113.8', 3)
    lab.udp('gw2', '203.0.113.8', 1)
    lab.write('inventory/host_vars/edge2.yml', 'flush_max_entries: 1\n')
    doc = lab.play(flush_real + ['-e', '{"flush_serial": 2}'], expect_rc=2, label='guide-flush, edge2 over its flush_max_entries')
    rows = {line.split()[0]: line.split() for line in msg_lines(doc, flush_table)[2:]}
    check(rows['edge1'][1:4] == ['flushed', '3', '3'] and rows['edge2'][1:4] == ['failed', '2', '0']
          and 'max_entries' in msg_lines(doc, flush_table)[3], 'max_entries run: %s' % msg_lines(doc, flush_table))
    check(len(lab.podman('gw2', 'conntrack', '-L', '-p', 'udp', '-d', '203.0.113.8', '--dport', '5000').splitlines()) == 2,
          'edge2 deleted entries although it refused')
    lab.output('flush-max-entries', '\n'.join(msg_lines(doc, flush_table)))
    os.remove(os.path.join(lab.work, 'inventory/host_vars/edge2.yml'))
    lab.udp('lan', '203.0.113.8', 3)
    lab.write('inventory/host_vars/edge1.yml', 'flush_max_entries: 0\n')
    doc = lab.play(flush_real + ['-e', '{"flush_serial": 1}'], expect_rc=2, label='guide-flush, the canary edge1 refuses')
    rows = {line.split()[0]: line for line in msg_lines(doc, flush_table)[2:]}
    check(rows['edge1'].split()[1:4] == ['failed', '3', '0'] and 'rollout halted' in rows['edge2'],
          'halted run: %s' % msg_lines(doc, flush_table))
    check(len(lab.podman('gw2', 'conntrack', '-L', '-p', 'udp', '-d', '203.0.113.8', '--dport', '5000').splitlines()) == 2,
          'the halted rollout touched edge2')
    lab.output('flush-halted', '\n'.join(msg_lines(doc, flush_table)))
    os.remove(os.path.join(lab.work, 'inventory/host_vars/edge1.yml'))

    say('guide: the kube-proxy case, on the k8s_nodes of the overlay')
    lab.run_playbook('guide-kube-proxy', 'kube-proxy.yml')

    say('guide: the report playbook, with and without report_dir (issue 19 item 1)')
    # What the cases above left in the tables depends on what their runs flushed and when; the report shows a
    # known state: both tables emptied, then two UDP flows from the lan through edge1.
    for host in ('gw', 'gw2'):
        lab.podman(host, 'conntrack', '-F')
    lab.udp('lan', '203.0.113.8', 2)
    with_dir, without_dir = lab.run_block('guide-report')
    check(msg_lines(with_dir, 'Show the fleet')[:5] == msg_lines(without_dir, 'Show the fleet')[:5],
          'the two report runs differ')
    check(os.path.exists(os.path.join(lab.work, 'reports', 'conntrack-report.csv')), 'no conntrack-report.csv in reports/')
    lab.output('report', '\n'.join(msg_lines(with_dir, 'Show the fleet')[:5]))
    say('conntrack.md: the report\'s HTML page in headless Chromium: no console message, not blank (issue 16 item 5)')
    page = os.path.join(lab.work, 'reports', 'conntrack-report.html')
    check(os.path.exists(page), 'no conntrack-report.html in reports/')
    with open(page) as handle:
        text = handle.read()
    check('<script' not in text and all('>%s</a>' % host in text for host in ('edge1', 'edge2')),
          'conntrack-report.html: a script, or edge1/edge2 missing from the summary rows')
    os.makedirs(os.path.dirname(CAPTURE), exist_ok=True)
    try:
        seen = browser.check(page, SCREENSHOT, 1100, 900)
    except browser.BrowserError as error:
        raise ExampleError(str(error))
    lab.log.write('conntrack-report.html in chromium: %s\n' % seen)

    say('guide, job 3: the CI playbook outside CI (plan only, artifacts in the playbook directory), then on main')
    doc = lab.run_playbook('guide-ci', 'ci.yml')
    for host in ('edge1', 'edge2'):
        check(os.path.exists(os.path.join(lab.work, 'ci-artifacts', host + '.ipv4.rules')), 'no artifact for ' + host)
    check(not os.path.exists('/edge1.ipv4.rules'), 'the CI example wrote to /')
    # The scratch directory the examples run in is printed as '.'.
    lab.output('ci-plan-only', msg_lines(doc, 'Say whether this run applies')[0].replace(lab.work, '.'))
    doc = lab.run_playbook('guide-ci', 'ci.yml',
                           env={'CI_COMMIT_BRANCH': 'main', 'CI_PROJECT_DIR': os.path.join(lab.work, 'project')})
    check(all(res.get('changed') for res in results(doc, 'Apply (merge request - plan only), undone by the host in 120 s unless confirmed').values()),
          'the CI playbook on main did not apply')
    check(os.path.exists(os.path.join(lab.work, 'project', 'edge1.ipv4.rules')), 'no artifact in CI_PROJECT_DIR')

    say('roles.md: the complete gateway play')
    lab.run_playbook('roles-gateway-play', 'roles-gateway.yml', extra=['--limit', 'edge1'])
    check('SNF-GW' in lab.podman('gw', 'ip6tables-save', '-t', 'nat'), 'no IPv6 translation on gw')
    # With packets: through FORWARD's DROP policy, masqueraded (IPv4) and SNATed (IPv6) to the uplink's address.
    for proto, dst, public in (('tcp', '203.0.113.8', '203.0.113.1'), ('udp', '203.0.113.8', '203.0.113.1'),
                               ('tcp', '2001:db8:113::8', '2001:db8:113::1')):
        seen = lab.probe('lan', proto, dst)
        check(seen == public, 'roles.md play: %s from lan to %s arrived from %s, not %s' % (proto, dst, seen, public))

    say('conntrack.md: the examples')
    lab.udp('lan', '203.0.113.8', 1)
    lab.run_tasks('conntrack-examples')
    lab.run_tasks('conntrack-kube-proxy')


def compare(docs, outputs):
    stale = []
    for name, (path, dummy, text) in sorted(docs['output'].items()):
        if name not in outputs:
            stale.append('%s: output %s is produced by no example' % (path, name))
        elif text != outputs[name]:
            stale.append('%s: output %s differs from what the run printed (make docs rewrites it):\n--- docs\n%s--- run\n%s'
                         % (path, name, text, outputs[name]))
    return stale


def update(docs, outputs):
    for path in DOCS:
        full = os.path.join(ROOT, path)
        with open(full) as handle:
            text = handle.read()

        def replace(match):
            kind, name = match.group(1), match.group(2)
            if kind != 'output' or name not in outputs:
                return match.group(0)
            return '<!-- output: %s -->\n```%s\n%s```' % (name, match.group(3), outputs[name])

        new = BLOCK.sub(replace, text)
        if new != text:
            with open(full, 'w') as handle:
                handle.write(new)
            print('updated ' + path)


def main(argv):
    action = argv[1] if len(argv) > 1 else 'run'
    docs = parse_docs()
    if action == 'list':
        for kind in ('example', 'output'):
            for name, value in sorted(docs[kind].items()):
                print('%-8s %-26s %s' % (kind, name, value[0]))
        return 0
    if action == 'update':
        if not os.path.exists(CAPTURE):
            print('examples.py: no %s yet: run `make doc-examples` first' % CAPTURE)
            return 0
        with open(CAPTURE) as handle:
            update(docs, json.load(handle))
        if os.path.exists(SCREENSHOT):
            shutil.copy(SCREENSHOT, DOCS_SCREENSHOT)
            print('updated ' + os.path.relpath(DOCS_SCREENSHOT, ROOT))
        return 0
    if action != 'run':
        print(__doc__)
        return 2
    prefix = os.environ.get('SNF_LAB_PREFIX', 'snf-docs')
    if not prefix.startswith('snf-'):
        print('examples.py: SNF_LAB_PREFIX must start with snf-')
        return 2
    lab = Lab(prefix, docs)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start = time.time()
    status = 0
    try:
        print('- lab %s: %s' % (prefix, ', '.join(PLATFORMS)), flush=True)
        lab.up()
        sequence(lab)
        unused = sorted(set(docs['example']) - lab.used)
        if unused:
            raise ExampleError('marked examples that no step runs: %s' % ', '.join(unused))
    except (ExampleError, subprocess.CalledProcessError) as error:
        print('examples.py: FAILED: %s' % error)
        status = 1
    finally:
        lab.down()
        lab.log.close()
        os.makedirs(os.path.dirname(CAPTURE), exist_ok=True)
        shutil.copy(os.path.join(lab.work, 'examples.log'), os.path.join(os.path.dirname(CAPTURE), 'examples.log'))
        shutil.rmtree(lab.work, ignore_errors=True)
    if status == 0:
        with open(CAPTURE, 'w') as handle:
            json.dump(lab.outputs, handle, indent=1, sort_keys=True)
        stale = compare(docs, lab.outputs)
        if stale:
            print('\n'.join(stale))
            status = 1
    print('examples.py: %s in %.0fs (log: %s)' % ('passed' if status == 0 else 'FAILED', time.time() - start,
                                                  os.path.join(os.path.dirname(CAPTURE), 'examples.log')))
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv))
