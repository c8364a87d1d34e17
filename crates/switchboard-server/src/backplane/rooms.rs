//! Rooms by interest: a node subscribes to the room subjects of the rooms its own users are
//! in, and to no other, so that it receives those rooms' messages and not every room's
//! (`Core::scope_rooms` in the core says how the two paths of ops fit together).
//!
//! - **Live**: a room message is published once, to JetStream, on its room's subject
//!   (`sb.<cluster>.room.<hex>`); nats-server hands it at once to the core NATS subscribers of
//!   that subject, the nodes with members in the room, and stores it in the stream.
//! - **Interest** starts when a user of this node joins a room ([`Backplane::ensure_room`],
//!   awaited before the join reaches the core): the node subscribes, then backfills what it
//!   lacks of the room from the stream, so that the join's cursor and the history it serves
//!   are whole. Interest ends a while (`--backplane-room-idle-secs`) after the room's last
//!   local member left.
//! - **Backfill** reads the room's subject from the stream with an ordered consumer, from
//!   a little before the node last had the room whole (or from the start), and applies what
//!   it lacks. It also repairs a gap: a live message whose `Sb-Prev` (its origin's message
//!   in the room before it) the node does not hold, a reconnection, a slow-consumer drop.
//! - **Order**: a node's room messages and its vouches for its clock (heartbeats, `clock`)
//!   leave on one NATS connection, and a node never vouches past an op it has not yet
//!   published (`Backplane::vouchable`), so the live messages that a vouch covers are in this
//!   node's subscription queues before the vouch is: the receive loop applies every room
//!   message it has before any vouch (`mod.rs`).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::DeliverPolicy};
use futures_util::StreamExt;
use switchboard_proto::ops::Op;
use switchboard_proto::Millis;
use tokio::sync::{mpsc, oneshot, watch};

use super::Backplane;
use crate::conn::now_ms;

/// How far before the moment a node last had a room whole its backfill starts: covers
/// clock skew between this node and the NATS servers, and messages in flight then.
const MARGIN: Millis = 120_000;

/// Most a join waits for its room's backfill before going ahead with what the node has.
const BACKFILL_WAIT: Duration = Duration::from_secs(10);

/// The header naming the origin's previous op on the same path (its previous message in the
/// room, or its previous global op).
pub(super) const PREV: &str = "Sb-Prev";

/// A subscription handed to the receive loop, with what ends it.
pub(super) type NewSub = (async_nats::Subscriber, oneshot::Receiver<()>);

/// One room this node receives.
struct Interest {
    /// Ends the subscription when dropped (with the interest).
    _ends: Option<oneshot::Sender<()>>,
    /// True once the first backfill is done.
    ready: watch::Sender<bool>,
    /// Since when the room has had no local member.
    idle_since: Option<Millis>,
    /// A backfill is running; `again` asks for one more after it.
    backfilling: bool,
    again: bool,
    /// When the node last had the room whole (a backfill's start, or the subscription's).
    whole_at: Option<Millis>,
}

/// The rooms a node receives.
pub(super) struct Rooms {
    interest: Mutex<HashMap<String, Interest>>,
    /// When rooms no longer received were dropped (a later interest backfills from there).
    dropped: Mutex<HashMap<String, Millis>>,
    subs: mpsc::UnboundedSender<NewSub>,
    pub subs_rx: Mutex<Option<mpsc::UnboundedReceiver<NewSub>>>,
    /// Room messages received, live or by backfill.
    pub received: std::sync::atomic::AtomicU64,
    pub backfills: std::sync::atomic::AtomicU64,
}

impl Rooms {
    pub fn new() -> Rooms {
        let (subs, subs_rx) = mpsc::unbounded_channel();
        Rooms {
            interest: Mutex::new(HashMap::new()),
            dropped: Mutex::new(HashMap::new()),
            subs,
            subs_rx: Mutex::new(Some(subs_rx)),
            received: Default::default(),
            backfills: Default::default(),
        }
    }

    /// How many rooms this node receives.
    pub fn count(&self) -> usize {
        self.interest.lock().expect("rooms lock").len()
    }
}

impl Backplane {
    /// Makes this node receive room `key` (a room key, `#name`), backfilling what it lacks
    /// first. Returns at once when it already does, or when NATS is unreachable (the node
    /// then serves the room from what it holds, and backfills once NATS is back).
    pub async fn ensure_room(self: &Arc<Self>, key: &str) {
        let mut ready = {
            let mut interest = self.rooms.interest.lock().expect("rooms lock");
            if let Some(i) = interest.get_mut(key) {
                i.idle_since = None;
                i.ready.subscribe()
            } else {
                let (ready, rx) = watch::channel(false);
                interest.insert(
                    key.to_string(),
                    Interest {
                        _ends: None,
                        ready,
                        idle_since: None,
                        backfilling: false,
                        again: false,
                        whole_at: None,
                    },
                );
                let me = self.clone();
                let key = key.to_string();
                tokio::spawn(async move { me.subscribe_room(key).await });
                rx
            }
        };
        if *ready.borrow() || !self.is_connected() {
            return;
        }
        let _ = tokio::time::timeout(BACKFILL_WAIT, ready.wait_for(|r| *r)).await;
    }

    /// Subscribes to a room's subject, then backfills it.
    async fn subscribe_room(self: Arc<Self>, key: String) {
        // A node that has not reached NATS yet subscribes once it has.
        let client = loop {
            if let Some(c) = self.client.get() {
                break c.clone();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if !self
                .rooms
                .interest
                .lock()
                .expect("rooms lock")
                .contains_key(&key)
            {
                return;
            }
        };
        let subject = self.cfg.room(&key);
        let sub = loop {
            match client.subscribe(subject.clone()).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            if !self
                .rooms
                .interest
                .lock()
                .expect("rooms lock")
                .contains_key(&key)
            {
                return;
            }
        };
        let (cancel, ended) = oneshot::channel();
        {
            let mut interest = self.rooms.interest.lock().expect("rooms lock");
            match interest.get_mut(&key) {
                Some(i) => i._ends = Some(cancel),
                None => return,
            }
        }
        let _ = self.rooms.subs.send((sub, ended));
        self.backfill(key);
    }

    /// Backfills room `key` from the stream, in a task; one at a time per room (a request
    /// while one runs makes it run once more).
    pub(super) fn backfill(self: &Arc<Self>, key: String) {
        let start = {
            let mut interest = self.rooms.interest.lock().expect("rooms lock");
            let Some(i) = interest.get_mut(&key) else {
                return;
            };
            if i.backfilling {
                i.again = true;
                return;
            }
            i.backfilling = true;
            let dropped = self.rooms.dropped.lock().expect("rooms lock").remove(&key);
            i.whole_at.or(dropped).map(|t| t.saturating_sub(MARGIN))
        };
        let me = self.clone();
        tokio::spawn(async move {
            let mut start = start;
            loop {
                let began = now_ms();
                me.rooms.backfills.fetch_add(1, Relaxed);
                let result = me.read_room(&key, start).await;
                let gap = matches!(result, Ok(false));
                // Whether to read again, and from where.
                let again = {
                    let mut interest = me.rooms.interest.lock().expect("rooms lock");
                    let Some(i) = interest.get_mut(&key) else {
                        return;
                    };
                    match result {
                        Ok(true) => {
                            i.whole_at = Some(began);
                            i.ready.send_replace(true);
                        }
                        // A gap before the start: read the room from its beginning.
                        Ok(false) if start.is_some() => i.again = true,
                        Ok(false) => {
                            i.ready.send_replace(true);
                        }
                        Err(ref e) => {
                            tracing::warn!(room = %key, error = %e, "backfilling a room from JetStream failed");
                            i.again = me.is_connected();
                        }
                    }
                    let again = std::mem::take(&mut i.again);
                    if !again {
                        i.backfilling = false;
                    }
                    again
                };
                if !again {
                    return;
                }
                if gap {
                    start = None;
                } else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
    }

    /// Reads room `key` from the stream (from `start`, or from its beginning) and applies
    /// what this node lacks, then waits for it to be on disk. `Ok(false)`: a gap before
    /// `start`.
    async fn read_room(&self, key: &str, start: Option<Millis>) -> Result<bool, async_nats::Error> {
        let (Some(client), Some(shared)) = (
            self.client.get().cloned(),
            self.shared.get().and_then(std::sync::Weak::upgrade),
        ) else {
            return Ok(true);
        };
        let js = jetstream::new(client);
        let stream = js.get_stream(self.cfg.stream()).await?;
        let deliver_policy = match start {
            Some(t) => DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(t) * 1_000_000,
                )?,
            },
            None => DeliverPolicy::All,
        };
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: self.cfg.room(key),
                deliver_policy,
                ..Default::default()
            })
            .await?;
        let mut consumer = consumer;
        if consumer.info().await?.num_pending == 0 {
            return Ok(true);
        }
        let mut messages = consumer.messages().await?;
        let mut whole = true;
        while let Some(m) = messages.next().await {
            let m = m?;
            let pending = m.info().map(|i| i.pending).unwrap_or(0);
            if let Some((origin, ops)) = decode_room(&m) {
                let prev = start.and(prev_of(&m));
                self.rooms.received.fetch_add(ops.len() as u64, Relaxed);
                let gap = shared.run(|core, out| {
                    core.apply_room_messages(&origin, prev, ops, false, out)
                        .is_err()
                });
                if gap {
                    whole = false;
                    break;
                }
            }
            if pending == 0 {
                break;
            }
        }
        let mark = shared.core.lock().expect("core lock").ops_mark();
        shared.ring();
        let deadline = tokio::time::Instant::now() + BACKFILL_WAIT;
        while !shared.core.lock().expect("core lock").written_through(mark)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(whole)
    }

    /// Drops the rooms that have had no local member for a while; called now and then.
    pub(super) fn forget_idle_rooms(&self, local: &[String], now: Millis) {
        let idle = self.cfg.room_idle.as_millis() as Millis;
        let mut interest = self.rooms.interest.lock().expect("rooms lock");
        let mut gone = Vec::new();
        for (key, i) in interest.iter_mut() {
            if local.contains(key) {
                i.idle_since = None;
            } else if now.saturating_sub(*i.idle_since.get_or_insert(now)) >= idle && !i.backfilling
            {
                gone.push(key.clone());
            }
        }
        let mut dropped = self.rooms.dropped.lock().expect("rooms lock");
        for key in gone {
            if let Some(i) = interest.remove(&key) {
                // Whole up to now: a later interest backfills from here.
                dropped.insert(key, i.whole_at.map_or(0, |_| now));
            }
        }
        dropped.retain(|_, t| *t > 0);
    }

    /// Every received room may have missed live messages (a reconnection, a slow-consumer
    /// drop): backfill each from a little before.
    pub(super) fn backfill_all(self: &Arc<Self>) {
        let keys: Vec<String> = self
            .rooms
            .interest
            .lock()
            .expect("rooms lock")
            .keys()
            .cloned()
            .collect();
        for key in keys {
            self.backfill(key);
        }
    }
}

/// The origin and ops of a room message from the stream or a subscription.
pub(super) fn decode_room(m: &async_nats::Message) -> Option<(String, Vec<Op>)> {
    let ops: Vec<Op> = serde_json::from_slice(&m.payload).ok()?;
    let origin = ops.first()?.meta.origin.clone();
    Some((origin, ops))
}

/// The `Sb-Prev` header: the origin's previous op on the same path.
pub(super) fn prev_of(m: &async_nats::Message) -> Option<u64> {
    m.headers
        .as_ref()?
        .get(PREV)
        .and_then(|v| v.as_str().parse().ok())
}
