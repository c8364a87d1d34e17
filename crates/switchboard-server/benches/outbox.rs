//! Micro-benchmark of the server's share of a room fan-out: one encoded frame (shared
//! `Bytes`) queued into 1,000 connection outboxes, as `Shared::execute` does for a core
//! `Fanout` effect. The writers' side (draining, the socket writes) is not timed.
//!
//! Run: `cargo bench -p switchboard-server --bench outbox`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::FutureExt;
use switchboard_proto::{encode_server, ChatMessage, ServerMsg};
use switchboard_server::bench_api::{Outbox, Pushed};

const RECIPIENTS: u64 = 1_000;
/// The server's default outbox size (`Config::outbox_bytes`).
const OUTBOX_BYTES: usize = 1 << 20;

/// The frame of a room message with a 100-byte text, as the core encodes it.
fn frame() -> Bytes {
    encode_server(&ServerMsg::Message(ChatMessage {
        id: "n1-123456".into(),
        stream: "#general".into(),
        from: "alice".into(),
        room: Some("general".into()),
        to: None,
        text: "x".repeat(100),
        ts: 1_767_225_600_000,
        lamport: 987_654,
        origin: "n1".into(),
        oseq: 123_456,
    }))
}

/// Empties every outbox as its writer would. Never waits: it is called only when frames are
/// queued, and `next_batch` then returns at once.
fn drain(outboxes: &[Arc<Outbox>], batch: &mut Vec<Utf8Bytes>) {
    for ob in outboxes {
        let closing = ob.next_batch(batch).now_or_never();
        assert_eq!(
            closing,
            Some(None),
            "frames were queued and no close was asked"
        );
        batch.clear();
    }
}

/// Runs `iters` fan-outs of `fanout`, draining the outboxes (untimed) after every
/// `drain_every` of them, and returns the time spent in `fanout` alone.
fn timed(
    iters: u64,
    drain_every: u64,
    outboxes: &[Arc<Outbox>],
    mut fanout: impl FnMut(),
) -> Duration {
    let mut batch = Vec::new();
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let started = Instant::now();
        fanout();
        total += started.elapsed();
        if (i + 1).is_multiple_of(drain_every) || i + 1 == iters {
            drain(outboxes, &mut batch);
        }
    }
    total
}

fn outbox(c: &mut Criterion) {
    let bytes = frame();
    let utf8 = Utf8Bytes::try_from(bytes.clone()).expect("UTF-8");
    let outboxes: Vec<Arc<Outbox>> = (0..RECIPIENTS)
        .map(|_| Arc::new(Outbox::new(OUTBOX_BYTES)))
        .collect();

    let mut g = c.benchmark_group("outbox_fanout_1000");
    // One element is one frame queued to one recipient: elements/s are deliveries/s.
    g.throughput(Throughput::Elements(RECIPIENTS));

    // `Outbox::push` alone. `drained`: every queue is empty when the frame arrives (a writer
    // that keeps up), so each push also wakes its writer. `backlog`: queues hold up to 100
    // frames (writers behind), so pushes only append.
    for (name, drain_every) in [("drained", 1), ("backlog", 100)] {
        g.bench_function(BenchmarkId::new("push", name), |b| {
            b.iter_custom(|iters| {
                timed(iters, drain_every, &outboxes, || {
                    for ob in &outboxes {
                        let pushed = ob.push(black_box(&utf8));
                        debug_assert_eq!(pushed, Pushed::Queued);
                    }
                })
            })
        });
    }

    // What `Shared::execute` does for one `Fanout` effect: the UTF-8 check once, then per
    // recipient a look-up in the outbox map (under its read lock), the push and the
    // `frames_out` counter. Writers keep up (`drained`).
    let map: RwLock<HashMap<u64, Arc<Outbox>>> = RwLock::new(
        outboxes
            .iter()
            .enumerate()
            .map(|(i, ob)| (i as u64 + 1, ob.clone()))
            .collect(),
    );
    let to: Arc<[u64]> = (1..=RECIPIENTS).collect();
    let frames_out = AtomicU64::new(0);
    g.bench_function("execute", |b| {
        b.iter_custom(|iters| {
            timed(iters, 1, &outboxes, || {
                let frame = Utf8Bytes::try_from(black_box(bytes.clone())).expect("UTF-8");
                let outboxes = map.read().expect("outboxes lock");
                for id in to.iter() {
                    if let Some(ob) = outboxes.get(id) {
                        if ob.push(&frame) == Pushed::Queued {
                            frames_out.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, outbox);
criterion_main!(benches);
