#!/usr/bin/env bash
# The benchmark comparison in one command (docs/benchmarks.md): installs ngircd, InspIRCd and
# nats-server from Debian's packages when missing, builds Switchboard and its load generator in
# release mode, and runs scripts/bench/compare.py (arguments are passed on, e.g. --quick).
# Run as root on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
missing=()
[ -x /usr/sbin/ngircd ] || missing+=(ngircd)
[ -x /usr/sbin/inspircd ] || missing+=(inspircd)
[ -x /usr/sbin/nats-server ] || missing+=(nats-server)
if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
cargo build --release --locked -p switchboard -p switchboard-bench
exec python3 scripts/bench/compare.py "$@"
