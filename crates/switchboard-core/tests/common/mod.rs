//! Helpers shared by the core's test files: a node's configuration, requests, and the frames
//! the effects carry, decoded per session.

#![allow(dead_code)]

use std::collections::HashMap;

use switchboard_core::{Config, Core, Effect, Op, SessionId};
use switchboard_proto::server::Limits;
use switchboard_proto::{decode_server, ClientMsg, ServerMsg};

/// A node's configuration for tests: an inbox of 3, 10 requests a second.
pub fn config(node: &str) -> Config {
    Config {
        node: node.into(),
        inbox_cap: 3,
        limits: Limits {
            max_frame_bytes: 65536,
            max_text_bytes: 16384,
            rate_per_sec: 10,
            burst: 10,
        },
        incarnation: 1,
    }
}

/// Decoded frames per session.
pub fn frames(effects: &[Effect]) -> HashMap<SessionId, Vec<ServerMsg>> {
    let mut out: HashMap<SessionId, Vec<ServerMsg>> = HashMap::new();
    for e in effects {
        match e {
            Effect::ToPeer { .. }
            | Effect::ToPeers(_)
            | Effect::CatchUp { .. }
            | Effect::ContactChanged { .. } => {}
            Effect::Send { to, frame } => out
                .entry(*to)
                .or_default()
                .push(decode_server(std::str::from_utf8(frame).unwrap()).unwrap()),
            Effect::Fanout { to, frame } => {
                for s in to.iter() {
                    out.entry(*s)
                        .or_default()
                        .push(decode_server(std::str::from_utf8(frame).unwrap()).unwrap());
                }
            }
            Effect::Close { session, code, .. } => {
                out.entry(*session).or_default().push(ServerMsg::Error {
                    code: *code,
                    message: "closed".into(),
                    reff: None,
                })
            }
        }
    }
    out
}

/// Makes every waiting op durable, as the store writer would: the ops, and the effects
/// their commit released.
pub fn commit_ops(core: &mut Core) -> (Vec<Op>, Vec<Effect>) {
    let ops = core.take_ops();
    let mut out = Vec::new();
    core.committed(ops.len(), core.clock(), &mut out);
    (ops, out)
}

/// [`commit_ops`], for the effects alone.
pub fn commit_all(core: &mut Core) -> Vec<Effect> {
    commit_ops(core).1
}

/// One request of a session, at t = 2 s.
pub fn handle(core: &mut Core, s: SessionId, msg: ClientMsg) -> Vec<Effect> {
    let mut out = Vec::new();
    core.handle(s, msg, 2_000, &mut out);
    out
}

/// Joins (or creates) `room`.
pub fn join(core: &mut Core, s: SessionId, room: &str) -> Vec<Effect> {
    handle(
        core,
        s,
        ClientMsg::Join {
            room: room.into(),
            reff: None,
        },
    )
}
