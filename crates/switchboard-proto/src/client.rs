//! Messages a client sends to a node over `/v1/ws`, one JSON object per text frame,
//! told apart by their `type` field. Every request may carry a `ref` that the reply echoes.

use serde::{Deserialize, Serialize};

use crate::{Cursor, Position};

/// A client-to-node message. See docs/protocol.md for an example of each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// The first message of every connection: protocol version and name. With a password, a
    /// registered name is opened, or an unregistered one is registered to this password.
    Hello {
        v: u32,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// Free text naming the client program, for logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
        /// Asks for `away` events. Opt-in, so that a client older than them never gets a
        /// frame it cannot read (older typed clients treat an unknown frame as an error).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        away_events: bool,
    },
    /// Join a room, creating it if new.
    Join {
        room: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Leave a room.
    Leave {
        room: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// List the rooms with their member counts and topics.
    Rooms {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Read (`topic` absent) or set a room's topic. Setting needs membership.
    Topic {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Send a text to a room (`room`) or to a user by name (`to`): exactly one of the two.
    Send {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        text: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Page through a room's (`room`) or a conversation's (`with`) history. `before` gives the
    /// newest page before that position; `after` the oldest messages the cursor does not
    /// cover (for catching up). Messages come back in stream order.
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<Position>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<Cursor>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Who is online: everyone, or the members of `room`.
    Who {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Whether a user exists and is online.
    Whois {
        name: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Sets the user's away message (all of the user's sessions, on every node), or clears it
    /// when `message` is absent, null or empty. At most `MAX_AWAY_BYTES`, one line.
    Away {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Application-level keepalive; answered with `pong`.
    Ping {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// List the signed-in (registered) user's contact book, sorted by name.
    Contacts {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Add a contact, or change its number.
    ContactSet {
        name: String,
        phone: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Remove a contact.
    ContactDelete {
        name: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reff: Option<String>,
    },
    /// Goodbye: the session ends at once and the user leaves presence.
    Bye {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// Every `type` this protocol version knows, to tell `unknown_type` from a malformed message.
pub const CLIENT_TYPES: &[&str] = &[
    "hello",
    "join",
    "leave",
    "rooms",
    "topic",
    "send",
    "history",
    "who",
    "whois",
    "away",
    "ping",
    "bye",
    "contacts",
    "contact_set",
    "contact_delete",
];

/// Runs `$e` with `$r` bound to the `ref` field of every request that has one, `$none` for
/// the others: the list of such requests is written once.
macro_rules! with_reff {
    ($msg:expr, $r:ident => $e:expr, $none:expr) => {
        match $msg {
            ClientMsg::Join { reff: $r, .. }
            | ClientMsg::Leave { reff: $r, .. }
            | ClientMsg::Rooms { reff: $r }
            | ClientMsg::Topic { reff: $r, .. }
            | ClientMsg::Send { reff: $r, .. }
            | ClientMsg::History { reff: $r, .. }
            | ClientMsg::Who { reff: $r, .. }
            | ClientMsg::Whois { reff: $r, .. }
            | ClientMsg::Away { reff: $r, .. }
            | ClientMsg::Ping { reff: $r }
            | ClientMsg::Contacts { reff: $r }
            | ClientMsg::ContactSet { reff: $r, .. }
            | ClientMsg::ContactDelete { reff: $r, .. } => $e,
            ClientMsg::Hello { .. } | ClientMsg::Bye { .. } => $none,
        }
    };
}

impl ClientMsg {
    /// The `ref` the client attached, if any, to echo in the reply.
    pub fn reff(&self) -> Option<&str> {
        with_reff!(self, r => r.as_deref(), None)
    }

    /// Attaches a `ref` (requests without one, `hello` and `bye`, are left as they are).
    pub fn set_reff(&mut self, value: String) {
        with_reff!(self, r => *r = Some(value), ())
    }
}
