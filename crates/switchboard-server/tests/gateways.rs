//! Gateways for the clients of the seed programs, written here from
//! ../shared/seeds/WIRE-NOTES.md. Seed 001: plain UTF-8 text frames at `/ws`.

mod common;

use common::seeds::*;
use common::*;
use futures_util::SinkExt;
use switchboard_client::Target;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn seed_001_clients_meet_native_users_in_the_lobby() {
    let s = TestServer::start().await;
    let mut text = seed001(s.addr, "tunde").await;
    let mut native = s.client("nia").await;
    native.join("lobby").await.unwrap();
    // A raw text frame is a lobby message; the original client keeps its leading space.
    text.send(Message::text(" hello from seed 001"))
        .await
        .unwrap();
    let m = next_message(&mut native).await;
    assert_eq!(
        (m.from.as_str(), m.text.as_str()),
        ("tunde", " hello from seed 001")
    );
    assert_eq!(
        next_text(&mut text).await,
        "tunde:  hello from seed 001",
        "the sender sees it too"
    );
    native.say(Target::Room("lobby"), "hi tunde").await.unwrap();
    assert_eq!(next_text(&mut text).await, "nia: hi tunde");
    // Without ?name= a guest name is made from the address; a taken name gets a number.
    let url = format!("ws://{}/ws", s.addr);
    let (mut anon, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let mut twin = seed001(s.addr, "tunde").await;
    let from_of = |text: &'static str| {
        move |m: &switchboard_proto::ServerMsg| match m {
            switchboard_proto::ServerMsg::Message(m) if m.text == text => Some(m.from.clone()),
            _ => None,
        }
    };
    anon.send(Message::text("anonymous")).await.unwrap();
    let from = native.wait_for(WAIT, from_of("anonymous")).await.unwrap();
    assert!(from.starts_with("ws-127-0-0-1-"), "{from}");
    twin.send(Message::text("me too")).await.unwrap();
    assert_eq!(
        native.wait_for(WAIT, from_of("me too")).await.unwrap(),
        "tunde-2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_servers_a_and_b_carry_each_others_messages() {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let b = TestServer::start_with(clustered("b", vec![format!("ws://{}", a.addr)])).await;
    wait_view(&a, "linked", |v| {
        v.get("b").map(String::as_str) == Some("up")
    })
    .await;
    let mut on_a = seed001(a.addr, "ann").await;
    let mut on_b = seed001(b.addr, "bob").await;
    // Wait until each lobby sees the other side's member, then talk.
    let mut probe = a.client("probe").await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let who = switchboard_proto::ClientMsg::Who {
            room: Some("lobby".into()),
            reff: None,
        };
        if let Ok(switchboard_proto::ServerMsg::Who { users, .. }) = probe.request(who).await {
            if users.iter().any(|u| u == "bob") {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "b's lobby member never showed on a"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    on_a.send(Message::text("from A")).await.unwrap();
    assert_eq!(next_text(&mut on_b).await, "ann: from A");
    on_b.send(Message::text("from B")).await.unwrap();
    loop {
        let t = next_text(&mut on_a).await;
        if t == "bob: from B" {
            break;
        }
    }
}

#[tokio::test]
async fn seed_003_json_clients_meet_native_users_in_the_lobby() {
    let s = TestServer::start().await;
    // A plain GET of / still serves the browser client.
    let (code, body) = http_get(s.addr, "/").await;
    assert_eq!(code, 200);
    assert!(body.contains("<html"), "{body}");
    let mut native = s.client("nia").await;
    native.join("lobby").await.unwrap();
    let url = format!("ws://{}/?uuid=2f1b6d1e-0000-4000-8000-000000000001", s.addr);
    let (mut neo, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let hello =
        r#"{"uuid":"2f1b6d1e-0000-4000-8000-000000000001","nickname":"neo\n","message":"ping"}"#;
    neo.send(Message::text(hello)).await.unwrap();
    // The announcement comes back to its sender, and the lobby sees neo arrive.
    let echo: serde_json::Value = serde_json::from_str(&next_text(&mut neo).await).unwrap();
    assert_eq!(
        (echo["nickname"].as_str(), echo["message"].as_str()),
        (Some("neo"), Some("ping"))
    );
    let arrived = native
        .wait_for(WAIT, |m| match m {
            switchboard_proto::ServerMsg::Presence { name, .. } => Some(name.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(arrived, "neo");
    // Messages both ways; trailing newlines are trimmed.
    let said =
        r#"{"uuid":"2f1b6d1e-0000-4000-8000-000000000001","nickname":"neo","message":"hello\n"}"#;
    neo.send(Message::text(said)).await.unwrap();
    let m = next_message(&mut native).await;
    assert_eq!((m.from.as_str(), m.text.as_str()), ("neo", "hello"));
    let own: serde_json::Value = serde_json::from_str(&next_text(&mut neo).await).unwrap();
    assert_eq!(own["message"], "hello", "the sender gets its own message");
    native.say(Target::Room("lobby"), "hi neo").await.unwrap();
    let got: serde_json::Value = serde_json::from_str(&next_text(&mut neo).await).unwrap();
    assert_eq!(
        (got["nickname"].as_str(), got["message"].as_str()),
        (Some("nia"), Some("hi neo"))
    );
    // A close frame is not chat text: neo simply leaves.
    neo.close(None).await.unwrap();
    let left = native
        .wait_for(WAIT, |m| match m {
            switchboard_proto::ServerMsg::Presence {
                name,
                event: switchboard_proto::server::PresenceEvent::Leave,
                ..
            } => Some(name.clone()),
            switchboard_proto::ServerMsg::Message(m) if m.from == "neo" => {
                panic!("a close became a message: {m:?}")
            }
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(left, "neo");
}

#[tokio::test]
async fn seed_002_relay_clients_and_native_users_talk_by_name() {
    let s = TestServer::start_with_contacts(|_| {}).await;
    let relay = s.relay_addr.unwrap();
    // The relay client listens on an address of its own and registers it.
    let own = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own_addr = own.local_addr().unwrap();
    assert_eq!(
        relay_send(relay, &format!("{own_addr}$$zoe$$INIT#")).await,
        "SUCCESS\n"
    );
    // A native user writes to zoe by name: the server dials zoe's address.
    let mut nia = s.client("nia").await;
    nia.say(Target::User("zoe"), "hello zoe").await.unwrap();
    assert_eq!(relay_inbox(&own).await, "nia$$zoe$$hello zoe#");
    // zoe writes to nia by name; a text with EXIT or INIT in it is just text.
    assert_eq!(
        relay_send(relay, "zoe$$nia$$EXIT now, INIT later#").await,
        ""
    );
    let from_zoe = nia
        .wait_for(WAIT, |m| match m {
            switchboard_proto::ServerMsg::Message(m) if m.from == "zoe" => Some(m.text.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(from_zoe, "EXIT now, INIT later");
    // An unknown name, and an unregistered sender, get NOT-FOUND.
    assert_eq!(
        relay_send(relay, "zoe$$ghost$$anyone?#").await,
        "ghost$$NOT-FOUND#"
    );
    assert_eq!(
        relay_send(relay, "stranger$$nia$$hi#").await,
        "nia$$NOT-FOUND#"
    );
    // A connection that closes before '#' is dropped harmlessly.
    assert_eq!(relay_send(relay, "zoe$$nia$$no end").await, "");
    assert_eq!(
        relay_send(relay, &format!("{own_addr}$$zed$$INIT#")).await,
        "SUCCESS\n"
    );
    // On shutdown every relay client is told EXIT.
    let stopping = tokio::spawn(s.stop("bye"));
    let exit = relay_inbox(&own).await;
    assert!(exit.ends_with("$$EXIT#"), "{exit}");
    stopping.await.unwrap();
}

/// Reads the next raw JSON object from seed 003's console connection.
async fn next_json(rx: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> serde_json::Value {
    use tokio::io::AsyncReadExt;
    loop {
        let mut objects =
            serde_json::Deserializer::from_slice(buf).into_iter::<serde_json::Value>();
        if let Some(Ok(v)) = objects.next() {
            let used = objects.byte_offset();
            buf.drain(..used);
            return v;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, rx.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn seed_003_console_clients_speak_raw_json_after_their_request() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start().await;
    let mut native = s.client("nia").await;
    native.join("lobby").await.unwrap();
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let request = "GET /?uuid=c0ffee HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nClient-Type: console\r\n\r\n";
    c.write_all(request.as_bytes()).await.unwrap();
    // Raw JSON, no framing; nickname and text end in newlines, as the original's do.
    c.write_all(br#"{"uuid":"c0ffee","nickname":"cli\n","message":"ping\n"}"#)
        .await
        .unwrap();
    let mut buf = Vec::new();
    let echo = next_json(&mut c, &mut buf).await;
    assert_eq!(
        (echo["nickname"].as_str(), echo["message"].as_str()),
        (Some("cli"), Some("ping"))
    );
    // A long text in several pieces, then two objects in one write: read as a stream of objects.
    let long = "x".repeat(3000);
    let obj = format!(r#"{{"uuid":"c0ffee","nickname":"cli","message":"{long}\n"}}"#);
    let (a, b) = obj.as_bytes().split_at(1000);
    c.write_all(a).await.unwrap();
    c.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    c.write_all(b).await.unwrap();
    c.write_all(br#"{"uuid":"c0ffee","nickname":"cli","message":"one"}{"uuid":"c0ffee","nickname":"cli","message":"two"}"#)
        .await
        .unwrap();
    let mut texts = Vec::new();
    while texts.len() < 3 {
        let m = next_message(&mut native).await;
        assert_eq!(m.from, "cli");
        texts.push(m.text);
    }
    assert_eq!(texts, [long.clone(), "one".to_string(), "two".to_string()]);
    native
        .say(Target::Room("lobby"), "hello console")
        .await
        .unwrap();
    loop {
        let v = next_json(&mut c, &mut buf).await;
        if v["nickname"] == "nia" {
            assert_eq!(v["message"], "hello console");
            break;
        }
    }
    // The browser page and WebSocket clients still work on the same port.
    let (code, _) = http_get(s.addr, "/healthz").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn seed_002_relay_dials_back_only_the_registering_host_and_survives_junk() {
    let s = TestServer::start_with_contacts(|_| {}).await;
    let relay = s.relay_addr.unwrap();
    let own = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own_addr = own.local_addr().unwrap();
    // From 127.0.0.2, a registration naming an address on 127.0.0.1 is refused: the relay
    // would otherwise dial whatever host anyone asked it to.
    assert_eq!(
        relay_send_from("127.0.0.2", relay, &format!("{own_addr}$$mallory$$INIT#")).await,
        "mallory$$NOT-FOUND#"
    );
    let mut nia = s.client("nia").await;
    let err = nia.say(Target::User("mallory"), "hi").await;
    assert!(
        matches!(
            err,
            Err(switchboard_client::ClientError::Refused {
                code: switchboard_proto::ErrorCode::NotFound,
                ..
            })
        ),
        "{err:?}"
    );

    // 64 KiB without '#' is dropped without an answer; so is a connection that stops mid-way.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut junk = tokio::net::TcpStream::connect(relay).await.unwrap();
        let _ = junk.write_all(&vec![b'a'; 80 * 1024]).await;
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WAIT, junk.read_to_end(&mut rest)).await;
        assert!(
            read.is_ok(),
            "the relay closes a connection that never ends its message"
        );
        assert!(rest.is_empty());
    }
    // Everyone else is unaffected: a registration from the right host works.
    assert_eq!(
        relay_send_from("127.0.0.1", relay, &format!("{own_addr}$$zoe$$INIT#")).await,
        "SUCCESS\n"
    );
    nia.say(Target::User("zoe"), "still here?").await.unwrap();
    assert_eq!(relay_inbox(&own).await, "nia$$zoe$$still here?#");
}

/// The next `undelivered` notice a client gets.
async fn next_undelivered(c: &mut switchboard_client::Client) -> (String, String) {
    c.wait_for(WAIT, |m| match m {
        switchboard_proto::ServerMsg::Undelivered { to, id, .. } => Some((to.clone(), id.clone())),
        _ => None,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_client_that_stops_answering_goes_offline_and_senders_are_told() {
    // Two linked nodes: the relay client on a, a native sender on b, a relay sender on a.
    let a = TestServer::start_with_contacts(clustered("a", vec![])).await;
    let b = TestServer::start_with(clustered("b", vec![format!("ws://{}", a.addr)])).await;
    wait_view(&a, "b up", |v| v.get("b").map(String::as_str) == Some("up")).await;
    wait_view(&b, "a up", |v| v.get("a").map(String::as_str) == Some("up")).await;
    let relay = a.relay_addr.unwrap();

    let zoe_port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let zoe_addr = zoe_port.local_addr().unwrap();
    let yan_port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let yan_addr = yan_port.local_addr().unwrap();
    assert_eq!(
        relay_send(relay, &format!("{zoe_addr}$$zoe$$INIT#")).await,
        "SUCCESS\n"
    );
    assert_eq!(
        relay_send(relay, &format!("{yan_addr}$$yan$$INIT#")).await,
        "SUCCESS\n"
    );

    // nia, on the other node, reaches zoe while zoe listens...
    let mut nia = b.client("nia").await;
    let (first, _) = nia.say(Target::User("zoe"), "one").await.unwrap();
    assert_eq!(relay_inbox(&zoe_port).await, "nia$$zoe$$one#");
    // ...then zoe's program dies without saying OFFLINE.
    drop(zoe_port);
    let (second, _) = nia.say(Target::User("zoe"), "two").await.unwrap();
    assert_ne!(first, second);
    assert_eq!(
        next_undelivered(&mut nia).await,
        ("zoe".to_string(), second.clone())
    );
    // zoe is offline everywhere, and what was sent stays in the conversation's history.
    let mut gone = false;
    for _ in 0..100 {
        let r = nia
            .request(switchboard_proto::ClientMsg::Whois {
                name: "zoe".into(),
                reff: None,
            })
            .await;
        // A guest name nobody holds any more is no user at all.
        if let Err(switchboard_client::ClientError::Refused {
            code: switchboard_proto::ErrorCode::NotFound,
            ..
        }) = r
        {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gone, "zoe is shown offline");
    let err = nia.say(Target::User("zoe"), "three").await;
    assert!(
        matches!(
            err,
            Err(switchboard_client::ClientError::Refused {
                code: switchboard_proto::ErrorCode::NotFound,
                ..
            })
        ),
        "{err:?}"
    );
    let (history, _) = nia
        .history(Target::User("zoe"), None, None, 10)
        .await
        .unwrap();
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "two"]);

    // A relay sender writing to a relay client that died is dialled NOT-FOUND.
    assert_eq!(
        relay_send(relay, &format!("{zoe_addr}$$zed$$INIT#")).await,
        "SUCCESS\n"
    );
    assert_eq!(relay_send(relay, "yan$$zed$$are you there?#").await, "");
    assert_eq!(relay_inbox(&yan_port).await, "zed$$NOT-FOUND#");
}
