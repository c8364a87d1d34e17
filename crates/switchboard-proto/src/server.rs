//! Messages a node sends to a client over `/v1/ws`, one JSON object per text frame.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Cursor, ErrorCode, Millis};

/// One chat message as stored and delivered: to a room (`room`) or to a user (`to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Globally unique id: `origin-oseq`.
    pub id: String,
    /// The stream the message belongs to: `#room` or `@alice:bob`.
    pub stream: String,
    /// The sender's name.
    pub from: String,
    /// The room's display name (without `#`), for room messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The recipient's name, for direct messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub text: String,
    /// When the node accepted it, in milliseconds since the Unix epoch.
    pub ts: Millis,
    /// The Lamport clock when accepted: with `origin`, its place in the stream's order.
    pub lamport: u64,
    /// The node that accepted it.
    pub origin: String,
    /// That node's sequence number for it (per node, across all streams, no gaps).
    pub oseq: u64,
}

/// One contact of a book. `online` tells whether a Switchboard user of that name is online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactInfo {
    pub name: String,
    pub phone: String,
    pub online: bool,
}

/// A room as listed by `rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub room: String,
    pub members: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// A two-person conversation of a registered user, listed in `welcome` so that a returning
/// client can see which conversations moved on while it was away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmInfo {
    pub with: String,
    pub stream: String,
    /// What the node has of the conversation.
    pub cursor: Cursor,
}

/// The limits a client must respect, announced in `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_frame_bytes: u32,
    pub max_text_bytes: u32,
    /// Sustained messages per second allowed from one connection.
    pub rate_per_sec: u32,
    /// Messages a connection may send in a burst above the sustained rate.
    pub burst: u32,
}

/// A node-to-client message. See docs/protocol.md for an example of each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The answer to `hello`: the session is open.
    Welcome {
        v: u32,
        node: String,
        name: String,
        registered: bool,
        session: u64,
        limits: Limits,
        #[serde(default)]
        dms: Vec<DmInfo>,
    },
    /// Joined a room; `cursor` covers every message already delivered in the room: those
    /// are in history, and every message it does not cover will be delivered live.
    Joined {
        room: String,
        cursor: Cursor,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        members: Vec<String>,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Left a room.
    Left {
        room: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// A chat message, to a room the client is in or to the client's user.
    Message(ChatMessage),
    /// The sender's acknowledgement: the message is on disk with this id. `queued` is true
    /// for a direct message to a registered user who is offline: it will be delivered at
    /// their next sign-in.
    Ack {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
        id: String,
        stream: String,
        lamport: u64,
        ts: Millis,
        #[serde(default)]
        queued: bool,
    },
    /// A page of history in stream order; `more` says older (for `before`) or not yet
    /// covered (for `after`) messages remain.
    History {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
        stream: String,
        messages: Vec<ChatMessage>,
        more: bool,
    },
    /// Someone came into or went out of a room the client is in.
    Presence {
        room: String,
        name: String,
        event: PresenceEvent,
    },
    /// The list of rooms.
    Rooms {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
        rooms: Vec<RoomInfo>,
    },
    /// A room's topic, as asked for or because it changed (`by` who).
    Topic {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Who is online (in `room`, or anywhere).
    Who {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        users: Vec<String>,
        /// The away messages of the users listed who are away, by name (absent: nobody is).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        away: BTreeMap<String, String>,
    },
    /// Whether a user exists and is online.
    Whois {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
        name: String,
        online: bool,
        registered: bool,
        #[serde(default)]
        rooms: Vec<String>,
        /// The user's away message, when they are online and away.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        away: Option<String>,
    },
    /// `name` went away (`message` present) or came back (absent): the reply to `away` (with
    /// its `ref`), and an event (without) to the user's other sessions and to the sessions
    /// that share a room with them, on every node, when they asked for it in `hello`. Also
    /// sent to a room's members after `presence` `join` when the joiner is away.
    Away {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Pong {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// A refusal. Errors that end the connection are followed by a close.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// The node is going away (seed 002's EXIT): the connection closes right after.
    Shutdown { reason: String },
    /// A direct message this user sent (`id`) could not be handed to `to`, a gateway client
    /// (seed 002's relay) that stopped answering: `to` is now offline, and the message stays
    /// in the conversation's history. Sent to every session of the sender, on every node.
    Undelivered {
        to: String,
        id: String,
        reason: String,
    },
    /// The user's contact book, sorted by name.
    Contacts {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
        contacts: Vec<ContactInfo>,
    },
    /// A contact was set (`phone` present) or deleted (`phone` absent): the reply to the
    /// request (with its `ref`), and news to the user's other sessions.
    Contact {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone: Option<String>,
    },
}

/// What happened in a presence event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceEvent {
    Join,
    Leave,
}
