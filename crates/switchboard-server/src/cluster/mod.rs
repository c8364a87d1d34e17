//! The cluster's IO: peer links over WebSocket at `/v1/peer` on the node's own port, the
//! authenticated handshake, heartbeats, and the driver that dials and re-dials peers as the
//! sans-IO [`Membership`] says. Replication of ops rides on these links (docs/cluster.md).

mod auth;
mod link;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use switchboard_core::cluster::{Action, LinkId, Membership, MembershipConfig, PeerStatus};
use tokio::sync::{watch, Notify};

use crate::conn::now_ms;
use crate::shared::Shared;

pub(crate) use link::accept;

/// Ops per catch-up frame.
const CATCH_UP_BATCH: usize = 500;

/// How often the driver looks at the membership.
const TICK: Duration = Duration::from_millis(100);

/// Frames queued to one link before it counts as stuck and is closed (the peer then catches
/// up through `sync` when it relinks).
pub(crate) const LINK_QUEUE: usize = 1024;

/// What the rest of the node holds of a live link.
struct LinkHandle {
    node: String,
    close: Arc<Notify>,
    frames: tokio::sync::mpsc::Sender<String>,
}

/// The cluster state of a node.
pub(crate) struct Cluster {
    /// Without a secret, the node refuses every peer and dials none.
    pub secret: Option<String>,
    pub membership: Mutex<Membership>,
    links: Mutex<HashMap<LinkId, LinkHandle>>,
    next_link: AtomicU64,
    pub heartbeat_every: Duration,
    /// Flips to true at shutdown: links close, the driver stops.
    pub stop: watch::Sender<bool>,
    /// Peers a catch-up is running for.
    catching_up: Arc<Mutex<std::collections::HashSet<String>>>,
    /// How to dial `wss://` peers.
    pub tls: Arc<rustls::ClientConfig>,
    /// NATS instead of peer links (`backplane/`): every call below goes there instead.
    pub backplane: Option<Arc<crate::backplane::Backplane>>,
}

/// What `/v1/cluster` and `switchboard cluster status` show.
#[derive(Serialize)]
pub(crate) struct Status {
    node: String,
    url: String,
    clock: u64,
    /// `mesh` or `nats`.
    backplane: &'static str,
    peers: Vec<serde_json::Value>,
}

#[derive(Serialize)]
struct PeerView {
    #[serde(flatten)]
    status: PeerStatus,
    /// Milliseconds since the last heartbeat.
    heartbeat_age_ms: Option<u64>,
    /// Ops this node holds that the peer did not, as of its last heartbeat.
    lag_ops: Option<u64>,
}

impl Cluster {
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        cfg: MembershipConfig,
        secret: Option<String>,
        seeds: &[String],
        heartbeat_every: Duration,
        backplane: Option<Arc<crate::backplane::Backplane>>,
    ) -> Cluster {
        let (stop, _) = watch::channel(false);
        Cluster {
            membership: Mutex::new(Membership::new(cfg, seeds, now_ms())),
            secret,
            links: Mutex::new(HashMap::new()),
            next_link: AtomicU64::new(1),
            heartbeat_every,
            stop,
            catching_up: Arc::new(Mutex::new(std::collections::HashSet::new())),
            tls,
            backplane,
        }
    }

    pub fn new_link(
        &self,
        node: &str,
        frames: tokio::sync::mpsc::Sender<String>,
    ) -> (LinkId, Arc<Notify>) {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        let handle = LinkHandle {
            node: node.to_string(),
            close: close.clone(),
            frames,
        };
        self.links.lock().expect("links lock").insert(id, handle);
        (id, close)
    }

    /// Queues a message to the current link of `node`, if there is one.
    pub fn send_to(&self, node: &str, msg: &switchboard_proto::peer::PeerMsg) {
        if let Some(bp) = &self.backplane {
            return bp.send_to(node, msg);
        }
        let frame = serde_json::to_string(msg).expect("peer messages serialise");
        let links = self.links.lock().expect("links lock");
        if let Some((id, link)) = links
            .iter()
            .filter(|(_, l)| l.node == node)
            .max_by_key(|(id, _)| **id)
        {
            if link.frames.try_send(frame).is_err() {
                tracing::warn!(link = id, %node, "peer link queue full; closing it");
                link.close.notify_one();
            }
        }
    }

    /// Sends `node`, in batches read from the store, every op its vector `vv` lacks. One
    /// catch-up per peer at a time: what arrives meanwhile is covered by the next heartbeat.
    pub fn catch_up(
        self: &Cluster,
        store: Arc<dyn switchboard_store::Store>,
        node: String,
        mut vv: std::collections::BTreeMap<String, u64>,
    ) {
        if let Some(bp) = &self.backplane {
            return bp.catch_up(node, vv);
        }
        if !self
            .catching_up
            .lock()
            .expect("catch-up lock")
            .insert(node.clone())
        {
            return;
        }
        let frames = {
            let links = self.links.lock().expect("links lock");
            links
                .iter()
                .filter(|(_, l)| l.node == node)
                .max_by_key(|(id, _)| **id)
                .map(|(_, l)| l.frames.clone())
        };
        let Some(frames) = frames else {
            self.catching_up
                .lock()
                .expect("catch-up lock")
                .remove(&node);
            return;
        };
        let done = self.catching_up_done(node.clone());
        tokio::spawn(async move {
            loop {
                let (store, want) = (store.clone(), vv.clone());
                let batch =
                    tokio::task::spawn_blocking(move || store.ops_since(&want, CATCH_UP_BATCH))
                        .await;
                let ops = match batch {
                    Ok(Ok(ops)) => ops,
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "reading ops for a peer failed");
                        break;
                    }
                    Err(_) => break,
                };
                if ops.is_empty() {
                    break;
                }
                for op in &ops {
                    let e = vv.entry(op.meta.origin.clone()).or_insert(0);
                    *e = (*e).max(op.meta.oseq);
                }
                let msg = switchboard_proto::peer::PeerMsg::Ops { ops };
                let frame = serde_json::to_string(&msg).expect("ops serialise");
                if frames.send(frame).await.is_err() {
                    break;
                }
            }
            done();
        });
    }

    /// Clears the catch-up mark of `node` when called.
    fn catching_up_done(&self, node: String) -> impl FnOnce() + Send + 'static {
        let marks = self.catching_up.clone();
        move || {
            marks.lock().expect("catch-up lock").remove(&node);
        }
    }

    /// Whether any peer link is open (a link opened later catches up from the store).
    pub fn has_links(&self) -> bool {
        self.backplane.is_some() || !self.links.lock().expect("links lock").is_empty()
    }

    /// Queues a frame to every linked peer. A link whose queue is full is closed rather than
    /// waited for: its peer catches up from the store when it relinks.
    fn broadcast(&self, frame: &str) {
        for (id, link) in self.links.lock().expect("links lock").iter() {
            if link.frames.try_send(frame.to_string()).is_err() {
                tracing::warn!(link = id, node = %link.node, "peer link queue full; closing it");
                link.close.notify_one();
            }
        }
    }

    /// A message to every other node: on every link, or on NATS.
    pub fn to_peers(&self, msg: switchboard_proto::peer::PeerMsg) {
        if let Some(bp) = &self.backplane {
            return bp.to_peers(msg);
        }
        self.broadcast(&serde_json::to_string(&msg).expect("peer messages serialise"));
    }

    /// This node's ops, durable here, to the other nodes: as one `ops` frame on every link,
    /// or to JetStream (the store writer's hook).
    pub fn send_own_ops(&self, ops: Vec<switchboard_proto::ops::Op>) {
        if let Some(bp) = &self.backplane {
            return bp.publish_own(ops);
        }
        let frame = serde_json::to_string(&switchboard_proto::peer::PeerMsg::Ops { ops })
            .expect("ops serialise");
        self.broadcast(&frame);
    }

    pub fn drop_link(&self, id: LinkId) {
        self.links.lock().expect("links lock").remove(&id);
    }

    pub fn close_link(&self, id: LinkId) {
        if let Some(link) = self.links.lock().expect("links lock").get(&id) {
            link.close.notify_one();
        }
    }

    pub fn status(&self, clock: u64, lag: impl Fn(&str) -> Option<u64>) -> Status {
        let m = self.membership.lock().expect("membership lock");
        let now = now_ms();
        let me = m.members().remove(0);
        if let Some(bp) = &self.backplane {
            let peers = bp
                .members()
                .into_iter()
                .map(|v| {
                    let mut p = serde_json::to_value(&v).expect("members serialise");
                    p["heartbeat_age_ms"] = v.last_heartbeat.map(|h| now.saturating_sub(h)).into();
                    p["lag_ops"] = lag(&v.node).into();
                    p
                })
                .collect();
            return Status {
                node: me.node,
                url: me.url,
                clock,
                backplane: "nats",
                peers,
            };
        }
        Status {
            node: me.node,
            url: me.url,
            clock,
            backplane: "mesh",
            peers: m
                .status()
                .into_iter()
                .map(|status| PeerView {
                    heartbeat_age_ms: status.last_heartbeat.map(|h| now.saturating_sub(h)),
                    lag_ops: lag(&status.node),
                    status,
                })
                .map(|v| serde_json::to_value(v).expect("peer views serialise"))
                .collect(),
        }
    }
}

/// Runs the membership: dials whom it says, closes what it says, until shutdown.
pub(crate) async fn drive(shared: Arc<Shared>) {
    let cluster = &shared.cluster;
    if cluster.secret.is_none() {
        return;
    }
    let mut stop = cluster.stop.subscribe();
    let mut ticker = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        let actions = cluster
            .membership
            .lock()
            .expect("membership lock")
            .tick(now_ms());
        for action in actions {
            match action {
                Action::Dial { url } => {
                    tokio::spawn(link::dial(shared.clone(), url));
                }
                Action::Close { link, reason } => {
                    tracing::info!(link, %reason, "closing peer link");
                    cluster.close_link(link);
                }
            }
        }
    }
}

/// Resolves once the node is stopping, at once if it already is (a link that comes up
/// during shutdown must not outlive it).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The next connection of a plain TCP listener (a gateway's), with Nagle's algorithm off,
/// or `None` once the node is stopping. A failed accept (out of file descriptors) is logged
/// and retried after a pause, not in a busy loop.
pub(crate) async fn accept_next(
    listener: &tokio::net::TcpListener,
    stop: &mut watch::Receiver<bool>,
    what: &str,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped(stop) => return None,
        };
        match accepted {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                return Some((stream, addr));
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what} accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
