//! A core's output depends on its inputs only: the deterministic simulator replays a seed
//! exactly only if two cores fed the same calls say the same things in the same order, even
//! though their users and directory live in randomly keyed hash maps.

mod common;

use common::{config, join};
use switchboard_core::{Auth, Core, Restore};
use switchboard_proto::peer::{PeerMsg, UserPresence};

/// Everything a core says, in order, while twenty local users join a room, a peer with
/// twenty users of its own links, and then goes away.
fn transcript() -> String {
    let mut core = Core::new(config("n1"), Restore::default());
    let mut out = Vec::new();
    for s in 1..=20 {
        core.hello(s, &format!("local{s}"), Auth::Guest, 1_000, &mut out);
        out.extend(join(&mut core, s, "r"));
    }
    core.peer_linked("n2", &mut out);
    let users = (1..=20)
        .map(|u| UserPresence {
            name: format!("remote{u}"),
            online: true,
            registered: false,
            since: 1_000,
            rooms: vec!["r".into()],
            version: (1, u),
            away: Default::default(),
        })
        .collect();
    let snapshot = PeerMsg::Presence {
        snapshot: true,
        users,
    };
    core.peer_message("n2", snapshot, 2_000, &mut out);
    core.peer_unlinked("n2", &mut out);
    core.peer_linked("n3", &mut out);
    format!("{out:?}")
}

#[test]
fn two_cores_fed_the_same_calls_say_the_same_things_in_the_same_order() {
    let first = transcript();
    assert!(first.contains("remote20") && first.contains("local20"));
    for _ in 0..5 {
        assert_eq!(transcript(), first);
    }
}
