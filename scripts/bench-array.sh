#!/usr/bin/env bash
# Runs the array benchmark of rask (local scheduler and a local cluster of worker processes),
# dask.array (threaded scheduler), dask.distributed (a LocalCluster of as many one-thread
# worker processes as rask's) and NumPy (one thread) side by side in one session, and writes
# the JSON lines to docs/results/array-<date>-<HHMM>.jsonl (and standard output).
#   scripts/bench-array.sh [IMAGES] [SIZE] [REPEAT]   (default 400 1000 3: the issue's sizes)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rask-target}"
images="${1:-400}"
size="${2:-1000}"
repeat="${3:-3}"

venv=$(bash scripts/python-env.sh | tail -n 1)
cargo build --release --locked -p rask-bench
mkdir -p docs/results
out="docs/results/array-$(date -u +%Y-%m-%d-%H%M).jsonl"
{
  echo "{\"machine\":\"$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m)\",\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\",\"images\":$images,\"size\":$size}"
  "$CARGO_TARGET_DIR/release/rask-bench" array --json --images "$images" --size "$size" --workers 2 --repeat "$repeat"
  # The all-to-all rechunk of twice a 2-worker cluster's memory (128 MiB per worker), spilling.
  "$CARGO_TARGET_DIR/release/rask-bench" array --json --spill-limit-mib 128
  "$venv/bin/python" crates/rask-bench/python/array_bench.py --engines dask,dask-distributed --workers 2 --images "$images" --size "$size" --repeat "$repeat"
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    "$venv/bin/python" crates/rask-bench/python/array_bench.py --engines numpy --images "$images" --size "$size" --repeat "$repeat"
} | tee "$out"
echo "wrote $out" >&2
