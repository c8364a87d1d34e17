//! Results: a table for people, a JSON line for scripts, and the server's CPU and memory
//! read from /proc.

use std::time::Instant;

/// One run's results: ordered (key, value) pairs.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub workload: String,
    pub fields: Vec<(String, serde_json::Value)>,
}

impl Report {
    pub fn new(workload: &str) -> Report {
        Report {
            workload: workload.to_string(),
            fields: Vec::new(),
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.fields.push((key.to_string(), value.into()));
    }

    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn f64(&self, key: &str) -> f64 {
        self.get(key).and_then(|v| v.as_f64()).unwrap_or(0.0)
    }

    pub fn json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("workload".into(), self.workload.clone().into());
        for (k, v) in &self.fields {
            m.insert(k.clone(), v.clone());
        }
        serde_json::Value::Object(m)
    }

    /// The table, then the JSON line.
    pub fn print(&self) {
        println!("{}", self.workload);
        for (k, v) in &self.fields {
            let shown = match v {
                serde_json::Value::Number(n) if n.is_f64() => {
                    let f = n.as_f64().unwrap_or(0.0);
                    if f.abs() >= 100.0 {
                        format!("{f:.0}")
                    } else {
                        format!("{f:.3}")
                    }
                }
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("  {k:<22} {shown}");
        }
        println!("{}", self.json());
    }
}

/// Latency samples in microseconds; percentiles in milliseconds.
#[derive(Debug, Default)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn with_capacity(n: usize) -> Latencies {
        Latencies(Vec::with_capacity(n))
    }

    pub fn push_ns(&mut self, ns: u64) {
        self.0.push((ns / 1000).min(u32::MAX as u64) as u32);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorts, then writes p50/p99/p99.9 (ms) into the report.
    pub fn report(mut self, r: &mut Report) {
        self.0.sort_unstable();
        for (key, p) in [("p50_ms", 0.5), ("p99_ms", 0.99), ("p999_ms", 0.999)] {
            let v = if self.0.is_empty() {
                0.0
            } else {
                let i = ((self.0.len() as f64 * p) as usize).min(self.0.len() - 1);
                self.0[i] as f64 / 1000.0
            };
            r.set(key, v);
        }
    }
}

/// A clock shared by senders and receivers: nanoseconds since the run began.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    pub fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// A process's CPU seconds (user + system), current RSS and peak RSS (KiB), from /proc.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu_s: f64,
    pub rss_kib: u64,
    pub peak_kib: u64,
}

pub fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(Usage {
        cpu_s: ticks / 100.0,
        rss_kib: kib("VmRSS:")?,
        peak_kib: kib("VmHWM:")?,
    })
}

/// Adds the server's CPU share and peak memory over a run to the report.
pub fn server_usage(r: &mut Report, before: Option<Usage>, after: Option<Usage>, elapsed_s: f64) {
    if let (Some(b), Some(a)) = (before, after) {
        let cpu = a.cpu_s - b.cpu_s;
        r.set("server_cpu_s", cpu);
        r.set("server_cpu_pct", 100.0 * cpu / elapsed_s.max(1e-9));
        r.set("server_peak_rss_kib", a.peak_kib);
    }
}
