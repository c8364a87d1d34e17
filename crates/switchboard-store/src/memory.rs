//! An in-memory store with the same behaviour as the SQLite one, for tests of the layers
//! above that do not need a disk.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use switchboard_core::{Op, OpBody, Restore};
use switchboard_proto::{ChatMessage, Millis};

use crate::{HistoryPage, Page, Store, StoreError};

#[derive(Default)]
struct State {
    messages: BTreeMap<(String, u64), (ChatMessage, String, u64)>,
    max_lamport: u64,
    max_oseq: HashMap<String, u64>,
    accounts: BTreeMap<String, (String, String)>,
    rooms: BTreeMap<String, (String, Option<String>)>,
    inbox: Vec<(String, String, u64)>,
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
        let last = |stream: &str| {
            s.messages
                .range((stream.to_string(), 0)..=(stream.to_string(), u64::MAX))
                .next_back()
                .map_or(0, |((_, seq), _)| *seq)
        };
        let mut dms: BTreeMap<String, (String, String, u64)> = BTreeMap::new();
        for ((stream, seq), (m, _, _)) in &s.messages {
            if stream.starts_with('@') {
                dms.insert(
                    stream.clone(),
                    (m.from.clone(), m.to.clone().unwrap_or_default(), *seq),
                );
            }
        }
        Ok(Restore {
            clock: s.max_lamport,
            oseq: s.max_oseq.get(node).copied().unwrap_or(0),
            accounts: s.accounts.values().cloned().collect(),
            rooms: s
                .rooms
                .iter()
                .map(|(k, (name, topic))| (name.clone(), topic.clone(), last(k)))
                .collect(),
            dms: dms
                .into_iter()
                .map(|(k, (a, b, seq))| (k, a, b, seq))
                .collect(),
            inbox: s
                .inbox
                .iter()
                .filter_map(|(u, stream, seq)| {
                    let m = s.messages.get(&(stream.clone(), *seq))?;
                    Some((u.clone(), m.0.clone()))
                })
                .collect(),
        })
    }

    fn append(&self, ops: &[Op]) -> Result<(), StoreError> {
        let mut s = self.state.lock().expect("state lock");
        for op in ops {
            s.max_lamport = s.max_lamport.max(op.meta.lamport);
            let o = s.max_oseq.entry(op.meta.origin.clone()).or_insert(0);
            *o = (*o).max(op.meta.oseq);
            match &op.body {
                OpBody::Message { msg, queued_for } => {
                    let key = (msg.stream.clone(), msg.seq);
                    if s.messages.contains_key(&key) {
                        continue;
                    }
                    s.messages
                        .insert(key, (msg.clone(), op.meta.origin.clone(), op.meta.oseq));
                    if let Some(u) = queued_for {
                        s.inbox.push((u.clone(), msg.stream.clone(), msg.seq));
                    }
                }
                OpBody::Account { name, hash, .. } => {
                    s.accounts
                        .entry(name.to_ascii_lowercase())
                        .or_insert((name.clone(), hash.clone()));
                }
                OpBody::Room { room, .. } => {
                    s.rooms
                        .entry(switchboard_proto::room_key(room))
                        .or_insert((room.clone(), None));
                }
                OpBody::Topic { room, topic, .. } => {
                    let e = s
                        .rooms
                        .entry(switchboard_proto::room_key(room))
                        .or_insert((room.clone(), None));
                    e.1 = topic.clone();
                }
                OpBody::InboxDelivered { user, entries } => {
                    s.inbox.retain(|(u, stream, seq)| {
                        !(u == user && entries.iter().any(|e| &e.stream == stream && e.seq == *seq))
                    });
                }
            }
        }
        Ok(())
    }

    fn history(
        &self,
        stream: &str,
        page: Page,
        limit: u32,
        floor: Millis,
    ) -> Result<HistoryPage, StoreError> {
        let s = self.state.lock().expect("state lock");
        let all = s
            .messages
            .range((stream.to_string(), 0)..=(stream.to_string(), u64::MAX))
            .map(|(_, (m, _, _))| m)
            .filter(|m| m.ts >= floor);
        let limit = limit as usize;
        let (mut messages, more): (Vec<ChatMessage>, bool) = match page {
            Page::Before(before) => {
                let mut v: Vec<ChatMessage> = all
                    .filter(|m| before.is_none_or(|b| m.seq < b))
                    .cloned()
                    .collect();
                let more = v.len() > limit;
                let cut = v.len().saturating_sub(limit);
                v.drain(..cut);
                (v, more)
            }
            Page::After(after) => {
                let v: Vec<ChatMessage> = all
                    .filter(|m| m.seq > after)
                    .take(limit + 1)
                    .cloned()
                    .collect();
                (v, false)
            }
        };
        let more = if matches!(page, Page::After(_)) {
            let more = messages.len() > limit;
            messages.truncate(limit);
            more
        } else {
            more
        };
        Ok(HistoryPage { messages, more })
    }
}
