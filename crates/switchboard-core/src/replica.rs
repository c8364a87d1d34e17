//! Replication: ops accepted by other nodes are applied here, idempotently and per origin
//! in order, and folded into the chat state with merges that ignore arrival order:
//! messages take their place by (Lamport, origin), a name goes to its earliest registration,
//! a topic to its latest setting.

use bytes::Bytes;
use switchboard_proto::{encode_server, room_key, ChatMessage, ErrorCode, Millis, ServerMsg};

use crate::commit::Pending;
use crate::core::{Queued, Room};
use crate::{Core, Effect, Op, OpBody};

/// Why a remote op was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// Already held: nothing to do.
    Duplicate,
    /// An earlier op of the same origin is missing: ask the peer to catch up first.
    Gap { have: u64 },
}

impl Core {
    /// Applies an op accepted by another node. It is persisted like a local op, and what
    /// it changes for local clients (deliveries, topic changes) goes out once it is durable.
    pub fn apply_remote(
        &mut self,
        op: Op,
        now: Millis,
        out: &mut Vec<Effect>,
    ) -> Result<(), Skipped> {
        let _ = now;
        if op.meta.origin == self.cfg.node {
            // Our own op coming back (after a restart lost it? never: our store is the
            // source of our ops). Ignore.
            return Err(Skipped::Duplicate);
        }
        let have = self.vv.get(&op.meta.origin).copied().unwrap_or(0);
        if op.meta.oseq <= have {
            return Err(Skipped::Duplicate);
        }
        if op.meta.oseq > have + 1 {
            return Err(Skipped::Gap { have });
        }
        self.observe_clock(op.meta.lamport);
        // An op from its origin vouches for that origin's clock: its later ops come after.
        // (Not with scoped rooms, where ops of one origin come on two paths: scoped.rs.)
        if !self.scoped {
            self.vouch(&op.meta.origin, op.meta.lamport);
        }
        let stamp = (op.meta.lamport, op.meta.origin.clone());
        let pending = match &op.body {
            OpBody::Message { msg, queued_for } => {
                let frame = encode_server(&ServerMsg::Message(msg.clone()));
                match &msg.room {
                    Some(room) => self.room_pending(room, msg, frame),
                    None => self.direct_pending(msg, queued_for.clone(), frame),
                }
            }
            OpBody::Account { name, hash, .. } => {
                self.merge_account(name, hash, stamp, out);
                Pending::Nothing
            }
            OpBody::Room { room, .. } => {
                self.rooms
                    .entry(room_key(room))
                    .or_insert_with(|| Room::new(room.clone()));
                Pending::Nothing
            }
            OpBody::Topic {
                room,
                topic,
                by,
                ts,
            } => {
                let key = room_key(room);
                let r = self
                    .rooms
                    .entry(key.clone())
                    .or_insert_with(|| Room::new(room.clone()));
                if stamp > r.topic_at {
                    r.topic = topic.clone();
                    r.topic_at = stamp;
                    r.topic_by = Some((by.clone(), *ts));
                    let frame = encode_server(&ServerMsg::Topic {
                        reff: None,
                        room: r.name.clone(),
                        topic: topic.clone(),
                        by: Some(by.clone()),
                    });
                    Pending::Topic {
                        room: key,
                        frame,
                        setter: None,
                    }
                } else {
                    Pending::Nothing
                }
            }
            OpBody::ContactSet {
                user,
                name,
                phone,
                shown,
                ..
            } => self.contact_pending(user, shown, name, Some(phone.clone()), stamp),
            OpBody::ContactDelete {
                user, name, shown, ..
            } => self.contact_pending(user, shown, name, None, stamp),
            OpBody::InboxDelivered { user, entries } => {
                if let Some(q) = self.inbox.get_mut(user) {
                    q.retain(|e| {
                        !entries
                            .iter()
                            .any(|d| d.origin == e.origin && d.oseq == e.oseq)
                    });
                    if q.is_empty() {
                        self.inbox.remove(user);
                    }
                }
                Pending::Nothing
            }
        };
        self.push_op(op, pending);
        Ok(())
    }

    /// What a remote room message waits on: its room (created here if new) and its place.
    pub(crate) fn room_pending(&mut self, room: &str, msg: &ChatMessage, frame: Bytes) -> Pending {
        let key = room_key(room);
        self.rooms
            .entry(key.clone())
            .or_insert_with(|| Room::new(room.to_string()));
        Pending::RoomMessage {
            room: key,
            lamport: msg.lamport,
            origin: msg.origin.clone(),
            oseq: msg.oseq,
            frame,
            ack: None,
        }
    }

    /// What a remote direct message waits on: its conversation (created here if new), a
    /// place in its recipient's inbox when it was queued for them, and its delivery.
    pub(crate) fn direct_pending(
        &mut self,
        msg: &ChatMessage,
        queued_for: Option<String>,
        frame: Bytes,
    ) -> Pending {
        let to = msg.to.clone().unwrap_or_default();
        if !self.dms.contains_key(&msg.stream) {
            self.add_dm(
                msg.stream.clone(),
                msg.from.clone(),
                to.clone(),
                Default::default(),
            );
        }
        if let Some(user) = &queued_for {
            self.inbox
                .entry(user.clone())
                .or_default()
                .push_back(Queued {
                    origin: msg.origin.clone(),
                    oseq: msg.oseq,
                    frame: frame.clone(),
                    durable: false,
                });
        }
        Pending::DirectMessage {
            stream: msg.stream.clone(),
            lamport: msg.lamport,
            origin: msg.origin.clone(),
            oseq: msg.oseq,
            frame,
            ack: None,
            users: [msg.from.to_ascii_lowercase(), to.to_ascii_lowercase()],
            queued_for,
        }
    }

    /// Folds a remote contact op; local sessions of the user hear of it if it changed the book.
    fn contact_pending(
        &mut self,
        user: &str,
        shown: &Option<String>,
        name: &str,
        phone: Option<String>,
        at: crate::Stamp,
    ) -> Pending {
        let lamport = at.0;
        let shown = shown.clone().unwrap_or_else(|| user.to_string());
        if self.merge_contact(user, &shown, name, phone.clone(), at) {
            Pending::Contact {
                user: user.to_string(),
                shown,
                name: name.to_string(),
                phone,
                lamport,
                reply: None,
            }
        } else {
            Pending::Nothing
        }
    }

    /// Two nodes registered the same name: the earliest registration by (Lamport, origin)
    /// keeps it everywhere. Local sessions that signed in under the losing one are told and
    /// closed; they can sign in again with the winning password.
    fn merge_account(
        &mut self,
        name: &str,
        hash: &str,
        stamp: crate::Stamp,
        out: &mut Vec<Effect>,
    ) {
        let key = name.to_ascii_lowercase();
        if let Some(existing) = self.account_at.get(&key) {
            if *existing <= stamp {
                return;
            }
            if let Some(user) = self.users.get(&key) {
                for &session in &user.sessions {
                    out.push(Effect::Close {
                        session,
                        code: ErrorCode::AuthFailed,
                        reason: format!("{name} was registered on another node first; sign in with that password"),
                    });
                }
            }
        } else if let Some(user) = self.users.get(&key) {
            // A guest holds the name here while it was registered elsewhere: the account wins.
            let guests: Vec<_> = user
                .sessions
                .iter()
                .copied()
                .filter(|s| self.sessions.get(s).is_some_and(|s| !s.registered))
                .collect();
            for session in guests {
                out.push(Effect::Close {
                    session,
                    code: ErrorCode::NameInUse,
                    reason: format!("{name} is now a registered name; pick another or sign in"),
                });
            }
        }
        self.account_at.insert(key.clone(), stamp);
        self.accounts
            .insert(key, (name.to_string(), hash.to_string()));
    }
}
