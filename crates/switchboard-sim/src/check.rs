//! The invariants a simulated run must hold once the cluster has healed and gone quiet.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_store::{Page, Store};

use crate::{Sim, ROOM};

impl Sim {
    /// Checks the invariants; returns what is violated.
    pub fn check(&self) -> Result<(), String> {
        let histories: Vec<Vec<String>> = self
            .nodes
            .iter()
            .map(|n| {
                let page = n
                    .store
                    .history(
                        &switchboard_proto::room_key(ROOM),
                        Page::Before(None),
                        100_000,
                        0,
                    )
                    .expect("memory store");
                page.messages.into_iter().map(|m| m.id).collect()
            })
            .collect();
        for (i, h) in histories.iter().enumerate() {
            if *h != histories[0] {
                return Err(format!(
                    "node {i}'s history differs from node 0's ({} vs {} messages)",
                    h.len(),
                    histories[0].len()
                ));
            }
        }
        let logs: Vec<usize> = self
            .nodes
            .iter()
            .map(|n| {
                n.store
                    .ops_since(&BTreeMap::new(), usize::MAX)
                    .expect("memory store")
                    .len()
            })
            .collect();
        if logs.iter().any(|l| *l != logs[0]) {
            return Err(format!("nodes hold different numbers of ops: {logs:?}"));
        }
        let stored: BTreeSet<&String> = histories[0].iter().collect();
        for id in &self.acked {
            if !stored.contains(id) {
                return Err(format!("acknowledged message {id} was lost"));
            }
        }
        for (s, got) in &self.received {
            let unique: BTreeSet<&String> = got.iter().collect();
            if unique.len() != got.len() {
                return Err(format!("session {s} received a message twice"));
            }
        }
        if !self.faulted {
            // Without faults every session saw every message, in history's order.
            for (s, got) in &self.received {
                let expected: Vec<&String> =
                    histories[0].iter().filter(|id| got.contains(id)).collect();
                let got: Vec<&String> = got.iter().collect();
                if got != expected {
                    return Err(format!(
                        "session {s} received messages out of the stream's order"
                    ));
                }
                if got.len() != histories[0].len() {
                    return Err(format!(
                        "session {s} received {} of {} messages",
                        got.len(),
                        histories[0].len()
                    ));
                }
            }
        }
        let books: Vec<_> = self
            .nodes
            .iter()
            .map(|n| {
                let mut c: Vec<_> = n.store.load(&n.name).expect("memory store").contacts;
                c.sort();
                c
            })
            .collect();
        if books.iter().any(|b| *b != books[0]) {
            return Err("contact books differ between nodes".into());
        }
        let live: Vec<_> = self
            .nodes
            .iter()
            .map(|n| n.core.as_ref().map(|c| c.contacts_of("owner")))
            .collect();
        if live.iter().any(|b| *b != live[0]) {
            return Err("the nodes show different contact books".into());
        }
        if self.acked.is_empty() {
            return Err("nothing was acknowledged: the run tested nothing".into());
        }
        Ok(())
    }
}
