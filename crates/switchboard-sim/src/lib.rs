//! A deterministic simulator of a Switchboard cluster.
//!
//! It runs the real sans-IO [`Core`]s of several nodes, each with an in-memory store, over a
//! simulated network driven by one seeded random generator (`net.rs`): frames arrive after
//! random delays; single frames of any kind are lost on a live link, duplicated (the copy
//! possibly much later) and reordered (a frame overtakes earlier ones of its link, and frames
//! of a connection that broke can still arrive after its successor came up); links break and
//! come back, partitions form and heal, nodes crash (losing everything not yet on "disk")
//! and restart from their store, and one node per run may lose its store for good and come
//! back empty under a new name. Users on every node talk in three rooms and in direct
//! messages at random moments. After the storm every node and link comes back and the users
//! go quiet (the network stays as lossy as it was), and [`Sim::check`] verifies the
//! invariants (`check.rs`, `invariants.rs`).
//!
//! **Why links reorder although real ones do not.** On the mesh a link is one WebSocket
//! over TCP, so frames of one connection arrive in order; but frames of two connections to
//! one peer (both sides dialled at once, or an old connection still draining while its
//! successor is up) interleave, and on NATS a node's frames travel on several subjects that
//! subscribers read in no common order. Rather than model each of those cases, the
//! simulator lets any frame overtake others: the core must not rely on FIFO links for
//! safety. It does not: an op past a gap in its origin's sequence is not applied (the
//! receiver asks for a catch-up), and a vouch (heartbeat or `clock` frame) counts only once
//! the receiver holds every op of the sender that the vouch covers (docs/cluster.md).
//!
//! A failing seed replays exactly: the run depends on nothing but the seed (the cores'
//! output must not depend on hash-map order either), and [`Sim::trace`] digests everything
//! that happened, so two runs of one seed can be compared. A failing test prints its seed;
//! `SIM_SEED=<n> cargo test -p switchboard-sim` replays it, `SIM_SEEDS=<n>` runs more seeds
//! (docs/cluster.md, "The simulator").

mod check;
mod invariants;
mod net;
mod node;
mod traffic;

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_core::SessionId;

use crate::net::Network;
use crate::node::Node;

/// What a run exercises.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Links break now and then (and come back).
    pub link_breaks: bool,
    /// Partitions split the cluster in two for a while.
    pub partitions: bool,
    /// Nodes crash and restart with their store.
    pub crashes: bool,
    /// One node may lose its store for good and come back empty, under a new name.
    pub store_loss: bool,
    /// Frames of any kind are sometimes delivered twice, the copy possibly much later.
    pub duplicates: bool,
    /// Single frames are lost on a live link.
    pub losses: bool,
    /// Frames overtake earlier ones (within a link and across a reconnection).
    pub reordering: bool,
}

impl Faults {
    /// A perfect network and no failure.
    pub const NONE: Faults = Faults {
        link_breaks: false,
        partitions: false,
        crashes: false,
        store_loss: false,
        duplicates: false,
        losses: false,
        reordering: false,
    };
    /// Every fault.
    pub const ALL: Faults = Faults {
        link_breaks: true,
        partitions: true,
        crashes: true,
        store_loss: true,
        duplicates: true,
        losses: true,
        reordering: true,
    };
    /// A bad network that never takes a peer down: lost, duplicated and reordered frames.
    /// With every peer up all along, every session must see one order.
    pub const LOSSY: Faults = Faults {
        duplicates: true,
        losses: true,
        reordering: true,
        ..Faults::NONE
    };
}

/// The rooms users talk in; [`ROOM`] is the one every session joins.
pub(crate) const ROOMS: [&str; 3] = ["sim", "ops", "lobby"];
/// The room every session joins.
pub(crate) const ROOM: &str = ROOMS[0];

/// What a simulated client session is, for the checks.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The index of its node.
    pub node: usize,
    /// Which run of that node it belongs to.
    pub boot: u64,
    /// The user's name (unique to this session).
    pub name: String,
    /// The room keys it joined.
    pub rooms: BTreeSet<String>,
    /// Per room key: the message ids its node held on disk when it joined (never delivered
    /// to it: they are history).
    pub known: BTreeMap<String, BTreeSet<String>>,
    /// Whether it still lives (its node has not crashed since it joined).
    pub alive: bool,
}

/// One message a session received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub id: String,
    pub stream: String,
    pub origin: String,
    pub oseq: u64,
}

/// A message acknowledged to its sender.
#[derive(Debug, Clone)]
pub struct Acked {
    pub stream: String,
    /// The index of the node that acknowledged it.
    pub node: usize,
    /// When.
    pub at: u64,
    /// Whether a peer of that node was up when it acknowledged (then a peer's disk held it
    /// too); without one, the node's own disk sufficed.
    pub replicated: bool,
}

/// A simulated cluster. See the crate documentation.
pub struct Sim {
    rng: StdRng,
    now: u64,
    nodes: Vec<Node>,
    net: Network,
    next_session: SessionId,
    /// Every session that ever lived.
    pub sessions: BTreeMap<SessionId, SessionInfo>,
    /// Message id -> how it was acknowledged.
    pub acked: BTreeMap<String, Acked>,
    /// Per session: the messages it received, in order.
    pub received: BTreeMap<SessionId, Vec<Delivered>>,
    /// Whether a peer went down during the run (a link broke, a partition, a crash): then
    /// the live order of a room may differ between nodes (docs/cluster.md).
    pub faulted: bool,
    /// Nodes whose store was lost for good: (index, the name it had, when).
    pub lost_stores: Vec<(usize, String, u64)>,
    sent: u64,
    faults: Faults,
}

impl Sim {
    /// A cluster of `nodes` nodes, all up and linked, driven by `seed`.
    pub fn new(seed: u64, nodes: usize) -> Sim {
        let mut sim = Sim {
            rng: StdRng::seed_from_u64(seed),
            now: 1_000,
            nodes: (0..nodes).map(|i| Node::new(format!("n{i}"))).collect(),
            net: Network::default(),
            next_session: 1,
            sessions: BTreeMap::new(),
            acked: BTreeMap::new(),
            received: BTreeMap::new(),
            faulted: false,
            lost_stores: Vec::new(),
            sent: 0,
            faults: Faults::NONE,
        };
        for i in 0..nodes {
            sim.boot(i);
        }
        for a in 0..nodes {
            for b in a + 1..nodes {
                sim.connect(a, b);
            }
        }
        sim
    }

    /// A digest of everything the run did: every frame delivered to a client and to a node,
    /// in order. Two runs of one seed must give the same one.
    pub fn trace(&self) -> u64 {
        self.net.trace
    }

    /// Runs `steps` milliseconds of traffic and faults, then heals everything and lets the
    /// cluster settle.
    pub fn run(&mut self, steps: u64, faults: Faults) {
        self.faults = faults;
        let mut partition_until = 0;
        for _ in 0..steps {
            self.now += 1;
            self.deliver_frames();
            self.tick_nodes(true);
            self.inject_faults(&mut partition_until);
        }
        self.heal();
    }

    /// One millisecond of each node's life: its writer, its heartbeat, its users.
    fn tick_nodes(&mut self, traffic: bool) {
        for i in 0..self.nodes.len() {
            if !traffic || self.rng.random_bool(0.3) {
                self.write(i);
            }
            if self.now % 50 == i as u64 {
                self.heartbeat(i);
            }
            if !traffic {
                continue;
            }
            if self.rng.random_bool(0.05) {
                self.say(i);
            }
            if self.rng.random_bool(0.02) {
                self.say_direct(i);
            }
            if self.rng.random_bool(0.01) {
                self.edit_contact(i);
            }
        }
    }

    /// Breaks links, partitions, crashes, loses stores and mends links, as `faults` allow.
    fn inject_faults(&mut self, partition_until: &mut u64) {
        let n = self.nodes.len();
        let faults = self.faults;
        if faults.link_breaks && self.rng.random_bool(0.002) {
            let (a, b) = (self.rng.random_range(0..n), self.rng.random_range(0..n));
            if a != b && self.net.is_up(a, b) {
                self.faulted = true;
                self.disconnect(a, b);
            }
        }
        if faults.partitions && *partition_until == 0 && self.rng.random_bool(0.001) {
            self.faulted = true;
            let cut = self.rng.random_range(1..n);
            for a in 0..cut {
                for b in cut..n {
                    self.disconnect(a, b);
                }
            }
            *partition_until = self.now + self.rng.random_range(100..800);
        }
        if *partition_until != 0 && self.now >= *partition_until {
            *partition_until = 0;
        }
        if faults.crashes && self.rng.random_bool(0.0008) {
            let i = self.rng.random_range(0..n);
            self.crash(i);
        }
        // At most one store lost per run: the durability rule promises that losing any one
        // node loses no acknowledged message, not any two.
        if faults.store_loss && self.lost_stores.is_empty() && self.rng.random_bool(0.0003) {
            let i = self.rng.random_range(0..n);
            self.lose_store(i);
        }
        if (faults.crashes || faults.store_loss) && self.rng.random_bool(0.005) {
            let i = self.rng.random_range(0..n);
            if !self.up(i) {
                self.boot(i);
            }
        }
        if *partition_until == 0 && self.rng.random_bool(0.01) {
            let (a, b) = (self.rng.random_range(0..n), self.rng.random_range(0..n));
            if a != b {
                self.connect(a.min(b), a.max(b));
            }
        }
    }

    /// Every node up, every link up, then quiet (no new traffic) until nothing moves.
    fn heal(&mut self) {
        let n = self.nodes.len();
        // The network stays as bad as it was (lost, duplicated, reordered frames): repair
        // must not need a perfect network. Only breaks, partitions and crashes stop.
        self.faults = Faults {
            duplicates: self.faults.duplicates,
            losses: self.faults.losses,
            reordering: self.faults.reordering,
            ..Faults::NONE
        };
        for i in 0..n {
            if !self.up(i) {
                self.boot(i);
            }
        }
        for a in 0..n {
            for b in a + 1..n {
                self.connect(a, b);
            }
        }
        for _ in 0..3_000 {
            self.now += 1;
            self.deliver_frames();
            self.tick_nodes(false);
        }
    }
}
