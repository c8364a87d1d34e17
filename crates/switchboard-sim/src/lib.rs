//! A deterministic simulator of a Switchboard cluster.
//!
//! It runs the real sans-IO [`Core`]s of several nodes, each with an in-memory store, over a
//! simulated network driven by one seeded random generator: links deliver frames in order
//! (as TCP does) after random delays, break and come back, whole partitions form and heal,
//! nodes crash (losing everything not yet on "disk") and restart from their store. Users on
//! every node send messages to one room at random moments. After the storm the network heals
//! and goes quiet, and [`Sim::check`] verifies the invariants:
//!
//! - convergence: every node holds the same ops and the same room history, in the same order;
//! - no acknowledged message is lost;
//! - no session receives a message twice;
//! - while nothing failed, every session received the room's messages in the same order.
//!
//! A failing seed replays exactly: the run depends on nothing but the seed.

mod check;

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_core::{Auth, Config, Core, Effect, SessionId};
use switchboard_proto::peer::PeerMsg;
use switchboard_proto::server::Limits;
use switchboard_proto::{ClientMsg, ServerMsg};
use switchboard_store::{MemoryStore, Store};

/// What a run exercises.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Links break now and then (and come back).
    pub link_breaks: bool,
    /// Partitions split the cluster in two for a while.
    pub partitions: bool,
    /// Nodes crash and restart.
    pub crashes: bool,
    /// Ops frames are sometimes delivered twice.
    pub duplicates: bool,
}

impl Faults {
    pub const NONE: Faults = Faults {
        link_breaks: false,
        partitions: false,
        crashes: false,
        duplicates: false,
    };
    pub const ALL: Faults = Faults {
        link_breaks: true,
        partitions: true,
        crashes: true,
        duplicates: true,
    };
}

const ROOM: &str = "sim";

struct Node {
    name: String,
    core: Option<Core>,
    store: MemoryStore,
    /// Session -> user name, for the sessions alive on this node.
    sessions: BTreeMap<SessionId, String>,
    /// Ops taken from the core but not yet "on disk" (a crash loses them).
    writing: Vec<switchboard_proto::ops::Op>,
    /// The clock when `writing` was taken.
    writing_clock: u64,
}

/// One in-flight frame.
#[derive(PartialEq, Eq)]
struct Frame {
    at: u64,
    seq: u64,
    from: usize,
    to: usize,
    epoch: u64,
    msg: String,
}

impl Ord for Frame {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}
impl PartialOrd for Frame {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// A simulated cluster. See the crate documentation.
pub struct Sim {
    rng: StdRng,
    now: u64,
    nodes: Vec<Node>,
    /// Per ordered pair of nodes: the link's epoch (a new connection each time it comes back),
    /// whether it is up, and the time its last frame is due (frames stay in order).
    links: HashMap<(usize, usize), (u64, bool, u64)>,
    frames: BinaryHeap<Frame>,
    seq: u64,
    next_session: SessionId,
    /// Message ids acknowledged to a sender.
    pub acked: BTreeSet<String>,
    /// Per session: the message ids it received, in order.
    pub received: BTreeMap<SessionId, Vec<String>>,
    /// Whether anything failed during the run (then live order may differ).
    pub faulted: bool,
    sent: u64,
    duplicates: bool,
}

impl Sim {
    pub fn new(seed: u64, nodes: usize) -> Sim {
        let mut sim = Sim {
            rng: StdRng::seed_from_u64(seed),
            now: 1_000,
            nodes: Vec::new(),
            links: HashMap::new(),
            frames: BinaryHeap::new(),
            seq: 0,
            next_session: 1,
            acked: BTreeSet::new(),
            received: BTreeMap::new(),
            faulted: false,
            sent: 0,
            duplicates: false,
        };
        for i in 0..nodes {
            sim.nodes.push(Node {
                name: format!("n{i}"),
                core: None,
                store: MemoryStore::new(),
                sessions: BTreeMap::new(),
                writing: Vec::new(),
                writing_clock: 0,
            });
        }
        for i in 0..nodes {
            sim.boot(i);
        }
        for a in 0..nodes {
            for b in 0..nodes {
                if a < b {
                    sim.connect(a, b);
                }
            }
        }
        sim
    }

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

    /// Starts (or restarts) a node from its store, with two users in the room.
    fn boot(&mut self, i: usize) {
        let restore = self.nodes[i]
            .store
            .load(&self.nodes[i].name)
            .expect("memory store");
        let mut core = Core::new(self.config(i), restore);
        let mut out = Vec::new();
        for u in 0..2 {
            let id = self.next_session;
            self.next_session += 1;
            let name = format!("u{i}x{u}x{id}");
            core.hello(id, &name, Auth::Guest, self.now, &mut out);
            core.handle(
                id,
                ClientMsg::Join {
                    room: ROOM.into(),
                    reff: None,
                },
                self.now,
                &mut out,
            );
            self.nodes[i].sessions.insert(id, name);
            self.received.insert(id, Vec::new());
        }
        self.nodes[i].core = Some(core);
        self.effects(i, out);
    }

    fn up(&self, i: usize) -> bool {
        self.nodes[i].core.is_some()
    }

    fn link(&self, a: usize, b: usize) -> (u64, bool, u64) {
        self.links.get(&(a, b)).copied().unwrap_or((0, false, 0))
    }

    /// Brings the link between two running nodes up: a new connection on both sides.
    fn connect(&mut self, a: usize, b: usize) {
        if !self.up(a) || !self.up(b) || self.link(a, b).1 {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            let (epoch, _, _) = self.link(x, y);
            self.links.insert((x, y), (epoch + 1, true, self.now));
        }
        for (x, y) in [(a, b), (b, a)] {
            let peer = self.nodes[y].name.clone();
            let mut out = Vec::new();
            self.core(x).peer_linked(&peer, &mut out);
            self.effects(x, out);
        }
    }

    /// Breaks the link between two nodes: frames in flight are lost.
    fn disconnect(&mut self, a: usize, b: usize) {
        if !self.link(a, b).1 {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            let (epoch, _, due) = self.link(x, y);
            self.links.insert((x, y), (epoch, false, due));
            if self.up(x) {
                let peer = self.nodes[y].name.clone();
                let mut out = Vec::new();
                self.core(x).peer_unlinked(&peer, &mut out);
                self.effects(x, out);
            }
        }
    }

    fn core(&mut self, i: usize) -> &mut Core {
        self.nodes[i].core.as_mut().expect("node is up")
    }

    fn send_frame(&mut self, from: usize, to: usize, msg: &PeerMsg) {
        let (epoch, up, due) = self.link(from, to);
        if !up {
            return;
        }
        let at = (self.now + self.rng.random_range(1..20)).max(due);
        self.links.insert((from, to), (epoch, up, at));
        self.seq += 1;
        self.frames.push(Frame {
            at,
            seq: self.seq,
            from,
            to,
            epoch,
            msg: serde_json::to_string(msg).expect("peer messages serialise"),
        });
    }

    /// Carries out a core's effects: record deliveries, send frames, run catch-ups.
    fn effects(&mut self, i: usize, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Send { to, frame } => self.record(i, &[to], &frame),
                Effect::Fanout { to, frame } => self.record(i, &to, &frame),
                Effect::Close { .. } | Effect::ContactChanged { .. } => {}
                Effect::ToPeer { node, msg } => {
                    let j = self.index(&node);
                    self.send_frame(i, j, &msg);
                }
                Effect::ToPeers(msg) => {
                    for j in 0..self.nodes.len() {
                        if j != i {
                            self.send_frame(i, j, &msg);
                        }
                    }
                }
                Effect::CatchUp { node, mut vv } => {
                    let j = self.index(&node);
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
            }
        }
    }

    fn index(&self, node: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == node)
            .expect("known node")
    }

    fn record(&mut self, i: usize, to: &[SessionId], frame: &[u8]) {
        let msg: ServerMsg = serde_json::from_slice(frame).expect("frames are JSON");
        match msg {
            ServerMsg::Message(m) => {
                for s in to {
                    if self.nodes[i].sessions.contains_key(s) {
                        self.received.entry(*s).or_default().push(m.id.clone());
                    }
                }
            }
            ServerMsg::Ack { id, .. } => {
                self.acked.insert(id);
            }
            _ => {}
        }
    }

    /// The store writer of node `i`: the ops taken last time reach the disk now (so a crash in
    /// between loses them), then the next batch is taken.
    fn write(&mut self, i: usize) {
        if !self.up(i) {
            return;
        }
        let batch = std::mem::take(&mut self.nodes[i].writing);
        let clock = self.nodes[i].writing_clock;
        if !batch.is_empty() {
            self.nodes[i]
                .store
                .append(&batch, clock)
                .expect("memory store");
            let name = self.nodes[i].name.clone();
            let own: Vec<_> = batch
                .iter()
                .filter(|o| o.meta.origin == name)
                .cloned()
                .collect();
            if !own.is_empty() {
                let msg = PeerMsg::Ops { ops: own };
                for j in 0..self.nodes.len() {
                    if j != i {
                        self.send_frame(i, j, &msg);
                    }
                }
            }
            let mut out = Vec::new();
            self.core(i).committed(batch.len(), clock, &mut out);
            self.effects(i, out);
        }
        let next = self.core(i).take_ops();
        self.nodes[i].writing_clock = self.core(i).clock();
        self.nodes[i].writing = next;
    }

    fn heartbeat(&mut self, i: usize) {
        if !self.up(i) {
            return;
        }
        let (clock, vv) = self.core(i).heartbeat();
        let msg = PeerMsg::Heartbeat {
            clock,
            members: Vec::new(),
            vv,
        };
        for j in 0..self.nodes.len() {
            if j != i {
                self.send_frame(i, j, &msg);
            }
        }
    }

    /// Someone edits the shared user's contact book on node `i`: a set or a delete of one of
    /// a few names, so that concurrent edits of the same contact on different nodes happen.
    fn edit_contact(&mut self, i: usize) {
        if !self.up(i) {
            return;
        }
        let name = format!("c{}", self.rng.random_range(0..4));
        let phone = if self.rng.random_bool(0.3) {
            None
        } else {
            Some(format!("{}", self.rng.random_range(100..999)))
        };
        let now = self.now;
        let deleting = phone.is_none();
        let result = self
            .core(i)
            .contact_update("owner", &name, phone, now, None);
        // Deleting a contact this node does not have is refused; anything else must succeed.
        if let Err(e) = result {
            assert!(deleting, "contact update refused: {e}");
        }
    }

    fn say(&mut self, i: usize) {
        if !self.up(i) || self.nodes[i].sessions.is_empty() {
            return;
        }
        let sessions: Vec<SessionId> = self.nodes[i].sessions.keys().copied().collect();
        let s = sessions[self.rng.random_range(0..sessions.len())];
        self.sent += 1;
        let msg = ClientMsg::Send {
            room: Some(ROOM.into()),
            to: None,
            text: format!("m{}", self.sent),
            reff: None,
        };
        let now = self.now;
        let mut out = Vec::new();
        self.core(i).handle(s, msg, now, &mut out);
        self.effects(i, out);
    }

    fn crash(&mut self, i: usize) {
        if !self.up(i) {
            return;
        }
        self.faulted = true;
        for j in 0..self.nodes.len() {
            if j != i {
                self.disconnect(i, j);
            }
        }
        let node = &mut self.nodes[i];
        node.core = None;
        node.writing.clear();
        node.sessions.clear();
    }

    fn deliver_frames(&mut self) {
        while self.frames.peek().is_some_and(|f| f.at <= self.now) {
            let f = self.frames.pop().expect("peeked");
            let (epoch, up, _) = self.link(f.from, f.to);
            if !up || epoch != f.epoch || !self.up(f.to) {
                continue;
            }
            let msg: PeerMsg = serde_json::from_str(&f.msg).expect("frames decode");
            let duplicate = matches!(msg, PeerMsg::Ops { .. }) && self.dup_roll();
            let from = self.nodes[f.from].name.clone();
            let now = self.now;
            let mut out = Vec::new();
            self.core(f.to)
                .peer_message(&from, msg.clone(), now, &mut out);
            if duplicate {
                self.core(f.to).peer_message(&from, msg, now, &mut out);
            }
            self.effects(f.to, out);
        }
    }

    fn dup_roll(&mut self) -> bool {
        self.duplicates && self.rng.random_bool(0.1)
    }

    /// Runs `steps` milliseconds of traffic and faults, then heals everything and lets the
    /// cluster settle.
    pub fn run(&mut self, steps: u64, faults: Faults) {
        self.duplicates = faults.duplicates;
        let n = self.nodes.len();
        let mut partition_until = 0;
        for _ in 0..steps {
            self.now += 1;
            self.deliver_frames();
            for i in 0..n {
                if self.rng.random_bool(0.3) {
                    self.write(i);
                }
                if self.now % 50 == i as u64 {
                    self.heartbeat(i);
                }
                if self.rng.random_bool(0.05) {
                    self.say(i);
                }
                if self.rng.random_bool(0.01) {
                    self.edit_contact(i);
                }
            }
            if faults.link_breaks && self.rng.random_bool(0.002) {
                let (a, b) = (self.rng.random_range(0..n), self.rng.random_range(0..n));
                if a != b {
                    self.faulted = true;
                    self.disconnect(a, b);
                }
            }
            if faults.partitions && partition_until == 0 && self.rng.random_bool(0.001) {
                self.faulted = true;
                let cut = self.rng.random_range(1..n);
                for a in 0..cut {
                    for b in cut..n {
                        self.disconnect(a, b);
                    }
                }
                partition_until = self.now + self.rng.random_range(100..800);
            }
            if partition_until != 0 && self.now >= partition_until {
                partition_until = 0;
            }
            if faults.crashes && self.rng.random_bool(0.0008) {
                let i = self.rng.random_range(0..n);
                self.crash(i);
            }
            if faults.crashes && self.rng.random_bool(0.005) {
                let i = self.rng.random_range(0..n);
                if !self.up(i) {
                    self.boot(i);
                }
            }
            if partition_until == 0 && self.rng.random_bool(0.01) {
                let (a, b) = (self.rng.random_range(0..n), self.rng.random_range(0..n));
                if a != b {
                    self.connect(a.min(b), a.max(b));
                }
            }
        }
        // Heal: every node up, every link up, then quiet until nothing moves.
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
            for i in 0..n {
                self.write(i);
                if self.now % 50 == i as u64 {
                    self.heartbeat(i);
                }
            }
        }
    }
}
