#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller from the Go module proxy, once per version.
#
# Usage: test/gitops/flux/build.sh      Prints the directory that holds both binaries (and crds/).
#
# Their `main` packages are at the module roots and cannot be imported, and their go.mod files replace
# their own API modules with a local folder (`=> ./api`), which the module zip leaves out (it is a
# module of its own), so `go install <module>@<version>` cannot build them. Instead: the module's
# source comes from the module proxy (`go mod download`), into a scratch copy, and is built there with
# the go.mod and go.sum kept beside this script: upstream's, with only that `./api` replace dropped (the
# API module of the same version, which upstream's go.mod already requires, comes from the proxy too).
#
# Like test/cluster/build.sh, the binaries live in a cache in the home directory, keyed by both
# versions and a hash of the Go module files and this script; .cache/flux links to it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

# The versions whose CRDs ../shared/crds holds (v1.9.0) and that build with Go 1.26 (v1.10 needs Go 1.27).
# source-controller/go.mod and kustomize-controller/go.mod are those versions' own go.mod files.
source_version=v1.9.6
kustomize_version=v1.9.6
hash=$(cat "$here"/source-controller/go.mod "$here"/source-controller/go.sum \
  "$here"/kustomize-controller/go.mod "$here"/kustomize-controller/go.sum "$0" | sha256sum | cut -c1-12)
key="flux-source-$source_version-kustomize-$kustomize_version-$hash"
store="${KUBE_ECRLOGIN_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-ecrlogin/bin}/$key"

build() { # build <controller> <version> <output dir>
  local controller=$1 version=$2 out=$3 src
  src=$(go mod download -json "github.com/fluxcd/$controller@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] || { echo "go mod download github.com/fluxcd/$controller@$version gave no source" >&2; exit 1; }
  local work="$out/src-$controller"
  cp -R "$src" "$work"
  chmod -R u+w "$work"
  cp "$here/$controller/go.mod" "$here/$controller/go.sum" "$work/"
  (cd "$work" && GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$out/$controller" .)
  # The CRDs of the same version, for the kinds ../shared/crds does not hold (Bucket, HelmChart, ...),
  # which the controllers watch and without which they do not start.
  mkdir -p "$out/crds"
  cp "$work"/config/crd/bases/*.yaml "$out/crds/"
  rm -rf "$work"
}

if [ ! -x "$store/source-controller" ] || [ ! -x "$store/kustomize-controller" ] || [ ! -d "$store/crds" ]; then
  echo "Building Flux source-controller $source_version and kustomize-controller $kustomize_version into $store (minutes on a cold machine)" >&2
  tmp="$store.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
  build source-controller "$source_version" "$tmp"
  build kustomize-controller "$kustomize_version" "$tmp"
  rm -rf "$store"; mv "$tmp" "$store"
  trap - EXIT
fi

mkdir -p "$root/.cache"
ln -sfn "$store" "$root/.cache/flux"
echo "$root/.cache/flux"
