#!/usr/bin/env python3
"""The benchmark suite: Switchboard side by side with ngircd, InspIRCd and nats-server.

    scripts/bench/compare.sh            (installs the peers, builds, then runs this)
    scripts/bench/compare.py [--quick] [--only switchboard,nats] [--out DIR]

Every run gets a fresh server on a loopback port and a fresh data directory. Each workload
has the same shape for every server (crates/switchboard-bench: fanout, dm, connections);
Switchboard alone also runs durable (acknowledged messages) and a 3-node cluster, once on
the mesh and once on a NATS backplane (one nats-server with JetStream). Results
go to DIR/results.jsonl (one JSON line per run, as the load generator printed it) and
DIR/comparison.md (the tables of docs/benchmarks.md). Must run as root (the peers' start
script needs it).
"""

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SWITCHBOARD = os.path.join(ROOT, "target", "release", "switchboard")
BENCH = os.path.join(ROOT, "target", "release", "switchboard-bench")
PEER = os.path.join(ROOT, "scripts", "bench", "peer.sh")
SECRET = "bench-cluster-secret-0123456789"
NATS_SERVER = os.environ.get("NATS_SERVER", "/usr/sbin/nats-server")

# switchboard-irc: the same node, driven through its IRC face (--irc-listen), so that the IRC
# workloads race ngircd and InspIRCd on exactly the same wire.
TARGETS = ["switchboard", "switchboard-irc", "ngircd", "inspircd", "nats"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Server:
    """One fresh server (or a Switchboard cluster) for one run."""

    def __init__(self, kind, nodes=1, backplane="mesh"):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=f"bench-{kind}-")
        self.procs = []
        self.pids = []
        self.urls = []
        nats_url = None
        if backplane == "nats":
            # One nats-server with JetStream, the backplane of every node (docs/operations.md).
            nats_port = free_port()
            p = subprocess.Popen([NATS_SERVER, "-js", "-sd", os.path.join(self.dir, "js"),
                                  "-a", "127.0.0.1", "-p", str(nats_port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(p)
            self.pids.append(p.pid)
            wait_port(nats_port)
            nats_url = f"nats://127.0.0.1:{nats_port}"
        if kind in ("switchboard", "switchboard-irc"):
            ports = [free_port() for _ in range(nodes)]
            irc_ports = [free_port() for _ in range(nodes)]
            for i, port in enumerate(ports):
                args = [SWITCHBOARD, "serve", "--listen", f"127.0.0.1:{port}",
                        "--data-dir", os.path.join(self.dir, f"n{i}"), "--node-name", f"n{i}",
                        # Flat-out senders are not rate-limited, and members get room to
                        # queue a whole flat-out run (the default 1 MiB outbox closes them as
                        # slow consumers, by design).
                        "--rate", "1000000", "--burst", "1000000",
                        "--outbox-bytes", str(64 << 20)]
                if kind == "switchboard-irc":
                    args += ["--irc-listen", f"127.0.0.1:{irc_ports[i]}"]
                if nats_url:
                    args += ["--backplane", nats_url]
                elif nodes > 1:
                    args += ["--cluster-secret", SECRET]
                    if i > 0:
                        args += ["--peer", f"ws://127.0.0.1:{ports[0]}"]
                p = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, f"n{i}.log"), "w"),
                                     env={**os.environ, "RUST_LOG": "warn"})
                self.procs.append(p)
                self.pids.append(p.pid)
                wait_port(port)
                if kind == "switchboard-irc":
                    wait_port(irc_ports[i])
                    self.urls.append(f"irc://127.0.0.1:{irc_ports[i]}")
                else:
                    self.urls.append(f"ws://127.0.0.1:{port}")
            if nodes > 1:
                self.wait_mesh(ports, nodes)
        else:
            port = free_port()
            out = subprocess.run([PEER, kind, str(port), self.dir], check=True,
                                 capture_output=True, text=True).stdout
            self.pids.append(int(out.strip().splitlines()[-1]))
            scheme = "nats" if kind == "nats" else "irc"
            self.urls.append(f"{scheme}://127.0.0.1:{port}")

    def wait_mesh(self, ports, nodes, timeout=20):
        import urllib.request
        deadline = time.time() + timeout
        while time.time() < deadline:
            ok = 0
            for port in ports:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/cluster", timeout=1) as r:
                        status = json.load(r)
                    if sum(1 for p in status.get("peers", []) if p.get("state") == "up") == nodes - 1:
                        ok += 1
                except OSError:
                    pass
            if ok == nodes:
                return
            time.sleep(0.2)
        raise RuntimeError("the cluster did not link up")

    def stop(self):
        for pid in self.pids:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if not self.procs:
            time.sleep(0.5)
            for pid in self.pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)


def bench(server, workload, args, pid=True, sources=1):
    cmd = [BENCH, "--url", ",".join(server.urls), "--sources", str(sources)]
    if pid and len(server.pids) == 1:
        cmd += ["--server-pid", str(server.pids[0])]
    if server.kind == "ngircd":
        # Operators may set +F (relaxed flood protection); ngircd's listen backlog is 10.
        cmd += ["--irc-oper", "bench:bench", "--connecting", "8"]
    if server.kind == "inspircd":
        # InspIRCd answers a registration on its next one-second tick: open many at once.
        cmd += ["--connecting", "1000"]
    cmd += [workload] + [str(a) for a in args]
    shown = " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd)
    print(f"$ {shown}", flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        print(out.stdout + out.stderr, file=sys.stderr)
        return {"workload": workload, "error": (out.stderr.strip().splitlines() or ["failed"])[-1],
                "command": shown}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["command"] = shown
    print("  " + json.dumps({k: v for k, v in result.items() if k != "command"}), flush=True)
    return result


def run(kind, nodes, workload, args, sources=1, backplane="mesh"):
    server = Server(kind, nodes, backplane)
    try:
        r = bench(server, workload, args, sources=sources)
    finally:
        server.stop()
    r["server"] = kind
    r["nodes"] = nodes
    return r


def suite(targets, quick):
    scale = 0.1 if quick else 1.0
    members = 1000 if not quick else 200
    senders = 10
    messages = int(2000 * scale) or 50
    conns = 18000 if not quick else 2000
    results = []
    for kind in targets:
        fan = run(kind, 1, "fanout", ["--members", members, "--senders", senders,
                                      "--messages", messages, "--size", 100])
        fan["label"] = "fanout-max"
        results.append(fan)
        best = fan.get("deliveries_per_s", 0)
        if best:
            # Half of this server's own best rate, spread over the senders, for ~5 s.
            rate = max(1, int(best / members / senders / 2))
            half = run(kind, 1, "fanout", ["--members", members, "--senders", senders,
                                           "--messages", max(50, rate * 5), "--size", 100,
                                           "--rate", rate])
            half["label"] = "fanout-half"
            results.append(half)
        dm = run(kind, 1, "dm", ["--pairs", 100, "--messages", int(1000 * scale) or 50,
                                 "--size", 100])
        dm["label"] = "dm-max"
        results.append(dm)
        c = run(kind, 1, "connections", ["--count", conns, "--hold", 2], sources=20)
        c["label"] = "connections"
        results.append(c)
    if "switchboard" in targets:
        d = run("switchboard", 1, "durable", ["--senders", 100, "--messages", int(1000 * scale) or 50])
        d["label"] = "durable"
        results.append(d)
        cd = run("switchboard", 3, "dm", ["--pairs", 100, "--messages", int(500 * scale) or 50,
                                          "--rate", 50, "--size", 100])
        cd["label"] = "cluster-dm-10k"
        results.append(cd)
        cf = run("switchboard", 3, "fanout", ["--members", members - members % 3, "--senders", 9,
                                              "--messages", messages, "--size", 100])
        cf["label"] = "cluster-fanout-max"
        results.append(cf)
        # The same two cluster runs with the nodes joined through NATS instead of the mesh.
        nd = run("switchboard", 3, "dm", ["--pairs", 100, "--messages", int(500 * scale) or 50,
                                          "--rate", 50, "--size", 100], backplane="nats")
        nd["label"] = "nats-cluster-dm-10k"
        results.append(nd)
        nf = run("switchboard", 3, "fanout", ["--members", members - members % 3, "--senders", 9,
                                              "--messages", messages, "--size", 100],
                 backplane="nats")
        nf["label"] = "nats-cluster-fanout-max"
        results.append(nf)
        # Rooms local to nodes: three rooms, each with its members and senders on one node.
        # On the mesh every node still stores and processes every room's messages; on NATS
        # each node receives only its own room's (docs/cluster.md, "Rooms and conversations
        # by interest").
        for bp, label in [("mesh", "cluster-fanout-rooms"), ("nats", "nats-cluster-fanout-rooms")]:
            lr = run("switchboard", 3, "fanout", ["--members", members - members % 3, "--senders", 9,
                                                  "--rooms", 3, "--messages", messages, "--size", 100],
                     backplane=bp)
            lr["label"] = label
            results.append(lr)
    return results


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}{unit}"
        return f"{v:.2f}{unit}"
    if isinstance(v, int):
        return f"{v:,}{unit}"
    return str(v)


def table(results, targets):
    by = {(r["server"], r["label"]): r for r in results}
    rows = [
        ("fanout, flat out: deliveries/s", "fanout-max", "deliveries_per_s"),
        ("fanout, flat out: lost", "fanout-max", "lost"),
        ("fanout, flat out: server CPU %", "fanout-max", "server_cpu_pct"),
        ("fanout, flat out: server peak RSS KiB", "fanout-max", "server_peak_rss_kib"),
        ("fanout at half own max: p50 ms", "fanout-half", "p50_ms"),
        ("fanout at half own max: p99 ms", "fanout-half", "p99_ms"),
        ("fanout at half own max: p99.9 ms", "fanout-half", "p999_ms"),
        ("fanout at half own max: lost", "fanout-half", "lost"),
        ("dm, 100 pairs flat out: messages/s", "dm-max", "messages_per_s"),
        ("dm, 100 pairs flat out: p99 ms", "dm-max", "p99_ms"),
        ("dm, 100 pairs flat out: lost", "dm-max", "lost"),
        ("connections: count", "connections", "count"),
        ("connections: connects/s", "connections", "connects_per_s"),
        ("connections: server bytes per connection", "connections", "bytes_per_connection"),
    ]
    lines = ["| workload | " + " | ".join(targets) + " |",
             "|---|" + "---|" * len(targets)]
    for title, label, key in rows:
        cells = []
        for t in targets:
            r = by.get((t, label))
            if r is None:
                cells.append("-")
            elif "error" in r:
                cells.append("failed")
            else:
                cells.append(fmt(r.get(key)))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    extra = []
    for label, keys in [("durable", ["acks_per_s", "p50_ms", "p99_ms", "lost", "refused"]),
                        ("cluster-dm-10k", ["messages_per_s", "p50_ms", "p99_ms", "p999_ms", "lost"]),
                        ("cluster-fanout-max", ["deliveries_per_s", "p50_ms", "p99_ms", "lost"]),
                        ("nats-cluster-dm-10k", ["messages_per_s", "p50_ms", "p99_ms", "p999_ms", "lost"]),
                        ("nats-cluster-fanout-max", ["deliveries_per_s", "p50_ms", "p99_ms", "lost"]),
                        ("cluster-fanout-rooms", ["deliveries_per_s", "p50_ms", "p99_ms", "lost"]),
                        ("nats-cluster-fanout-rooms", ["deliveries_per_s", "p50_ms", "p99_ms", "lost"])]:
        r = by.get(("switchboard", label))
        if r:
            shown = "failed: " + r["error"] if "error" in r else ", ".join(f"{k} {fmt(r.get(k))}" for k in keys)
            extra.append(f"| {label} | {shown} | `{r['command']}` |")
    if extra:
        lines += ["", "| Switchboard only | result | command |", "|---|---|---|"] + extra
    lines += ["", "Commands:", ""]
    for r in results:
        lines.append(f"- {r['server']} {r['label']}: `{r['command']}`")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a tenth of the messages, fewer members")
    ap.add_argument("--only", default=",".join(TARGETS), help="comma-separated servers")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench"))
    a = ap.parse_args()
    targets = [t for t in a.only.split(",") if t]
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    os.makedirs(a.out, exist_ok=True)
    results = suite(targets, a.quick)
    with open(os.path.join(a.out, "results.jsonl"), "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    md = table(results, targets)
    with open(os.path.join(a.out, "comparison.md"), "w") as f:
        f.write(md)
    print()
    print(md)


if __name__ == "__main__":
    main()
