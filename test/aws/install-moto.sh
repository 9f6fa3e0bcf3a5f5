#!/bin/sh
# Installs moto (server mode) into .cache/moto-venv from test/aws/requirements.txt.
# Idempotent: does nothing when the stamp file matches the hash of the requirements
# and the Python version. Safe to run concurrently (flock on a lock file).
# Prints the path of moto_server on stdout.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.cache/moto-venv"
req="$root/test/aws/requirements.txt"
stamp="$venv/.requirements.sha256"
python=${PYTHON:-python3}

mkdir -p "$root/.cache"
want=$( { "$python" --version 2>&1; cat "$req"; } | sha256sum | cut -d' ' -f1)

if [ -x "$venv/bin/moto_server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$venv/bin/moto_server"
  exit 0
fi

exec 9>"$root/.cache/moto-venv.lock"
flock 9
# Another process may have finished the install while we waited for the lock.
if [ -x "$venv/bin/moto_server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$venv/bin/moto_server"
  exit 0
fi

echo "install-moto: installing $(grep -m1 "^moto" "$req") into $venv" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
echo "$want" > "$stamp"
echo "$venv/bin/moto_server"
