#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager from the Go module proxy, once per version.
#
# The binaries live in a cache in the home directory, keyed by the Kubernetes and etcd versions and a
# hash of the two Go modules, so that a fresh clone on a warm machine only links .cache/bin to them.
# Prints the directory that holds the binaries.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

kube_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' "$here/kube/go.mod")
etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" { print $3 }' "$here/etcd/go.mod")
minor=${kube_version#v1.}; minor=${minor%%.*}
hash=$(cat "$here"/kube/go.mod "$here"/kube/go.sum "$here"/kube/tools.go \
  "$here"/etcd/go.mod "$here"/etcd/go.sum "$here"/etcd/main.go "$0" | sha256sum | cut -c1-12)
key="kube-$kube_version-etcd-$etcd_version-$hash"
store="${KUBE_ECRLOGIN_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-ecrlogin/bin}/$key"

if [ ! -x "$store/kube-apiserver" ] || [ ! -x "$store/kube-controller-manager" ] || [ ! -x "$store/etcd" ]; then
  echo "Building Kubernetes $kube_version and etcd $etcd_version into $store (minutes on a cold machine)" >&2
  tmp="$store.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  ldflags="-s -w \
    -X k8s.io/component-base/version.gitVersion=$kube_version \
    -X k8s.io/component-base/version.gitMajor=1 \
    -X k8s.io/component-base/version.gitMinor=$minor \
    -X k8s.io/component-base/version.gitTreeState=clean"
  (cd "$here/kube" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" .)
  rm -rf "$store"; mv "$tmp" "$store"
  trap - EXIT
fi

mkdir -p "$root/.cache"
ln -sfn "$store" "$root/.cache/bin"
echo "$root/.cache/bin"
