//! `switchboard cluster status` and `GET /v1/cluster` against node processes: a three-node
//! mesh (members, link states, heartbeats, peers' clocks, replication lag while a peer is
//! frozen), and a node serving TLS.

mod common;

use std::process::Command;

use common::mesh::{cluster_json, mesh_node, sees, wait_until, SecretBy};
use common::*;
use switchboard_client::{Client, Target};

/// Runs `switchboard cluster status` with these arguments: (exit code, stdout, stderr).
fn status(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["cluster", "status"])
        .args(args)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

/// The peer named `node` in a `/v1/cluster` answer.
fn peer<'a>(view: &'a serde_json::Value, node: &str) -> &'a serde_json::Value {
    view["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node"] == node)
        .unwrap_or_else(|| panic!("no {node} in {view}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_shows_links_heartbeats_clocks_and_lag_on_a_three_node_mesh() {
    let ports = [free_port(), free_port(), free_port()];
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let seed = format!("ws://127.0.0.1:{}", ports[0]);
    let n1 = mesh_node(dirs[0].path(), "n1", ports[0], SecretBy::Flag, &[]);
    let n2 = mesh_node(
        dirs[1].path(),
        "n2",
        ports[1],
        SecretBy::Flag,
        &["--peer", &seed],
    );
    let n3 = mesh_node(
        dirs[2].path(),
        "n3",
        ports[2],
        SecretBy::Flag,
        &["--peer", &seed],
    );
    let a1 = n1.addr.clone();
    wait_until("n1 links to n2 and n3", || {
        sees(&a1, &[("n2", "up"), ("n3", "up")]).then_some(())
    });
    wait_until("n2 and n3 link to each other", || {
        sees(&n2.addr, &[("n1", "up"), ("n3", "up")]).then_some(())
    });

    // Traffic from n2 raises the clocks; n1 then sees n2's clock move on.
    let (mut ben, _) = Client::connect_as(&n2.url(), "ben", None).await.unwrap();
    ben.join("status").await.unwrap();
    ben.say(Target::Room("status"), "one").await.unwrap();
    let first = wait_until("n1 hears a nonzero clock from n2", || {
        let c = peer(&cluster_json(&a1), "n2")["clock"].as_u64().unwrap();
        (c > 0).then_some(c)
    });
    for k in 0..5 {
        ben.say(Target::Room("status"), &format!("more {k}"))
            .await
            .unwrap();
    }
    wait_until("n2's clock rises in n1's view", || {
        let c = peer(&cluster_json(&a1), "n2")["clock"].as_u64().unwrap();
        (c > first).then_some(())
    });

    // Idle: every peer holds everything n1 holds, and heartbeats are fresh.
    let view = wait_until("no lag when idle", || {
        let v = cluster_json(&a1);
        let lags: Vec<u64> = ["n2", "n3"]
            .iter()
            .map(|n| peer(&v, n)["lag_ops"].as_u64().unwrap())
            .collect();
        (lags == [0, 0]).then_some(v)
    });
    assert_eq!(view["node"], "n1");
    assert_eq!(view["url"], seed);
    assert_eq!(view["backplane"], "mesh");
    assert!(view["clock"].as_u64().unwrap() >= first, "{view}");
    assert_eq!(view["peers"].as_array().unwrap().len(), 2, "{view}");
    for n in ["n2", "n3"] {
        let p = peer(&view, n);
        assert_eq!(p["state"], "up", "{p}");
        assert_eq!(p["attempts"], 0, "{p}");
        assert!(p["heartbeat_age_ms"].as_u64().unwrap() < 500, "{p}");
        assert!(p["last_heartbeat"].as_u64().unwrap() > 0, "{p}");
        assert!(p["clock"].as_u64().unwrap() > 0, "{p}");
        let port = &ports[n[1..].parse::<usize>().unwrap() - 1];
        assert_eq!(p["url"], format!("ws://127.0.0.1:{port}"), "{p}");
    }

    // The command shows the same as a table, and as JSON with --json.
    let (code, table, err) = status(&["--server", &n1.url()]);
    assert_eq!(code, 0, "{err}");
    let mut lines = table.lines();
    let title = lines.next().unwrap();
    assert!(
        title.starts_with("node n1  ") && title.contains("backplane mesh"),
        "{table}"
    );
    assert!(lines.next().unwrap().starts_with("PEER"), "{table}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{table}");
    for (row, n) in rows.iter().zip(["n2", "n3"]) {
        // PEER URL LINK HEARTBEAT("N ms ago") CLOCK LAG DIALS
        assert_eq!(
            (row[0], row[2], row[4..6].join(" ")),
            (n, "up", "ms ago".into()),
            "{table}"
        );
        assert_eq!(row[7], "0", "lag: {table}");
    }
    let (code, json, err) = status(&["--server", &n1.addr, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["node"], "n1");

    // n3 freezes: n1 goes on writing, and what n3 lacks shows as lag; n3 is declared down.
    n3.signal("-STOP");
    let (mut amy, _) = Client::connect_as(&n1.url(), "amy", None).await.unwrap();
    amy.join("status").await.unwrap();
    for k in 0..4 {
        amy.say(Target::Room("status"), &format!("while n3 sleeps {k}"))
            .await
            .unwrap();
    }
    let frozen = wait_until("n3 down with a lag", || {
        let v = cluster_json(&a1);
        let p = peer(&v, "n3");
        let lag = p["lag_ops"].as_u64().unwrap();
        (p["state"] == "down" && lag >= 4).then_some(lag)
    });
    assert_eq!(peer(&cluster_json(&a1), "n2")["lag_ops"], 0);
    let (_, table, _) = status(&["--server", &n1.url()]);
    let n3_row = table.lines().find(|l| l.starts_with("n3 ")).unwrap();
    assert!(
        n3_row.contains(" down ") && n3_row.contains(&format!(" {frozen} ")),
        "{table}"
    );
    // Thawed, it relinks and catches up: the lag is gone.
    n3.signal("-CONT");
    wait_until("n3 caught up", || {
        let v = cluster_json(&a1);
        let p = peer(&v, "n3");
        (p["state"] == "up" && p["lag_ops"] == 0).then_some(())
    });
    drop((n1, n2, n3));
}

/// A self-signed certificate for 127.0.0.1 and localhost, as PEM files.
fn certificate(dir: &std::path::Path) -> (String, String) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = rcgen::generate_simple_self_signed(names).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    let s = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
    (s(c), s(k))
}

#[test]
fn cluster_status_reads_a_tls_node() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tls = ["--tls-cert", &cert, "--tls-key", &key];
    let node = mesh_node(dir.path(), "secure1", port, SecretBy::Flag, &tls);
    let wss = format!("wss://127.0.0.1:{port}");
    let (code, json, err) = status(&["--server", &wss, "--tls-ca", &cert, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (v["node"].as_str(), v["backplane"].as_str()),
        (Some("secure1"), Some("mesh"))
    );
    let (code, table, err) = status(&["--server", &wss, "--tls-ca", &cert]);
    assert_eq!(code, 0, "{err}");
    assert!(table.starts_with("node secure1  "), "{table}");
    // Without the certificate's authority the node is not trusted, and the command says so.
    let (code, out, err) = status(&["--server", &wss]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("TLS with 127.0.0.1:"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // Plain HTTP to the TLS port is not taken for an answer either.
    let (code, _, err) = status(&["--server", &format!("ws://127.0.0.1:{port}")]);
    assert_ne!(code, 0);
    assert!(!err.is_empty());
    drop(node);
}
