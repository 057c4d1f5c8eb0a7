# SPDX-License-Identifier: GPL-3.0-or-later
"""A private lab for namespace tests: a mount and network namespace of the test's own.

The holder process is started with `unshare --mount --net`; /run inside it is a
tmpfs of its own, so the modules' state (/run/snf-netfilter), `ip netns` names
and the xtables lock never touch this machine's /run. The modules run for real
(the module file with its arguments, as Ansible runs it on a host), against the
kernel's netfilter of the lab's namespaces. Everything goes when the holder
and the processes left in its namespaces are killed.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
MODULES = os.path.join(ROOT, 'plugins', 'modules')
# Runs a module file as Ansible does on a host, with a chosen umask.
RUN_MODULE = ('import os, runpy, sys; os.umask(int(sys.argv[1], 8)); sys.argv = sys.argv[2:]; '
              'runpy.run_path(sys.argv[0], run_name="__main__")')


def missing():
    """Why the namespace tests cannot run here, or None."""
    if os.geteuid() != 0:
        return ('namespace tests need root (they create network namespaces of their own)')
    for tool in ('unshare', 'nsenter', 'ip', 'iptables-restore'):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get('PATH', '').split(':')
                   + ['/usr/sbin', '/sbin', '/usr/bin']):
            return '%s is not installed' % tool
    return None


class Lab(object):
    def __init__(self):
        self.holder = subprocess.Popen(
            ['unshare', '--mount', '--net', '--propagation', 'private', '--fork', 'sh', '-c',
             'mount -t tmpfs -o mode=0755 snf-netns-run /run && ip link set lo up && echo $$ && exec sleep 900'],
            stdout=subprocess.PIPE)
        line = self.holder.stdout.readline()
        if not line.strip().isdigit():
            self.holder.kill()
            raise RuntimeError('the namespace holder did not start')
        self.pid = line.strip().decode('ascii')
        self.netns = os.stat('/proc/%s/ns/net' % self.pid).st_ino
        self.mntns = os.stat('/proc/%s/ns/mnt' % self.pid).st_ino
        self.tmp = tempfile.mkdtemp(prefix='snf-netns-')

    def cmd(self, argv, netns=None):
        prefix = ['nsenter', '-t', self.pid, '-m', '-n']
        if netns:
            prefix += ['ip', 'netns', 'exec', netns]
        return prefix + list(argv)

    def run(self, argv, netns=None, check=True, data=None):
        done = subprocess.run(self.cmd(argv, netns), input=data, capture_output=True, check=False)
        if check and done.returncode != 0:
            raise AssertionError('%s: rc %d: %s' % (argv, done.returncode, done.stderr.decode('utf-8', 'replace')))
        return done.stdout.decode('utf-8', 'replace')

    def module(self, name, args, netns=None, umask='022'):
        """Run a module of the collection; returns its result (a dict)."""
        path = os.path.join(self.tmp, 'args.json')
        with open(path, 'w') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
        env = dict(os.environ, PYTHONPATH=COLLECTIONS, LC_ALL='C')
        done = subprocess.run(self.cmd([sys.executable, '-c', RUN_MODULE, umask,
                                        os.path.join(MODULES, name + '.py'), path], netns),
                              capture_output=True, env=env, check=False)
        out = done.stdout.decode('utf-8', 'replace')
        try:
            return json.loads(out[out.index('{'):])
        except ValueError:
            raise AssertionError('%s did not answer JSON (rc %d): %s %s'
                                 % (name, done.returncode, out, done.stderr.decode('utf-8', 'replace')))

    def save(self, table='filter', netns=None, family='ipv4'):
        return self.run(['iptables-save' if family == 'ipv4' else 'ip6tables-save', '-t', table], netns)

    def rules(self, table='filter', netns=None):
        """The ruleset as iptables-save prints it, without comments and counters."""
        return [re.sub(r' \[[0-9]+:[0-9]+\]$', '', line) for line in self.save(table, netns).split('\n')
                if line and not line.startswith('#')]

    def restore(self, text, netns=None):
        self.run(['iptables-restore', '--noflush'], netns, data=text.encode('utf-8'))

    def add_netns(self, name):
        self.run(['ip', 'netns', 'add', name])
        self.run(['ip', 'link', 'set', 'lo', 'up'], netns=name)

    def link(self, peer, address, peer_address):
        """A veth from the lab's namespace to the named one, with /24 addresses on both ends."""
        self.add_netns(peer)
        self.run(['ip', 'link', 'add', 'snf0', 'type', 'veth', 'peer', 'name', 'snf1', 'netns', peer])
        self.run(['ip', 'addr', 'add', address + '/24', 'dev', 'snf0'])
        self.run(['ip', 'link', 'set', 'snf0', 'up'])
        self.run(['ip', 'addr', 'add', peer_address + '/24', 'dev', 'snf1'], netns=peer)
        self.run(['ip', 'link', 'set', 'snf1', 'up'], netns=peer)

    def gateway(self, *peers):
        """The lab's namespace as the router between peer namespaces, forwarding on (IPv4 and IPv6).

        Each peer: (name, dev, gateway_addresses, peer_addresses, routes): a veth `dev` in the lab's
        namespace to `eth0` in a new namespace `name`; addresses as CIDR (IPv6 without DAD); routes as
        `ip route add` arguments run in the peer (e.g. ['default', 'via', '10.0.0.1']).
        """
        for name, dev, mine, theirs, routes in peers:
            self.add_netns(name)
            self.run(['ip', 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name])
            for end, netns, addresses in ((dev, None, mine), ('eth0', name, theirs)):
                for address in addresses:
                    self.run(['ip', 'addr', 'add', address, 'dev', end] + (['nodad'] if ':' in address else []),
                             netns)
                self.run(['ip', 'link', 'set', end, 'up'], netns)
            for route in routes:
                self.run(['ip'] + (['-6'] if ':' in ' '.join(route) else []) + ['route', 'add'] + list(route), name)
        self.run(['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'])

    def serve(self, netns, port, address='0.0.0.0'):
        """A TCP listener in the named namespace that prints the address of each client it accepts, then closes
        the connection (killed with the lab; read proc.stdout)."""
        code = ('import socket, sys\nfam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET\n'
                's = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
                's.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4); print("up", flush=True)\n'
                'while True:\n    c, a = s.accept(); print(a[0], flush=True); c.close()')
        proc = subprocess.Popen(self.cmd([sys.executable, '-c', code, address, str(port)], netns),
                                stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b'up\n'
        return proc

    def listen(self, address, port):
        """A TCP listener in the lab's namespace that accepts and closes (killed with the lab)."""
        code = ('import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); '
                's.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16); print("up", flush=True)\n'
                'while True:\n    c, a = s.accept(); c.close()')
        proc = subprocess.Popen(self.cmd([sys.executable, '-c', code, address, str(port)]), stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b'up\n'
        return proc

    def connects(self, netns, address, port, timeout=1.0):
        """True when a TCP connection from the named namespace to address:port is accepted."""
        code = ('import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), '
                'timeout=float(sys.argv[3])).close(); print("open")\nexcept OSError:\n    print("closed")')
        return self.run([sys.executable, '-c', code, address, str(port), str(timeout)], netns).strip() == 'open'

    def close(self):
        # Every process in the lab's mount namespace (the `sleep` that holds it, listeners, rollback
        # timers) or in one of its network namespaces (`ip netns exec` gives what it runs a mount
        # namespace of its own), then unshare itself.
        netns = {self.netns}
        run_netns = '/proc/%s/root/run/netns' % self.pid
        try:
            for name in os.listdir(run_netns):
                netns.add(os.stat(os.path.join(run_netns, name)).st_ino)
        except OSError:
            pass
        for pid in os.listdir('/proc'):
            if not pid.isdigit():
                continue
            try:
                if os.stat('/proc/%s/ns/mnt' % pid).st_ino == self.mntns \
                        or os.stat('/proc/%s/ns/net' % pid).st_ino in netns:
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                continue
        self.holder.kill()
        self.holder.wait()
        subprocess.run(['rm', '-rf', self.tmp], check=False)


def wait_for(predicate, timeout, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
