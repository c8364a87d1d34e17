//! Seed 001's plain-text WebSocket at `/ws`: each text frame a client sends is a message to the
//! lobby room from its guest name, and it receives every lobby message as one text frame,
//! `<name>: <text>`. A thin edge onto the chat core: the session is an ordinary guest in the
//! lobby, so native, browser and seed 001 users meet there.
//!
//! Better than the original: dead connections are dropped (pings, idle timeout), each
//! connection has one writer, and the node never depends on another being up.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use switchboard_core::Auth;
use switchboard_proto::{ClientMsg, ServerMsg};

use crate::conn::{now_ms, Bucket};
use crate::outbox::{Closing, Outbox};
use crate::shared::Shared;

/// The room seed 001 clients talk in.
pub const LOBBY: &str = "lobby";

/// The guest name for a client: its `?name=` when valid and free, otherwise one made from its
/// address; a number is added while the name is taken.
fn candidates(asked: Option<&str>, addr: SocketAddr) -> Vec<String> {
    let base = asked
        .filter(|n| switchboard_proto::validate_name(n).is_ok())
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "ws-{}-{}",
                addr.ip().to_string().replace([':', '.'], "-"),
                addr.port()
            )
        });
    let mut names = vec![base.clone()];
    for i in 2..10 {
        let n = format!("{base}-{i}");
        if switchboard_proto::validate_name(&n).is_ok() {
            names.push(n);
        }
    }
    names
}

/// Runs one seed 001 connection to its end.
pub(crate) async fn run(
    shared: Arc<Shared>,
    socket: WebSocket,
    asked: Option<String>,
    addr: SocketAddr,
) {
    let session = shared.next_session.fetch_add(1, Ordering::Relaxed);
    let outbox = Arc::new(Outbox::new(shared.cfg.outbox_bytes));
    shared
        .outboxes
        .write()
        .expect("outboxes lock")
        .insert(session, outbox.clone());
    let mut name = None;
    for candidate in candidates(asked.as_deref(), addr) {
        let signed_in = shared.run(|core, out| {
            core.hello(session, &candidate, Auth::Guest, now_ms(), out);
            if core.has_session(session) {
                let join = ClientMsg::Join {
                    room: LOBBY.into(),
                    reff: None,
                };
                core.handle(session, join, now_ms(), out);
            }
            core.has_session(session)
        });
        if signed_in {
            name = Some(candidate);
            break;
        }
        // Refused (name taken): a fresh outbox for the next try.
        outbox_reset(&shared, session);
    }
    let outbox = shared
        .outboxes
        .read()
        .expect("outboxes lock")
        .get(&session)
        .cloned();
    let (Some(name), Some(outbox)) = (name, outbox) else {
        shared
            .outboxes
            .write()
            .expect("outboxes lock")
            .remove(&session);
        return;
    };
    tracing::info!(%name, session, "seed 001 client joined the lobby");
    let (mut sink, mut stream) = socket.split();
    let writer_outbox = outbox.clone();
    let writer = tokio::spawn(async move {
        let mut batch = Vec::new();
        loop {
            let closing = writer_outbox.next_batch(&mut batch).await;
            for frame in batch.drain(..) {
                // Only lobby messages reach a seed 001 client, as `<name>: <text>`.
                if let Ok(ServerMsg::Message(m)) = switchboard_proto::decode_server(&frame) {
                    if m.room
                        .as_deref()
                        .is_some_and(|r| r.eq_ignore_ascii_case(LOBBY))
                    {
                        let text: Utf8Bytes = format!("{}: {}", m.from, m.text).into();
                        if sink.send(Message::Text(text)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if closing.is_some() {
                let _ = sink.close().await;
                return;
            }
        }
    });
    let mut bucket = Bucket::new(shared.cfg.rate_per_sec, shared.cfg.burst);
    loop {
        let next = tokio::select! {
            _ = outbox.closed() => break,
            n = tokio::time::timeout(shared.cfg.idle_timeout, stream.next()) => n,
        };
        let text = match next {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(Message::Binary(_)))) => continue,
            _ => break,
        };
        if !bucket.take(Instant::now()) {
            if bucket.overdrawn() {
                break;
            }
            continue;
        }
        if text.len() > switchboard_proto::limits::MAX_TEXT_BYTES || text.trim().is_empty() {
            continue;
        }
        let msg = ClientMsg::Send {
            room: Some(LOBBY.into()),
            to: None,
            text: text.to_string(),
            reff: None,
        };
        shared.run(|core, out| core.handle(session, msg, now_ms(), out));
    }
    shared.run(|core, out| core.close(session, out));
    shared
        .outboxes
        .write()
        .expect("outboxes lock")
        .remove(&session);
    outbox.close(Closing {
        error: None,
        ws_code: 1000,
        reason: "goodbye".into(),
    });
    let _ = writer.await;
}

fn outbox_reset(shared: &Shared, session: u64) {
    shared
        .outboxes
        .write()
        .expect("outboxes lock")
        .insert(session, Arc::new(Outbox::new(shared.cfg.outbox_bytes)));
}
