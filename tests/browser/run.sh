#!/usr/bin/env bash
# The browser tests: Switchboard's web client in headless Chromium, driven by playwright-core.
# Installs what is missing (Debian's chromium, the npm packages), builds the binary, and runs
# every *.test.mjs here with node's test runner, one file at a time. Screenshots go to
# test-artifacts/ at the repository root. Exits non-zero when a test fails.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"

if [ ! -x /usr/bin/chromium ]; then
    echo "browser tests: installing Debian's chromium"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

# irc.test.mjs runs real terminal IRC clients: Debian's ii, irssi under tmux, and WeeChat
# headless (with weechat-plugins for its FIFO, through which the test types).
if ! command -v ii >/dev/null || ! command -v irssi >/dev/null || ! command -v tmux >/dev/null \
    || ! command -v weechat-headless >/dev/null \
    || ! ls /usr/lib/*/weechat/plugins/fifo.so >/dev/null 2>&1; then
    echo "browser tests: installing Debian's ii, irssi, tmux and WeeChat (terminal IRC clients)"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y ii irssi tmux weechat-headless weechat-plugins
fi

npm install --no-audit --no-fund --loglevel=error

(cd "$root" && cargo build -p switchboard)

mkdir -p "$root/test-artifacts"
# One file at a time: each starts its own node(s) and browser, and the machine is small.
exec node --test --test-concurrency=1 --test-timeout=180000 ./*.test.mjs
