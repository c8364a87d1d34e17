//! The workloads: fanout, dm, connections and durable. A cluster run is fanout or dm given
//! several servers: clients are spread over them in turn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::sync::Semaphore;

use crate::proto::{self, contains, is_refusal, stamp, Kind, Rx, Target, Tx};
use crate::report::{server_usage, usage, Clock, Latencies, Report};

/// How long a receiver waits for its next delivery before it counts the rest as lost.
const SILENCE: Duration = Duration::from_secs(10);

/// A dm user that has every message of its partner still reads, until the line has been
/// quiet this long, the refusals of its own sends that come after (see `receive_loop`).
const DRAIN: Duration = Duration::from_secs(1);

/// A name unique to this run (a server may remember guests for a moment after they leave).
fn name(tag: &str, i: usize) -> String {
    format!("{tag}{}x{i}", std::process::id() % 100_000)
}

/// Opens `n` connections (client `i` named by `name_of(i)`), `t.connecting` at a time, in
/// index order; client `i` is privileged when `privileged(i)`.
async fn connect_all(
    t: &Target,
    n: usize,
    name_of: impl Fn(usize) -> String,
    privileged: impl Fn(usize) -> bool,
) -> anyhow::Result<Vec<(Tx, Rx)>> {
    connect_range(t, 0..n, name_of, privileged).await
}

/// `connect_all` for the clients numbered `range`.
async fn connect_range(
    t: &Target,
    range: std::ops::Range<usize>,
    name_of: impl Fn(usize) -> String,
    privileged: impl Fn(usize) -> bool,
) -> anyhow::Result<Vec<(Tx, Rx)>> {
    let gate = Arc::new(Semaphore::new(t.connecting.max(1)));
    let mut tasks = Vec::with_capacity(range.len());
    for i in range.clone() {
        let (t, name, p, gate) = (t.clone(), name_of(i), privileged(i), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            proto::connect(&t, i, &name, p).await
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for (i, task) in range.zip(tasks) {
        match task.await? {
            Ok(c) => out.push(c),
            Err(e) => bail!("client {i}: {e:#}"),
        }
    }
    Ok(out)
}

/// The text of a message: its send time, then padding up to `size` bytes.
fn text(clock: &Clock, pad: &str) -> String {
    format!("t={};{pad}", clock.now_ns())
}

fn padding(size: usize) -> String {
    "x".repeat(size.saturating_sub(24))
}

/// Sends `n` messages made by `frame` at `rate` per second (0: flat out, fed in batches and
/// flushed when the socket asks). A paced sender starts `phase` (a fraction of its gap)
/// late, so that S senders at R/s each arrive as one stream of S x R/s, evenly spread, as
/// independent users would, and not as S simultaneous messages on every tick (a burst that
/// measures how fast the burst drains, not the latency at that rate).
async fn send_loop(
    tx: &mut Tx,
    n: usize,
    rate: u64,
    phase: f64,
    mut frame: impl FnMut() -> String,
) -> anyhow::Result<()> {
    let gap = (rate > 0).then(|| Duration::from_nanos(1_000_000_000 / rate));
    let mut next = tokio::time::Instant::now() + gap.map_or(Duration::ZERO, |g| g.mul_f64(phase));
    for _ in 0..n {
        if let Some(gap) = gap {
            next += gap;
            tokio::time::sleep_until(next).await;
            tx.send(frame()).await?;
        } else {
            tx.feed(frame()).await?;
        }
    }
    tx.flush().await
}

/// Reads deliveries until `expected` came or the line went silent; `skip` drops units that
/// are not deliveries to count (a sender's own echo in a dm run). Refusals counted here are
/// of this client's own sends (a dm partner then waits out the silence; the rate is taken to
/// the last delivery, so it is not diluted).
///
/// `drain`: this connection also sends (a dm user). Once its partner's messages are all in,
/// the refusals of its own last sends may still be on their way; it reads on until the line
/// is quiet for `DRAIN`, counting them. Without this they were counted as lost (a run at
/// 2026-11-22 reported 233 lost beside 28,951 refused, all of them refusals).
async fn receive_loop(
    mut rx: Rx,
    expected: u64,
    clock: Clock,
    skip: Option<Vec<u8>>,
    drain: bool,
) -> Received {
    let mut lat = Latencies::with_capacity(expected as usize);
    let (mut got, mut refused) = (0, 0);
    let mut last_ns = 0;
    let mut buf = Vec::with_capacity(512);
    loop {
        let wait = match (got < expected, drain) {
            (true, _) => SILENCE,
            (false, true) => DRAIN,
            (false, false) => break,
        };
        match tokio::time::timeout(wait, rx.next(&mut buf)).await {
            Ok(Ok(true)) => {
                if is_refusal(&buf) {
                    refused += 1;
                    continue;
                }
                if got >= expected || skip.as_deref().is_some_and(|s| contains(&buf, s)) {
                    continue;
                }
                if let Some(sent) = stamp(&buf) {
                    last_ns = clock.now_ns();
                    lat.push_ns(last_ns.saturating_sub(sent));
                    got += 1;
                }
            }
            _ => break,
        }
    }
    Received {
        got,
        refused,
        lat,
        last_ns,
        _rx: rx,
    }
}

/// What one receiver got: the count, the latencies, and when the last one came (so that a
/// run's rate is not diluted by the wait that detects a loss).
struct Received {
    got: u64,
    refused: u64,
    lat: Latencies,
    last_ns: u64,
    _rx: Rx,
}

/// Sums the receivers: deliveries, latencies, and the seconds from `start_ns` to the last
/// delivery.
async fn gather(
    receivers: Vec<tokio::task::JoinHandle<Received>>,
    start_ns: u64,
) -> anyhow::Result<(u64, u64, Latencies, f64)> {
    let mut lat = Latencies::default();
    let (mut total, mut refused, mut last) = (0, 0, start_ns);
    for r in receivers {
        let r = r.await?;
        total += r.got;
        refused += r.refused;
        last = last.max(r.last_ns);
        lat.extend(r.lat);
    }
    Ok((total, refused, lat, (last - start_ns) as f64 / 1e9))
}

/// What every sender of a fanout or dm run sends: `messages` frames made by `frame` (to a
/// room or to a user), at `rate` per second or flat out.
struct Sending {
    kind: Kind,
    frame: fn(Kind, &str, &str) -> String,
    messages: usize,
    rate: u64,
    size: usize,
}

/// What a fanout or dm run measured.
struct Run {
    total: u64,
    refused: u64,
    lat: Latencies,
    elapsed: f64,
    before: Option<crate::report::Usage>,
    after: Option<crate::report::Usage>,
    _senders: Vec<Tx>,
}

impl Run {
    /// The fields every delivery run reports; `rate_key` names its rate.
    fn report(self, r: &mut Report, expected: u64, rate_key: &str) {
        r.set("expected", expected);
        r.set("refused", self.refused);
        r.set("lost", expected - self.total - self.refused);
        r.set("elapsed_s", self.elapsed);
        r.set(rate_key, self.total as f64 / self.elapsed);
        self.lat.report(r);
        server_usage(r, self.before, self.after, self.elapsed);
    }
}

/// Sends from every sender, each `(connection, destination)`, then sums what the receivers
/// got. The senders' connections are kept open until the report is made.
async fn drive(
    spec: Sending,
    senders: Vec<(Tx, String)>,
    receivers: Vec<tokio::task::JoinHandle<Received>>,
    clock: Clock,
    pid: Option<u32>,
) -> anyhow::Result<Run> {
    let before = pid.and_then(usage);
    let t0 = clock.now_ns();
    let pad = padding(spec.size);
    let mut sending = Vec::new();
    let count = senders.len();
    for (i, (mut tx, to)) in senders.into_iter().enumerate() {
        let (kind, frame, pad, n, rate) =
            (spec.kind, spec.frame, pad.clone(), spec.messages, spec.rate);
        let phase = i as f64 / count as f64;
        sending.push(tokio::spawn(async move {
            send_loop(&mut tx, n, rate, phase, || {
                frame(kind, &to, &text(&clock, &pad))
            })
            .await?;
            anyhow::Ok(tx)
        }));
    }
    let mut kept = Vec::new();
    for s in sending {
        kept.push(s.await??);
    }
    let (total, refused, lat, elapsed) = gather(receivers, t0).await?;
    Ok(Run {
        total,
        refused,
        lat,
        elapsed,
        before,
        after: pid.and_then(usage),
        _senders: kept,
    })
}

/// Parameters of a fan-out run.
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    /// Members of the room (senders included).
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Members that also send.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Messages per sender.
    #[arg(long, default_value_t = 2000)]
    pub messages: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Messages per second per sender; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Room (channel, subject) name; a fresh one per run keeps runs independent.
    #[arg(long, default_value = "bench")]
    pub room: String,
    /// Rooms: member i is in room `ROOM-(i mod R)` (with one room, just ROOM). With as many
    /// rooms as servers, each room's members are all on one server (client i connects to
    /// server i mod n): rooms local to nodes, where interest-based routing pays.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
}

impl FanoutArgs {
    /// The room of member `i`.
    fn room_of(&self, i: usize) -> String {
        if self.rooms <= 1 {
            self.room.clone()
        } else {
            format!("{}-{}", self.room, i % self.rooms)
        }
    }

    /// How many senders share member `i`'s room.
    fn senders_with(&self, i: usize) -> usize {
        let rooms = self.rooms.max(1);
        (0..self.senders).filter(|s| s % rooms == i % rooms).count()
    }
}

/// N members in one room, S of them sending M messages each: deliveries per second and
/// end-to-end latency.
pub async fn fanout(t: &Target, a: &FanoutArgs, pid: Option<u32>) -> anyhow::Result<Report> {
    let clock = Clock::start();
    let conns = connect_all(t, a.members, |i| name("f", i), |i| i < a.senders).await?;
    let mut senders = Vec::new();
    let mut idle = Vec::new();
    let mut receivers = Vec::new();
    let mut expected_total = 0;
    for (i, (mut tx, mut rx)) in conns.into_iter().enumerate() {
        proto::join(t.kind, &mut tx, &mut rx, &a.room_of(i)).await?;
        let senders_here = a.senders_with(i);
        let from_others = senders_here.saturating_sub(usize::from(i < a.senders)) * a.messages;
        let expected = if t.kind.echoes() {
            (senders_here * a.messages) as u64
        } else {
            from_others as u64
        };
        expected_total += expected;
        if i < a.senders {
            senders.push((tx, a.room_of(i)));
        } else {
            // Kept open: dropping a TCP write half shuts it down, and IRC and NATS servers
            // take that for the client leaving.
            idle.push(tx);
        }
        receivers.push(tokio::spawn(receive_loop(rx, expected, clock, None, false)));
    }
    let spec = Sending {
        kind: t.kind,
        frame: proto::room_message,
        messages: a.messages,
        rate: a.rate,
        size: a.size,
    };
    let run = drive(spec, senders, receivers, clock, pid).await?;
    let mut r = Report::new("fanout");
    r.set("target", t.kind.name());
    r.set("servers", t.servers.len());
    r.set("members", a.members);
    r.set("rooms", a.rooms.max(1));
    r.set("senders", a.senders);
    r.set("messages", a.messages);
    r.set("size", a.size);
    r.set("rate", a.rate);
    r.set("deliveries", run.total);
    run.report(&mut r, expected_total, "deliveries_per_s");
    drop(idle);
    Ok(r)
}

/// Parameters of a direct-message run.
#[derive(Debug, Clone, clap::Args)]
pub struct DmArgs {
    /// Pairs of users; each user sends to the other.
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// Messages each user sends.
    #[arg(long, default_value_t = 1000)]
    pub messages: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Messages per second per user; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}

/// P pairs exchanging direct messages: messages per second and latency. With several servers,
/// the two users of a pair are on different ones.
pub async fn dm(t: &Target, a: &DmArgs, pid: Option<u32>) -> anyhow::Result<Report> {
    let clock = Clock::start();
    let n = a.pairs * 2;
    let mut conns = connect_all(t, n, |i| name("d", i), |_| true).await?;
    if t.kind == Kind::Switchboard {
        for (i, (tx, rx)) in conns.iter_mut().enumerate() {
            until_known(tx, rx, &name("d", i ^ 1)).await?;
        }
    }
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for (i, (tx, rx)) in conns.into_iter().enumerate() {
        // Switchboard hands a sender its own direct message too (for its other sessions).
        let skip = (t.kind == Kind::Switchboard)
            .then(|| format!(r#""from":"{}""#, name("d", i)).into_bytes());
        receivers.push(tokio::spawn(receive_loop(
            rx,
            a.messages as u64,
            clock,
            skip,
            true,
        )));
        senders.push((tx, name("d", i ^ 1)));
    }
    let spec = Sending {
        kind: t.kind,
        frame: proto::direct_message,
        messages: a.messages,
        rate: a.rate,
        size: a.size,
    };
    let run = drive(spec, senders, receivers, clock, pid).await?;
    let mut r = Report::new("dm");
    r.set("target", t.kind.name());
    r.set("servers", t.servers.len());
    r.set("pairs", a.pairs);
    r.set("messages", a.messages);
    r.set("size", a.size);
    r.set("rate", a.rate);
    r.set("delivered", run.total);
    run.report(&mut r, (n * a.messages) as u64, "messages_per_s");
    Ok(r)
}

/// Switchboard: waits until `partner` is in this client's directory. On a cluster, presence
/// takes a moment to reach every node, and a message sent before it would be refused as
/// `not_found` (and counted lost).
async fn until_known(tx: &mut Tx, rx: &mut Rx, partner: &str) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(512);
    for _ in 0..200 {
        tx.send(format!(
            r#"{{"type":"whois","name":"{partner}","ref":"w"}}"#
        ))
        .await?;
        loop {
            if !rx.next(&mut buf).await? {
                bail!("closed while looking up {partner}");
            }
            if contains(&buf, br#""ref":"w""#) {
                break;
            }
        }
        if contains(&buf, br#""online":true"#) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{partner} never showed up in the directory")
}

/// Parameters of a connections run.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionsArgs {
    /// Idle connections to open.
    #[arg(long, default_value_t = 18000)]
    pub count: usize,
    /// Seconds to hold them open once all are up.
    #[arg(long, default_value_t = 2)]
    pub hold: u64,
}

/// Ramps to C idle connections (each fully registered): connect rate and server memory per
/// connection. Memory is the growth of the server's resident memory from a first tenth of the
/// connections to all of them, divided by the other nine tenths: the marginal cost of one more
/// connection, without the server's one-time costs (runtime, first allocations) that the first
/// connections bring.
pub async fn connections(
    t: &Target,
    a: &ConnectionsArgs,
    pid: Option<u32>,
) -> anyhow::Result<Report> {
    let warm = (a.count / 10).max(1).min(a.count);
    let before = pid.and_then(usage);
    let t0 = Instant::now();
    let mut conns = connect_range(t, 0..warm, |i| name("c", i), |_| false).await?;
    let ramp_warm = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mid = pid.and_then(usage);
    let t1 = Instant::now();
    conns.extend(connect_range(t, warm..a.count, |i| name("c", i), |_| false).await?);
    let ramp = ramp_warm + t1.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(a.hold)).await;
    let after = pid.and_then(usage);
    let mut r = Report::new("connections");
    r.set("target", t.kind.name());
    r.set("count", conns.len());
    r.set("sources", t.sources);
    r.set("ramp_s", ramp);
    r.set("connects_per_s", conns.len() as f64 / ramp);
    if let (Some(b), Some(m), Some(a2)) = (before, mid, after) {
        let marginal = a2.rss_kib.saturating_sub(m.rss_kib) * 1024;
        let total = a2.rss_kib.saturating_sub(b.rss_kib) * 1024;
        r.set("server_rss_before_kib", b.rss_kib);
        r.set("server_rss_after_kib", a2.rss_kib);
        r.set(
            "bytes_per_connection",
            marginal as f64 / (a.count - warm).max(1) as f64,
        );
        r.set(
            "bytes_per_connection_total",
            total as f64 / a.count.max(1) as f64,
        );
        r.set("server_cpu_s", a2.cpu_s - b.cpu_s);
    }
    drop(conns);
    Ok(r)
}

/// Parameters of a durable run.
#[derive(Debug, Clone, clap::Args)]
pub struct DurableArgs {
    /// Concurrent senders, each in a room of its own.
    #[arg(long, default_value_t = 100)]
    pub senders: usize,
    /// Messages per sender.
    #[arg(long, default_value_t = 2000)]
    pub messages: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
}

/// Acknowledged messages per second: every `ack` means the message is on disk (Switchboard
/// only: IRC and core NATS have no durable acknowledgement). The ack's `ref` carries the send
/// time, so its latency is the time to durability.
pub async fn durable(t: &Target, a: &DurableArgs, pid: Option<u32>) -> anyhow::Result<Report> {
    if t.kind != Kind::Switchboard {
        bail!("durable runs need acknowledgements: Switchboard only");
    }
    let clock = Clock::start();
    let conns = connect_all(t, a.senders, |i| name("w", i), |_| true).await?;
    let mut pairs = Vec::new();
    for (i, (mut tx, mut rx)) in conns.into_iter().enumerate() {
        let room = name("w", i);
        proto::join(t.kind, &mut tx, &mut rx, &room).await?;
        pairs.push((room, tx, rx));
    }
    let before = pid.and_then(usage);
    let t0 = Instant::now();
    let pad = padding(a.size);
    let mut tasks = Vec::new();
    for (room, mut tx, mut rx) in pairs {
        let (pad, m) = (pad.clone(), a.messages);
        tasks.push(tokio::spawn(async move {
            let reader = tokio::spawn(async move {
                let mut lat = Latencies::with_capacity(m);
                let (mut acks, mut refused) = (0u64, 0u64);
                let mut buf = Vec::with_capacity(512);
                while acks + refused < m as u64 {
                    match tokio::time::timeout(SILENCE, rx.next(&mut buf)).await {
                        Ok(Ok(true)) => {
                            if contains(&buf, br#""type":"ack""#) {
                                if let Some(sent) = stamp(&buf) {
                                    lat.push_ns(clock.now_ns().saturating_sub(sent));
                                }
                                acks += 1;
                            } else if contains(&buf, br#""type":"error""#) {
                                refused += 1;
                            }
                        }
                        _ => break,
                    }
                }
                (acks, refused, lat)
            });
            send_loop(&mut tx, m, 0, 0.0, || {
                format!(
                    r#"{{"type":"send","room":"{room}","text":"{pad}","ref":"t={};"}}"#,
                    clock.now_ns()
                )
            })
            .await?;
            let out = reader.await?;
            anyhow::Ok((out, tx))
        }));
    }
    let (mut acks, mut refused, mut lat) = (0, 0, Latencies::default());
    let mut keep = Vec::new();
    for task in tasks {
        let ((a2, r2, l), tx) = task.await??;
        acks += a2;
        refused += r2;
        lat.extend(l);
        keep.push(tx);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let after = pid.and_then(usage);
    let expected = (a.senders * a.messages) as u64;
    let mut r = Report::new("durable");
    r.set("target", t.kind.name());
    r.set("servers", t.servers.len());
    r.set("senders", a.senders);
    r.set("messages", a.messages);
    r.set("size", a.size);
    r.set("acked", acks);
    r.set("refused", refused);
    r.set("lost", expected - acks - refused);
    r.set("elapsed_s", elapsed);
    r.set("acks_per_s", acks as f64 / elapsed);
    lat.report(&mut r);
    server_usage(&mut r, before, after, elapsed);
    drop(keep);
    Ok(r)
}
