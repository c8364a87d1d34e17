//! Messages between nodes on a peer link (`/v1/peer`), one JSON object per text frame.
//!
//! The link opens with a versioned, mutual challenge-response: each side proves it holds the
//! cluster secret by an HMAC over the other side's fresh nonce, so the secret never crosses
//! the wire and a recorded handshake cannot be replayed. See docs/cluster.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ops::Op;

/// The peer protocol version, checked in the handshake.
pub const PEER_VERSION: u32 = 1;

/// Largest frame on a peer link: big enough for a batch of ops.
pub const MAX_PEER_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// A cluster member as gossiped between nodes: its name and the URL peers dial.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    pub node: String,
    pub url: String,
}

/// One user as seen by the node they are connected to: the cluster-wide directory is every
/// node's announcements of its own users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPresence {
    pub name: String,
    /// False when the user's last session on the announcing node ended.
    pub online: bool,
    pub registered: bool,
    /// When the user signed in on that node (ms): of two guests who took the same name on
    /// two sides of a partition, the earlier keeps it.
    pub since: crate::Millis,
    /// The rooms (display names) the user is in on that node.
    pub rooms: Vec<String>,
    /// (incarnation of the announcing node, announcement counter): a receiver ignores news
    /// older than what it has, so a delayed announcement never undoes a newer one.
    pub version: (u64, u64),
    /// The user's away state as the announcing node holds it. Optional on the wire (a node
    /// older than away sends none and ignores it), so the peer version stays 1.
    #[serde(default, skip_serializing_if = "Away::is_unset")]
    pub away: Away,
}

/// A user's away state: the message (`None`: here) and when it was set. Away is one state
/// per user across all their sessions and nodes, so two settings meet by last writer wins:
/// the larger `at` (milliseconds, but never below one past what the setter's node had seen
/// for the user, so a later setting wins even under clock skew; ties go to the node name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Away {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// (time-like stamp, node that set it).
    pub at: (u64, String),
}

impl Away {
    /// Never set (or the default of a node that does not know away).
    pub fn is_unset(&self) -> bool {
        self.message.is_none() && self.at.0 == 0
    }
}

/// A node-to-node message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerMsg {
    /// Acceptor -> dialer, first frame: who I am and a fresh nonce to prove yourself against.
    Challenge { v: u32, node: String, nonce: String },
    /// Dialer -> acceptor: who I am, where I listen, my proof (HMAC over the acceptor's nonce),
    /// and my own nonce for the acceptor to prove itself.
    Prove {
        v: u32,
        node: String,
        url: String,
        nonce: String,
        mac: String,
    },
    /// Acceptor -> dialer: its proof over the dialer's nonce, and the members it knows.
    Accepted {
        node: String,
        mac: String,
        members: Vec<Member>,
    },
    /// Either side: the handshake failed (wrong secret, version, duplicate name).
    Refused { reason: String },
    /// Either side, every heartbeat interval: liveness, the sender's Lamport clock (seed 000),
    /// the members it knows (so that a node given one peer learns the rest), and its version
    /// vector (so that a peer that has more sends the difference: anti-entropy).
    Heartbeat {
        clock: u64,
        members: Vec<Member>,
        #[serde(default)]
        vv: BTreeMap<String, u64>,
    },
    /// "Here is what I hold (origin -> highest op sequence); send me what I lack." Sent when a
    /// link comes up and whenever a gap shows (seed 000's AskForUpdate, done right).
    Sync { vv: BTreeMap<String, u64> },
    /// Ops, each origin's in order: live ones as they become durable, or a catch-up batch.
    Ops { ops: Vec<Op> },
    /// The sender vouches that its later ops will be stamped above `clock`: sent after
    /// applying others' ops, so that their messages become deliverable everywhere quickly.
    Clock {
        clock: u64,
        /// What the sender has on disk: origin -> highest op sequence. A node acknowledges a
        /// message to its sender once one peer has stored it, so the loss of one node never
        /// loses an acknowledged message.
        #[serde(default)]
        stored: BTreeMap<String, u64>,
    },
    /// Who is connected to the sender: everyone (`snapshot`, when a link comes up) or the
    /// users whose state just changed.
    Presence {
        snapshot: bool,
        users: Vec<UserPresence>,
    },
    /// A direct message from `from` could not be handed to `to` on the sending node: every
    /// node tells `from`'s sessions (ServerMsg::Undelivered).
    Undelivered {
        from: String,
        to: String,
        id: String,
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_shape() {
        let m = PeerMsg::Heartbeat {
            clock: 7,
            members: vec![Member {
                node: "a".into(),
                url: "ws://127.0.0.1:1".into(),
            }],
            vv: BTreeMap::from([("a".to_string(), 3)]),
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(
            text,
            r#"{"type":"heartbeat","clock":7,"members":[{"node":"a","url":"ws://127.0.0.1:1"}],"vv":{"a":3}}"#
        );
        assert_eq!(serde_json::from_str::<PeerMsg>(&text).unwrap(), m);
    }

    /// An announcement without `away` (from a node older than away) reads as never set, and
    /// one with it keeps it: the field is optional both ways, so the peer version stays 1.
    #[test]
    fn presence_away_is_optional() {
        let old = r#"{"type":"presence","snapshot":true,"users":[{"name":"a","online":true,"registered":false,"since":1,"rooms":[],"version":[1,2]}]}"#;
        let PeerMsg::Presence { users, .. } = serde_json::from_str(old).unwrap() else {
            panic!("not presence");
        };
        assert!(users[0].away.is_unset());
        let mut p = users[0].clone();
        p.away = Away {
            message: Some("lunch".into()),
            at: (5, "n1".into()),
        };
        let text = serde_json::to_string(&p).unwrap();
        assert!(
            text.ends_with(r#""away":{"message":"lunch","at":[5,"n1"]}}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<UserPresence>(&text).unwrap(), p);
    }
}
