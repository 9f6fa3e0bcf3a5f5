#!/usr/bin/env bash
# Builds Argo CD's one binary (argocd; run as argocd-application-controller and argocd-repo-server by
# the name it is called by) from the Go module proxy, once per version.
#
# Usage: test/gitops/argocd/build.sh    Prints the directory that holds argocd, the two names, the
#                                       repo server's wrapper scripts and the CRDs.
#
# Argo CD v3.6 needs Go 1.27: this script takes it from the module proxy (GOTOOLCHAIN=go1.27.3); the
# rest of the project stays on the machine's Go. Its `main` package (./cmd) cannot be imported, and its
# go.mod replaces its gitops-engine module with a local folder (`=> ./gitops-engine`), which the module
# zip leaves out (a module of its own), so `go install <module>/cmd@<version>` cannot build it. Instead:
# the module's source comes from the module proxy (`go mod download`) into a scratch copy and is built
# there with the go.mod and go.sum kept beside this script: upstream's, with only that replace dropped
# (gitops-engine/v3 of the same version, which upstream's go.mod already requires, is published).
#
# Like test/cluster/build.sh, the binary lives in a cache in the home directory, keyed by version and a
# hash of the Go module files and this script; .cache/argocd links to it.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

version=v3.6.1
hash=$(cat "$here"/go.mod "$here"/go.sum "$0" | sha256sum | cut -c1-12)
store="${KUBE_ECRLOGIN_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-ecrlogin/bin}/argocd-$version-$hash"

if [ ! -x "$store/argocd" ] || [ ! -x "$store/git-verify-wrapper.sh" ]; then
  echo "Building Argo CD $version into $store (many minutes on a cold machine)" >&2
  tmp="$store.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
  src=$(go mod download -json "github.com/argoproj/argo-cd/v3@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] || { echo "go mod download github.com/argoproj/argo-cd/v3@$version gave no source" >&2; exit 1; }
  cp -R "$src" "$tmp/src"
  chmod -R u+w "$tmp/src"
  cp "$here/go.mod" "$here/go.sum" "$tmp/src/"
  pkg=github.com/argoproj/argo-cd/v3/common
  (cd "$tmp/src" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath \
    -ldflags "-s -w -X $pkg.version=${version#v} -X $pkg.gitTag=$version -X $pkg.gitTreeState=clean" \
    -o "$tmp/argocd" ./cmd)
  mkdir -p "$tmp/crds"
  cp "$tmp/src"/manifests/crds/*.yaml "$tmp/crds/"
  # The repo server runs these from PATH (the image puts them in /usr/local/bin).
  cp "$tmp/src"/hack/gpg-wrapper.sh "$tmp/src"/hack/git-verify-wrapper.sh "$tmp/"
  chmod 755 "$tmp/gpg-wrapper.sh" "$tmp/git-verify-wrapper.sh"
  rm -rf "$tmp/src"
  ln -s argocd "$tmp/argocd-application-controller"
  ln -s argocd "$tmp/argocd-repo-server"
  rm -rf "$store"; mv "$tmp" "$store"
  trap - EXIT
fi

mkdir -p "$root/.cache"
ln -sfn "$store" "$root/.cache/argocd"
echo "$root/.cache/argocd"
