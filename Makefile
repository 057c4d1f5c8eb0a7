# stateful.netfilter — every target does its own set-up first (tests/setup.sh,
# idempotent: seconds when everything is in place).
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PATH := $(CURDIR)/.venv/bin:$(PATH)
export CONTAINERS_CONF := $(CURDIR)/tests/lab/containers.conf
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0
export NO_COLOR := 1

# Molecule scenarios, run by `make molecule`.
SCENARIOS ?= $(notdir $(patsubst %/molecule.yml,%,$(wildcard tests/molecule/*/molecule.yml)))

.PHONY: help setup test demo unit sanity lint molecule clean-lab docs changelog doc-examples lab lab-clean

help:
	@echo "make demo   - bring up the lab gateway, show its NAT flows as conntrack sees them, flush one"
	@echo "make test   - the whole suite: unit, sanity, lint, every molecule scenario, the demo"
	@echo "make setup  - install what the above need (system packages, .venv, lab image)"
	@echo "Parts of the suite: make unit | sanity | lint | smoke | molecule [SCENARIOS='snat ...']"
	@echo "make docs   - regenerate docs/reference/ and the output samples; make changelog - lint fragments, write CHANGELOG.md"
	@echo "make lab    - bring up the docs' lab (lan, gw, gw2, wan; docs/lab.md); make lab-clean removes it"
	@echo "make doc-examples - run every example of docs/ against one lab (a stage of make test)"
	@echo "make bench-fleet - the fleet lab: 20 gateways over SSH, the three playbooks timed at forks 5, 10, 20 (not in make test)"

setup:
	@bash tests/setup.sh

test: setup
	@bash tests/host_guard.sh snapshot .cache/host-guard
	@rc=0; bash tests/stages.sh \
	  "unit:$(MAKE) --no-print-directory unit" \
	  "sanity:$(MAKE) --no-print-directory sanity" \
	  "lint:$(MAKE) --no-print-directory lint" \
	  "smoke:$(MAKE) --no-print-directory smoke" \
	  "demo:bash tests/demo/demo.sh" \
	  "docs:$(MAKE) --no-print-directory doc-examples" \
	  "&" \
	  "molecule:$(MAKE) --no-print-directory molecule" || rc=1; \
	bash tests/host_guard.sh compare .cache/host-guard || rc=1; exit $$rc

demo: setup
	@bash tests/demo/demo.sh

# Unit tests, then the namespace tests (tests/netns: the real modules against the kernel, in a mount
# and network namespace of their own; skipped without root).
unit:
	pytest -q tests/unit tests/netns

# The property test of the rule model with many more examples than `make unit` runs.
.PHONY: fuzz
fuzz: setup
	SNF_PROPERTY_EXAMPLES=$${SNF_PROPERTY_EXAMPLES:-5000} pytest -q tests/unit/plugins/module_utils/test_rules_property.py

sanity:
	bash tests/sanity/run.sh

lint:
	@rc=0; yamllint -s . || rc=1; ansible-lint --profile production || rc=1; exit $$rc

# Every scenario (or SCENARIOS), in MOLECULE_LANES parallel lanes with a lab each (tests/molecule.sh).
MOLECULE_LANES ?= 2
molecule:
	@export SNF_LAB_IMAGE=$$(tests/lab/image/tag.sh); \
	bash tests/molecule.sh $(MOLECULE_LANES) $(SCENARIOS)

clean-lab:
	bash tests/lab/clean.sh

# ansible-core 2.16 and 2.21 beside the pinned 2.19: the plugin unit tests and a smoke run
# (the gateway playbook, each module once) per controller, side by side (tests/smoke/smoke.sh).
.PHONY: smoke
smoke: setup
	@bash tests/smoke/smoke.sh

# docs/reference/ from the modules', filters' and roles' documentation
# (tests/unit/test_docs_reference.py fails when it is stale).
docs: setup
	python docs/gen_reference.py
	python tests/docs/examples.py update

# Every marked example of docs/ against one lab (tests/docs/examples.py, docs/lab.md).
doc-examples: setup
	@trap 'bash $(CURDIR)/tests/lab/clean.sh "$${SNF_LAB_PREFIX:-snf-docs}"' EXIT INT TERM HUP PIPE; \
	SNF_LAB_IMAGE=$$(tests/lab/image/tag.sh) python tests/docs/examples.py run

# The docs' lab, left running for trying the examples (docs/lab.md).
lab: setup
	@SNF_LAB_PREFIX=$${SNF_LAB_PREFIX:-snf-docs} SNF_LAB_IMAGE=$$(tests/lab/image/tag.sh) \
	  ansible-playbook tests/lab/create.yml -e '{"lab_platforms": ["lan", "gw", "gw2", "wan"]}' >/dev/null && \
	podman ps --filter label=io.stateful.netfilter.lab=$${SNF_LAB_PREFIX:-snf-docs} --format '{{.Names}}'

lab-clean:
	bash tests/lab/clean.sh "$${SNF_LAB_PREFIX:-snf-docs}"

# The fleet lab: twenty gateways reached over SSH, the three playbooks timed
# at forks 5, 10 and 20 (bench/fleet_bench.py; heavy, not part of make test;
# the lab is removed at the end). BENCH_ARGS: e.g. --hosts 6 --forks 5.
.PHONY: bench-fleet
bench-fleet: setup
	@SNF_LAB_PREFIX=$${SNF_LAB_PREFIX:-snf-bench} SNF_LAB_IMAGE=$$(tests/lab/image/tag.sh) \
	  python bench/fleet_bench.py $(BENCH_ARGS)

# Lint the changelog fragments (also part of make unit) and write CHANGELOG.md/.rst.
changelog: setup
	bash changelogs/generate.sh
