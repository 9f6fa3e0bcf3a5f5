#!/usr/bin/env bash
# Sets the version: package.json first (the one place it lives), then every copy that must agree with it
# (test/release/version.test.ts checks them): the lockfile's root, the base's image tag and
# app.kubernetes.io/version, the cronjob component's image tag, the install example's ?ref= and newTag,
# and the ?ref= of the READMEs' kustomize examples. Opens the version's CHANGELOG.md section: what is
# under [Unreleased] becomes the new version's, dated today.
#
# Usage: test/release/bump.sh vX.Y.Z   (ROOT=<a copy of the repository> for tests)
set -euo pipefail

root=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
version=${1:-}
die() { echo "bump: $*" >&2; exit 1; }

[[ "$version" =~ ^v([0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?)$ ]] || die "VERSION must be vX.Y.Z (got '${version}')"
new=${BASH_REMATCH[1]}
old=$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$root/package.json")
[ -n "$old" ] || die "no version in package.json"
[ "$old" != "$new" ] || die "package.json is already at $new"
grep -q "^## \[$new\]" "$root/CHANGELOG.md" && die "CHANGELOG.md already has a section for $new"

q=${old//./\\.}
cd "$root"
sed -i "s/^  \"version\": \"$q\",\$/  \"version\": \"$new\",/" package.json
sed -i "1,12s/^\\(  \\|      \\)\"version\": \"$q\",\$/\\1\"version\": \"$new\",/" package-lock.json
sed -i "s#ghcr.io/kube-ecrlogin/kube-ecrlogin:$q\$#ghcr.io/kube-ecrlogin/kube-ecrlogin:$new#" \
  kustomize/base/deployment.yaml kustomize/components/cronjob/cronjob.yaml
sed -i "s#app.kubernetes.io/version: \"$q\"#app.kubernetes.io/version: \"$new\"#" kustomize/base/kustomization.yaml
sed -i -e "s#?ref=v$q\\b#?ref=v$new#g" -e "s#newTag: \"$q\"#newTag: \"$new\"#" kustomize/examples/install/kustomization.yaml
while IFS= read -r readme; do
  sed -i -e "s#\\(kube-ecrlogin//kustomize/[^?]*\\)?ref=v$q\\b#\\1?ref=v$new#g" -e "s#newTag: $q\$#newTag: $new#" "$readme"
done < <(find kustomize -name README.md)
# The release download and the checkout of the tag: on the landing page and in the install guide.
sed -i -e "s#releases/download/v$q/#releases/download/v$new/#g" -e "s#--branch v$q #--branch v$new #g" README.md kustomize/README.md

# CHANGELOG.md: the new section under [Unreleased], and its link.
today=$(date -u +%Y-%m-%d)
awk -v new="$new" -v old="$old" -v today="$today" '
  $0 == "## [Unreleased]" { print; print ""; print "## [" new "] - " today; next }
  index($0, "[Unreleased]: ") == 1 {
    sub("v" old "\\.\\.\\.HEAD", "v" new "...HEAD")
    print
    link = $0
    sub(/\[Unreleased\]: /, "", link)
    sub(/compare\/.*/, "releases/tag/v" new, link)
    print "[" new "]: " link
    next
  }
  { print }
' CHANGELOG.md >CHANGELOG.md.new
mv CHANGELOG.md.new CHANGELOG.md

if out=$(grep -rn --include='*.yaml' --include='*.json' --include='*.md' -e "kube-ecrlogin:$q\$" -e "version: \"$q\"" -e "?ref=v$q\\b" -e "releases/download/v$q/" -e "--branch v$q " kustomize package.json README.md 2>/dev/null) && [ -n "$out" ]; then
  die "$old is still named in: $out"
fi
echo "bump: $old -> $new; write its CHANGELOG.md section (moved from [Unreleased]), then make test and tag v$new"
