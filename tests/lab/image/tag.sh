#!/usr/bin/env bash
# Prints the tag of a lab image: a hash of its recipe, so that a changed
# recipe means a new image and an unchanged one is never rebuilt.
# Usage: tag.sh [FLAVOR]   (bookworm, the default, bullseye, trixie, systemd;
# see build.sh). bookworm is localhost/snf-lab:HASH, the others
# localhost/snf-lab-FLAVOR:HASH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
flavor=${1:-bookworm}
case $flavor in
  bookworm) repo=localhost/snf-lab ;;
  bullseye | trixie | systemd) repo=localhost/snf-lab-$flavor ;;
  *) echo "tag.sh: unknown flavor $flavor (bookworm, bullseye, trixie, systemd)" >&2; exit 2 ;;
esac
echo "$repo:$({ cat "$here/build.sh" "$here/snf-probe"; echo "$flavor"; } | sha256sum | cut -c1-12)"
