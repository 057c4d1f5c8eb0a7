#!/usr/bin/env bash
# One idempotent set-up for a fresh machine (Debian bookworm, as root):
# system packages, the .venv with the pinned tools, containers.podman from the
# `ansible` wheel (Galaxy is unreachable), ansible-test's pip bootstrap, the
# extra ansible-core controllers of the smoke stage, and the lab images. Each
# step checks first and skips when already done, so a second run takes
# seconds. Run it through `make setup` (or any make target).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

# Pins that are not Python requirements of the venv itself.
ANSIBLE_WHEEL_VERSION=12.3.0     # the `ansible` release that matches ansible-core 2.19
# chromium: the docs stage renders the conntrack report's HTML page headless (tests/docs/browser.py).
SYSTEM_PACKAGES="podman runc netavark aardvark-dns debootstrap conntrack iptables iproute2 make git rsync chromium"

export CONTAINERS_CONF=$top/tests/lab/containers.conf

step() { printf '[setup] %s\n' "$*"; }

# 1. System packages.
missing=
for pkg in $SYSTEM_PACKAGES; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | grep -q '^ii' || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  step "installing system packages: $missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
  step "system packages present"
fi

# 2. The virtual environment, reinstalled when requirements-dev.txt changes.
req_sum=$(sha256sum requirements-dev.txt | cut -c1-16)
if [ "$(cat .venv/.requirements 2>/dev/null)" != "$req_sum" ]; then
  step "creating .venv from requirements-dev.txt"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip 2>&1 | grep -v 'is ignored' || true
  .venv/bin/pip install -q -r requirements-dev.txt 2>&1 | grep -v 'is ignored' || true
  .venv/bin/python -c 'import ansible, molecule, pyroute2, pytest' # fails the set-up if pip failed
  echo "$req_sum" > .venv/.requirements
else
  step ".venv up to date"
fi

# 3. Collections: this checkout as stateful.netfilter, and containers.podman
#    unpacked from the ansible wheel on PyPI.
collections=$top/.cache/collections/ansible_collections
mkdir -p "$collections/stateful"
ln -sfn "$top" "$collections/stateful/netfilter"
if [ "$(cat "$collections/containers/.from-ansible" 2>/dev/null)" != "$ANSIBLE_WHEEL_VERSION" ]; then
  step "unpacking containers.podman from ansible==$ANSIBLE_WHEEL_VERSION"
  wheel_dir=$(mktemp -d)
  .venv/bin/pip download -q --no-deps -d "$wheel_dir" "ansible==$ANSIBLE_WHEEL_VERSION" 2>&1 | grep -v 'is ignored' || true
  rm -rf "$collections/containers"
  .venv/bin/python - "$wheel_dir"/ansible-*.whl "$top/.cache/collections" <<'EOF'
import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
wheel.extractall(sys.argv[2], [n for n in wheel.namelist()
                               if n.startswith('ansible_collections/containers/podman/')])
EOF
  rm -rf "$wheel_dir"
  echo "$ANSIBLE_WHEEL_VERSION" > "$collections/containers/.from-ansible"
else
  step "containers.podman present"
fi

# 4. ansible-test downloads a pip bootstrap script from a host this machine
#    cannot reach; it reads the script from its cache first. This stand-in
#    bootstraps pip with ensurepip in a subprocess (in-process ensurepip drops
#    the machine's pip configuration) and then installs what was asked.
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',\{0,1\}$/\1/p" \
              .venv/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -n 1)
[ -n "$pip_version" ] || { echo "[setup] cannot find ansible-test's pip version" >&2; exit 1; }
get_pip=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [ ! -f "$get_pip" ] || ! cmp -s tests/sanity/get_pip.py "$get_pip"; then
  step "installing ansible-test's pip bootstrap stand-in ($get_pip)"
  mkdir -p "$(dirname "$get_pip")"
  cp tests/sanity/get_pip.py "$get_pip"
else
  step "ansible-test pip bootstrap present"
fi

# 5. The extra controllers of the smoke stage: ansible-core 2.16 (the oldest
#    supported) and 2.21 (the newest), each in a venv under .cache/controllers/.
bash tests/smoke/controllers.sh

# 6. The lab images, each tagged with a hash of its recipe: rebuilt only when
#    the recipe changes. bookworm runs every scenario; bullseye and trixie
#    the scenario of each extra release; systemd (bookworm, systemd as
#    PID 1) the boot scenario (tests/lab/image/build.sh).
for flavor in bookworm bullseye trixie systemd; do
  image=$(tests/lab/image/tag.sh "$flavor")
  if podman image exists "$image"; then
    step "lab image $image present"
  else
    step "building lab image $image (debootstrap, about a minute)"
    tests/lab/image/build.sh "$image" "$flavor"
    # Drop the images of older recipes of this flavor.
    podman images --format '{{.Repository}}:{{.Tag}}' | grep "^${image%%:*}:" | grep -vx "$image" \
      | xargs -r podman rmi >/dev/null || true
  fi
done
step "done"
