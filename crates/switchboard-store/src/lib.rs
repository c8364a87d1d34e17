//! Switchboard's durable store: the [`Store`] trait, the embedded SQLite implementation that
//! nodes run on, and an in-memory one for tests; one test suite runs on both.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

use std::collections::BTreeMap;

use switchboard_core::{Op, Restore};
use switchboard_proto::{ChatMessage, Cursor, Millis, Position};

/// Why the store failed. A store error is a node fault (disk full, corruption), never a
/// client's: the node logs it and tells clients only `internal`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored op does not decode: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Which page of a stream's history to read. Streams are ordered by (Lamport clock, origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// The newest `limit` messages before a position (or the newest of all when `None`).
    Before(Option<Position>),
    /// The first `limit` messages, in stream order, that the cursor does not cover.
    After(Cursor),
    /// The messages strictly between two bounds, in stream order: the first `limit` from the
    /// lower end, or (`newest`) the last `limit` up to the upper end. IRC's CHATHISTORY names
    /// places by msgid or by time, and pages either way from either (BETWEEN, AROUND).
    Between {
        after: Bound,
        before: Bound,
        newest: bool,
    },
}

/// One end of a [`Page::Between`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// No bound: the stream's start or end.
    Open,
    /// A message's place, the message itself outside the range.
    Position(Position),
    /// A message's place, the message itself inside the range (AROUND's centre).
    Including(Position),
    /// A time in milliseconds, messages accepted in that millisecond outside the range. Time
    /// filters rather than cuts: a message is in when its own time is, wherever clock skew
    /// between nodes put it in the stream's order.
    Time(Millis),
}

impl Bound {
    /// Whether `m` lies on the upper side of this bound (it is a lower bound).
    pub fn below(&self, m: &ChatMessage) -> bool {
        match self {
            Bound::Open => true,
            Bound::Position(p) => m.position() > *p,
            Bound::Including(p) => m.position() >= *p,
            Bound::Time(t) => m.ts > *t,
        }
    }

    /// Whether `m` lies on the lower side of this bound (it is an upper bound).
    pub fn above(&self, m: &ChatMessage) -> bool {
        match self {
            Bound::Open => true,
            Bound::Position(p) => m.position() < *p,
            Bound::Including(p) => m.position() <= *p,
            Bound::Time(t) => m.ts < *t,
        }
    }
}

/// A page of history: messages in stream order, and whether more lie beyond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub messages: Vec<ChatMessage>,
    pub more: bool,
}

/// Durable storage of ops and the state folded from them.
///
/// `append` is called by one writer at a time (the node's group-commit task); `history` may
/// be called from any thread while appends go on.
pub trait Store: Send + Sync {
    /// Reads everything the core needs to start, for the node named `node`.
    fn load(&self, node: &str) -> Result<Restore, StoreError>;
    /// Makes a batch of ops durable, all or nothing, in one transaction and one fsync.
    /// `clock` is the node's Lamport clock when it took the batch: stored with it, so that the
    /// clock never goes back after a restart, even past values it only heard of.
    fn append(&self, ops: &[Op], clock: u64) -> Result<(), StoreError>;
    /// Reads a page of a stream, skipping messages older than `floor` (milliseconds).
    fn history(
        &self,
        stream: &str,
        page: Page,
        limit: u32,
        floor: Millis,
    ) -> Result<HistoryPage, StoreError>;
    /// Every stored op of any origin past the version vector `vv` (origin -> highest oseq the
    /// asker holds), each origin's in oseq order, at most `limit` in all: what a peer lacks.
    fn ops_since(&self, vv: &BTreeMap<String, u64>, limit: usize) -> Result<Vec<Op>, StoreError>;
    /// The stored ops of one origin after `after`, in oseq order, at most `limit`: what a
    /// node republishes of its own, or sends a peer of its own (the NATS backplane).
    fn ops_of(&self, origin: &str, after: u64, limit: usize) -> Result<Vec<Op>, StoreError>;
    /// The newest message of `origin` in `stream` below oseq `before` (0: none): what a
    /// node's first message in a stream this run follows, for its `Sb-Prev` (NATS).
    fn prev_in_stream(&self, stream: &str, origin: &str, before: u64) -> Result<u64, StoreError>;
    /// Each origin's highest stored global op (not a room message, nor a direct message to
    /// a recipient who was online): the version vector of a node whose messages travel by
    /// interest (`Core::scope_streams`).
    fn global_vv(&self) -> Result<BTreeMap<String, u64>, StoreError>;
    /// Background upkeep, called now and then from a thread of its own so that it never
    /// delays a commit (SQLite: checkpointing the write-ahead log).
    fn maintain(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod suite;
