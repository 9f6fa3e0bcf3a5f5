#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager (and, when asked, kubelet) from the Go module
# proxy, once per version.
#
# Usage: test/cluster/build.sh [kubelet]     KUBE_VERSION=1.34|1.37 picks the Kubernetes minor (default 1.37).
#
# Each minor has a Go module of its own (kube-<minor>/) and the etcd its Kubernetes pins (etcd-<minor>/).
# The binaries live in a cache in the home directory, keyed by the Kubernetes and etcd versions and a
# hash of the two Go modules, so that a fresh clone on a warm machine only links .cache/bin-<minor> to
# them. Prints the directory that holds the binaries.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

minor=${KUBE_VERSION:-1.37}
minor=${minor#v}
case "$minor" in
  1.34) etcd_dir=etcd-3.6 ;;
  1.37) etcd_dir=etcd-3.7 ;;
  *) echo "KUBE_VERSION=$minor is not one of the tested minors: 1.34, 1.37" >&2; exit 2 ;;
esac
kube_dir="$here/kube-$minor"
etcd_dir="$here/$etcd_dir"

kube_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' "$kube_dir/go.mod")
etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" { print $3 }' "$etcd_dir/go.mod")
hash=$(cat "$kube_dir"/go.mod "$kube_dir"/go.sum "$kube_dir"/tools.go \
  "$etcd_dir"/go.mod "$etcd_dir"/go.sum "$etcd_dir"/main.go "$0" | sha256sum | cut -c1-12)
key="kube-$kube_version-etcd-$etcd_version-$hash"
store="${KUBE_ECRLOGIN_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-ecrlogin/bin}/$key"

ldflags="-s -w \
  -X k8s.io/component-base/version.gitVersion=$kube_version \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=${minor#1.} \
  -X k8s.io/component-base/version.gitTreeState=clean"

if [ ! -x "$store/kube-apiserver" ] || [ ! -x "$store/kube-controller-manager" ] || [ ! -x "$store/etcd" ]; then
  echo "Building Kubernetes $kube_version and etcd $etcd_version into $store (minutes on a cold machine)" >&2
  tmp="$store.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$kube_dir" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
  (cd "$etcd_dir" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" .)
  rm -rf "$store"; mv "$tmp" "$store"
  trap - EXIT
fi

# kubelet only for the tests that run a node (make test-kubelet): built into the same store, once.
for extra in "$@"; do
  case "$extra" in
    kubelet) ;;
    *) echo "build.sh: unknown command $extra (only kubelet)" >&2; exit 2 ;;
  esac
  if [ ! -x "$store/$extra" ]; then
    echo "Building $extra $kube_version into $store" >&2
    (cd "$kube_dir" && go build -trimpath -ldflags "$ldflags" -o "$store/$extra.tmp.$$" "k8s.io/kubernetes/cmd/$extra")
    mv "$store/$extra.tmp.$$" "$store/$extra"
  fi
done

mkdir -p "$root/.cache"
ln -sfn "$store" "$root/.cache/bin-$minor"
echo "$root/.cache/bin-$minor"
