//! Contact books over the native protocol, on one node and across two, a book's privacy,
//! and the same books through seed 000's binary protocol on another node.

mod common;
#[path = "common/seed000_wire.rs"]
mod seed000_wire;

use common::*;
use switchboard_client::Client;
use switchboard_proto::{ClientMsg, ErrorCode, ServerMsg};
use tokio::io::AsyncWriteExt;

fn set(name: &str, phone: &str) -> ClientMsg {
    ClientMsg::ContactSet {
        name: name.into(),
        phone: phone.into(),
        reff: None,
    }
}

async fn book(c: &mut Client) -> Vec<(String, String, bool)> {
    match c.request(ClientMsg::Contacts { reff: None }).await.unwrap() {
        ServerMsg::Contacts { contacts, .. } => contacts
            .into_iter()
            .map(|c| (c.name, c.phone, c.online))
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_registered_user_keeps_a_book_and_sees_who_is_online() {
    let s = TestServer::start().await;
    let (mut bob, _) = Client::connect_as(&s.url, "bob", Some("pw")).await.unwrap();
    let (mut bob2, _) = Client::connect_as(&s.url, "bob", Some("pw")).await.unwrap();
    let _alice = s.client("Alice").await;
    assert!(book(&mut bob).await.is_empty());
    bob.request(set("Juan", "+55 85 99999-9999")).await.unwrap();
    bob.request(set("Alice", "123")).await.unwrap();
    bob.request(set("Juan", "(85) 1234")).await.unwrap();
    // Sorted by name; Alice is a user who is online, Juan is not.
    assert_eq!(
        book(&mut bob).await,
        vec![
            ("Alice".into(), "123".into(), true),
            ("Juan".into(), "(85) 1234".into(), false)
        ]
    );
    // The user's other session hears of the changes.
    let news = bob2
        .wait_for(WAIT, |m| match m {
            ServerMsg::Contact {
                name,
                phone,
                reff: None,
            } if phone.as_deref() == Some("(85) 1234") => Some(name.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(news, "Juan");
    match bob
        .request(ClientMsg::ContactDelete {
            name: "Juan".into(),
            reff: None,
        })
        .await
        .unwrap()
    {
        ServerMsg::Contact {
            name, phone: None, ..
        } => assert_eq!(name, "Juan"),
        other => panic!("{other:?}"),
    }
    assert_eq!(book(&mut bob).await.len(), 1);
    // Bad input is refused, nothing partial is stored.
    assert_eq!(
        refused(&bob.request(set("Juan", "call me maybe")).await),
        ErrorCode::BadRequest
    );
    assert_eq!(
        refused(&bob.request(set(&"x".repeat(257), "1")).await),
        ErrorCode::BadRequest
    );
    assert_eq!(
        refused(&bob.request(set("Juan", &"1".repeat(21))).await),
        ErrorCode::BadRequest
    );
    let del = ClientMsg::ContactDelete {
        name: "nobody".into(),
        reff: None,
    };
    assert_eq!(refused(&bob.request(del).await), ErrorCode::NotFound);
    assert_eq!(book(&mut bob).await.len(), 1);
    // A guest has no book: names are only held while connected.
    let mut guest = s.client("guest").await;
    assert_eq!(
        refused(&guest.request(ClientMsg::Contacts { reff: None }).await),
        ErrorCode::RegistrationRequired
    );
    // The book survives a restart.
    let dir = s.stop("restart").await.unwrap();
    let s = TestServer::start_in(dir.path(), |_| {}).await;
    let (mut bob, _) = Client::connect_as(&s.url, "bob", Some("pw")).await.unwrap();
    assert_eq!(
        book(&mut bob).await,
        vec![("Alice".into(), "123".into(), false)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn books_replicate_across_nodes() {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let b = TestServer::start_with(clustered("b", vec![format!("ws://{}", a.addr)])).await;
    wait_view(&b, "linked", |v| {
        v.get("a").map(String::as_str) == Some("up")
    })
    .await;
    let (mut on_a, _) = Client::connect_as(&a.url, "carol", Some("pw"))
        .await
        .unwrap();
    on_a.request(set("Juan", "111")).await.unwrap();
    on_a.request(set("Ana", "222")).await.unwrap();
    // The account and the book reach b.
    let deadline = std::time::Instant::now() + WAIT;
    let mut on_b = loop {
        if let Ok((mut c, _)) = Client::connect_as(&b.url, "carol", Some("pw")).await {
            if book(&mut c).await.len() == 2 {
                break c;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the book never reached b"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    on_b.request(ClientMsg::ContactDelete {
        name: "Juan".into(),
        reff: None,
    })
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while book(&mut on_a).await.len() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the delete never reached a"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        book(&mut on_a).await,
        vec![("Ana".into(), "222".into(), false)]
    );
}

fn delete(name: &str) -> ClientMsg {
    ClientMsg::ContactDelete {
        name: name.into(),
        reff: None,
    }
}

/// Polls a native client's book until it equals `want`.
async fn until_book(c: &mut Client, want: &[(&str, &str)]) {
    let want: Vec<(String, String, bool)> = want
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_string(), false))
        .collect();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = book(c).await;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the book is {got:?}, want {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_binary_clients_share_a_book_across_nodes() {
    use seed000_wire::{client_delete, client_update, until_listed};
    let a = TestServer::start_with_contacts(clustered("a", vec![])).await;
    let b = TestServer::start_with_contacts(clustered("b", vec![format!("ws://{}", a.addr)])).await;
    wait_view(&b, "linked", all_up(&["a"])).await;
    // Native on node a -> binary ListAll on node b.
    let (mut native, _) = Client::connect_as(&a.url, "carol", Some("pw"))
        .await
        .unwrap();
    native.request(set("Juan", "111")).await.unwrap();
    native
        .request(set("Ana Maria", "+55 85 2222"))
        .await
        .unwrap();
    let on_b = b.contacts_addr.unwrap();
    // The handshake may spell the name in any case: names are unique regardless of case.
    until_listed(
        on_b,
        "Carol",
        &[("Ana Maria", "+55 85 2222"), ("Juan", "111")],
    )
    .await;
    // Binary Update and Delete on node b -> the native list on node a.
    let mut binary = seed000_wire::client(on_b, b"carol").await;
    let mut frames = client_update(b"Bea", b"333");
    frames.extend(client_delete(b"Juan"));
    frames.extend(client_update(b"Ana Maria", b"444"));
    binary.write_all(&frames).await.unwrap();
    until_book(&mut native, &[("Ana Maria", "444"), ("Bea", "333")]).await;
    // And node a's own binary listener agrees.
    until_listed(
        a.contacts_addr.unwrap(),
        "carol",
        &[("Ana Maria", "444"), ("Bea", "333")],
    )
    .await;
}

#[tokio::test]
async fn a_user_can_neither_read_nor_change_another_users_book() {
    let s = TestServer::start().await;
    let (mut bob, _) = Client::connect_as(&s.url, "bob", Some("pw")).await.unwrap();
    let (mut bob2, _) = Client::connect_as(&s.url, "bob", Some("pw")).await.unwrap();
    let (mut alice, _) = Client::connect_as(&s.url, "alice", Some("pw2"))
        .await
        .unwrap();
    bob.request(set("Juan", "111")).await.unwrap();
    bob.request(set("Secret", "999")).await.unwrap();
    // Alice's book is hers alone: bob's contacts are not in it.
    assert!(book(&mut alice).await.is_empty());
    // No request names another user's book: one that tries is refused whole.
    for attempt in [
        r#"{"type":"contacts","user":"bob"}"#,
        r#"{"type":"contact_set","user":"bob","name":"Juan","phone":"666"}"#,
        r#"{"type":"contact_delete","user":"bob","name":"Secret"}"#,
        r#"{"type":"contact_delete","name":"Secret","book":"bob"}"#,
    ] {
        alice.send_raw(attempt).await.unwrap();
        let (code, message) = next_error(&mut alice).await;
        assert_eq!(code, ErrorCode::BadRequest, "{attempt}: {message}");
    }
    // Her edits of the same names touch her book only.
    alice.request(set("Juan", "666")).await.unwrap();
    assert_eq!(
        refused(&alice.request(delete("Secret")).await),
        ErrorCode::NotFound,
        "bob's contact is no contact of alice's"
    );
    alice.request(delete("Juan")).await.unwrap();
    alice.request(set("Zoe", "777")).await.unwrap();
    assert_eq!(
        book(&mut alice).await,
        vec![("Zoe".into(), "777".into(), false)]
    );
    assert_eq!(
        book(&mut bob).await,
        vec![
            ("Juan".into(), "111".into(), false),
            ("Secret".into(), "999".into(), false)
        ]
    );
    // Bob's other session hears of his own changes and of none of hers.
    bob.request(set("Last", "1")).await.unwrap();
    let mut news = Vec::new();
    while news.last().map(|(n, _): &(String, _)| n.as_str()) != Some("Last") {
        let item = bob2
            .wait_for(WAIT, |m| match m {
                ServerMsg::Contact { name, phone, .. } => Some((name.clone(), phone.clone())),
                _ => None,
            })
            .await
            .unwrap();
        news.push(item);
    }
    let mine = |n: &str, p: &str| (n.to_string(), Some(p.to_string()));
    assert_eq!(
        news,
        vec![
            mine("Juan", "111"),
            mine("Secret", "999"),
            mine("Last", "1")
        ]
    );
    // And bob's book, read again after all that, is unchanged but for his own change.
    assert_eq!(book(&mut bob).await.len(), 3);
}
