//! Scoped rooms (a NATS backplane): a node applies other nodes' global ops with holes where
//! their room messages are, and room messages per room, each path in its origin's order.

mod common;

use std::collections::BTreeMap;

use common::{commit_ops, config, frames, handle, join};
use switchboard_core::{Auth, Core, Effect, Op, Restore, SessionId, Skipped};
use switchboard_proto::{ClientMsg, ServerMsg};

fn hello(core: &mut Core, s: SessionId, name: &str) {
    let mut out = Vec::new();
    core.hello(s, name, Auth::Guest, 1_000, &mut out);
    commit_ops(core);
}

fn say(core: &mut Core, s: SessionId, room: &str, text: &str) -> Vec<Op> {
    handle(
        core,
        s,
        ClientMsg::Send {
            room: Some(room.into()),
            to: None,
            text: text.into(),
            reff: None,
        },
    );
    commit_ops(core).0
}

fn texts(effects: &[Effect], s: SessionId) -> Vec<String> {
    frames(effects)
        .remove(&s)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::Message(m) => Some(m.text),
            _ => None,
        })
        .collect()
}

#[test]
fn global_ops_skip_the_room_messages_a_node_does_not_receive_and_gaps_are_seen() {
    let mut a = Core::new(config("a"), Restore::default());
    hello(&mut a, 1, "ann");
    join(&mut a, 1, "r");
    join(&mut a, 1, "s");
    let rooms = commit_ops(&mut a).0; // oseq 1, 2: the rooms
    let in_r = say(&mut a, 1, "r", "to r"); // 3
    let in_s = say(&mut a, 1, "s", "to s"); // 4
    handle(
        &mut a,
        1,
        ClientMsg::Topic {
            room: "s".into(),
            topic: Some("news".into()),
            reff: None,
        },
    );
    let topic = commit_ops(&mut a).0; // 5
    assert!(Core::is_scoped(&in_r[0]) && !Core::is_scoped(&topic[0]));

    let mut b = Core::new(config("b"), Restore::default());
    b.scope_streams(BTreeMap::new());
    hello(&mut b, 7, "bob");
    join(&mut b, 7, "r");
    commit_ops(&mut b);
    let mut out = Vec::new();
    assert_eq!(b.apply_global("a", 0, rooms, 5_000, &mut out), Ok(()));
    // The topic follows the rooms (its `prev` is 2): the room messages between are not b's
    // to hold as a's ops.
    assert_eq!(
        b.apply_global("a", 2, topic.clone(), 5_000, &mut out),
        Ok(())
    );
    assert_eq!(b.version_vector()["a"], 5);
    // Applying it again changes nothing; one that follows an op b never got is a gap.
    assert_eq!(
        b.apply_global("a", 2, topic.clone(), 5_000, &mut out),
        Ok(())
    );
    let mut later = topic[0].clone();
    later.meta.oseq = 9;
    assert_eq!(
        b.apply_global("a", 8, vec![later], 5_000, &mut out),
        Err(Skipped::Gap { have: 5 })
    );

    // The room message of r reaches bob once, whatever path brought it how often.
    assert_eq!(b.apply_scoped("a", None, in_r.clone(), &mut out), Ok(1));
    assert_eq!(b.apply_scoped("a", None, in_r.clone(), &mut out), Ok(0));
    let (_, delivered) = commit_ops(&mut b);
    assert_eq!(texts(&delivered, 7), ["to r"]);
    assert_eq!(
        b.version_vector()["a"],
        5,
        "room messages stay out of the vector"
    );
    // A message of s whose predecessor in s b never received is a gap; b holds s's first.
    let mut second = in_s[0].clone();
    second.meta.oseq = 6;
    assert_eq!(
        b.apply_scoped("a", Some(4), vec![second], &mut out),
        Err(Skipped::Gap { have: 0 })
    );
    assert_eq!(b.apply_scoped("a", None, in_s, &mut out), Ok(1));
}

#[test]
fn a_node_vouches_only_for_a_stored_clock_even_with_nothing_to_store() {
    let mut b = Core::new(config("b"), Restore::default());
    b.scope_streams(BTreeMap::new());
    let mut out = Vec::new();
    b.peer_up("a");
    b.peer_clock("a", 40, &mut out);
    assert!(b.clock() >= 40);
    // No op came with the clock: it must be stored before b can vouch for it.
    assert!(b.clock_unsaved());
    assert!(b.safe_clock() < 40);
    b.committed(0, b.clock(), &mut out);
    assert!(!b.clock_unsaved());
    assert_eq!(b.safe_clock(), b.clock());
}

#[test]
fn a_nodes_own_scoped_messages_stay_out_of_its_vector_too() {
    let mut a = Core::new(config("a"), Restore::default());
    a.scope_streams(BTreeMap::new());
    hello(&mut a, 1, "ann");
    join(&mut a, 1, "r");
    commit_ops(&mut a); // the room: a global op, oseq 1
    say(&mut a, 1, "r", "one");
    say(&mut a, 1, "r", "two");
    // Peers compare their vector with this one (anti-entropy): counting the room messages
    // would make every peer seem to lack them at every heartbeat.
    assert_eq!(a.version_vector()["a"], 1);
    // What the publisher has yet to send still counts them all.
    assert_eq!(a.stored_of("a"), 3);
}
