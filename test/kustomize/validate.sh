#!/usr/bin/env bash
# Builds every kustomization under kustomize/ with `kubectl kustomize` (kustomize v5 built in):
# Kustomizations as they are, each Component through a throw-away overlay over the base, and each
# example (kustomize/examples/) with its remote bases replaced by this checkout.
# Usage: test/kustomize/validate.sh [KUSTOMIZE_DIR]   (prints "ok <dir>" per build; exit 1 on any failure)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${1:-$root/kustomize}"
dir="$(cd "$dir" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
ln -s "$dir" "$scratch/kustomize"

failed=0
build() { # build LABEL DIR
  if out="$(kubectl kustomize "$2" 2>&1 >/dev/null)"; then
    printf 'ok    %s\n' "$1"
  else
    printf 'FAIL  %s\n%s\n' "$1" "$out"
    failed=1
  fi
}

while IFS= read -r file; do
  path="$(dirname "$file")"
  rel="kustomize/${path#"$dir"/}"
  [[ "$path" == "$dir" ]] && rel="kustomize"
  if [[ "$path" == "$dir/examples/"* ]]; then
    # An example refers to this repository's tag by URL: build it against this checkout instead.
    name="example-$(basename "$path")"
    mkdir -p "$scratch/$name"
    sed -E 's#https://github\.com/kube-ecrlogin/kube-ecrlogin//kustomize/([^?]+)\?ref=[^ ]+#../kustomize/\1#' "$file" >"$scratch/$name/kustomization.yaml"
    build "$rel" "$scratch/$name"
  elif grep -qE '^kind: *Component *$' "$file"; then
    name="$(basename "$path")"
    mkdir -p "$scratch/$name"
    printf 'resources: [../kustomize/base]\ncomponents: [../kustomize/%s]\n' "${path#"$dir"/}" >"$scratch/$name/kustomization.yaml"
    build "$rel" "$scratch/$name"
  else
    build "$rel" "$path"
  fi
done < <(find "$dir" -name kustomization.yaml | sort)

exit "$failed"
