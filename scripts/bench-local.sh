#!/usr/bin/env bash
# Runs the local-scheduler benchmarks of rask and of Dask's threaded scheduler side by side, in
# one session, and writes both sets of JSON lines to docs/results/local-<date>.jsonl (and to
# standard output). Pass --big to add the 1,000,000-task scenario (Dask takes about 2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rask-target}"
big=()
[ "${1:-}" = "--big" ] && big=(--big)

venv=$(bash scripts/python-env.sh | tail -n 1)
cargo build --release --locked -p rask-bench
mkdir -p docs/results
out="docs/results/local-$(date -u +%Y-%m-%d).jsonl"
{
  echo "{\"machine\":\"$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m)\",\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\"}"
  "$CARGO_TARGET_DIR/release/rask-bench" local --json "${big[@]}"
  "$venv/bin/python" crates/rask-bench/python/local_bench.py --repeat 3
  if [ ${#big[@]} -gt 0 ]; then
    "$venv/bin/python" crates/rask-bench/python/local_bench.py --big --scenarios map_sum_1m --repeat 1
  fi
} | tee "$out"
echo "wrote $out" >&2
