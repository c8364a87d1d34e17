//! What an operator sees of a node's work through real sockets: health and metrics, the
//! acknowledgement's place and time, group commits and how passwords are stored.

mod common;

use common::*;
use switchboard_client::{Client, Target};
use switchboard_proto::{ClientMsg, ServerMsg};

#[tokio::test]
async fn health_and_metrics_endpoints() {
    let s = TestServer::start().await;
    let mut a = s.client("m").await;
    a.join("x").await.unwrap();
    a.say(Target::Room("x"), "count me").await.unwrap();
    let (code, body) = http_get(s.addr, "/healthz").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["node"], "t1");
    assert_eq!(v["sessions"], 1);
    let (code, body) = http_get(s.addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(body.contains("switchboard_messages_in_total 1"), "{body}");
    assert!(body.contains("switchboard_connections_open 1"), "{body}");
    assert!(
        body.contains("switchboard_store_write_seconds_count"),
        "{body}"
    );
}

/// Milliseconds since the Unix epoch, by the test's clock.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn the_ack_gives_the_place_and_time_the_members_see() {
    let s = TestServer::start().await;
    let mut a = s.client("acker").await;
    a.join("seq").await.unwrap();
    let mut b = s.client("member").await;
    b.join("seq").await.unwrap();
    let mut last = 0;
    for text in ["one", "two"] {
        let before = now_ms();
        let sent = a.say_acked(Target::Room("seq"), text).await.unwrap();
        let got = next_message(&mut b).await;
        assert_eq!(got.text, text);
        assert_eq!(
            (&sent.id, &sent.stream, sent.lamport, sent.ts),
            (&got.id, &got.stream, got.lamport, got.ts),
            "the ack and the delivered copy disagree"
        );
        assert!(!sent.queued);
        assert!(sent.lamport > last, "sequence numbers rise");
        last = sent.lamport;
        let after = now_ms();
        assert!(
            sent.ts + 1_000 >= before && sent.ts <= after + 1_000,
            "ts {} is not about now ({before}..{after})",
            sent.ts
        );
    }
}

#[tokio::test]
async fn metrics_count_what_users_do() {
    let s = TestServer::start().await;
    let mut members = Vec::new();
    for name in ["m1", "m2", "m3"] {
        let mut c = s.client(name).await;
        c.join("counted").await.unwrap();
        members.push(c);
    }
    let mut outsider = s.client("outsider").await;
    assert_eq!(metric(&s, "switchboard_connections_open").await, 4.0);
    let before = metrics(&s).await;
    let sent = members[0]
        .say_acked(Target::Room("counted"), "count me")
        .await
        .unwrap();
    for c in &mut members[1..] {
        assert_eq!(next_message(c).await.id, sent.id);
    }
    let after = metrics(&s).await;
    let rise = |name: &str| after[name] - before[name];
    // One message in, to three members (the sender among them), one ack.
    assert_eq!(rise("switchboard_messages_in_total"), 1.0);
    assert_eq!(rise("switchboard_deliveries_total"), 3.0);
    assert!(rise("switchboard_frames_out_total") >= 4.0, "{after:?}");
    assert!(rise("switchboard_store_write_seconds_count") >= 1.0);
    // Presence and topics fan out too, but they are not chat messages.
    let deliveries = after["switchboard_deliveries_total"];
    outsider.join("counted").await.unwrap();
    outsider
        .request(ClientMsg::Topic {
            room: "counted".into(),
            topic: Some("counting".into()),
            reff: None,
        })
        .await
        .unwrap();
    for c in &mut members {
        c.wait_for(WAIT, |m| matches!(m, ServerMsg::Topic { .. }).then_some(()))
            .await
            .unwrap();
    }
    assert_eq!(metric(&s, "switchboard_deliveries_total").await, deliveries);
    // A history page and an error are frames out like any other.
    let frames = metric(&s, "switchboard_frames_out_total").await;
    outsider
        .history(Target::Room("counted"), None, None, 10)
        .await
        .unwrap();
    outsider.send_raw("{not json").await.unwrap();
    next_error(&mut outsider).await;
    assert_eq!(
        metric(&s, "switchboard_frames_out_total").await,
        frames + 2.0
    );
    // A connection that ends leaves the gauge.
    members.pop().unwrap().bye().await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while metric(&s, "switchboard_connections_open").await != 3.0 {
        assert!(std::time::Instant::now() < deadline, "the gauge stays at 4");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn concurrent_senders_share_fsyncs() {
    const CLIENTS: usize = 16;
    const EACH: usize = 25;
    let s = TestServer::start().await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let mut c = s.client(&format!("w{i}")).await;
        c.join("busy").await.unwrap();
        clients.push(c);
    }
    let batches = metric(&s, "switchboard_store_batches_total").await;
    let ops = metric(&s, "switchboard_store_ops_total").await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            // Every message goes out before any ack is read: the writer finds many waiting.
            for j in 0..EACH {
                c.send(&ClientMsg::Send {
                    room: Some("busy".into()),
                    to: None,
                    text: format!("w{i} {j}"),
                    reff: Some(format!("{i}-{j}")),
                })
                .await
                .unwrap();
            }
            let mut acked = 0;
            while acked < EACH {
                c.wait_for(WAIT, |m| matches!(m, ServerMsg::Ack { .. }).then_some(()))
                    .await
                    .unwrap();
                acked += 1;
            }
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    let total = CLIENTS * EACH;
    let wrote = metric(&s, "switchboard_store_ops_total").await - ops;
    let fsyncs = metric(&s, "switchboard_store_batches_total").await - batches;
    assert!(
        wrote >= total as f64,
        "{wrote} ops stored for {total} messages"
    );
    assert!(
        fsyncs * 4.0 <= total as f64,
        "{fsyncs} store commits for {total} messages: no group commit"
    );
    let (page, more) = clients[0]
        .history(Target::Room("busy"), None, None, 500)
        .await
        .unwrap();
    assert!(!more);
    let mut texts: Vec<String> = page.into_iter().map(|m| m.text).collect();
    texts.sort();
    let mut want: Vec<String> = (0..CLIENTS)
        .flat_map(|i| (0..EACH).map(move |j| format!("w{i} {j}")))
        .collect();
    want.sort();
    assert_eq!(texts, want, "every acknowledged message is in history");
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_hashes_only() {
    use switchboard_store::Store;
    const PASSWORD: &str = "correct-horse-battery-staple-42";
    let s = TestServer::start().await;
    let (c, w) = Client::connect_as(&s.url, "Hashed", Some(PASSWORD))
        .await
        .unwrap();
    assert!(w.registered);
    c.bye().await.unwrap();
    let dir = s.stop("read the store").await.unwrap();
    // The welcome waited for the registration to be durable: it is in the store.
    let store = switchboard_store::SqliteStore::open(dir.path()).unwrap();
    let restore = store.load("t1").unwrap();
    let (name, hash, _) = restore
        .accounts
        .iter()
        .find(|(name, _, _)| name == "Hashed")
        .expect("the account is stored");
    assert_eq!(name, "Hashed");
    assert!(
        hash.starts_with("$argon2id$"),
        "not a PHC argon2id string: {hash}"
    );
    assert!(!hash.contains(PASSWORD));
    // Nor is the password anywhere else in the data directory.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "the password is stored in the clear"
        );
    }
}

#[tokio::test]
async fn metrics_served_are_the_metrics_documented() {
    let doc = include_str!("../../../docs/operations.md");
    let section = doc
        .split("\n## Metrics\n")
        .nth(1)
        .expect("docs/operations.md has a Metrics section");
    let section = section.split("\n## ").next().unwrap();
    let mut documented = std::collections::BTreeSet::new();
    let mut nats_only = std::collections::BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `switchboard_")) {
        let name = row.split('`').nth(1).unwrap().to_string();
        if row.contains("NATS only") {
            nats_only.insert(name);
        } else {
            documented.insert(name);
        }
    }
    let s = TestServer::start().await;
    let (_, body) = http_get(s.addr, "/metrics").await;
    let served: std::collections::BTreeSet<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(served, documented, "docs/operations.md and /metrics differ");
    // The NATS backplane's metrics are made in one place; each documented name is there.
    let backplane = include_str!("../src/backplane/mod.rs");
    for name in &nats_only {
        let short = name.strip_prefix("switchboard_").unwrap();
        assert!(
            backplane.contains(&format!("\"{short}\"")),
            "{name} is documented but the backplane does not serve it"
        );
    }
    let served_by_backplane = backplane.matches("\"backplane_").count();
    assert_eq!(
        served_by_backplane,
        nats_only.len(),
        "undocumented backplane metrics"
    );
}
