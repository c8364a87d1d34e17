//! The simulated network: links between nodes, frames in flight, and what goes wrong with
//! them (delays, single losses, duplicates, reordering, broken links).

use std::collections::{BTreeMap, BinaryHeap};

use rand::Rng;
use switchboard_proto::peer::PeerMsg;

use crate::Sim;

/// How likely a frame on a live link is lost (with [`crate::Faults::losses`]).
const LOSS: f64 = 0.02;
/// How likely a frame is delivered twice (with [`crate::Faults::duplicates`]).
const DUPLICATE: f64 = 0.05;
/// How likely a frame ignores its link's order (with [`crate::Faults::reordering`]).
const OVERTAKE: f64 = 0.1;
/// How likely a frame of a broken connection still arrives once its link is up again, from
/// the same run of its sender (with [`crate::Faults::reordering`]).
const STALE: f64 = 0.3;

/// One direction of the link between two nodes.
#[derive(Debug, Clone, Copy, Default)]
struct Link {
    /// Which connection: a new one each time the link comes back.
    epoch: u64,
    up: bool,
    /// When the last in-order frame is due: later ones are due no earlier.
    due: u64,
}

/// One frame in flight.
#[derive(PartialEq, Eq)]
struct Frame {
    at: u64,
    seq: u64,
    from: usize,
    to: usize,
    epoch: u64,
    /// The run of the sender that sent it.
    boot: u64,
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

/// The links and the frames in flight.
#[derive(Default)]
pub(crate) struct Network {
    links: BTreeMap<(usize, usize), Link>,
    frames: BinaryHeap<Frame>,
    seq: u64,
    /// A digest of every frame delivered so far, to nodes and to clients.
    pub trace: u64,
}

impl Network {
    fn link(&self, a: usize, b: usize) -> Link {
        self.links.get(&(a, b)).copied().unwrap_or_default()
    }

    /// Whether the link from `a` to `b` is up.
    pub fn is_up(&self, a: usize, b: usize) -> bool {
        self.link(a, b).up
    }

    /// Folds something that happened into the trace (FNV-1a: the same on every platform and
    /// in every run, unlike std's randomly keyed hasher).
    pub fn record(&mut self, parts: &[&[u8]]) {
        for part in parts {
            for b in part.iter().copied().chain([0xff]) {
                self.trace = (self.trace ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
}

impl Sim {
    /// Brings the link between two running nodes up: a new connection on both sides.
    pub(crate) fn connect(&mut self, a: usize, b: usize) {
        if !self.up(a) || !self.up(b) || self.net.is_up(a, b) {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            let link = self.net.link(x, y);
            let fresh = Link {
                epoch: link.epoch + 1,
                up: true,
                due: self.now,
            };
            self.net.links.insert((x, y), fresh);
        }
        for (x, y) in [(a, b), (b, a)] {
            let peer = self.nodes[y].name.clone();
            let mut out = Vec::new();
            self.core(x).peer_linked(&peer, &mut out);
            self.effects(x, out);
        }
    }

    /// Breaks the link between two nodes: frames in flight are lost (unless reordering lets
    /// some arrive late, see [`STALE`]).
    pub(crate) fn disconnect(&mut self, a: usize, b: usize) {
        if !self.net.is_up(a, b) {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            self.net.links.entry((x, y)).or_default().up = false;
            if self.up(x) {
                let peer = self.nodes[y].name.clone();
                let mut out = Vec::new();
                self.core(x).peer_unlinked(&peer, &mut out);
                self.effects(x, out);
            }
        }
    }

    /// Puts a frame on the link from `from` to `to`, if it is up, subject to the faults.
    pub(crate) fn send_frame(&mut self, from: usize, to: usize, msg: &PeerMsg) {
        let mut link = self.net.link(from, to);
        if !link.up || (self.faults.losses && self.rng.random_bool(LOSS)) {
            return;
        }
        let delay = self.rng.random_range(1..20);
        let at = if self.faults.reordering && self.rng.random_bool(OVERTAKE) {
            // Ignores the link's order: may overtake frames sent before it.
            self.now + self.rng.random_range(1..40)
        } else {
            link.due = (self.now + delay).max(link.due);
            self.net.links.insert((from, to), link);
            link.due
        };
        let msg = serde_json::to_string(msg).expect("peer messages serialise");
        if self.faults.duplicates && self.rng.random_bool(DUPLICATE) {
            // The copy comes at once or much later, behind frames sent after it.
            let later = at + self.rng.random_range(0..300);
            self.push_frame(later, from, to, link.epoch, msg.clone());
        }
        self.push_frame(at, from, to, link.epoch, msg);
    }

    fn push_frame(&mut self, at: u64, from: usize, to: usize, epoch: u64, msg: String) {
        self.net.seq += 1;
        let boot = self.nodes[from].boot;
        self.net.frames.push(Frame {
            at,
            seq: self.net.seq,
            from,
            to,
            epoch,
            boot,
            msg,
        });
    }

    /// Whether a frame still reaches its node: its connection is the link's current one, or
    /// (reordering) an earlier connection of the same run of the sender, still draining
    /// while the link is up again.
    fn reaches(&mut self, f: &Frame) -> bool {
        let link = self.net.link(f.from, f.to);
        if !link.up || !self.up(f.to) || !self.up(f.from) {
            return false;
        }
        if f.epoch == link.epoch {
            return true;
        }
        f.boot == self.nodes[f.from].boot && self.faults.reordering && self.rng.random_bool(STALE)
    }

    /// Hands every frame that is due to its node.
    pub(crate) fn deliver_frames(&mut self) {
        while self.net.frames.peek().is_some_and(|f| f.at <= self.now) {
            let f = self.net.frames.pop().expect("peeked");
            if !self.reaches(&f) {
                continue;
            }
            let (from, to) = (
                self.nodes[f.from].name.clone(),
                self.nodes[f.to].name.clone(),
            );
            self.net
                .record(&[b"peer", from.as_bytes(), to.as_bytes(), f.msg.as_bytes()]);
            let msg: PeerMsg = serde_json::from_str(&f.msg).expect("frames decode");
            let now = self.now;
            let mut out = Vec::new();
            self.core(f.to).peer_message(&from, msg, now, &mut out);
            self.effects(f.to, out);
        }
    }
}
