//! Peer links between real nodes on loopback: the full mesh from one seed each, the
//! cluster secret, heartbeats, and nodes leaving and coming back.

mod common;

use std::time::Duration;

use common::*;

fn url(s: &TestServer) -> String {
    format!("ws://{}", s.addr)
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

/// A raw peer handshake against `node`'s `/v1/peer`, as a dialler named `me`: reads the
/// challenge, answers with `prove`, returns the challenge and the node's answer.
async fn handshake(
    node: &TestServer,
    me: &str,
    version: u32,
    mac: &str,
) -> (
    switchboard_proto::peer::PeerMsg,
    Option<switchboard_proto::peer::PeerMsg>,
) {
    use futures_util::{SinkExt, StreamExt};
    use switchboard_proto::peer::PeerMsg;
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/v1/peer", url(node)))
        .await
        .unwrap();
    let challenge = match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Text(t))) => serde_json::from_str::<PeerMsg>(&t).unwrap(),
        other => panic!("expected a challenge or a refusal first, got {other:?}"),
    };
    if matches!(challenge, PeerMsg::Refused { .. }) {
        return (challenge, None);
    }
    let prove = PeerMsg::Prove {
        v: version,
        node: me.into(),
        url: "ws://127.0.0.1:1".into(),
        nonce: "00".repeat(32),
        mac: mac.into(),
    };
    ws.send(Message::text(serde_json::to_string(&prove).unwrap()))
        .await
        .unwrap();
    let answer = match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Text(t))) => Some(serde_json::from_str::<PeerMsg>(&t).unwrap()),
        _ => None,
    };
    (challenge, answer)
}

fn refusal(msg: Option<switchboard_proto::peer::PeerMsg>) -> String {
    match msg {
        Some(switchboard_proto::peer::PeerMsg::Refused { reason }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_version_or_without_the_secret_is_refused_with_the_reason() {
    use switchboard_proto::peer::{PeerMsg, PEER_VERSION};
    let a = TestServer::start_with(clustered("a", vec![])).await;
    // Another protocol version: refused before its proof is even looked at.
    let (challenge, answer) = handshake(&a, "future", PEER_VERSION + 1, "").await;
    assert!(
        matches!(&challenge, PeerMsg::Challenge { v, node, .. } if *v == PEER_VERSION && node == "a"),
        "{challenge:?}"
    );
    let reason = refusal(answer);
    assert!(
        reason.contains(&format!("version {}", PEER_VERSION + 1))
            && reason.contains(&PEER_VERSION.to_string()),
        "{reason}"
    );
    // The right version with a proof made without the secret.
    let (_, answer) = handshake(&a, "guesser", PEER_VERSION, &"ab".repeat(32)).await;
    assert_eq!(refusal(answer), "wrong cluster secret");
    // A node with no secret refuses every peer, saying clustering is off.
    let lone = TestServer::start_with(|c| c.node_name = "lone".into()).await;
    let (first, _) = handshake(&lone, "b", PEER_VERSION, "").await;
    let reason = refusal(Some(first));
    assert!(reason.contains("no cluster secret"), "{reason}");
    // None of them became a member.
    assert!(cluster_view(&a).await.is_empty());
    assert!(cluster_view(&lone).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_dialling_a_peer_of_another_version_refuses_it_and_says_why() {
    use futures_util::{SinkExt, StreamExt};
    use switchboard_proto::peer::{PeerMsg, PEER_VERSION};
    use tokio_tungstenite::tungstenite::Message;
    // A fake peer from the future: it challenges with the next version.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = format!("ws://{}", listener.local_addr().unwrap());
    let a = TestServer::start_with(clustered("a", vec![fake])).await;
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let challenge = PeerMsg::Challenge {
        v: PEER_VERSION + 1,
        node: "future".into(),
        nonce: "00".repeat(32),
    };
    ws.send(Message::text(serde_json::to_string(&challenge).unwrap()))
        .await
        .unwrap();
    // The node does not prove itself to it: it answers with the reason and closes.
    let answer = match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Text(t))) => Some(serde_json::from_str::<PeerMsg>(&t).unwrap()),
        _ => None,
    };
    let reason = refusal(answer);
    assert_eq!(
        reason,
        format!(
            "peer protocol version {} is not {PEER_VERSION}",
            PEER_VERSION + 1
        )
    );
    assert!(
        !matches!(
            tokio::time::timeout(WAIT, ws.next()).await.unwrap(),
            Some(Ok(Message::Text(_)))
        ),
        "nothing more after the refusal"
    );
    assert!(!cluster_view(&a).await.contains_key("future"));
}
