#!/usr/bin/env bash
# Builds Prometheus's promtool from the Go module proxy, once per version, to check and unit-test the
# alerting rules of kustomize/components/prometheus. Like test/cluster/build.sh, the binary lives in a
# cache in the home directory, keyed by version, and .cache/promtool links to it. Prints its path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# Prometheus v3.x is published to the module proxy as v0.3xx.y.
version=v0.316.0
store="${KUBE_ECRLOGIN_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-ecrlogin/bin}/promtool-$version"

if [ ! -x "$store/promtool" ]; then
  echo "Building promtool $version into $store (about 6 minutes on a cold machine)" >&2
  tmp="$store.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  GOBIN="$tmp" go install "github.com/prometheus/prometheus/cmd/promtool@$version"
  rm -rf "$store"; mv "$tmp" "$store"
  trap - EXIT
fi

mkdir -p "$root/.cache"
ln -sfn "$store/promtool" "$root/.cache/promtool"
echo "$root/.cache/promtool"
