//! Switchboard's chat domain as a sans-IO state machine.
//!
//! [`Core`] holds the directory of sessions and users, the rooms, the streams' sequence
//! counters, the accounts and the offline inboxes. The server feeds it commands (with the
//! current time) and carries out the [`Effect`]s it returns: queue these bytes to these
//! sessions, make this op durable, close that session. It does no IO, so the same code runs
//! under the deterministic tests.

mod away;
mod backplane;
pub mod cluster;
mod commit;
mod contacts;
mod core;
mod direct;
mod directory;
mod effect;
mod order;
mod peering;
mod presence;
mod queries;
mod replica;
mod rooms;
mod scoped;

pub use crate::core::{Auth, Config, Core, Restore, SessionId, Stamp, MAX_PENDING};
pub use crate::queries::Census;
pub use contacts::BookEntry;
pub use effect::Effect;
pub use replica::Skipped;
pub use switchboard_proto::ops::{InboxEntry, Op, OpBody, OpMeta};
