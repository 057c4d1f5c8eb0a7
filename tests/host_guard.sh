#!/usr/bin/env bash
# Proves the suite leaves this host as it found it.
#   host_guard.sh snapshot DIR   record the host's rulesets, forwarding sysctls
#                                and lab leftovers
#   host_guard.sh compare DIR    fail, showing the difference, if any changed
set -euo pipefail
action=$1
dir=$2

state() {
  for tool in iptables-nft-save ip6tables-nft-save iptables-legacy-save ip6tables-legacy-save; do
    echo "### $tool"
    # Counters change with the host's own traffic; the rules must not.
    "$tool" 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' || true
  done
  echo "### nft list ruleset"
  nft list ruleset 2>/dev/null || true
  echo "### sysctls"
  sysctl -a 2>/dev/null | grep -E 'forwarding|ip_forward|nf_conntrack_max|accept_dad' | sort
  echo "### lab leftovers (containers, networks, namespaces) of this run's labs"
  # This run's labs: the molecule lanes', the smoke runs', the demo's and
  # the docs'; other labs (a developer's, running beside the suite) are
  # theirs to clean.
  local labs="^(${SNF_LAB_PREFIX:-snf-lab}(-[0-9]+)?|snf-smoke-[0-9]+|snf-demo|snf-docs)\\."
  podman ps -a --format '{{.Names}}' 2>/dev/null | grep -E "$labs" || true
  podman network ls --format '{{.Name}}' 2>/dev/null | grep '^snf-' || true
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$labs" || true
}

case $action in
  snapshot) mkdir -p "$dir"; state > "$dir/host-before" ;;
  compare)
    state > "$dir/host-after"
    if diff -u "$dir/host-before" "$dir/host-after"; then
      echo "host unchanged: rulesets, forwarding sysctls, no lab leftovers"
    else
      echo "the suite changed this host (diff above)" >&2
      exit 1
    fi ;;
  *) echo "usage: host_guard.sh snapshot|compare DIR" >&2; exit 2 ;;
esac
