//! Bad input and overload: each gets a clear error code, never harms other clients or the
//! stored data.

mod common;

use std::time::Duration;

use common::*;
use switchboard_client::{Client, Target};
use switchboard_proto::{ClientMsg, ErrorCode, ServerMsg};
use tokio_tungstenite::tungstenite::Message;

/// A bystander in a room, to check that nobody else is affected.
async fn bystander(s: &TestServer) -> Client {
    let mut c = s.client("bystander").await;
    c.join("safe").await.unwrap();
    c
}

async fn still_fine(c: &mut Client) {
    let (id, _) = c.say(Target::Room("safe"), "still here").await.unwrap();
    assert!(id.starts_with("t1-"));
}

#[tokio::test]
async fn malformed_frames_get_clear_errors_and_the_connection_survives() {
    let s = TestServer::start().await;
    let mut by = bystander(&s).await;
    let mut c = s.client("messy").await;
    let cases = [
        ("{not json", ErrorCode::BadJson),
        ("[]", ErrorCode::BadRequest),
        (r#"{"room":"x"}"#, ErrorCode::MissingField),
        (r#"{"type":"teleport"}"#, ErrorCode::UnknownType),
        (
            r#"{"type":"send","text":"no target"}"#,
            ErrorCode::BadRequest,
        ),
        (r#"{"type":"join"}"#, ErrorCode::MissingField),
        (
            r#"{"type":"join","room":"bad room!"}"#,
            ErrorCode::InvalidRoom,
        ),
        (
            r#"{"type":"send","to":"bad name!","text":"x"}"#,
            ErrorCode::InvalidName,
        ),
        (
            r#"{"type":"hello","v":1,"name":"again"}"#,
            ErrorCode::NotReady,
        ),
        (
            r#"{"type":"join","room":"x","extra":1}"#,
            ErrorCode::BadRequest,
        ),
    ];
    for (frame, want) in cases {
        c.send_raw(frame).await.unwrap();
        let (code, message) = next_error(&mut c).await;
        assert_eq!(code, want, "frame {frame}: {message}");
        assert!(!message.is_empty());
    }
    // A binary frame is refused the same way.
    c.send_ws(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(next_error(&mut c).await.0, ErrorCode::BadJson);
    // The connection still works, and so does everyone else's.
    c.join("safe").await.unwrap();
    still_fine(&mut by).await;
}

#[tokio::test]
async fn oversized_texts_are_refused_and_oversized_frames_close_the_connection() {
    let s = TestServer::start().await;
    let mut by = bystander(&s).await;
    let mut c = s.client("big").await;
    c.join("safe").await.unwrap();
    let long = "x".repeat(switchboard_proto::limits::MAX_TEXT_BYTES + 1);
    let err = c.say(Target::Room("safe"), &long).await;
    assert_eq!(refused(&err), ErrorCode::TooLarge, "{err:?}");
    let long_topic = "t".repeat(600);
    let err = c
        .request(ClientMsg::Topic {
            room: "safe".into(),
            topic: Some(long_topic),
            reff: None,
        })
        .await;
    assert!(matches!(
        err,
        Err(switchboard_client::ClientError::Refused {
            code: ErrorCode::TooLarge,
            ..
        })
    ));
    // Over the frame limit: told why, then closed.
    let frame = format!(r#"{{"type":"ping","pad":"{}"}}"#, "p".repeat(70_000));
    let _ = c.send_raw(&frame).await;
    let seen = until_closed(&mut c).await;
    assert!(
        seen.iter().any(|m| matches!(
            m,
            ServerMsg::Error {
                code: ErrorCode::TooLarge,
                ..
            }
        )),
        "{seen:?}"
    );
    still_fine(&mut by).await;
    // Nothing partial was stored: the room holds only the bystander's message.
    let (page, _) = by
        .history(Target::Room("safe"), None, None, 10)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["still here"]
    );
}

#[tokio::test]
async fn invalid_utf8_closes_the_connection_with_a_reason() {
    let s = TestServer::start().await;
    let mut by = bystander(&s).await;
    let mut c = s.client("garbled").await;
    // A text frame whose payload is not UTF-8, sent as raw frame bytes.
    let bad = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        vec![b'{', 0xff, 0xfe, b'}'],
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    let _ = c.send_ws(Message::Frame(bad)).await;
    let seen = until_closed(&mut c).await;
    assert!(
        seen.iter().any(|m| matches!(
            m,
            ServerMsg::Error {
                code: ErrorCode::BadJson,
                ..
            }
        )),
        "{seen:?}"
    );
    still_fine(&mut by).await;
}

#[tokio::test]
async fn the_first_message_must_be_hello_with_a_known_version() {
    let s = TestServer::start().await;
    let mut by = bystander(&s).await;
    let mut c = Client::connect(&s.url).await.unwrap();
    c.send(&ClientMsg::Join {
        room: "x".into(),
        reff: None,
    })
    .await
    .unwrap();
    let seen = until_closed(&mut c).await;
    assert!(seen.iter().any(|m| matches!(
        m,
        ServerMsg::Error {
            code: ErrorCode::NotReady,
            ..
        }
    )));
    let mut c = Client::connect(&s.url).await.unwrap();
    c.send_raw(r#"{"type":"hello","v":99,"name":"future"}"#)
        .await
        .unwrap();
    let seen = until_closed(&mut c).await;
    assert!(seen.iter().any(|m| matches!(
        m,
        ServerMsg::Error {
            code: ErrorCode::UnsupportedVersion,
            ..
        }
    )));
    // The version this node speaks is welcomed, and the welcome names it.
    let mut c = Client::connect(&s.url).await.unwrap();
    c.send_raw(r#"{"type":"hello","v":1,"name":"current"}"#)
        .await
        .unwrap();
    let v = c
        .wait_for(WAIT, |m| match m {
            ServerMsg::Welcome { v, .. } => Some(*v),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(v, switchboard_proto::PROTOCOL_VERSION);
    assert_eq!(v, 1);
    still_fine(&mut by).await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_handshake_timeout() {
    let s = TestServer::start_with(|c| c.handshake_timeout = Duration::from_millis(300)).await;
    let mut c = Client::connect(&s.url).await.unwrap();
    let started = std::time::Instant::now();
    let seen = until_closed(&mut c).await;
    assert!(seen.iter().any(|m| matches!(
        m,
        ServerMsg::Error {
            code: ErrorCode::HandshakeTimeout,
            ..
        }
    )));
    assert!(started.elapsed() < Duration::from_secs(5));
    // The node still serves others.
    let mut ok = s.client("after").await;
    ok.join("x").await.unwrap();
}

#[tokio::test]
async fn a_dead_connection_is_noticed_and_leaves_presence() {
    let s = TestServer::start_with(|c| c.idle_timeout = Duration::from_millis(900)).await;
    let mut watcher = s.client("watcher").await;
    watcher.join("room").await.unwrap();
    // This client never reads again, so it never answers the node's pings.
    let mut zombie = s.client("zombie").await;
    zombie.join("room").await.unwrap();
    let left = watcher
        .wait_for(WAIT, |m| match m {
            ServerMsg::Presence {
                name,
                event: switchboard_proto::server::PresenceEvent::Leave,
                ..
            } => Some(name.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(left, "zombie");
    drop(zombie);
}

#[tokio::test]
async fn floods_are_rate_limited_then_closed() {
    let s = TestServer::start_with(|c| {
        c.rate_per_sec = 5;
        c.burst = 10;
    })
    .await;
    let mut by = s.client("calm").await;
    by.join("safe").await.unwrap();
    let mut f = s.client("flooder").await;
    f.join("safe").await.unwrap();
    for i in 0..60 {
        let msg = ClientMsg::Send {
            room: Some("safe".into()),
            to: None,
            text: format!("spam {i}"),
            reff: None,
        };
        if f.send(&msg).await.is_err() {
            break;
        }
    }
    let seen = until_closed(&mut f).await;
    let limited = seen
        .iter()
        .filter(|m| {
            matches!(
                m,
                ServerMsg::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }
            )
        })
        .count();
    assert!(limited >= 2, "told to slow down, then closed: {seen:?}");
    // The calm client is unaffected (its own bucket is full).
    tokio::time::sleep(Duration::from_millis(300)).await;
    by.say(Target::Room("safe"), "calm").await.unwrap();
    let (page, _) = by
        .history(Target::Room("safe"), None, None, 100)
        .await
        .unwrap();
    let spam = page.iter().filter(|m| m.text.starts_with("spam")).count();
    assert!(
        (1..=15).contains(&spam),
        "only about the burst of spam got through: {spam}"
    );
}

#[tokio::test]
async fn the_connection_cap_refuses_with_a_reason() {
    let s = TestServer::start_with(|c| c.max_connections = 2).await;
    let _a = s.client("a").await;
    let _b = s.client("b").await;
    let mut c = Client::connect(&s.url).await.unwrap();
    let seen = until_closed(&mut c).await;
    assert!(
        seen.iter().any(|m| matches!(
            m,
            ServerMsg::Error {
                code: ErrorCode::TooManyConnections,
                ..
            }
        )),
        "{seen:?}"
    );
    // A slot frees up when someone leaves.
    _a.bye().await.unwrap();
    let mut joined = false;
    for _ in 0..100 {
        if Client::connect_as(&s.url, "c", None).await.is_ok() {
            joined = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(joined);
}

#[tokio::test]
async fn a_slow_consumer_is_told_and_disconnected_without_hurting_others() {
    let s = TestServer::start_with(|c| c.outbox_bytes = 64 * 1024).await;
    let mut fast = s.client("fast").await;
    fast.join("firehose").await.unwrap();
    let mut slow = s.client("slow").await;
    slow.join("firehose").await.unwrap();
    let mut sender = s.client("sender").await;
    sender.join("firehose").await.unwrap();
    let text = "z".repeat(8 * 1024);
    // Far more than the outbox and the socket buffers hold; `slow` never reads meanwhile.
    let mut n = 0;
    for _ in 0..2_000 {
        // `say` reads until its acknowledgement, so the sender (a member too) keeps up.
        sender.say(Target::Room("firehose"), &text).await.unwrap();
        n += 1;
        // Keep the fast reader reading so it stays fast.
        while let Ok(Some(_)) = fast.recv_timeout(Duration::from_millis(0)).await {}
        if n % 50 == 0 {
            let (_, body) = http_get(s.addr, "/metrics").await;
            if !body.contains("switchboard_queue_overflows_total 0") {
                break;
            }
        }
    }
    let seen = until_closed(&mut slow).await;
    assert_eq!(metric(&s, "switchboard_queue_overflows_total").await, 1.0);
    assert!(
        matches!(
            seen.last(),
            Some(ServerMsg::Error {
                code: ErrorCode::SlowConsumer,
                ..
            })
        ),
        "last frame should explain the disconnect: {:?}",
        seen.last()
    );
    // The fast member and the sender carry on.
    let (id, _) = sender.say(Target::Room("firehose"), "done").await.unwrap();
    let got = fast
        .wait_for(WAIT, |m| match m {
            ServerMsg::Message(m) if m.text == "done" => Some(m.id.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(got, id);
}

#[tokio::test]
async fn a_client_that_never_reads_its_history_is_a_counted_slow_consumer() {
    let s = TestServer::start_with(|c| c.outbox_bytes = 64 * 1024).await;
    let mut by = bystander(&s).await;
    let text = "h".repeat(8 * 1024);
    for _ in 0..200 {
        by.say(Target::Room("safe"), &text).await.unwrap();
    }
    let mut slow = s.client("reader").await;
    // Each page is some 1.7 MB; far more than the outbox and the socket buffers hold.
    for _ in 0..40 {
        let page = ClientMsg::History {
            room: Some("safe".into()),
            with: None,
            before: None,
            after: None,
            limit: Some(500),
            reff: None,
        };
        if slow.send(&page).await.is_err() {
            break;
        }
    }
    let deadline = std::time::Instant::now() + WAIT;
    while metric(&s, "switchboard_queue_overflows_total").await < 1.0 {
        assert!(std::time::Instant::now() < deadline, "no overflow counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = until_closed(&mut slow).await;
    assert!(
        matches!(
            seen.last(),
            Some(ServerMsg::Error {
                code: ErrorCode::SlowConsumer,
                ..
            })
        ),
        "{:?}",
        seen.last()
    );
    assert_eq!(metric(&s, "switchboard_queue_overflows_total").await, 1.0);
    still_fine(&mut by).await;
}

#[tokio::test]
async fn twenty_malformed_frames_are_answered_and_the_next_one_closes_the_connection() {
    let s = TestServer::start().await;
    let mut by = bystander(&s).await;
    let mut c = s.client("sloppy").await;
    for _ in 0..20 {
        c.send_raw("{oops").await.unwrap();
        assert_eq!(next_error(&mut c).await.0, ErrorCode::BadJson);
    }
    // Still open after twenty.
    assert!(matches!(
        c.request(ClientMsg::Ping { reff: None }).await.unwrap(),
        ServerMsg::Pong { .. }
    ));
    c.send_raw("{oops").await.unwrap();
    let seen = until_closed(&mut c).await;
    let last = seen.iter().rev().find_map(|m| match m {
        ServerMsg::Error { code, message, .. } => Some((*code, message.clone())),
        _ => None,
    });
    let (code, message) = last.expect("told why");
    assert_eq!(code, ErrorCode::BadJson);
    assert!(message.contains("too many bad frames"), "{message}");
    assert_eq!(metric(&s, "switchboard_protocol_errors_total").await, 21.0);
    still_fine(&mut by).await;
}

#[tokio::test]
async fn passwords_outside_the_length_limit_are_refused() {
    use switchboard_proto::limits::MAX_PASSWORD_BYTES;
    let s = TestServer::start().await;
    let mut by = bystander(&s).await;
    for (name, password) in [
        ("long", "p".repeat(MAX_PASSWORD_BYTES + 1)),
        ("empty", String::new()),
    ] {
        let err = Client::connect_as(&s.url, name, Some(&password))
            .await
            .map(|_| ());
        assert_eq!(refused(&err), ErrorCode::TooLarge, "{name}: {err:?}");
    }
    // Exactly the limit is fine, and registers the name.
    let (_c, w) = Client::connect_as(&s.url, "long", Some(&"p".repeat(MAX_PASSWORD_BYTES)))
        .await
        .unwrap();
    assert!(w.registered);
    still_fine(&mut by).await;
}
