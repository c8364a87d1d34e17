//! What only the NATS backplane has: three nodes on one nats-server, what `/healthz`,
//! `/metrics` and `/v1/cluster` say about it, a NATS outage and its recovery, and the
//! settings it refuses. (The scenarios shared with the mesh are in `backplanes.rs`.)

mod common;

use std::time::{Duration, Instant};

use common::nats::NatsServer;
use common::nats_operator::operator_mode;
use common::*;
use switchboard_client::Target;
use switchboard_proto::ServerMsg;

async fn health(s: &TestServer) -> serde_json::Value {
    let (code, body) = http_get(s.addr, "/healthz").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits until the node's `/healthz` says the backplane is `state` ("up" or "down").
async fn wait_backplane(s: &TestServer, state: &str) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let h = health(s).await;
        if h["backplane"]["status"] == state {
            return h;
        }
        assert!(Instant::now() < deadline, "backplane never {state}: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Prometheus sample's value.
async fn metric(s: &TestServer, name: &str) -> u64 {
    let (_, body) = http_get(s.addr, "/metrics").await;
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .unwrap()
}

/// Waits until the node has published at least `published` of its ops to JetStream and
/// received at least `scoped` room or direct messages of other nodes.
async fn went_through_nats(s: &TestServer, published: u64, scoped: u64) {
    let deadline = Instant::now() + WAIT;
    while metric(s, "switchboard_backplane_published_ops").await < published
        || metric(s, "switchboard_backplane_scoped_ops").await < scoped
    {
        assert!(Instant::now() < deadline, "ops never went through NATS");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A room's history as a node has it: the texts in the stream's order (none while the node
/// does not know the room yet).
async fn history(c: &mut switchboard_client::Client, room: &str) -> Vec<String> {
    match c.history(Target::Room(room), None, None, 500).await {
        Ok((page, _)) => page.into_iter().map(|m| m.text).collect(),
        Err(_) => Vec::new(),
    }
}

/// Collects the room messages a client receives until it has `n` (or the deadline passes).
async fn receive(c: &mut switchboard_client::Client, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        got.push(next_message(c).await.text);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_nats_serve_as_one_chat_service() {
    let nats = NatsServer::start().await;
    let a = TestServer::start_with(nats_node("a", nats.url())).await;
    let b = TestServer::start_with(nats_node("b", nats.url())).await;
    let c = TestServer::start_with(nats_node("c", nats.url())).await;
    wait_view(&a, "a sees b and c", all_up(&["b", "c"])).await;
    wait_view(&b, "b sees a and c", all_up(&["a", "c"])).await;
    wait_view(&c, "c sees a and b", all_up(&["a", "b"])).await;
    // /v1/cluster names the backplane and lists the members with the mesh's fields, their
    // client-facing URL included (the browser fails over with it).
    // (A member is up from its first message; its URL comes with its first heartbeat.)
    let deadline = Instant::now() + WAIT;
    let v = loop {
        let (_, body) = http_get(a.addr, "/v1/cluster").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let peers = v["peers"].as_array().unwrap();
        if peers
            .iter()
            .all(|p| p["url"] != "" && !p["lag_ops"].is_null())
        {
            break v;
        }
        assert!(Instant::now() < deadline, "no heartbeat details: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(v["backplane"], "nats");
    for p in v["peers"].as_array().unwrap() {
        let node = p["node"].as_str().unwrap();
        let addr = if node == "b" { b.addr } else { c.addr };
        assert_eq!(p["url"], format!("ws://{addr}"), "{p}");
        assert!(p["heartbeat_age_ms"].as_u64().unwrap() < 600, "{p}");
        assert_eq!(p["lag_ops"], 0, "{p}");
    }
    assert_eq!(wait_backplane(&a, "up").await["backplane"]["kind"], "nats");

    let mut users = Vec::new();
    for (i, s) in [&a, &b, &c].into_iter().enumerate() {
        let mut u = s.client(&format!("user{i}")).await;
        u.join("hall").await.unwrap();
        users.push(u);
    }
    for (i, u) in users.iter_mut().enumerate() {
        u.say(Target::Room("hall"), &format!("hi from {i}"))
            .await
            .unwrap();
    }
    let expected = ["hi from 0", "hi from 1", "hi from 2"];
    for u in users.iter_mut() {
        let mut got = receive(u, 3).await;
        got.sort();
        assert_eq!(got, expected);
    }
    // The messages travelled through NATS: each node published its own and received the
    // others' on the room's subject.
    for s in [&a, &b, &c] {
        went_through_nats(s, 1, 2).await;
        assert_eq!(metric(s, "switchboard_backplane_up").await, 1);
    }
    // A fourth node, new, reads the room from the stream when its user asks for it.
    let d = TestServer::start_with(nats_node("d", nats.url())).await;
    let mut dan = d.client("dan").await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut h = history(&mut dan, "hall").await;
        h.sort();
        if h == expected {
            break;
        }
        assert!(Instant::now() < deadline, "d never caught up: {h:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_leaves_local_chat_working_and_loses_nothing() {
    let mut nats = NatsServer::start().await;
    let a = TestServer::start_with(nats_node("a", nats.url())).await;
    let b = TestServer::start_with(nats_node("b", nats.url())).await;
    wait_view(&a, "a sees b", all_up(&["b"])).await;
    wait_view(&b, "b sees a", all_up(&["a"])).await;
    let mut ann = a.client("ann").await;
    let mut amy = a.client("amy").await;
    let mut bob = b.client("bob").await;
    for u in [&mut ann, &mut amy, &mut bob] {
        u.join("ops").await.unwrap();
    }
    ann.say(Target::Room("ops"), "before").await.unwrap();
    assert_eq!(next_message(&mut bob).await.text, "before");
    assert_eq!(next_message(&mut amy).await.text, "before");
    assert_eq!(next_message(&mut ann).await.text, "before");

    nats.kill();
    let h = wait_backplane(&a, "down").await;
    assert_eq!(h["status"], "ok", "the node still serves its users: {h}");
    wait_view(&a, "a declares b down", |v| {
        v.get("b").map(String::as_str) == Some("down")
    })
    .await;
    assert_eq!(metric(&a, "switchboard_backplane_up").await, 0);
    // Local users still chat, and their messages are acknowledged (on a's disk).
    for i in 0..5 {
        ann.say(Target::Room("ops"), &format!("during {i}"))
            .await
            .unwrap();
    }
    let during: Vec<String> = (0..5).map(|i| format!("during {i}")).collect();
    assert_eq!(receive(&mut amy, 5).await, during);
    bob.say(Target::Room("ops"), "b alone").await.unwrap();
    assert_eq!(next_message(&mut bob).await.text, "b alone");
    assert!(metric(&a, "switchboard_backplane_unpublished_ops").await >= 5);

    // NATS returns on the same port and store: what was said meanwhile crosses over.
    nats.restart().await;
    wait_backplane(&a, "up").await;
    wait_backplane(&b, "up").await;
    wait_view(&a, "a sees b again", all_up(&["b"])).await;
    let mut got = receive(&mut bob, 5).await;
    got.sort();
    assert_eq!(
        got, during,
        "b's user gets what a's users said during the outage"
    );
    assert_eq!(next_message(&mut amy).await.text, "b alone");
    // One history on both nodes: nothing lost, nothing twice.
    let deadline = Instant::now() + WAIT;
    loop {
        let (ha, hb) = (
            history(&mut ann, "ops").await,
            history(&mut bob, "ops").await,
        );
        if ha.len() == 7 && ha == hb {
            let mut sorted = ha.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 7, "no message twice: {ha:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "histories differ: {ha:?} / {hb:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + WAIT;
    while metric(&a, "switchboard_backplane_unpublished_ops").await > 0 {
        assert!(Instant::now() < deadline, "a never published its backlog");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let extra = bob.recv_timeout(Duration::from_millis(300)).await;
    let dup = matches!(extra, Ok(Some(ServerMsg::Message(_))));
    assert!(!dup, "nothing twice: {extra:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_while_nats_is_down_and_joins_when_it_comes_up() {
    let mut nats = NatsServer::start().await;
    let a = TestServer::start_with(nats_node("a", nats.url())).await;
    nats.kill();
    let b = TestServer::start_with(nats_node("b", nats.url())).await;
    // b serves its users alone meanwhile.
    let mut bob = b.client("bob").await;
    bob.join("x").await.unwrap();
    bob.say(Target::Room("x"), "alone").await.unwrap();
    assert_eq!(wait_backplane(&b, "down").await["status"], "ok");
    nats.restart().await;
    wait_view(&a, "a sees b", all_up(&["b"])).await;
    let mut ann = a.client("ann").await;
    let deadline = Instant::now() + WAIT;
    while history(&mut ann, "x").await != ["alone"] {
        assert!(Instant::now() < deadline, "b's message never reached a");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_and_a_backplane_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = switchboard_server::Config::new("a", dir.path());
    c.backplane = Some(switchboard_server::BackplaneConfig::new(vec![
        "nats://127.0.0.1:4222".into(),
    ]));
    c.peers = vec!["ws://127.0.0.1:1".into()];
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("--peer and --backplane"), "{err}");
    c.peers.clear();
    c.node_name = "a.b".into();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("NATS subject token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_authenticate_to_nats_with_a_password_or_a_token_in_the_url() {
    let nats = NatsServer::start_with(&["--user", "chat", "--pass", "s3cret"]).await;
    let with = |cred: &str| format!("nats://{cred}@127.0.0.1:{}", nats.port);
    let a = TestServer::start_with(nats_node("a", with("chat:s3cret"))).await;
    let b = TestServer::start_with(nats_node("b", with("chat:s3cret"))).await;
    let intruder = TestServer::start_with(nats_node("intruder", with("chat:wrong"))).await;
    wait_view(&a, "a sees b", all_up(&["b"])).await;
    wait_backplane(&a, "up").await;
    // The wrong password never gets in: it stays alone, and nobody sees it.
    assert_eq!(health(&intruder).await["backplane"]["status"], "down");
    assert!(cluster_view(&intruder).await.is_empty());
    assert!(!cluster_view(&b).await.contains_key("intruder"));

    let tokened = NatsServer::start_with(&["--auth", "t0ken"]).await;
    let url = format!("nats://t0ken@127.0.0.1:{}", tokened.port);
    let c = TestServer::start_with(nats_node("c", url.clone())).await;
    let d = TestServer::start_with(nats_node("d", url)).await;
    wait_view(&c, "c sees d", all_up(&["d"])).await;
    wait_backplane(&d, "up").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_credentials_file_stops_the_node_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = switchboard_server::Config::new("a", dir.path());
    let mut bp = switchboard_server::BackplaneConfig::new(vec!["nats://127.0.0.1:4222".into()]);
    bp.creds = Some(dir.path().join("missing.creds"));
    c.backplane = Some(bp);
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("credentials file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_authenticate_to_nats_with_a_credentials_file() {
    let dir = tempfile::tempdir().unwrap();
    let (config, creds) = operator_mode(dir.path());
    let nats = NatsServer::start_with(&["-c", config.to_str().unwrap()]).await;
    let with_creds = |name: &'static str| {
        let (url, creds) = (nats.url(), creds.clone());
        move |c: &mut switchboard_server::Config| {
            nats_node(name, url)(c);
            if let Some(bp) = c.backplane.as_mut() {
                bp.creds = Some(creds);
            }
        }
    };
    let a = TestServer::start_with(with_creds("a")).await;
    let b = TestServer::start_with(with_creds("b")).await;
    let stranger = TestServer::start_with(nats_node("stranger", nats.url())).await;
    wait_view(&a, "a sees b", all_up(&["b"])).await;
    wait_view(&b, "b sees a", all_up(&["a"])).await;
    wait_backplane(&a, "up").await;
    wait_backplane(&b, "up").await;

    let mut ann = a.client("ann").await;
    let mut bob = b.client("bob").await;
    ann.join("vault").await.unwrap();
    bob.join("vault").await.unwrap();
    ann.say(Target::Room("vault"), "from a").await.unwrap();
    assert_eq!(receive(&mut bob, 1).await, ["from a"]);
    assert_eq!(receive(&mut ann, 1).await, ["from a"]);
    bob.say(Target::Room("vault"), "from b").await.unwrap();
    assert_eq!(receive(&mut ann, 1).await, ["from b"]);
    assert_eq!(receive(&mut bob, 1).await, ["from b"]);
    // JetStream works for the account: each node's op went into the stream, and each node
    // received the other's.
    for s in [&a, &b] {
        went_through_nats(s, 1, 1).await;
    }
    // Without the credentials the server turns a node away: it stays alone, and nobody sees it.
    assert_eq!(health(&stranger).await["backplane"]["status"], "down");
    assert!(cluster_view(&stranger).await.is_empty());
    assert!(!cluster_view(&a).await.contains_key("stranger"));
    assert!(!cluster_view(&b).await.contains_key("stranger"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_reach_nats_over_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = rcgen::generate_simple_self_signed(names).unwrap();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    let (cs, ks) = (c.to_str().unwrap(), k.to_str().unwrap());
    let nats = NatsServer::start_with(&["--tls", "--tlscert", cs, "--tlskey", ks]).await;
    let url = format!("tls://127.0.0.1:{}", nats.port);
    let tls = |name: &'static str, ca: Option<std::path::PathBuf>| {
        let url = url.clone();
        move |cfg: &mut switchboard_server::Config| {
            nats_node(name, url)(cfg);
            if let Some(bp) = cfg.backplane.as_mut() {
                bp.tls_ca = ca;
            }
        }
    };
    let a = TestServer::start_with(tls("a", Some(c.clone()))).await;
    let b = TestServer::start_with(tls("b", Some(c.clone()))).await;
    // Without the CA the server's certificate is not trusted: that node stays alone.
    let stranger = TestServer::start_with(tls("stranger", None)).await;
    wait_view(&a, "a sees b over TLS", all_up(&["b"])).await;
    let mut ann = a.client("ann").await;
    let mut bob = b.client("bob").await;
    ann.join("sec").await.unwrap();
    bob.join("sec").await.unwrap();
    ann.say(Target::Room("sec"), "over tls").await.unwrap();
    assert_eq!(next_message(&mut bob).await.text, "over tls");
    assert_eq!(health(&stranger).await["backplane"]["status"], "down");
    assert!(!cluster_view(&a).await.contains_key("stranger"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_node_catches_up_from_the_stream_when_the_origin_is_gone() {
    let nats = NatsServer::start().await;
    let a = TestServer::start_with(nats_node("a", nats.url())).await;
    let b = TestServer::start_with(nats_node("b", nats.url())).await;
    let dir = tempfile::tempdir().unwrap();
    let c = TestServer::start_in(dir.path(), nats_node("c", nats.url())).await;
    wait_view(&a, "a sees b and c", all_up(&["b", "c"])).await;
    c.stop("maintenance").await;
    // While c is away, a's user says something; each message is acknowledged once it is in
    // the stream. Then a goes away for good: only the stream (and b) hold a's messages, and b
    // hands out only its own ops.
    let mut ann = a.client("ann").await;
    ann.join("log").await.unwrap();
    for i in 0..3 {
        ann.say(Target::Room("log"), &format!("entry {i}"))
            .await
            .unwrap();
    }
    a.stop("retired").await;
    let c = TestServer::start_in(dir.path(), nats_node("c", nats.url())).await;
    let mut cy = c.client("cy").await;
    let deadline = Instant::now() + WAIT;
    while history(&mut cy, "log").await != ["entry 0", "entry 1", "entry 2"] {
        assert!(
            Instant::now() < deadline,
            "c never read a's messages from the stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metric(&c, "switchboard_backplane_scoped_ops").await >= 3);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chat_services_share_one_nats_without_meeting() {
    let nats = NatsServer::start().await;
    let in_cluster = |name: &'static str, cluster: &'static str| {
        let url = nats.url();
        move |c: &mut switchboard_server::Config| {
            nats_node(name, url)(c);
            if let Some(bp) = c.backplane.as_mut() {
                bp.cluster = cluster.into();
            }
        }
    };
    let a = TestServer::start_with(in_cluster("a", "one")).await;
    let b = TestServer::start_with(in_cluster("b", "one")).await;
    let x = TestServer::start_with(in_cluster("x", "two")).await;
    let y = TestServer::start_with(in_cluster("y", "two")).await;
    wait_view(&a, "a sees only b", all_up(&["b"])).await;
    wait_view(&x, "x sees only y", all_up(&["y"])).await;
    // The same room name in both services: each keeps its own.
    let mut ann = a.client("ann").await;
    let mut xena = x.client("xena").await;
    ann.join("news").await.unwrap();
    xena.join("news").await.unwrap();
    ann.say(Target::Room("news"), "service one").await.unwrap();
    xena.say(Target::Room("news"), "service two").await.unwrap();
    let (mut bo, mut yul) = (b.client("bo").await, y.client("yul").await);
    let deadline = Instant::now() + WAIT;
    loop {
        let (hb, hy) = (
            history(&mut bo, "news").await,
            history(&mut yul, "news").await,
        );
        if hb == ["service one"] && hy == ["service two"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "services mixed or slow: {hb:?} / {hy:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cluster_view(&b).await.len(), 1);
    assert_eq!(cluster_view(&y).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_receives_only_the_rooms_its_users_are_in() {
    let nats = NatsServer::start().await;
    let node = |name| {
        let base = nats_node(name, nats.url());
        move |c: &mut switchboard_server::Config| {
            base(c);
            if let Some(bp) = c.backplane.as_mut() {
                bp.room_idle = Duration::from_millis(300);
            }
        }
    };
    let a = TestServer::start_with(node("a")).await;
    let b = TestServer::start_with(node("b")).await;
    let c = TestServer::start_with(node("c")).await;
    wait_view(&a, "a sees b and c", all_up(&["b", "c"])).await;
    wait_view(&c, "c sees a and b", all_up(&["a", "b"])).await;
    let mut ann = a.client("ann").await;
    let mut bob = b.client("bob").await;
    let mut cy = c.client("cy").await;
    ann.join("busy").await.unwrap();
    bob.join("busy").await.unwrap();
    cy.join("quiet").await.unwrap();
    let said: Vec<String> = (0..20).map(|i| format!("busy {i}")).collect();
    for text in &said {
        ann.say(Target::Room("busy"), text).await.unwrap();
    }
    assert_eq!(receive(&mut bob, 20).await, said);
    cy.say(Target::Room("quiet"), "alone").await.unwrap();
    assert_eq!(receive(&mut cy, 1).await, ["alone"]);
    // b received busy's messages; c, with nobody in busy, received none of them. A heartbeat
    // later (vouches travel behind the messages on the same connection) nothing is in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(metric(&b, "switchboard_backplane_scoped_ops").await, 20);
    assert_eq!(metric(&c, "switchboard_backplane_scoped_ops").await, 0);
    assert_eq!(metric(&c, "switchboard_backplane_rooms").await, 1);
    assert_eq!(metric(&a, "switchboard_backplane_scoped_ops").await, 0);
    // What every node needs still reaches c: the room exists there, with its members.
    let rooms = cy
        .request(switchboard_proto::ClientMsg::Rooms { reff: None })
        .await
        .unwrap();
    assert!(format!("{rooms:?}").contains("busy"), "{rooms:?}");

    // cy joins busy: c reads the room from the stream first, so the history is whole, and
    // the room's messages come live from then on.
    cy.join("busy").await.unwrap();
    assert_eq!(history(&mut cy, "busy").await, said);
    assert_eq!(metric(&c, "switchboard_backplane_scoped_ops").await, 20);
    ann.say(Target::Room("busy"), "now with cy").await.unwrap();
    assert_eq!(receive(&mut cy, 1).await, ["now with cy"]);

    // cy leaves: a moment later c no longer receives busy. What is said meanwhile is read
    // from the stream when cy comes back, and nothing shows twice.
    cy.request(switchboard_proto::ClientMsg::Leave {
        room: "busy".into(),
        reff: None,
    })
    .await
    .unwrap();
    let deadline = Instant::now() + WAIT;
    while metric(&c, "switchboard_backplane_rooms").await != 1 {
        assert!(Instant::now() < deadline, "c kept receiving busy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = metric(&c, "switchboard_backplane_scoped_ops").await;
    ann.say(Target::Room("busy"), "while cy was away")
        .await
        .unwrap();
    assert_eq!(
        receive(&mut bob, 2).await,
        ["now with cy", "while cy was away"]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(metric(&c, "switchboard_backplane_scoped_ops").await, before);
    cy.join("busy").await.unwrap();
    let mut whole = said.clone();
    whole.extend(["now with cy".to_string(), "while cy was away".to_string()]);
    assert_eq!(history(&mut cy, "busy").await, whole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_reaches_only_the_nodes_of_its_two_users() {
    let nats = NatsServer::start().await;
    let a = TestServer::start_with(nats_node("a", nats.url())).await;
    let b = TestServer::start_with(nats_node("b", nats.url())).await;
    let c = TestServer::start_with(nats_node("c", nats.url())).await;
    wait_view(&a, "a sees b and c", all_up(&["b", "c"])).await;
    wait_view(&c, "c sees a and b", all_up(&["a", "b"])).await;
    let mut ann = a.client_pw("ann", "secret-a").await;
    let mut bob = b.client_pw("bob", "secret-b").await;
    let _cy = c.client("cy").await;
    // a hears that bob is online (presence crosses NATS).
    let whois = switchboard_proto::ClientMsg::Whois {
        name: "bob".into(),
        reff: None,
    };
    eventually(&mut ann, whois, |m| {
        matches!(m, ServerMsg::Whois { online: true, .. })
    })
    .await;
    let said: Vec<String> = (0..5).map(|i| format!("psst {i}")).collect();
    for text in &said {
        let (_, queued) = ann.say(Target::User("bob"), text).await.unwrap();
        assert!(!queued, "bob is online");
    }
    assert_eq!(receive(&mut bob, 5).await, said);
    // b, where bob is, received them; c, where neither is, did not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(metric(&b, "switchboard_backplane_scoped_ops").await, 5);
    assert_eq!(metric(&c, "switchboard_backplane_scoped_ops").await, 0);
    assert_eq!(metric(&c, "switchboard_backplane_users").await, 1);

    // bob signs in on c as well: c reads his conversations from the stream before welcoming
    // him, so the welcome lists the one with ann and its history is whole; from then on the
    // conversation reaches both of bob's nodes live.
    let (mut bob_c, welcome) =
        switchboard_client::Client::connect_as(&c.url, "bob", Some("secret-b"))
            .await
            .unwrap();
    assert_eq!(
        welcome
            .dms
            .iter()
            .map(|d| d.with.as_str())
            .collect::<Vec<_>>(),
        ["ann"]
    );
    let history: Vec<String> = bob_c
        .history(Target::User("ann"), None, None, 50)
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(history, said);
    ann.say(Target::User("bob"), "to both").await.unwrap();
    assert_eq!(receive(&mut bob, 1).await, ["to both"]);
    assert_eq!(receive(&mut bob_c, 1).await, ["to both"]);
}
