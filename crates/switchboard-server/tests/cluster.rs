//! Peer links between real nodes on loopback: the full mesh from one seed each, the
//! cluster secret, heartbeats, and nodes leaving and coming back.

mod common;

use std::time::Duration;

use common::*;

fn url(s: &TestServer) -> String {
    format!("ws://{}", s.addr)
}

fn all_up(
    names: &'static [&'static str],
) -> impl Fn(&std::collections::BTreeMap<String, String>) -> bool {
    move |v| {
        names
            .iter()
            .all(|n| v.get(*n).map(String::as_str) == Some("up"))
            && v.len() == names.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_given_one_peer_each_form_a_full_mesh() {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let b = TestServer::start_with(clustered("b", vec![url(&a)])).await;
    let c = TestServer::start_with(clustered("c", vec![url(&b)])).await;
    // a was given no peer and c only b, yet everyone links to everyone.
    wait_view(&a, "a links to b and c", all_up(&["b", "c"])).await;
    wait_view(&b, "b links to a and c", all_up(&["a", "c"])).await;
    wait_view(&c, "c links to a and b", all_up(&["a", "b"])).await;
    // Heartbeats keep flowing: the links stay up well past the failure timeout.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    wait_view(&c, "links stay up", all_up(&["a", "b"])).await;
    let (_, body) = http_get(c.addr, "/v1/cluster").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["node"], "c");
    for p in v["peers"].as_array().unwrap() {
        assert!(p["heartbeat_age_ms"].as_u64().unwrap() < 600, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_secret_is_never_admitted() {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let intruder = TestServer::start_with(|c| {
        clustered("intruder", vec![url(&a)])(c);
        c.cluster_secret = Some("not-the-right-secret".into());
    })
    .await;
    let b = TestServer::start_with(clustered("b", vec![url(&a)])).await;
    wait_view(&a, "a links to b", all_up(&["b"])).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let view = cluster_view(&a).await;
    assert!(!view.contains_key("intruder"), "{view:?}");
    assert!(cluster_view(&intruder).await.is_empty());
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_goes_away_is_marked_down_and_relinks_when_it_returns() {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    let b = TestServer::start_in(dir.path(), clustered("b", vec![url(&a)])).await;
    let b_addr = b.addr.to_string();
    wait_view(&a, "a links to b", all_up(&["b"])).await;
    b.stop("restart").await;
    wait_view(&a, "b is down", |v| {
        v.get("b").map(String::as_str) == Some("down")
    })
    .await;
    // b comes back on its address without being told about a: a re-dials it.
    let b = TestServer::start_at(&b_addr, dir.path(), clustered("b", vec![])).await;
    wait_view(&a, "b is back", all_up(&["b"])).await;
    wait_view(&b, "b sees a", all_up(&["a"])).await;
}

async fn linked_pair() -> (TestServer, TestServer) {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let b = TestServer::start_with(clustered("b", vec![url(&a)])).await;
    wait_view(&a, "a links to b", all_up(&["b"])).await;
    wait_view(&b, "b links to a", all_up(&["a"])).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_messages_cross_nodes_and_resume_on_the_other_node() {
    let (a, b) = linked_pair().await;
    let mut ann = a.client("ann").await;
    let mut bob = b.client("bob").await;
    ann.join("lobby").await.unwrap();
    bob.join("lobby").await.unwrap();
    let (id, _) = ann
        .say(switchboard_client::Target::Room("lobby"), "hello from a")
        .await
        .unwrap();
    let m = next_message(&mut bob).await;
    assert_eq!(
        (m.id.as_str(), m.from.as_str(), m.origin.as_str()),
        (id.as_str(), "ann", "a")
    );
    bob.say(switchboard_client::Target::Room("lobby"), "hello from b")
        .await
        .unwrap();
    let got = ann
        .wait_for(WAIT, |m| match m {
            switchboard_proto::ServerMsg::Message(m) if m.origin == "b" => Some(m.text.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(got, "hello from b");
    // History is replicated: a client of b resumes on a with b's cursor, and gets exactly what
    // it missed.
    let mut cursor = switchboard_proto::Cursor::new();
    switchboard_proto::cursor::advance(&mut cursor, &m);
    let mut carl = a.client("carl").await;
    for i in 0..5 {
        ann.say(
            switchboard_client::Target::Room("lobby"),
            &format!("more {i}"),
        )
        .await
        .unwrap();
    }
    let (_, missed) = carl.resume_room("lobby", &cursor).await.unwrap();
    // What the join's cursor covered came from history; the rest arrives live.
    let mut texts: Vec<String> = missed.iter().map(|m| m.text.clone()).collect();
    while texts.len() < 6 {
        texts.push(next_message(&mut carl).await.text);
    }
    assert_eq!(
        texts,
        [
            "hello from b",
            "more 0",
            "more 1",
            "more 2",
            "more 3",
            "more 4"
        ]
    );
    let extra = carl.recv_timeout(Duration::from_millis(300)).await;
    let dup = matches!(extra, Ok(Some(switchboard_proto::ServerMsg::Message(_))));
    assert!(!dup, "nothing twice: {extra:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_node_catches_up_and_accounts_work_everywhere() {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    let b = TestServer::start_in(dir.path(), clustered("b", vec![url(&a)])).await;
    let b_addr = b.addr.to_string();
    wait_view(&a, "a links to b", all_up(&["b"])).await;
    b.stop("maintenance").await;
    // While b is away: an account, a room, a topic and messages, all on a.
    let (mut reg, _) = switchboard_client::Client::connect_as(&a.url, "dora", Some("pw"))
        .await
        .unwrap();
    reg.join("news").await.unwrap();
    reg.request(switchboard_proto::ClientMsg::Topic {
        room: "news".into(),
        topic: Some("while b was away".into()),
        reff: None,
    })
    .await
    .unwrap();
    for i in 0..1_200 {
        reg.send(&switchboard_proto::ClientMsg::Send {
            room: Some("news".into()),
            to: None,
            text: format!("n{i}"),
            reff: None,
        })
        .await
        .unwrap();
    }
    while next_message(&mut reg).await.text != "n1199" {}
    // b returns and catches up from a, in several batches.
    let b = TestServer::start_at(&b_addr, dir.path(), clustered("b", vec![])).await;
    wait_view(&a, "b is back", all_up(&["b"])).await;
    let (mut on_b, w) = {
        let mut tries = 0;
        loop {
            match switchboard_client::Client::connect_as(&b.url, "dora", Some("pw")).await {
                Ok(ok) => break ok,
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the account never reached b: {e}"),
            }
        }
    };
    assert!(w.registered);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (page, _) = on_b
            .history(switchboard_client::Target::Room("news"), None, None, 500)
            .await
            .unwrap_or_default();
        if page.last().map(|m| m.text.as_str()) == Some("n1199") && page.len() == 500 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "b did not catch up: {:?}",
            page.last()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match on_b
        .request(switchboard_proto::ClientMsg::Topic {
            room: "news".into(),
            topic: None,
            reff: None,
        })
        .await
        .unwrap()
    {
        switchboard_proto::ServerMsg::Topic { topic, .. } => {
            assert_eq!(topic.as_deref(), Some("while b was away"))
        }
        other => panic!("{other:?}"),
    }
    // The password is the account's everywhere.
    let wrong = switchboard_client::Client::connect_as(&b.url, "dora", Some("nope")).await;
    assert!(wrong.is_err());
}

/// Waits until `pick` accepts a message from the client.
async fn expect<T>(
    c: &mut switchboard_client::Client,
    pick: impl FnMut(&switchboard_proto::ServerMsg) -> Option<T>,
) -> T {
    c.wait_for(WAIT, pick).await.unwrap()
}

/// Asks until the answer satisfies `ok` (the directory spreads asynchronously).
async fn eventually(
    c: &mut switchboard_client::Client,
    msg: switchboard_proto::ClientMsg,
    ok: impl Fn(&switchboard_proto::ServerMsg) -> bool,
) -> switchboard_proto::ServerMsg {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let reply = c.request(msg.clone()).await;
        if let Ok(r) = &reply {
            if ok(r) {
                return r.clone();
            }
        }
        assert!(std::time::Instant::now() < deadline, "never: {reply:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_directory_across_nodes() {
    use switchboard_proto::server::PresenceEvent;
    use switchboard_proto::{ClientMsg, ErrorCode, ServerMsg};
    let (a, b) = linked_pair().await;
    let mut ann = a.client("ann").await;
    ann.join("lobby").await.unwrap();
    let mut ben = b.client("ben").await;
    // who and whois cover the cluster.
    let who = ClientMsg::Who {
        room: None,
        reff: None,
    };
    eventually(
        &mut ann,
        who,
        |m| matches!(m, ServerMsg::Who { users, .. } if users == &["ann", "ben"]),
    )
    .await;
    // A guest name held on one node is taken on every node.
    let err = switchboard_client::Client::connect_as(&a.url, "BEN", None)
        .await
        .map(|_| ());
    assert!(
        matches!(
            err,
            Err(switchboard_client::ClientError::Refused {
                code: ErrorCode::NameInUse,
                ..
            })
        ),
        "{err:?}"
    );
    // ben joins the room on b: ann, on a, sees him arrive, and the member lists agree.
    ben.join("lobby").await.unwrap();
    let arrived = expect(&mut ann, |m| match m {
        ServerMsg::Presence {
            name,
            event: PresenceEvent::Join,
            ..
        } => Some(name.clone()),
        _ => None,
    })
    .await;
    assert_eq!(arrived, "ben");
    let whois = ClientMsg::Whois {
        name: "ben".into(),
        reff: None,
    };
    let reply = eventually(&mut ann, whois, |m| {
        matches!(m, ServerMsg::Whois { online: true, .. })
    })
    .await;
    assert!(matches!(reply, ServerMsg::Whois { rooms, .. } if rooms == ["lobby"]));
    let in_room = ClientMsg::Who {
        room: Some("lobby".into()),
        reff: None,
    };
    eventually(
        &mut ben,
        in_room,
        |m| matches!(m, ServerMsg::Who { users, .. } if users == &["ann", "ben"]),
    )
    .await;
    // A direct message to a guest on the other node crosses over; an unknown name does not.
    ann.say(switchboard_client::Target::User("ben"), "psst, ben")
        .await
        .unwrap();
    let got = next_message(&mut ben).await;
    assert_eq!((got.from.as_str(), got.text.as_str()), ("ann", "psst, ben"));
    let err = ann
        .say(switchboard_client::Target::User("nobody"), "hi")
        .await;
    assert!(matches!(
        err,
        Err(switchboard_client::ClientError::Refused {
            code: ErrorCode::NotFound,
            ..
        })
    ));
    // When b goes away, its users leave with it.
    b.stop("going").await;
    let left = expect(&mut ann, |m| match m {
        ServerMsg::Presence {
            name,
            event: PresenceEvent::Leave,
            ..
        } => Some(name.clone()),
        _ => None,
    })
    .await;
    assert_eq!(left, "ben");
    let who = ClientMsg::Who {
        room: None,
        reff: None,
    };
    eventually(
        &mut ann,
        who,
        |m| matches!(m, ServerMsg::Who { users, .. } if users == &["ann"]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_on_three_nodes_are_seen_in_one_order_everywhere() {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let b = TestServer::start_with(clustered("b", vec![url(&a)])).await;
    let c = TestServer::start_with(clustered("c", vec![url(&a)])).await;
    for s in [&a, &b, &c] {
        wait_view(s, "full mesh", |v| {
            v.len() == 2 && v.values().all(|s| s == "up")
        })
        .await;
    }
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for (i, s) in [&a, &b, &c].into_iter().enumerate() {
        let mut r = s.client(&format!("reader{i}")).await;
        r.join("race").await.unwrap();
        readers.push(r);
        let mut w = s.client(&format!("writer{i}")).await;
        w.join("race").await.unwrap();
        writers.push(w);
    }
    const EACH: usize = 40;
    let mut tasks = Vec::new();
    for (i, mut w) in writers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                let msg = switchboard_proto::ClientMsg::Send {
                    room: Some("race".into()),
                    to: None,
                    text: format!("w{i}-{n}"),
                    reff: None,
                };
                w.send(&msg).await.unwrap();
            }
            w
        }));
    }
    let mut orders = Vec::new();
    for r in &mut readers {
        let mut seen = Vec::new();
        while seen.len() < 3 * EACH {
            let m = next_message(r).await;
            seen.push(format!("{}@{}", m.id, m.lamport));
        }
        orders.push(seen);
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        orders[0], orders[1],
        "node a and node b delivered in different orders"
    );
    assert_eq!(
        orders[0], orders[2],
        "node a and node c delivered in different orders"
    );
    // And that order is the stream's order in history, on every node.
    let (page, _) = readers[2]
        .history(switchboard_client::Target::Room("race"), None, None, 500)
        .await
        .unwrap();
    let history: Vec<String> = page
        .into_iter()
        .map(|m| format!("{}@{}", m.id, m.lamport))
        .collect();
    assert_eq!(orders[0], history);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_heals_into_one_history_and_one_owner_per_name() {
    use switchboard_proto::{ClientMsg, ErrorCode, ServerMsg};
    // Two nodes that reach each other only through fault-injecting proxies.
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    // Reserve addresses: start each node once to learn its port, then put proxies before them.
    let a = TestServer::start_in(dir_a.path(), clustered("a", vec![])).await;
    let a_addr = a.addr;
    a.stop("reconfigure").await;
    let b = TestServer::start_in(dir_b.path(), clustered("b", vec![])).await;
    let b_addr = b.addr;
    b.stop("reconfigure").await;
    let (to_a, to_b) = (Proxy::start(a_addr).await, Proxy::start(b_addr).await);
    let a = TestServer::start_at(&a_addr.to_string(), dir_a.path(), |c| {
        clustered("a", vec![])(c);
        c.advertise = Some(to_a.url());
    })
    .await;
    let b = TestServer::start_at(&b_addr.to_string(), dir_b.path(), |c| {
        clustered("b", vec![to_a.url()])(c);
        c.advertise = Some(to_b.url());
    })
    .await;
    wait_view(&a, "linked", all_up(&["b"])).await;
    let mut ann = a.client("ann").await;
    let mut bob = b.client("bob").await;
    ann.join("talks").await.unwrap();
    bob.join("talks").await.unwrap();
    ann.say(switchboard_client::Target::Room("talks"), "before")
        .await
        .unwrap();
    assert_eq!(next_message(&mut bob).await.text, "before");

    // The partition: both proxies go silent; each side declares the other down.
    to_a.cut();
    to_b.cut();
    wait_view(&a, "a sees b down", |v| {
        v.get("b").map(String::as_str) == Some("down")
    })
    .await;
    wait_view(&b, "b sees a down", |v| {
        v.get("a").map(String::as_str) == Some("down")
    })
    .await;
    // Both sides carry on, and the same guest name is taken on both sides, b's first.
    let (mut zed_b, _) = switchboard_client::Client::connect_as(&b.url, "zed", None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (mut zed_a, _) = switchboard_client::Client::connect_as(&a.url, "zed", None)
        .await
        .unwrap();
    ann.say(switchboard_client::Target::Room("talks"), "from a, cut off")
        .await
        .unwrap();
    bob.say(switchboard_client::Target::Room("talks"), "from b, cut off")
        .await
        .unwrap();

    // Healing: the links come back, each side catches up, one history everywhere.
    to_a.heal();
    to_b.heal();
    wait_view(&a, "relinked", all_up(&["b"])).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (pa, _) = ann
            .history(switchboard_client::Target::Room("talks"), None, None, 50)
            .await
            .unwrap();
        let (pb, _) = bob
            .history(switchboard_client::Target::Room("talks"), None, None, 50)
            .await
            .unwrap();
        let ta: Vec<String> = pa.iter().map(|m| m.text.clone()).collect();
        let tb: Vec<String> = pb.iter().map(|m| m.text.clone()).collect();
        if ta.len() == 3 && ta == tb {
            assert_eq!(ta[0], "before");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "histories never met: {ta:?} / {tb:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The later "zed" (on a) is told and disconnected; b's keeps the name.
    let told = zed_a
        .wait_for(WAIT, |m| match m {
            ServerMsg::Error { code, .. } => Some(*code),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(told, ErrorCode::NameInUse);
    let pong = zed_b.request(ClientMsg::Ping { reff: None }).await;
    assert!(pong.is_ok(), "the first taker keeps the name: {pong:?}");
}
