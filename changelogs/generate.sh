#!/usr/bin/env bash
# make changelog: lint the fragments and changelogs/changelog.yaml, then write
# CHANGELOG.md and CHANGELOG.rst: the released versions plus the unreleased
# fragments as the version of galaxy.yml. The release is rendered in a scratch
# copy of the collection, so changelogs/ itself (fragments included) is left
# as it is; `antsibull-changelog release` in the checkout is the real release.
set -euo pipefail
cd "$(dirname "$0")/.."
antsibull-changelog lint
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
copy=$scratch/ansible_collections/stateful/netfilter
mkdir -p "$copy"
git ls-files --cached --others --exclude-standard -- galaxy.yml meta plugins roles playbooks changelogs \
  | rsync -a --files-from=- ./ "$copy/"
version=$(sed -n 's/^version: *//p' galaxy.yml)
(cd "$copy" && ANSIBLE_COLLECTIONS_PATH=$scratch antsibull-changelog release --version "$version" >/dev/null)
cp "$copy/CHANGELOG.md" "$copy/CHANGELOG.rst" .
echo "CHANGELOG.md, CHANGELOG.rst: $version with $(ls changelogs/fragments | wc -l) fragment(s)"
