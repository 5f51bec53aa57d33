#!/usr/bin/env bash
# rask's test command (what .ci/run runs): formatting, lints, every test, and the examples as
# smoke tests. Needs the Rust toolchain (crates come from crates.io) and, for the dashboard's
# browser test, Debian's Chromium, which it installs when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# Builds are shared between checkouts, sessions and CI on the same machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rask-target}"

# The dashboard's browser test drives Debian's Chromium.
bash scripts/install-chromium.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
cargo run --locked -p rask --example custom_etl -- --files 20 --pairs 40 --sleep-ms 1
cargo run --locked -p rask --example async_optimization -- --seconds 1
