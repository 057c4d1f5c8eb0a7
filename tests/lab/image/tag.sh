#!/usr/bin/env bash
# Prints the lab image's tag: a hash of its recipe, so that a changed recipe
# means a new image and an unchanged one is never rebuilt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
echo "localhost/snf-lab:$(cat "$here/build.sh" "$here/snf-probe" | sha256sum | cut -c1-12)"
