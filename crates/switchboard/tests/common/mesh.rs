//! Clusters of node processes on the mesh: a node with fast heartbeats, a node's
//! `/v1/cluster` as JSON, and waiting for a condition.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Node, BIN, WAIT};

/// The cluster secret of the test clusters.
pub const SECRET: &str = "cluster-test-secret-0123";

/// How the secret reaches a node.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SecretBy {
    /// `--cluster-secret`.
    Flag,
    /// `SWITCHBOARD_CLUSTER_SECRET` in the environment, no flag.
    Env,
}

/// `switchboard serve` as node `name` on 127.0.0.1:`port` of a test cluster: heartbeats
/// every 100 ms, a peer silent for 800 ms is down, then `extra` flags.
pub fn mesh_node(
    dir: &std::path::Path,
    name: &str,
    port: u16,
    secret: SecretBy,
    extra: &[&str],
) -> Node {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(dir)
    .args(["--node-name", name])
    .args(["--heartbeat-ms", "100", "--peer-timeout-ms", "800"])
    .args(extra);
    match secret {
        SecretBy::Flag => cmd.args(["--cluster-secret", SECRET]),
        SecretBy::Env => cmd.env("SWITCHBOARD_CLUSTER_SECRET", SECRET),
    };
    Node::launch(cmd)
}

/// `GET /v1/cluster` of the node at `addr`, parsed.
pub fn cluster_json(addr: &str) -> serde_json::Value {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET /v1/cluster HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Each peer's link state as the node at `addr` sees it.
pub fn link_states(addr: &str) -> BTreeMap<String, String> {
    cluster_json(addr)["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let field = |k: &str| p[k].as_str().unwrap().to_string();
            (field("node"), field("state"))
        })
        .collect()
}

/// Whether the node at `addr` sees exactly these peers in these states.
pub fn sees(addr: &str, want: &[(&str, &str)]) -> bool {
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    link_states(addr) == want
}

/// Calls `f` every 50 ms until it gives a value; panics after [`WAIT`] naming `what`.
pub fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
