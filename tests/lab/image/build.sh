#!/usr/bin/env bash
# Builds a lab image with debootstrap and imports it into podman.
# Usage: build.sh TAG [FLAVOR]   (run by tests/setup.sh when the recipe changed)
# FLAVOR (tag.sh names them): bookworm (the default: every scenario),
# bullseye and trixie (the scenario of each extra release), systemd (bookworm
# with systemd as PID 1: the boot scenario). All from the same Debian mirror.
set -euo pipefail
tag=$1
flavor=${2:-bookworm}
here=$(cd "$(dirname "$0")" && pwd)
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
packages=python3,python-is-python3,iproute2,iptables,nftables,conntrack,procps,iputils-ping,openssh-server,openssh-client,ca-certificates
cmd='["/bin/sleep", "infinity"]'
case $flavor in
  bookworm | bullseye | trixie) release=$flavor ;;
  systemd)
    release=bookworm
    packages=$packages,systemd,systemd-sysv,dbus
    cmd='["/sbin/init"]'
    ;;
  *) echo "build.sh: unknown flavor $flavor (bookworm, bullseye, trixie, systemd)" >&2; exit 2 ;;
esac
root=$(mktemp -d /tmp/snf-image.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include="$packages" "$release" "$root" "$mirror" >/dev/null
install -m 0755 "$here/snf-probe" "$root/usr/local/bin/snf-probe"
if [ "$flavor" = systemd ]; then
  # A container boots to multi-user.target with no getty or timers of its own;
  # ssh is not used (the lab connects with podman exec).
  chroot "$root" systemctl set-default multi-user.target >/dev/null
  chroot "$root" systemctl mask getty.target console-getty.service systemd-timesyncd.service \
    apt-daily.timer apt-daily-upgrade.timer ssh.service >/dev/null 2>&1 || true
fi
# Keep the image small and leave no host identity in it.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
tar -C "$root" -c . | podman import --change "CMD $cmd" - "$tag" >/dev/null
echo "built $tag"
