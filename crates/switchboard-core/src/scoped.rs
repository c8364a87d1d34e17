//! Scoped rooms: partial replication for a backplane that routes room messages by interest
//! (NATS, `backplane/` in the server), so that a node receives the messages of the rooms its
//! own users are in, not every room's.
//!
//! Ops then travel on two paths, each in its origin's order:
//!
//! - **Global ops** (accounts, rooms, topics, contacts, direct messages, inbox receipts)
//!   still reach every node. They are applied per origin in order, but an origin's sequence
//!   numbers now have holes (its room messages): each batch names `prev`, the origin's global
//!   op before it, and the batch follows when this node holds that one. The version vector
//!   (`vv`) and `stored` count global ops only, so they still say "every op of that origin up
//!   to here that this node should hold".
//! - **Room messages** arrive per room. A room remembers, per origin, the newest of its
//!   messages applied (`Room::received`); a message at or below it is a duplicate, and one
//!   whose `prev` (the origin's message in this room before it) is above it reveals a gap,
//!   which the backplane fills from the stream before going on.
//!
//! Vouches (order.rs) come only from the origin's connection: its heartbeats, its `clock`
//! messages and its live room messages, which travel in one order. A global op does not
//! vouch for its origin's clock here, as it does on the mesh: it comes through JetStream,
//! possibly ahead of a room message the origin sent before it.
//!
//! Everything else (persisting, the hold-back order of order.rs, delivery, cursors, history)
//! is the same as for fully replicated ops.

use std::collections::BTreeMap;

use switchboard_proto::{encode_server, Millis, ServerMsg};

use crate::{Core, Effect, Op, OpBody, Skipped};

impl Core {
    /// Switches this node to scoped rooms; `global_vv` is what the store holds of each origin's
    /// global ops. Called once, before any op.
    pub fn scope_rooms(&mut self, global_vv: BTreeMap<String, u64>) {
        self.scoped = true;
        let own = self.vv.get(&self.cfg.node).copied();
        self.vv = global_vv;
        if let Some(own) = own {
            self.vv.insert(self.cfg.node.clone(), own);
        }
        self.stored = self.vv.clone();
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
            // The holes before it are room messages, which come their own way.
            self.vv.insert(origin.to_string(), op.meta.oseq - 1);
            if let Err(Skipped::Gap { have }) = self.apply_remote(op, now, out) {
                return Err(Skipped::Gap { have });
            }
        }
        self.ops_applied(out);
        Ok(())
    }

    /// Room messages of `origin`, in its order, for one room or several. `prev`, when known,
    /// is the origin's message in the first one's room before it; each later message of the
    /// same room follows the one before it in the batch.
    ///
    /// `live` says they come on the origin's own connection, in order with its vouches: then
    /// each one vouches for its origin's clock, as on the mesh. Messages read back from the
    /// stream (a backfill) do not: newer ones may still be on their way live.
    pub fn apply_room_messages(
        &mut self,
        origin: &str,
        prev: Option<u64>,
        ops: Vec<Op>,
        live: bool,
        out: &mut Vec<Effect>,
    ) -> Result<usize, Skipped> {
        let mut applied = 0;
        let mut prev = prev;
        for op in ops {
            let OpBody::Message { msg, .. } = &op.body else {
                continue;
            };
            let Some(room) = msg.room.clone() else {
                continue;
            };
            if op.meta.origin != origin || origin == self.cfg.node {
                continue;
            }
            let key = switchboard_proto::room_key(&room);
            let have = self.rooms.get(&key).map_or(0, |r| {
                let received = r.received.get(origin).copied().unwrap_or(0);
                received.max(r.cursor.get(origin).copied().unwrap_or(0))
            });
            if op.meta.oseq <= have {
                prev = Some(op.meta.oseq);
                continue;
            }
            if prev.is_some_and(|p| p > have) {
                return Err(Skipped::Gap { have });
            }
            prev = Some(op.meta.oseq);
            self.observe_clock(op.meta.lamport);
            if live {
                self.vouch(origin, op.meta.lamport);
            }
            let frame = encode_server(&ServerMsg::Message(msg.clone()));
            let msg = msg.clone();
            let pending = self.room_pending(&room, &msg, frame);
            if let Some(r) = self.rooms.get_mut(&key) {
                r.received.insert(origin.to_string(), op.meta.oseq);
            }
            self.push_op(op, pending);
            applied += 1;
        }
        if applied > 0 {
            self.ops_applied(out);
        }
        Ok(applied)
    }

    /// Whether `op` travels by interest when scoped: a room message.
    pub fn is_scoped(op: &Op) -> bool {
        matches!(&op.body, OpBody::Message { msg, .. } if msg.room.is_some())
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
