#!/usr/bin/env bash
# Removes the containers and network namespaces of one lab: those named
# PREFIX.NAME (PREFIX: the argument, else $SNF_LAB_PREFIX, else snf-lab).
# Safe to run at any time: nothing else is named this way, and a lab with
# another prefix running beside it is left alone.
set -u
prefix=${1:-${SNF_LAB_PREFIX:-snf-lab}}
case $prefix in snf-*) ;; *) echo "clean.sh: the prefix must start with snf-" >&2; exit 2 ;; esac
mine() { grep -F "$prefix." | awk -v p="$prefix." 'index($0, p) == 1'; }
# The lab's ssh ControlPersist masters (tests/lab/ssh.yml: sockets in a
# directory named cp.PREFIX; a master titles itself "ssh: SOCKET [mux]")
# and their ProxyCommand relays (podman exec -i PREFIX.wan ... snf-relay):
# ended first, so none outlives the run by its persist time. Only processes
# whose command line names this prefix: `ssh -O exit` ends a master and its
# relay; a master that does not answer and a relay left over get SIGTERM.
masters() { pgrep -a -x ssh | awk -v d="/cp.$prefix/" '$2 == "ssh:" && index($3, d) && $4 == "[mux]" {print $1, $3}'; }
relays() { pgrep -a -x podman | awk -v c="$prefix.wan" '$2 == "exec" && $3 == "-i" && $4 == c && $6 == "/usr/local/bin/snf-relay" {print $1}'; }
ended=0
while read -r pid socket; do
  [ -n "$pid" ] || continue
  ssh -F /dev/null -O exit -o ControlPath="$socket" snf-lab-master >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null
  ended=$((ended + 1))
done < <(masters)
for _ in 1 2 3 4 5 6 7 8 9 10; do
  [ -z "$(masters)$(relays)" ] && break
  sleep 0.2
done
for pid in $(masters | awk '{print $1}') $(relays); do
  kill -TERM "$pid" 2>/dev/null
done
[ "$ended" -gt 0 ] && echo "clean.sh: ended $ended ssh master(s) of $prefix" >&2
names=$(podman ps -a --format '{{.Names}}' 2>/dev/null | mine)
if [ -n "$names" ]; then
  # shellcheck disable=SC2086
  podman rm --force --time 0 $names >/dev/null
fi
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | mine); do
  ip netns delete "$ns"
done
exit 0
