#!/usr/bin/env bash
# rask's test command (what .ci/run runs): formatting, lints, every test, and the examples as
# smoke tests. Needs the Rust toolchain (crates come from crates.io) and, for the dashboard's
# browser test, Debian's Chromium, which it installs when missing, and Python 3 (for the
# S3-compatible test server).
set -euo pipefail
cd "$(dirname "$0")/.."
# Builds are shared between checkouts, sessions and CI on the same machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rask-target}"

# The shared directory keeps every checkout's test binaries and incremental state (each clone's
# path gives its crates new hashes): drop those untouched for six hours, or a few CI runs on
# fresh clones fill the disk (76 GB after two days here). Dependencies' libraries stay.
for dir in "$CARGO_TARGET_DIR"/debug/deps "$CARGO_TARGET_DIR"/debug/examples; do
  if [[ -d "$dir" ]]; then
    find "$dir" -maxdepth 1 -type f -executable -mmin +360 -delete
  fi
done
if [[ -d "$CARGO_TARGET_DIR/debug/incremental" ]]; then
  find "$CARGO_TARGET_DIR/debug/incremental" -mindepth 1 -maxdepth 1 -type d -mmin +360 \
    -exec rm -rf {} +
fi

# The dashboard's browser test drives Debian's Chromium; the object-store tests start an
# S3-compatible server (moto, from PyPI, in its own venv).
bash scripts/install-chromium.sh
RASK_S3_SERVER="$(bash scripts/s3-server.sh | tail -n 1)"
export RASK_S3_SERVER

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
cargo run --locked -p rask --example nyc_taxi -- --rows-per-file 2000 --data "$CARGO_TARGET_DIR/nyc-taxi-smoke"
cargo run --locked -p rask --example custom_etl -- --files 20 --pairs 40 --sleep-ms 1
cargo run --locked -p rask --example async_optimization -- --seconds 1
cargo run --locked -p rask --example image_stack -- --images 24 --size 60 --out "$CARGO_TARGET_DIR/image-stack-smoke"
