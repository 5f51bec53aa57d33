#!/usr/bin/env bash
# Peak memory of a CSV group-by over a dataset larger than the memory allowed: runs
# `rask-bench taxi --memory-probe` inside a cgroup (v1 memory controller) limited to LIMIT_MIB
# (default 300 MiB, page cache included) on the 4.8 M-row taxi CSV (about 585 MiB), with
# several block sizes, then plain Polars under the same limit. Needs root (to make the cgroup).
# Writes docs/results/memory-<date>.jsonl.
#   scripts/bench-memory.sh [LIMIT_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rask-target}"
limit_mib="${1:-300}"
rows=400000
data="${RASK_BENCH_DATA:-$CARGO_TARGET_DIR/nyc-taxi}"
cargo build --release --locked -p rask-bench
bench="$CARGO_TARGET_DIR/release/rask-bench"
# Make the data first, outside the limit.
"$bench" taxi --data "$data" --rows-per-file "$rows" --memory-probe --engines rask --blocksize-mib 64 > /dev/null

cg=/sys/fs/cgroup/memory/rask-bench-memory
mkdir -p "$cg"
trap 'rmdir "$cg" 2>/dev/null || true' EXIT
echo $((limit_mib * 1024 * 1024)) > "$cg/memory.limit_in_bytes"
[ -e "$cg/memory.memsw.limit_in_bytes" ] && echo $((limit_mib * 1024 * 1024)) > "$cg/memory.memsw.limit_in_bytes"

out="docs/results/memory-$(date -u +%Y-%m-%d).jsonl"
mkdir -p docs/results
{
  echo "{\"machine\":\"$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m)\",\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\",\"limit_mib\":$limit_mib}"
  for args in "--engines rask --blocksize-mib 16" "--engines rask --blocksize-mib 64" "--engines polars"; do
    echo 0 > "$cg/memory.max_usage_in_bytes" 2>/dev/null || true
    # The subshell moves itself into the cgroup, then runs the probe there.
    if ! (echo $BASHPID > "$cg/cgroup.procs" && exec "$bench" taxi --data "$data" --rows-per-file "$rows" --memory-probe $args); then
      echo "{\"bench\":\"taxi\",\"scenario\":\"groupby_peak_memory\",\"args\":\"$args\",\"failed\":\"killed or failed under the ${limit_mib} MiB limit\"}"
    fi
    echo "{\"cgroup_max_usage_mib\":$(( $(cat "$cg/memory.max_usage_in_bytes") / 1048576 )),\"args\":\"$args\"}"
  done
} | tee "$out"
echo "wrote $out" >&2
