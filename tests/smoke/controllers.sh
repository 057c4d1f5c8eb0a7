#!/usr/bin/env bash
# The extra controllers of the smoke stage (tests/smoke/smoke.sh): the oldest
# ansible-core the collection supports (meta/runtime.yml) and the newest
# release, each in a venv of its own under .cache/controllers/, with the
# unit tests' pytest and hypothesis pinned as in requirements-dev.txt.
# Idempotent: a venv is rebuilt only when its pins or its Python change.
# Run by tests/setup.sh; `controllers.sh list` prints the venv directories.
set -euo pipefail
cd "$(dirname "$0")/../.."

# ansible-core version : controller Python. 2.16 supports controller Python
# 3.10-3.12, 2.20 and later need 3.12+; 3.12 is what Ubuntu 24.04 and RHEL 10
# run their ansible-core 2.16 with.
CONTROLLERS="2.16.19:3.12 2.21.5:3.12"

venv_of() { echo "$PWD/.cache/controllers/core-${1%.*}"; }

if [ "${1:-}" = list ]; then
  for entry in $CONTROLLERS; do venv_of "${entry%%:*}"; done
  exit 0
fi

# A python3.X that runs: on PATH (a pyenv shim may be on PATH and still refuse
# to run a version that is not selected), else straight from pyenv's versions.
find_python() {
  local name=python$1 candidate
  for candidate in "$(command -v "$name" || true)" \
                   $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/"$name" 2>/dev/null | sort -V -r); do
    [ -n "$candidate" ] && "$candidate" -c '' 2>/dev/null && { echo "$candidate"; return 0; }
  done
  echo "[setup] no working $name (needed for an extra ansible-core controller)" >&2
  return 1
}

pins=$(grep -E '^(pytest|hypothesis)==' requirements-dev.txt | sed 's/ *#.*//')
for entry in $CONTROLLERS; do
  core=${entry%%:*}
  python=$(find_python "${entry#*:}")
  venv=$(venv_of "$core")
  want=$(printf '%s\n' "ansible-core==$core" $pins "$("$python" -c 'import sys; print(sys.version)')" | sha256sum | cut -c1-16)
  if [ "$(cat "$venv/.requirements" 2>/dev/null)" = "$want" ]; then
    echo "[setup] controller ansible-core $core present ($venv)"
    continue
  fi
  echo "[setup] creating controller venv ansible-core $core on $("$python" --version)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip 2>&1 | grep -v 'is ignored' || true
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q "ansible-core==$core" $pins 2>&1 | grep -v 'is ignored' || true
  # Fails the set-up if pip failed. (Not `| grep -q`: grep stops reading at the first match, and under
  # pipefail ansible-playbook's broken pipe then fails the pipeline.)
  version=$("$venv/bin/ansible-playbook" --version)
  [[ $version == *"core $core"* ]] || { echo "[setup] ansible-core $core did not install in $venv" >&2; exit 1; }
  "$venv/bin/python" -c 'import pytest, hypothesis'
  echo "$want" > "$venv/.requirements"
done
