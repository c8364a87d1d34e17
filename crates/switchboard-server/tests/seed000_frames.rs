//! Seed 000's binary protocol frame by frame, byte by byte, as ../shared/seeds/WIRE-NOTES.md
//! describes it (the kit in common/seed000_wire.rs is written from the notes, not from the
//! implementation): every server-to-server frame in both directions, the AskForUpdate dump,
//! full-width fields, and bad input (unknown role and command bytes, truncated frames,
//! invalid UTF-8), which must close only the offending connection and store nothing.

mod common;
#[path = "common/seed000_wire.rs"]
mod seed000_wire;

use std::time::Duration;

use common::TestServer;
use seed000_wire::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A node with seed 000's listener, and a client of beloin's book holding Juan and Ana. The
/// two changes are durable when this returns: a node forwards a change to its server links
/// once durable, so a link made earlier could otherwise receive them after the test's frames.
async fn node_with_a_book() -> (TestServer, TcpStream) {
    let s = TestServer::start_with_contacts(|_| {}).await;
    let addr = s.contacts_addr.unwrap();
    let (mut witness, _) = peer(addr, b"witness").await;
    let mut c = client(addr, b"beloin").await;
    c.write_all(&client_update(b"Juan", b"111")).await.unwrap();
    c.write_all(&client_update(b"Ana", b"222")).await.unwrap();
    settled(&mut witness, b"Ana").await;
    (s, c)
}

/// Waits until a change of contact `name` reaches a server link: that change, and every one
/// made before it, is durable.
async fn settled(witness: &mut TcpStream, name: &[u8]) {
    next_change_of(witness, name).await;
}

/// The clock of the node's next change frame, forced by a client change of `name`.
async fn clock_of_next_change(c: &mut TcpStream, p: &mut TcpStream, name: &[u8]) -> u32 {
    c.write_all(&client_update(name, b"999")).await.unwrap();
    match next_change_of(p, name).await.0 {
        NodeFrame::Update { clock, .. } => clock,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_peers_delete_heartbeat_and_update_clock_are_read_whole() {
    let (s, mut c) = node_with_a_book().await;
    let addr = s.contacts_addr.unwrap();
    let (mut p, theirs) = peer(addr, b"contact-server-9").await;
    assert_field(&theirs, b"t1");
    // A HeartBeat (5 bytes after its command) then a Delete, in one segment: if the
    // HeartBeat were misread, the Delete would be too, and Juan would stay.
    let mut bytes = heartbeat(40_000);
    bytes.extend(peer_delete(7, b"beloin", b"Juan"));
    p.write_all(&bytes).await.unwrap();
    until_listed(addr, "beloin", &[("Ana", "222")]).await;
    // The HeartBeat's clock raised the node's: its next change carries a larger one.
    let clock = clock_of_next_change(&mut c, &mut p, b"Caio").await;
    assert!(
        clock > 40_000,
        "the heartbeat's clock was not merged: {clock}"
    );
    // UpdateClock's 4 bytes are consumed and the Update right behind it still parsed.
    let mut bytes = update_clock(50_000);
    bytes.extend(peer_update(8, b"beloin", b"Bea", b"333"));
    p.write_all(&bytes).await.unwrap();
    until_listed(
        addr,
        "beloin",
        &[("Ana", "222"), ("Bea", "333"), ("Caio", "999")],
    )
    .await;
    let clock = clock_of_next_change(&mut c, &mut p, b"Dora").await;
    assert!(
        clock > 50_000,
        "UpdateClock's clock was not merged: {clock}"
    );
    // A Delete of a contact the book does not hold changes nothing; the link carries on.
    p.write_all(&peer_delete(9, b"beloin", b"nobody"))
        .await
        .unwrap();
    p.write_all(&peer_update(10, b"beloin", b"Eva", b"444"))
        .await
        .unwrap();
    until_listed(
        addr,
        "beloin",
        &[
            ("Ana", "222"),
            ("Bea", "333"),
            ("Caio", "999"),
            ("Dora", "999"),
            ("Eva", "444"),
        ],
    )
    .await;
}

#[tokio::test]
async fn ask_for_update_answers_one_update_frame_per_contact_and_nothing_else() {
    let (s, mut c) = node_with_a_book().await;
    let addr = s.contacts_addr.unwrap();
    // A deleted contact and a second user's book, durable before the link below is made.
    let (mut witness, _) = peer(addr, b"witness").await;
    c.write_all(&client_update(b"Zed", b"000")).await.unwrap();
    c.write_all(&client_delete(b"Zed")).await.unwrap();
    let mut other = client(addr, b"juan").await;
    other
        .write_all(&client_update(b"Maria", b"333"))
        .await
        .unwrap();
    assert_eq!(list_all(&mut c).await.len(), 2);
    assert_eq!(list_all(&mut other).await.len(), 1);
    settled(&mut witness, b"Maria").await;
    let (mut p, _) = peer(addr, b"contact-server-9").await;
    p.write_all(&[ASK_FOR_UPDATE]).await.unwrap();
    // No count before and no end marker after: the very next frames are the Updates (a u32
    // count would start with a 0 byte, which is no command), and after the third only
    // heartbeats may follow.
    let mut dump = Vec::new();
    while dump.len() < 3 {
        let (frame, raw) = next_frame(&mut p).await;
        if let NodeFrame::Update {
            user, name, phone, ..
        } = frame
        {
            assert_eq!(raw.len(), UPDATE_FRAME);
            assert_field(&raw[5..5 + NAME], &user);
            assert_field(&raw[5 + NAME..5 + 2 * NAME], &name);
            assert_field(&raw[5 + 2 * NAME..], &phone);
            dump.push((user, name, phone));
        }
    }
    dump.sort();
    assert_eq!(
        dump,
        vec![
            entry("beloin", "Ana", "222"),
            entry("beloin", "Juan", "111"),
            entry("juan", "Maria", "333"),
        ]
    );
    while let Some((frame, _)) = next_frame_within(&mut p, Duration::from_millis(700)).await {
        assert!(
            matches!(frame, NodeFrame::HeartBeat { .. }),
            "more than one frame per contact: {frame:?}"
        );
    }
}

#[tokio::test]
async fn changes_go_out_as_whole_update_and_delete_frames_with_clocks() {
    let (s, mut c) = node_with_a_book().await;
    let addr = s.contacts_addr.unwrap();
    // Set the node's clock to a value whose byte order shows: 0x01020304.
    let (mut first, _) = peer(addr, b"contact-server-8").await;
    first
        .write_all(&peer_update(0x0102_0304, b"beloin", b"Clock", b"1"))
        .await
        .unwrap();
    until_listed(
        addr,
        "beloin",
        &[("Ana", "222"), ("Clock", "1"), ("Juan", "111")],
    )
    .await;
    // A new link gets the node's heartbeat: status 1, the clock big-endian.
    let (mut p, _) = peer(addr, b"contact-server-9").await;
    let beat = loop {
        if let (NodeFrame::HeartBeat { status, clock }, raw) = next_frame(&mut p).await {
            assert_eq!(raw.len(), 6);
            break (status, clock);
        }
    };
    assert_eq!(beat.0, 1, "health status");
    assert!(
        (0x0102_0304..0x0102_0304 + 1_000).contains(&beat.1),
        "heartbeat clock {:#x} (little-endian would read 0x04030201...)",
        beat.1
    );
    // An Update with a full 20-byte phone (no NUL), then a Delete, then another Update.
    c.write_all(&client_update(b"Juan", b"12345678901234567890"))
        .await
        .unwrap();
    let (update, raw) = next_change_of(&mut p, b"Juan").await;
    assert_eq!(raw.len(), UPDATE_FRAME);
    assert_eq!(raw[0], 1);
    assert_eq!(
        &raw[5 + 2 * NAME..],
        b"12345678901234567890",
        "phone sent whole"
    );
    let NodeFrame::Update { clock: set_at, .. } = update else {
        panic!("{update:?}")
    };
    assert!(set_at > beat.1, "a local update adds to the clock");
    c.write_all(&client_delete(b"Juan")).await.unwrap();
    c.write_all(&client_update(b"Bea", b"333")).await.unwrap();
    let (delete, raw) = next_change_of(&mut p, b"Juan").await;
    assert_eq!(raw.len(), DELETE_FRAME);
    assert_eq!(raw[0], 2);
    assert_field(&raw[5..5 + NAME], b"beloin");
    assert_field(&raw[5 + NAME..], b"Juan");
    let NodeFrame::Delete { clock, .. } = delete else {
        panic!("{delete:?}")
    };
    assert_eq!(&raw[1..5], &clock.to_be_bytes());
    assert!(
        clock > set_at,
        "the delete is later than the update: {clock} <= {set_at}"
    );
    // The Delete carried no phone field: the next frame parses as Bea's Update.
    let (bea, _) = next_change_of(&mut p, b"Bea").await;
    assert!(
        matches!(bea, NodeFrame::Update { ref phone, .. } if phone == b"333"),
        "{bea:?}"
    );
}

#[tokio::test]
async fn a_full_width_phone_is_stored_and_sent_back_whole() {
    let s = TestServer::start_with_contacts(|_| {}).await;
    let addr = s.contacts_addr.unwrap();
    let mut c = client(addr, b"beloin").await;
    // An empty book: the count alone, 0, and nothing after it.
    assert!(list_all_raw(&mut c).await.is_empty());
    c.write_all(&client_update(b"Juan", b"85999999999912345678"))
        .await
        .unwrap();
    let (mut p, _) = peer(addr, b"contact-server-9").await;
    p.write_all(&peer_update(3, b"beloin", b"Ana", b"+55 (85) 9999-99999"))
        .await
        .unwrap();
    p.write_all(&peer_update(4, b"beloin", b"Bea", b"11112222333344445555"))
        .await
        .unwrap();
    until_listed(
        addr,
        "beloin",
        &[
            ("Ana", "+55 (85) 9999-99999"),
            ("Bea", "11112222333344445555"),
            ("Juan", "85999999999912345678"),
        ],
    )
    .await;
    let raw = list_all_raw(&mut c).await;
    assert_eq!(raw[1].1, b"11112222333344445555", "20 bytes, no NUL");
    assert_eq!(raw[2].1, b"85999999999912345678", "20 bytes, no NUL");
    assert_field(&raw[0].1, b"+55 (85) 9999-99999");
}

#[tokio::test]
async fn an_unknown_role_byte_closes_that_connection_only() {
    let (s, mut c) = node_with_a_book().await;
    let addr = s.contacts_addr.unwrap();
    let (mut p, _) = peer(addr, b"contact-server-9").await;
    for role in [0u8, 3, 7, 255] {
        let mut bad = TcpStream::connect(addr).await.unwrap();
        let mut bytes = vec![role];
        bytes.extend(field(b"beloin", NAME));
        bytes.extend(client_update(b"Evil", b"666"));
        bytes.push(3);
        let _ = bad.write_all(&bytes).await;
        assert!(
            until_node_closes(&mut bad).await.is_empty(),
            "role {role}: the node answered"
        );
    }
    // The client and the peer link carry on; nothing was stored.
    assert_eq!(
        list_all(&mut c).await,
        vec![("Ana".into(), "222".into()), ("Juan".into(), "111".into())]
    );
    carries_on(&mut c, &mut p, addr).await;
}

#[tokio::test]
async fn an_unknown_command_byte_closes_that_connection_only() {
    let (s, mut c) = node_with_a_book().await;
    let addr = s.contacts_addr.unwrap();
    let (mut p, _) = peer(addr, b"contact-server-9").await;
    // A server sends command 9 then a valid Update: the link closes, the Update is not read.
    let (mut bad_peer, _) = peer(addr, b"contact-server-7").await;
    let mut bytes = vec![9];
    bytes.extend(peer_update(5, b"beloin", b"Evil", b"666"));
    bad_peer.write_all(&bytes).await.unwrap();
    until_node_closes(&mut bad_peer).await;
    // A client sends UpdateClock, a server's command (4): closed as well.
    let mut bad_client = client(addr, b"beloin").await;
    let mut bytes = update_clock(5);
    bytes.extend(client_update(b"Evil2", b"666"));
    let _ = bad_client.write_all(&bytes).await;
    assert!(until_node_closes(&mut bad_client).await.is_empty());
    assert_eq!(list_all(&mut c).await.len(), 2);
    carries_on(&mut c, &mut p, addr).await;
}

#[tokio::test]
async fn a_truncated_frame_then_close_stores_nothing_partial() {
    let (s, _c) = node_with_a_book().await;
    let addr = s.contacts_addr.unwrap();
    // A client: a whole Update (stored), then an Update cut inside its phone field.
    let mut cut = client(addr, b"beloin").await;
    let mut bytes = client_update(b"Bea", b"333");
    bytes.extend(&client_update(b"Partial", b"12345678901234567890")[..1 + NAME + 10]);
    cut.write_all(&bytes).await.unwrap();
    cut.shutdown().await.unwrap();
    until_node_closes(&mut cut).await;
    // A client Delete cut inside its name field.
    let mut cut = client(addr, b"beloin").await;
    cut.write_all(&client_delete(b"Juan")[..100]).await.unwrap();
    cut.shutdown().await.unwrap();
    until_node_closes(&mut cut).await;
    // A server's Update and Delete cut short.
    for frame in [
        peer_update(5, b"beloin", b"Partial2", b"1")[..UPDATE_FRAME - 1].to_vec(),
        peer_delete(5, b"beloin", b"Ana")[..DELETE_FRAME - 1].to_vec(),
        peer_update(5, b"beloin", b"Partial3", b"1")[..3].to_vec(),
    ] {
        let (mut p, _) = peer(addr, b"contact-server-9").await;
        p.write_all(&frame).await.unwrap();
        p.shutdown().await.unwrap();
        until_node_closes(&mut p).await;
    }
    // A handshake cut short.
    let mut cut = TcpStream::connect(addr).await.unwrap();
    cut.write_all(&[2, b'b', b'e']).await.unwrap();
    cut.shutdown().await.unwrap();
    until_node_closes(&mut cut).await;
    assert_eq!(
        full_copy(addr, 3).await,
        vec![
            entry("beloin", "Ana", "222"),
            entry("beloin", "Bea", "333"),
            entry("beloin", "Juan", "111"),
        ]
    );
}

#[tokio::test]
async fn invalid_utf8_in_the_client_handshake_name_is_refused() {
    let (s, mut c) = node_with_a_book().await;
    let addr = s.contacts_addr.unwrap();
    let mut bad = TcpStream::connect(addr).await.unwrap();
    let mut bytes = vec![2];
    bytes.extend(field(&[b'b', 0xff, 0xfe, b'n'], NAME));
    bytes.extend(client_update(b"Evil", b"666"));
    bytes.push(3); // ListAll
    let _ = bad.write_all(&bytes).await;
    assert!(
        until_node_closes(&mut bad).await.is_empty(),
        "no ListAll answer for a name that is not UTF-8"
    );
    assert_eq!(list_all(&mut c).await.len(), 2);
    assert_eq!(
        full_copy(addr, 2).await,
        vec![
            entry("beloin", "Ana", "222"),
            entry("beloin", "Juan", "111")
        ]
    );
}

/// WIRE-NOTES does not say what a server does with a user field that is no name; whether
/// the link is closed or carries on, nothing may be stored: a book named "" (or a name that
/// is not UTF-8) is one no client could ever name again.
#[tokio::test]
async fn a_peer_update_whose_user_is_not_utf8_or_empty_stores_nothing() {
    let (s, _c) = node_with_a_book().await;
    let addr = s.contacts_addr.unwrap();
    for bad in [
        peer_update(5, &[0xff, 0xfe], b"Evil", b"666"),
        peer_update(6, b"", b"Evil2", b"666"),
        peer_delete(7, &[0xc3], b"Ana"),
        peer_delete(8, b"", b"Juan"),
    ] {
        let (mut p, _) = peer(addr, b"contact-server-9").await;
        p.write_all(&bad).await.unwrap();
        // Either way the frame is read: close our side and wait for the node's.
        p.shutdown().await.unwrap();
        until_node_closes(&mut p).await;
    }
    // A valid Update on a fresh link lands.
    let (mut p, _) = peer(addr, b"contact-server-9").await;
    p.write_all(&peer_update(9, b"beloin", b"Bea", b"333"))
        .await
        .unwrap();
    until_listed(
        addr,
        "beloin",
        &[("Ana", "222"), ("Bea", "333"), ("Juan", "111")],
    )
    .await;
    assert_eq!(
        full_copy(addr, 3).await,
        vec![
            entry("beloin", "Ana", "222"),
            entry("beloin", "Bea", "333"),
            entry("beloin", "Juan", "111"),
        ]
    );
}

/// After a bad connection was closed, the node still serves: a good client's Update reaches
/// the peer link `p` and the book holds exactly Ana, Bea and Juan.
async fn carries_on(c: &mut TcpStream, p: &mut TcpStream, addr: std::net::SocketAddr) {
    c.write_all(&client_update(b"Bea", b"333")).await.unwrap();
    assert!(matches!(
        next_change_of(p, b"Bea").await.0,
        NodeFrame::Update { .. }
    ));
    assert_eq!(
        full_copy(addr, 3).await,
        vec![
            entry("beloin", "Ana", "222"),
            entry("beloin", "Bea", "333"),
            entry("beloin", "Juan", "111"),
        ]
    );
}
