#!/usr/bin/env bash
# Start a peer chat server for the benchmark on a loopback port.
#
#   scripts/bench/peer.sh ngircd|inspircd|nats PORT DIR
#
# Writes the configuration (from scripts/bench/<server>.conf.in) into DIR,
# starts the server in the background (logs in DIR), waits until
# 127.0.0.1:PORT accepts connections (up to 10 s) and prints the server's PID
# on stdout (one line). Stop it with: kill PID
#
# Files in DIR: <server>.conf, <server>.out (stdout/stderr), <server>.pid,
# plus inspircd.log / nats.log (ngIRCd logs to ngircd.out).
#
# Must run as root. InspIRCd (--runasroot) and nats-server keep running as
# root; ngIRCd refuses to and switches to nobody:nogroup, but writes nothing
# to DIR after that (console log opened here, PID file written here), so DIR
# need not be accessible to nobody. Servers listen on 127.0.0.1 only.
set -euo pipefail

usage() {
	echo "usage: $0 ngircd|inspircd|nats PORT DIR" >&2
	exit 2
}

[ $# -eq 3 ] || usage
server=$1
port=$2
dir=$3

case "$server" in
	ngircd | inspircd | nats) ;;
	*) usage ;;
esac
case "$port" in
	'' | *[!0-9]*) echo "$0: bad port: $port" >&2; exit 2 ;;
esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
	echo "$0: bad port: $port" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "$0: must be run as root" >&2
	exit 1
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Raise the open-files limit for the server (soft up to 20000, or to the
# hard limit if that is lower).
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -H -n)" 2>/dev/null || true

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

if port_open; then
	echo "$0: 127.0.0.1:$port is already in use" >&2
	exit 1
fi

# Substitute placeholders; escape sed replacement metacharacters in DIR.
dir_sed=$(printf '%s' "$dir" | sed -e 's/[\\|&]/\\&/g')
conf="$dir/$server.conf"
sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir_sed|g" \
	"$here/$server.conf.in" >"$conf"

out="$dir/$server.out"
case "$server" in
	ngircd)
		mkdir -p "$dir/ngircd.conf.d"
		# -n: don't fork, log to the console (redirected).
		/usr/sbin/ngircd -n -f "$conf" </dev/null >"$out" 2>&1 &
		# ngIRCd has no PidFile (see ngircd.conf.in); record it here.
		echo "$!" >"$dir/ngircd.pid"
		;;
	inspircd)
		/usr/sbin/inspircd --config "$conf" --nofork --runasroot \
			</dev/null >"$out" 2>&1 &
		;;
	nats)
		/usr/sbin/nats-server -c "$conf" </dev/null >"$out" 2>&1 &
		;;
esac
pid=$!

fail() {
	echo "$0: $server: $1" >&2
	kill "$pid" 2>/dev/null || true
	for f in "$out" "$dir/inspircd.log" "$dir/nats.log"; do
		if [ -s "$f" ]; then
			echo "--- $f (tail) ---" >&2
			tail -n 20 "$f" >&2
		fi
	done
	exit 1
}

# Poll up to 10 s for the listening port.
for _ in $(seq 1 100); do
	kill -0 "$pid" 2>/dev/null || fail "exited during startup"
	if port_open; then
		echo "$pid"
		exit 0
	fi
	sleep 0.1
done
fail "port $port not accepting connections after 10 s"
