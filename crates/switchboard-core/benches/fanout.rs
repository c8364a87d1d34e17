//! Micro-benchmark of the core alone on a room message: 1,000 sessions in one room, one
//! `send` handled, its op taken and committed as the store writer does (`take_ops`, then
//! `committed`), until the `Fanout` effect to all 1,000 members comes out. No IO: what is
//! measured is the core's share of the time the server holds the core lock per message.
//!
//! Run: `cargo bench -p switchboard-core --bench fanout`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use switchboard_core::{Auth, Config, Core, Effect, Restore};
use switchboard_proto::server::Limits;
use switchboard_proto::ClientMsg;

/// Members of the room: the case the benches are about.
const MEMBERS: u64 = 1_000;
/// A small room, to show what of the cost depends on the room's size.
const FEW: u64 = 10;
const NOW: u64 = 1_767_225_600_000;

/// A core with `members` guests in room `general`, everything committed.
fn room_of(members: u64) -> Core {
    let mut core = Core::new(
        Config {
            node: "n1".into(),
            inbox_cap: 1_000,
            limits: Limits {
                max_frame_bytes: 65_536,
                max_text_bytes: 16_384,
                rate_per_sec: 20,
                burst: 40,
            },
            incarnation: 1,
        },
        Restore::default(),
    );
    let mut out = Vec::new();
    for s in 1..=members {
        core.hello(s, &format!("user{s}"), Auth::Guest, NOW, &mut out);
        let join = ClientMsg::Join {
            room: "general".into(),
            reff: None,
        };
        core.handle(s, join, NOW, &mut out);
        out.clear();
    }
    commit_all(&mut core, &mut out);
    assert_eq!(core.session_count(), members as usize);
    core
}

/// Takes every waiting op and reports it durable, as the store writer does after its commit.
fn commit_all(core: &mut Core, out: &mut Vec<Effect>) {
    let ops = core.take_ops();
    let clock = core.clock();
    core.committed(ops.len(), clock, out);
}

fn send(text: &str) -> ClientMsg {
    ClientMsg::Send {
        room: Some("general".into()),
        to: None,
        text: text.to_string(),
        reff: Some("42".into()),
    }
}

/// Deliveries (frame x recipient) in a list of effects, checking the fan-out went to all.
fn deliveries(out: &[Effect]) -> usize {
    out.iter()
        .map(|e| match e {
            Effect::Fanout { to, .. } => to.len(),
            Effect::Send { .. } => 1,
            _ => 0,
        })
        .sum()
}

fn fanout(c: &mut Criterion) {
    let text = "x".repeat(100);
    let mut g = c.benchmark_group("core_room_send");
    g.warm_up_time(Duration::from_secs(1));
    // `batch` sends handled, then one commit releasing them all: 1 is a lone message, 100 is
    // what a group commit under load looks like. Throughput is in messages.
    for (members, batch) in [(MEMBERS, 1u64), (MEMBERS, 100), (FEW, 1)] {
        let mut core = room_of(members);
        let mut out = Vec::with_capacity(2 * batch as usize);
        // Sanity: one message reaches all members, plus the sender's acknowledgement.
        core.handle(1, send(&text), NOW, &mut out);
        commit_all(&mut core, &mut out);
        assert_eq!(deliveries(&out), members as usize + 1, "{out:?}");
        out.clear();

        g.throughput(Throughput::Elements(batch));
        let id = BenchmarkId::new(format!("members_{members}"), format!("batch_{batch}"));
        g.bench_with_input(id, &batch, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Decoded messages, as the connection tasks hand them over (untimed).
                    let msgs: Vec<ClientMsg> = (0..n).map(|_| send(&text)).collect();
                    let started = Instant::now();
                    for (i, msg) in (0..n).zip(msgs) {
                        core.handle(1 + (i % members), msg, NOW, &mut out);
                    }
                    commit_all(&mut core, &mut out);
                    total += started.elapsed();
                    black_box(&out);
                    // Effects are dropped untimed: the server moves them into outboxes.
                    out.clear();
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
