//! End-to-end chat behaviour through real sockets: names and passwords, rooms, direct
//! messages, presence, history and resume.

mod common;

use common::*;
use switchboard_client::{Client, ClientError, Target};
use switchboard_proto::server::PresenceEvent;
use switchboard_proto::{ClientMsg, ErrorCode, ServerMsg};

#[tokio::test]
async fn guest_names_are_unique_regardless_of_case() {
    let s = TestServer::start().await;
    let _alice = s.client("Alice").await;
    let err = Client::connect_as(&s.url, "alice", None).await.map(|_| ());
    assert_eq!(refused(&err), ErrorCode::NameInUse);
    for bad in ["", "has space", "ünï", &"x".repeat(33), "semi;colon"] {
        let err = Client::connect_as(&s.url, bad, None).await.map(|_| ());
        assert_eq!(refused(&err), ErrorCode::InvalidName, "name {bad:?}");
    }
    // Once the holder leaves, the name is free again.
    _alice.bye().await.unwrap();
    let mut again = None;
    for _ in 0..50 {
        if let Ok((c, _)) = Client::connect_as(&s.url, "ALICE", None).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "the name was not released after bye");
}

#[tokio::test]
async fn registered_names_need_their_password_and_share_messages() {
    let s = TestServer::start().await;
    let (mut a1, w) = Client::connect_as(&s.url, "carol", Some("s3cret"))
        .await
        .unwrap();
    assert!(w.registered);
    // No password, or a wrong one: refused.
    assert_eq!(
        refused(&Client::connect_as(&s.url, "Carol", None).await.map(|_| ())),
        ErrorCode::AuthFailed
    );
    assert_eq!(
        refused(
            &Client::connect_as(&s.url, "carol", Some("nope"))
                .await
                .map(|_| ())
        ),
        ErrorCode::AuthFailed
    );
    // The right password opens the name from a second client at once.
    let (mut a2, w2) = Client::connect_as(&s.url, "CAROL", Some("s3cret"))
        .await
        .unwrap();
    assert!(w2.registered);
    assert_eq!(w2.name, "carol");
    // Both of carol's clients receive a direct message to carol.
    let mut dave = s.client("dave").await;
    dave.say(Target::User("carol"), "hi carol").await.unwrap();
    assert_eq!(next_message(&mut a1).await.text, "hi carol");
    assert_eq!(next_message(&mut a2).await.text, "hi carol");
    // A guest cannot take a registered name even while its owner is away.
    a1.bye().await.unwrap();
    a2.bye().await.unwrap();
    assert_eq!(
        refused(&Client::connect_as(&s.url, "carol", None).await.map(|_| ())),
        ErrorCode::AuthFailed
    );
}

#[tokio::test]
async fn room_messages_reach_every_member_with_ids_and_acks() {
    let s = TestServer::start().await;
    let mut a = s.client("a").await;
    let mut b = s.client("b").await;
    let mut c = s.client("c").await;
    let outsider = s.client("d").await;
    match a.join("#Lobby").await.unwrap() {
        ServerMsg::Joined {
            room,
            cursor,
            members,
            ..
        } => {
            assert_eq!(room.as_str(), "Lobby");
            assert!(cursor.is_empty(), "a new room has no messages: {cursor:?}");
            assert_eq!(members, vec!["a"]);
        }
        other => panic!("{other:?}"),
    }
    b.join("lobby").await.unwrap();
    c.join("LOBBY").await.unwrap();
    let (id, queued) = a.say(Target::Room("lobby"), "hello all").await.unwrap();
    assert!(!queued);
    let mut first = None;
    for cl in [&mut a, &mut b, &mut c] {
        let m = next_message(cl).await;
        first = Some(m.position());
        assert_eq!(
            (m.id.as_str(), m.from.as_str(), m.text.as_str()),
            (id.as_str(), "a", "hello all")
        );
        assert_eq!(
            (m.origin.as_str(), format!("t1-{}", m.oseq)),
            ("t1", id.clone())
        );
        assert_eq!(m.room.as_deref(), Some("Lobby"));
        assert_eq!(m.stream, "#lobby");
        assert!(m.id.starts_with("t1-"));
        assert!(m.ts > 1_700_000_000_000);
    }
    let (id2, _) = b.say(Target::Room("lobby"), "second").await.unwrap();
    let second = next_message(&mut c).await;
    assert_eq!(second.id, id2);
    assert!(Some(second.position()) > first, "later messages sort later");
    // Someone who is not a member cannot post.
    let mut outsider = outsider;
    let err = outsider.say(Target::Room("lobby"), "let me in").await;
    assert_eq!(refused(&err), ErrorCode::NotMember);
    // Rooms list with member counts, and topics.
    match outsider
        .request(ClientMsg::Rooms { reff: None })
        .await
        .unwrap()
    {
        ServerMsg::Rooms { rooms, .. } => {
            assert_eq!(rooms.len(), 1);
            assert_eq!((rooms[0].room.as_str(), rooms[0].members), ("Lobby", 3));
        }
        other => panic!("{other:?}"),
    }
    a.send(&ClientMsg::Topic {
        room: "lobby".into(),
        topic: Some("all things".into()),
        reff: None,
    })
    .await
    .unwrap();
    let topic = b
        .wait_for(WAIT, |m| match m {
            ServerMsg::Topic { topic, by, .. } => Some((topic.clone(), by.clone())),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(topic, (Some("all things".into()), Some("a".into())));
    let err = outsider
        .request(ClientMsg::Topic {
            room: "lobby".into(),
            topic: Some("mine".into()),
            reff: None,
        })
        .await;
    assert_eq!(refused(&err), ErrorCode::NotMember);
    // Leaving: no more messages, and leaving twice is an error.
    c.request(ClientMsg::Leave {
        room: "lobby".into(),
        reff: None,
    })
    .await
    .unwrap();
    let err = c
        .request(ClientMsg::Leave {
            room: "lobby".into(),
            reff: None,
        })
        .await;
    assert_eq!(refused(&err), ErrorCode::NotMember);
    a.say(Target::Room("lobby"), "after c left").await.unwrap();
    let got = b
        .wait_for(WAIT, |m| match m {
            ServerMsg::Message(m) if m.text == "after c left" => Some(m.from.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(got, "a");
    let pong = c.request(ClientMsg::Ping { reff: None }).await.unwrap();
    assert!(matches!(pong, ServerMsg::Pong { .. }));
    // c's queue holds nothing from the room after leaving.
    while let Ok(Some(m)) = c.recv_timeout(std::time::Duration::from_millis(100)).await {
        assert!(
            !matches!(m, ServerMsg::Message(ref mm) if mm.text == "after c left"),
            "{m:?}"
        );
    }
}

#[tokio::test]
async fn direct_messages_by_name_and_not_found() {
    let s = TestServer::start().await;
    let mut a = s.client("ann").await;
    let mut b = s.client("ben").await;
    let (_, queued) = a.say(Target::User("BEN"), "psst").await.unwrap();
    assert!(!queued);
    let m = next_message(&mut b).await;
    assert_eq!(
        (m.from.as_str(), m.to.as_deref(), m.text.as_str()),
        ("ann", Some("ben"), "psst")
    );
    assert_eq!(m.stream, "@ann:ben");
    // The sender sees its own message in the conversation too.
    assert_eq!(next_message(&mut a).await.text, "psst");
    b.say(Target::User("ann"), "back").await.unwrap();
    let err = a.say(Target::User("nobody"), "hello?").await;
    assert_eq!(refused(&err), ErrorCode::NotFound);
    let err = a.say(Target::User("bad name"), "hello?").await;
    assert_eq!(refused(&err), ErrorCode::InvalidName);
    // The conversation is a stream with history.
    let (page, more) = a
        .history(Target::User("ben"), None, None, 10)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["psst", "back"]
    );
    assert!(!more);
}

#[tokio::test]
async fn offline_registered_users_get_queued_messages_at_sign_in() {
    let s = TestServer::start().await;
    let (bob, _) = Client::connect_as(&s.url, "bob", Some("pw")).await.unwrap();
    bob.bye().await.unwrap();
    let mut alice = s.client("alice").await;
    // Wait until bob is really gone from the directory.
    for _ in 0..100 {
        if let Ok(ServerMsg::Whois { online: false, .. }) = alice
            .request(ClientMsg::Whois {
                name: "bob".into(),
                reff: None,
            })
            .await
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        alice.say(Target::User("bob"), "one").await.unwrap().1,
        "queued"
    );
    let (two, queued) = alice.say(Target::User("bob"), "two").await.unwrap();
    assert!(queued);
    let (mut bob, w) = Client::connect_as(&s.url, "bob", Some("pw")).await.unwrap();
    assert_eq!(w.dms.len(), 1);
    assert_eq!(w.dms[0].with, "alice");
    let oseq: u64 = two.rsplit('-').next().unwrap().parse().unwrap();
    assert_eq!(w.dms[0].cursor.get("t1"), Some(&oseq));
    assert_eq!(next_message(&mut bob).await.text, "one");
    assert_eq!(next_message(&mut bob).await.text, "two");
    // Delivered once: a second sign-in gets nothing more.
    bob.bye().await.unwrap();
    let (mut bob2, _) = Client::connect_as(&s.url, "bob", Some("pw")).await.unwrap();
    let extra = bob2
        .recv_timeout(std::time::Duration::from_millis(300))
        .await;
    assert!(matches!(extra, Err(ClientError::Timeout)), "{extra:?}");
}

#[tokio::test]
async fn presence_who_and_whois() {
    let s = TestServer::start().await;
    let mut a = s.client("amy").await;
    a.join("room").await.unwrap();
    let mut b = s.client("bill").await;
    b.join("room").await.unwrap();
    let ev = a
        .wait_for(WAIT, |m| match m {
            ServerMsg::Presence { name, event, room } => Some((name.clone(), *event, room.clone())),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(ev, ("bill".into(), PresenceEvent::Join, "room".into()));
    match a
        .request(ClientMsg::Who {
            room: None,
            reff: None,
        })
        .await
        .unwrap()
    {
        ServerMsg::Who { users, .. } => assert_eq!(users, vec!["amy", "bill"]),
        other => panic!("{other:?}"),
    }
    match a
        .request(ClientMsg::Who {
            room: Some("room".into()),
            reff: None,
        })
        .await
        .unwrap()
    {
        ServerMsg::Who { users, room, .. } => {
            assert_eq!(users, vec!["amy", "bill"]);
            assert_eq!(room.as_deref(), Some("room"));
        }
        other => panic!("{other:?}"),
    }
    match a
        .request(ClientMsg::Whois {
            name: "BILL".into(),
            reff: None,
        })
        .await
        .unwrap()
    {
        ServerMsg::Whois {
            name,
            online,
            registered,
            rooms,
            ..
        } => {
            assert_eq!((name.as_str(), online, registered), ("bill", true, false));
            assert_eq!(rooms, vec!["room"]);
        }
        other => panic!("{other:?}"),
    }
    let err = a
        .request(ClientMsg::Whois {
            name: "ghost".into(),
            reff: None,
        })
        .await;
    assert_eq!(refused(&err), ErrorCode::NotFound);
    // bill says goodbye: amy sees him leave at once.
    b.bye().await.unwrap();
    let ev = a
        .wait_for(WAIT, |m| match m {
            ServerMsg::Presence { name, event, .. } => Some((name.clone(), *event)),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(ev, ("bill".into(), PresenceEvent::Leave));
    match a
        .request(ClientMsg::Whois {
            name: "bill".into(),
            reff: None,
        })
        .await
    {
        Err(ClientError::Refused {
            code: ErrorCode::NotFound,
            ..
        }) => {}
        other => panic!("a guest who left is unknown: {other:?}"),
    }
}

/// The number in a text `m<N>`.
fn n(m: &switchboard_proto::ChatMessage) -> u64 {
    m.text[1..].parse().unwrap()
}

#[tokio::test]
async fn history_pages_back_and_forward() {
    let s = TestServer::start().await;
    let mut a = s.client("pager").await;
    a.join("hist").await.unwrap();
    for i in 1..=120 {
        a.send(&ClientMsg::Send {
            room: Some("hist".into()),
            to: None,
            text: format!("m{i}"),
            reff: None,
        })
        .await
        .unwrap();
    }
    // Wait for the last one to be durable.
    while n(&next_message(&mut a).await) < 120 {}
    let mut b = s.client("reader").await;
    let (page, more) = b
        .history(Target::Room("hist"), None, None, 50)
        .await
        .unwrap();
    assert_eq!(n(page.first().unwrap()), 71);
    assert_eq!(n(page.last().unwrap()), 120);
    assert!(more);
    let mut seen: Vec<u64> = page.iter().map(n).collect();
    let mut before = page[0].position();
    loop {
        let (page, more) = b
            .history(Target::Room("hist"), Some(before.clone()), None, 50)
            .await
            .unwrap();
        let mut older: Vec<u64> = page.iter().map(n).collect();
        older.extend(seen);
        seen = older;
        before = page[0].position();
        if !more {
            break;
        }
    }
    assert_eq!(seen, (1..=120).collect::<Vec<_>>());
    // Catching up after a cursor that covers the first 100.
    let (page, _) = b
        .history(Target::Room("hist"), None, None, 500)
        .await
        .unwrap();
    let mut cursor = switchboard_proto::Cursor::new();
    for m in &page[..100] {
        switchboard_proto::cursor::advance(&mut cursor, m);
    }
    let (page, more) = b
        .history(Target::Room("hist"), None, Some(cursor), 10)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(n).collect::<Vec<_>>(),
        (101..=110).collect::<Vec<_>>()
    );
    assert!(more);
    let err = b.history(Target::Room("nowhere"), None, None, 10).await;
    assert_eq!(refused(&err), ErrorCode::NotFound);
}

#[tokio::test]
async fn resume_after_reconnect_has_no_gap_and_no_duplicate() {
    let s = TestServer::start().await;
    let mut writer = s.client("writer").await;
    writer.join("live").await.unwrap();
    let mut reader = s.client("reader").await;
    reader.join("live").await.unwrap();
    for i in 1..=10 {
        writer
            .say(Target::Room("live"), &format!("m{i}"))
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    let mut cursor = switchboard_proto::Cursor::new();
    while got.len() < 10 {
        let m = next_message(&mut reader).await;
        switchboard_proto::cursor::advance(&mut cursor, &m);
        got.push(n(&m));
    }
    drop(reader);
    // Messages while the reader is away, and a sender that keeps going during the resume.
    for i in 11..=25 {
        writer
            .say(Target::Room("live"), &format!("m{i}"))
            .await
            .unwrap();
    }
    let url = s.url.clone();
    let bg = tokio::spawn(async move {
        for i in 26..=60 {
            writer
                .say(Target::Room("live"), &format!("m{i}"))
                .await
                .unwrap();
        }
        writer
    });
    let mut reader = None;
    for _ in 0..100 {
        if let Ok((c, _)) = Client::connect_as(&url, "reader", None).await {
            reader = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut reader = reader.expect("the name comes free once the old connection is gone");
    let (joined, missed) = reader.resume_room("live", &cursor).await.unwrap();
    got.extend(missed.iter().map(n));
    // m11..m25 were acknowledged before the resume began: the join's cursor covers them, so
    // they come from history, first and in order.
    assert_eq!(
        missed.iter().take(15).map(n).collect::<Vec<_>>(),
        (11..=25).collect::<Vec<_>>(),
        "the messages sent while away come from history"
    );
    let _writer = bg.await.unwrap();
    while *got.last().unwrap() < 60 {
        let m = next_message(&mut reader).await;
        // What arrives live is exactly what the join's cursor did not cover.
        assert!(
            !switchboard_proto::cursor::covers(&joined, &m),
            "{} came live although history had it",
            m.text
        );
        got.push(n(&m));
    }
    assert_eq!(
        got,
        (1..=60).collect::<Vec<_>>(),
        "every message exactly once, in order"
    );
}
