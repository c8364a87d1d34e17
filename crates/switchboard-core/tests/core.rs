//! The sans-IO core driven directly: no sockets, no disk, every step visible.

mod common;

use common::{commit_all, config, frames, handle, join};
use switchboard_core::{Auth, Core, Effect, OpBody, Restore, SessionId};
use switchboard_proto::{ClientMsg, ErrorCode, ServerMsg};

fn core_with(restore: Restore) -> Core {
    Core::new(config("n1"), restore)
}

fn hello(core: &mut Core, s: SessionId, name: &str, auth: Auth) -> Vec<Effect> {
    let mut out = Vec::new();
    core.hello(s, name, auth, 1_000, &mut out);
    out
}

fn send_room(room: &str, text: &str) -> ClientMsg {
    ClientMsg::Send {
        room: Some(room.into()),
        to: None,
        text: text.into(),
        reff: Some("r".into()),
    }
}

#[test]
fn nothing_is_delivered_or_acknowledged_before_it_is_durable() {
    let mut core = core_with(Restore::default());
    hello(&mut core, 1, "a", Auth::Guest);
    hello(&mut core, 2, "b", Auth::Guest);
    join(&mut core, 1, "r");
    join(&mut core, 2, "r");
    commit_all(&mut core);
    let out = handle(&mut core, 1, send_room("r", "hi"));
    assert!(out.is_empty(), "no frame before the disk: {out:?}");
    let ops = core.take_ops();
    assert_eq!(ops.len(), 1);
    assert!(
        matches!(&ops[0].body, OpBody::Message { msg, .. } if msg.id == "n1-2" && msg.text == "hi")
    );
    let mut out = Vec::new();
    let clock = core.clock();
    core.committed(ops.len(), clock, &mut out);
    let f = frames(&out);
    assert!(
        matches!(&f[&1][..], [ServerMsg::Ack { id, .. }, ServerMsg::Message(m)] if m.text == "hi" && *id == m.id)
    );
    assert!(matches!(&f[&2][..], [ServerMsg::Message(m)] if m.id == "n1-2"));
}

#[test]
fn a_member_who_joins_while_a_message_is_in_flight_gets_it_live() {
    let mut core = core_with(Restore::default());
    hello(&mut core, 1, "a", Auth::Guest);
    hello(&mut core, 2, "b", Auth::Guest);
    join(&mut core, 1, "r");
    commit_all(&mut core);
    handle(&mut core, 1, send_room("r", "in flight"));
    // b joins before the message is durable: its joined.cursor does not cover it...
    let f = frames(&handle(
        &mut core,
        2,
        ClientMsg::Join {
            room: "r".into(),
            reff: None,
        },
    ));
    assert!(matches!(&f[&2][..], [ServerMsg::Joined { cursor, .. }] if cursor.is_empty()));
    // ...so it arrives live: no gap between history and live delivery.
    let f = frames(&commit_all(&mut core));
    assert!(matches!(&f[&2][..], [ServerMsg::Message(m)] if m.text == "in flight"));
    // Later joiners are covered for it.
    hello(&mut core, 3, "c", Auth::Guest);
    let join = ClientMsg::Join {
        room: "r".into(),
        reff: None,
    };
    let f = frames(&handle(&mut core, 3, join));
    assert!(
        matches!(&f[&3][..], [ServerMsg::Joined { cursor, .. }] if cursor.get("n1") == Some(&2)),
        "{f:?}"
    );
}

#[test]
fn a_registration_holds_the_name_and_welcomes_only_once_durable() {
    let mut core = core_with(Restore::default());
    let out = hello(&mut core, 1, "Reg", Auth::Register("$argon2id$h".into()));
    assert!(out.is_empty());
    let f = frames(&hello(&mut core, 2, "reg", Auth::Guest));
    assert!(matches!(
        &f[&2][..],
        [ServerMsg::Error {
            code: ErrorCode::AuthFailed,
            ..
        }]
    ));
    let released = commit_all(&mut core);
    let f = frames(&released);
    assert!(matches!(
        &f[&1][..],
        [ServerMsg::Welcome {
            registered: true,
            ..
        }]
    ));
    assert_eq!(core.account_hash("REG").as_deref(), Some("$argon2id$h"));
    // Then the other nodes hear the new user is online.
    assert!(released.iter().any(|e| matches!(
        e,
        Effect::ToPeers(switchboard_proto::peer::PeerMsg::Presence { users, .. })
            if users.len() == 1 && users[0].name == "Reg" && users[0].online && users[0].registered
    )));
}

#[test]
fn offline_inbox_delivers_once_whether_sign_in_comes_before_or_after_the_disk() {
    let mut core = core_with(Restore {
        accounts: vec![("bob".into(), "h".into(), (1, "n0".into()))],
        ..Restore::default()
    });
    hello(&mut core, 1, "alice", Auth::Guest);
    let dm = |t: &str| ClientMsg::Send {
        room: None,
        to: Some("bob".into()),
        text: t.into(),
        reff: None,
    };
    handle(&mut core, 1, dm("durable first"));
    let f = frames(&commit_all(&mut core));
    assert!(matches!(
        &f[&1][..],
        [ServerMsg::Ack { queued: true, .. }, ServerMsg::Message(_)]
    ));
    handle(&mut core, 1, dm("in flight"));
    assert_eq!(core.inbox_len("bob"), 2);
    // bob signs in while the second message is not yet on disk.
    let f = frames(&hello(&mut core, 2, "bob", Auth::Verified));
    let texts: Vec<&str> = f[&2]
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Message(m) => Some(m.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["durable first"]);
    let f = frames(&commit_all(&mut core));
    assert!(matches!(&f[&2][..], [ServerMsg::Message(m)] if m.text == "in flight"));
    assert_eq!(core.inbox_len("bob"), 0);
    // Both deliveries are recorded, so a restart does not deliver them again.
    let ops = core.take_ops();
    let delivered: usize = ops
        .iter()
        .map(|o| match &o.body {
            OpBody::InboxDelivered { entries, .. } => entries.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(
        delivered + 1,
        2,
        "one delivery was recorded earlier: {ops:?}"
    );
}

#[test]
fn a_full_inbox_refuses_instead_of_growing() {
    let mut core = core_with(Restore {
        accounts: vec![("bob".into(), "h".into(), (1, "n0".into()))],
        ..Restore::default()
    });
    hello(&mut core, 1, "alice", Auth::Guest);
    for i in 0..3 {
        let msg = ClientMsg::Send {
            room: None,
            to: Some("bob".into()),
            text: format!("{i}"),
            reff: None,
        };
        handle(&mut core, 1, msg);
    }
    let msg = ClientMsg::Send {
        room: None,
        to: Some("bob".into()),
        text: "one too many".into(),
        reff: None,
    };
    let f = frames(&handle(&mut core, 1, msg));
    assert!(matches!(
        &f[&1][..],
        [ServerMsg::Error {
            code: ErrorCode::InboxFull,
            ..
        }]
    ));
}

#[test]
fn clocks_and_sequence_numbers_continue_after_a_restart() {
    let mut core = core_with(Restore {
        clock: 41,
        oseq: 7,
        rooms: vec![(
            "r".into(),
            None,
            [("n1".to_string(), 7)].into(),
            (0, String::new()),
        )],
        ..Restore::default()
    });
    hello(&mut core, 1, "a", Auth::Guest);
    let f = frames(&handle(
        &mut core,
        1,
        ClientMsg::Join {
            room: "R".into(),
            reff: None,
        },
    ));
    assert!(
        matches!(&f[&1][..], [ServerMsg::Joined { cursor, .. }] if cursor.get("n1") == Some(&7))
    );
    handle(&mut core, 1, send_room("r", "next"));
    let ops = core.take_ops();
    assert_eq!((ops[0].meta.oseq, ops[0].meta.lamport), (8, 42));
    assert!(
        matches!(&ops[0].body, OpBody::Message { msg, .. } if msg.lamport == 42 && msg.id == "n1-8")
    );
}

#[test]
fn requests_before_hello_are_refused() {
    let mut core = core_with(Restore::default());
    let f = frames(&handle(
        &mut core,
        9,
        ClientMsg::Rooms {
            reff: Some("x".into()),
        },
    ));
    assert!(
        matches!(&f[&9][..], [ServerMsg::Error { code: ErrorCode::NotReady, reff: Some(r), .. }] if r == "x")
    );
}

#[test]
fn a_guest_name_taken_on_both_sides_of_a_partition_goes_to_the_first_taker() {
    use switchboard_proto::peer::PeerMsg;
    // Two nodes, cut off from each other, each let a guest take "zed".
    let mut early = Core::new(config("n2"), Restore::default());
    let mut late = core_with(Restore::default());
    let mut out = Vec::new();
    early.hello(1, "zed", Auth::Guest, 1_000, &mut out);
    late.hello(1, "Zed", Auth::Guest, 2_000, &mut out);
    // The partition heals: each hears the other's users.
    let snapshot = |core: &Core| PeerMsg::Presence {
        snapshot: true,
        users: core.local_presence(),
    };
    let (from_early, from_late) = (snapshot(&early), snapshot(&late));
    let mut out_late = Vec::new();
    late.peer_linked("n2", &mut out_late);
    late.peer_message("n2", from_early, 3_000, &mut out_late);
    let mut out_early = Vec::new();
    early.peer_linked("n1", &mut out_early);
    early.peer_message("n1", from_late, 3_000, &mut out_early);
    // The later taker is told and disconnected; the earlier keeps the name.
    let closed = |out: &[Effect]| {
        out.iter().any(|e| {
            matches!(
                e,
                Effect::Close {
                    session: 1,
                    code: ErrorCode::NameInUse,
                    ..
                }
            )
        })
    };
    assert!(
        closed(&out_late),
        "the later guest is disconnected: {out_late:?}"
    );
    assert!(
        !closed(&out_early),
        "the earlier guest keeps the name: {out_early:?}"
    );
}

#[test]
fn with_a_peer_up_a_message_is_acknowledged_once_the_peer_stored_it() {
    use std::collections::BTreeMap;
    use switchboard_proto::peer::PeerMsg;
    let mut core = core_with(Restore::default());
    let mut out = Vec::new();
    core.peer_linked("n2", &mut out);
    core.hello(1, "a", Auth::Guest, 1_000, &mut out);
    join(&mut core, 1, "r");
    commit_all(&mut core);
    handle(&mut core, 1, send_room("r", "precious"));
    let mine = core.take_ops().last().unwrap().meta.oseq;
    let mut out = Vec::new();
    core.committed(1, core.clock(), &mut out);
    let acked = |out: &[Effect]| {
        frames(out)
            .get(&1)
            .is_some_and(|f| f.iter().any(|m| matches!(m, ServerMsg::Ack { .. })))
    };
    assert!(
        !acked(&out),
        "on this node's disk only: not yet acknowledged"
    );
    // The peer reports it has stored our ops up to this one.
    let stored = BTreeMap::from([("n1".to_string(), mine)]);
    let mut out = Vec::new();
    core.peer_message("n2", PeerMsg::Clock { clock: 100, stored }, 2_000, &mut out);
    assert!(acked(&out), "stored on a peer too: acknowledged");
    // With no peer up, the local disk is enough.
    let mut out = Vec::new();
    core.peer_unlinked("n2", &mut out);
    handle(&mut core, 1, send_room("r", "alone"));
    core.take_ops();
    let mut out2 = Vec::new();
    core.committed(1, core.clock(), &mut out2);
    assert!(acked(&out2));
}

#[test]
fn a_conversation_does_not_wait_for_silent_peers_but_a_room_does() {
    use switchboard_proto::peer::PeerMsg;
    let mut core = core_with(Restore::default());
    let mut out = Vec::new();
    // Two peers are linked and have vouched for nothing yet (one may have gone silent).
    core.peer_linked("n2", &mut out);
    core.peer_linked("n3", &mut out);
    hello(&mut core, 1, "a", Auth::Guest);
    hello(&mut core, 2, "b", Auth::Guest);
    for s in [1, 2] {
        join(&mut core, s, "r");
    }
    commit_all(&mut core);
    let got = |out: &[Effect], text: &str| {
        frames(out).get(&2).is_some_and(|f| {
            f.iter()
                .any(|m| matches!(m, ServerMsg::Message(m) if m.text == text))
        })
    };
    // A direct message goes out as soon as it is durable here.
    handle(
        &mut core,
        1,
        ClientMsg::Send {
            room: None,
            to: Some("b".into()),
            text: "psst".into(),
            reff: None,
        },
    );
    assert!(got(&commit_all(&mut core), "psst"));
    // A room message waits until every linked peer vouched for a later clock, so that every
    // node delivers the room's messages in one order.
    handle(&mut core, 1, send_room("r", "all"));
    assert!(!got(&commit_all(&mut core), "all"));
    let clock = core.clock() + 1;
    let mut out = Vec::new();
    core.peer_message(
        "n2",
        PeerMsg::Clock {
            clock,
            stored: Default::default(),
        },
        3_000,
        &mut out,
    );
    assert!(!got(&out, "all"), "n3 has not vouched yet");
    let mut out = Vec::new();
    core.peer_message(
        "n3",
        PeerMsg::Clock {
            clock,
            stored: Default::default(),
        },
        3_000,
        &mut out,
    );
    assert!(got(&out, "all"));
}

#[test]
fn a_peer_is_caught_up_only_when_it_stays_behind_across_heartbeats() {
    use std::collections::BTreeMap;
    use switchboard_proto::peer::PeerMsg;
    let mut core = core_with(Restore::default());
    let mut out = Vec::new();
    core.peer_linked("n2", &mut out);
    hello(&mut core, 1, "a", Auth::Guest);
    join(&mut core, 1, "r");
    handle(&mut core, 1, send_room("r", "one"));
    commit_all(&mut core);
    let heartbeat = |core: &mut Core, held: u64| {
        let mut out = Vec::new();
        let vv = BTreeMap::from([("n1".to_string(), held)]);
        let msg = PeerMsg::Heartbeat {
            clock: 0,
            members: Vec::new(),
            vv,
        };
        core.peer_message("n2", msg, 3_000, &mut out);
        out.iter().any(|e| matches!(e, Effect::CatchUp { .. }))
    };
    // Our latest ops may still be on the link: no resend yet.
    assert!(!heartbeat(&mut core, 0));
    // The peer caught up meanwhile: nothing to do.
    let mine = core.heartbeat().1["n1"];
    assert!(!heartbeat(&mut core, mine));
    // New ops, and the peer reports none of them at two heartbeats in a row: resend.
    handle(&mut core, 1, send_room("r", "two"));
    commit_all(&mut core);
    assert!(!heartbeat(&mut core, mine));
    assert!(heartbeat(&mut core, mine));
}

#[test]
fn messages_are_refused_as_busy_while_max_pending_ops_wait_for_the_disk() {
    use switchboard_core::MAX_PENDING;
    let mut core = core_with(Restore::default());
    hello(&mut core, 1, "writer", Auth::Guest);
    hello(&mut core, 2, "other", Auth::Guest);
    join(&mut core, 1, "r");
    join(&mut core, 2, "r");
    commit_all(&mut core);
    // The disk stalls: nothing is committed while the writer fills the queue.
    for i in 0..MAX_PENDING {
        let out = handle(&mut core, 1, send_room("r", &format!("m{i}")));
        assert!(out.is_empty(), "message {i} refused early: {out:?}");
    }
    let refused = frames(&handle(&mut core, 1, send_room("r", "one too many")));
    assert!(
        matches!(&refused[&1][..], [ServerMsg::Error { code: ErrorCode::Busy, reff: Some(r), .. }] if r == "r"),
        "{refused:?}"
    );
    let dm = ClientMsg::Send {
        room: None,
        to: Some("writer".into()),
        text: "psst".into(),
        reff: Some("d".into()),
    };
    let refused = frames(&handle(&mut core, 2, dm));
    assert!(
        matches!(
            &refused[&2][..],
            [ServerMsg::Error {
                code: ErrorCode::Busy,
                ..
            }]
        ),
        "{refused:?}"
    );
    // Another session is served meanwhile: what needs no disk still works.
    let pong = frames(&handle(
        &mut core,
        2,
        ClientMsg::Ping {
            reff: Some("p".into()),
        },
    ));
    assert!(
        matches!(&pong[&2][..], [ServerMsg::Pong { .. }]),
        "{pong:?}"
    );
    // Once the disk catches up, everything waiting is delivered and new messages pass.
    let out = frames(&commit_all(&mut core));
    let delivered = out[&2]
        .iter()
        .filter(|m| matches!(m, ServerMsg::Message(_)))
        .count();
    assert_eq!(delivered, MAX_PENDING);
    assert!(handle(&mut core, 1, send_room("r", "again")).is_empty());
    let out = frames(&commit_all(&mut core));
    assert!(matches!(&out[&2][..], [ServerMsg::Message(m)] if m.text == "again"));
}
