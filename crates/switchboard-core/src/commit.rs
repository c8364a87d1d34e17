//! Durability: when the store reports ops on disk, release what waited on them.

use std::sync::Arc;

use crate::core::Pending;
use crate::order::Held;
use crate::{Core, Effect, InboxEntry, OpBody, SessionId};

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
        for _ in 0..count {
            let Some(pending) = self.pending.pop_front() else {
                break;
            };
            self.release(pending, out);
        }
        self.deliver_stable(out);
        if !self.peer_clocks.is_empty() {
            if let Some(clock) = self.clock_to_tell() {
                out.push(Effect::ToPeers(switchboard_proto::peer::PeerMsg::Clock {
                    clock,
                }));
            }
        }
    }

    fn release(&mut self, pending: Pending, out: &mut Vec<Effect>) {
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
                self.ack(ack, out);
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
                self.ack(ack, out);
                let held = Held::Direct {
                    stream,
                    oseq,
                    frame,
                    users,
                    queued_for,
                };
                self.hold((lamport, origin), held, out);
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
            Pending::Welcome { session } => self.welcome(session, out),
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
