//! Restarts and shutdown: what is stored survives, and clients are told when the node goes.

mod common;

use common::*;
use switchboard_client::{Client, Target};
use switchboard_proto::{ClientMsg, ErrorCode, ServerMsg};

#[tokio::test]
async fn shutdown_tells_every_client_why_then_closes() {
    let s = TestServer::start().await;
    let mut a = s.client("a").await;
    let mut b = s.client("b").await;
    b.join("r").await.unwrap();
    let stopping = tokio::spawn(s.stop("maintenance window"));
    for c in [&mut a, &mut b] {
        let seen = until_closed(c).await;
        let reason = seen.iter().find_map(|m| match m {
            ServerMsg::Shutdown { reason } => Some(reason.clone()),
            _ => None,
        });
        assert_eq!(reason.as_deref(), Some("maintenance window"), "{seen:?}");
    }
    stopping.await.unwrap();
}

#[tokio::test]
async fn history_rooms_accounts_and_inboxes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), |_| {}).await;
    let (mut reg, _) = Client::connect_as(&s.url, "keeper", Some("pw1"))
        .await
        .unwrap();
    reg.join("Archive").await.unwrap();
    reg.request(ClientMsg::Topic {
        room: "archive".into(),
        topic: Some("old news".into()),
        reff: None,
    })
    .await
    .unwrap();
    for i in 1..=30 {
        reg.say(Target::Room("archive"), &format!("note {i}"))
            .await
            .unwrap();
    }
    let (away, _) = Client::connect_as(&s.url, "away", Some("pw2"))
        .await
        .unwrap();
    away.bye().await.unwrap();
    // Make sure "away" has left before messaging it, so the message is queued.
    loop {
        match reg
            .request(ClientMsg::Whois {
                name: "away".into(),
                reff: None,
            })
            .await
            .unwrap()
        {
            ServerMsg::Whois { online: false, .. } => break,
            _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let (queued_id, queued) = reg
        .say(Target::User("away"), "while you were out")
        .await
        .unwrap();
    assert!(queued);
    drop(reg);
    s.stop("restart").await;

    let s = TestServer::start_in(dir.path(), |_| {}).await;
    // The account still needs its password.
    let err = Client::connect_as(&s.url, "keeper", Some("wrong"))
        .await
        .map(|_| ());
    assert_eq!(refused(&err), ErrorCode::AuthFailed);
    let (mut reg, w) = Client::connect_as(&s.url, "keeper", Some("pw1"))
        .await
        .unwrap();
    assert!(w.registered);
    match reg.request(ClientMsg::Rooms { reff: None }).await.unwrap() {
        ServerMsg::Rooms { rooms, .. } => {
            assert_eq!(rooms.len(), 1);
            assert_eq!(rooms[0].room, "Archive");
            assert_eq!(rooms[0].topic.as_deref(), Some("old news"));
        }
        other => panic!("{other:?}"),
    }
    let (page, more) = reg
        .history(Target::Room("archive"), None, None, 100)
        .await
        .unwrap();
    assert!(!more);
    assert_eq!(page.len(), 30);
    assert_eq!(page[29].text, "note 30");
    // New messages come after the old ones, with fresh ids.
    reg.join("archive").await.unwrap();
    let (new_id, _) = reg
        .say(Target::Room("archive"), "after restart")
        .await
        .unwrap();
    assert!(page.iter().all(|m| m.id != new_id));
    // The queued direct message is delivered at sign-in, once.
    let (mut away, w) = Client::connect_as(&s.url, "away", Some("pw2"))
        .await
        .unwrap();
    let oseq: u64 = queued_id.rsplit('-').next().unwrap().parse().unwrap();
    assert_eq!(w.dms[0].cursor.get("t1"), Some(&oseq));
    assert_eq!(next_message(&mut away).await.text, "while you were out");
    // Message ids stay unique across the restart.
    let (page, _) = reg
        .history(Target::Room("archive"), None, None, 100)
        .await
        .unwrap();
    let mut ids: Vec<&str> = page.iter().map(|m| m.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 31);
}

#[tokio::test]
async fn a_hello_during_shutdown_is_told_the_node_is_shutting_down() {
    let s = TestServer::start().await;
    let mut by = s.client("present").await;
    by.join("r").await.unwrap();
    // Connected, but not yet signed in when the node begins to stop.
    let mut late = Client::connect(&s.url).await.unwrap();
    let stopping = tokio::spawn(s.stop("going down"));
    // The node tells its clients once it refuses hellos.
    let seen = until_closed(&mut by).await;
    assert!(
        seen.iter()
            .any(|m| matches!(m, ServerMsg::Shutdown { reason } if reason == "going down")),
        "{seen:?}"
    );
    late.send_raw(r#"{"type":"hello","v":1,"name":"late"}"#)
        .await
        .unwrap();
    let seen = until_closed(&mut late).await;
    assert!(
        seen.iter().any(|m| matches!(
            m,
            ServerMsg::Error {
                code: ErrorCode::ShuttingDown,
                ..
            }
        )),
        "{seen:?}"
    );
    stopping.await.unwrap();
}
