//! Streams by interest: a node subscribes to the subjects of the rooms its own users are in
//! and of its own users' conversations, and to no other, so that it receives those messages
//! and not every stream's (`Core::scope_streams` in the core says how the two paths of ops
//! fit together).
//!
//! - **Live**: a room message is published once, to JetStream, on its room's subject
//!   (`sb.<cluster>.room.<hex>`), a direct message on its conversation's
//!   (`sb.<cluster>.dm.<hex>.<hex>`, the two folded names in order); nats-server hands it at
//!   once to the core NATS subscribers of that subject and stores it in the stream. A node
//!   subscribes per room with local members, and per local user to both subjects naming them
//!   (`dm.<hex>.*`, `dm.*.<hex>`). A direct message queued for an offline recipient is a
//!   global op instead: they may sign in on any node.
//! - **Interest** starts when a user of this node joins a room, or signs in
//!   ([`Backplane::ensure`], awaited before the request reaches the core): the node
//!   subscribes, then backfills what it lacks of the scope from the stream, so that the join's
//!   cursor, the welcome's conversations and the history the node serves are whole. (A review
//!   every second catches any local room or user without interest.) Interest ends a while
//!   (`--backplane-room-idle-secs`) after the last local member or session left.
//! - **Backfill** reads the scope's subjects from the stream with ordered consumers, from a
//!   little before the node last had the scope whole (or from the start), and applies what it
//!   lacks. It also repairs a gap: a live message whose `Sb-Prev` (its origin's message in
//!   the stream before it) the node does not hold, a reconnection, a slow-consumer drop.
//! - **Order**: a node's room messages and its vouches for its clock (heartbeats, `clock`)
//!   leave on one NATS connection, and a node never vouches past an op it has not yet
//!   published (`Backplane::restate_vouch`), so the live messages that a vouch covers are in this
//!   node's subscription queues before the vouch is: the receive loop applies every scoped
//!   message it has ready, then vouches for their origins, then handles heartbeats and
//!   `clock` frames (`mod.rs`, `scoped_messages`).
//! - **Presence before messages**: a node subscribes for a user before the user's hello
//!   reaches the core, so before other nodes hear the user is online here (the announcement
//!   follows the subscription on the same connection): no live direct message to the user
//!   can miss this node.

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

/// How far before the moment a node last had a scope whole its backfill starts: covers
/// clock skew between this node and the NATS servers, and messages in flight then.
const MARGIN: Millis = 120_000;

/// How long a dropped scope's time is kept to start a later backfill from.
const DROPPED_KEPT: Millis = 24 * 3600 * 1000;

/// Most a join or sign-in waits for its backfill before going ahead with what the node has.
const BACKFILL_WAIT: Duration = Duration::from_secs(10);

/// The header naming the origin's previous op on the same path (its previous message in the
/// room, or its previous global op).
pub(super) const PREV: &str = "Sb-Prev";

/// Subscriptions waiting for the receive loop to take them up, at most.
const NEW_SUBS: usize = 1024;

/// A subscription handed to the receive loop, with what ends it.
pub(super) type NewSub = (async_nats::Subscriber, oneshot::Receiver<()>);

/// What a node receives by interest: a room (by room key), or a user's conversations (by
/// user key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Scope {
    Room(String),
    User(String),
}

impl Scope {
    /// The subjects that carry it.
    fn subjects(&self, cfg: &super::BackplaneConfig) -> Vec<String> {
        match self {
            Scope::Room(key) => vec![cfg.room(key)],
            Scope::User(key) => cfg.dms_of(key).into(),
        }
    }
}

/// One scope this node receives.
struct Interest {
    /// End the subscriptions when dropped (with the interest).
    ends: Vec<oneshot::Sender<()>>,
    /// True once the first backfill is done.
    ready: watch::Sender<bool>,
    /// Since when the scope has had no local member or session.
    idle_since: Option<Millis>,
    /// A backfill is running; `again` asks for one more after it.
    backfilling: bool,
    again: bool,
    /// When the node last had the scope whole (the start of its last backfill).
    whole_at: Option<Millis>,
    /// Subscriptions not yet made (a user's scope has two).
    subscribing: usize,
    /// Tells this interest from an earlier one in the same scope, whose subscribing task may
    /// still run.
    generation: u64,
}

/// The scopes a node receives.
pub(super) struct Interests {
    interest: Mutex<HashMap<Scope, Interest>>,
    /// When scopes no longer received were dropped (a later interest backfills from there).
    dropped: Mutex<HashMap<Scope, Millis>>,
    /// To the receive loop (bounded: a subscribing task waits while the loop is behind).
    subs: mpsc::Sender<NewSub>,
    pub subs_rx: Mutex<Option<mpsc::Receiver<NewSub>>>,
    /// Scoped messages received, live or by backfill.
    pub received: std::sync::atomic::AtomicU64,
    pub backfills: std::sync::atomic::AtomicU64,
    generations: std::sync::atomic::AtomicU64,
}

impl Interests {
    pub fn new() -> Interests {
        let (subs, subs_rx) = mpsc::channel(NEW_SUBS);
        Interests {
            interest: Mutex::new(HashMap::new()),
            dropped: Mutex::new(HashMap::new()),
            subs,
            subs_rx: Mutex::new(Some(subs_rx)),
            received: Default::default(),
            backfills: Default::default(),
            generations: Default::default(),
        }
    }

    /// How many rooms, and how many users' conversations, this node receives.
    pub fn count(&self) -> (usize, usize) {
        let interest = self.interest.lock().expect("interest lock");
        let rooms = interest
            .keys()
            .filter(|s| matches!(s, Scope::Room(_)))
            .count();
        (rooms, interest.len() - rooms)
    }
}

impl Backplane {
    /// Makes this node receive `scope`, backfilling what it lacks first. Returns at once when
    /// it already does, or when NATS is unreachable (the node then serves from what it holds,
    /// and backfills once NATS is back).
    pub async fn ensure(self: &Arc<Self>, scope: Scope) {
        let mut ready = {
            let mut interest = self.interests.interest.lock().expect("interest lock");
            if let Some(i) = interest.get_mut(&scope) {
                i.idle_since = None;
                i.ready.subscribe()
            } else {
                let (ready, rx) = watch::channel(false);
                let subjects = scope.subjects(&self.cfg);
                let generation = self.interests.generations.fetch_add(1, Relaxed);
                interest.insert(
                    scope.clone(),
                    Interest {
                        ends: Vec::new(),
                        ready,
                        idle_since: None,
                        backfilling: false,
                        again: false,
                        whole_at: None,
                        subscribing: subjects.len(),
                        generation,
                    },
                );
                let me = self.clone();
                tokio::spawn(async move { me.subscribe(scope, subjects, generation).await });
                rx
            }
        };
        if *ready.borrow() || !self.is_connected() {
            return;
        }
        let _ = tokio::time::timeout(BACKFILL_WAIT, ready.wait_for(|r| *r)).await;
    }

    /// Subscribes to a scope's subjects, then backfills it.
    async fn subscribe(self: Arc<Self>, scope: Scope, subjects: Vec<String>, generation: u64) {
        // A node that has not reached NATS yet subscribes once it has.
        let client = loop {
            if let Some(c) = self.client.get() {
                break c.clone();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if !self.interested(&scope, generation) {
                return;
            }
        };
        for subject in subjects {
            let sub = loop {
                match client.subscribe(subject.clone()).await {
                    Ok(s) => break s,
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
                if !self.interested(&scope, generation) {
                    return;
                }
            };
            let (end, ended) = oneshot::channel();
            {
                let mut interest = self.interests.interest.lock().expect("interest lock");
                match interest.get_mut(&scope) {
                    Some(i) if i.generation == generation => {
                        i.ends.push(end);
                        i.subscribing = i.subscribing.saturating_sub(1);
                    }
                    _ => return,
                }
            }
            if self.interests.subs.send((sub, ended)).await.is_err() {
                return;
            }
        }
        self.backfill(scope);
    }

    fn interested(&self, scope: &Scope, generation: u64) -> bool {
        self.interests
            .interest
            .lock()
            .expect("interest lock")
            .get(scope)
            .is_some_and(|i| i.generation == generation)
    }

    /// Backfills `scope` from the stream, in a task; one at a time per scope (a request
    /// while one runs makes it run once more).
    pub(super) fn backfill(self: &Arc<Self>, scope: Scope) {
        let start = {
            let mut interest = self.interests.interest.lock().expect("interest lock");
            let Some(i) = interest.get_mut(&scope) else {
                return;
            };
            if i.subscribing > 0 {
                // The subscription's own backfill follows.
                return;
            }
            if i.backfilling {
                i.again = true;
                return;
            }
            i.backfilling = true;
            let dropped = self
                .interests
                .dropped
                .lock()
                .expect("interest lock")
                .remove(&scope);
            i.whole_at.or(dropped).map(|t| t.saturating_sub(MARGIN))
        };
        let me = self.clone();
        tokio::spawn(async move {
            let mut start = start;
            // After a failure (NATS unreachable, the stream not made yet), retry backing off.
            let mut delay = Duration::from_millis(100);
            loop {
                let began = now_ms();
                me.interests.backfills.fetch_add(1, Relaxed);
                let mut result = Ok(true);
                for subject in scope.subjects(&me.cfg) {
                    result = me.read(&subject, start).await;
                    if !matches!(result, Ok(true)) {
                        break;
                    }
                }
                let gap = matches!(result, Ok(false));
                // Whether to read again, and from where.
                let again = {
                    let mut interest = me.interests.interest.lock().expect("interest lock");
                    let Some(i) = interest.get_mut(&scope) else {
                        return;
                    };
                    match result {
                        Ok(true) => {
                            i.whole_at = Some(began);
                            i.ready.send_replace(true);
                        }
                        // A gap before the start: read the scope from its beginning.
                        Ok(false) if start.is_some() => i.again = true,
                        Ok(false) => {
                            i.ready.send_replace(true);
                        }
                        Err(ref e) => {
                            tracing::warn!(?scope, error = %e, "backfilling from JetStream failed");
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
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        });
    }

    /// Reads `subject` from the stream (from `start`, or from its beginning) and applies what
    /// this node lacks, then waits for it to be on disk. `Ok(false)`: a gap before `start`.
    async fn read(&self, subject: &str, start: Option<Millis>) -> Result<bool, async_nats::Error> {
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
        let mut consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: subject.to_string(),
                deliver_policy,
                ..Default::default()
            })
            .await?;
        if consumer.info().await?.num_pending == 0 {
            return Ok(true);
        }
        let mut messages = consumer.messages().await?;
        let mut whole = true;
        while let Some(m) = messages.next().await {
            let m = m?;
            let pending = m.info().map(|i| i.pending).unwrap_or(0);
            if let Some((origin, ops)) = decode_scoped(&m) {
                let prev = start.and(prev_of(&m));
                self.interests.received.fetch_add(ops.len() as u64, Relaxed);
                let gap =
                    shared.run(|core, out| core.apply_scoped(&origin, prev, ops, out).is_err());
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

    /// Now and then: drops the scopes that have had no local member or session for a while,
    /// and takes up any local one without interest (each way of joining or signing in asks
    /// first; this is the safety net).
    pub(super) fn review_interest(self: &Arc<Self>, local: Vec<Scope>, now: Millis) {
        let idle = self.cfg.room_idle.as_millis() as Millis;
        let mut missing = Vec::new();
        {
            let mut interest = self.interests.interest.lock().expect("interest lock");
            let local: std::collections::HashSet<Scope> = local.into_iter().collect();
            let mut gone = Vec::new();
            for (scope, i) in interest.iter_mut() {
                if local.contains(scope) {
                    i.idle_since = None;
                } else if now.saturating_sub(*i.idle_since.get_or_insert(now)) >= idle
                    && !i.backfilling
                    && i.subscribing == 0
                {
                    gone.push(scope.clone());
                }
            }
            let mut dropped = self.interests.dropped.lock().expect("interest lock");
            for scope in gone {
                if let Some(i) = interest.remove(&scope) {
                    // Whole up to now: a later interest backfills from here.
                    if i.whole_at.is_some() {
                        dropped.insert(scope, now);
                    }
                }
            }
            // A scope dropped a day ago is read from its start if it comes back: the map stays
            // the size of a day's comings and goings.
            dropped.retain(|_, at| now.saturating_sub(*at) < DROPPED_KEPT);
            missing.extend(local.into_iter().filter(|s| !interest.contains_key(s)));
        }
        for scope in missing {
            let me = self.clone();
            tokio::spawn(async move { me.ensure(scope).await });
        }
    }

    /// Every received scope may have missed live messages (a reconnection, a slow-consumer
    /// drop): backfill each from a little before.
    pub(super) fn backfill_all(self: &Arc<Self>) {
        let scopes: Vec<Scope> = self
            .interests
            .interest
            .lock()
            .expect("interest lock")
            .keys()
            .cloned()
            .collect();
        for scope in scopes {
            self.backfill(scope);
        }
    }
}

/// The origin and ops of a scoped message from the stream or a subscription.
pub(super) fn decode_scoped(m: &async_nats::Message) -> Option<(String, Vec<Op>)> {
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
