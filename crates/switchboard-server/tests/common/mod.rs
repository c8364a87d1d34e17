//! The test kit: a real node on a port-0 listener with its own data directory, stopped on
//! drop, and helpers around the typed client.

#![allow(dead_code)]

pub mod irc;
pub mod nats;
pub mod nats_operator;
pub mod seeds;

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchboard_client::Client;
use switchboard_proto::ServerMsg;
use switchboard_server::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub url: String,
    pub addr: std::net::SocketAddr,
    dir: Option<tempfile::TempDir>,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<String>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// Where seed 000's contacts protocol listens, when started with it.
    pub contacts_addr: Option<std::net::SocketAddr>,
    /// Where seed 002's relay listens, when started with the gateways.
    pub relay_addr: Option<std::net::SocketAddr>,
    /// Where IRC listens (every test node speaks it).
    pub irc_addr: std::net::SocketAddr,
    /// Where IRC over TLS listens, when the node has a certificate.
    pub ircs_addr: Option<std::net::SocketAddr>,
}

/// Settings for tests: quick timeouts, generous rate limits unless a test says otherwise.
pub fn test_config(dir: &Path) -> Config {
    let mut c = Config::new("t1", dir);
    c.handshake_timeout = Duration::from_secs(2);
    c.drain_timeout = Duration::from_secs(2);
    c.rate_per_sec = 10_000;
    c.burst = 10_000;
    c
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut s = TestServer::start_in(&path, tune).await;
        s.dir = Some(dir);
        s
    }

    /// Starts a node on an existing data directory (for restarts).
    pub async fn start_in(path: &Path, tune: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_at("127.0.0.1:0", path, tune).await
    }

    /// Starts a node on a given address (to restart a node where its peers expect it).
    pub async fn start_at(listen: &str, path: &Path, tune: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_full(listen, path, false, tune).await
    }

    /// Starts a node that also speaks seed 000's contacts protocol, on `contacts_addr`.
    pub async fn start_with_contacts(tune: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut s = TestServer::start_full("127.0.0.1:0", &path, true, tune).await;
        s.dir = Some(dir);
        s
    }

    async fn start_full(
        listen: &str,
        path: &Path,
        contacts: bool,
        tune: impl FnOnce(&mut Config),
    ) -> TestServer {
        // Logs show with RUST_LOG=... and --nocapture.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let listener = bind_retrying(listen).await;
        let addr = listener.local_addr().unwrap();
        let mut config = test_config(path);
        tune(&mut config);
        let (stop, stop_rx) = oneshot::channel::<String>();
        let contacts = if contacts {
            Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        } else {
            None
        };
        let contacts_addr = contacts.as_ref().map(|l| l.local_addr().unwrap());
        let relay = if contacts.is_some() {
            Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        } else {
            None
        };
        let relay_addr = relay.as_ref().map(|l| l.local_addr().unwrap());
        let irc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let irc_addr = irc.local_addr().unwrap();
        let ircs = if config.tls.is_some() {
            Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        } else {
            None
        };
        let ircs_addr = ircs.as_ref().map(|l| l.local_addr().unwrap());
        let listeners = switchboard_server::Listeners {
            http: listener,
            contacts,
            relay,
            irc: Some(irc),
            ircs,
        };
        let handle = tokio::spawn(switchboard_server::serve_listeners(
            listeners,
            config,
            async move { stop_rx.await.unwrap_or_else(|_| "test over".into()) },
        ));
        TestServer {
            url: format!("ws://{addr}/v1/ws"),
            addr,
            dir: None,
            data_dir: path.to_path_buf(),
            stop: Some(stop),
            handle: Some(handle),
            contacts_addr,
            relay_addr,
            irc_addr,
            ircs_addr,
        }
    }

    /// Shuts the node down gracefully with `reason` and waits until it has stopped.
    /// Returns the data directory, which lives as long as the returned guard.
    pub async fn stop(mut self, reason: &str) -> Option<tempfile::TempDir> {
        let _ = self.stop.take().unwrap().send(reason.to_string());
        self.handle.take().unwrap().await.unwrap().unwrap();
        self.dir.take()
    }

    pub async fn client(&self, name: &str) -> Client {
        let (c, _) = Client::connect_as(&self.url, name, None).await.unwrap();
        c
    }

    pub async fn client_pw(&self, name: &str, pw: &str) -> Client {
        let (c, _) = Client::connect_as(&self.url, name, Some(pw)).await.unwrap();
        c
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send("test over".into());
        }
    }
}

/// The next chat message a client receives (skipping other events).
pub async fn next_message(c: &mut Client) -> switchboard_proto::ChatMessage {
    c.wait_for(WAIT, |m| match m {
        ServerMsg::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await
    .unwrap()
}

/// The next error a client receives.
pub async fn next_error(c: &mut Client) -> (switchboard_proto::ErrorCode, String) {
    c.wait_for(WAIT, |m| match m {
        ServerMsg::Error { code, message, .. } => Some((*code, message.clone())),
        _ => None,
    })
    .await
    .unwrap()
}

/// Reads until the connection closes; returns everything read. Panics if it stays open.
pub async fn until_closed(c: &mut Client) -> Vec<ServerMsg> {
    let mut seen = Vec::new();
    loop {
        match c.recv_timeout(WAIT).await {
            Ok(Some(m)) => seen.push(m),
            Ok(None) | Err(switchboard_client::ClientError::Ws(_)) => return seen,
            Err(e) => panic!("connection did not close: {e}; saw {seen:?}"),
        }
    }
}

/// A minimal HTTP GET over a raw socket: status code and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Binds, retrying for a while: a restarted node's port may take a moment to come free.
async fn bind_retrying(addr: &str) -> tokio::net::TcpListener {
    for _ in 0..100 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("could not bind {addr}");
}

/// A node's view of the cluster, from `/v1/cluster`: peer name -> link state.
pub async fn cluster_view(s: &TestServer) -> std::collections::BTreeMap<String, String> {
    let (code, body) = http_get(s.addr, "/v1/cluster").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["node"].as_str().unwrap().to_string(),
                p["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits until `check` holds for a node's cluster view.
pub async fn wait_view(
    s: &TestServer,
    what: &str,
    check: impl Fn(&std::collections::BTreeMap<String, String>) -> bool,
) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let view = cluster_view(s).await;
        if check(&view) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: view is {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub const SECRET: &str = "test-cluster-secret-0123";

/// Cluster settings for tests: fast heartbeats and failure detection.
pub fn clustered(name: &'static str, peers: Vec<String>) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.node_name = name.to_string();
        c.cluster_secret = Some(SECRET.to_string());
        c.peers = peers;
        c.heartbeat_every = Duration::from_millis(100);
        c.peer_down_after = Duration::from_millis(600);
    }
}

/// A view check: exactly these nodes, all up.
pub fn all_up(
    names: &'static [&'static str],
) -> impl Fn(&std::collections::BTreeMap<String, String>) -> bool {
    move |v| {
        names
            .iter()
            .all(|n| v.get(*n).map(String::as_str) == Some("up"))
            && v.len() == names.len()
    }
}

/// Settings of a node on the NATS backplane at `nats`: fast heartbeats and failure detection.
pub fn nats_node(name: &'static str, nats: String) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.node_name = name.to_string();
        c.backplane = Some(switchboard_server::BackplaneConfig::new(vec![nats]));
        c.heartbeat_every = Duration::from_millis(100);
        c.peer_down_after = Duration::from_millis(600);
    }
}

/// A fault-injecting TCP proxy: forwards connections to `target` until it is cut, when it
/// goes silent (bytes are held, connections stay open, new ones are accepted and ignored), as
/// a network partition looks to the nodes on either side; healing drops the stalled
/// connections and forwards again.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    pub async fn start(target: std::net::SocketAddr) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (c, g) = (cut.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (cut, generation) = (c.clone(), g.clone());
                let born = generation.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    let pump = |mut r: tokio::net::tcp::OwnedReadHalf,
                                mut w: tokio::net::tcp::OwnedWriteHalf,
                                cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
                                generation: std::sync::Arc<std::sync::atomic::AtomicU64>| async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            // While cut, hold everything: silence, not a reset.
                            while cut.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            if generation.load(Ordering::SeqCst) != born {
                                return; // healed: this connection died in the partition
                            }
                            let n = match tokio::time::timeout(Duration::from_millis(50), r.read(&mut buf)).await {
                                Err(_) => continue,
                                Ok(Ok(0)) | Ok(Err(_)) => return,
                                Ok(Ok(n)) => n,
                            };
                            while cut.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            if generation.load(Ordering::SeqCst) != born || w.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let a = tokio::spawn(pump(ri, wo, cut.clone(), generation.clone()));
                    let b = tokio::spawn(pump(ro, wi, cut, generation));
                    let _ = tokio::join!(a, b);
                });
            }
        });
        Proxy {
            addr,
            cut,
            generation,
        }
    }

    /// Partition: go silent.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Heal: connections from before the cut are dropped (as TCP gives up on them), new ones
    /// flow.
    pub fn heal(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

/// Asks until the answer satisfies `ok` (the directory spreads asynchronously).
pub async fn eventually(
    c: &mut switchboard_client::Client,
    msg: switchboard_proto::ClientMsg,
    ok: impl Fn(&switchboard_proto::ServerMsg) -> bool,
) -> switchboard_proto::ServerMsg {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let reply = c.request(msg.clone()).await;
        if let Ok(r) = &reply {
            if ok(r) {
                return r.clone();
            }
        }
        assert!(std::time::Instant::now() < deadline, "never: {reply:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The node's `/metrics`: each sample's name (with its labels) and value.
pub async fn metrics(s: &TestServer) -> std::collections::BTreeMap<String, f64> {
    let (code, body) = http_get(s.addr, "/metrics").await;
    assert_eq!(code, 200);
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("a sample is `name value`");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

/// One metric of the node, by its full name (`switchboard_` and the rest); panics if absent.
pub async fn metric(s: &TestServer, name: &str) -> f64 {
    *metrics(s)
        .await
        .get(name)
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// The code of a refusal; any other outcome fails the test.
pub fn refused<T: std::fmt::Debug>(
    r: &Result<T, switchboard_client::ClientError>,
) -> switchboard_proto::ErrorCode {
    match r {
        Err(switchboard_client::ClientError::Refused { code, .. }) => *code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}
