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
//! - `fanout.rs`: a room message rendered as IRC lines once per fan-out, not per member.
//! - `history.rs`: CHATHISTORY from the store, and msgids.
//! - `playback.rs`: a channel's latest messages after a JOIN, for clients without
//!   draft/chathistory.
//!
//! AWAY is not kept here: away is a presence state of the whole service, held by the core
//! (per user, replicated with presence; see switchboard-core's away.rs). AWAY is a core
//! request whose reply becomes 305/306; WHOIS's 301 and WHO's `G` come from the `whois` and
//! `who` replies, 301 to a PRIVMSG and USERHOST's `-` from the core's directory, and
//! away-notify from the core's `away` events (every IRC session asks for them), so IRC users
//! see native users of every node away and the other way round.

mod commands;
pub(crate) mod fanout;
mod history;
pub(crate) mod line;
mod playback;
mod register;
mod replies;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::shared::Shared;

/// The host part of every user's prefix: `nick!nick@switchboard`.
pub(crate) const HOST: &str = "switchboard";

/// The network's name (ISUPPORT NETWORK).
pub(crate) const NETWORK: &str = "Switchboard";

/// Accepts IRC connections (over TLS when `tls` is given) until the node stops.
pub(crate) async fn listen(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let mut stop = shared.cluster.stop.subscribe();
    match tls {
        None => {
            while let Some((stream, addr)) =
                crate::cluster::accept_next(&listener, &mut stop, "IRC").await
            {
                spawn(&shared, stream, addr);
            }
        }
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
