//! Ops through JetStream: durability beyond this node, and catch-up that does not need the
//! origin to be alive.
//!
//! - **Stream** `SB_<cluster>`, subjects `sb.<cluster>.ops.>` (global ops),
//!   `sb.<cluster>.room.>` (room messages) and `sb.<cluster>.dm.>` (direct messages to a
//!   recipient online somewhere), file storage, limits retention (nothing expires
//!   unless the operator sets limits), the configured replicas, a 2-minute duplicate window.
//!   Created by the first node that finds it missing (and given the room and conversation
//!   subjects if an earlier version made it).
//! - **Publisher**: this node's ops, once durable locally, in oseq order: global ops on
//!   `sb.<cluster>.ops.<node>`, room and direct messages on their stream's subject (see
//!   `publish`).
//!   JetStream's acknowledgement releases the clients' acks (`Core::backplane_stored`). The
//!   local store is the queue: after a disconnection or a restart the publisher starts after
//!   the newest of its ops the stream holds (its last global op, or the mark it keeps in the
//!   nodes bucket `SB_<cluster>_nodes`, whichever is newer) and republishes what follows from
//!   the store, so the budget for an outage is the disk, not memory.
//! - **Consumer**: a durable pull consumer named after the node, on the global ops only, from
//!   the stream's start, so a node that was away (or is new) reads what it missed, even from
//!   origins that are gone. A message is acknowledged once its ops are on this node's disk,
//!   so a crash between applying and storing them makes JetStream deliver it again. Room
//!   and direct messages come by interest instead (interest.rs).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;
use switchboard_proto::ops::{Op, OpBody};

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
    let subjects = vec![
        format!("sb.{}.ops.>", bp.cfg.cluster),
        format!("{}>", bp.cfg.rooms_prefix()),
        format!("{}>", bp.cfg.dms_prefix()),
    ];
    let config = stream::Config {
        name: bp.cfg.stream(),
        subjects: subjects.clone(),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: bp.cfg.replicas,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    let mut stream = js.get_or_create_stream(config).await?;
    // A stream made by an earlier version holds ops only: add the room subjects.
    let info = stream.info().await?.config.clone();
    if subjects.iter().any(|s| !info.subjects.contains(s)) {
        js.update_stream(stream::Config { subjects, ..info })
            .await?;
        stream = js.get_stream(bp.cfg.stream()).await?;
    }
    Ok(stream)
}

/// The bucket where each node keeps the newest of its ops JetStream holds, so that after a
/// restart it republishes from there (its room messages are on many subjects; its global
/// ops' subject alone would send it back to its last global op).
async fn nodes_bucket(
    js: &jetstream::Context,
    bp: &Backplane,
) -> Result<jetstream::kv::Store, async_nats::Error> {
    if let Ok(kv) = js.get_key_value(bp.cfg.nodes_bucket()).await {
        return Ok(kv);
    }
    // The bucket's stream as nats-server 2.9 makes it (the client's `create_key_value` asks
    // for settings 2.9 does not know).
    let bucket = bp.cfg.nodes_bucket();
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        description: Some("Switchboard nodes: the newest of each node's ops in the stream".into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        num_replicas: bp.cfg.replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await?;
    Ok(js.get_key_value(bucket).await?)
}

/// The newest of this node's ops in the KV bucket (0: none).
async fn published_mark(kv: &jetstream::kv::Store, node: &str) -> u64 {
    match kv.get(node).await {
        Ok(Some(v)) => std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// Waits until the client is connected.
async fn connected(bp: &Backplane) {
    let mut rx = bp.connected.subscribe();
    let _ = rx.wait_for(|c| *c).await;
}

/// The newest of this node's global ops the stream holds.
async fn last_global(stream: &stream::Stream, bp: &Backplane) -> Result<u64, async_nats::Error> {
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
    // Per room or conversation, this node's newest message published in it this run: the
    // next one's `Sb-Prev`, by which receivers notice a gap.
    let mut stream_prev: HashMap<String, u64> = HashMap::new();
    let mut marked = Instant::now();
    'session: loop {
        connected(&bp).await;
        conn.borrow_and_update();
        let start = async {
            let s = ensure_stream(&js, &bp)
                .await
                .map_err(|e| format!("the stream: {e}"))?;
            let kv = nodes_bucket(&js, &bp)
                .await
                .map_err(|e| format!("the nodes bucket: {e}"))?;
            let global = last_global(&s, &bp)
                .await
                .map_err(|e| format!("the last op: {e}"))?;
            let mark = published_mark(&kv, &bp.node).await;
            Ok::<_, async_nats::Error>((kv, global, mark))
        };
        let (kv, global, mark) = match start.await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "JetStream not ready");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        // The next global message follows the stream's last global op of this node.
        bp.last_global.store(global, Relaxed);
        // Where to start: what JetStream acknowledged in this run, else the mark kept in the
        // nodes bucket, else (a node that never kept one) after its last global op. Not the
        // newest of them: a global op may be in the stream while a message before it, whose
        // acknowledgement failed, is not.
        let published = bp.published.load(Relaxed);
        let mut next = if published > 0 {
            published
        } else if mark > 0 {
            mark
        } else {
            global
        } + 1;
        if shared.core.lock().expect("core lock").stored_of(&me) >= next {
            // Ops from before a restart or an outage wait: no vouch may pass them.
            bp.unpublished
                .lock()
                .expect("unpublished lock")
                .insert(u64::MAX, 1);
        }
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
                let (store, me) = (shared.store.clone(), me.clone());
                batch =
                    tokio::task::spawn_blocking(move || store.ops_of(&me, next - 1, PUBLISH_BATCH))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default();
            }
            if batch.is_empty() {
                bp.unpublished
                    .lock()
                    .expect("unpublished lock")
                    .remove(&u64::MAX);
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
            if stream_prev.len() > STREAM_PREV_KEPT {
                // Forgotten ones are read back from the store when needed.
                stream_prev.clear();
            }
            match publish(&js, &bp, &shared, &batch, &mut stream_prev).await {
                Ok(()) => {
                    let last = batch.last().expect("not empty").meta.oseq;
                    next = last + 1;
                    bp.published.store(last, Relaxed);
                    bp.published_ops.fetch_add(batch.len() as u64, Relaxed);
                    shared.run(|core, out| core.backplane_stored(last, out));
                    if marked.elapsed() >= MARK_EVERY {
                        marked = Instant::now();
                        let _ = kv.put(&bp.node, last.to_string().into()).await;
                    }
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

/// Streams whose last message the publisher remembers before it starts over (reading each
/// one's back from the store when it next publishes there).
const STREAM_PREV_KEPT: usize = 100_000;

/// How often the publisher records in the nodes bucket how far it got.
const MARK_EVERY: Duration = Duration::from_millis(500);

/// Publishes a batch and waits for every acknowledgement.
///
/// Global ops go on this node's ops subject, room and direct messages on their room's or
/// conversation's subject,
/// each message naming in `Sb-Prev` this node's op before it on the same path. Consecutive
/// ops of one path go as one JetStream message (a JSON array, up to [`MESSAGE_BYTES`]), not
/// one message each: per message, nats-server stores, delivers to every node's consumer and
/// takes an acknowledgement, and one message per op fell behind at 10,000 msg/s over three
/// nodes (docs/benchmarks.md). The message id names the range, so a retried publish of the
/// same range is dropped by JetStream; a different range over the same ops is dropped by
/// the receivers, which skip ops they hold.
async fn publish(
    js: &jetstream::Context,
    bp: &Backplane,
    shared: &Shared,
    ops: &[Op],
    stream_prev: &mut HashMap<String, u64>,
) -> Result<(), async_nats::Error> {
    let mut global: Vec<&Op> = Vec::new();
    let mut streams: BTreeMap<String, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        match &op.body {
            OpBody::Message { msg, .. } if switchboard_core::Core::is_scoped(op) => {
                streams.entry(msg.stream.clone()).or_default().push(op)
            }
            _ => global.push(op),
        }
    }
    let mut acks = Vec::new();
    let mut prevs = Vec::new();
    let mut last_global = bp.last_global.load(Relaxed);
    // A stream's first message this run follows the newest one of this node in the store.
    let unknown: Vec<(String, u64)> = streams
        .iter()
        .filter(|(stream, _)| !stream_prev.contains_key(*stream))
        .map(|(stream, ops)| (stream.clone(), ops[0].meta.oseq))
        .collect();
    if !unknown.is_empty() {
        let (store, me) = (shared.store.clone(), bp.node.clone());
        let found = tokio::task::spawn_blocking(move || {
            unknown
                .into_iter()
                .map(|(stream, first)| {
                    let prev = store.prev_in_stream(&stream, &me, first)?;
                    Ok((stream, prev))
                })
                .collect::<Result<Vec<_>, switchboard_store::StoreError>>()
        })
        .await??;
        stream_prev.extend(found);
    }
    for (stream, ops) in &streams {
        let prev = stream_prev.get(stream).copied().unwrap_or(0);
        let subject = if stream.starts_with('@') {
            bp.cfg.dm(stream)
        } else {
            bp.cfg.room(stream)
        };
        let last = send(js, &mut acks, subject, ops, prev).await?;
        prevs.push((stream.clone(), last));
    }
    if !global.is_empty() {
        last_global = send(js, &mut acks, bp.cfg.ops(&bp.node), &global, last_global).await?;
    }
    // Handed to the connection, in order: vouches may pass these ops now (interest.rs).
    bp.handed(ops.last().map_or(0, |o| o.meta.oseq));
    for ack in acks {
        tokio::time::timeout(Duration::from_secs(5), ack).await??;
    }
    // Only once in the stream: a batch published again after a failure names the same
    // predecessors.
    bp.last_global.store(last_global, Relaxed);
    stream_prev.extend(prevs);
    Ok(())
}

/// Publishes ops of one path on `subject`, in messages of up to [`MESSAGE_BYTES`]; returns the
/// last op's oseq.
async fn send(
    js: &jetstream::Context,
    acks: &mut Vec<jetstream::context::PublishAckFuture>,
    subject: String,
    ops: &[&Op],
    mut prev: u64,
) -> Result<u64, async_nats::Error> {
    let mut rest = ops;
    let mut last_oseq = 0;
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
        let last = rest[taken - 1];
        let mut h = async_nats::HeaderMap::new();
        h.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!(
                "{}:{}-{}",
                first.meta.origin, first.meta.oseq, last.meta.oseq
            )
            .as_str(),
        );
        // Always, 0 included ("none before"): without it a receiver takes the ops to follow
        // on from the one before the first, as the first version of the backplane did.
        h.insert(super::interest::PREV, prev.to_string().as_str());
        acks.push(
            js.publish_with_headers(subject.clone(), h, payload.into())
                .await?,
        );
        prev = last.meta.oseq;
        last_oseq = last.meta.oseq;
        rest = &rest[taken..];
    }
    Ok(last_oseq)
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

/// The ops of one stream message, with the `Sb-Prev` they follow.
type Sent = (Option<u64>, Vec<Op>);

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
                    // Per origin, its messages in order, each with its `Sb-Prev`.
                    let mut by_origin: BTreeMap<String, Vec<Sent>> = BTreeMap::new();
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
                        let prev = super::interest::prev_of(&m);
                        unacked.push_back((origin.clone(), last, m, Instant::now()));
                        by_origin.entry(origin).or_default().push((prev, ops));
                    }
                    let now = now_ms();
                    let n: usize = by_origin.values().flatten().map(|(_, o)| o.len()).sum();
                    bp.consumed_ops.fetch_add(n as u64, Relaxed);
                    shared.run(|core, out| {
                        for (origin, batches) in by_origin {
                            for (prev, ops) in batches {
                                // Without `Sb-Prev` (an earlier version's message) the ops
                                // follow on from the one before the first.
                                let prev =
                                    prev.unwrap_or(ops[0].meta.oseq.saturating_sub(1));
                                super::receive::apply_global(core, &bp, &origin, prev, ops, now, out);
                            }
                        }
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
