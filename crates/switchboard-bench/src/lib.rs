//! `switchboard-bench`: the load generator. It drives Switchboard over its native protocol,
//! and IRC servers and nats-server over theirs, with the same workload shapes (proto.rs), and
//! reports each run as a table and as one JSON line.
//!
//! Written so that it is not the bottleneck: one task per connection doing no parsing beyond
//! a byte scan for the send time (`t=<ns>;`) that every text carries, senders that feed whole
//! batches before flushing, and latencies kept as compact integers.

pub mod proto;
pub mod report;
pub mod workloads;

pub use proto::{Kind, Target};
pub use report::Report;
