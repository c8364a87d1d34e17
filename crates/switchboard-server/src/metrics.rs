//! Counters for `/metrics`, rendered in the Prometheus text format. Plain atomics: a handful
//! of numbers do not need a metrics framework.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds (seconds) of the store write latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0];

#[derive(Default)]
pub struct Metrics {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub frames_in: AtomicU64,
    pub messages_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub deliveries: AtomicU64,
    pub queue_overflows: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub rate_limited: AtomicU64,
    pub store_batches: AtomicU64,
    pub store_ops: AtomicU64,
    pub store_errors: AtomicU64,
    store_latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    store_latency_count: AtomicU64,
    store_latency_sum_us: AtomicU64,
}

impl Metrics {
    /// Records one store batch's write and fsync time.
    pub fn observe_store_write(&self, secs: f64) {
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.store_latency_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.store_latency_count.fetch_add(1, Relaxed);
        self.store_latency_sum_us
            .fetch_add((secs * 1e6) as u64, Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self, sessions: usize, users: usize) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP switchboard_{name} {help}");
            let _ = writeln!(out, "# TYPE switchboard_{name} {kind}");
            let _ = writeln!(out, "switchboard_{name} {value}");
        };
        let g = |a: &AtomicU64| a.load(Relaxed);
        metric(
            "connections_open",
            "gauge",
            "Open client connections.",
            g(&self.connections_open),
        );
        metric(
            "connections_total",
            "counter",
            "Client connections accepted.",
            g(&self.connections_total),
        );
        metric(
            "connections_refused_total",
            "counter",
            "Connections refused at the cap.",
            g(&self.connections_refused),
        );
        metric("sessions", "gauge", "Signed-in sessions.", sessions as u64);
        metric(
            "users_online",
            "gauge",
            "Distinct users online.",
            users as u64,
        );
        metric(
            "frames_in_total",
            "counter",
            "Frames received from clients.",
            g(&self.frames_in),
        );
        metric(
            "messages_in_total",
            "counter",
            "Chat messages received from clients.",
            g(&self.messages_in),
        );
        metric(
            "frames_out_total",
            "counter",
            "Frames queued to clients.",
            g(&self.frames_out),
        );
        metric(
            "deliveries_total",
            "counter",
            "Chat messages queued to recipients.",
            g(&self.deliveries),
        );
        metric(
            "queue_overflows_total",
            "counter",
            "Connections closed as slow consumers.",
            g(&self.queue_overflows),
        );
        metric(
            "protocol_errors_total",
            "counter",
            "Malformed or refused client frames.",
            g(&self.protocol_errors),
        );
        metric(
            "rate_limited_total",
            "counter",
            "Frames refused by the rate limit.",
            g(&self.rate_limited),
        );
        metric(
            "store_batches_total",
            "counter",
            "Group commits to the store.",
            g(&self.store_batches),
        );
        metric(
            "store_ops_total",
            "counter",
            "Ops written to the store.",
            g(&self.store_ops),
        );
        metric(
            "store_errors_total",
            "counter",
            "Failed store writes.",
            g(&self.store_errors),
        );
        let _ = writeln!(
            out,
            "# HELP switchboard_store_write_seconds Time to write and fsync one batch."
        );
        let _ = writeln!(out, "# TYPE switchboard_store_write_seconds histogram");
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "switchboard_store_write_seconds_bucket{{le=\"{bound}\"}} {}",
                g(&self.store_latency_buckets[i])
            );
        }
        let count = g(&self.store_latency_count);
        let _ = writeln!(
            out,
            "switchboard_store_write_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "switchboard_store_write_seconds_sum {}",
            g(&self.store_latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(out, "switchboard_store_write_seconds_count {count}");
        out
    }
}
