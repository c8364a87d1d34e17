//! Each workload, run briefly against a real node for correctness only (the figures are for
//! docs/benchmarks.md, never asserted here): nothing is lost, every count adds up.

use std::time::Duration;

use switchboard_bench::workloads::{self, ConnectionsArgs, DmArgs, DurableArgs, FanoutArgs};
use switchboard_bench::{Report, Target};

struct Node {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn node(name: &str, peers: Vec<String>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let mut c = switchboard_server::Config::new(name, dir.path());
    c.rate_per_sec = 1_000_000;
    c.burst = 1_000_000;
    c.drain_timeout = Duration::from_secs(1);
    if !peers.is_empty() || name != "solo" {
        c.cluster_secret = Some("bench-test-secret-0123456789".into());
        c.peers = peers;
        c.heartbeat_every = Duration::from_millis(100);
        c.peer_down_after = Duration::from_millis(800);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(switchboard_server::serve_with(
        listener,
        None,
        None,
        c,
        async move {
            let _ = rx.await;
            "test over".to_string()
        },
    ));
    Node {
        url,
        stop: Some(stop),
        handle,
        _dir: dir,
    }
}

impl Node {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.handle.await.unwrap().unwrap();
    }
}

fn int(r: &Report, key: &str) -> u64 {
    r.get(key)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("{key} in {:?}", r.json()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_against_one_node_without_losses() {
    let n = node("solo", vec![]).await;
    let pid = Some(std::process::id());
    let t = Target::parse(&n.url, 4, None).unwrap();

    let f = FanoutArgs {
        members: 20,
        senders: 3,
        messages: 50,
        size: 100,
        rate: 0,
        room: "fan".into(),
        rooms: 1,
    };
    let r = workloads::fanout(&t, &f, pid).await.unwrap();
    assert_eq!(int(&r, "lost"), 0, "{}", r.json());
    // Every member (senders too: Switchboard echoes) got every message.
    assert_eq!(int(&r, "deliveries"), 20 * 3 * 50);
    assert!(r.f64("p99_ms") > 0.0);
    assert!(r.get("server_cpu_s").is_some());

    let d = DmArgs {
        pairs: 5,
        messages: 40,
        size: 64,
        rate: 0,
    };
    let r = workloads::dm(&t, &d, pid).await.unwrap();
    assert_eq!(int(&r, "lost"), 0, "{}", r.json());
    assert_eq!(int(&r, "delivered"), 10 * 40, "own echoes are not counted");

    let c = ConnectionsArgs {
        count: 200,
        hold: 0,
    };
    let r = workloads::connections(&t, &c, pid).await.unwrap();
    assert_eq!(int(&r, "count"), 200);
    assert!(r.f64("connects_per_s") > 0.0);

    let w = DurableArgs {
        senders: 8,
        messages: 100,
        size: 100,
    };
    let r = workloads::durable(&t, &w, pid).await.unwrap();
    assert_eq!(int(&r, "acked") + int(&r, "refused"), 800, "{}", r.json());
    assert_eq!(int(&r, "lost"), 0);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_and_dm_spread_over_a_cluster() {
    let a = node("a", vec![]).await;
    let b = node("b", vec![a.url.clone()]).await;
    // Wait until the link is up: a direct message across it needs the directory.
    let status = format!("http://{}/v1/cluster", b.url.trim_start_matches("ws://"));
    for _ in 0..100 {
        let body = http_get(&status).await;
        if body.contains(r#""state":"up""#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = Target::parse(&format!("{},{}", a.url, b.url), 1, None).unwrap();
    let f = FanoutArgs {
        members: 10,
        senders: 2,
        messages: 30,
        size: 100,
        rate: 0,
        room: "spread".into(),
        rooms: 1,
    };
    let r = workloads::fanout(&t, &f, None).await.unwrap();
    assert_eq!(int(&r, "lost"), 0, "{}", r.json());
    // Two rooms, one per node (member i on node i mod 2, in room i mod 2): each member gets
    // the messages of its own room's sender only.
    let local = FanoutArgs {
        rooms: 2,
        room: "local".into(),
        ..f.clone()
    };
    let r = workloads::fanout(&t, &local, None).await.unwrap();
    assert_eq!(int(&r, "lost"), 0, "{}", r.json());
    assert_eq!(int(&r, "deliveries"), 10 * 30);
    let d = DmArgs {
        pairs: 3,
        messages: 30,
        size: 64,
        rate: 0,
    };
    let r = workloads::dm(&t, &d, None).await.unwrap();
    assert_eq!(int(&r, "lost"), 0, "{}", r.json());
    b.stop().await;
    a.stop().await;
}

async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out
}
