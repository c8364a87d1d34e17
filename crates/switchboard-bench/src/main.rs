//! `switchboard-bench`: drives a Switchboard node with a fan-out workload and reports
//! deliveries per second, end-to-end latency percentiles, losses, and the server's CPU time
//! and peak memory (from /proc). Written so that it is not the bottleneck: frames are not
//! parsed as JSON on the hot path, only scanned for the send timestamp the text carries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(name = "switchboard-bench", about = "Load generator for Switchboard")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// N members in one room, S of them sending M messages each.
    Fanout(FanoutArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct FanoutArgs {
    /// The node, e.g. ws://127.0.0.1:8080 (needs --rate/--burst raised for flat-out senders).
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// Members of the room (senders included).
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Members that also send.
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Messages per sender.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Messages per second per sender; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// The server's process id, to report its CPU time and peak memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Room name (a fresh one per run keeps runs independent).
    #[arg(long, default_value = "bench")]
    room: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().workload {
        Workload::Fanout(args) => fanout(args).await,
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, name: &str, room: &str) -> anyhow::Result<Ws> {
    let url = format!("{}/v1/ws", url.trim_end_matches('/'));
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    ws.send(Message::text(format!(
        r#"{{"type":"hello","v":1,"name":"{name}"}}"#
    )))
    .await?;
    ws.send(Message::text(format!(
        r#"{{"type":"join","room":"{room}","ref":"j"}}"#
    )))
    .await?;
    // Wait for the join to be confirmed.
    while let Some(m) = ws.next().await {
        if let Message::Text(t) = m? {
            if t.contains(r#""type":"joined""#) {
                return Ok(ws);
            }
            if t.contains(r#""type":"error""#) {
                anyhow::bail!("{name}: {t}");
            }
        }
    }
    anyhow::bail!("{name}: closed before joining")
}

fn now_ns(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// The send time a text carries: `t=<nanoseconds>;` at its start.
fn stamp(frame: &str) -> Option<u64> {
    let i = frame.find("\"text\":\"t=")? + 10;
    let rest = &frame[i..];
    let end = rest.find(';')?;
    rest[..end].parse().ok()
}

/// CPU seconds (user + system) and peak RSS in KiB of a process.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks / 100.0, hwm))
}

async fn fanout(args: FanoutArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let expected_per_member = (args.senders * args.messages) as u64;
    let delivered = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    let run_id = std::process::id();
    for i in 0..args.members {
        let name = format!("b{run_id}-{i}");
        let ws = connect(&args.url, &name, &args.room).await?;
        let (tx, rx) = ws.split();
        if i < args.senders {
            senders.push(tx);
        } else {
            drop(tx);
        }
        let delivered = delivered.clone();
        receivers.push(tokio::spawn(async move {
            let mut rx = rx;
            let mut lat = Vec::with_capacity(expected_per_member as usize);
            let mut got = 0u64;
            while got < expected_per_member {
                match tokio::time::timeout(Duration::from_secs(10), rx.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) => {
                        if let Some(sent) = stamp(&t) {
                            lat.push(now_ns(start).saturating_sub(sent));
                            got += 1;
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            delivered.fetch_add(got, Ordering::Relaxed);
            lat
        }));
    }
    let cpu_before = args.server_pid.and_then(proc_usage);
    let pad = "x".repeat(args.size.saturating_sub(24));
    let t0 = Instant::now();
    let mut send_tasks = Vec::new();
    for mut tx in senders {
        let (room, pad, n, rate) = (args.room.clone(), pad.clone(), args.messages, args.rate);
        send_tasks.push(tokio::spawn(async move {
            let gap = (rate > 0).then(|| Duration::from_nanos(1_000_000_000 / rate));
            let mut next = tokio::time::Instant::now();
            for _ in 0..n {
                if let Some(gap) = gap {
                    next += gap;
                    tokio::time::sleep_until(next).await;
                }
                let text = format!(
                    r#"{{"type":"send","room":"{room}","text":"t={};{pad}"}}"#,
                    now_ns(start)
                );
                tx.feed(Message::text(text)).await?;
                if gap.is_some() {
                    tx.flush().await?;
                }
            }
            tx.flush().await?;
            anyhow::Ok(tx)
        }));
    }
    let mut keep = Vec::new();
    for t in send_tasks {
        keep.push(t.await??);
    }
    let mut lat = Vec::new();
    for r in receivers {
        lat.extend(r.await?);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu_after = args.server_pid.and_then(proc_usage);
    let total = delivered.load(Ordering::Relaxed);
    let expected = expected_per_member * args.members as u64;
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p) as usize).min(lat.len() - 1);
        lat[i] as f64 / 1e6
    };
    let rate = total as f64 / elapsed;
    let (cpu, rss) = match (cpu_before, cpu_after) {
        (Some((a, _)), Some((b, hwm))) => (Some(b - a), Some(hwm)),
        _ => (None, None),
    };
    println!(
        "fanout members={} senders={} messages={} size={} rate={}",
        args.members, args.senders, args.messages, args.size, args.rate
    );
    println!(
        "  deliveries      {total} of {expected} ({} lost)",
        expected - total
    );
    println!("  elapsed         {elapsed:.3} s");
    println!("  deliveries/s    {rate:.0}");
    println!(
        "  latency ms      p50 {:.2}  p99 {:.2}  p99.9 {:.2}",
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
    if let (Some(cpu), Some(rss)) = (cpu, rss) {
        println!(
            "  server cpu      {cpu:.2} s ({:.0}% of one core)",
            100.0 * cpu / elapsed
        );
        println!("  server peak rss {} KiB", rss);
    }
    let json = serde_json::json!({
        "workload": "fanout", "members": args.members, "senders": args.senders,
        "messages": args.messages, "size": args.size, "rate": args.rate,
        "deliveries": total, "expected": expected, "lost": expected - total,
        "elapsed_s": elapsed, "deliveries_per_s": rate,
        "p50_ms": pct(0.5), "p99_ms": pct(0.99), "p999_ms": pct(0.999),
        "server_cpu_s": cpu, "server_peak_rss_kib": rss,
    });
    println!("{json}");
    drop(keep);
    Ok(())
}
