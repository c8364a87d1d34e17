//! An in-memory store with the same behaviour as the SQLite one, for tests of the layers
//! above that do not need a disk.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use switchboard_core::{Op, OpBody, Restore, Stamp};
use switchboard_proto::cursor::{advance, covers};
use switchboard_proto::{ChatMessage, Cursor, Millis};

use crate::{HistoryPage, Page, Store, StoreError};

#[derive(Default)]
struct State {
    /// Keyed by (stream, lamport, origin): stream order.
    messages: BTreeMap<(String, u64, String), ChatMessage>,
    max_lamport: u64,
    max_oseq: HashMap<String, u64>,
    /// Every op by (origin, oseq), for `ops_since`.
    log: BTreeMap<(String, u64), Op>,
    accounts: BTreeMap<String, (String, String, Stamp)>,
    rooms: BTreeMap<String, (String, Option<String>, Stamp)>,
    /// (user, origin, oseq).
    inbox: Vec<(String, String, u64)>,
    /// (user, contact) -> (phone or tombstone, stamp).
    contacts: BTreeMap<(String, String), (Option<String>, Stamp)>,
}

impl State {
    fn put_contact(&mut self, user: &str, name: &str, phone: Option<String>, stamp: Stamp) {
        let key = (user.to_string(), name.to_string());
        if self.contacts.get(&key).is_none_or(|(_, at)| stamp > *at) {
            self.contacts.insert(key, (phone, stamp));
        }
    }

    fn stream(&self, stream: &str) -> impl DoubleEndedIterator<Item = &ChatMessage> {
        let lo = (stream.to_string(), 0, String::new());
        let hi = (stream.to_string(), u64::MAX, String::new());
        self.messages.range(lo..hi).map(|(_, m)| m)
    }

    fn cursor(&self, stream: &str) -> Cursor {
        let mut c = Cursor::new();
        for m in self.stream(stream) {
            advance(&mut c, m);
        }
        c
    }
}

/// A store that forgets everything when dropped.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn load(&self, node: &str) -> Result<Restore, StoreError> {
        let s = self.state.lock().expect("state lock");
        let mut dms: BTreeMap<String, (String, String)> = BTreeMap::new();
        for m in s.messages.values() {
            if m.stream.starts_with('@') {
                let people = (m.from.clone(), m.to.clone().unwrap_or_default());
                dms.insert(m.stream.clone(), people);
            }
        }
        let rooms = s
            .rooms
            .iter()
            .map(|(k, (name, topic, at))| (name.clone(), topic.clone(), s.cursor(k), at.clone()))
            .collect();
        let dms = dms
            .into_iter()
            .map(|(k, (a, b))| {
                let c = s.cursor(&k);
                (k, a, b, c)
            })
            .collect();
        let inbox = s
            .inbox
            .iter()
            .filter_map(|(u, origin, oseq)| {
                let m = s
                    .messages
                    .values()
                    .find(|m| &m.origin == origin && m.oseq == *oseq)?;
                Some((u.clone(), m.clone()))
            })
            .collect();
        Ok(Restore {
            clock: s.max_lamport,
            oseq: s.max_oseq.get(node).copied().unwrap_or(0),
            vv: s.max_oseq.iter().map(|(o, n)| (o.clone(), *n)).collect(),
            accounts: s.accounts.values().cloned().collect(),
            rooms,
            dms,
            inbox,
            contacts: s
                .contacts
                .iter()
                .map(|((u, n), (p, at))| (u.clone(), n.clone(), p.clone(), at.clone()))
                .collect(),
        })
    }

    fn append(&self, ops: &[Op], clock: u64) -> Result<(), StoreError> {
        let mut s = self.state.lock().expect("state lock");
        s.max_lamport = s.max_lamport.max(clock);
        for op in ops {
            let id = (op.meta.origin.clone(), op.meta.oseq);
            if s.log.contains_key(&id) {
                continue;
            }
            s.log.insert(id, op.clone());
            let stamp: Stamp = (op.meta.lamport, op.meta.origin.clone());
            s.max_lamport = s.max_lamport.max(op.meta.lamport);
            let o = s.max_oseq.entry(op.meta.origin.clone()).or_insert(0);
            *o = (*o).max(op.meta.oseq);
            match &op.body {
                OpBody::Message { msg, queued_for } => {
                    let key = (msg.stream.clone(), msg.lamport, msg.origin.clone());
                    if s.messages.contains_key(&key) {
                        continue;
                    }
                    s.messages.insert(key, msg.clone());
                    if let Some(u) = queued_for {
                        s.inbox.push((u.clone(), msg.origin.clone(), msg.oseq));
                    }
                }
                OpBody::Account { name, hash, .. } => {
                    let key = name.to_ascii_lowercase();
                    let earlier = s.accounts.get(&key).is_none_or(|a| stamp < a.2);
                    if earlier {
                        s.accounts.insert(key, (name.clone(), hash.clone(), stamp));
                    }
                }
                OpBody::Room { room, .. } => {
                    s.rooms.entry(switchboard_proto::room_key(room)).or_insert((
                        room.clone(),
                        None,
                        (0, String::new()),
                    ));
                }
                OpBody::Topic { room, topic, .. } => {
                    let e = s.rooms.entry(switchboard_proto::room_key(room)).or_insert((
                        room.clone(),
                        None,
                        (0, String::new()),
                    ));
                    if stamp > e.2 {
                        e.1 = topic.clone();
                        e.2 = stamp;
                    }
                }
                OpBody::ContactSet {
                    user, name, phone, ..
                } => {
                    s.put_contact(user, name, Some(phone.clone()), stamp);
                }
                OpBody::ContactDelete { user, name, .. } => {
                    s.put_contact(user, name, None, stamp);
                }
                OpBody::InboxDelivered { user, entries } => {
                    s.inbox.retain(|(u, origin, oseq)| {
                        let delivered = entries
                            .iter()
                            .any(|e| &e.origin == origin && e.oseq == *oseq);
                        !(u == user && delivered)
                    });
                }
            }
        }
        Ok(())
    }

    fn ops_of(&self, origin: &str, after: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        let s = self.state.lock().expect("state lock");
        Ok(s.log
            .range((origin.to_string(), after + 1)..=(origin.to_string(), u64::MAX))
            .take(limit)
            .map(|(_, op)| op.clone())
            .collect())
    }

    fn prev_in_stream(&self, stream: &str, origin: &str, before: u64) -> Result<u64, StoreError> {
        let s = self.state.lock().expect("state lock");
        Ok(s.messages
            .values()
            .filter(|m| m.stream == stream && m.origin == origin && m.oseq < before)
            .map(|m| m.oseq)
            .max()
            .unwrap_or(0))
    }

    fn global_vv(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let s = self.state.lock().expect("state lock");
        let mut vv = BTreeMap::new();
        for op in s.log.values() {
            if !switchboard_core::Core::is_scoped(op) {
                let e = vv.entry(op.meta.origin.clone()).or_insert(0);
                *e = op.meta.oseq.max(*e);
            }
        }
        Ok(vv)
    }

    fn ops_since(&self, vv: &BTreeMap<String, u64>, limit: usize) -> Result<Vec<Op>, StoreError> {
        let s = self.state.lock().expect("state lock");
        let mut out: Vec<Op> = s
            .log
            .iter()
            .filter(|((origin, oseq), _)| *oseq > vv.get(origin).copied().unwrap_or(0))
            .map(|(_, op)| op.clone())
            .take(limit)
            .collect();
        // The inbox as it stands now: a delivered message is no longer queued.
        for op in &mut out {
            if let OpBody::Message { msg, queued_for } = &mut op.body {
                let still = s
                    .inbox
                    .iter()
                    .find(|(_, o, n)| *o == msg.origin && *n == msg.oseq);
                *queued_for = still.map(|(u, _, _)| u.clone());
            }
        }
        Ok(out)
    }

    fn history(
        &self,
        stream: &str,
        page: Page,
        limit: u32,
        floor: Millis,
    ) -> Result<HistoryPage, StoreError> {
        let s = self.state.lock().expect("state lock");
        let all = s.stream(stream).filter(|m| m.ts >= floor);
        let limit = limit as usize;
        let (messages, more) = match &page {
            Page::Before(before) => {
                let mut v: Vec<ChatMessage> = all
                    .rev()
                    .filter(|m| before.as_ref().is_none_or(|b| m.position() < *b))
                    .take(limit + 1)
                    .cloned()
                    .collect();
                let more = v.len() > limit;
                v.truncate(limit);
                v.reverse();
                (v, more)
            }
            Page::Between {
                after,
                before,
                newest: true,
            } => {
                let mut v: Vec<ChatMessage> = all
                    .rev()
                    .filter(|m| after.below(m) && before.above(m))
                    .take(limit + 1)
                    .cloned()
                    .collect();
                let more = v.len() > limit;
                v.truncate(limit);
                v.reverse();
                (v, more)
            }
            Page::After(_) | Page::Between { .. } => {
                let mut v: Vec<ChatMessage> = all
                    .filter(|m| match &page {
                        Page::After(cursor) => !covers(cursor, m),
                        Page::Between { after, before, .. } => after.below(m) && before.above(m),
                        Page::Before(_) => unreachable!(),
                    })
                    .take(limit + 1)
                    .cloned()
                    .collect();
                let more = v.len() > limit;
                v.truncate(limit);
                (v, more)
            }
        };
        Ok(HistoryPage { messages, more })
    }
}
