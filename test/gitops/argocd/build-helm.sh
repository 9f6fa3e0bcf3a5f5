#!/usr/bin/env bash
# Builds helm, which Argo CD's repo server runs (`helm registry login`, `helm pull`, `helm template`),
# from the Go module proxy, once per version: the version Argo CD v3.6.1's image ships
# (HELM_VERSION in its hack/tool-versions.sh). helm's go.mod has no replace directives, so
# `go install <module>/cmd/helm@<version>` builds it with the machine's Go.
#
# Usage: test/gitops/argocd/build-helm.sh    Prints the directory that holds helm.
#
# Cached like build.sh's Argo CD, in the home directory, keyed by version and a hash of this script;
# .cache/helm links to it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

version=v4.3.1
hash=$(sha256sum <"$0" | cut -c1-12)
store="${KUBE_ECRLOGIN_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-ecrlogin/bin}/helm-$version-$hash"

if [ ! -x "$store/helm" ]; then
  echo "Building helm $version into $store (minutes on a cold machine)" >&2
  tmp="$store.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  pkg=helm.sh/helm/v4/internal/version
  CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath \
    -ldflags "-s -w -X $pkg.version=$version -X $pkg.gitTreeState=clean" \
    "helm.sh/helm/v4/cmd/helm@$version"
  rm -rf "$store"; mv "$tmp" "$store"
  trap - EXIT
fi

mkdir -p "$root/.cache"
ln -sfn "$store" "$root/.cache/helm"
echo "$root/.cache/helm"
