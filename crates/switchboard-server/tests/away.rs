//! Away as a presence state of the whole service, through real sockets on two linked nodes:
//! native and IRC users on either node see each other go away and come back (`away` events,
//! `whois`, `who`; IRC's away-notify, 301 and WHO's `G`), and the user's last session
//! leaving clears it.

mod common;

use std::time::Duration;

use common::irc::IrcClient;
use common::*;
use switchboard_client::Client;
use switchboard_proto::{ClientMsg, ServerMsg};

async fn linked_pair() -> (TestServer, TestServer) {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let b = TestServer::start_with(clustered("b", vec![format!("ws://{}", a.addr)])).await;
    for (s, peer) in [(&a, "b"), (&b, "a")] {
        wait_view(s, "the nodes link", |v| {
            v.get(peer).map(String::as_str) == Some("up")
        })
        .await;
    }
    (a, b)
}

async fn set_away(c: &mut Client, message: Option<&str>) {
    let reply = c
        .request(ClientMsg::Away {
            message: message.map(str::to_string),
            reff: None,
        })
        .await
        .unwrap();
    assert!(
        matches!(&reply, ServerMsg::Away { message: m, .. } if m.as_deref() == message),
        "{reply:?}"
    );
}

/// Waits for the `away` event about `name` saying `message`.
async fn away_event(c: &mut Client, name: &str, message: Option<&str>) {
    c.wait_for(WAIT, |m| match m {
        ServerMsg::Away {
            name: n,
            message: msg,
            reff: None,
        } if n == name && msg.as_deref() == message => Some(()),
        _ => None,
    })
    .await
    .unwrap_or_else(|e| panic!("no away event for {name} {message:?}: {e}"));
}

async fn whois(c: &mut Client, name: &str) -> ServerMsg {
    c.request(ClientMsg::Whois {
        name: name.into(),
        reff: None,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn away_is_seen_across_nodes_and_protocols_and_ends_with_the_last_session() {
    let (a, b) = linked_pair().await;
    let mut ann = a.client("ann").await;
    ann.join("cafe").await.unwrap();
    let mut bob = b.client("bob").await;
    bob.join("cafe").await.unwrap();
    let mut ivy = IrcClient::connect(b.irc_addr).await;
    for l in [
        "CAP LS 302",
        "CAP REQ :away-notify",
        "NICK ivy",
        "USER ivy 0 * :Ivy",
        "CAP END",
    ] {
        ivy.send(l).await;
    }
    ivy.expect("376").await;
    ivy.send("JOIN #cafe").await;
    let names = ivy.until("366").await;
    assert_eq!(
        names.iter().find(|m| m.command == "353").unwrap().text(),
        "ann bob ivy"
    );
    // ann knows ivy is in the room (node b told node a) before anyone goes away.
    ann.wait_for(WAIT, |m| {
        matches!(m, ServerMsg::Presence { name, .. } if name == "ivy").then_some(())
    })
    .await
    .unwrap();

    // A native user on node a goes away: the native and IRC users on node b see it.
    set_away(&mut ann, Some("out for lunch")).await;
    away_event(&mut bob, "ann", Some("out for lunch")).await;
    match whois(&mut bob, "ann").await {
        ServerMsg::Whois { online, away, .. } => {
            assert!(online);
            assert_eq!(away.as_deref(), Some("out for lunch"));
        }
        other => panic!("{other:?}"),
    }
    let who = bob
        .request(ClientMsg::Who {
            room: Some("cafe".into()),
            reff: None,
        })
        .await
        .unwrap();
    assert!(
        matches!(&who, ServerMsg::Who { away, .. } if away.len() == 1 && away["ann"] == "out for lunch"),
        "{who:?}"
    );
    assert_eq!(
        ivy.expect("AWAY").await.raw,
        ":ann!ann@switchboard AWAY :out for lunch"
    );
    ivy.send("WHOIS ann").await;
    let whois_lines = ivy.until("318").await;
    let rpl_away = whois_lines.iter().find(|m| m.command == "301").unwrap();
    assert_eq!(rpl_away.text(), "out for lunch");
    ivy.send("WHO #cafe").await;
    let who = ivy.until("315").await;
    let flags: Vec<(&str, &str)> = who
        .iter()
        .filter(|m| m.command == "352")
        .map(|m| (m.param(5), m.param(6)))
        .collect();
    assert_eq!(flags, [("ann", "G"), ("bob", "H"), ("ivy", "H")]);
    ivy.send("PRIVMSG ann :are you there?").await;
    assert_eq!(ivy.expect("301").await.text(), "out for lunch");

    // An IRC user on node b goes away: the native user on node a sees it.
    ivy.send("AWAY :brb").await;
    ivy.expect("306").await;
    away_event(&mut ann, "ivy", Some("brb")).await;
    assert!(
        matches!(whois(&mut ann, "ivy").await, ServerMsg::Whois { away: Some(m), .. } if m == "brb")
    );
    ivy.send("AWAY").await;
    ivy.expect("305").await;
    away_event(&mut ann, "ivy", None).await;

    // Back, then away again, then gone: the last session leaving clears it.
    set_away(&mut ann, None).await;
    away_event(&mut bob, "ann", None).await;
    assert_eq!(ivy.expect("AWAY").await.raw, ":ann!ann@switchboard AWAY");
    set_away(&mut ann, Some("gone home")).await;
    away_event(&mut bob, "ann", Some("gone home")).await;
    ann.bye().await.unwrap();
    bob.wait_for(WAIT, |m| {
        matches!(m, ServerMsg::Presence { name, .. } if name == "ann").then_some(())
    })
    .await
    .unwrap();
    let mut ann = a.client("ann").await;
    ann.join("cafe").await.unwrap();
    bob.wait_for(WAIT, |m| {
        matches!(m, ServerMsg::Presence { name, .. } if name == "ann").then_some(())
    })
    .await
    .unwrap();
    assert!(matches!(
        whois(&mut bob, "ann").await,
        ServerMsg::Whois {
            online: true,
            away: None,
            ..
        }
    ));
    ivy.send("WHOIS ann").await;
    let whois_lines = ivy.until("318").await;
    assert!(
        whois_lines.iter().all(|m| m.command != "301"),
        "{whois_lines:?}"
    );
    drop(ann);
}

/// A client that did not ask for `away` events in its hello (every client older than them)
/// never gets one, but still sees away in `whois`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_did_not_ask_get_no_away_events() {
    let s = TestServer::start().await;
    let mut ann = s.client("ann").await;
    ann.join("cafe").await.unwrap();
    let mut old = Client::connect(&format!("ws://{}", s.addr)).await.unwrap();
    old.send_raw(r#"{"type":"hello","v":1,"name":"old"}"#)
        .await
        .unwrap();
    old.send_raw(r#"{"type":"join","room":"cafe","ref":"j"}"#)
        .await
        .unwrap();
    old.wait_for(WAIT, |m| {
        matches!(m, ServerMsg::Joined { .. }).then_some(())
    })
    .await
    .unwrap();
    set_away(&mut ann, Some("lunch")).await;
    old.send_raw(r#"{"type":"whois","name":"ann","ref":"w"}"#)
        .await
        .unwrap();
    loop {
        match old.recv_timeout(Duration::from_secs(5)).await.unwrap() {
            Some(ServerMsg::Whois { away, .. }) => {
                assert_eq!(away.as_deref(), Some("lunch"));
                break;
            }
            Some(ServerMsg::Welcome { .. } | ServerMsg::Presence { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
