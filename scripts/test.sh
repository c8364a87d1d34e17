#!/usr/bin/env bash
# Runs every test of Switchboard: formatting and lints, the Rust unit, property and end-to-end
# tests (nats-server installed when missing, for the NATS backplane's), then the browser tests
# in headless Chromium (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

# The NATS backplane's tests (crates/switchboard-server/tests/backplanes.rs, nats.rs) start a
# real nats-server with JetStream: Debian's package, installed when missing.
if [ ! -x /usr/sbin/nats-server ] && ! command -v nats-server >/dev/null; then
    echo "tests: installing Debian's nats-server"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
bash tests/browser/run.sh
