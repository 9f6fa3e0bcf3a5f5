#!/usr/bin/env bash
# Builds the real Dockerfile without Docker and without pulling an image: Debian's buildah (vfs storage,
# chroot isolation) on a locally made stand-in for node:24-slim (debootstrap bookworm minbase + the
# project's Node 24 binary + npm 11 from the npm registry), then runs the image's `--version` as its user.
# Needs root, `apt-get install -y buildah debootstrap`, and network access to deb.debian.org and npm.
# Not part of `make test`. Usage: test/kustomize/buildah-build.sh [WORKDIR]   (about 2 minutes)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="${1:-$(mktemp -d)}"
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
base=localhost/node:24-slim
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/package.json")"
image="localhost/kube-ecrlogin:$version"

if ! buildah inspect "$base" >/dev/null 2>&1; then
  rootfs="$work/rootfs"
  [[ -d "$rootfs/usr" ]] || debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log"
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm" "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs"
  (cd "$work" && npm pack npm@11 --silent >/dev/null)
  tar -xzf "$work"/npm-*.tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  cp "$(readlink -f "$root/node_modules/.bin/node")" "$rootfs/usr/local/bin/node"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # This machine reaches registries through a TLS-intercepting proxy: trust what the host trusts.
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  ctr="$(buildah from scratch)"
  buildah copy "$ctr" "$rootfs" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt --env NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt \
    --cmd node "$ctr"
  buildah commit -q "$ctr" "$base" >/dev/null
  buildah rm "$ctr" >/dev/null
fi

buildah bud --layers=false --build-arg NODE_IMAGE="$base" -t "$image" "$root"
buildah inspect --format 'user={{.OCIv1.Config.User}} entrypoint={{.OCIv1.Config.Entrypoint}} cmd={{.OCIv1.Config.Cmd}}{{"\n"}}' "$image"
ctr="$(buildah from "$image")"
trap 'buildah rm "$ctr" >/dev/null' EXIT
buildah run "$ctr" -- node /app/dist/kube-ecrlogin.mjs --version
buildah run "$ctr" -- sh -c 'id -u; kube-ecrlogin version; if touch /app/probe 2>/dev/null; then echo "/app is writable" >&2; exit 1; fi'
