#!/usr/bin/env bash
# Builds the lab's Debian image with debootstrap and imports it into podman.
# Usage: build.sh TAG   (run by tests/lab/setup.sh when the recipe changed)
set -euo pipefail
tag=$1
here=$(cd "$(dirname "$0")" && pwd)
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
root=$(mktemp -d /tmp/snf-image.XXXXXX)
trap 'rm -rf "$root"' EXIT
packages=python3,python-is-python3,iproute2,iptables,nftables,conntrack,procps,iputils-ping,openssh-server,openssh-client,ca-certificates
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >/dev/null
install -m 0755 "$here/snf-probe" "$root/usr/local/bin/snf-probe"
# Keep the image small and leave no host identity in it.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
tar -C "$root" -c . | podman import --change 'CMD ["/bin/sleep", "infinity"]' - "$tag" >/dev/null
echo "built $tag"
