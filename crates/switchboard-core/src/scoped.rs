//! Scoped streams: partial replication for a backplane that routes messages by interest
//! (NATS, `backplane/` in the server), so that a node receives the messages of the rooms its
//! own users are in and of the conversations of its own users, not every stream's.
//!
//! Ops then travel on two paths, each in its origin's order:
//!
//! - **Global ops** (accounts, rooms, topics, contacts, inbox receipts, and direct messages
//!   queued for an offline recipient, who may sign in anywhere) still reach every node. They
//!   are applied per origin in order, but an origin's sequence numbers now have holes (its
//!   scoped messages): each batch names `prev`, the origin's global op before it, and the
//!   batch follows when this node holds that one. The version vector (`vv`) and `stored`
//!   count global ops only, so they still say "every op of that origin up to here that this
//!   node should hold".
//! - **Scoped messages** (room messages, and direct messages to a recipient online somewhere)
//!   arrive per stream. A stream remembers, per origin, the newest of its messages applied
//!   (`received`); a message at or below it is a duplicate, and one whose `prev` (the
//!   origin's message in this stream before it) is above it reveals a gap, which the backplane
//!   fills from the stream store before going on. Direct messages are not held back (see
//!   `Core::deliver`), so they need no vouches.
//!
//! Vouches (order.rs) come only from the origin's connection: its heartbeats, its `clock`
//! messages and its live room messages (vouched for by the transport, per batch), which
//! travel in one order. A global op does not
//! vouch for its origin's clock here, as it does on the mesh: it comes through JetStream,
//! possibly ahead of a room message the origin sent before it.
//!
//! Everything else (persisting, the hold-back order of order.rs, delivery, cursors, history)
//! is the same as for fully replicated ops.

use std::collections::BTreeMap;

use switchboard_proto::{encode_server, Millis, ServerMsg};

use crate::{Core, Effect, Op, OpBody, Skipped};

impl Core {
    /// Switches this node to scoped streams; `global_vv` is what the store holds of each
    /// origin's global ops. Called once, before any op.
    pub fn scope_streams(&mut self, global_vv: BTreeMap<String, u64>) {
        self.scoped = true;
        self.vv = global_vv;
        // This node's own entry of `stored` still counts every op it wrote: its publisher
        // reads from there what it has yet to publish.
        let own = self.stored.get(&self.cfg.node).copied();
        self.stored = self.vv.clone();
        if let Some(own) = own {
            self.stored.insert(self.cfg.node.clone(), own);
        }
    }

    /// Global ops of `origin` that follow its global op `prev`, in order.
    pub fn apply_global(
        &mut self,
        origin: &str,
        prev: u64,
        ops: Vec<Op>,
        now: Millis,
        out: &mut Vec<Effect>,
    ) -> Result<(), Skipped> {
        let have = self.vv.get(origin).copied().unwrap_or(0);
        if prev > have {
            return Err(Skipped::Gap { have });
        }
        for op in ops {
            let have = self.vv.get(origin).copied().unwrap_or(0);
            if op.meta.oseq <= have {
                continue;
            }
            // The holes before it are scoped messages, which come their own way.
            self.vv.insert(origin.to_string(), op.meta.oseq - 1);
            if let Err(Skipped::Gap { have }) = self.apply_remote(op, now, out) {
                return Err(Skipped::Gap { have });
            }
        }
        self.ops_applied(out);
        Ok(())
    }

    /// Scoped messages of `origin` (room messages, and direct messages not queued), of one
    /// stream, in its order. `prev`, when known, is the origin's message in that stream
    /// before the first one; each later one follows the one before it.
    ///
    /// They vouch for nothing: the transport vouches for their origin's clock once it knows
    /// no earlier message of that origin can still come (see the server's
    /// `backplane/interest.rs`); a backfill never does, newer ones may still be on their way.
    pub fn apply_scoped(
        &mut self,
        origin: &str,
        prev: Option<u64>,
        ops: Vec<Op>,
        out: &mut Vec<Effect>,
    ) -> Result<usize, Skipped> {
        let mut applied = 0;
        let mut prev = prev;
        for op in ops {
            if !Core::is_scoped(&op) || op.meta.origin != origin || origin == self.cfg.node {
                continue;
            }
            let OpBody::Message { msg, .. } = &op.body else {
                continue;
            };
            let have = self.received(&msg.stream, origin);
            if op.meta.oseq <= have {
                prev = Some(op.meta.oseq);
                continue;
            }
            if prev.is_some_and(|p| p > have) {
                return Err(Skipped::Gap { have });
            }
            prev = Some(op.meta.oseq);
            self.observe_clock(op.meta.lamport);
            let frame = encode_server(&ServerMsg::Message(msg.clone()));
            let msg = msg.clone();
            let pending = match &msg.room {
                Some(room) => {
                    let pending = self.room_pending(room, &msg, frame);
                    if let Some(r) = self.rooms.get_mut(&msg.stream) {
                        r.received.insert(origin.to_string(), op.meta.oseq);
                    }
                    pending
                }
                None => {
                    let pending = self.direct_pending(&msg, None, frame);
                    if let Some(d) = self.dms.get_mut(&msg.stream) {
                        d.received.insert(origin.to_string(), op.meta.oseq);
                    }
                    pending
                }
            };
            self.push_op(op, pending);
            applied += 1;
        }
        if applied > 0 {
            self.ops_applied(out);
        }
        Ok(applied)
    }

    /// The newest message of `origin` in a stream this node holds (applied or delivered).
    fn received(&self, stream: &str, origin: &str) -> u64 {
        let of = |received: &switchboard_proto::Cursor, cursor: &switchboard_proto::Cursor| {
            let r = received.get(origin).copied().unwrap_or(0);
            r.max(cursor.get(origin).copied().unwrap_or(0))
        };
        if let Some(r) = self.rooms.get(stream) {
            of(&r.received, &r.cursor)
        } else if let Some(d) = self.dms.get(stream) {
            of(&d.received, &d.cursor)
        } else {
            0
        }
    }

    /// Whether `op` travels by interest when streams are scoped: a room message, or a
    /// direct message not queued for an offline recipient.
    pub fn is_scoped(op: &Op) -> bool {
        matches!(
            &op.body,
            OpBody::Message { msg, queued_for } if msg.room.is_some() || queued_for.is_none()
        )
    }

    /// The keys of the users with sessions on this node: whose conversations it needs.
    pub fn local_users(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    /// The keys of the rooms with members on this node: what it needs to receive.
    pub fn local_rooms(&self) -> Vec<String> {
        self.rooms
            .iter()
            .filter(|(_, r)| !r.members.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Whether every op handed to the writer up to `mark` (a value of [`Core::ops_mark`]) is
    /// on disk.
    pub fn written_through(&self, mark: u64) -> bool {
        self.ops_committed >= mark
    }

    /// How many ops were handed to the writer so far.
    pub fn ops_mark(&self) -> u64 {
        self.ops_pushed
    }
}
