"""Prints the ruleset of `iptables-save` and `ip6tables-save` (stdin, each
after a line @ipv4 or @ipv6) in a form that compares across restores: per
family and table the chains with their policies, sorted, then each chain's
rules in their order (chains sorted by name); no counters or comments."""
import re
import sys

tables = {}
table = None
family = '@ipv4'
for line in sys.stdin.read().splitlines():
    if line.startswith('#') or line == 'COMMIT' or not line:
        continue
    if line.startswith('@'):
        family = line
        continue
    if line.startswith('*'):
        table = tables.setdefault(family + ' ' + line, {'chains': set(), 'rules': {}})
        continue
    if line.startswith(':'):
        table['chains'].add(re.sub(r' \[\d+:\d+\]$', '', line))
    elif line.startswith('-A '):
        chain = line.split()[1]
        table['rules'].setdefault(chain, []).append(line)
out = []
for name in sorted(tables):
    out.append(name)
    out.extend(sorted(tables[name]['chains']))
    for chain in sorted(tables[name]['rules']):
        out.extend(tables[name]['rules'][chain])
print('\n'.join(out))
