//! Durability: when the store reports ops on disk, release what waited on them.

use std::sync::Arc;

use crate::core::Pending;
use crate::{Core, Effect, InboxEntry, OpBody, SessionId};

impl Core {
    /// The store made the next `count` ops durable (ops are committed in the order they
    /// were emitted). Deliveries and acknowledgements waiting on them go out now, to the
    /// members as they are now: someone who joined after the message was accepted but
    /// before it was durable gets it live, since their `joined.cursor` did not cover it.
    pub fn committed(&mut self, count: usize, out: &mut Vec<Effect>) {
        for _ in 0..count {
            let Some(pending) = self.pending.pop_front() else {
                return;
            };
            self.release(pending, out);
        }
    }

    fn release(&mut self, pending: Pending, out: &mut Vec<Effect>) {
        match pending {
            Pending::Nothing => {}
            Pending::RoomMessage {
                room,
                origin,
                oseq,
                frame,
                ack,
            } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    advance(&mut r.cursor, origin, oseq);
                    if !r.members.is_empty() {
                        out.push(Effect::Fanout {
                            to: r.member_slice(),
                            frame,
                        });
                    }
                }
                self.ack(ack, out);
            }
            Pending::DirectMessage {
                stream,
                origin,
                oseq,
                frame,
                ack,
                users,
                queued_for,
            } => {
                if let Some(dm) = self.dms.get_mut(&stream) {
                    advance(&mut dm.cursor, origin.clone(), oseq);
                }
                let mut to: Vec<SessionId> = Vec::new();
                for key in users.iter() {
                    if let Some(u) = self.users.get(key) {
                        to.extend(u.sessions.iter().filter(|s| self.is_ready(**s)));
                    }
                }
                to.sort_unstable();
                to.dedup();
                if let Some(user) = queued_for {
                    self.settle_inbox(&user, &origin, oseq);
                }
                if !to.is_empty() {
                    out.push(Effect::Fanout {
                        to: Arc::from(to),
                        frame,
                    });
                }
                self.ack(ack, out);
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
    fn settle_inbox(&mut self, user: &str, origin: &str, oseq: u64) {
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

    fn is_ready(&self, session: SessionId) -> bool {
        self.sessions.get(&session).is_some_and(|s| s.ready)
    }
}

/// Moves a stream's cursor past a delivered message.
fn advance(cursor: &mut switchboard_proto::Cursor, origin: String, oseq: u64) {
    let e = cursor.entry(origin).or_insert(0);
    *e = (*e).max(oseq);
}
