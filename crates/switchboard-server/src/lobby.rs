//! The lobby gateways: thin edges that put the clients of seed 001 and seed 003 into the
//! `#lobby` room as ordinary guests, so native, browser and seed users meet there. Each
//! gateway only translates frames; the chat core does the rest.
//!
//! - Seed 001, WebSocket at `/ws?name=NAME`: every text frame a client sends is a lobby
//!   message; it receives every lobby message as one text frame, `<name>: <text>`.
//! - Seed 003, WebSocket upgrade at `/?uuid=UUID`: JSON `{"uuid","nickname","message"}` both
//!   ways; the first message (`"message":"ping"`) announces the nickname; every lobby message
//!   goes to every seed 003 client, the sender included, and someone arriving in the lobby is
//!   shown as their `ping`.
//!
//! Better than the originals: dead connections are dropped (pings, idle timeout), close and
//! ping frames are never taken for chat text, each connection has one writer, and the node
//! never depends on another being up.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use std::pin::Pin;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use switchboard_core::Auth;
use switchboard_proto::server::PresenceEvent;
use switchboard_proto::{ClientMsg, ServerMsg};

use crate::conn::{now_ms, Bucket};
use crate::outbox::Outbox;
use crate::shared::Shared;

/// The room the seed clients talk in.
pub const LOBBY: &str = "lobby";

/// Which seed program's clients a connection serves.
#[derive(Debug, Clone)]
pub(crate) enum Seed {
    /// Seed 001, with the name asked for in the URL.
    Text { asked: Option<String> },
    /// Seed 003, with the client's uuid from the URL.
    Json { uuid: String },
}

/// Seed 003's message, both ways.
#[derive(Debug, Serialize, Deserialize)]
struct Json003 {
    #[serde(default)]
    uuid: String,
    #[serde(default)]
    nickname: String,
    #[serde(default)]
    message: String,
}

/// A valid guest name from what a client asked for (characters outside the name rules become
/// `_`; trailing newlines, which seed 003's console client sends, are dropped), or one made
/// from its address; then the same with `-2`, `-3`... for when it is taken.
fn candidates(asked: Option<&str>, addr: SocketAddr) -> Vec<String> {
    let cleaned = asked.map(|a| {
        let a = a.trim_end_matches(['\n', '\r']).trim();
        let mut n: String = a
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        n.truncate(28);
        n
    });
    let base = cleaned
        .filter(|n| switchboard_proto::validate_name(n).is_ok())
        .unwrap_or_else(|| {
            format!(
                "ws-{}-{}",
                addr.ip().to_string().replace([':', '.'], "-"),
                addr.port()
            )
        });
    let mut names = vec![base.clone()];
    names.extend(
        (2..10)
            .map(|i| format!("{base}-{i}"))
            .filter(|n| switchboard_proto::validate_name(n).is_ok()),
    );
    names
}

/// Text frames in: ends when the connection closes or fails.
pub(crate) type TextsIn = Pin<Box<dyn Stream<Item = String> + Send>>;
/// Text frames out.
pub(crate) type TextsOut = Pin<Box<dyn Sink<String, Error = anyhow::Error> + Send>>;

/// Runs one seed connection over a WebSocket to its end.
pub(crate) async fn run(shared: Arc<Shared>, socket: WebSocket, seed: Seed, addr: SocketAddr) {
    let (sink, stream) = socket.split();
    // Only text frames are chat: close ends the stream, pings and binary frames are skipped.
    let texts = futures_util::stream::unfold(stream, |mut s| async move {
        loop {
            match s.next().await {
                Some(Ok(Message::Text(t))) => return Some((t.to_string(), s)),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => continue,
                _ => return None,
            }
        }
    });
    let out = sink
        .sink_map_err(anyhow::Error::from)
        .with(|t: String| async move { Ok::<_, anyhow::Error>(Message::Text(Utf8Bytes::from(t))) });
    run_texts(shared, Box::pin(texts), Box::pin(out), seed, addr).await;
}

/// Runs one seed connection, whatever carries its text frames, to its end.
pub(crate) async fn run_texts(
    shared: Arc<Shared>,
    mut stream: TextsIn,
    mut sink: TextsOut,
    seed: Seed,
    addr: SocketAddr,
) {
    // Seed 003 announces its nickname in its first message.
    let asked = match &seed {
        Seed::Text { asked } => asked.clone(),
        Seed::Json { .. } => match first_json(&shared, &mut stream).await {
            Some(m) => Some(m.nickname),
            None => return,
        },
    };
    let session = shared.next_session.fetch_add(1, Ordering::Relaxed);
    shared.prepare_room(LOBBY).await;
    let first = candidates(asked.as_deref(), addr).into_iter().next();
    if let Some(first) = &first {
        shared.prepare_user(first, true).await;
    }
    let Some((name, outbox)) = sign_in(&shared, session, asked.as_deref(), addr) else {
        return;
    };
    if first.as_deref() != Some(name.as_str()) {
        // Another candidate was free: take it up now (the review every second would too).
        shared.prepare_user(&name, true).await;
    }
    tracing::info!(%name, session, ?seed, "seed client joined the lobby");
    if let Seed::Json { uuid } = &seed {
        // The original echoes the announcement to its sender too.
        let ping = encode003(uuid, &name, "ping");
        let _ = sink.send(ping).await;
    }
    let writer_outbox = outbox.clone();
    let writer_seed = seed.clone();
    let writer = tokio::spawn(async move {
        let mut batch = Vec::new();
        loop {
            let closing = writer_outbox.next_batch(&mut batch).await;
            for frame in batch.drain(..) {
                let Ok(msg) = switchboard_proto::decode_server(&frame) else {
                    continue;
                };
                if let Some(text) = translate(&writer_seed, &msg) {
                    if sink.send(text).await.is_err() {
                        return;
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
        let raw = match next {
            Ok(Some(t)) => t,
            _ => break,
        };
        if !bucket.take(Instant::now()) {
            if bucket.overdrawn() {
                break;
            }
            continue;
        }
        let text = match &seed {
            Seed::Text { .. } => raw.to_string(),
            Seed::Json { .. } => match serde_json::from_str::<Json003>(&raw) {
                Ok(m) if m.message.trim_end_matches(['\n', '\r']) != "ping" => {
                    m.message.trim_end_matches(['\n', '\r']).to_string()
                }
                _ => continue,
            },
        };
        if text.len() > switchboard_proto::limits::MAX_TEXT_BYTES || text.trim().is_empty() {
            continue;
        }
        let msg = ClientMsg::Send {
            room: Some(LOBBY.into()),
            to: None,
            text,
            reff: None,
        };
        shared.run(|core, out| core.handle(session, msg, now_ms(), out));
    }
    shared.end_session(session, "goodbye");
    let _ = writer.await;
}

/// Seed 003's first frame, within the handshake timeout.
async fn first_json(shared: &Shared, stream: &mut TextsIn) -> Option<Json003> {
    let first = tokio::time::timeout(shared.cfg.handshake_timeout, stream.next()).await;
    serde_json::from_str(&first.ok()??).ok()
}

/// Signs a guest in under the first free candidate name and joins the lobby.
fn sign_in(
    shared: &Shared,
    session: u64,
    asked: Option<&str>,
    addr: SocketAddr,
) -> Option<(String, Arc<Outbox>)> {
    for candidate in candidates(asked, addr) {
        let outbox = Arc::new(Outbox::new(shared.cfg.outbox_bytes));
        shared
            .outboxes
            .write()
            .expect("outboxes lock")
            .insert(session, outbox.clone());
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
            return Some((candidate, outbox));
        }
    }
    shared
        .outboxes
        .write()
        .expect("outboxes lock")
        .remove(&session);
    None
}

/// What a seed client receives for a frame of the core, if anything.
fn translate(seed: &Seed, msg: &ServerMsg) -> Option<String> {
    match (seed, msg) {
        (Seed::Text { .. }, ServerMsg::Message(m)) if in_lobby(m.room.as_deref()) => {
            Some(format!("{}: {}", m.from, m.text))
        }
        (Seed::Json { .. }, ServerMsg::Message(m)) if in_lobby(m.room.as_deref()) => {
            Some(encode003(&m.id, &m.from, &m.text))
        }
        (
            Seed::Json { .. },
            ServerMsg::Presence {
                room,
                name,
                event: PresenceEvent::Join,
            },
        ) if in_lobby(Some(room)) => Some(encode003("", name, "ping")),
        _ => None,
    }
}

fn in_lobby(room: Option<&str>) -> bool {
    room.is_some_and(|r| r.eq_ignore_ascii_case(LOBBY))
}

fn encode003(uuid: &str, nickname: &str, message: &str) -> String {
    let m = Json003 {
        uuid: uuid.to_string(),
        nickname: nickname.to_string(),
        message: message.to_string(),
    };
    serde_json::to_string(&m).expect("serialises")
}
