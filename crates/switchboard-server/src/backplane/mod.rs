//! NATS (with JetStream) as the cluster's backplane, next to the mesh of `cluster/`: the
//! same three calls into the core (`peer_linked`, `peer_message`, `peer_unlinked`) and the
//! same three effects out of it (`ToPeer`, `ToPeers`, `CatchUp`), carried by NATS instead of
//! peer links (docs/cluster.md, "The NATS backplane").
//!
//! - Core NATS carries what the mesh's links carry, except ops: heartbeats and broadcasts on
//!   `sb.<cluster>.all.<from>`, messages to one node on `sb.<cluster>.to.<node>.<from>`.
//! - JetStream carries the ops: each node publishes its own, once durable locally, on
//!   `sb.<cluster>.ops.<origin>` in the stream `SB_<cluster>`, and reads everyone's through a
//!   durable consumer named after itself (`jetstream.rs`).
//! - Room and direct messages go by interest, on room and conversation subjects, to the nodes
//!   with members or sessions there (`interest.rs`, and `Core::scope_streams` in the core).
//! - One task hears all of it, in an order the hold-back order can trust (`receive.rs`).
//! - Membership is who has been heard lately (`members.rs`).

mod config;
mod interest;
mod jetstream;
mod members;
mod receive;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use switchboard_proto::ops::Op;
use switchboard_proto::peer::{Member, PeerMsg};
use tokio::sync::{mpsc, watch};

pub use config::BackplaneConfig;
pub(crate) use interest::Scope;
use members::{MemberView, Members};

use crate::conn::now_ms;
use crate::shared::Shared;

/// Frames queued for core NATS before new ones are dropped (heartbeats and anti-entropy
/// repair what a dropped frame carried, as on a mesh link that was closed).
const OUT_QUEUE: usize = 4096;

/// Batches of own durable ops queued for JetStream before new ones are dropped (the
/// publisher then reads them back from the store, where they already are).
const OPS_QUEUE: usize = 256;

/// Ops per catch-up message on a node's inbox subject (NATS's default payload limit is 1 MB).
const CATCH_UP_BATCH: usize = 100;

/// Vouches kept per peer while the ops they cover are still on their way through JetStream.
const PARKED: usize = 64;

/// The header carrying the sender's incarnation on heartbeats.
const INCARNATION: &str = "Sb-Incarnation";

/// One frame for core NATS.
struct Out {
    subject: String,
    incarnation: bool,
    payload: Bytes,
}

/// The NATS transport of a node.
pub(crate) struct Backplane {
    pub cfg: BackplaneConfig,
    node: String,
    /// What this node advertises to clients (`--advertise`).
    url: String,
    incarnation: u64,
    heartbeat_every: Duration,
    down_after: Duration,
    client: OnceLock<async_nats::Client>,
    /// The node, for tasks started from inside `Shared::execute` (which holds the core lock).
    shared: OnceLock<std::sync::Weak<Shared>>,
    out: mpsc::Sender<Out>,
    out_rx: Mutex<Option<mpsc::Receiver<Out>>>,
    ops: mpsc::Sender<Vec<Op>>,
    ops_rx: Mutex<Option<mpsc::Receiver<Vec<Op>>>>,
    /// Whether the client is connected to a NATS server.
    connected: watch::Sender<bool>,
    members: Mutex<Members>,
    /// Vouches (clock, the sender's own ops they cover) not yet usable: see [`Backplane::park`].
    parked: Mutex<HashMap<String, VecDeque<(u64, u64)>>>,
    catching_up: Mutex<HashSet<String>>,
    /// The highest of this node's ops JetStream has acknowledged.
    pub published: AtomicU64,
    pub published_ops: AtomicU64,
    pub consumed_ops: AtomicU64,
    pub dropped_frames: AtomicU64,
    /// The rooms and users' conversations this node receives (interest.rs).
    interests: interest::Interests,
    /// This node's ops handed to the publisher and not yet published: the last oseq of each
    /// batch -> the Lamport clock of its first op. No vouch goes past them (`restate_vouch`).
    unpublished: Mutex<BTreeMap<u64, u64>>,
    /// The newest of this node's global ops (not room messages) handed to NATS.
    pub last_global: AtomicU64,
}

impl Backplane {
    pub fn new(
        cfg: BackplaneConfig,
        node: String,
        url: String,
        heartbeat_every: Duration,
        down_after: Duration,
    ) -> Backplane {
        let (out, out_rx) = mpsc::channel(OUT_QUEUE);
        let (ops, ops_rx) = mpsc::channel(OPS_QUEUE);
        Backplane {
            cfg,
            node,
            url,
            incarnation: now_ms(),
            heartbeat_every,
            down_after,
            client: OnceLock::new(),
            shared: OnceLock::new(),
            out,
            out_rx: Mutex::new(Some(out_rx)),
            ops,
            ops_rx: Mutex::new(Some(ops_rx)),
            connected: watch::channel(false).0,
            members: Mutex::new(Members::default()),
            parked: Mutex::new(HashMap::new()),
            catching_up: Mutex::new(HashSet::new()),
            published: AtomicU64::new(0),
            published_ops: AtomicU64::new(0),
            consumed_ops: AtomicU64::new(0),
            dropped_frames: AtomicU64::new(0),
            interests: interest::Interests::new(),
            unpublished: Mutex::new(BTreeMap::new()),
            last_global: AtomicU64::new(0),
        }
    }

    /// Lets the backplane reach the node it serves.
    pub fn attach(&self, shared: &Arc<Shared>) {
        let _ = self.shared.set(Arc::downgrade(shared));
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    fn queue(&self, subject: String, payload: Bytes, incarnation: bool) {
        let out = Out {
            subject,
            incarnation,
            payload,
        };
        if self.out.try_send(out).is_err() {
            self.dropped_frames.fetch_add(1, Relaxed);
        }
    }

    /// `ToPeer`: on the node's inbox subject.
    pub fn send_to(&self, node: &str, msg: &PeerMsg) {
        let frame = serde_json::to_vec(msg).expect("peer messages serialise");
        self.queue(self.cfg.to(node, &self.node), frame.into(), false);
    }

    /// `ToPeers`: on this node's broadcast subject. A vouch is restated for NATS (`restate_vouch`).
    pub fn to_peers(&self, mut msg: PeerMsg) {
        if let PeerMsg::Clock { clock, stored } = &mut msg {
            self.restate_vouch(clock, stored);
        }
        let frame = serde_json::to_vec(&msg).expect("peer messages serialise");
        self.queue(self.cfg.all(&self.node), frame.into(), false);
    }

    /// This node's ops, durable here: to JetStream (the writer's hook, called before the
    /// core hears they are durable, so before it may vouch for them).
    pub fn publish_own(&self, ops: Vec<Op>) {
        if let (Some(first), Some(last)) = (ops.first(), ops.last()) {
            let mut u = self.unpublished.lock().expect("unpublished lock");
            u.insert(last.meta.oseq, first.meta.lamport);
        }
        // A full queue drops the batch: the publisher notices the gap and reads the store.
        let _ = self.ops.try_send(ops);
    }

    /// The publisher handed this node's ops up to `oseq` to NATS.
    fn handed(&self, oseq: u64) {
        let mut u = self.unpublished.lock().expect("unpublished lock");
        *u = u.split_off(&(oseq + 1));
    }

    /// Restates a vouch of the core (a heartbeat's or a `clock` frame's clock, and the
    /// vector that says how far the vouch reaches) for NATS:
    /// - the clock stays below every op not yet handed to NATS. On the mesh an op goes on
    ///   every link before the core hears it is durable; here it goes through the publisher,
    ///   and room messages reach other nodes on core NATS in the order of this connection, so
    ///   a vouch must not overtake them (interest.rs);
    /// - this node's entry counts the global ops it has published, which is what other nodes
    ///   receive of it through JetStream (and park the vouch until they hold).
    fn restate_vouch(&self, clock: &mut u64, vector: &mut BTreeMap<String, u64>) {
        let u = self.unpublished.lock().expect("unpublished lock");
        if let Some(first) = u.values().min() {
            *clock = (*clock).min(first.saturating_sub(1));
        }
        vector.insert(self.node.clone(), self.last_global.load(Relaxed));
    }

    /// `CatchUp`: this node's own ops that `vv` lacks, on the asker's inbox subject. Only its
    /// own: every other origin's ops reach the asker through its JetStream consumer, even when
    /// their origin is gone; this path is for a gap (an op the stream no longer holds) and
    /// to be quick when a node relinks.
    /// Called with the core locked: the work happens in a task.
    pub fn catch_up(self: &Arc<Self>, node: String, vv: BTreeMap<String, u64>) {
        if !self
            .catching_up
            .lock()
            .expect("catch-up lock")
            .insert(node.clone())
        {
            return;
        }
        let client = self.client.get().cloned();
        let shared = self.shared.get().and_then(std::sync::Weak::upgrade);
        let (Some(client), Some(shared)) = (client, shared) else {
            self.catching_up
                .lock()
                .expect("catch-up lock")
                .remove(&node);
            return;
        };
        let me = self.clone();
        tokio::spawn(async move {
            // The asker's newest global op of ours: what the first batch follows.
            let mut prev = vv.get(&me.node).copied().unwrap_or(0);
            let mut after = prev;
            let store = shared.store.clone();
            let subject = me.cfg.to(&node, &me.node);
            loop {
                let (s, origin) = (store.clone(), me.node.clone());
                let ops =
                    tokio::task::spawn_blocking(move || s.ops_of(&origin, after, CATCH_UP_BATCH))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default();
                let Some(last) = ops.last() else {
                    break;
                };
                after = last.meta.oseq;
                // Room and direct messages reach the asker by its interest (interest.rs).
                let ops: Vec<Op> = ops
                    .into_iter()
                    .filter(|o| !switchboard_core::Core::is_scoped(o))
                    .collect();
                let Some(next_prev) = ops.last().map(|o| o.meta.oseq) else {
                    continue;
                };
                let frame = serde_json::to_vec(&PeerMsg::Ops { ops }).expect("ops serialise");
                let mut h = async_nats::HeaderMap::new();
                h.insert(interest::PREV, prev.to_string().as_str());
                prev = next_prev;
                if client
                    .publish_with_headers(subject.clone(), h, frame.into())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            me.catching_up.lock().expect("catch-up lock").remove(&node);
        });
    }

    /// Keeps a vouch whose ops have not arrived yet. On the mesh a peer's ops and its vouches
    /// share one FIFO link; here the ops come through JetStream and the vouches through core
    /// NATS, which is usually faster. The core ignores a vouch for ops it lacks (it would be
    /// unsafe), so without this a busy node's vouches would never be usable.
    fn park(&self, core: &switchboard_core::Core, node: &str, msg: &PeerMsg) {
        let (clock, need) = match msg {
            PeerMsg::Heartbeat { clock, vv, .. } => (*clock, vv.get(node)),
            PeerMsg::Clock { clock, stored } => (*clock, stored.get(node)),
            _ => return,
        };
        let Some(&need) = need else { return };
        if core.holds_of(node) >= need {
            return;
        }
        let mut parked = self.parked.lock().expect("parked lock");
        let q = parked.entry(node.to_string()).or_default();
        if q.len() >= PARKED {
            q.pop_front();
        }
        q.push_back((clock, need));
    }

    /// Applies the parked vouches whose ops have arrived.
    fn unpark(&self, core: &mut switchboard_core::Core, out: &mut Vec<switchboard_core::Effect>) {
        let mut parked = self.parked.lock().expect("parked lock");
        for (node, q) in parked.iter_mut() {
            let held = core.holds_of(node);
            let mut best = None;
            while q.front().is_some_and(|(_, need)| *need <= held) {
                let (clock, _) = q.pop_front().expect("front exists");
                best = best.max(Some(clock));
            }
            if let Some(clock) = best {
                core.peer_clock(node, clock, out);
            }
        }
        parked.retain(|_, q| !q.is_empty());
    }

    /// What `/v1/cluster` lists.
    pub fn members(&self) -> Vec<MemberView> {
        self.members.lock().expect("members lock").views()
    }

    /// The `backplane` object of `/healthz`.
    pub fn health(&self, stored_own: u64) -> serde_json::Value {
        let published = self.published.load(Relaxed);
        let (rooms, users) = self.interests.count();
        serde_json::json!({
            "kind": "nats",
            "connected": self.is_connected(),
            "status": if self.is_connected() { "up" } else { "down" },
            "unpublished_ops": stored_own.saturating_sub(published),
            "rooms_received": rooms,
            "users_received": users,
        })
    }

    /// Prometheus lines for `/metrics`.
    pub fn render_metrics(&self, stored_own: u64) -> String {
        let up = u64::from(self.is_connected());
        let published = self.published.load(Relaxed);
        let lines = [
            (
                "backplane_up",
                "gauge",
                "1 while the NATS backplane is connected.",
                up,
            ),
            (
                "backplane_published_ops",
                "counter",
                "Own ops JetStream acknowledged.",
                self.published_ops.load(Relaxed),
            ),
            (
                "backplane_consumed_ops",
                "counter",
                "Ops of other nodes read from JetStream.",
                self.consumed_ops.load(Relaxed),
            ),
            (
                "backplane_unpublished_ops",
                "gauge",
                "Own durable ops not yet in JetStream.",
                stored_own.saturating_sub(published),
            ),
            (
                "backplane_dropped_frames",
                "counter",
                "Core NATS frames dropped on a full queue.",
                self.dropped_frames.load(Relaxed),
            ),
            (
                "backplane_rooms",
                "gauge",
                "Rooms this node receives (it has members there, or had a moment ago).",
                self.interests.count().0 as u64,
            ),
            (
                "backplane_users",
                "gauge",
                "Users whose conversations this node receives (signed in here now or lately).",
                self.interests.count().1 as u64,
            ),
            (
                "backplane_scoped_ops",
                "counter",
                "Room and direct messages of other nodes received, live or by backfill.",
                self.interests.received.load(Relaxed),
            ),
            (
                "backplane_backfills",
                "counter",
                "Reads of a room or a user's conversations from JetStream (a new interest, a gap, a reconnection).",
                self.interests.backfills.load(Relaxed),
            ),
        ];
        let mut s = String::new();
        for (name, kind, help, v) in lines {
            s.push_str(&format!(
                "# HELP switchboard_{name} {help}\n# TYPE switchboard_{name} {kind}\nswitchboard_{name} {v}\n"
            ));
        }
        s
    }
}

/// Connects to NATS and runs the transport until shutdown.
pub(crate) async fn run(shared: Arc<Shared>, bp: Arc<Backplane>) {
    let connected = bp.connected.clone();
    let weak = Arc::downgrade(&bp);
    let options = match bp.cfg.options(&bp.node).await {
        Ok(o) => o.event_callback(move |e| {
            let connected = connected.clone();
            let weak = weak.clone();
            async move {
                match e {
                    async_nats::Event::Connected => {
                        connected.send_replace(true);
                    }
                    async_nats::Event::Disconnected | async_nats::Event::Closed => {
                        connected.send_replace(false);
                    }
                    async_nats::Event::SlowConsumer(_) => {
                        // Live room messages were dropped: read the rooms again.
                        tracing::warn!("NATS dropped messages for this slow node");
                        if let Some(bp) = weak.upgrade() {
                            bp.backfill_all();
                        }
                    }
                    other => tracing::info!(event = %other, "NATS"),
                }
            }
        }),
        Err(e) => {
            tracing::error!(error = %e, "the NATS backplane is misconfigured");
            return;
        }
    };
    let client = match options.connect(bp.cfg.addrs()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "connecting to NATS failed");
            return;
        }
    };
    if client.connection_state() == async_nats::connection::State::Connected {
        bp.connected.send_replace(true);
    }
    let _ = bp.client.set(client.clone());
    let mut stop = shared.cluster.stop.subscribe();
    let tasks = [
        tokio::spawn(send_loop(bp.clone(), client.clone())),
        tokio::spawn(receive::receive_loop(
            shared.clone(),
            bp.clone(),
            client.clone(),
        )),
        tokio::spawn(tick_loop(shared.clone(), bp.clone())),
        tokio::spawn(jetstream::publisher(
            shared.clone(),
            bp.clone(),
            client.clone(),
        )),
        tokio::spawn(jetstream::consumer(
            shared.clone(),
            bp.clone(),
            client.clone(),
        )),
    ];
    crate::cluster::stopped(&mut stop).await;
    for t in tasks {
        t.abort();
    }
    // As when a mesh node's links close at shutdown: acks of what is still being written wait
    // for nobody (the ops are on disk and are published at the next start).
    let members = bp.members.lock().expect("members lock").up();
    shared.run(|core, out| {
        core.backplane_unreachable(out);
        for node in &members {
            core.peer_unlinked(node, out);
        }
    });
    let _ = client.flush().await;
}

/// Publishes queued frames in order on one connection (NATS keeps a publisher's order).
async fn send_loop(bp: Arc<Backplane>, client: async_nats::Client) {
    let Some(mut rx) = bp.out_rx.lock().expect("out lock").take() else {
        return;
    };
    while let Some(out) = rx.recv().await {
        let sent = if out.incarnation {
            let mut h = async_nats::HeaderMap::new();
            h.insert(INCARNATION, bp.incarnation.to_string().as_str());
            client
                .publish_with_headers(out.subject, h, out.payload)
                .await
        } else {
            client.publish(out.subject, out.payload).await
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "NATS publish failed");
        }
    }
}

/// Heartbeats out, silent members down, parked vouches released, and the connection's
/// comings and goings told to the core.
async fn tick_loop(shared: Arc<Shared>, bp: Arc<Backplane>) {
    let mut beat = tokio::time::interval(bp.heartbeat_every);
    let mut check = tokio::time::interval(Duration::from_millis(100));
    let mut reviews = 0u64;
    let mut conn = bp.connected.subscribe();
    loop {
        tokio::select! {
            _ = beat.tick() => {
                let (mut clock, mut vv) = shared.core.lock().expect("core lock").heartbeat();
                bp.restate_vouch(&mut clock, &mut vv);
                let mut members = vec![Member { node: bp.node.clone(), url: bp.url.clone() }];
                let up = bp.members.lock().expect("members lock").up();
                members.extend(up.into_iter().map(|node| Member { node, url: String::new() }));
                let hb = serde_json::to_vec(&PeerMsg::Heartbeat { clock, members, vv })
                    .expect("heartbeats serialise");
                bp.queue(bp.cfg.all(&bp.node), hb.into(), true);
            }
            _ = check.tick() => {
                let gone = bp
                    .members
                    .lock()
                    .expect("members lock")
                    .expire(now_ms(), bp.down_after.as_millis() as u64);
                reviews += 1;
                if reviews.is_multiple_of(10) {
                    // Once a second: interest that ended, or that a path into the core missed.
                    let local = {
                        let core = shared.core.lock().expect("core lock");
                        let rooms = core.local_rooms().into_iter().map(interest::Scope::Room);
                        let users = core.local_users().into_iter().map(interest::Scope::User);
                        rooms.chain(users).collect()
                    };
                    bp.review_interest(local, now_ms());
                }
                shared.run(|core, out| {
                    for node in &gone {
                        tracing::info!(%node, "backplane member down");
                        bp.parked.lock().expect("parked lock").remove(node);
                        core.peer_unlinked(node, out);
                    }
                    bp.unpark(core, out);
                });
            }
            changed = conn.changed() => {
                if changed.is_err() {
                    return;
                }
                let up = *conn.borrow_and_update();
                if up {
                    tracing::info!("NATS backplane connected");
                    // What was said while disconnected may be lost: say again what a new
                    // link says to every member still counted up.
                    let members = bp.members.lock().expect("members lock").up();
                    shared.run(|core, out| {
                        for node in &members {
                            core.peer_linked(node, out);
                        }
                    });
                    // Live room messages published meanwhile were lost to this node.
                    bp.backfill_all();
                } else {
                    tracing::warn!("NATS backplane unreachable; serving local users");
                    shared.run(|core, out| core.backplane_unreachable(out));
                }
            }
        }
    }
}
