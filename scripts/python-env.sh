#!/usr/bin/env bash
# Create (idempotently) the Python venv used by the Dask comparison benchmarks
# and install the pinned packages from scripts/python-requirements.txt.
#
#   scripts/python-env.sh            # venv at <repo>/.venv
#   RASK_VENV=/some/dir scripts/python-env.sh
#
# Re-running is cheap: pip is skipped when the venv's stamp file holds the
# same requirement list.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
venv="${RASK_VENV:-$repo_root/.venv}"
reqs="$script_dir/python-requirements.txt"
stamp="$venv/.rask-requirements.stamp"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating venv at $venv" >&2
    "$python" -m venv "$venv"
fi

if [[ -f "$stamp" ]] && cmp -s "$reqs" "$stamp"; then
    echo "requirements up to date, skipping pip install" >&2
else
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$reqs"
    cp "$reqs" "$stamp"
fi

echo "$venv"
