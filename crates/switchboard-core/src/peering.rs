//! The replication protocol between nodes, sans-IO: what a node says when a link to a peer
//! comes up, and how it answers each peer message. The server moves the frames; the
//! simulator (crates/switchboard-sim) runs the very same code over a simulated network.

use std::collections::BTreeMap;

use switchboard_proto::peer::PeerMsg;
use switchboard_proto::Millis;

use crate::{Core, Effect, Skipped};

impl Core {
    /// A link to `node` is up: start waiting for its clock, ask for what we lack, and tell it
    /// who is connected here.
    pub fn peer_linked(&mut self, node: &str, out: &mut Vec<Effect>) {
        self.peer_up(node);
        out.push(Effect::ToPeer {
            node: node.to_string(),
            msg: PeerMsg::Sync {
                vv: self.vv.clone(),
            },
        });
        out.push(Effect::ToPeer {
            node: node.to_string(),
            msg: PeerMsg::Presence {
                snapshot: true,
                users: self.local_presence(),
            },
        });
    }

    /// The last link to `node` is gone.
    pub fn peer_unlinked(&mut self, node: &str, out: &mut Vec<Effect>) {
        self.peer_down(node, out);
    }

    /// How many ops this node holds that `node` did not, as of its last heartbeat: the
    /// replication lag shown by `cluster status`.
    pub fn replication_lag(&self, node: &str) -> Option<u64> {
        let theirs = self.peer_vv.get(node)?;
        Some(
            self.vv
                .iter()
                .map(|(o, n)| n.saturating_sub(theirs.get(o).copied().unwrap_or(0)))
                .sum(),
        )
    }

    /// Whether this node holds every op of `node` that `node` reports holding of its own.
    fn holds_all_of(&self, node: &str, theirs: &BTreeMap<String, u64>) -> bool {
        let mine = self.vv.get(node).copied().unwrap_or(0);
        theirs.get(node).is_none_or(|&t| mine >= t)
    }

    /// Acknowledgements wait for a peer to report (in a `clock` frame) that it stored our
    /// message. That report is sent once, after its commit; if it is lost (a frame dropped
    /// on NATS, a link that broke just then) and nothing else moves, the acknowledgement
    /// would wait forever. So when `node` already held, at its previous heartbeat, a message
    /// whose acknowledgement still waits on it, ask it with a `sync`, which it answers with
    /// what it has stored.
    ///
    /// The previous heartbeat, not this one: under load a peer always holds messages whose
    /// report is still on its way (its commit, then the frame). Asking on what this heartbeat
    /// shows made every heartbeat a `sync`, and every `sync` a catch-up read from the store
    /// and resent: a three-node mesh at 10,000 dm/s went from 70 ms to 655 ms p99.
    fn ask_what_is_stored(
        &mut self,
        node: &str,
        theirs: &BTreeMap<String, u64>,
        out: &mut Vec<Effect>,
    ) {
        let holds_now = theirs.get(&self.cfg.node).copied().unwrap_or(0);
        let held = self
            .held_at_heartbeat
            .insert(node.to_string(), holds_now)
            .unwrap_or(0);
        let Some(&first) = self.acks_waiting.keys().next() else {
            return;
        };
        let told = self.peer_stored.get(node).is_some_and(|&s| s >= first);
        if held >= first && !told {
            out.push(Effect::ToPeer {
                node: node.to_string(),
                msg: PeerMsg::Sync {
                    vv: self.vv.clone(),
                },
            });
        }
    }

    /// What a heartbeat carries (the server adds the members it knows).
    pub fn heartbeat(&self) -> (u64, BTreeMap<String, u64>) {
        (self.safe_clock(), self.vv.clone())
    }

    /// After applying a peer's ops: vouch for the clock they raised, so that their messages
    /// become deliverable everywhere without waiting for the next heartbeat.
    pub(crate) fn ops_applied(&mut self, out: &mut Vec<Effect>) {
        if let Some(clock) = self.clock_to_tell() {
            out.push(Effect::ToPeers(PeerMsg::Clock {
                clock,
                stored: self.stored.clone(),
            }));
        }
        self.deliver_stable(out);
    }

    /// Handles one message from a peer.
    pub fn peer_message(&mut self, node: &str, msg: PeerMsg, now: Millis, out: &mut Vec<Effect>) {
        match msg {
            PeerMsg::Heartbeat { clock, vv, .. } => {
                // A vouch covers the peer's own ops up to its clock: trust it only once we hold
                // every op of the peer that it holds (they may still be on another link, or in
                // a catch-up not yet read).
                if self.holds_all_of(node, &vv) {
                    self.peer_clock(node, clock, out);
                }
                self.peer_vv.insert(node.to_string(), vv.clone());
                // Anti-entropy: the peer still lacks something we already held at its previous
                // heartbeat. Ops newer than that may simply be on their way (the live stream
                // always runs ahead of heartbeats); resending them on every heartbeat read
                // the store and sent duplicates all the time under load.
                let before = self
                    .vv_at_heartbeat
                    .insert(node.to_string(), self.vv.clone())
                    .unwrap_or_default();
                let behind = before
                    .iter()
                    .any(|(o, n)| vv.get(o).copied().unwrap_or(0) < *n);
                if behind {
                    out.push(Effect::CatchUp {
                        node: node.to_string(),
                        vv: vv.clone(),
                    });
                }
                self.ask_what_is_stored(node, &vv, out);
            }
            PeerMsg::Sync { vv } => {
                out.push(Effect::CatchUp {
                    node: node.to_string(),
                    vv,
                });
                // And how much of the asker's ops we have stored, which it may be waiting to
                // hear (see `ask_what_is_stored`). Clock 0 vouches for nothing, and with no
                // entry of our own the frame claims nothing of ours (a receiver on NATS would
                // otherwise park it until it holds our ops), so it is safe on any path, even
                // one that overtakes this node's ops.
                let theirs = self.stored.get(node).copied().unwrap_or(0);
                out.push(Effect::ToPeer {
                    node: node.to_string(),
                    msg: PeerMsg::Clock {
                        clock: 0,
                        stored: [(node.to_string(), theirs)].into(),
                    },
                });
            }
            PeerMsg::Clock { clock, stored } => {
                if let Some(&mine) = stored.get(&self.cfg.node) {
                    let s = self.peer_stored.entry(node.to_string()).or_insert(0);
                    *s = (*s).max(mine);
                    self.release_acks(out);
                }
                if self.holds_all_of(node, &stored) {
                    self.peer_clock(node, clock, out);
                }
            }
            PeerMsg::Presence { snapshot, users } => self.peer_presence(node, snapshot, users, out),
            PeerMsg::Ops { ops } => {
                for op in ops {
                    if let Err(Skipped::Gap { .. }) = self.apply_remote(op, now, out) {
                        // Earlier ops are missing: ask for everything from where we are.
                        out.push(Effect::ToPeer {
                            node: node.to_string(),
                            msg: PeerMsg::Sync {
                                vv: self.vv.clone(),
                            },
                        });
                        break;
                    }
                }
                self.ops_applied(out);
            }
            PeerMsg::Undelivered {
                from,
                to,
                id,
                reason,
            } => self.tell_undelivered(&from, &to, &id, &reason, out),
            PeerMsg::Challenge { .. }
            | PeerMsg::Prove { .. }
            | PeerMsg::Accepted { .. }
            | PeerMsg::Refused { .. } => {}
        }
    }
}
