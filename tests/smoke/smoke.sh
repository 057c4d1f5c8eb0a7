#!/usr/bin/env bash
# The smoke stage of `make test` (make smoke): the collection on every
# ansible-core line it claims, kept lean. For each controller - the pinned
# .venv (2.19) and the extra venvs of tests/smoke/controllers.sh (the oldest
# supported line, 2.16, and the newest release, 2.21):
#   - the plugin unit tests (tests/unit/plugins) under that ansible-core
#     (the pinned one runs them in `make unit` already);
#   - a fresh lab (lan - gw - wan), the oldest Python that ansible-core line
#     supports on managed hosts copied into gw (a pyenv build of this
#     machine: same Debian 12 libraries as the lab image), then smoke.yml:
#     the gateway playbook once and each module once for real, with packets;
#   - on 2.20+, the firewall role on Python 3.8 fails with ansible-core's
#     own reason (3.9 needed), not an error of the role's own tasks (its
#     former rescue task once hid it: "object of type 'dict' has no
#     attribute 'hook'").
# The controllers run side by side, each in a lab of its own (prefix
# snf-smoke-N): the time goes into podman round trips, not CPU.
# Usage: smoke.sh [VENV ...]  (default: .venv and the extra controllers).
# Prints each step's time; removes its labs on any exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
prefix=${SNF_LAB_PREFIX:-snf-smoke}
export SNF_LAB_IMAGE=${SNF_LAB_IMAGE:-$(tests/lab/image/tag.sh)}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$top/tests/lab/containers.conf}
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$top/.cache/collections}
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 PY_COLORS=0
export ANSIBLE_INVENTORY=$top/tests/smoke/inventory.yml
out=$(mktemp -d /tmp/snf-smoke.XXXXXX)
clean_all() {
  local n
  for n in $(seq 1 "${#venvs[@]}"); do bash "$top/tests/lab/clean.sh" "$prefix-$n"; done
  rm -rf "$out"
}

if [ $# -gt 0 ]; then
  venvs=("$@")
else
  mapfile -t venvs < <(echo "$top/.venv"; bash tests/smoke/controllers.sh list)
fi
trap clean_all EXIT INT TERM HUP PIPE

# The oldest managed-host Python of an ansible-core line (its support matrix):
# 2.16 to 2.19 run modules on 3.8 (2.16 and 2.17 on older Pythons too, but
# this collection's own code needs 3.8), 2.20 and later need 3.9.
min_python() {
  case $1 in 2.1[6-9].*) echo 3.8 ;; *) echo 3.9 ;; esac
}

# Copies pyenv's build of Python VERSION into the lab container CONTAINER,
# lean (no tests, tkinter, idlelib, ensurepip, site-packages), at the same
# path: its binary finds libpython through an absolute RUNPATH. Prints the
# interpreter's path.
put_python() {
  local version=$1 container=$2 dir
  dir=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".* 2>/dev/null | sort -V | tail -n 1)
  [ -x "$dir/bin/python$version" ] || { echo "smoke: no pyenv build of Python $version" >&2; return 1; }
  tar -C / -c --exclude='*/test' --exclude='*/tests' --exclude='*/idlelib' --exclude='*/tkinter' \
      --exclude='*/turtledemo' --exclude='*/lib2to3' --exclude='*/ensurepip' --exclude='*/site-packages' \
      --exclude="*/config-$version*" --exclude=__pycache__ --exclude='*/lib-dynload/_test*' \
      "${dir#/}/bin/python$version" "${dir#/}/lib/libpython$version.so.1.0" "${dir#/}/lib/python$version" \
    | podman exec -i "$container" tar -x -C /
  echo "$dir/bin/python$version"
}

timed() {  # label command...
  local label=$1 start=$SECONDS rc=0
  shift
  "$@" > "$log" 2>&1 || rc=$?
  printf '  %-58s %s in %ds\n' "$label" "$([ $rc -eq 0 ] && echo ok || echo FAILED)" $((SECONDS - start))
  [ $rc -eq 0 ] || { cat "$log"; return $rc; }
}

# One controller's smoke run; stops at its first failing step.
smoke_controller() {  # venv core python
  local venv=$1 core=$2 python=$3 interpreter too_old unit=0
  if [ "$venv" != "$top/.venv" ]; then
    # A unit test failure fails the run, after the lab part.
    timed "unit tests (tests/unit/plugins)" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit/plugins \
      || unit=1
  fi
  timed "lab lan - gw - wan ($SNF_LAB_PREFIX)" "$top/.venv/bin/ansible-playbook" tests/lab/create.yml \
    -e '{"lab_platforms": ["lan", "gw", "wan"]}' || return 1
  timed "Python $python into gw" put_python "$python" "$SNF_LAB_PREFIX.gw" || return 1
  interpreter=$(tail -n 1 "$log")
  SNF_SMOKE_PYTHON=$interpreter SNF_SMOKE_PYTHON_VERSION=$("$interpreter" -c 'import platform; print(platform.python_version())') \
    timed "gateway playbook, each module once (smoke.yml)" "$venv/bin/ansible-playbook" tests/smoke/smoke.yml \
    || return 1
  [ "$python" != 3.8 ] || return $unit
  timed "Python 3.8 into gw" put_python 3.8 "$SNF_LAB_PREFIX.gw" || return 1
  too_old=$(tail -n 1 "$log")
  if SNF_SMOKE_PYTHON=$too_old "$venv/bin/ansible-playbook" tests/smoke/too_old.yml > "$log" 2>&1; then
    echo "  the firewall role ran on Python 3.8 under ansible-core $core"
    return 1
  fi
  if ! grep -q 'Ansible requires Python 3.9 or newer on the target' "$log" || grep -q 'has no attribute' "$log"; then
    cat "$log"
    echo "  the firewall role did not fail with ansible-core's reason (Python 3.9 needed)"
    return 1
  fi
  echo "  firewall role on Python 3.8 refused: $(grep -o 'Ansible requires Python 3.9[^(]*' "$log" | head -n 1)"
  return $unit
}

# One controller in lab PREFIX-N; prints its report, exits non-zero on a failure.
run_one() {  # n venv
  local n=$1 venv=$2 start=$SECONDS core python result=passed
  export SNF_LAB_PREFIX=$prefix-$n
  log=$out/$n.log
  core=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
  python=$(min_python "$core")
  echo "=== smoke: ansible-core $core ($("$venv/bin/python" --version)), managed host Python $python"
  smoke_controller "$venv" "$core" "$python" || result=FAILED
  bash tests/lab/clean.sh "$SNF_LAB_PREFIX"
  echo "=== smoke: ansible-core $core $result in $((SECONDS - start))s"
  printf 'ansible-core %-8s managed Python %-4s %-7s %4ds\n' "$core" "$python" "$result" $((SECONDS - start)) \
    > "$out/$n.summary"
  [ "$result" = passed ]
}

n=0
for venv in "${venvs[@]}"; do
  n=$((n + 1))
  run_one "$n" "$venv" > "$out/$n.out" 2>&1 &
done
status=0
wait_status=0
for n in $(seq 1 "${#venvs[@]}"); do
  wait -n || wait_status=1
done
for n in $(seq 1 "${#venvs[@]}"); do
  cat "$out/$n.out"
  grep -q ' passed ' "$out/$n.summary" 2>/dev/null || status=1
done
echo "=== smoke summary (side by side)"
cat "$out"/*.summary
exit $((status | wait_status))
