//! Ops through JetStream: durability beyond this node, and catch-up that does not need the
//! origin to be alive.
//!
//! - **Stream** `SB_<cluster>`, subjects `sb.<cluster>.ops.>`, file storage, limits retention
//!   (nothing expires unless the operator sets limits), the configured replicas, a 2-minute
//!   duplicate window. Created by the first node that finds it missing.
//! - **Publisher**: this node's ops, once durable locally, consecutive ops as one message
//!   (see `publish`) on `sb.<cluster>.ops.<node>`, in oseq order. JetStream's
//!   acknowledgement releases the clients' acks (`Core::backplane_stored`). The local store is
//!   the queue: after a disconnection or a restart the publisher asks the stream for the last
//!   op of this node and republishes what follows from the store, so the budget for an outage
//!   is the disk, not memory.
//! - **Consumer**: a durable pull consumer named after the node, from the stream's start, so
//!   a node that was away (or is new) reads what it missed, even from origins that are gone.
//!   A message is acknowledged once its op is on this node's disk, so a crash between
//!   applying and storing an op makes JetStream deliver it again.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;
use switchboard_proto::ops::Op;
use switchboard_proto::peer::PeerMsg;

use super::Backplane;
use crate::conn::now_ms;
use crate::shared::Shared;

/// Own ops published per round before acknowledgements are awaited.
const PUBLISH_BATCH: usize = 500;

/// Ops read from the consumer and applied under one core lock.
const APPLY_BATCH: usize = 500;

/// How long a delivered message may stay unacknowledged before JetStream redelivers it.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// After a failure, how long to wait before trying again.
const RETRY: Duration = Duration::from_millis(300);

async fn ensure_stream(
    js: &jetstream::Context,
    bp: &Backplane,
) -> Result<stream::Stream, async_nats::Error> {
    let config = stream::Config {
        name: bp.cfg.stream(),
        subjects: vec![format!("sb.{}.ops.>", bp.cfg.cluster)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: bp.cfg.replicas,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    Ok(js.get_or_create_stream(config).await?)
}

/// Waits until the client is connected.
async fn connected(bp: &Backplane) {
    let mut rx = bp.connected.subscribe();
    let _ = rx.wait_for(|c| *c).await;
}

/// The highest of this node's ops the stream holds.
async fn last_published(stream: &stream::Stream, bp: &Backplane) -> Result<u64, async_nats::Error> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    match stream
        .get_last_raw_message_by_subject(&bp.cfg.ops(&bp.node))
        .await
    {
        Ok(m) => Ok(decode(&m.payload)?.last().map_or(0, |op| op.meta.oseq)),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Publishes this node's durable ops to JetStream, in order, forever.
pub(super) async fn publisher(shared: Arc<Shared>, bp: Arc<Backplane>, client: async_nats::Client) {
    let Some(mut rx) = bp.ops_rx.lock().expect("ops lock").take() else {
        return;
    };
    let js = jetstream::new(client);
    let me = bp.node.clone();
    // Ops handed over by the writer, not yet published (contiguous or cleared).
    let mut ready: VecDeque<Op> = VecDeque::new();
    let mut conn = bp.connected.subscribe();
    'session: loop {
        connected(&bp).await;
        conn.borrow_and_update();
        let next = match ensure_stream(&js, &bp).await {
            Ok(s) => last_published(&s, &bp).await.map(|n| n + 1),
            Err(e) => Err(e),
        };
        let mut next = match next {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "JetStream not ready");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        bp.published.store(next - 1, Relaxed);
        shared.run(|core, out| core.backplane_stored(next - 1, out));
        loop {
            while ready.front().is_some_and(|o| o.meta.oseq < next) {
                ready.pop_front();
            }
            let mut batch: Vec<Op> = Vec::new();
            while batch.len() < PUBLISH_BATCH
                && ready
                    .front()
                    .is_some_and(|o| o.meta.oseq == next + batch.len() as u64)
            {
                batch.push(ready.pop_front().expect("front exists"));
            }
            if batch.is_empty() && shared.core.lock().expect("core lock").stored_of(&me) >= next {
                // Not handed over (dropped on a full queue, or from before a restart or an
                // outage): read it back from the store.
                ready.clear();
                let want = {
                    let core = shared.core.lock().expect("core lock");
                    let mut vv = BTreeMap::new();
                    vv.insert(me.clone(), next - 1);
                    super::own_only(&core, &me, &vv)
                };
                let store = shared.store.clone();
                let ops =
                    tokio::task::spawn_blocking(move || store.ops_since(&want, PUBLISH_BATCH))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default();
                batch = ops
                    .into_iter()
                    .filter(|o| o.meta.origin == me)
                    .take_while(|o| o.meta.oseq >= next)
                    .collect();
            }
            if batch.is_empty() {
                tokio::select! {
                    got = rx.recv() => match got {
                        Some(ops) => {
                            ready.extend(ops);
                            if ready.len() > 50_000 {
                                ready.clear();
                            }
                        }
                        None => return,
                    },
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = conn.changed() => {
                        if !*conn.borrow_and_update() {
                            continue 'session;
                        }
                    }
                }
                continue;
            }
            match publish(&js, &bp, &batch).await {
                Ok(()) => {
                    let last = batch.last().expect("not empty").meta.oseq;
                    next = last + 1;
                    bp.published.store(last, Relaxed);
                    bp.published_ops.fetch_add(batch.len() as u64, Relaxed);
                    shared.run(|core, out| core.backplane_stored(last, out));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "publishing ops to JetStream failed; retrying");
                    ready.clear();
                    tokio::time::sleep(RETRY).await;
                    continue 'session;
                }
            }
        }
    }
}

/// Most bytes of ops in one JetStream message (nats-server's default `max_payload` is 1 MiB).
const MESSAGE_BYTES: usize = 256 * 1024;

/// Publishes a batch and waits for every acknowledgement.
///
/// Consecutive ops go as one JetStream message (a JSON array, up to [`MESSAGE_BYTES`]), not
/// one message each: per message, nats-server stores, delivers to every node's consumer and
/// takes an acknowledgement, and one message per op fell behind at 10,000 msg/s over three
/// nodes (docs/benchmarks.md). The message id names the range, so a retried publish of the
/// same range is dropped by JetStream; a different range over the same ops is dropped by
/// the receivers, which skip ops they hold.
async fn publish(
    js: &jetstream::Context,
    bp: &Backplane,
    ops: &[Op],
) -> Result<(), async_nats::Error> {
    let subject = bp.cfg.ops(&bp.node);
    let mut acks = Vec::new();
    let mut rest = ops;
    while let Some(first) = rest.first() {
        let mut payload = b"[".to_vec();
        let mut taken = 0;
        for op in rest {
            if taken > 0 && payload.len() >= MESSAGE_BYTES {
                break;
            }
            if taken > 0 {
                payload.push(b',');
            }
            serde_json::to_writer(&mut payload, op)?;
            taken += 1;
        }
        payload.push(b']');
        let last = &rest[taken - 1];
        let mut h = async_nats::HeaderMap::new();
        h.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!(
                "{}:{}-{}",
                first.meta.origin, first.meta.oseq, last.meta.oseq
            )
            .as_str(),
        );
        acks.push(
            js.publish_with_headers(subject.clone(), h, payload.into())
                .await?,
        );
        rest = &rest[taken..];
    }
    for ack in acks {
        tokio::time::timeout(Duration::from_secs(5), ack).await??;
    }
    Ok(())
}

/// The ops of one stream message: an array (one per publish batch), or a single op as the
/// first version of the backplane wrote them.
fn decode(payload: &[u8]) -> Result<Vec<Op>, serde_json::Error> {
    if payload.first() == Some(&b'[') {
        serde_json::from_slice(payload)
    } else {
        serde_json::from_slice::<Op>(payload).map(|op| vec![op])
    }
}

/// Reads every other node's ops from JetStream and applies them, forever.
pub(super) async fn consumer(shared: Arc<Shared>, bp: Arc<Backplane>, client: async_nats::Client) {
    let js = jetstream::new(client);
    // Delivered, applied, not yet acknowledged: (origin, oseq, message, when).
    let mut unacked: VecDeque<(String, u64, jetstream::Message, Instant)> = VecDeque::new();
    loop {
        connected(&bp).await;
        let consumer = match ensure_stream(&js, &bp).await {
            Ok(s) => s
                .get_or_create_consumer(
                    &bp.node,
                    pull::Config {
                        durable_name: Some(bp.node.clone()),
                        filter_subject: format!("sb.{}.ops.>", bp.cfg.cluster),
                        deliver_policy: jetstream::consumer::DeliverPolicy::All,
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        ack_wait: ACK_WAIT,
                        max_ack_pending: 20_000,
                        ..Default::default()
                    },
                )
                .await
                .map_err(async_nats::Error::from),
            Err(e) => Err(e),
        };
        let messages = match consumer {
            Ok(c) => c.messages().await.map_err(async_nats::Error::from),
            Err(e) => Err(e),
        };
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "JetStream consumer not ready");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut chunks = std::pin::pin!(messages.ready_chunks(APPLY_BATCH));
        let mut flush = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                chunk = chunks.next() => {
                    let Some(chunk) = chunk else { break };
                    let mut by_origin: BTreeMap<String, Vec<Op>> = BTreeMap::new();
                    for m in chunk {
                        let m = match m {
                            Ok(m) => m,
                            Err(e) => {
                                tracing::debug!(error = %e, "JetStream consumer");
                                continue;
                            }
                        };
                        let ops = match decode(&m.payload) {
                            Ok(ops) if !ops.is_empty() => ops,
                            _ => {
                                tracing::warn!(subject = %m.subject, "undecodable ops in the stream");
                                let _ = m.ack().await;
                                continue;
                            }
                        };
                        let (origin, last) = {
                            let op = ops.last().expect("not empty");
                            (op.meta.origin.clone(), op.meta.oseq)
                        };
                        if origin == bp.node {
                            let _ = m.ack().await;
                            continue;
                        }
                        // Acknowledged once its last op is on this node's disk (ops of one
                        // origin are stored in order).
                        unacked.push_back((origin.clone(), last, m, Instant::now()));
                        by_origin.entry(origin).or_default().extend(ops);
                    }
                    let now = now_ms();
                    let n: usize = by_origin.values().map(Vec::len).sum();
                    bp.consumed_ops.fetch_add(n as u64, Relaxed);
                    shared.run(|core, out| {
                        for (origin, ops) in by_origin {
                            core.peer_message(&origin, PeerMsg::Ops { ops }, now, out);
                        }
                        bp.unpark(core, out);
                    });
                }
                _ = flush.tick() => {}
            }
            ack_stored(&shared, &mut unacked).await;
        }
        tracing::info!("JetStream consumer ended; resubscribing");
        tokio::time::sleep(RETRY).await;
    }
}

/// Acknowledges the messages whose ops are on this node's disk. One left unacknowledged
/// longer than JetStream waits is forgotten here: JetStream delivers it again.
async fn ack_stored(
    shared: &Shared,
    unacked: &mut VecDeque<(String, u64, jetstream::Message, Instant)>,
) {
    if unacked.is_empty() {
        return;
    }
    let mut done = Vec::new();
    {
        let core = shared.core.lock().expect("core lock");
        let mut keep = VecDeque::with_capacity(unacked.len());
        for (origin, oseq, m, at) in unacked.drain(..) {
            if core.stored_of(&origin) >= oseq {
                done.push(m);
            } else if at.elapsed() < ACK_WAIT {
                keep.push_back((origin, oseq, m, at));
            }
        }
        *unacked = keep;
    }
    for m in done {
        let _ = m.ack().await;
    }
}
