#!/usr/bin/env bash
# Runs ansible-test sanity on a copy of the checkout placed where ansible-test
# wants a collection: SANITY_ROOT/ansible_collections/stateful/netfilter.
# The copy lives outside the checkout (ansible-test skips everything below a
# hidden directory such as .cache) and is kept, with ansible-test's venvs in
# its tests/output, so later runs are fast. Only files git knows or would
# add are copied (no .venv, no .cache).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=${SANITY_ROOT:-/var/tmp/snf-sanity}
dest=$root/ansible_collections/stateful/netfilter
mkdir -p "$dest"
# One run at a time per copy: a second make sanity waits for the first.
exec 9>"$root/.lock"
flock 9
git ls-files --cached --others --exclude-standard | sort > "$root/wanted"
rsync -a --files-from="$root/wanted" ./ "$dest/"
# rsync --files-from never deletes: remove what is no longer in the checkout.
(cd "$dest" && find . -type f ! -path './tests/output/*' | sed 's|^\./||' | sort) \
  | comm -23 - "$root/wanted" | (cd "$dest" && xargs -r rm -f --)
cd "$dest"
ansible-test sanity --venv --python "${SANITY_PYTHON:-3.11}" --color no "$@"
