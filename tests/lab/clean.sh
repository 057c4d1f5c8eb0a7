#!/usr/bin/env bash
# Removes the containers and network namespaces of one lab: those named
# PREFIX.NAME (PREFIX: the argument, else $SNF_LAB_PREFIX, else snf-lab).
# Safe to run at any time: nothing else is named this way, and a lab with
# another prefix running beside it is left alone.
set -u
prefix=${1:-${SNF_LAB_PREFIX:-snf-lab}}
case $prefix in snf-*) ;; *) echo "clean.sh: the prefix must start with snf-" >&2; exit 2 ;; esac
mine() { grep -F "$prefix." | awk -v p="$prefix." 'index($0, p) == 1'; }
names=$(podman ps -a --format '{{.Names}}' 2>/dev/null | mine)
if [ -n "$names" ]; then
  # shellcheck disable=SC2086
  podman rm --force --time 0 $names >/dev/null
fi
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | mine); do
  ip netns delete "$ns"
done
exit 0
