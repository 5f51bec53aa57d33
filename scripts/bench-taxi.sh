#!/usr/bin/env bash
# Runs the NYC-taxi benchmark of rask (local scheduler and a local cluster of worker
# processes), plain Polars (the pinned Rust crate), Dask (threads and a 2-process LocalCluster,
# P2P shuffles), the Python package of Polars, DuckDB and PySpark (local mode) side by side in one session, and writes the JSON lines to docs/results/taxi-<date>-<HHMM>.jsonl (and standard output).
# Each step runs three times per engine (steps under 0.1 s at least 15 times) and its median
# time is reported.
#   scripts/bench-taxi.sh [ROWS_PER_FILE]     (default 400000: 4.8 M rows, about 585 MB of CSV)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rask-target}"
rows="${1:-400000}"
data="${RASK_BENCH_DATA:-$CARGO_TARGET_DIR/nyc-taxi}"

venv=$(bash scripts/python-env.sh | tail -n 1)
cargo build --release --locked -p rask-bench
mkdir -p docs/results
out="docs/results/taxi-$(date -u +%Y-%m-%d-%H%M).jsonl"
{
  echo "{\"machine\":\"$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m)\",\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\",\"rows_per_file\":$rows}"
  "$CARGO_TARGET_DIR/release/rask-bench" taxi --json --data "$data" --rows-per-file "$rows" --workers 2 --repeat 3
  "$venv/bin/python" crates/rask-bench/python/taxi_bench.py --data "$data" --rows-per-file "$rows" --workers 2 --repeat 3
  "$venv/bin/python" crates/rask-bench/python/taxi_peers_bench.py --data "$data" --rows-per-file "$rows" --repeat 3
  "$venv/bin/python" crates/rask-bench/python/taxi_spark_bench.py --data "$data" --rows-per-file "$rows" --repeat 3
} | tee "$out"
echo "wrote $out" >&2
