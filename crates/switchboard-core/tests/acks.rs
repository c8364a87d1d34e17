//! An acknowledgement that waits on a peer's report of what it stored does not hang when
//! that report is lost: when a peer's heartbeat shows it held the message already at its
//! previous heartbeat and still no report came, the node asks again.

mod common;

use common::{commit_all, config, frames, handle, join};
use switchboard_core::{Auth, Core, Effect, Restore};
use switchboard_proto::peer::PeerMsg;
use switchboard_proto::{ClientMsg, ServerMsg};

/// The peer messages among some effects (all of them go to the one peer in these tests).
fn to_peer(out: &[Effect]) -> Vec<PeerMsg> {
    out.iter()
        .filter_map(|e| match e {
            Effect::ToPeer { msg, .. } | Effect::ToPeers(msg) => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

fn acked(out: &[Effect]) -> bool {
    frames(out)
        .get(&1)
        .is_some_and(|f| f.iter().any(|m| matches!(m, ServerMsg::Ack { .. })))
}

#[test]
fn a_lost_report_of_storage_is_asked_for_again_and_the_ack_comes() {
    let (mut a, mut b) = (
        Core::new(config("a"), Restore::default()),
        Core::new(config("b"), Restore::default()),
    );
    let mut out = Vec::new();
    a.peer_linked("b", &mut out);
    b.peer_linked("a", &mut out);
    a.hello(1, "alice", Auth::Guest, 1_000, &mut out);
    join(&mut a, 1, "r");
    let mut ops = a.take_ops();
    a.committed(ops.len(), a.clock(), &mut Vec::new());
    handle(
        &mut a,
        1,
        ClientMsg::Send {
            room: Some("r".into()),
            to: None,
            text: "hi".into(),
            reff: None,
        },
    );
    let message = a.take_ops();
    let mut out = Vec::new();
    a.committed(message.len(), a.clock(), &mut out);
    ops.extend(message);
    assert!(!acked(&out), "no ack before a peer stored it");
    // b applies and stores the ops; its `clock` frame saying so is lost.
    let mut out = Vec::new();
    b.peer_message("a", PeerMsg::Ops { ops }, 2_000, &mut out);
    let lost = commit_all(&mut b);
    assert!(to_peer(&lost)
        .iter()
        .any(|m| matches!(m, PeerMsg::Clock { .. })));
    // b's heartbeat shows it holds the message. Its report may still be on its way (under
    // load it usually is): a does not ask yet.
    let heartbeat = |b: &Core| {
        let (clock, vv) = b.heartbeat();
        PeerMsg::Heartbeat {
            clock,
            members: Vec::new(),
            vv,
        }
    };
    let mut out = Vec::new();
    a.peer_message("b", heartbeat(&b), 3_000, &mut out);
    assert!(!acked(&out));
    assert!(
        !to_peer(&out)
            .iter()
            .any(|m| matches!(m, PeerMsg::Sync { .. })),
        "no sync while the report may be in flight: {out:?}"
    );
    // A heartbeat later the report has still not come: a asks, b answers, the ack goes out.
    let mut out = Vec::new();
    a.peer_message("b", heartbeat(&b), 3_500, &mut out);
    assert!(!acked(&out));
    let asked = to_peer(&out);
    assert!(
        asked.iter().any(|m| matches!(m, PeerMsg::Sync { .. })),
        "a asks b: {asked:?}"
    );
    let mut answers = Vec::new();
    for m in asked {
        b.peer_message("a", m, 3_000, &mut answers);
    }
    let mut out = Vec::new();
    for m in to_peer(&answers) {
        a.peer_message("b", m, 3_001, &mut out);
    }
    assert!(
        acked(&out),
        "the ack comes once b's answer arrives: {out:?}"
    );
}
