//! Micro-benchmarks of the store: appending a batch of 1 and of 100 message ops (one
//! transaction and, for SQLite, one fsync each: the group commit's unit of work), on
//! `SqliteStore` and `MemoryStore`, and reading a 50-message history page from a stream that
//! holds 10,000 messages.
//!
//! The SQLite database lives in a temporary directory under Cargo's target directory, on the
//! same disk as the build, so the fsync is a real one.
//!
//! Run: `cargo bench -p switchboard-store --bench append`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use switchboard_core::{Op, OpBody, OpMeta};
use switchboard_proto::{ChatMessage, Cursor, Position};
use switchboard_store::{MemoryStore, Page, SqliteStore, Store};

/// How often (in batches) the store is tidied, outside the timing, so that every run sees
/// about the same store. SQLite: the WAL is checkpointed, as a node does once a second from
/// its upkeep thread (`Store::maintain`); without it the WAL grows for ever. Memory: the store
/// starts afresh, since it keeps every op and a fast run would otherwise fill the RAM.
const TIDY_EVERY: u64 = 200;

/// A room message op with a 100-byte text; `n` makes its origin sequence and clock unique.
fn message_op(n: u64) -> Op {
    let text = format!("{n:0>100}");
    Op {
        meta: OpMeta {
            origin: "n1".into(),
            oseq: n,
            lamport: n,
        },
        body: OpBody::Message {
            msg: ChatMessage {
                id: format!("n1-{n}"),
                stream: "#general".into(),
                from: "alice".into(),
                room: Some("general".into()),
                to: None,
                text,
                ts: 1_767_225_600_000 + n,
                lamport: n,
                origin: "n1".into(),
                oseq: n,
            },
            queued_for: None,
        },
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir")
}

/// Times appends of `batch` fresh ops each; `next` carries the sequence across runs.
fn bench_append<S: Store>(
    store: &mut S,
    tidy: fn(&mut S),
    batch: u64,
    next: &mut u64,
    iters: u64,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        // Counted across calls: criterion asks for a few iterations at a time.
        if (*next / batch).is_multiple_of(TIDY_EVERY) {
            tidy(store);
        }
        let ops: Vec<Op> = (*next..*next + batch).map(message_op).collect();
        *next += batch;
        let started = Instant::now();
        store.append(black_box(&ops), *next).expect("append");
        total += started.elapsed();
    }
    total
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("store_append");
    for batch in [1u64, 100] {
        g.throughput(Throughput::Elements(batch));

        let dir = tempdir();
        let mut sqlite = SqliteStore::open(dir.path()).expect("open");
        let checkpoint = |s: &mut SqliteStore| s.maintain().expect("checkpoint");
        let mut next = 1;
        g.bench_with_input(BenchmarkId::new("sqlite", batch), &batch, |b, &n| {
            b.iter_custom(|iters| bench_append(&mut sqlite, checkpoint, n, &mut next, iters))
        });

        let mut memory = MemoryStore::new();
        let afresh = |s: &mut MemoryStore| *s = MemoryStore::new();
        let mut next = 1;
        g.bench_with_input(BenchmarkId::new("memory", batch), &batch, |b, &n| {
            b.iter_custom(|iters| bench_append(&mut memory, afresh, n, &mut next, iters))
        });
    }
    g.finish();
}

/// Messages in the stream that `history` pages through.
const STREAM_LEN: u64 = 10_000;
const PAGE: u32 = 50;

fn history(c: &mut Criterion) {
    let mut g = c.benchmark_group("store_history");
    g.throughput(Throughput::Elements(PAGE as u64));
    let dir = tempdir();
    let sqlite = SqliteStore::open(dir.path()).expect("open");
    let memory = MemoryStore::new();
    let ops: Vec<Op> = (1..=STREAM_LEN).map(message_op).collect();
    for store in [&sqlite as &dyn Store, &memory] {
        for chunk in ops.chunks(1_000) {
            store.append(chunk, STREAM_LEN).expect("append");
        }
        store.maintain().expect("checkpoint");
        let page = store
            .history("#general", Page::Before(None), PAGE, 0)
            .expect("history");
        assert_eq!(page.messages.len(), PAGE as usize);
        assert!(page.more);
    }
    // A second origin's one message at the start of the stream, added below: the scan of a
    // catch-up starts at the lowest place of an origin with something new, so the silent
    // origin must not make it read the whole stream.
    let mut early = message_op(1);
    early.meta.origin = "n2".into();
    if let OpBody::Message { msg, .. } = &mut early.body {
        msg.origin = "n2".into();
        msg.id = "n2-1".into();
    }
    let recent = Page::After(Cursor::from([
        ("n1".to_string(), STREAM_LEN - PAGE as u64),
        ("n2".to_string(), 1),
    ]));
    // Catching up on the last 50 after a reconnect: first with every origin's place recent,
    // then once n2 has written at the start and never since.
    for (bench, silent_origin) in [
        ("catch_up_50", None),
        ("catch_up_50_after_a_silent_origin", Some(&early)),
    ] {
        for (name, store) in [("sqlite", &sqlite as &dyn Store), ("memory", &memory)] {
            if let Some(op) = silent_origin {
                store
                    .append(std::slice::from_ref(op), STREAM_LEN)
                    .expect("append");
            }
            g.bench_function(BenchmarkId::new(name, bench), |b| {
                b.iter(|| {
                    let page = store
                        .history("#general", recent.clone(), PAGE, 0)
                        .expect("history");
                    assert_eq!(page.messages.len(), PAGE as usize);
                    page
                })
            });
        }
    }
    for (name, store) in [("sqlite", &sqlite as &dyn Store), ("memory", &memory)] {
        // The newest page, what a client reads on joining.
        g.bench_function(BenchmarkId::new(name, "newest_50"), |b| {
            b.iter(|| {
                store
                    .history("#general", Page::Before(None), PAGE, 0)
                    .expect("history")
            })
        });
        // A page from the middle, what scrolling back reads: an indexed range scan.
        let middle = Page::Before(Some(Position {
            lamport: STREAM_LEN / 2,
            origin: "n1".into(),
        }));
        g.bench_function(BenchmarkId::new(name, "middle_50"), |b| {
            b.iter(|| {
                store
                    .history("#general", middle.clone(), PAGE, 0)
                    .expect("history")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, append, history);
criterion_main!(benches);
