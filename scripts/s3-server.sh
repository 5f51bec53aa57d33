#!/usr/bin/env bash
# Installs (idempotently) an S3-compatible server for the object-store tests: moto's server
# mode, from PyPI, in its own small venv. Prints the path of the `moto_server` program; the
# tests start it themselves on a free loopback port.
#   scripts/s3-server.sh        # venv at <repo>/.venv-s3
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RASK_S3_VENV:-$repo_root/.venv-s3}"
spec="moto[server]==5.2.5"
stamp="$venv/.rask-stamp"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" >&2
fi
if [[ "$(cat "$stamp" 2>/dev/null)" != "$spec" ]]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$spec" >&2
    echo "$spec" > "$stamp"
fi
echo "$venv/bin/moto_server"
