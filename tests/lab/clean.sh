#!/usr/bin/env bash
# Removes every lab container and lab network namespace whose name starts
# with PREFIX (default: all of the lab's, snf-lab-). Safe to run at any time:
# the lab's resources are the only ones named this way.
set -u
prefix=${1:-snf-lab}
case $prefix in snf-lab|snf-lab-*) ;; *) echo "clean.sh: prefix must start with snf-lab" >&2; exit 2 ;; esac
prefix=${prefix%-}-
names=$(podman ps -a --format '{{.Names}}' 2>/dev/null | grep "^$prefix" || true)
if [ -n "$names" ]; then
  # shellcheck disable=SC2086
  podman rm --force --time 0 $names >/dev/null
fi
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix" || true); do
  ip netns delete "$ns"
done
exit 0
