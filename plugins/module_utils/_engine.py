# -*- coding: utf-8 -*-
# Copyright (c) stateful.netfilter contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rule engine behind the ruleset and nat_rule modules.

Private to the collection. Reads the live tables, builds the wanted owned
state from the module parameters (_rules.py), plans one transaction per
table and family, validates all of them with iptables-restore --test, then
applies them. Check mode stops after planning; nothing is applied.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.stateful.netfilter.plugins.module_utils._iptables import (
    C_LOCALE,
    Backend,
    CommandError,
    detect_backend,
    legacy_refused,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._rules import (
    BUILTIN_CHAINS,
    POLICIES,
    Chain,
    Owned,
    Plan,
    Rule,
    check_chain_name,
    check_hook,
    check_references,
    check_scope,
    empty_table,
    find_rule,
    infer_family,
    make_rule,
    merge_rules,
    negated,
    put_rule,
    read_owned,
)
from ansible_collections.stateful.netfilter.plugins.module_utils._validate import FAMILIES, ValidationError, show
from ansible_collections.stateful.netfilter.plugins.module_utils import _rollback


def families_of(value):
    return list(FAMILIES) if value == 'both' else [value]


class Engine(object):
    """Reads tables and applies planned transactions for a set of families."""

    def __init__(self, module, families):
        self.module = module
        try:
            backend = detect_backend(module)
        except CommandError as exc:
            module.fail_json(**exc.result())
        self.backend = backend
        self.backends = dict((family, Backend(module, family, backend)) for family in families)
        try:
            # Held until the module exits: no other run of the engine reads or writes in between.
            self.lock = _rollback.engine_lock()
        except (_rollback.RollbackError, OSError) as exc:
            module.fail_json(msg='could not take the engine lock: %s' % exc)

    def release(self):
        """Let other runs in: this one has planned and applied (what follows only reports)."""
        _rollback.release_engine_lock()

    def read(self, family, table):
        try:
            return self.backends[family].read(table)
        except CommandError as exc:
            self.module.fail_json(**exc.result())

    def warn_other_backend(self):
        for family, backend in self.backends.items():
            if backend.other_backend_rules():
                self.module.warn(
                    'The %s back end is selected, but the other iptables back end also holds %s rules. The kernel '
                    'runs both rule sets; this module only manages the %s one.' % (self.backend, family, self.backend))

    def apply(self, plans):
        """Validate every changed plan, then apply them; on a failure, put back those already applied."""
        if self.module.check_mode:
            return
        self.test(plans)
        failure = self.commit(plans)
        if failure:
            self.module.fail_json(**failure)

    def test(self, plans):
        """iptables-restore --test of every changed plan; fails the module (nothing is changed yet)."""
        try:
            for plan in plans:
                if plan.changed:
                    self.backends[plan.family].test(plan.text)
        except CommandError as exc:
            self.module.fail_json(**exc.result())

    def commit(self, plans):
        """Apply the changed plans in order. On a failure, put back those already applied and return the
        failure's result (with rolled_back: the families restored); None when all of them went in."""
        applied = []
        for plan in plans:
            if not plan.changed:
                continue
            try:
                self.backends[plan.family].apply(plan.text)
            except CommandError as exc:
                result = exc.result()
                result['rolled_back'] = self._roll_back(applied)
                return result
            applied.append(plan)
        return None

    def undo(self, plans):
        """Put back what the applied (changed) plans found; returns the families restored."""
        return self._roll_back([plan for plan in plans if plan.changed])

    def _roll_back(self, applied):
        """Put the owned state each applied plan found back in place; returns the families restored."""
        restored = []
        for plan in applied:
            table = self.read(plan.family, plan.table)
            now = read_owned(table, plan.scope_prefix, plan.family, plan.live.policies)
            try:
                undo = Plan(table, plan.scope_prefix, plan.family, now, plan.live)
                if undo.changed:
                    self.backends[plan.family].apply(undo.text)
            except (CommandError, ValidationError) as exc:
                self.module.warn('Could not roll back %s %s: %s' % (plan.family, plan.table, exc))
                continue
            restored.append(plan.family)
        return restored


def plan_diff(plans):
    return [dict(before=plan.before, after=plan.after,
                 before_header='%s %s (before)' % (plan.family, plan.table),
                 after_header='%s %s (after)' % (plan.family, plan.table)) for plan in plans]


def restore_texts(plans):
    return dict((plan.family, plan.text) for plan in plans)


def _fail(module, exc):
    module.fail_json(msg=str(exc), param=exc.param)


# ---------------------------------------------------------------------------
# migrate: the same scope on the other back end, removed after the new one is in place

class IptablesSide(object):
    """The scope in the iptables tables, removed once its nftables table is in place (ruleset with backend
    nftables and migrate): its owned chains and their hooks go, and the policies the task manages are set
    back to ACCEPT, one iptables-restore --noflush per family.

    A host without iptables has nothing to migrate (changed is False).
    """

    def __init__(self, module, params, table, scope_prefix, families):
        self.module = module
        self.engine = None
        self.plans = []
        if not module.get_bin_path('iptables'):
            return
        # Takes the engine lock (already held by the nftables path: it is one lock for both back ends).
        engine = Engine(module, families)
        if engine.backend == 'legacy' and self._legacy_refused(engine, table):
            return
        self.engine = engine
        managed = [chain for chain in (params.get('policies') or {}) if chain in BUILTIN_CHAINS[table]]
        for family in families:
            live_table = self.engine.read(family, table)
            live = read_owned(live_table, scope_prefix, family, managed)
            try:
                self.plans.append(Plan(live_table, scope_prefix, family, live,
                                       Owned([], [(chain, 'ACCEPT') for chain in managed])))
            except ValidationError as exc:
                _fail(self.module, exc)

    def _legacy_refused(self, engine, table):
        """True when the kernel has no legacy xtables (Linux 6.17+ without CONFIG_NETFILTER_XTABLES_LEGACY): no
        rule can be there to migrate, and the legacy iptables-save would fail."""
        for backend in engine.backends.values():
            rc, out, err = self.module.run_command([backend.save_cmd, '-t', table], environ_update=C_LOCALE)
            if rc != 0 and legacy_refused('legacy', backend.family, err):
                return True
        return False

    @property
    def changed(self):
        return any(plan.changed for plan in self.plans)

    def test(self):
        if self.engine:
            self.engine.test(self.plans)

    def saved(self):
        """What a rollback record keeps of this side: the owned state each family had."""
        for plan in self.plans:
            for chain in plan.live.chains.values():
                unreadable = [rule.text for rule in chain.rules if rule.spec is None]
                if unreadable:
                    self.module.fail_json(
                        msg='rollback_timeout: the owned chain %s (%s) holds a rule the collection cannot read, '
                            'which a rollback would have to restore: "-A %s %s"; nothing was applied'
                            % (chain.name, plan.family, chain.name, show(unreadable[0])[1:-1]),
                        param='rollback_timeout')
        return dict(iptables=dict(backend=self.engine.backend if self.engine else 'nft',
                                  families=dict((plan.family, _rollback.owned_to_data(plan.live))
                                                for plan in self.plans)))

    def apply(self):
        """None, or the failure's result (the families already changed were put back)."""
        return self.engine.commit(self.plans) if self.engine else None

    def undo(self):
        if self.engine:
            self.engine.undo(self.plans)

    def diff(self):
        return [dict(entry, before_header='iptables ' + entry['before_header'],
                     after_header='iptables ' + entry['after_header']) for entry in plan_diff(self.plans)]

    def result(self):
        return dict(backend='iptables', changed=self.changed, restore=restore_texts(self.plans))


class NftSide(object):
    """The scope's owned nftables table, removed once its iptables chains are in place (ruleset with backend
    iptables and migrate): one nft -f transaction after nft -c. A host without nft has nothing to migrate."""

    def __init__(self, module, table, scope, families=FAMILIES):
        from ansible_collections.stateful.netfilter.plugins.module_utils import _nft
        self._nft = _nft
        self.module = module
        self.table = table
        self.name = _nft.table_name(table, scope)
        self.nft = None
        self.listing = self.text = ''
        if not module.get_bin_path('nft'):
            return
        try:
            self.nft = _nft.NftCommand(module, probe=False)
        except _nft.NftError:
            # An nft too old for the back end: no owned table can be there.
            self.nft = None
            return
        try:
            self.listing = self.nft.list_table(self.name)
        except _nft.NftError as exc:
            if not self.nft.talks():
                # A kernel without nf_tables: no owned table can be there either.
                self.nft = None
                return
            self._fail(exc)
        # The table holds both families: a task of one family removes it only when it holds nothing of the other.
        others = [family for family in FAMILIES if family not in families]
        if self.listing and others:
            states = _nft.parse_table(self.listing, table)[0]
            if any(states[family].chains for family in others):
                module.fail_json(msg='migrate: the owned table inet %s also holds %s chains, which a task of family '
                                     '%s would remove with it; migrate with family both. Nothing was changed'
                                     % (self.name, others[0], families[0]), param='migrate')
        self.text = _nft.transaction(self.name, '') if self.listing else ''

    def _fail(self, exc, **extra):
        result = dict(getattr(exc, 'result', None) or {})
        result.update(extra)
        self.module.fail_json(msg='migrate: %s' % exc, param=getattr(exc, 'param', None) or 'migrate', **result)

    @property
    def changed(self):
        return bool(self.listing)

    def test(self):
        if self.changed:
            try:
                self.nft.check(self.text)
            except self._nft.NftError as exc:
                self._fail(exc)

    def saved(self):
        try:
            self._nft.check_saved(self.name, self.table, self.listing)
        except ValueError as exc:
            self.module.fail_json(msg='rollback_timeout: the owned table inet %s cannot be restored by a rollback '
                                      '(%s); nothing was applied' % (self.name, exc), param='rollback_timeout')
        return dict(nft=dict(table=self.name, text=self.listing))

    def apply(self):
        if not self.changed:
            return None
        try:
            self.nft.apply(self.text)
        except self._nft.NftError as exc:
            result = dict(getattr(exc, 'result', None) or {})
            result['msg'] = 'migrate: %s' % exc
            return result
        return None

    def undo(self):
        if self.changed:
            try:
                self.nft.apply(self._nft.transaction(self.name, self.listing))
            except self._nft.NftError as exc:
                self.module.warn('Could not put the table inet %s back: %s' % (self.name, exc))

    def diff(self):
        return [dict(before=self.listing, after='', before_header='inet %s (before)' % self.name,
                     after_header='inet %s (after)' % self.name)]

    def result(self):
        return dict(backend='nftables', changed=self.changed, table='inet %s' % self.name,
                    nft=self.text if self.changed else '')


# ---------------------------------------------------------------------------
# ruleset

def desired_owned(params, family, table, scope_prefix, with_rules=True):
    """The Owned state the ruleset parameters describe for one family (raises ValidationError)."""
    policies = []
    for chain, policy in sorted((params.get('policies') or {}).items()):
        param = 'policies.%s' % chain
        if chain not in BUILTIN_CHAINS[table]:
            raise ValidationError(param, '%s is not a built-in chain of the %s table (%s)'
                                  % (chain, table, ', '.join(BUILTIN_CHAINS[table])))
        policy = str(policy).upper()
        # Only the filter table decides; a DROP policy in nat, mangle or raw would drop every packet unseen.
        if policy not in POLICIES or (table != 'filter' and policy != 'ACCEPT'):
            raise ValidationError(param, '%r is not a policy of the %s table (%s)'
                                  % (policy, table, ', '.join(POLICIES) if table == 'filter' else 'ACCEPT'))
        policies.append((chain, policy))
    chains = []
    for index, raw in enumerate(params.get('chains') or []):
        param = 'chains[%d].' % index
        name = check_chain_name(raw['name'], param + 'name')
        if not name.startswith(scope_prefix):
            raise ValidationError(param + 'name', '%s is outside the scope (%s*)' % (name, scope_prefix))
        if name in [chain.name for chain in chains]:
            raise ValidationError(param + 'name', '%s is listed twice' % name)
        hook = None
        if raw.get('hook'):
            if raw['hook'] not in BUILTIN_CHAINS[table]:
                raise ValidationError(param + 'hook', '%s is not a built-in chain of the %s table (%s)'
                                      % (raw['hook'], table, ', '.join(BUILTIN_CHAINS[table])))
            hook = (raw['hook'], raw.get('hook_position') or 'first')
        rules = []
        for number, rule in enumerate((raw.get('rules') or []) if with_rules else []):
            rule_param = '%srules[%d].' % (param, number)
            wanted = infer_family(rule)
            if wanted and wanted != family and params.get('family') == 'both':
                continue
            spec = make_rule(rule, family, table, rule_param)
            if hook:
                check_hook(spec, hook[0], rule_param)
            rules.append(Rule.from_spec(spec))
        names = [rule.name for rule in rules if rule.name]
        if len(names) != len(set(names)):
            duplicate = [n for n in names if names.count(n) > 1][0]
            raise ValidationError(param + 'rules', 'rule name %r is used twice' % duplicate)
        chains.append(Chain(name, hook, rules))
    return Owned(chains, policies)


def planned_owned(module):
    """{family: Owned} of the task's policies and chains, checked against the rule model once a run (raises
    ValidationError): the first caller checks (the preflight before its SSH guard, else the engine), later ones
    (the engine, either back end; persist) take module.planned."""
    if getattr(module, 'planned', None) is None:
        params = module.params
        prefix = check_scope(params['scope'], 'scope')
        module.planned = dict((family, desired_owned(params, family, params['table'], prefix,
                                                     params['state'] != 'deleted'))
                              for family in families_of(params['family']))
    return module.planned


def wanted_state(state, live, desired):
    """The owned state after applying `desired` to `live` in the given state."""
    if state == 'overridden':
        return desired
    wanted = live.copy()
    wanted.policies.update(desired.policies)
    if state == 'deleted':
        names = list(desired.chains) or list(live.chains)
        for name in names:
            wanted.chains.pop(name, None)
        return wanted
    for name, chain in desired.chains.items():
        current = wanted.chains.get(name)
        if current is None:
            wanted.chains[name] = chain.copy()
            continue
        merge_rules(current.rules, chain.rules)
        if chain.hook:
            current.hook = chain.hook
    return wanted


def gathered_owned(owned, module, family):
    chains = []
    for name, chain in owned.chains.items():
        for rule in chain.rules:
            if rule.spec is None:
                module.warn('%s: rule of %s not expressible as structured data, left out: %s'
                            % (family, name, rule.text))
        chains.append(dict(name=name, hook=chain.hook[0] if chain.hook else None,
                           hook_position=chain.hook[1] if chain.hook else None,
                           rules=[dict(rule.spec) for rule in chain.rules if rule.spec is not None]))
    return dict(policies=dict(owned.policies), chains=chains)


def run_ruleset(module):
    params = module.params
    table, state = params['table'], params['state']
    families = families_of(params['family'])
    if params.get('rollback_confirm'):
        try:
            _rollback.check_id(params['rollback_confirm'])
        except ValueError as exc:
            module.fail_json(msg=str(exc), param='rollback_confirm')
        _rollback.confirm(module, params['rollback_confirm'])
    try:
        if params.get('rollback_timeout') is not None:
            _rollback.check_timeout(params['rollback_timeout'])
    except ValueError as exc:
        module.fail_json(msg=str(exc), param='rollback_timeout')
    try:
        scope_prefix = check_scope(params['scope'], 'scope')
        desired = planned_owned(module)
    except ValidationError as exc:
        _fail(module, exc)
    if state == 'rendered':
        rendered = {}
        for family in families:
            empty = empty_table(table)
            try:
                plan = Plan(empty, scope_prefix, family, read_owned(empty, scope_prefix, family), desired[family])
            except ValidationError as exc:
                _fail(module, exc)
            rendered[family] = plan.text
        module.exit_json(changed=False, rendered=rendered)

    engine = Engine(module, families)
    if state == 'gathered':
        gathered = {}
        for family in families:
            owned = read_owned(engine.read(family, table), scope_prefix, family, BUILTIN_CHAINS[table])
            gathered[family] = gathered_owned(owned, module, family)
        module.exit_json(changed=False, gathered=gathered, backend=engine.backend)

    plans, live_tables = [], {}
    for family in families:
        live_table = live_tables[family] = engine.read(family, table)
        live = read_owned(live_table, scope_prefix, family, desired[family].policies, known=desired[family])
        wanted = wanted_state(state, live, desired[family])
        try:
            check_references(live_table, scope_prefix, wanted)
            plans.append(Plan(live_table, scope_prefix, family, live, wanted))
        except ValidationError as exc:
            _fail(module, exc)
    # migrate: the scope's nftables table goes once the chains are in place (under the same engine lock).
    other = NftSide(module, table, params['scope'], families) if params.get('migrate') else None
    moved = bool(other and other.changed)
    changed = any(plan.changed for plan in plans) or moved
    engine.warn_other_backend()
    _rollback.guard(module, table, scope_prefix, families,
                    policies=dict((family, dict(desired[family].policies)) for family in families),
                    changed=changed)
    if moved and not module.check_mode:
        other.test()
    armed = None
    if params.get('rollback_timeout') is not None:
        armed = _rollback.arm(module, table, scope_prefix, plans, engine.backend, params['rollback_timeout'],
                              extra=other.saved() if moved else None)
    try:
        engine.apply(plans)
        if moved and not module.check_mode:
            failure = other.apply()
            if failure:
                # The kernel took none of the nft transaction: the chains go back, the table stays.
                failure['rolled_back'] = engine.undo(plans)
                module.fail_json(**failure)
    except (SystemExit, Exception):
        # fail_json exits: the engine put back what it had applied, so the timer has nothing to undo.
        _rollback.cancel(module, armed)
        raise
    engine.release()
    result = dict(changed=changed, restore=restore_texts(plans), backend=engine.backend)
    if changed:
        # What state gathered returned before the change: the nat_gateway role's stale translations come from it.
        result['gathered_before'] = dict(
            (family, gathered_owned(read_owned(live_tables[family], scope_prefix, family, BUILTIN_CHAINS[table]),
                                    module, family)) for family in families)
    if other:
        result['migrated'] = other.result()
    if params.get('rollback_timeout') is not None:
        result['rollback'] = _rollback.public(armed, armed=True) if armed else dict(armed=False)
    if module._diff:
        result['diff'] = plan_diff(plans) + (other.diff() if moved else [])
    module.exit_json(**result)


# ---------------------------------------------------------------------------
# nat_rule

NAT_TYPES = {
    # type: (target, owned chain, built-in chain it hooks into)
    'snat': ('SNAT', 'SNF-NAT-POST', 'POSTROUTING'),
    'masquerade': ('MASQUERADE', 'SNF-NAT-POST', 'POSTROUTING'),
    'dnat': ('DNAT', 'SNF-NAT-PRE', 'PREROUTING'),
    'redirect': ('REDIRECT', 'SNF-NAT-PRE', 'PREROUTING'),
}
NAT_SCOPE = 'NAT'
# The match options a conntrack flush of nat_rule filters on (see _conntrack_filters).
FLUSH_KEYS = ('source', 'destination', 'source_port', 'destination_port')
NAT_RULE_KEYS = ('name', 'protocol', 'source', 'destination', 'in_interface', 'out_interface', 'source_port',
                 'destination_port', 'comment', 'to_source', 'to_destination', 'to_ports', 'random',
                 'random_fully', 'persistent')


def nat_rule_specs(params):
    """{family: Rule} for the nat_rule parameters (raises ValidationError)."""
    target, dummy, builtin = NAT_TYPES[params['type']]
    raw = dict((key, params.get(key)) for key in NAT_RULE_KEYS)
    raw['jump'] = target
    family = params['family']
    if family == 'both':
        for key in ('source', 'destination', 'to_source', 'to_destination'):
            if params.get(key):
                raise ValidationError('family', 'both is for rules without addresses, but %s is set' % key)
    if params['state'] == 'absent' and params.get('name'):
        # A named rule is removed by its name, whatever its spec; without a family
        # or addresses saying which, from both families (it may have been added with
        # family both, and 'name: x, state: absent' must not leave its IPv6 half).
        return dict((fam, Rule({'name': params['name']}, None))
                    for fam in families_of(family or infer_family(raw) or 'both'))
    families = families_of(family or infer_family(raw) or 'ipv4')
    rules = {}
    for fam in families:
        spec = make_rule(raw, fam, 'nat')
        check_hook(spec, builtin)
        rules[fam] = Rule.from_spec(spec)
    return rules


def _conntrack_filters(spec, family):
    """The conntrack filters that cover a rule's match (original direction; interfaces are not in conntrack).

    One filter per port or range of a port list and per network of an address list (a conntrack filter takes
    one range and one network).
    """
    def ports(name):
        value = spec.get(name)
        return value if isinstance(value, list) else [value]

    return [dict(family=family, protocol=spec.get('protocol'), src=src, dst=dst,
                 sport=sport, dport=dport, reply_src=None, reply_dst=None, reply_sport=None, reply_dport=None,
                 state=None, status=None, nat=None, mark=None, zone=None)
            for src in ports('source') for dst in ports('destination')
            for sport in ports('source_port') for dport in ports('destination_port')]


def _flush_conntrack(module, conntrack, touched):
    """Delete the conntrack entries of the touched rules' matches, keeping the SSH connection of the controller."""
    protect = conntrack.control_connection(os.environ)
    deleted = 0
    seen = []
    try:
        for family, spec in touched:
            for params in _conntrack_filters(spec, family):
                # A changed rule often keeps its match (a new to_source): flush it once,
                # or check mode would count the same entries twice.
                if params in seen:
                    continue
                seen.append(params)
                flt = conntrack.build_filter(params)
                deleted += conntrack.flush_entries(flt, check_mode=module.check_mode, protect=protect)['deleted']
    except (conntrack.ConntrackError, ValidationError) as exc:
        module.fail_json(msg='flush_conntrack: the rule is in place, but flushing its conntrack entries '
                             'failed: %s' % exc)
    return deleted


def need_conntrack(module, conntrack):
    """The conntrack support nat_rule passed in (module_utils._conntrack), for flush_conntrack.

    nat_rule imports it and hands it over, so that the modules that only share this engine (ruleset,
    boot_restore, sysctls) do not carry the conntrack code in their AnsiballZ payload (about 2,400 lines).
    """
    if conntrack is None:
        module.fail_json(msg='flush_conntrack: the conntrack support of the collection is not available; '
                             'nothing was changed', param='flush_conntrack')
    return conntrack


def place_nat_rule(live, rule, params):
    """The owned NAT state with the rule put in place (or taken out), and the rules whose match changed.

    A name is unique across the NAT chains: a named rule that moves to the
    other chain (a new type) leaves the old one. A chain left empty is
    removed with its hook.
    """
    dummy, chain_name, builtin = NAT_TYPES[params['type']]
    present = params['state'] == 'present'
    wanted = live.copy()
    touched = []
    for name, chain in wanted.chains.items():
        index = find_rule(chain.rules, rule)
        if index is not None and (name != chain_name or not present or chain.rules[index] != rule):
            touched.append(chain.rules[index])
            if name != chain_name or not present:
                del chain.rules[index]
    if present:
        chain = wanted.chains.setdefault(chain_name, Chain(chain_name))
        chain.hook = (builtin, 'first')
        if rule not in chain.rules:
            touched.append(rule)
        put_rule(chain.rules, rule, params['order'], params['relative_to'], 'relative_to')
    for name in [name for name, chain in wanted.chains.items() if not chain.rules]:
        del wanted.chains[name]
    return wanted, [touched_rule.spec for touched_rule in touched if touched_rule.spec]


def run_nat_rule(module, conntrack=None):
    """nat_rule on the iptables back end; conntrack: module_utils._conntrack (needed for flush_conntrack)."""
    params = module.params
    chain_name = NAT_TYPES[params['type']][1]
    try:
        specs = nat_rule_specs(params)
    except ValidationError as exc:
        _fail(module, exc)
    scope_prefix = check_scope(NAT_SCOPE, 'scope')
    engine = Engine(module, list(specs))
    plans, touched = [], []
    for family, rule in specs.items():
        table = engine.read(family, 'nat')
        live = read_owned(table, scope_prefix, family)
        try:
            wanted, changed_specs = place_nat_rule(live, rule, params)
            plans.append(Plan(table, scope_prefix, family, live, wanted))
        except ValidationError as exc:
            _fail(module, exc)
        touched.extend((family, spec) for spec in changed_specs)
    if params['flush_conntrack']:
        for family, spec in touched:
            inverted = [key for key in FLUSH_KEYS if negated(spec.get(key))]
            if inverted:
                module.fail_json(msg='flush_conntrack: a conntrack filter cannot match the negated %s %r of the rule; '
                                     'nothing was changed (flush with conntrack_flush instead)'
                                     % (inverted[0], spec[inverted[0]]), param='flush_conntrack')
    conntrack = need_conntrack(module, conntrack) if params['flush_conntrack'] and touched else None
    engine.warn_other_backend()
    if any(plan.changed for plan in plans):
        # A pending rollback of the ruleset module in the nat table would undo this rule when it fires.
        _rollback.guard(module, 'nat', scope_prefix, list(specs))
    engine.apply(plans)
    engine.release()
    deleted = _flush_conntrack(module, conntrack, touched) if conntrack else 0
    shown = [rule for rule in specs.values() if rule.text]
    result = dict(changed=any(plan.changed for plan in plans), chain=chain_name, families=list(specs),
                  rule='-A %s %s' % (chain_name, shown[0].text) if shown else None,
                  conntrack_deleted=deleted, backend=engine.backend)
    if module._diff:
        result['diff'] = plan_diff(plans)
    module.exit_json(**result)
