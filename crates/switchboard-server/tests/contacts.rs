//! Contact books over the native protocol, on one node and across two.

mod common;

use common::*;
use switchboard_client::{Client, ClientError};
use switchboard_proto::{ClientMsg, ErrorCode, ServerMsg};

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

fn code(r: Result<ServerMsg, ClientError>) -> ErrorCode {
    match r {
        Err(ClientError::Refused { code, .. }) => code,
        other => panic!("expected a refusal: {other:?}"),
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
        code(bob.request(set("Juan", "call me maybe")).await),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code(bob.request(set(&"x".repeat(257), "1")).await),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code(bob.request(set("Juan", &"1".repeat(21))).await),
        ErrorCode::BadRequest
    );
    let del = ClientMsg::ContactDelete {
        name: "nobody".into(),
        reff: None,
    };
    assert_eq!(code(bob.request(del).await), ErrorCode::NotFound);
    assert_eq!(book(&mut bob).await.len(), 1);
    // A guest has no book: names are only held while connected.
    let mut guest = s.client("guest").await;
    assert_eq!(
        code(guest.request(ClientMsg::Contacts { reff: None }).await),
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
