//! Seed 000's binary contacts protocol from the other side of the socket, written from
//! ../shared/seeds/WIRE-NOTES.md (not from the implementation): fixed-width NUL-padded fields
//! (256 bytes for names, 20 for a phone number), big-endian u32 clocks and counts, one command
//! byte then a fixed payload, no length prefix. Both roles: an original client (role byte 2)
//! and an original server linking as a peer (role byte 1).
//!
//! Test files include it with `#[path = "common/seed000_wire.rs"] mod seed000_wire;`; it
//! needs nothing else from the kit.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the node has to answer.
const WAIT: Duration = Duration::from_secs(10);

/// Width of a name field (user, contact, server).
pub const NAME: usize = 256;
/// Width of a phone number field.
pub const PHONE: usize = 20;
/// A server-to-server Update frame: command, clock, user, contact, phone.
pub const UPDATE_FRAME: usize = 1 + 4 + NAME + NAME + PHONE;
/// A server-to-server Delete frame: command, clock, user, contact.
pub const DELETE_FRAME: usize = 1 + 4 + NAME + NAME;
/// AskForUpdate: the command byte alone.
pub const ASK_FOR_UPDATE: u8 = 5;

/// `value` in a field of `width` bytes, NUL-padded (a value of the full width has no NUL).
pub fn field(value: &[u8], width: usize) -> Vec<u8> {
    assert!(value.len() <= width, "the test's value does not fit");
    let mut f = value.to_vec();
    f.resize(width, 0);
    f
}

/// A field's value: its bytes up to the first NUL, or the whole field without one.
pub fn value(f: &[u8]) -> Vec<u8> {
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    f[..end].to_vec()
}

/// Asserts that a field holds `want`, padded with NULs only.
pub fn assert_field(f: &[u8], want: &[u8]) {
    assert_eq!(
        f,
        field(want, f.len()),
        "field {:?}",
        String::from_utf8_lossy(f)
    );
}

// ---- client role ----

/// An original client of `user`'s book: role byte 2 and the name; the listener answers nothing.
pub async fn client(addr: SocketAddr, user: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let mut hello = vec![2];
    hello.extend(field(user, NAME));
    c.write_all(&hello).await.unwrap();
    c
}

/// A client's Update: command 1, contact name, phone.
pub fn client_update(name: &[u8], phone: &[u8]) -> Vec<u8> {
    let mut f = vec![1];
    f.extend(field(name, NAME));
    f.extend(field(phone, PHONE));
    f
}

/// A client's Delete: command 2, contact name.
pub fn client_delete(name: &[u8]) -> Vec<u8> {
    let mut f = vec![2];
    f.extend(field(name, NAME));
    f
}

/// ListAll's raw answer: the count, then one (name field, phone field) per contact.
pub async fn list_all_raw(c: &mut TcpStream) -> Vec<(Vec<u8>, Vec<u8>)> {
    c.write_all(&[3]).await.unwrap();
    let n = tokio::time::timeout(WAIT, c.read_u32())
        .await
        .expect("ListAll answered")
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let mut entry = vec![0u8; NAME + PHONE];
        tokio::time::timeout(WAIT, c.read_exact(&mut entry))
            .await
            .unwrap()
            .unwrap();
        let phone = entry.split_off(NAME);
        out.push((entry, phone));
    }
    out
}

/// ListAll as text: (contact, phone) pairs.
pub async fn list_all(c: &mut TcpStream) -> Vec<(String, String)> {
    list_all_raw(c)
        .await
        .iter()
        .map(|(n, p)| (utf8(&value(n)), utf8(&value(p))))
        .collect()
}

/// Lists `user`'s book on a fresh client connection until it equals `want`.
pub async fn until_listed(addr: SocketAddr, user: &str, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = list_all(&mut client(addr, user.as_bytes()).await).await;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{addr} lists {got:?} for {user}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("the node sent UTF-8")
}

// ---- server role ----

/// An original server linking to the node: role byte 1 and its name; returns the link and
/// the node's name field (the listener answers a server with its own name).
pub async fn peer(addr: SocketAddr, name: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut p = TcpStream::connect(addr).await.unwrap();
    let mut hello = vec![1];
    hello.extend(field(name, NAME));
    p.write_all(&hello).await.unwrap();
    let mut theirs = vec![0u8; NAME];
    tokio::time::timeout(WAIT, p.read_exact(&mut theirs))
        .await
        .expect("the node answers a server with its name")
        .unwrap();
    (p, theirs)
}

/// A server's Update: command 1, clock, user, contact, phone.
pub fn peer_update(clock: u32, user: &[u8], name: &[u8], phone: &[u8]) -> Vec<u8> {
    let mut f = vec![1];
    f.extend_from_slice(&clock.to_be_bytes());
    f.extend(field(user, NAME));
    f.extend(field(name, NAME));
    f.extend(field(phone, PHONE));
    f
}

/// A server's Delete: command 2, clock, user, contact.
pub fn peer_delete(clock: u32, user: &[u8], name: &[u8]) -> Vec<u8> {
    let mut f = vec![2];
    f.extend_from_slice(&clock.to_be_bytes());
    f.extend(field(user, NAME));
    f.extend(field(name, NAME));
    f
}

/// A server's HeartBeat: command 3, health status 1, clock.
pub fn heartbeat(clock: u32) -> Vec<u8> {
    let mut f = vec![3, 1];
    f.extend_from_slice(&clock.to_be_bytes());
    f
}

/// A server's UpdateClock: command 4, clock.
pub fn update_clock(clock: u32) -> Vec<u8> {
    let mut f = vec![4];
    f.extend_from_slice(&clock.to_be_bytes());
    f
}

/// A frame the node sent on a server link, decoded by the wire notes' sizes.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeFrame {
    Update {
        clock: u32,
        user: Vec<u8>,
        name: Vec<u8>,
        phone: Vec<u8>,
    },
    Delete {
        clock: u32,
        user: Vec<u8>,
        name: Vec<u8>,
    },
    HeartBeat {
        status: u8,
        clock: u32,
    },
}

impl NodeFrame {
    /// The contact an Update or Delete is about.
    pub fn contact(&self) -> Option<&[u8]> {
        match self {
            NodeFrame::Update { name, .. } | NodeFrame::Delete { name, .. } => Some(name),
            NodeFrame::HeartBeat { .. } => None,
        }
    }
}

/// The next frame from the node and its exact bytes. Panics on a command byte the wire
/// notes do not list for a server, or on UpdateClock, which must never be sent (an original
/// server does not consume its 4 bytes).
pub async fn next_frame(p: &mut TcpStream) -> (NodeFrame, Vec<u8>) {
    next_frame_within(p, WAIT)
        .await
        .expect("no frame from the node in time")
}

/// The next frame, or `None` if none starts within `wait`.
pub async fn next_frame_within(p: &mut TcpStream, wait: Duration) -> Option<(NodeFrame, Vec<u8>)> {
    let cmd = match tokio::time::timeout(wait, p.read_u8()).await {
        Err(_) => return None,
        Ok(r) => r.expect("the link stays open"),
    };
    let size = match cmd {
        1 => UPDATE_FRAME,
        2 => DELETE_FRAME,
        3 => 1 + 1 + 4,
        4 => panic!("the node sent UpdateClock, which an original server cannot read"),
        other => panic!("command byte {other} is not in the wire notes"),
    };
    let mut raw = vec![cmd];
    raw.resize(size, 0);
    tokio::time::timeout(WAIT, p.read_exact(&mut raw[1..]))
        .await
        .expect("a whole frame")
        .unwrap();
    let clock_at = |i: usize| u32::from_be_bytes(raw[i..i + 4].try_into().unwrap());
    let frame = match cmd {
        1 => NodeFrame::Update {
            clock: clock_at(1),
            user: value(&raw[5..5 + NAME]),
            name: value(&raw[5 + NAME..5 + 2 * NAME]),
            phone: value(&raw[5 + 2 * NAME..]),
        },
        2 => NodeFrame::Delete {
            clock: clock_at(1),
            user: value(&raw[5..5 + NAME]),
            name: value(&raw[5 + NAME..]),
        },
        _ => NodeFrame::HeartBeat {
            status: raw[1],
            clock: clock_at(2),
        },
    };
    Some((frame, raw))
}

/// Reads frames until an Update or Delete of contact `name`; returns it with its bytes.
pub async fn next_change_of(p: &mut TcpStream, name: &[u8]) -> (NodeFrame, Vec<u8>) {
    loop {
        let (frame, raw) = next_frame(p).await;
        if frame.contact() == Some(name) {
            return (frame, raw);
        }
    }
}

/// A contact as (user, contact, phone) bytes.
pub type Entry = (Vec<u8>, Vec<u8>, Vec<u8>);

/// Asks for a full copy on a fresh server link: every contact of every user, as
/// (user, contact, phone), sorted and without repeats (a change made just before the link
/// may also be forwarded to it once durable: the same entry again). The answer has no count
/// and no end marker, so this waits for at least `at_least` distinct entries, then reads on
/// until the node has been quiet for a while (its next heartbeat is seconds away), so that
/// anything beyond them shows too.
pub async fn full_copy(addr: SocketAddr, at_least: usize) -> Vec<Entry> {
    let (mut p, _) = peer(addr, b"test-kit-dump").await;
    p.write_all(&[ASK_FOR_UPDATE]).await.unwrap();
    let mut all = std::collections::BTreeSet::new();
    loop {
        let wait = if all.len() < at_least {
            WAIT
        } else {
            Duration::from_millis(500)
        };
        let Some((frame, _)) = next_frame_within(&mut p, wait).await else {
            break;
        };
        if let NodeFrame::Update {
            user, name, phone, ..
        } = frame
        {
            all.insert((user, name, phone));
        }
    }
    assert!(
        all.len() >= at_least,
        "the full copy stopped short: {all:?}"
    );
    all.into_iter().collect()
}

/// A full copy's entry as bytes, for comparisons.
pub fn entry(user: &str, name: &str, phone: &str) -> Entry {
    (user.into(), name.into(), phone.into())
}

/// Reads until the node closes the connection; returns what it sent before. Panics if it
/// stays open.
pub async fn until_node_closes(s: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
            Err(_) => panic!("the node kept the connection open; it sent {seen:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return seen,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}
