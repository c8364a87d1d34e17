//! Ops: every durable change, with its origin, the origin's sequence number and a Lamport
//! clock, so that the cluster can replicate them and every node fold them the same way.
//! They are stored by every node and sent between nodes as they are.

use crate::{ChatMessage, Millis};
use serde::{Deserialize, Serialize};

/// Where and when an op was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpMeta {
    /// The node that accepted the op.
    pub origin: String,
    /// That node's sequence number for it: 1, 2, 3... with no gaps.
    pub oseq: u64,
    /// The Lamport clock when it was accepted.
    pub lamport: u64,
}

/// A durable change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub meta: OpMeta,
    pub body: OpBody,
}

/// A message waiting in a registered user's offline inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    pub origin: String,
    pub oseq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpBody {
    /// A chat message; `queued_for` names (by key) a registered recipient who was offline,
    /// whose inbox holds the message until they sign in.
    Message {
        msg: ChatMessage,
        queued_for: Option<String>,
    },
    /// A name registered with an argon2id password hash (PHC string).
    Account {
        name: String,
        hash: String,
        ts: Millis,
    },
    /// A room came into existence.
    Room { room: String, ts: Millis },
    /// A room's topic was set (or cleared).
    Topic {
        room: String,
        topic: Option<String>,
        by: String,
        ts: Millis,
    },
    /// A contact of a user's book was set: a last-writer-wins register per (user, contact),
    /// ordered by (Lamport clock, origin).
    ContactSet {
        /// The book: the user's name key (lowercase).
        user: String,
        name: String,
        phone: String,
        ts: Millis,
        /// The user's name as the change wrote it, when its case differs from `user`: seed
        /// 000's wire carries user names as given ("Beloin"), and a node forwarding this change
        /// to an original server must send what was written, not the key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shown: Option<String>,
    },
    /// A contact was deleted: a tombstone in the same register, so that an older update
    /// arriving late cannot bring it back.
    ContactDelete {
        /// The book: the user's name key (lowercase).
        user: String,
        name: String,
        ts: Millis,
        /// As in `ContactSet`: the user's name as written, when it differs from `user`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shown: Option<String>,
    },
    /// Inbox entries of a user were delivered and may be forgotten.
    InboxDelivered {
        user: String,
        entries: Vec<InboxEntry>,
    },
}
