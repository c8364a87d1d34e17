#!/usr/bin/env bash
# Runs every test of Switchboard: formatting and lints, the Rust unit, property and end-to-end
# tests, then the browser tests in headless Chromium (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
bash tests/browser/run.sh
