//! What a backplane that stores ops itself (NATS with JetStream) tells the core, next to the
//! peer messages every transport delivers (`peering.rs`).
//!
//! On the mesh, a client's message is acknowledged once a peer reports it stored the op.
//! On NATS the op's durability beyond this node comes from JetStream, whose publish
//! acknowledgement says the stream (with as many replicas as the operator chose) holds it:
//! that acknowledgement releases the client's ack, like a peer's `stored` vector does.

use crate::{Core, Effect};

impl Core {
    /// The backplane is reachable and has stored this node's ops up to `oseq`: release the
    /// acknowledgements waiting on them. From now on acks wait for the backplane (or a peer)
    /// even when no peer is up.
    pub fn backplane_stored(&mut self, oseq: u64, out: &mut Vec<Effect>) {
        let b = self.backplane_stored.get_or_insert(0);
        *b = (*b).max(oseq);
        self.release_acks(out);
    }

    /// The backplane is unreachable: acks no longer wait for it (with no peer up either, the
    /// local disk suffices, and the node keeps serving its own users).
    pub fn backplane_unreachable(&mut self, out: &mut Vec<Effect>) {
        self.backplane_stored = None;
        self.release_acks(out);
    }

    /// The highest op of `origin` on this node's disk.
    pub fn stored_of(&self, origin: &str) -> u64 {
        self.stored.get(origin).copied().unwrap_or(0)
    }

    /// This node's version vector: every origin's highest op applied here.
    pub fn version_vector(&self) -> std::collections::BTreeMap<String, u64> {
        self.vv.clone()
    }

    /// The highest op of `origin` applied here (held in memory, maybe not yet on disk).
    pub fn holds_of(&self, origin: &str) -> u64 {
        self.vv.get(origin).copied().unwrap_or(0)
    }
}
