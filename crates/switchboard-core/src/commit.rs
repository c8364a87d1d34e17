//! Durability: when the store reports ops on disk, release what waited on them.

use std::sync::Arc;

use bytes::Bytes;

use crate::order::Held;
use crate::{Core, Effect, InboxEntry, OpBody, SessionId};

/// What waits for an op to be durable.
pub(crate) enum Pending {
    Nothing,
    RoomMessage {
        room: String,
        lamport: u64,
        origin: String,
        oseq: u64,
        frame: Bytes,
        ack: Option<(SessionId, Bytes)>,
    },
    DirectMessage {
        stream: String,
        lamport: u64,
        origin: String,
        oseq: u64,
        frame: Bytes,
        ack: Option<(SessionId, Bytes)>,
        users: [String; 2],
        queued_for: Option<String>,
    },
    Topic {
        room: String,
        frame: Bytes,
        /// The setter, who gets the change as the reply to its request (with its `ref`)
        /// instead of the broadcast; none when the change came from another node.
        setter: Option<(SessionId, Bytes)>,
    },
    Welcome {
        session: SessionId,
    },
    Contact {
        /// The book: the user's name key.
        user: String,
        /// The user's name as the change wrote it (case kept), for seed 000's wire.
        shown: String,
        name: String,
        phone: Option<String>,
        /// The Lamport clock of the change's stamp.
        lamport: u64,
        /// The session that asked (answered once durable), or the seed 000 link the change
        /// came from (which must not hear it back).
        reply: Option<(SessionId, Option<String>)>,
    },
}

impl Pending {
    /// Whether it waits on a message that travels by interest when streams are scoped: a
    /// room message, or a direct message not queued for an offline recipient (scoped.rs).
    pub(crate) fn is_scoped(&self) -> bool {
        matches!(
            self,
            Pending::RoomMessage { .. }
                | Pending::DirectMessage {
                    queued_for: None,
                    ..
                }
        )
    }
}

impl Core {
    /// The store made the next `count` ops durable (ops are committed in the order they
    /// were emitted). Deliveries and acknowledgements waiting on them go out now, to the
    /// members as they are now: someone who joined after the message was accepted but
    /// before it was durable gets it live, since their `joined.cursor` did not cover it.
    ///
    /// `clock` is the clock stored with the batch (read when it was taken). Once durable, the
    /// node may vouch for it: peers hear of it at once, so that the messages it covers become
    /// deliverable everywhere.
    pub fn committed(&mut self, count: usize, clock: u64, out: &mut Vec<Effect>) {
        self.durable_clock = self.durable_clock.max(clock);
        let mut stored_remote = false;
        for _ in 0..count {
            let Some((origin, oseq, pending)) = self.pending.pop_front() else {
                break;
            };
            self.ops_committed += 1;
            let remote = origin != self.cfg.node;
            if remote {
                stored_remote = true;
                self.pending_remote -= 1;
            }
            // With scoped streams, `stored` counts only what every node receives (scoped.rs).
            if !(self.scoped && remote && pending.is_scoped()) {
                let s = self.stored.entry(origin).or_insert(0);
                *s = (*s).max(oseq);
            }
            self.release(oseq, pending, out);
        }
        self.deliver_stable(out);
        if !self.peer_clocks.is_empty() {
            let moved = self.clock_to_tell();
            if moved.is_some() || stored_remote {
                out.push(Effect::ToPeers(switchboard_proto::peer::PeerMsg::Clock {
                    clock: self.clock_told,
                    stored: self.stored.clone(),
                }));
            }
        }
    }

    fn release(&mut self, oseq_of_op: u64, pending: Pending, out: &mut Vec<Effect>) {
        match pending {
            Pending::Nothing => {}
            Pending::RoomMessage {
                room,
                lamport,
                origin,
                oseq,
                frame,
                ack,
            } => {
                self.ack_when_replicated(oseq_of_op, ack, out);
                let held = Held::Room { room, oseq, frame };
                self.hold((lamport, origin), held, out);
            }
            Pending::DirectMessage {
                stream,
                lamport,
                origin,
                oseq,
                frame,
                ack,
                users,
                queued_for,
            } => {
                self.ack_when_replicated(oseq_of_op, ack, out);
                let held = Held::Direct {
                    stream,
                    oseq,
                    frame,
                    users,
                    queued_for,
                };
                // Not held back: see `Core::deliver` on why a conversation needs no
                // cluster-wide order.
                self.deliver((lamport, origin), held, out);
            }
            Pending::Topic {
                room,
                frame,
                setter,
            } => {
                let setter_id = setter.as_ref().map(|s| s.0);
                if let Some(r) = self.rooms.get_mut(&room) {
                    let others: Arc<[SessionId]> = r
                        .members
                        .keys()
                        .copied()
                        .filter(|s| Some(*s) != setter_id)
                        .collect();
                    if !others.is_empty() {
                        out.push(Effect::Fanout { to: others, frame });
                    }
                }
                self.ack(setter, out);
            }
            Pending::Welcome { session } => {
                // A registration is durable: the session opens, and the other nodes hear the
                // user is online (a sign-in without registration announces at once).
                self.welcome(session, out);
                if let Some(s) = self.sessions.get(&session) {
                    let (key, name) = (s.key.clone(), s.name.clone());
                    self.announce(&key, &name, out);
                }
            }
            Pending::Contact {
                user,
                shown,
                name,
                phone,
                lamport,
                reply,
            } => {
                let change = crate::contacts::Change {
                    shown,
                    name,
                    phone,
                    lamport,
                };
                self.contact_changed(&user, change, reply, out)
            }
        }
    }

    /// A queued direct message is durable: if its recipient came online meanwhile it is
    /// being delivered live, so it leaves the inbox; otherwise it waits there, now durable.
    pub(crate) fn settle_inbox(&mut self, user: &str, origin: &str, oseq: u64) {
        let online = self.users.contains_key(user);
        let Some(queue) = self.inbox.get_mut(user) else {
            return;
        };
        let Some(pos) = queue
            .iter()
            .position(|q| q.origin == origin && q.oseq == oseq)
        else {
            return;
        };
        if online {
            queue.remove(pos);
            if queue.is_empty() {
                self.inbox.remove(user);
            }
            let body = OpBody::InboxDelivered {
                user: user.to_string(),
                entries: vec![InboxEntry {
                    origin: origin.to_string(),
                    oseq,
                }],
            };
            self.persist(body, Pending::Nothing);
        } else {
            queue[pos].durable = true;
        }
    }

    /// Acknowledges a message of this node once it is on disk here and, when any peer is up,
    /// on a peer's disk too: then losing any one node loses no acknowledged message.
    fn ack_when_replicated(
        &mut self,
        oseq: u64,
        ack: Option<(SessionId, bytes::Bytes)>,
        out: &mut Vec<Effect>,
    ) {
        let Some(ack) = ack else {
            return;
        };
        if self.disk_suffices() {
            // The single-node path: no queue to go through.
            self.ack(Some(ack), out);
        } else {
            self.acks_waiting.insert(oseq, ack);
            self.release_acks(out);
        }
    }

    /// Whether this node's disk is enough for an acknowledgement: no peer is up and no
    /// backplane stores ops.
    fn disk_suffices(&self) -> bool {
        self.peer_clocks.is_empty() && self.backplane_stored.is_none()
    }

    /// Sends the acknowledgements whose messages a peer that is up has stored (all of them
    /// when no peer is up), or that a reachable backplane has stored (`backplane.rs`).
    pub(crate) fn release_acks(&mut self, out: &mut Vec<Effect>) {
        let upto = if self.disk_suffices() {
            u64::MAX
        } else {
            self.peer_clocks
                .keys()
                .filter_map(|p| self.peer_stored.get(p))
                .copied()
                .max()
                .unwrap_or(0)
                .max(self.backplane_stored.unwrap_or(0))
        };
        while let Some(entry) = self.acks_waiting.first_entry() {
            if *entry.key() > upto {
                break;
            }
            let ack = entry.remove();
            self.ack(Some(ack), out);
        }
    }

    fn ack(&self, ack: Option<(SessionId, bytes::Bytes)>, out: &mut Vec<Effect>) {
        if let Some((session, frame)) = ack {
            if self.sessions.contains_key(&session) {
                out.push(Effect::Send { to: session, frame });
            }
        }
    }

    pub(crate) fn is_ready(&self, session: SessionId) -> bool {
        self.sessions.get(&session).is_some_and(|s| s.ready)
    }
}

/// Moves a stream's cursor past a delivered message.
pub(crate) fn advance(cursor: &mut switchboard_proto::Cursor, origin: String, oseq: u64) {
    let e = cursor.entry(origin).or_insert(0);
    *e = (*e).max(oseq);
}
