//! A simulated node: its core, its store and writer, its client sessions, and how its
//! effects are carried out.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use switchboard_core::{Auth, Config, Core, Effect, SessionId};
use switchboard_proto::ops::Op;
use switchboard_proto::peer::PeerMsg;
use switchboard_proto::server::Limits;
use switchboard_proto::{room_key, ClientMsg, ServerMsg};
use switchboard_store::{MemoryStore, Page, Store};

use crate::{Acked, Delivered, SessionInfo, Sim, ROOM, ROOMS};

/// How far the stored clock runs ahead of the clock: the server's writer's lease
/// (`crates/switchboard-server/src/writer.rs`), copied so the cores run as they do there.
const CLOCK_LEASE: u64 = 100_000;

pub(crate) struct Node {
    pub name: String,
    pub core: Option<Core>,
    pub store: MemoryStore,
    /// Which run this is (counts boots), so that frames of an earlier run are told apart.
    pub boot: u64,
    /// Session -> user name, for the sessions alive on this node.
    pub sessions: BTreeMap<SessionId, String>,
    /// Ops taken from the core but not yet "on disk" (a crash loses them).
    writing: Vec<Op>,
    /// The clock to store with `writing`, and whether there is something to write.
    writing_clock: Option<u64>,
}

impl Node {
    pub fn new(name: String) -> Node {
        Node {
            name,
            core: None,
            store: MemoryStore::new(),
            boot: 0,
            sessions: BTreeMap::new(),
            writing: Vec::new(),
            writing_clock: None,
        }
    }
}

impl Sim {
    fn config(&self, i: usize) -> Config {
        Config {
            node: self.nodes[i].name.clone(),
            inbox_cap: 1_000,
            limits: Limits {
                max_frame_bytes: 65_536,
                max_text_bytes: 16_384,
                rate_per_sec: 1_000,
                burst: 1_000,
            },
            incarnation: self.now,
        }
    }

    /// Starts (or restarts) a node from its store, with two users: one in every room, one in
    /// [`ROOM`] and maybe others.
    pub(crate) fn boot(&mut self, i: usize) {
        let store = &self.nodes[i].store;
        let restore = store.load(&self.nodes[i].name).expect("memory store");
        let known: BTreeMap<String, BTreeSet<String>> = ROOMS
            .iter()
            .map(|r| (room_key(r), stream_ids(store, &room_key(r))))
            .collect();
        let mut core = Core::new(self.config(i), restore);
        self.nodes[i].boot += 1;
        let mut out = Vec::new();
        for u in 0..2 {
            let id = self.next_session;
            self.next_session += 1;
            let name = format!("u{i}x{u}x{id}");
            core.hello(id, &name, Auth::Guest, self.now, &mut out);
            let mut rooms = BTreeSet::new();
            for room in ROOMS {
                if room == ROOM || u == 0 || self.rng.random_bool(0.5) {
                    let msg = ClientMsg::Join {
                        room: room.into(),
                        reff: None,
                    };
                    core.handle(id, msg, self.now, &mut out);
                    rooms.insert(room_key(room));
                }
            }
            self.nodes[i].sessions.insert(id, name.clone());
            self.received.insert(id, Vec::new());
            let info = SessionInfo {
                node: i,
                boot: self.nodes[i].boot,
                name,
                rooms,
                known: known.clone(),
                alive: true,
            };
            self.sessions.insert(id, info);
        }
        self.nodes[i].core = Some(core);
        self.effects(i, out);
    }

    pub(crate) fn up(&self, i: usize) -> bool {
        self.nodes[i].core.is_some()
    }

    pub(crate) fn core(&mut self, i: usize) -> &mut Core {
        self.nodes[i].core.as_mut().expect("node is up")
    }

    /// The node's memory is gone: its core, its sessions, what it had not yet written.
    pub(crate) fn crash(&mut self, i: usize) {
        if !self.up(i) {
            return;
        }
        self.faulted = true;
        // The core dies first: a crashing node does nothing more, not even notice its links
        // going down (which would release its waiting acknowledgements).
        self.nodes[i].core = None;
        for j in 0..self.nodes.len() {
            if j != i {
                self.disconnect(i, j);
            }
        }
        let node = &mut self.nodes[i];
        node.writing.clear();
        node.writing_clock = None;
        for s in std::mem::take(&mut node.sessions).keys() {
            if let Some(info) = self.sessions.get_mut(s) {
                info.alive = false;
            }
        }
    }

    /// The node crashes and its disk is gone for good: it will come back empty, under a
    /// new name (a name's op sequence must never restart, docs/cluster.md).
    pub(crate) fn lose_store(&mut self, i: usize) {
        self.crash(i);
        let old = std::mem::replace(
            &mut self.nodes[i].name,
            format!("n{i}r{}", self.lost_stores.len() + 1),
        );
        self.nodes[i].store = MemoryStore::new();
        self.lost_stores.push((i, old, self.now));
    }

    fn index(&self, node: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == node)
    }

    /// Carries out a core's effects: record deliveries, send frames, run catch-ups.
    pub(crate) fn effects(&mut self, i: usize, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Send { to, frame } => self.record(i, &[to], &frame),
                Effect::Fanout { to, frame } => self.record(i, &to, &frame),
                Effect::Close { .. } | Effect::ContactChanged { .. } => {}
                // A node that lost its store is gone under its old name.
                Effect::ToPeer { node, msg } => {
                    if let Some(j) = self.index(&node) {
                        self.send_frame(i, j, &msg);
                    }
                }
                Effect::ToPeers(msg) => {
                    for j in (0..self.nodes.len()).filter(|j| *j != i) {
                        self.send_frame(i, j, &msg);
                    }
                }
                Effect::CatchUp { node, vv } => {
                    if let Some(j) = self.index(&node) {
                        self.catch_up(i, j, vv);
                    }
                }
            }
        }
    }

    /// Sends node `j` what node `i` holds past `vv`, from `i`'s store, in batches.
    fn catch_up(&mut self, i: usize, j: usize, mut vv: BTreeMap<String, u64>) {
        loop {
            let ops = self.nodes[i]
                .store
                .ops_since(&vv, 50)
                .expect("memory store");
            if ops.is_empty() {
                break;
            }
            for op in &ops {
                let e = vv.entry(op.meta.origin.clone()).or_insert(0);
                *e = (*e).max(op.meta.oseq);
            }
            self.send_frame(i, j, &PeerMsg::Ops { ops });
        }
    }

    /// What a client of node `i` receives: messages and acknowledgements are recorded.
    fn record(&mut self, i: usize, to: &[SessionId], frame: &[u8]) {
        for s in to {
            self.net.record(&[b"client", &s.to_le_bytes(), frame]);
        }
        let msg: ServerMsg = serde_json::from_slice(frame).expect("frames are JSON");
        match msg {
            ServerMsg::Message(m) => {
                for s in to {
                    if self.nodes[i].sessions.contains_key(s) {
                        self.received.entry(*s).or_default().push(Delivered {
                            id: m.id.clone(),
                            stream: m.stream.clone(),
                            origin: m.origin.clone(),
                            oseq: m.oseq,
                        });
                    }
                }
            }
            ServerMsg::Ack { id, stream, .. } => {
                let replicated = (0..self.nodes.len()).any(|j| j != i && self.net.is_up(i, j));
                let acked = Acked {
                    stream,
                    node: i,
                    at: self.now,
                    replicated,
                };
                self.acked.insert(id, acked);
            }
            _ => {}
        }
    }

    /// The store writer of node `i`: the ops taken last time reach the disk now (so a crash in
    /// between loses them), then the next batch is taken. As the server's writer does, it
    /// stores a lease on the clock, and the clock alone when it passed the lease.
    pub(crate) fn write(&mut self, i: usize) {
        if !self.up(i) {
            return;
        }
        let batch = std::mem::take(&mut self.nodes[i].writing);
        if let Some(clock) = self.nodes[i].writing_clock.take() {
            self.nodes[i]
                .store
                .append(&batch, clock)
                .expect("memory store");
            self.send_own_ops(i, &batch);
            let mut out = Vec::new();
            self.core(i).committed(batch.len(), clock, &mut out);
            self.effects(i, out);
        }
        let core = self.core(i);
        let next = core.take_ops();
        let clock_only = next.is_empty() && core.clock_unsaved();
        if !next.is_empty() || clock_only {
            let clock = core.clock().saturating_add(CLOCK_LEASE);
            self.nodes[i].writing_clock = Some(clock);
        }
        self.nodes[i].writing = next;
    }

    /// Once durable, a node's own ops go to every peer (`Cluster::send_own_ops`).
    fn send_own_ops(&mut self, i: usize, batch: &[Op]) {
        let name = &self.nodes[i].name;
        let own: Vec<Op> = batch
            .iter()
            .filter(|o| o.meta.origin == *name)
            .cloned()
            .collect();
        if own.is_empty() {
            return;
        }
        let msg = PeerMsg::Ops { ops: own };
        for j in (0..self.nodes.len()).filter(|j| *j != i) {
            self.send_frame(i, j, &msg);
        }
    }

    pub(crate) fn heartbeat(&mut self, i: usize) {
        if !self.up(i) {
            return;
        }
        let (clock, vv) = self.core(i).heartbeat();
        let msg = PeerMsg::Heartbeat {
            clock,
            members: Vec::new(),
            vv,
        };
        for j in (0..self.nodes.len()).filter(|j| *j != i) {
            self.send_frame(i, j, &msg);
        }
    }
}

/// The ids of the messages a store holds of a stream, in its order.
pub(crate) fn stream_history(store: &MemoryStore, stream: &str) -> Vec<String> {
    store
        .history(stream, Page::Before(None), 1_000_000, 0)
        .expect("memory store")
        .messages
        .into_iter()
        .map(|m| m.id)
        .collect()
}

fn stream_ids(store: &MemoryStore, stream: &str) -> BTreeSet<String> {
    stream_history(store, stream).into_iter().collect()
}
