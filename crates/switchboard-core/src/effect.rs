//! What the core asks its IO shell to do.
//!
//! Ops to make durable are not effects: they wait in the core, in order, until the store's
//! writer takes them ([`crate::Core::take_ops`]). Taking them under the same lock that made
//! them keeps the store's order equal to the order in which the core made them, which
//! [`crate::Core::committed`] relies on: it releases what waits on the first `count` ops.

use std::sync::Arc;

use bytes::Bytes;
use switchboard_proto::ErrorCode;

use crate::SessionId;

/// One instruction from the core to the server, carried out in the order given.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Queue an encoded frame to one session.
    Send { to: SessionId, frame: Bytes },
    /// Queue one encoded frame to many sessions: encoded once, shared by all.
    Fanout { to: Arc<[SessionId]>, frame: Bytes },
    /// A contact changed (set, or deleted when `phone` is `None`), here or on another node:
    /// for the seed 000 gateway, which forwards it to the original servers it links with.
    ContactChanged {
        /// The user's name as the change wrote it, case kept (seed 000 sends it as given).
        user: String,
        name: String,
        phone: Option<String>,
        /// The Lamport clock of the change's stamp: what seed 000 frames carry as its clock.
        lamport: u64,
        /// The session or seed 000 link the change came from, if it was made on this node:
        /// a link never hears back its own changes.
        by: Option<SessionId>,
    },
    /// Send a message to one peer.
    ToPeer {
        node: String,
        msg: switchboard_proto::peer::PeerMsg,
    },
    /// Send a message to every linked peer.
    ToPeers(switchboard_proto::peer::PeerMsg),
    /// Send `node` every stored op its version vector `vv` lacks, read from the store in
    /// batches (one catch-up per peer at a time).
    CatchUp {
        node: String,
        vv: std::collections::BTreeMap<String, u64>,
    },
    /// Send the session an error frame, then close it once its queue is flushed.
    Close {
        session: SessionId,
        code: ErrorCode,
        reason: String,
    },
}
