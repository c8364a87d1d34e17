//! The IRC gateway (`--irc-listen`, and `--ircs-listen` with the node's TLS certificate): an
//! IRC server view of the same chat service, for irssi, WeeChat, HexChat, bots and bridges.
//! Like the other gateways it is an edge: a connection is an ordinary session of the core,
//! IRC commands become `ClientMsg`s, and the `ServerMsg` frames in its outbox become IRC
//! lines. Channels are rooms, a PRIVMSG to a nick is a direct message, CHATHISTORY reads the
//! store. See docs/irc.md.
//!
//! - `line.rs`: the line format, framing and limits (512 bytes, 8191 of tags).
//! - `session.rs`: one connection's task and state: reading, writing, timers, flood control.
//! - `register.rs`: registration (CAP, SASL PLAIN, PASS, NICK, USER) and the hello.
//! - `commands.rs`: a registered connection's commands, and the welcome burst.
//! - `replies.rs`: the core's frames as IRC lines and numerics.
//! - `history.rs`: CHATHISTORY from the store, and msgids.
//!
//! AWAY is kept here, per IRC connection, and not in the core: the native protocol has no
//! away state, so only IRC users on this node can see it (WHOIS 301, WHO's G flag, 301 to a
//! PRIVMSG, away-notify). Putting it in the core would mean a new presence field replicated
//! across nodes and shown to native clients; that is future work, written down in docs/irc.md.

mod commands;
mod history;
pub(crate) mod line;
mod register;
mod replies;
mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use switchboard_core::SessionId;
use tokio::net::TcpListener;

use crate::shared::Shared;

/// The host part of every user's prefix: `nick!nick@switchboard`.
pub(crate) const HOST: &str = "switchboard";

/// The network's name (ISUPPORT NETWORK).
pub(crate) const NETWORK: &str = "Switchboard";

/// An IRC user set or cleared their away message.
#[derive(Debug, Clone)]
pub(crate) struct AwayChange {
    pub name: String,
    pub message: Option<String>,
}

/// What the IRC connections of a node share: away messages.
pub(crate) struct Registry {
    /// Away IRC sessions: session -> (name key, message).
    away: Mutex<HashMap<SessionId, (String, String)>>,
    /// Away changes, for the connections that asked for away-notify.
    pub changes: tokio::sync::broadcast::Sender<AwayChange>,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            away: Mutex::new(HashMap::new()),
            changes: tokio::sync::broadcast::channel(1024).0,
        }
    }
}

impl Registry {
    /// Sets (`Some`) or clears a session's away message, and tells the others.
    pub fn set_away(&self, session: SessionId, name: &str, message: Option<String>) {
        let before = self.away_of(name);
        {
            let mut away = self.away.lock().expect("away lock");
            match &message {
                Some(m) => away.insert(session, (name.to_ascii_lowercase(), m.clone())),
                None => away.remove(&session),
            };
        }
        let after = self.away_of(name);
        if before != after {
            let _ = self.changes.send(AwayChange {
                name: name.to_string(),
                message: after,
            });
        }
    }

    /// A user's away message, if one of their IRC connections here set one.
    pub fn away_of(&self, name: &str) -> Option<String> {
        let key = name.to_ascii_lowercase();
        self.away
            .lock()
            .expect("away lock")
            .values()
            .find(|(k, _)| *k == key)
            .map(|(_, m)| m.clone())
    }
}

/// Accepts IRC connections (over TLS when `tls` is given) until the node stops.
pub(crate) async fn listen(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let mut stop = shared.cluster.stop.subscribe();
    match tls {
        None => loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = crate::cluster::stopped(&mut stop) => return,
            };
            match accepted {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    spawn(&shared, stream, addr);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "IRC accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        },
        Some(config) => {
            use axum::serve::Listener as _;
            let mut listener = match crate::tls::listener(listener, config) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "IRC over TLS cannot listen");
                    return;
                }
            };
            loop {
                let (stream, addr) = tokio::select! {
                    a = listener.accept() => a,
                    _ = crate::cluster::stopped(&mut stop) => return,
                };
                spawn(&shared, stream, addr);
            }
        }
    }
}

fn spawn<S>(shared: &Arc<Shared>, stream: S, addr: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    tokio::spawn(session::run(shared.clone(), stream, addr));
}
