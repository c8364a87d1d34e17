#!/usr/bin/env bash
# The browser tests: Switchboard's web client in headless Chromium, driven by playwright-core.
# Installs what is missing (Debian's nodejs and npm, chromium, the terminal IRC clients, the npm
# packages), builds the binary, and runs every *.test.mjs here with node's test runner, one file
# at a time. Screenshots go to test-artifacts/ at the repository root. Exits non-zero when a
# test fails.
#
# Node 18 (Debian 12's nodejs, 18.20) and node 20 both run it: package.json pins playwright-core
# 1.61, the last release that supports node 18; the files use nothing newer than node 18 has;
# and what node 18's runner lacks (--test-concurrency, --test-timeout) is done here (a loop, one
# file at a time) and in the files (each test's time limit, lib.mjs TEST_TIMEOUT_MS).
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
apt_install() {
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# Node and npm: a fresh Debian 12 with Rust has neither.
if ! command -v node >/dev/null; then
    echo "browser tests: installing Debian's nodejs and npm"
    apt_install nodejs npm
elif ! command -v npm >/dev/null; then
    echo "browser tests: installing Debian's npm"
    apt_install npm
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
    echo "browser tests: node $(node --version) is too old; 18 or later is needed (playwright-core 1.61)" >&2
    exit 1
fi

if [ ! -x /usr/bin/chromium ]; then
    echo "browser tests: installing Debian's chromium"
    apt_install chromium
fi

# irc.test.mjs runs real terminal IRC clients: Debian's ii, irssi under tmux, and WeeChat
# headless (with weechat-plugins for its FIFO, through which the test types).
if ! command -v ii >/dev/null || ! command -v irssi >/dev/null || ! command -v tmux >/dev/null \
    || ! command -v weechat-headless >/dev/null \
    || ! ls /usr/lib/*/weechat/plugins/fifo.so >/dev/null 2>&1; then
    echo "browser tests: installing Debian's ii, irssi, tmux and WeeChat (terminal IRC clients)"
    apt_install ii irssi tmux weechat-headless weechat-plugins
fi

npm install --no-audit --no-fund --loglevel=error

(cd "$root" && cargo build -p switchboard)

mkdir -p "$root/test-artifacts"
# One file at a time: each starts its own node(s) and browser, and the machine is small. A loop
# rather than `node --test --test-concurrency=1 ./*.test.mjs`, which node 18 does not have.
failed=()
for file in ./*.test.mjs; do
    echo "browser tests: $file (node $(node --version))"
    if ! node --test "$file"; then
        failed+=("$file")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "browser tests: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "browser tests: every file passed"
