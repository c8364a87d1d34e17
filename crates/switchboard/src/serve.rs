//! `switchboard serve`: flags to configuration, the listener, and the signals that stop it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use switchboard_server::Config;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on for WebSocket clients, the web page, health and metrics.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Directory of the embedded database (created if missing).
    #[arg(
        long,
        env = "SWITCHBOARD_DATA_DIR",
        default_value = "./switchboard-data"
    )]
    data_dir: PathBuf,
    /// This node's name (letters, digits, '_', '-', '.'); defaults to the host name.
    #[arg(long, env = "SWITCHBOARD_NODE_NAME")]
    node_name: Option<String>,
    /// Most simultaneous client connections.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = 18_000)]
    max_connections: usize,
    /// Sustained messages per second allowed from one connection.
    #[arg(long, env = "SWITCHBOARD_RATE", default_value_t = 50)]
    rate: u32,
    /// Messages a connection may send in a burst above the sustained rate.
    #[arg(long, env = "SWITCHBOARD_BURST", default_value_t = 200)]
    burst: u32,
    /// Seconds of silence after which a connection is dropped (pings go out at a third).
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT", default_value_t = 30)]
    idle_timeout: u64,
    /// Seconds a new connection has to say hello.
    #[arg(long, env = "SWITCHBOARD_HANDSHAKE_TIMEOUT", default_value_t = 10)]
    handshake_timeout: u64,
    /// Bytes queued to one connection before it is dropped as a slow consumer.
    #[arg(long, env = "SWITCHBOARD_OUTBOX_BYTES", default_value_t = 1 << 20)]
    outbox_bytes: usize,
    /// A peer node to link with (ws://HOST:PORT); repeat it, or give one and the node learns
    /// the others from it.
    #[arg(long = "peer", env = "SWITCHBOARD_PEERS", value_delimiter = ',')]
    peers: Vec<String>,
    /// The secret shared by every node of the cluster (at least 16 characters). Peers prove
    /// they hold it by challenge-response; it never crosses the wire.
    #[arg(long, env = "SWITCHBOARD_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: Option<String>,
    /// The URL other nodes dial to reach this one (default: ws:// and the listening address).
    #[arg(long, env = "SWITCHBOARD_ADVERTISE")]
    advertise: Option<String>,
    /// Certificate chain (PEM) to serve clients and peers over TLS (wss://); needs --tls-key.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Extra trusted certificates (PEM) for dialling wss:// peers, e.g. the cluster's own CA
    /// or the peers' self-signed certificates.
    #[arg(long, env = "SWITCHBOARD_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Also speak seed 000's binary contacts protocol on this address (e.g. 0.0.0.0:9000).
    /// Like the original, it trusts whoever connects with a book's user name: bind it where
    /// only trusted clients reach it.
    #[arg(long, env = "SWITCHBOARD_CONTACTS_LISTEN")]
    contacts_listen: Option<SocketAddr>,
    /// Also speak seed 002's directory relay protocol on this address (e.g. 127.0.0.1:1111).
    #[arg(long, env = "SWITCHBOARD_RELAY_LISTEN")]
    relay_listen: Option<SocketAddr>,
    /// Also speak IRC on this address (6667 by convention): irssi, WeeChat, HexChat and bots
    /// join the same rooms (docs/irc.md).
    #[arg(long, env = "SWITCHBOARD_IRC_LISTEN")]
    irc_listen: Option<SocketAddr>,
    /// Also speak IRC over TLS on this address (6697 by convention), with the node's
    /// certificate (needs --tls-cert and --tls-key).
    #[arg(long, env = "SWITCHBOARD_IRCS_LISTEN", requires = "tls_cert")]
    ircs_listen: Option<SocketAddr>,
    /// An original seed 000 contact server to link with (HOST:PORT); repeatable.
    #[arg(
        long = "contacts-peer",
        env = "SWITCHBOARD_CONTACTS_PEERS",
        value_delimiter = ','
    )]
    contacts_peers: Vec<String>,
    /// Milliseconds between heartbeats on each peer link.
    #[arg(long, env = "SWITCHBOARD_HEARTBEAT_MS", default_value_t = 1_000)]
    heartbeat_ms: u64,
    /// Milliseconds of silence after which a peer is declared down.
    #[arg(long, env = "SWITCHBOARD_PEER_TIMEOUT_MS", default_value_t = 5_000)]
    peer_timeout_ms: u64,
    /// Join the cluster through NATS with JetStream instead of peer links: server URLs
    /// (nats://HOST:4222, tls://HOST:4222, with user:password@ or token@ when the server asks),
    /// repeatable or comma-separated. Excludes --peer; --cluster-secret is then unused (NATS's
    /// own authentication admits nodes). See docs/operations.md.
    #[arg(
        long = "backplane",
        env = "SWITCHBOARD_BACKPLANE",
        value_delimiter = ',',
        conflicts_with = "peers"
    )]
    backplane: Vec<String>,
    /// A NATS credentials file (.creds: JWT and NKey seed) for --backplane.
    #[arg(long, env = "SWITCHBOARD_BACKPLANE_CREDS")]
    backplane_creds: Option<PathBuf>,
    /// Extra trusted certificates (PEM) for tls:// backplane servers.
    #[arg(long, env = "SWITCHBOARD_BACKPLANE_TLS_CA")]
    backplane_tls_ca: Option<PathBuf>,
    /// Replicas of the JetStream stream holding the ops (1 to 5, at most the NATS servers),
    /// used when this node creates the stream.
    #[arg(long, env = "SWITCHBOARD_BACKPLANE_REPLICAS", default_value_t = 1)]
    backplane_replicas: usize,
    /// Name of the chat service on the backplane: namespaces its subjects and stream, so
    /// that several services share one NATS.
    #[arg(
        long,
        env = "SWITCHBOARD_BACKPLANE_CLUSTER",
        default_value = "switchboard"
    )]
    backplane_cluster: String,
    /// Seconds a node on the backplane keeps receiving a room, or a user's conversations,
    /// after its last local member or session left.
    #[arg(
        long,
        env = "SWITCHBOARD_BACKPLANE_ROOM_IDLE_SECS",
        default_value_t = 30
    )]
    backplane_room_idle_secs: u64,
}

fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    if switchboard_proto::validate_name(host).is_ok() {
        host.to_string()
    } else {
        "node1".to_string()
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::new(
        args.node_name.unwrap_or_else(default_node_name),
        args.data_dir,
    );
    config.max_connections = args.max_connections;
    config.rate_per_sec = args.rate;
    config.burst = args.burst;
    config.idle_timeout = Duration::from_secs(args.idle_timeout.max(3));
    config.handshake_timeout = Duration::from_secs(args.handshake_timeout.max(1));
    config.outbox_bytes = args.outbox_bytes;
    config.peers = args.peers;
    config.cluster_secret = args.cluster_secret;
    config.advertise = args.advertise;
    config.tls = args.tls_cert.zip(args.tls_key);
    config.tls_ca = args.tls_ca;
    config.contacts_peers = args.contacts_peers;
    config.heartbeat_every = Duration::from_millis(args.heartbeat_ms.max(10));
    config.peer_down_after = Duration::from_millis(args.peer_timeout_ms);
    if !args.backplane.is_empty() {
        let mut bp = switchboard_server::BackplaneConfig::new(args.backplane);
        bp.creds = args.backplane_creds;
        bp.tls_ca = args.backplane_tls_ca;
        bp.replicas = args.backplane_replicas;
        bp.cluster = args.backplane_cluster;
        bp.room_idle = Duration::from_secs(args.backplane_room_idle_secs);
        config.backplane = Some(bp);
    }
    let listeners = switchboard_server::Listeners {
        http: bind(args.listen).await?,
        contacts: bind_some(args.contacts_listen).await?,
        relay: bind_some(args.relay_listen).await?,
        irc: bind_some(args.irc_listen).await?,
        ircs: bind_some(args.ircs_listen).await?,
    };
    switchboard_server::serve_listeners(listeners, config, shutdown_signal()).await
}

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

async fn bind_some(addr: Option<SocketAddr>) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    match addr {
        Some(addr) => Ok(Some(bind(addr).await?)),
        None => Ok(None),
    }
}

/// Resolves on SIGINT or SIGTERM with the reason clients are told.
async fn shutdown_signal() -> String {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "the node was interrupted (SIGINT) and is stopping".to_string(),
        _ = term.recv() => "the node was asked to stop (SIGTERM)".to_string(),
    }
}
