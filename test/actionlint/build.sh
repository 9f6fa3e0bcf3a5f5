#!/usr/bin/env bash
# Builds rhysd/actionlint from the Go module proxy, once per version, to check .github/workflows/ in
# `make lint`. Like test/promtool/build.sh, the binary lives in a cache in the home directory, keyed
# by version, and .cache/actionlint links to it. Prints its path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

version=v1.7.12
store="${KUBE_ECRLOGIN_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-ecrlogin/bin}/actionlint-$version"

if [ ! -x "$store/actionlint" ]; then
  echo "Building actionlint $version into $store (about a minute on a cold machine)" >&2
  tmp="$store.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  GOBIN="$tmp" go install "github.com/rhysd/actionlint/cmd/actionlint@$version"
  rm -rf "$store"; mv "$tmp" "$store"
  trap - EXIT
fi

mkdir -p "$root/.cache"
ln -sfn "$store/actionlint" "$root/.cache/actionlint"
echo "$root/.cache/actionlint"
