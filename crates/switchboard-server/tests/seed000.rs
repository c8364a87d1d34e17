//! Seed 000's binary contacts protocol, driven by a client and a peer written here from
//! ../shared/seeds/WIRE-NOTES.md: NUL-padded fields of 256 (names) and 20 (phone) bytes,
//! big-endian u32s, no length prefixes, no replies to Update and Delete.

mod common;

use std::time::Duration;

use common::*;
use switchboard_client::Client;
use switchboard_proto::{ClientMsg, ServerMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn field(value: &[u8], width: usize) -> Vec<u8> {
    let mut f = value.to_vec();
    f.resize(width, 0);
    f
}

fn text(f: &[u8]) -> String {
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    String::from_utf8(f[..end].to_vec()).unwrap()
}

/// An original client: role byte 2 and the user's name; the listener answers nothing.
async fn client(s: &TestServer, user: &str) -> TcpStream {
    let mut c = TcpStream::connect(s.contacts_addr.unwrap()).await.unwrap();
    let mut hello = vec![2];
    hello.extend(field(user.as_bytes(), 256));
    c.write_all(&hello).await.unwrap();
    c
}

fn update(name: &[u8], phone: &str) -> Vec<u8> {
    let mut f = vec![1];
    f.extend(field(name, 256));
    f.extend(field(phone.as_bytes(), 20));
    f
}

fn delete(name: &[u8]) -> Vec<u8> {
    let mut f = vec![2];
    f.extend(field(name, 256));
    f
}

async fn list_all(c: &mut TcpStream) -> Vec<(Vec<u8>, String)> {
    c.write_all(&[3]).await.unwrap();
    let n = tokio::time::timeout(WAIT, c.read_u32())
        .await
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let mut name = vec![0u8; 256];
        let mut phone = vec![0u8; 20];
        c.read_exact(&mut name).await.unwrap();
        c.read_exact(&mut phone).await.unwrap();
        let end = name.iter().position(|&b| b == 0).unwrap_or(256);
        name.truncate(end);
        out.push((name, text(&phone)));
    }
    out
}

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
    list_all(&mut c).await;
    // An original server dials us: role 1 and its name; we answer with ours.
    let mut peer = TcpStream::connect(s.contacts_addr.unwrap()).await.unwrap();
    let mut hello = vec![1];
    hello.extend(field(b"contact-server-9", 256));
    peer.write_all(&hello).await.unwrap();
    let mut name = vec![0u8; 256];
    peer.read_exact(&mut name).await.unwrap();
    assert_eq!(text(&name), "t1");
    // AskForUpdate: one Update frame per contact, no count, no end marker.
    peer.write_all(&[5]).await.unwrap();
    let frame = read_update(&mut peer).await;
    assert_eq!(
        (frame.1.as_str(), frame.2.as_str(), frame.3.as_str()),
        ("beloin", "Juan", "111")
    );
    // Its Update (with a clock) lands in the book; our changes go out to it.
    let mut up = vec![1];
    up.extend_from_slice(&500u32.to_be_bytes());
    up.extend(field(b"beloin", 256));
    up.extend(field(b"Ana", 256));
    up.extend(field(b"222", 20));
    peer.write_all(&up).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while list_all(&mut c).await.len() != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the peer's update never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.write_all(&update(b"Bea", "333")).await.unwrap();
    loop {
        let f = read_update(&mut peer).await;
        if f.2 == "Bea" {
            assert!(f.0 > 500, "our clock moved past the peer's: {}", f.0);
            break;
        }
    }
}

/// Reads frames from a peer link until an Update; returns (clock, user, contact, phone).
async fn read_update(peer: &mut TcpStream) -> (u32, String, String, String) {
    loop {
        let cmd = tokio::time::timeout(WAIT, peer.read_u8())
            .await
            .unwrap()
            .unwrap();
        match cmd {
            1 => {
                let clock = peer.read_u32().await.unwrap();
                let mut f = vec![0u8; 256 + 256 + 20];
                peer.read_exact(&mut f).await.unwrap();
                return (clock, text(&f[..256]), text(&f[256..512]), text(&f[512..]));
            }
            2 => {
                let mut f = vec![0u8; 4 + 512];
                peer.read_exact(&mut f).await.unwrap();
            }
            3 => {
                let mut f = [0u8; 5];
                peer.read_exact(&mut f).await.unwrap();
                assert_eq!(f[0], 1, "health status");
            }
            other => panic!("unexpected command byte {other} (UpdateClock must never be sent)"),
        }
    }
}

#[tokio::test]
async fn a_node_dials_an_original_server_and_asks_for_its_book() {
    // A test-kit original server.
    let original = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = original.local_addr().unwrap().to_string();
    let s = TestServer::start_with_contacts(|c| c.contacts_peers = vec![addr]).await;
    let (mut sock, _) = tokio::time::timeout(WAIT, original.accept())
        .await
        .unwrap()
        .unwrap();
    let mut hello = vec![0u8; 257];
    sock.read_exact(&mut hello).await.unwrap();
    assert_eq!((hello[0], text(&hello[1..]).as_str()), (1, "t1"));
    let mut reply = field(b"contact-server-1", 256);
    // It sends AskForUpdate right after the handshake; then we send it our one contact.
    sock.write_all(&reply.split_off(0)).await.unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, sock.read_u8())
            .await
            .unwrap()
            .unwrap(),
        5
    );
    let mut up = vec![1];
    up.extend_from_slice(&7u32.to_be_bytes());
    up.extend(field(b"beloin", 256));
    up.extend(field(b"Juan", 256));
    up.extend(field(b"85999999999", 20));
    sock.write_all(&up).await.unwrap();
    let mut c = client(&s, "beloin").await;
    let deadline = std::time::Instant::now() + WAIT;
    while list_all(&mut c).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the original's contact never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
