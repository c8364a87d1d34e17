//! The invariants a simulated run must hold once the cluster has healed and gone quiet.

use std::collections::BTreeMap;

use switchboard_core::{OpBody, Stamp};
use switchboard_store::Store;

use crate::Sim;

impl Sim {
    /// Checks the invariants; returns what is violated.
    pub fn check(&self) -> Result<(), String> {
        let log = self.check_same_ops()?;
        let histories = self.check_same_streams(&log)?;
        self.check_acked_kept(&histories)?;
        self.check_acks_arrive(&log)?;
        self.check_deliveries(&histories)?;
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
        self.check_last_writer_wins(&books[0])?;
        if self.acked.is_empty() {
            return Err("nothing was acknowledged: the run tested nothing".into());
        }
        Ok(())
    }

    /// Agreement is not enough: every node could agree on the wrong value. For every
    /// (user, contact), the converged register must hold the contact op with the greatest
    /// (Lamport, origin) stamp among all the run's contact ops, and the books the cores show
    /// must be exactly the live registers.
    ///
    /// "All the run's ops" is the union of every node's op log, not a record kept at issue
    /// time: an op issued on a node that crashed before writing it was never durable, never
    /// left that node and vanished with its memory, so it rightly takes part in nothing. The
    /// logs are read from the stores, so this needs no hook in the simulator's loop.
    fn check_last_writer_wins(&self, book: &[Register]) -> Result<(), String> {
        let winners = self.greatest_contact_ops();
        if winners.is_empty() {
            return Err("no contact edit was made: the books were not tested".into());
        }
        let stored: Registers = book
            .iter()
            .map(|(u, n, p, at)| ((u.clone(), n.clone()), (p.clone(), at.clone())))
            .collect();
        if stored != winners {
            let wrong = winners
                .iter()
                .find(|(k, w)| stored.get(*k) != Some(*w))
                .map(|(k, w)| format!("{k:?}: want {w:?}, stored {:?}", stored.get(k)));
            return Err(format!(
                "a contact register is not its last writer: {}",
                wrong.unwrap_or_else(|| "a register no op wrote is stored".into())
            ));
        }
        let live: Vec<(String, String)> = winners
            .iter()
            .filter(|((user, _), _)| user == "owner")
            .filter_map(|((_, name), (phone, _))| Some((name.clone(), phone.clone()?)))
            .collect();
        for n in &self.nodes {
            let Some(core) = &n.core else { continue };
            let shown: Vec<(String, String)> = core
                .contacts_of("owner")
                .into_iter()
                .map(|c| (c.name, c.phone))
                .collect();
            if shown != live {
                return Err(format!(
                    "node {} shows {shown:?}, the last writers are {live:?}",
                    n.name
                ));
            }
        }
        Ok(())
    }

    /// Per (user, contact): the phone (`None` for a delete) and stamp of the contact op with
    /// the greatest (Lamport, origin) stamp in any node's log.
    fn greatest_contact_ops(&self) -> Registers {
        let mut winners = BTreeMap::new();
        for n in &self.nodes {
            let ops = n
                .store
                .ops_since(&BTreeMap::new(), usize::MAX)
                .expect("memory store");
            for op in ops {
                let (user, name, phone) = match op.body {
                    OpBody::ContactSet {
                        user, name, phone, ..
                    } => (user, name, Some(phone)),
                    OpBody::ContactDelete { user, name, .. } => (user, name, None),
                    _ => continue,
                };
                let stamp = (op.meta.lamport, op.meta.origin);
                let entry = winners
                    .entry((user, name))
                    .or_insert_with(|| (phone.clone(), stamp.clone()));
                if stamp > entry.1 {
                    *entry = (phone, stamp);
                }
            }
        }
        winners
    }
}

/// A stored contact register: (user, contact, phone or tombstone, stamp).
type Register = (String, String, Option<String>, Stamp);

/// Contact registers by (user, contact): (phone or tombstone, stamp).
type Registers = BTreeMap<(String, String), (Option<String>, Stamp)>;
