#!/bin/sh
# Installs Debian's redis-server, which Argo CD's application controller and repo server need (the
# GitOps suite runs its own instance on a loopback port; the package's service is not used). Does
# nothing when redis-server is already there; needs root otherwise (as `make test-kubelet` does for
# containerd). Prints the path of redis-server.
set -eu

if command -v redis-server >/dev/null 2>&1; then
  command -v redis-server
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-redis: redis-server is missing and this is not root: apt-get install redis-server (the Argo CD suite skips itself without it)" >&2
  exit 0
fi
echo "install-redis: apt-get install redis-server" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends redis-server >&2
# Debian starts the service where systemd runs; the suite never uses it.
command -v redis-server
