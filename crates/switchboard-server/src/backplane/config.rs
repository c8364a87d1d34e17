//! The backplane's settings, the NATS subjects and stream they imply, and how the client
//! connects (credentials and TLS in NATS's usual forms).

use std::path::PathBuf;
use std::time::Duration;

/// A name as a subject token: its bytes in hexadecimal (names may hold '.', which separates
/// tokens).
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// How a node reaches NATS (with JetStream) and which cluster it belongs to there.
#[derive(Debug, Clone)]
pub struct BackplaneConfig {
    /// Server URLs: `nats://HOST:4222`, `tls://HOST:4222`, with `user:password@` or a
    /// `token@` in them when the server asks for one.
    pub urls: Vec<String>,
    /// A `.creds` file (JWT and NKey seed), as `nsc` or `nats` write them.
    pub creds: Option<PathBuf>,
    /// Extra trusted certificates (PEM) for `tls://` servers.
    pub tls_ca: Option<PathBuf>,
    /// Replicas of the JetStream stream that holds the ops (1 to 5; at most the number of
    /// NATS servers). Only used when the node creates the stream.
    pub replicas: usize,
    /// Namespaces the subjects and the stream, so that two chat services share one NATS.
    pub cluster: String,
    /// How long a node keeps receiving a room, or a user's conversations, after its last
    /// local member or session left (one who comes back soon, as IRC clients part and join,
    /// costs no backfill).
    pub room_idle: Duration,
}

impl BackplaneConfig {
    /// The defaults for these server URLs: cluster `switchboard`, one replica.
    pub fn new(urls: Vec<String>) -> BackplaneConfig {
        BackplaneConfig {
            urls,
            creds: None,
            tls_ca: None,
            replicas: 1,
            cluster: "switchboard".into(),
            room_idle: Duration::from_secs(30),
        }
    }

    pub(crate) fn validate(&self, node: &str) -> anyhow::Result<()> {
        anyhow::ensure!(!self.urls.is_empty(), "--backplane needs at least one URL");
        // Names become subject tokens and a durable consumer's name: no '.', '*', '>'.
        let token = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        anyhow::ensure!(
            token(node),
            "with --backplane the node name may only hold letters, digits, '_' and '-' (it is a \
             NATS subject token): {node:?}"
        );
        anyhow::ensure!(
            token(&self.cluster),
            "the backplane cluster name may only hold letters, digits, '_' and '-': {:?}",
            self.cluster
        );
        anyhow::ensure!(
            (1..=5).contains(&self.replicas),
            "--backplane-replicas must be 1 to 5"
        );
        for (what, file) in [("credentials", &self.creds), ("TLS CA", &self.tls_ca)] {
            if let Some(f) = file {
                std::fs::File::open(f).map_err(|e| {
                    anyhow::anyhow!("the backplane's {what} file {}: {e}", f.display())
                })?;
            }
        }
        for u in &self.urls {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|e| anyhow::anyhow!("backplane URL {u:?}: {e}"))?;
        }
        Ok(())
    }

    /// `sb.<cluster>.all.<from>`: every node's heartbeats and broadcasts.
    pub(crate) fn all(&self, from: &str) -> String {
        format!("sb.{}.all.{from}", self.cluster)
    }

    /// `sb.<cluster>.to.<node>.<from>`: what `from` says to `node` alone.
    pub(crate) fn to(&self, node: &str, from: &str) -> String {
        format!("sb.{}.to.{node}.{from}", self.cluster)
    }

    /// `sb.<cluster>.ops.<origin>`: the JetStream subject of one origin's ops.
    pub(crate) fn ops(&self, origin: &str) -> String {
        format!("sb.{}.ops.{origin}", self.cluster)
    }

    /// `sb.<cluster>.room.<hex>`: one room's messages, from every origin (live on core NATS
    /// to the nodes with members there, and kept in the stream). The token is the room key in
    /// hexadecimal: room names may hold '.', which separates subject tokens.
    pub(crate) fn room(&self, key: &str) -> String {
        format!("{}{}", self.rooms_prefix(), hex(key))
    }

    /// The prefix of every room subject.
    pub(crate) fn rooms_prefix(&self) -> String {
        format!("sb.{}.room.", self.cluster)
    }

    /// `sb.<cluster>.dm.<hex>.<hex>`: one conversation's messages (stream `@lo:hi`), the two
    /// folded names in hexadecimal, in order.
    pub(crate) fn dm(&self, stream: &str) -> String {
        let (lo, hi) = stream
            .strip_prefix('@')
            .and_then(|s| s.split_once(':'))
            .unwrap_or(("", ""));
        format!("{}{}.{}", self.dms_prefix(), hex(lo), hex(hi))
    }

    /// The two subjects of a user's conversations (the user first, or second).
    pub(crate) fn dms_of(&self, user: &str) -> [String; 2] {
        let (p, u) = (self.dms_prefix(), hex(user));
        [format!("{p}{u}.*"), format!("{p}*.{u}")]
    }

    /// The prefix of every conversation subject.
    pub(crate) fn dms_prefix(&self) -> String {
        format!("sb.{}.dm.", self.cluster)
    }

    /// The key-value bucket of the nodes: node -> the newest of its ops JetStream holds.
    pub(crate) fn nodes_bucket(&self) -> String {
        format!("SB_{}_nodes", self.cluster)
    }

    /// The JetStream stream holding every origin's ops: `SB_<cluster>`.
    pub(crate) fn stream(&self) -> String {
        format!("SB_{}", self.cluster)
    }

    /// The client's options: credentials and TLS as configured, retrying the first connection
    /// (a node starts, and serves its own users, while NATS is down) and forever after.
    pub(crate) async fn options(&self, node: &str) -> anyhow::Result<async_nats::ConnectOptions> {
        let mut o = async_nats::ConnectOptions::new()
            .name(format!("switchboard-{node}"))
            // A node's own room messages need not come back to it.
            .no_echo()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((100 * attempts as u64).min(2_000))
            });
        // NATS's URL forms: `user:password@host` or `token@host` (the client library reads
        // neither from the URL itself). The first URL that has them speaks for all.
        let addrs = self.addrs();
        if let Some(a) = addrs.iter().find(|a| a.has_user_pass()) {
            let user = a.username().unwrap_or_default().to_string();
            o = match a.password() {
                Some(pass) => o.user_and_password(user, pass.to_string()),
                None => o.token(user),
            };
        }
        if let Some(creds) = &self.creds {
            o = o.credentials_file(creds).await.map_err(|e| {
                anyhow::anyhow!("reading the NATS credentials {}: {e}", creds.display())
            })?;
        }
        if let Some(ca) = &self.tls_ca {
            o = o.add_root_certificates(ca.clone());
        }
        if self.urls.iter().any(|u| u.starts_with("tls://")) {
            o = o.require_tls(true);
        }
        Ok(o)
    }

    pub(crate) fn addrs(&self) -> Vec<async_nats::ServerAddr> {
        self.urls.iter().filter_map(|u| u.parse().ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_stream_are_namespaced_by_the_cluster() {
        let mut c = BackplaneConfig::new(vec!["nats://127.0.0.1:4222".into()]);
        c.cluster = "chat-eu".into();
        assert_eq!(c.all("a"), "sb.chat-eu.all.a");
        assert_eq!(c.to("b", "a"), "sb.chat-eu.to.b.a");
        assert_eq!(c.ops("a"), "sb.chat-eu.ops.a");
        assert_eq!(c.stream(), "SB_chat-eu");
        assert!(c.validate("node-1").is_ok());
        // Names may hold '.': they travel in hexadecimal, one token each.
        assert_eq!(c.room("#a.b"), "sb.chat-eu.room.23612e62");
        assert_eq!(c.dm("@a.b:c"), "sb.chat-eu.dm.612e62.63");
        assert_eq!(
            c.dms_of("c"),
            [
                "sb.chat-eu.dm.63.*".to_string(),
                "sb.chat-eu.dm.*.63".to_string()
            ]
        );
    }

    #[test]
    fn names_that_break_subjects_are_refused() {
        let mut c = BackplaneConfig::new(vec!["nats://127.0.0.1:4222".into()]);
        assert!(c.validate("a.b").is_err());
        c.cluster = "a*".into();
        assert!(c.validate("a").is_err());
        c.cluster = "ok".into();
        c.replicas = 0;
        assert!(c.validate("a").is_err());
        c.replicas = 3;
        c.urls.clear();
        assert!(c.validate("a").is_err());
    }
}
