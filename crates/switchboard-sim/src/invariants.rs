//! The invariants on ops, streams and deliveries that a run must hold once the cluster has
//! healed and gone quiet (called by [`Sim::check`]):
//!
//! - every node holds the same ops, op for op, and every stream's history in the same order;
//! - every acknowledged message is in its stream's history (unless its node, alone at the
//!   time, acknowledged it on its own disk and then lost that disk: docs/cluster.md);
//! - no session receives a message twice, nor one of a stream it is not in;
//! - each session receives each origin's messages of a stream in order and without a gap,
//!   from where its node's store stood when it joined; a session alive at the end received
//!   all of them;
//! - sessions of one run of one node receive their common messages in the same order;
//! - while no peer went down, every session received each room in its history's order.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_core::{Op, OpBody};
use switchboard_store::Store;

use crate::node::stream_history;
use crate::{Delivered, SessionInfo, Sim};

/// Stream key -> message ids in the stream's order, as every node holds it.
pub(crate) type Histories = BTreeMap<String, Vec<String>>;

impl Sim {
    /// Every node holds the same ops, op for op (not merely as many). Returns the log.
    pub(crate) fn check_same_ops(&self) -> Result<Vec<Op>, String> {
        let logs: Vec<Vec<Op>> = self
            .nodes
            .iter()
            .map(|n| {
                let mut ops = n
                    .store
                    .ops_since(&BTreeMap::new(), usize::MAX)
                    .expect("memory store");
                ops.sort_by(|a, b| {
                    (&a.meta.origin, a.meta.oseq).cmp(&(&b.meta.origin, b.meta.oseq))
                });
                ops
            })
            .collect();
        for (i, log) in logs.iter().enumerate().skip(1) {
            if let Some(k) =
                (0..log.len().max(logs[0].len())).find(|k| log.get(*k) != logs[0].get(*k))
            {
                let name = |l: &Vec<Op>| l.get(k).map(|o| (o.meta.origin.clone(), o.meta.oseq));
                return Err(format!(
                    "node {i}'s ops differ from node 0's at #{k}: {:?} vs {:?} ({} vs {} ops)",
                    name(log),
                    name(&logs[0]),
                    log.len(),
                    logs[0].len()
                ));
            }
        }
        Ok(logs.into_iter().next().unwrap_or_default())
    }

    /// Every stream that has a message in `log` has the same history, in the same order, on
    /// every node, and that history holds exactly the stream's messages in the log.
    pub(crate) fn check_same_streams(&self, log: &[Op]) -> Result<Histories, String> {
        let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for op in log {
            if let OpBody::Message { msg, .. } = &op.body {
                ids.entry(msg.stream.clone())
                    .or_default()
                    .insert(msg.id.clone());
            }
        }
        let mut histories = Histories::new();
        for (stream, want) in ids {
            let first = stream_history(&self.nodes[0].store, &stream);
            for (i, n) in self.nodes.iter().enumerate().skip(1) {
                if stream_history(&n.store, &stream) != first {
                    return Err(format!(
                        "node {i}'s history of {stream} differs from node 0's"
                    ));
                }
            }
            let held: BTreeSet<String> = first.iter().cloned().collect();
            if held != want || held.len() != first.len() {
                return Err(format!(
                    "the history of {stream} is not its messages, once each"
                ));
            }
            histories.insert(stream, first);
        }
        Ok(histories)
    }

    /// Every acknowledged message is in its stream's history, except one acknowledged by a
    /// node with no peer up that later lost its store: the rule is "on a peer's disk too
    /// when a peer is up" (docs/cluster.md).
    pub(crate) fn check_acked_kept(&self, histories: &Histories) -> Result<(), String> {
        for (id, acked) in &self.acked {
            if histories.get(&acked.stream).is_some_and(|h| h.contains(id)) {
                continue;
            }
            let excused = !acked.replicated
                && self
                    .lost_stores
                    .iter()
                    .any(|(i, _, at)| *i == acked.node && *at >= acked.at);
            if !excused {
                return Err(format!(
                    "acknowledged message {id} of {} was lost ({acked:?})",
                    acked.stream
                ));
            }
        }
        let dms = self.acked.values().filter(|a| a.stream.starts_with('@'));
        let rooms: BTreeSet<&String> = self.acked.values().map(|a| &a.stream).collect();
        if dms.count() == 0 || rooms.len() < 3 {
            return Err("too few streams were acknowledged: the run tested too little".into());
        }
        Ok(())
    }

    /// Every message in the log whose sender is still connected was acknowledged to it: an
    /// acknowledgement must not hang on a lost frame.
    pub(crate) fn check_acks_arrive(&self, log: &[Op]) -> Result<(), String> {
        let alive: BTreeSet<&String> = self
            .sessions
            .values()
            .filter(|s| s.alive)
            .map(|s| &s.name)
            .collect();
        for op in log {
            if let OpBody::Message { msg, .. } = &op.body {
                if alive.contains(&msg.from) && !self.acked.contains_key(&msg.id) {
                    return Err(format!(
                        "{}'s message {} is stored everywhere but was never acknowledged",
                        msg.from, msg.id
                    ));
                }
            }
        }
        Ok(())
    }

    /// What each session received, against the histories.
    pub(crate) fn check_deliveries(&self, histories: &Histories) -> Result<(), String> {
        let held: BTreeSet<&String> = histories.values().flatten().collect();
        for (s, info) in &self.sessions {
            let got = self.received.get(s).map(Vec::as_slice).unwrap_or_default();
            // A node that lost its disk lost the messages of its own that no peer had stored
            // yet, some of which its own sessions had received (delivery waits for the local
            // disk only).
            let got: Vec<Delivered> = got
                .iter()
                .filter(|d| {
                    held.contains(&d.id)
                        || !self
                            .lost_stores
                            .iter()
                            .any(|(i, name, _)| *i == info.node && *name == d.origin)
                })
                .cloned()
                .collect();
            self.check_session(info, &got, histories)
                .map_err(|e| format!("session {s} ({} on node {}): {e}", info.name, info.node))?;
        }
        self.check_one_order_per_node()
    }

    fn check_session(
        &self,
        info: &SessionInfo,
        got: &[Delivered],
        histories: &Histories,
    ) -> Result<(), String> {
        let ids: BTreeSet<&String> = got.iter().map(|d| &d.id).collect();
        if ids.len() != got.len() {
            return Err("received a message twice".into());
        }
        let mut by_stream: BTreeMap<&String, Vec<&Delivered>> = BTreeMap::new();
        for d in got {
            by_stream.entry(&d.stream).or_default().push(d);
        }
        for stream in by_stream.keys() {
            if !in_stream(info, stream) {
                return Err(format!(
                    "received a message of {stream}, which it is not in"
                ));
            }
        }
        let empty = Vec::new();
        for (stream, history) in histories.iter().filter(|(s, _)| in_stream(info, s)) {
            let got = by_stream.get(stream).unwrap_or(&empty);
            let known = info.known.get(stream);
            let due: Vec<&String> = history
                .iter()
                .filter(|id| !known.is_some_and(|k| k.contains(*id)))
                .collect();
            check_per_origin(got, &due, info.alive).map_err(|e| format!("{stream}: {e}"))?;
            if !self.faulted && stream.starts_with('#') {
                let seen: BTreeSet<&String> = got.iter().map(|d| &d.id).collect();
                let order: Vec<&String> = due.into_iter().filter(|id| seen.contains(id)).collect();
                let got: Vec<&String> = got.iter().map(|d| &d.id).collect();
                if got != order {
                    return Err(format!("received {stream} out of its history's order"));
                }
            }
        }
        Ok(())
    }

    /// Sessions of one run of one node see one order: a room's fan-out reaches its members
    /// together.
    fn check_one_order_per_node(&self) -> Result<(), String> {
        let mut runs: BTreeMap<(usize, u64), Vec<u64>> = BTreeMap::new();
        for (s, info) in &self.sessions {
            runs.entry((info.node, info.boot)).or_default().push(*s);
        }
        for ((node, _), sessions) in runs {
            for (k, a) in sessions.iter().enumerate() {
                for b in &sessions[k + 1..] {
                    let (x, y) = (&self.received[a], &self.received[b]);
                    let ys: BTreeSet<&String> = y.iter().map(|d| &d.id).collect();
                    let xs: BTreeSet<&String> = x.iter().map(|d| &d.id).collect();
                    let x: Vec<&String> =
                        x.iter().map(|d| &d.id).filter(|i| ys.contains(i)).collect();
                    let y: Vec<&String> =
                        y.iter().map(|d| &d.id).filter(|i| xs.contains(i)).collect();
                    if x != y {
                        return Err(format!(
                            "sessions {a} and {b} of node {node} saw their common messages in different orders"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether a session takes part in a stream: a room it joined, or a conversation of its user.
fn in_stream(info: &SessionInfo, stream: &str) -> bool {
    if stream.starts_with('#') {
        return info.rooms.contains(stream);
    }
    let me = info.name.to_ascii_lowercase();
    stream
        .trim_start_matches('@')
        .split(':')
        .any(|part| part == me)
}

/// For each origin, what a session received of a stream is the start of that origin's
/// messages due to it (in order, no gap), and all of them if the session is still alive.
fn check_per_origin(got: &[&Delivered], due: &[&String], alive: bool) -> Result<(), String> {
    let origin_of = |id: &str| id.rsplit_once('-').map(|(o, _)| o.to_string());
    let mut due_by: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for id in due {
        due_by
            .entry(origin_of(id).unwrap_or_default())
            .or_default()
            .push(id);
    }
    let mut got_by: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for d in got {
        got_by.entry(&d.origin).or_default().push(&d.id);
    }
    for (origin, ids) in &got_by {
        let want = due_by.get(*origin).map(Vec::as_slice).unwrap_or_default();
        if !want.starts_with(ids) {
            return Err(format!(
                "{origin}'s messages arrived out of order, with a gap or not due: {ids:?}, due {want:?}"
            ));
        }
    }
    if alive {
        for (origin, want) in &due_by {
            let n = got_by.get(origin).map_or(0, Vec::len);
            if n != want.len() {
                return Err(format!(
                    "received {n} of {}'s {} messages",
                    origin,
                    want.len()
                ));
            }
        }
    }
    Ok(())
}
