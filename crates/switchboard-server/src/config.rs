//! The node's settings as a plain struct, validated by the binary's flags into this form.

use std::path::PathBuf;
use std::time::Duration;

/// Everything a node needs to run. [`Config::new`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's name: origin of its ops, prefix of its message ids.
    pub node_name: String,
    /// Where the embedded database lives.
    pub data_dir: PathBuf,
    /// Most simultaneous connections; more are told `too_many_connections` and closed.
    pub max_connections: usize,
    /// Time a new connection has to say `hello`.
    pub handshake_timeout: Duration,
    /// Silence after which a connection is closed (the writer pings at a third of it, so a
    /// live client always answers in time).
    pub idle_timeout: Duration,
    /// Bytes queued to one connection before it counts as a slow consumer.
    pub outbox_bytes: usize,
    /// Sustained messages per second one connection may send.
    pub rate_per_sec: u32,
    /// Messages a connection may send at once above the sustained rate.
    pub burst: u32,
    /// Messages kept for one offline registered user.
    pub inbox_cap: usize,
    /// How long a shutdown waits for queues to drain before closing anyway.
    pub drain_timeout: Duration,
    /// The secret every cluster member holds; without it the node links to no peer.
    pub cluster_secret: Option<String>,
    /// Peers to dial at start (`ws://host:port`); the rest are learnt from them.
    pub peers: Vec<String>,
    /// The URL peers should dial to reach this node; by default `ws://` and the listening
    /// address (with 127.0.0.1 for an unspecified address).
    pub advertise: Option<String>,
    /// Interval of the heartbeats on every peer link.
    pub heartbeat_every: Duration,
    /// Silence after which a peer is declared down.
    pub peer_down_after: Duration,
    /// Certificate chain and private key (PEM): serve clients and peers over TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Extra trusted certificates (PEM) for dialling `wss://` peers.
    pub tls_ca: Option<PathBuf>,
    /// Original seed 000 contact servers to link with (`HOST:PORT`).
    pub contacts_peers: Vec<String>,
    /// How long a seed 000 server link may take to deliver one whole frame (its heartbeats
    /// come every 5 s) before it is dropped. 20 s; no flag sets it: tests shorten it to see
    /// a peer that stalls mid-frame dropped without waiting 20 s.
    pub contacts_peer_silence: Duration,
    /// NATS (with JetStream) as the cluster's backplane instead of peer links.
    pub backplane: Option<crate::backplane::BackplaneConfig>,
}

impl Config {
    /// The defaults, for a node named `node_name` keeping its data in `data_dir`.
    pub fn new(node_name: impl Into<String>, data_dir: impl Into<PathBuf>) -> Config {
        Config {
            node_name: node_name.into(),
            data_dir: data_dir.into(),
            max_connections: 18_000,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            outbox_bytes: 1 << 20,
            rate_per_sec: 50,
            burst: 200,
            inbox_cap: 1_000,
            drain_timeout: Duration::from_secs(5),
            cluster_secret: None,
            peers: Vec::new(),
            advertise: None,
            heartbeat_every: Duration::from_secs(1),
            peer_down_after: Duration::from_secs(5),
            tls: None,
            tls_ca: None,
            contacts_peers: Vec::new(),
            contacts_peer_silence: Duration::from_secs(20),
            backplane: None,
        }
    }

    /// How often a connection's writer pings its client: a third of the idle timeout, so a
    /// live client answers two or three times before the timeout, even with one ping lost
    /// behind a slow write.
    pub fn ping_every(&self) -> Duration {
        self.idle_timeout / 3
    }

    /// Checks the settings that could make the node misbehave.
    pub fn validate(&self) -> anyhow::Result<()> {
        switchboard_proto::validate_name(&self.node_name)
            .map_err(|e| anyhow::anyhow!("invalid node name {:?}: {e}", self.node_name))?;
        anyhow::ensure!(self.max_connections > 0, "max connections must be positive");
        anyhow::ensure!(
            self.rate_per_sec > 0 && self.burst > 0,
            "rate limits must be positive"
        );
        anyhow::ensure!(
            self.outbox_bytes >= 64 * 1024,
            "outbox must hold at least 64 KiB"
        );
        if let Some(bp) = &self.backplane {
            anyhow::ensure!(
                self.peers.is_empty(),
                "--peer and --backplane exclude each other: a node joins the cluster through \
                 peer links (the mesh) or through NATS, not both"
            );
            bp.validate(&self.node_name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_connection_is_noticed_within_30_seconds_by_default() {
        let c = Config::new("n1", "/tmp/unused");
        assert!(
            c.idle_timeout <= Duration::from_secs(30),
            "{:?}",
            c.idle_timeout
        );
        assert_eq!(c.idle_timeout, Duration::from_secs(30));
        // A live client is pinged often enough to answer before the timeout, twice over.
        assert_eq!(c.ping_every(), Duration::from_secs(10));
        assert!(c.ping_every() * 2 < c.idle_timeout);
        assert!(c.handshake_timeout <= c.idle_timeout);
        c.validate().unwrap();
    }
}
