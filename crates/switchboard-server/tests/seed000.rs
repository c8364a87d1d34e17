//! Seed 000's binary contacts protocol, driven by a client and a peer written here from
//! ../shared/seeds/WIRE-NOTES.md: NUL-padded fields of 256 (names) and 20 (phone) bytes,
//! big-endian u32s, no length prefixes, no replies to Update and Delete.

mod common;

use std::time::Duration;

#[path = "seed000/kit.rs"]
mod kit;

use common::*;
use kit::*;
use switchboard_client::Client;
use switchboard_proto::{ClientMsg, ServerMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn an_original_client_manages_a_book_byte_for_byte() {
    let s = TestServer::start_with_contacts(|_| {}).await;
    // A silent connection never blocks others.
    let _silent = TcpStream::connect(s.contacts_addr.unwrap()).await.unwrap();
    let mut c = client(&s, "beloin").await;
    // An Update delivered one byte at a time: reads are exact whatever the segments.
    for b in update(b"Juan", "85999999999") {
        c.write_all(&[b]).await.unwrap();
        c.flush().await.unwrap();
    }
    c.write_all(&update(b"Ana", "+55 85 1234")).await.unwrap();
    c.write_all(&update(b"Juan", "85888888888")).await.unwrap();
    assert_eq!(
        list_all(&mut c).await,
        vec![
            (b"Ana".to_vec(), "+55 85 1234".into()),
            (b"Juan".to_vec(), "85888888888".into())
        ]
    );
    // A name that fills its field (no NUL) is taken whole and sent back whole.
    let long = vec![b'x'; 256];
    c.write_all(&update(&long, "1")).await.unwrap();
    // Invalid UTF-8 and an invalid number are refused, nothing stored.
    c.write_all(&update(&[0xff, 0xfe], "1")).await.unwrap();
    c.write_all(&update(b"Bad", "call me")).await.unwrap();
    c.write_all(&delete(b"Ana")).await.unwrap();
    let all = list_all(&mut c).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0], (b"Juan".to_vec(), "85888888888".into()));
    assert_eq!(all[1].0, long);
    // The book is the native user's book too.
    let (mut native, _) = Client::connect_as(&s.url, "beloin", Some("pw"))
        .await
        .unwrap();
    native
        .request(ClientMsg::ContactSet {
            name: "Maria".into(),
            phone: "777".into(),
            reff: None,
        })
        .await
        .unwrap();
    assert!(list_all(&mut c)
        .await
        .iter()
        .any(|(n, p)| n == b"Maria" && p == "777"));
    match native
        .request(ClientMsg::Contacts { reff: None })
        .await
        .unwrap()
    {
        ServerMsg::Contacts { contacts, .. } => assert_eq!(contacts.len(), 3),
        other => panic!("{other:?}"),
    }
    // An unknown command byte closes that connection (the stream cannot be resynchronised);
    // others carry on.
    let mut other = client(&s, "beloin").await;
    other.write_all(&[9]).await.unwrap();
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(WAIT, other.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    assert_eq!(list_all(&mut c).await.len(), 3);
}

#[tokio::test]
async fn an_original_server_links_both_ways() {
    let s = TestServer::start_with_contacts(|_| {}).await;
    let mut c = client(&s, "beloin").await;
    c.write_all(&update(b"Juan", "111")).await.unwrap();
    until_listed(&mut c, "Juan stored", |n| n == ["Juan"]).await;
    // An original server dials us: role 1 and its name; we answer with ours.
    let (mut peer, ours) = Original::dial(&s, "contact-server-9").await;
    assert_eq!(ours, "t1");
    // AskForUpdate: one Update frame per contact, no count, no end marker.
    peer.sock.write_all(&[5]).await.unwrap();
    let (juan, _) = peer.until(|f| about(f, "Juan")).await;
    assert!(
        matches!(&juan, Frame::Update { user, phone, .. } if user == "beloin" && phone == "111"),
        "{juan:?}"
    );
    // Its Update (with a clock) lands in the book; our changes go out to it.
    peer.send(500, b"beloin", "Ana", Some("222")).await;
    until_listed(&mut c, "the peer's Ana", |n| n == ["Ana", "Juan"]).await;
    c.write_all(&update(b"Bea", "333")).await.unwrap();
    match peer.until(|f| about(f, "Bea")).await.0 {
        Frame::Update { clock, .. } => {
            assert!(clock > 500, "our clock is past the peer's: {clock}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_node_dials_an_original_server_and_asks_for_its_book() {
    // A test-kit original server.
    let original = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = original.local_addr().unwrap().to_string();
    let s = TestServer::start_with_contacts(|c| c.contacts_peers = vec![addr]).await;
    let (mut o, theirs) = Original::accept(&original, "contact-server-1").await;
    assert_eq!(theirs, "t1");
    // It pushes its state (empty here), then asks for the original's.
    let (_, before) = o.until(|f| *f == Frame::AskForUpdate).await;
    assert!(
        before.iter().all(|f| matches!(f, Frame::HeartBeat { .. })),
        "{before:?}"
    );
    o.send(7, b"beloin", "Juan", Some("85999999999")).await;
    let mut c = client(&s, "beloin").await;
    until_listed(&mut c, "the original's contact", |n| n == ["Juan"]).await;
}

/// An original's change is not sent back to it, an echo of what the book already holds
/// makes no op, and UpdateClock is never sent, over a window holding a heartbeat.
#[tokio::test]
async fn an_original_never_hears_its_own_changes_back() {
    let s = TestServer::start_with_contacts(|_| {}).await;
    let mut c = client(&s, "beloin").await;
    let (mut o, _) = Original::dial(&s, "contact-server-2").await;
    o.send(10, b"beloin", "Juan", Some("111")).await;
    until_listed(&mut c, "the original's Juan", |n| n == ["Juan"]).await;
    // Longer than the 5 s heartbeat interval: heartbeats only (`next` panics on UpdateClock).
    let frames = o.during(Duration::from_millis(6_500)).await;
    assert!(!frames.iter().any(|f| about(f, "Juan")), "{frames:?}");
    let beats = frames
        .iter()
        .filter(|f| matches!(f, Frame::HeartBeat { .. }))
        .count();
    assert!(
        beats >= 2,
        "the window held a heartbeat after the first: {frames:?}"
    );
    // The original says again what the book holds, with a clock well past ours (so its
    // stamp is newer) and the same number: no op. Ana follows on the same link, so once she
    // is listed the echo was handled.
    let before = ops(&s).await;
    o.send(50, b"beloin", "Juan", Some("111")).await;
    o.send(51, b"beloin", "Ana", Some("222")).await;
    until_listed(&mut c, "the original's Ana", |n| n == ["Ana", "Juan"]).await;
    let deadline = std::time::Instant::now() + WAIT;
    while ops(&s).await < before + 1 {
        assert!(std::time::Instant::now() < deadline, "Ana was never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ops(&s).await, before + 1, "one op: Ana's");
    // Changes from elsewhere still reach it, and its own (Ana) did not come back before.
    c.write_all(&update(b"Bea", "333")).await.unwrap();
    let (_, before) = o.until(|f| about(f, "Bea")).await;
    assert!(
        before.iter().all(|f| matches!(f, Frame::HeartBeat { .. })),
        "{before:?}"
    );
}

/// Two nodes linked only through seed 000's protocol (no cluster secret, no native link):
/// changes cross both ways, a delete too, and nothing bounces: each node stores each
/// change once.
#[tokio::test]
async fn two_nodes_linked_by_the_binary_protocol_converge_without_echo() {
    let a = TestServer::start_with_contacts(|_| {}).await;
    let a_addr = a.contacts_addr.unwrap().to_string();
    let b = TestServer::start_with_contacts(|c| {
        c.node_name = "t2".into();
        c.contacts_peers = vec![a_addr];
    })
    .await;
    let mut on_a = client(&a, "beloin").await;
    let mut on_b = client(&b, "beloin").await;
    on_a.write_all(&update(b"Juan", "111")).await.unwrap();
    until_listed(&mut on_b, "Juan on b", |n| n == ["Juan"]).await;
    on_b.write_all(&update(b"Ana", "222")).await.unwrap();
    until_listed(&mut on_a, "Ana on a", |n| n == ["Ana", "Juan"]).await;
    on_b.write_all(&delete(b"Juan")).await.unwrap();
    until_listed(&mut on_a, "Juan gone from a", |n| n == ["Ana"]).await;
    until_listed(&mut on_b, "Juan gone from b", |n| n == ["Ana"]).await;
    // Three changes, one op each on each node, and it stays so across heartbeats (5 s):
    // an echo would make ops without end.
    for s in [&a, &b] {
        let deadline = std::time::Instant::now() + WAIT;
        while ops(s).await < 3 {
            assert!(std::time::Instant::now() < deadline, "ops never stored");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    assert_eq!(ops(&a).await, 3);
    assert_eq!(ops(&b).await, 3);
    assert_eq!(names(&mut on_a).await, ["Ana"]);
    assert_eq!(names(&mut on_b).await, ["Ana"]);
}

/// A contact deleted while the link to an original is down: on re-dial the node pushes the
/// delete before asking, and the original's stale copy (clocks from before the delete)
/// cannot bring the contact back.
#[tokio::test]
async fn a_delete_made_while_the_link_is_down_reaches_the_original_and_stays() {
    let original = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = original.local_addr().unwrap().to_string();
    let s = TestServer::start_with_contacts(|c| c.contacts_peers = vec![addr]).await;
    let mut c = client(&s, "beloin").await;
    let (mut o, _) = Original::accept(&original, "contact-server-1").await;
    o.until(|f| *f == Frame::AskForUpdate).await;
    o.send(7, b"beloin", "Juan", Some("111")).await;
    until_listed(&mut c, "the original's Juan", |n| n == ["Juan"]).await;
    // The highest clock the original heard: what its copy would carry (it raises its clock
    // to what it hears, and its heartbeats change nothing).
    let heard = match o.until(|f| matches!(f, Frame::HeartBeat { .. })).await.0 {
        Frame::HeartBeat { clock } => clock.max(7),
        _ => unreachable!(),
    };
    drop(o); // the link goes down
    c.write_all(&delete(b"Juan")).await.unwrap();
    c.write_all(&update(b"Bea", "333")).await.unwrap();
    until_listed(&mut c, "Juan deleted", |n| n == ["Bea"]).await;
    let (mut o, _) = Original::accept(&original, "contact-server-1").await;
    let (_, pushed) = o.until(|f| *f == Frame::AskForUpdate).await;
    assert!(
        pushed.iter().any(
            |f| matches!(f, Frame::Delete { user, name, .. } if user == "beloin" && name == "Juan")
        ),
        "the delete is pushed before AskForUpdate: {pushed:?}"
    );
    assert!(
        pushed.iter().any(
            |f| matches!(f, Frame::Update { name, phone, .. } if name == "Bea" && phone == "333")
        ),
        "so is the change: {pushed:?}"
    );
    // An original that ignored the delete answers with its old copy; then a new contact,
    // on the same link, so that once it is listed the copy was handled.
    o.send(heard, b"beloin", "Juan", Some("111")).await;
    o.send(heard + 1, b"beloin", "Zoe", Some("444")).await;
    until_listed(&mut c, "the original's Zoe", |n| {
        n.contains(&"Zoe".to_string())
    })
    .await;
    assert_eq!(names(&mut c).await, ["Bea", "Zoe"], "Juan stays deleted");
}

/// User names keep their case on the wire (an original's Update for "Beloin" goes on to
/// another original as "Beloin"); the book itself is the case-insensitive account's.
#[tokio::test]
async fn user_names_keep_their_case_on_the_wire() {
    let s = TestServer::start_with_contacts(|_| {}).await;
    let (mut o1, _) = Original::dial(&s, "contact-server-1").await;
    let (mut o2, _) = Original::dial(&s, "contact-server-2").await;
    o1.send(9, b"Beloin", "Juan", Some("111")).await;
    let (juan, _) = o2.until(|f| about(f, "Juan")).await;
    assert!(
        matches!(&juan, Frame::Update { user, .. } if user == "Beloin"),
        "{juan:?}"
    );
    let mut c = client(&s, "BeLoin").await;
    c.write_all(&update(b"Ana", "222")).await.unwrap();
    let (ana, _) = o2.until(|f| about(f, "Ana")).await;
    assert!(
        matches!(&ana, Frame::Update { user, .. } if user == "BeLoin"),
        "{ana:?}"
    );
    // One book whatever the case: a native sign-in of "beloin" sees both.
    let mut lower = client(&s, "beloin").await;
    assert_eq!(names(&mut lower).await, ["Ana", "Juan"]);
    // A full copy carries each contact's user name as last written.
    let (mut o3, _) = Original::dial(&s, "contact-server-3").await;
    o3.sock.write_all(&[5]).await.unwrap();
    let (juan, _) = o3.until(|f| about(f, "Juan")).await;
    assert!(
        matches!(&juan, Frame::Update { user, .. } if user == "Beloin"),
        "{juan:?}"
    );
}

/// A client handshake naming no user, or one with control characters, and a peer's frame
/// whose user name is not UTF-8, close that connection and store nothing.
#[tokio::test]
async fn invalid_user_names_close_the_connection_and_store_nothing() {
    let s = TestServer::start_with_contacts(|_| {}).await;
    for bad in [&b""[..], b"   ", b"be\x07loin", &[0xff, 0xfe]] {
        let mut c = TcpStream::connect(s.contacts_addr.unwrap()).await.unwrap();
        let mut hello = vec![2];
        hello.extend(field(bad, 256));
        c.write_all(&hello).await.unwrap();
        // The Update is refused with the connection (if it was not closed first).
        let _ = c.write_all(&update(b"Juan", "111")).await;
        assert!(closed(&mut c).await, "handshake {bad:?} was accepted");
    }
    let (mut o, _) = Original::dial(&s, "contact-server-9").await;
    o.send(5, &[0xff, 0xfe, b'x'], "Ana", Some("222")).await;
    assert!(
        closed(&mut o.sock).await,
        "a non-UTF-8 user name kept the link"
    );
    // Nothing was stored: a fresh peer's full copy is empty.
    let (mut o2, _) = Original::dial(&s, "contact-server-8").await;
    o2.sock.write_all(&[5]).await.unwrap();
    let frames = o2.during(Duration::from_millis(500)).await;
    assert!(
        frames.iter().all(|f| matches!(f, Frame::HeartBeat { .. })),
        "{frames:?}"
    );
    assert_eq!(ops(&s).await, 0);
}

/// A peer that stalls in the middle of a frame is dropped once the silence limit passes,
/// while one that keeps sending whole frames stays linked.
#[tokio::test]
async fn a_peer_that_stalls_mid_frame_is_dropped() {
    let s = TestServer::start_with_contacts(|c| {
        c.contacts_peer_silence = Duration::from_millis(1_500);
    })
    .await;
    let (mut alive, _) = Original::dial(&s, "contact-server-1").await;
    let (mut stalled, _) = Original::dial(&s, "contact-server-2").await;
    // An Update's command byte, its clock and part of its user name, then nothing.
    let mut part = vec![1];
    part.extend_from_slice(&3u32.to_be_bytes());
    part.extend_from_slice(b"beloin");
    stalled.sock.write_all(&part).await.unwrap();
    let started = std::time::Instant::now();
    // The live peer heartbeats every 300 ms meanwhile.
    let beating = tokio::spawn(async move {
        for _ in 0..15 {
            alive.heartbeat(1).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        alive
    });
    assert!(closed(&mut stalled.sock).await, "the stalled peer was kept");
    assert!(
        started.elapsed() >= Duration::from_millis(1_000),
        "dropped before the limit: {:?}",
        started.elapsed()
    );
    let mut alive = beating.await.unwrap();
    // 4.5 s of heartbeats later, the live link still carries our changes.
    let mut c = client(&s, "beloin").await;
    c.write_all(&update(b"Juan", "111")).await.unwrap();
    alive.until(|f| about(f, "Juan")).await;
}

/// A connection that sends half a handshake is closed once the handshake timeout (2 s in
/// tests) passes, and not before.
#[tokio::test]
async fn a_silent_connection_is_closed_at_the_handshake_timeout() {
    let s = TestServer::start_with_contacts(|_| {}).await;
    let mut c = TcpStream::connect(s.contacts_addr.unwrap()).await.unwrap();
    c.write_all(&[2, b'b', b'e']).await.unwrap();
    let started = std::time::Instant::now();
    // `closed` waits up to 10 s, five times the timeout.
    assert!(closed(&mut c).await, "the silent connection was kept");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1_500),
        "closed too early: {waited:?}"
    );
}

/// The re-dial backoff starts again from 0.5 s once a link has been up: an original whose
/// links keep dropping right after the handshake is re-dialled promptly every time.
#[tokio::test]
async fn the_redial_backoff_resets_after_a_link() {
    let original = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = original.local_addr().unwrap().to_string();
    let _s = TestServer::start_with_contacts(|c| c.contacts_peers = vec![addr]).await;
    let (mut o, _) = Original::accept(&original, "contact-server-1").await;
    o.until(|f| *f == Frame::AskForUpdate).await;
    for round in 0..5 {
        drop(o);
        let dropped = std::time::Instant::now();
        (o, _) = Original::accept(&original, "contact-server-1").await;
        o.until(|f| *f == Frame::AskForUpdate).await;
        // Doubling without the reset would wait 1, 2, 4, 8, 16 s.
        let waited = dropped.elapsed();
        assert!(
            waited < Duration::from_millis(1_500),
            "re-dial {round} came after {waited:?}"
        );
    }
}

/// A link whose writer falls behind the change stream (an original that stops reading while
/// thousands of changes are made) resends the whole state once it catches up, deletes
/// included: a delete among the changes it skipped still reaches the original.
#[tokio::test]
async fn a_lagging_link_resends_the_whole_state_with_deletes() {
    let s = TestServer::start_with_contacts(|_| {}).await;
    let mut c = client(&s, "beloin").await;
    c.write_all(&update(b"X", "1")).await.unwrap();
    until_listed(&mut c, "X", |n| n == ["X"]).await;
    let mut o = Original::dial_narrow(&s, "contact-server-1").await;
    // The original reads nothing now. Enough changes to fill the socket's buffers, then the
    // delete, then more than the 4,096 changes a link may fall behind by.
    let burst = |round: usize, count: usize| {
        let mut frames = Vec::new();
        for i in 0..count {
            let phone = format!("{}", 1000 + round * 10_000 + i);
            frames.extend(update(format!("c{:04}", i % 1000).as_bytes(), &phone));
        }
        frames
    };
    c.write_all(&burst(1, 9_000)).await.unwrap();
    c.write_all(&delete(b"X")).await.unwrap();
    c.write_all(&burst(2, 5_000)).await.unwrap();
    c.write_all(&update(b"end", "2")).await.unwrap();
    until_listed(&mut c, "the last change", |n| {
        n.contains(&"end".to_string())
    })
    .await;
    // Now the original reads everything the node sent.
    let (mut deleted, mut ended, mut changes) = (false, false, 0);
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    while !(deleted && ended) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let f = o
            .next(left)
            .await
            .expect("the delete or the last change never came");
        match &f {
            Frame::Delete { name, .. } if name == "X" => deleted = true,
            Frame::Update { name, .. } if name == "end" => ended = true,
            Frame::Update { .. } => changes += 1,
            _ => {}
        }
    }
    assert!(
        changes < 14_000,
        "the link never lagged ({changes} changes sent one by one): the test tested nothing"
    );
}
