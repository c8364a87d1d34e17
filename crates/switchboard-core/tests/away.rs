//! Away messages in the sans-IO core: one state per user, shown by `who`, `whois` and `away`
//! events, replicated with presence between nodes, gone with the user's last session.

mod common;

use common::{config, frames, handle, join};
use switchboard_core::{Auth, Core, Effect, Restore, SessionId};
use switchboard_proto::peer::PeerMsg;
use switchboard_proto::{ClientMsg, ErrorCode, ServerMsg};

fn core(node: &str) -> Core {
    let cfg = config(node);
    // alice is registered, so that she may sign in from several devices at once.
    let restore = Restore {
        accounts: vec![("alice".into(), "hash".into(), (1, "n1".into()))],
        ..Default::default()
    };
    Core::new(cfg, restore)
}

/// The away events (name, message) a session got.
fn away_events(effects: &[Effect], s: SessionId) -> Vec<(String, Option<String>)> {
    frames(effects)
        .remove(&s)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::Away { name, message, .. } => Some((name, message)),
            _ => None,
        })
        .collect()
}

/// Signs alice (registered) or a guest in, asking for away events when `events`.
fn hello(core: &mut Core, s: SessionId, name: &str, events: bool) -> Vec<Effect> {
    let mut out = Vec::new();
    let auth = if name == "alice" {
        Auth::Verified
    } else {
        Auth::Guest
    };
    core.hello(s, name, auth, 1_000, &mut out);
    if events {
        core.want_away_events(s);
    }
    out
}

fn away(core: &mut Core, s: SessionId, message: Option<&str>) -> Vec<Effect> {
    handle(
        core,
        s,
        ClientMsg::Away {
            message: message.map(str::to_string),
            reff: Some("a".into()),
        },
    )
}

fn whois_away(core: &mut Core, asker: SessionId, name: &str) -> Option<String> {
    let out = handle(
        core,
        asker,
        ClientMsg::Whois {
            name: name.into(),
            reff: None,
        },
    );
    match frames(&out).remove(&asker).unwrap().pop().unwrap() {
        ServerMsg::Whois { away, .. } => away,
        other => panic!("{other:?}"),
    }
}

/// Hands every peer message in `effects` from node `from` to `to`, returning `to`'s effects.
fn relay(effects: &[Effect], from: &str, to: &mut Core) -> Vec<Effect> {
    let mut out = Vec::new();
    for e in effects {
        match e {
            Effect::ToPeers(m @ PeerMsg::Presence { .. }) => {
                to.peer_message(from, m.clone(), 3_000, &mut out)
            }
            Effect::ToPeer {
                msg: m @ PeerMsg::Presence { .. },
                ..
            } => to.peer_message(from, m.clone(), 3_000, &mut out),
            _ => {}
        }
    }
    out
}

#[test]
fn away_is_told_to_the_setter_co_members_and_own_sessions_that_asked() {
    let mut c = core("n1");
    hello(&mut c, 1, "alice", true);
    hello(&mut c, 2, "alice", true); // alice's second device
    hello(&mut c, 3, "bob", true);
    hello(&mut c, 4, "old", false); // a client older than away events
    hello(&mut c, 5, "zoe", true); // shares no room with alice
    for s in [1, 3, 4] {
        join(&mut c, s, "general");
    }
    let out = away(&mut c, 1, Some("lunch"));
    let f = frames(&out);
    assert_eq!(
        f[&1],
        vec![ServerMsg::Away {
            reff: Some("a".into()),
            name: "alice".into(),
            message: Some("lunch".into())
        }]
    );
    let lunch = vec![("alice".to_string(), Some("lunch".to_string()))];
    assert_eq!(away_events(&out, 2), lunch);
    assert_eq!(away_events(&out, 3), lunch);
    assert!(!f.contains_key(&4) && !f.contains_key(&5));
    assert_eq!(whois_away(&mut c, 5, "ALICE").as_deref(), Some("lunch"));
    assert_eq!(c.away_of("alice").as_deref(), Some("lunch"));
    let who = handle(
        &mut c,
        4,
        ClientMsg::Who {
            room: Some("general".into()),
            reff: None,
        },
    );
    match &frames(&who)[&4][0] {
        ServerMsg::Who { users, away, .. } => {
            assert_eq!(users, &["alice", "bob", "old"]);
            assert_eq!(away.len(), 1);
            assert_eq!(away["alice"], "lunch");
        }
        other => panic!("{other:?}"),
    }
    // Back, from the other device: it is one state per user.
    let out = away(&mut c, 2, None);
    assert_eq!(away_events(&out, 3), vec![("alice".to_string(), None)]);
    assert_eq!(away_events(&out, 1), vec![("alice".to_string(), None)]);
    assert_eq!(whois_away(&mut c, 5, "alice"), None);
    // Saying it again changes nothing: only the reply.
    let out = away(&mut c, 2, Some(""));
    assert!(away_events(&out, 3).is_empty());
}

#[test]
fn away_messages_are_one_line_within_the_limit() {
    let mut c = core("n1");
    hello(&mut c, 1, "alice", true);
    let long = "x".repeat(switchboard_proto::limits::MAX_AWAY_BYTES + 1);
    for (text, code) in [
        (long.as_str(), ErrorCode::TooLarge),
        ("two\nlines", ErrorCode::BadRequest),
    ] {
        let out = away(&mut c, 1, Some(text));
        assert!(
            matches!(&frames(&out)[&1][0], ServerMsg::Error { code: c, reff: Some(r), .. } if *c == code && r == "a")
        );
    }
    assert_eq!(c.away_of("alice"), None);
    let max = "é".repeat(switchboard_proto::limits::MAX_AWAY_BYTES / 2);
    away(&mut c, 1, Some(&max));
    assert_eq!(c.away_of("alice"), Some(max));
}

#[test]
fn an_away_user_who_joins_a_room_is_shown_away_after_the_join() {
    let mut c = core("n1");
    hello(&mut c, 1, "alice", true);
    hello(&mut c, 2, "bob", true);
    join(&mut c, 2, "general");
    away(&mut c, 1, Some("lunch"));
    let out = join(&mut c, 1, "general");
    let got = &frames(&out)[&2];
    assert!(matches!(&got[0], ServerMsg::Presence { name, .. } if name == "alice"));
    assert!(
        matches!(&got[1], ServerMsg::Away { name, message: Some(m), .. } if name == "alice" && m == "lunch")
    );
}

#[test]
fn the_last_session_leaving_clears_away() {
    let mut c = core("n1");
    hello(&mut c, 1, "alice", true);
    hello(&mut c, 2, "alice", true);
    hello(&mut c, 3, "bob", true);
    away(&mut c, 1, Some("lunch"));
    let mut out = Vec::new();
    c.close(1, &mut out); // the setter's session: the user is still away
    assert_eq!(c.away_of("alice").as_deref(), Some("lunch"));
    c.close(2, &mut out);
    assert_eq!(c.away_of("alice"), None);
    hello(&mut c, 4, "alice", true);
    assert_eq!(whois_away(&mut c, 3, "alice"), None);
}

#[test]
fn away_travels_with_presence_between_nodes() {
    let (mut n1, mut n2) = (core("n1"), core("n2"));
    let mut out = Vec::new();
    n1.peer_linked("n2", &mut out);
    n2.peer_linked("n1", &mut out);
    hello(&mut n2, 20, "bob", true);
    relay(&join(&mut n2, 20, "general"), "n2", &mut n1);
    // alice is away before the link comes up: the snapshot carries it.
    let mut n1_out = hello(&mut n1, 10, "alice", true);
    n1_out.extend(join(&mut n1, 10, "general"));
    n1_out.extend(away(&mut n1, 10, Some("lunch")));
    let mut late = core("n3");
    let mut snap = Vec::new();
    n1.peer_linked("n3", &mut snap);
    let mut late_out = Vec::new();
    for e in &snap {
        if let Effect::ToPeer { msg, .. } = e {
            late.peer_message("n1", msg.clone(), 3_000, &mut late_out);
        }
    }
    assert_eq!(late.away_of("alice").as_deref(), Some("lunch"));
    // Live: bob on n2, in alice's room, sees her go away, in whois and who.
    let n2_out = relay(&n1_out, "n1", &mut n2);
    assert!(away_events(&n2_out, 20).contains(&("alice".into(), Some("lunch".into()))));
    assert_eq!(whois_away(&mut n2, 20, "alice").as_deref(), Some("lunch"));
    // Back.
    let n2_out = relay(&away(&mut n1, 10, None), "n1", &mut n2);
    assert_eq!(away_events(&n2_out, 20), vec![("alice".to_string(), None)]);
    assert_eq!(n2.away_of("alice"), None);
    // Away again, then alice's last session goes: n2 forgets her, without an `away` event.
    relay(&away(&mut n1, 10, Some("gone")), "n1", &mut n2);
    let mut bye = Vec::new();
    n1.close(10, &mut bye);
    let n2_out = relay(&bye, "n1", &mut n2);
    assert!(away_events(&n2_out, 20).is_empty());
    assert_eq!(n2.away_of("alice"), None);
    assert!(n2.online_name("alice").is_none());
}

#[test]
fn a_user_on_two_nodes_stays_away_when_the_node_that_set_it_loses_them() {
    let (mut n1, mut n2) = (core("n1"), core("n2"));
    let mut out = Vec::new();
    n1.peer_linked("n2", &mut out);
    n2.peer_linked("n1", &mut out);
    relay(&hello(&mut n1, 10, "alice", true), "n1", &mut n2);
    relay(&hello(&mut n2, 20, "alice", true), "n2", &mut n1);
    let set = away(&mut n1, 10, Some("lunch"));
    let n2_out = relay(&set, "n1", &mut n2);
    // n2's own session of alice hears it, and n2 adopts and re-announces the state.
    assert_eq!(
        away_events(&n2_out, 20),
        vec![("alice".to_string(), Some("lunch".to_string()))]
    );
    relay(&n2_out, "n2", &mut n1);
    let mut bye = Vec::new();
    n1.close(10, &mut bye);
    relay(&bye, "n1", &mut n2);
    assert_eq!(n2.away_of("alice").as_deref(), Some("lunch"));
    assert_eq!(n1.away_of("alice").as_deref(), Some("lunch"));
    // Cleared on n2, where alice still is: n1 hears it too (the later setting wins).
    relay(&away(&mut n2, 20, None), "n2", &mut n1);
    assert_eq!((n1.away_of("alice"), n2.away_of("alice")), (None, None));
}

#[test]
fn a_session_opened_after_away_was_set_elsewhere_keeps_it_when_that_node_loses_the_user() {
    let (mut n1, mut n2) = (core("n1"), core("n2"));
    let mut out = Vec::new();
    n1.peer_linked("n2", &mut out);
    n2.peer_linked("n1", &mut out);
    let mut n1_out = hello(&mut n1, 10, "alice", true);
    n1_out.extend(away(&mut n1, 10, Some("lunch")));
    relay(&n1_out, "n1", &mut n2);
    // alice signs in on n2 too: her new session is away from the start.
    relay(&hello(&mut n2, 20, "alice", true), "n2", &mut n1);
    let mut bye = Vec::new();
    n1.close(10, &mut bye);
    relay(&bye, "n1", &mut n2);
    hello(&mut n2, 21, "zoe", true);
    assert_eq!(whois_away(&mut n2, 21, "alice").as_deref(), Some("lunch"));
    assert_eq!(n1.away_of("alice").as_deref(), Some("lunch"));
}
