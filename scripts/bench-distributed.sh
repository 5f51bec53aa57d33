#!/usr/bin/env bash
# Runs the distributed benchmarks of rask and of Dask (scheduler + 2 single-thread worker
# processes each, on loopback) side by side in one session, and writes both sets of JSON lines
# to docs/results/distributed-<date>.jsonl (and to standard output).
# Dask needs about ten minutes for the 100,000-task graphs; pass --size N for a quicker run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rask-target}"
size=100000
[ "${1:-}" = "--size" ] && size="$2"

venv=$(bash scripts/python-env.sh | tail -n 1)
cargo build --release --locked -p rask-bench
mkdir -p docs/results
out="docs/results/distributed-$(date -u +%Y-%m-%d).jsonl"
{
  echo "{\"machine\":\"$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m)\",\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\"}"
  "$CARGO_TARGET_DIR/release/rask-bench" distributed --json --workers 2 --threads 1 --size "$size"
  "$venv/bin/python" crates/rask-bench/python/distributed_bench.py --size "$size"
} | tee "$out"
echo "wrote $out" >&2
