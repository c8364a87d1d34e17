//! Seed 002's directory relay (`--relay-listen`): `$$`-separated fields ending in `#`, one TCP
//! connection per message, and delivery by dialling the address a client registered
//! (../shared/seeds/WIRE-NOTES.md). Relay clients are ordinary members of the directory:
//! they and native users exchange direct messages by name both ways.
//!
//! Better than the original: fields are parsed by position, never by substring (a text with
//! EXIT or INIT in it is just text); a connection that closes before `#`, or sends 64 KiB
//! without one, is dropped harmlessly; replies go to the sender whatever it sent; delivery
//! dials back only the IP address the client registered from, with a timeout; a client that
//! stops answering is marked offline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::Auth;
use switchboard_proto::{ClientMsg, ServerMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::conn::now_ms;
use crate::outbox::Outbox;
use crate::shared::Shared;

/// Longest message before `#`.
const MAX_MESSAGE: usize = 64 * 1024;
/// Time to send a whole message, and to reach a client when delivering.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Registered relay clients: name key -> (name, dial-back address, session).
#[derive(Default)]
pub(crate) struct Registry {
    clients: Mutex<HashMap<String, (String, SocketAddr, u64)>>,
}

/// Accepts relay connections until the node stops.
pub(crate) async fn listen(shared: Arc<Shared>, listener: TcpListener) {
    let mut stop = shared.cluster.stop.subscribe();
    let local = listener.local_addr().ok();
    while let Some((stream, peer)) =
        crate::cluster::accept_next(&listener, &mut stop, "relay").await
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(shared, stream, peer).await {
                tracing::info!(%peer, error = %e, "relay connection dropped");
            }
        });
    }
    // Seed 002's EXIT: every registered client is told the server is going away.
    let all: Vec<_> = shared
        .relay
        .clients
        .lock()
        .expect("relay lock")
        .values()
        .cloned()
        .collect();
    let server = local.map_or_else(String::new, |a| a.to_string());
    for (_, addr, _) in all {
        let _ = deliver(addr, &format!("{server}$$EXIT#")).await;
    }
}

/// Reads one message (up to `#`), answers it, closes.
async fn handle(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "closed before '#'");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.iter().position(|&b| b == b'#') {
                buf.truncate(end);
                return Ok(());
            }
            anyhow::ensure!(buf.len() < MAX_MESSAGE, "{MAX_MESSAGE} bytes without '#'");
        }
    };
    tokio::time::timeout(IO_TIMEOUT, read)
        .await
        .map_err(|_| anyhow::anyhow!("too slow"))??;
    let text = String::from_utf8(buf).map_err(|_| anyhow::anyhow!("not UTF-8"))?;
    let fields: Vec<&str> = text.splitn(3, "$$").collect();
    let reply = match fields.as_slice() {
        // `<clientAddr>$$<name>$$INIT`: an address first, so a chat text "INIT" is not one.
        [addr, name, "INIT"] if addr.contains(':') => {
            shared.prepare_user(name, true).await;
            register(&shared, addr, name, peer)
        }
        [name, "OFFLINE"] => {
            offline(&shared, name);
            None
        }
        [name, dest, body] => relay(&shared, name, dest, body),
        _ => anyhow::bail!("not a relay message"),
    };
    if let Some(reply) = reply {
        stream.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

fn register(shared: &Arc<Shared>, addr: &str, name: &str, peer: SocketAddr) -> Option<String> {
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return Some(format!("{addr}$$NOT-FOUND#"));
    };
    // Deliveries go back only to the IP the client registered from.
    if addr.ip() != peer.ip() {
        tracing::warn!(%addr, %peer, "relay registration for another host refused");
        return Some(format!("{name}$$NOT-FOUND#"));
    }
    offline(shared, name);
    let session = shared
        .next_session
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let outbox = Arc::new(Outbox::new(shared.cfg.outbox_bytes));
    shared
        .outboxes
        .write()
        .expect("outboxes lock")
        .insert(session, outbox.clone());
    let ok = shared.run(|core, out| {
        core.hello(session, name, Auth::Guest, now_ms(), out);
        core.has_session(session)
    });
    if !ok {
        shared
            .outboxes
            .write()
            .expect("outboxes lock")
            .remove(&session);
        return Some(format!("{name}$$NOT-FOUND#"));
    }
    shared
        .relay
        .clients
        .lock()
        .expect("relay lock")
        .insert(name.to_ascii_lowercase(), (name.to_string(), addr, session));
    tokio::spawn(deliveries(shared.clone(), name.to_string(), addr, outbox));
    Some("SUCCESS\n".into())
}

fn offline(shared: &Shared, name: &str) {
    let gone = shared
        .relay
        .clients
        .lock()
        .expect("relay lock")
        .remove(&name.to_ascii_lowercase());
    if let Some((_, _, session)) = gone {
        shared.end_session(session, "offline");
    }
}

/// `<name>$$<destNameOrAddr>$$<text>`: to a user by name (anywhere in the cluster), or to a
/// relay client by its address.
fn relay(shared: &Shared, name: &str, dest: &str, body: &str) -> Option<String> {
    let sender = shared
        .relay
        .clients
        .lock()
        .expect("relay lock")
        .get(&name.to_ascii_lowercase())
        .cloned();
    let Some((_, _, session)) = sender else {
        return Some(format!("{dest}$$NOT-FOUND#"));
    };
    let by_addr = dest.parse::<SocketAddr>().ok().and_then(|a| {
        let clients = shared.relay.clients.lock().expect("relay lock");
        clients
            .values()
            .find(|(_, addr, _)| *addr == a)
            .map(|(n, _, _)| n.clone())
    });
    let to = by_addr.unwrap_or_else(|| dest.to_string());
    let msg = ClientMsg::Send {
        room: None,
        to: Some(to),
        text: body.to_string(),
        reff: Some("relay".into()),
    };
    let refused = shared.run(|core, out| {
        core.handle(session, msg, now_ms(), out);
        // The core answers a refusal (unknown name...) with an error frame to the sender.
        out.iter().any(|e| match e {
            switchboard_core::Effect::Send { to, frame } if *to == session => matches!(
                std::str::from_utf8(frame)
                    .ok()
                    .and_then(|f| switchboard_proto::decode_server(f).ok()),
                Some(ServerMsg::Error { .. })
            ),
            _ => false,
        })
    });
    refused.then(|| format!("{dest}$$NOT-FOUND#"))
}

/// Hands a relay client its direct messages by dialling it. One that cannot be reached is
/// marked offline, and the senders of what it missed are told (ServerMsg::Undelivered); a
/// relay client told so hears seed 002's `<dest>$$NOT-FOUND#`.
async fn deliveries(shared: Arc<Shared>, name: String, addr: SocketAddr, outbox: Arc<Outbox>) {
    let mut batch = Vec::new();
    loop {
        let closing = outbox.next_batch(&mut batch).await;
        let mut frames = batch.drain(..);
        while let Some(frame) = frames.next() {
            let text = match switchboard_proto::decode_server(&frame) {
                Ok(ServerMsg::Message(m)) if m.room.is_none() && m.from != name => {
                    format!("{}$${}$${}#", m.from, name, m.text)
                }
                Ok(ServerMsg::Undelivered { to, .. }) => format!("{to}$$NOT-FOUND#"),
                _ => continue,
            };
            if deliver(addr, &text).await.is_err() {
                tracing::info!(%name, %addr, "relay client unreachable: marked offline");
                offline(&shared, &name);
                // This message and any after it in the batch were not handed over.
                let missed = std::iter::once(frame).chain(frames);
                let reason = format!("{name} stopped answering and is now offline; the message stays in your conversation's history");
                shared.run(|core, out| {
                    for frame in missed {
                        if let Ok(ServerMsg::Message(m)) = switchboard_proto::decode_server(&frame)
                        {
                            if m.room.is_none() && m.from != name {
                                core.undelivered(&m.from, &name, &m.id, &reason, out);
                            }
                        }
                    }
                });
                return;
            }
        }
        if closing.is_some() {
            return;
        }
    }
}

async fn deliver(addr: SocketAddr, text: &str) -> anyhow::Result<()> {
    let mut s = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr)).await??;
    tokio::time::timeout(IO_TIMEOUT, s.write_all(text.as_bytes())).await??;
    Ok(())
}
