//! Positions in a stream that mean the same on every node.
//!
//! A stream's messages are totally ordered by (Lamport clock, origin node). A client's
//! progress through a stream is a [`Cursor`]: for each origin node, the highest origin
//! sequence number it has seen in that stream. Each origin's messages reach every node in
//! their origin order, so a cursor says exactly which messages a client has, whichever node
//! it talks to: resuming is "send me what my cursor does not cover".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ChatMessage;

/// Origin node -> highest origin sequence number seen, in one stream.
pub type Cursor = BTreeMap<String, u64>;

/// A place in a stream's total order, for paging back through history.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub lamport: u64,
    pub origin: String,
}

impl ChatMessage {
    /// The message's place in its stream's order.
    pub fn position(&self) -> Position {
        Position {
            lamport: self.lamport,
            origin: self.origin.clone(),
        }
    }
}

/// Whether the cursor already covers the message.
pub fn covers(cursor: &Cursor, m: &ChatMessage) -> bool {
    cursor.get(&m.origin).is_some_and(|&o| o >= m.oseq)
}

/// Moves the cursor past the message.
pub fn advance(cursor: &mut Cursor, m: &ChatMessage) {
    let e = cursor.entry(m.origin.clone()).or_insert(0);
    *e = (*e).max(m.oseq);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(origin: &str, oseq: u64, lamport: u64) -> ChatMessage {
        ChatMessage {
            id: format!("{origin}-{oseq}"),
            stream: "#r".into(),
            from: "a".into(),
            room: Some("r".into()),
            to: None,
            text: "t".into(),
            ts: 0,
            lamport,
            origin: origin.into(),
            oseq,
        }
    }

    #[test]
    fn cursors_cover_per_origin() {
        let mut c = Cursor::new();
        let (a1, a2, b1) = (msg("a", 1, 1), msg("a", 2, 3), msg("b", 1, 2));
        assert!(!covers(&c, &a1));
        advance(&mut c, &a2);
        assert!(covers(&c, &a1) && covers(&c, &a2) && !covers(&c, &b1));
        advance(&mut c, &b1);
        assert_eq!(c, Cursor::from([("a".into(), 2), ("b".into(), 1)]));
        assert!(a1.position() < b1.position() && b1.position() < a2.position());
    }
}
