//! The state every connection shares: the core behind one short-held lock, the outboxes of
//! the sessions, the store, the writer's doorbell and the metrics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::ws::Utf8Bytes;
use switchboard_core::{Core, Effect, SessionId};
use switchboard_store::Store;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::outbox::{Closing, Outbox, Pushed};
use crate::Config;

pub(crate) struct Shared {
    pub cfg: Config,
    /// The chat core. Held only to compute effects, never across an await or IO.
    pub core: Mutex<Core>,
    /// Each signed-in (or signing-in) session's outbound queue.
    pub outboxes: RwLock<HashMap<SessionId, Arc<Outbox>>>,
    pub store: Arc<dyn Store>,
    /// Rung when the core has ops for the writer; a full channel means it is already rung.
    pub doorbell: std::sync::mpsc::SyncSender<()>,
    /// Set when the writer should finish what is queued and stop.
    pub writer_stop: AtomicBool,
    pub metrics: Metrics,
    /// One permit per open connection: the connection cap.
    pub conns: Arc<Semaphore>,
    pub next_session: AtomicU64,
    pub shutting_down: AtomicBool,
    pub cluster: crate::cluster::Cluster,
    /// Contact changes, for the seed 000 gateway's links with original servers.
    pub contact_changes: tokio::sync::broadcast::Sender<ContactChange>,
    /// Seed 002's registered relay clients.
    pub relay: crate::seed002::Registry,
}

/// A contact set (with `phone`) or deleted, here or on another node.
#[derive(Debug, Clone)]
pub(crate) struct ContactChange {
    /// The user's name as the change wrote it (case kept): seed 000 sends it as given.
    pub user: String,
    pub name: String,
    pub phone: Option<String>,
    /// The Lamport clock of the change's stamp, the clock its seed 000 frame carries.
    pub lamport: u64,
    /// The session or seed 000 link it came from when made on this node: that link does
    /// not hear it back.
    pub by: Option<SessionId>,
}

impl Shared {
    /// Ends a session: it leaves the directory at once, its outbox is unregistered and asked
    /// to close once what is queued is written. Every connection and gateway ends this way.
    pub(crate) fn end_session(&self, session: SessionId, reason: &str) {
        self.run(|core, out| core.close(session, out));
        let outbox = self
            .outboxes
            .write()
            .expect("outboxes lock")
            .remove(&session);
        if let Some(outbox) = outbox {
            outbox.close(Closing {
                error: None,
                ws_code: 1000,
                reason: reason.into(),
            });
        }
    }

    /// Runs `f` on the core under its lock, carries out the effects, and rings the writer if
    /// ops are waiting.
    ///
    /// The effects are carried out before the lock is released: frames reach each outbox in
    /// the order the core made them, even when several threads (connections, peer links, the
    /// store writer) run the core one after the other. Carried out after the lock, a delivery
    /// made second could overtake one made first, and two clients would see two orders.
    pub fn run<R>(&self, f: impl FnOnce(&mut Core, &mut Vec<Effect>) -> R) -> R {
        let mut effects = Vec::new();
        let (result, has_ops) = {
            let mut core = self.core.lock().expect("core lock");
            let r = f(&mut core, &mut effects);
            let has_ops = core.has_ops() || core.clock_unsaved();
            self.execute(&core, effects);
            drop(core);
            (r, has_ops)
        };
        if has_ops {
            self.ring();
        }
        result
    }

    /// Wakes the store writer.
    pub fn ring(&self) {
        let _ = self.doorbell.try_send(());
    }

    /// Before a request reaches the core: on NATS, a join (or a room's history) first makes
    /// this node receive the room, so that the join's cursor and the history it serves are
    /// whole (backplane/interest.rs). Nothing to do on the mesh, where every node has every room.
    pub async fn prepare(&self, msg: &switchboard_proto::ClientMsg) {
        use switchboard_proto::ClientMsg;
        if let ClientMsg::Join { room, .. }
        | ClientMsg::History {
            room: Some(room), ..
        } = msg
        {
            self.prepare_room(room).await;
        }
    }

    /// See [`Shared::prepare`].
    pub async fn prepare_room(&self, room: &str) {
        let Some(bp) = &self.cluster.backplane else {
            return;
        };
        if let Ok(bare) = switchboard_proto::validate_room(room) {
            let key = switchboard_proto::room_key(bare);
            bp.ensure(crate::backplane::Scope::Room(key)).await;
        }
    }

    /// Before a hello reaches the core: on NATS, this node first receives the user's
    /// conversations, so that the welcome lists them whole and no direct message to the user
    /// can miss this node once others hear the user is here (backplane/interest.rs).
    ///
    /// `guest`: the name comes without a password, so the core refuses it when it is
    /// registered; then there is nothing to prepare.
    pub async fn prepare_user(&self, name: &str, guest: bool) {
        let Some(bp) = &self.cluster.backplane else {
            return;
        };
        if guest
            && self
                .core
                .lock()
                .expect("core lock")
                .account_hash(name)
                .is_some()
        {
            return;
        }
        if switchboard_proto::validate_name(name).is_ok() {
            let key = switchboard_proto::name_key(name);
            bp.ensure(crate::backplane::Scope::User(key)).await;
        }
    }

    /// Carries out effects: queue frames, close sessions.
    pub fn execute(&self, core: &Core, effects: Vec<Effect>) {
        if effects.is_empty() {
            return;
        }
        let outboxes = self.outboxes.read().expect("outboxes lock");
        let mut peers = Vec::new();
        for effect in effects {
            match effect {
                Effect::ContactChanged {
                    user,
                    name,
                    phone,
                    lamport,
                    by,
                } => {
                    // No receiver (no seed 000 peer) is fine.
                    let _ = self.contact_changes.send(ContactChange {
                        user,
                        name,
                        phone,
                        lamport,
                        by,
                    });
                }
                e @ (Effect::ToPeer { .. } | Effect::ToPeers(_) | Effect::CatchUp { .. }) => {
                    peers.push(e)
                }
                Effect::Send { to, frame } => {
                    if let Some(ob) = outboxes.get(&to) {
                        // A direct message kept for an offline user comes this way at sign-in.
                        if switchboard_proto::is_message_frame(&frame) {
                            self.metrics.deliveries.fetch_add(1, Ordering::Relaxed);
                        }
                        self.push(ob, &to_utf8(frame));
                    }
                }
                Effect::Fanout { to, frame } => {
                    // Presence, topics, away and contact news fan out too; `deliveries`
                    // counts chat messages only, as its help text says.
                    let message = switchboard_proto::is_message_frame(&frame);
                    let frame = to_utf8(frame);
                    // IRC members get the message as IRC text, rendered once here.
                    let mut irc = crate::irc::fanout::Lines::new(&frame);
                    let mut n = 0;
                    for id in to.iter() {
                        if let Some(ob) = outboxes.get(id) {
                            match ob.irc().and_then(|taste| irc.for_member(taste, core)) {
                                Some(line) => self.push(ob, &line),
                                None => self.push(ob, &frame),
                            }
                            n += 1;
                        }
                    }
                    if message {
                        self.metrics.deliveries.fetch_add(n, Ordering::Relaxed);
                    }
                }
                Effect::Close {
                    session,
                    code,
                    reason,
                } => {
                    if let Some(ob) = outboxes.get(&session) {
                        ob.close(Closing {
                            error: Some((code, reason)),
                            ws_code: 1008,
                            reason: code.as_str().to_string(),
                        });
                    }
                }
            }
        }
        drop(outboxes);
        for e in peers {
            match e {
                Effect::ToPeer { node, msg } => self.cluster.send_to(&node, &msg),
                Effect::ToPeers(msg) => self.cluster.to_peers(msg),
                Effect::CatchUp { node, vv } => self.cluster.catch_up(self.store.clone(), node, vv),
                _ => {}
            }
        }
    }

    /// Queues a frame to one outbox, counting it in `frames_out`, or in `queue_overflows`
    /// when it overflows the outbox. Every frame to a client goes this way.
    pub(crate) fn push(&self, ob: &Outbox, frame: &Utf8Bytes) {
        match ob.push(frame) {
            Pushed::Queued => {
                self.metrics.frames_out.fetch_add(1, Ordering::Relaxed);
            }
            Pushed::Overflowed => {
                self.metrics.queue_overflows.fetch_add(1, Ordering::Relaxed);
                tracing::info!("closing a slow consumer");
            }
            Pushed::Closed => {}
        }
    }
}

/// Frames come from serde_json, so they are always UTF-8; the check is one pass over bytes
/// shared by every recipient.
fn to_utf8(frame: bytes::Bytes) -> Utf8Bytes {
    Utf8Bytes::try_from(frame).expect("frames are encoded from JSON, hence UTF-8")
}
