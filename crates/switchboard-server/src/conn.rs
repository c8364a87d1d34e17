//! One client connection on `/v1/ws`: a reader (this task) that turns frames into core
//! commands, and one writer task that drains the outbox in batches.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use switchboard_core::{Auth, SessionId};
use switchboard_proto::limits::{DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT, MAX_PASSWORD_BYTES};
use switchboard_proto::{
    decode_client, encode_server, ClientMsg, Cursor, ErrorCode, Millis, Position, ProtoError,
    ServerMsg, PROTOCOL_VERSION,
};
use switchboard_store::Page;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use crate::outbox::{Closing, Outbox};
use crate::password;
use crate::shared::Shared;

/// A write that takes longer than this means the peer stopped reading: give up on it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Malformed frames a connection may send before it is closed for them.
const MAX_PROTOCOL_ERRORS: u32 = 20;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// Runs a connection to its end.
pub(crate) fn run(
    shared: Arc<Shared>,
    socket: WebSocket,
    permit: OwnedSemaphorePermit,
) -> impl std::future::Future<Output = ()> {
    // Split before the connection's future is made: a future keeps room for everything it
    // was given, and the whole WebSocket would otherwise sit in every idle connection's task
    // next to the two halves that replace it.
    let (sink, stream) = socket.split();
    let session = shared.next_session.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("conn", session);
    // One future (not an async fn wrapping an async block), so that nothing is kept twice.
    serve(shared, session, sink, stream, permit).instrument(span)
}

async fn serve(
    shared: Arc<Shared>,
    session: SessionId,
    sink: futures_util::stream::SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    permit: OwnedSemaphorePermit,
) {
    shared
        .metrics
        .connections_open
        .fetch_add(1, Ordering::Relaxed);
    shared
        .metrics
        .connections_total
        .fetch_add(1, Ordering::Relaxed);
    let outbox = Arc::new(Outbox::new(shared.cfg.outbox_bytes));
    let writer = spawn_writer(sink, outbox.clone(), shared.cfg.ping_every());
    let mut conn = Conn {
        shared: shared.clone(),
        session,
        outbox: outbox.clone(),
        stream,
        bucket: Bucket::new(shared.cfg.rate_per_sec, shared.cfg.burst),
        errors: 0,
    };
    let end = conn.read_loop().await;
    match &end {
        End::Refused(code) => tracing::info!(%code, "closing the connection"),
        other => tracing::debug!(end = ?other, "connection ending"),
    }
    // The session leaves presence at once; the writer still flushes what is queued.
    shared.end_session(session, "goodbye");
    let _ = tokio::time::timeout(shared.cfg.drain_timeout, writer).await;
    shared
        .metrics
        .connections_open
        .fetch_sub(1, Ordering::Relaxed);
    drop(permit);
}

/// Refuses a connection at the cap: tell it why, then close.
pub(crate) async fn refuse(mut socket: WebSocket) {
    let frame = encode_server(&ServerMsg::Error {
        code: ErrorCode::TooManyConnections,
        message: "the node is at its connection limit; try again later or another node".into(),
        reff: None,
    });
    let _ = socket
        .send(Message::Text(
            Utf8Bytes::try_from(frame).expect("JSON is UTF-8"),
        ))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1013,
            reason: "too many connections".into(),
        })))
        .await;
}

/// Why a connection ended, for the log.
#[derive(Debug)]
enum End {
    ClientClosed,
    Closing,
    Refused(ErrorCode),
}

struct Conn {
    shared: Arc<Shared>,
    session: SessionId,
    outbox: Arc<Outbox>,
    stream: SplitStream<WebSocket>,
    bucket: Bucket,
    errors: u32,
}

enum Frame {
    Text(Utf8Bytes),
    End(End),
}

impl Conn {
    async fn read_loop(&mut self) -> End {
        let hello =
            tokio::time::timeout(self.shared.cfg.handshake_timeout, self.next_text(None)).await;
        let text = match hello {
            Err(_) => {
                return self.fail(
                    ErrorCode::HandshakeTimeout,
                    "no hello within the handshake timeout",
                )
            }
            Ok(Frame::End(end)) => return end,
            Ok(Frame::Text(t)) => t,
        };
        // Boxed, like `on_text` below: a future is as large as its largest state, and every
        // idle connection would otherwise carry these rarely-live ones.
        if let Err(e) = Box::pin(self.hello(&text)).await {
            return self.fail(e.code, &e.message);
        }
        if self.outbox.is_closing() {
            return End::Closing;
        }
        let outbox = self.outbox.clone();
        let idle = Some(self.shared.cfg.idle_timeout);
        loop {
            let frame = tokio::select! {
                biased;
                _ = outbox.closed() => return End::Closing,
                f = self.next_text(idle) => f,
            };
            match frame {
                Frame::End(end) => return end,
                Frame::Text(text) => {
                    if let Some(end) = Box::pin(self.on_text(&text)).await {
                        return end;
                    }
                }
            }
        }
    }

    /// The next text frame; pings, pongs and binary frames are handled here. With `idle`,
    /// a connection that sends no frame at all (not even a pong to the writer's pings) for
    /// that long is closed.
    async fn next_text(&mut self, idle: Option<Duration>) -> Frame {
        loop {
            let next = match idle {
                Some(idle) => match tokio::time::timeout(idle, self.stream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        let why = "nothing heard from you for too long";
                        return Frame::End(self.fail(ErrorCode::IdleTimeout, why));
                    }
                },
                None => self.stream.next().await,
            };
            let msg = match next {
                None => return Frame::End(End::ClientClosed),
                Some(Err(e)) => {
                    return Frame::End(match classify_ws_error(&e) {
                        Some((code, text)) => self.fail(code, &text),
                        None => End::ClientClosed,
                    });
                }
                Some(Ok(m)) => m,
            };
            match msg {
                Message::Text(t) => return Frame::Text(t),
                Message::Binary(_) => {
                    if let Some(end) = self.refuse_frame(ProtoError::new(
                        ErrorCode::BadJson,
                        "binary frames are not part of the protocol: send JSON in text frames",
                    )) {
                        return Frame::End(end);
                    }
                }
                Message::Ping(_) | Message::Pong(_) => {}
                Message::Close(_) => return Frame::End(End::ClientClosed),
            }
        }
    }

    /// Handles the first frame, which must be `hello`.
    async fn hello(&mut self, text: &str) -> Result<(), ProtoError> {
        let (name, password, away_events) = match decode_client(text)? {
            ClientMsg::Hello {
                v,
                name,
                password,
                away_events,
                ..
            } => {
                if v != PROTOCOL_VERSION {
                    return Err(ProtoError::new(
                        ErrorCode::UnsupportedVersion,
                        format!("this node speaks protocol version {PROTOCOL_VERSION}"),
                    ));
                }
                (name, password, away_events)
            }
            _ => {
                return Err(ProtoError::new(
                    ErrorCode::NotReady,
                    "the first message must be hello",
                ))
            }
        };
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return Err(ProtoError::new(
                ErrorCode::ShuttingDown,
                "the node is shutting down",
            ));
        }
        switchboard_proto::validate_name(&name)
            .map_err(|e| ProtoError::new(ErrorCode::InvalidName, e.to_string()))?;
        if password
            .as_ref()
            .is_some_and(|p| p.len() > MAX_PASSWORD_BYTES || p.is_empty())
        {
            return Err(ProtoError::new(
                ErrorCode::TooLarge,
                format!("a password is 1 to {MAX_PASSWORD_BYTES} bytes"),
            ));
        }
        let hash = self
            .shared
            .core
            .lock()
            .expect("core lock")
            .account_hash(&name);
        let auth = match (hash, password) {
            (Some(_), None) | (None, None) => Auth::Guest,
            (Some(hash), Some(password)) => {
                if !password::verify(password, hash).await {
                    return Err(ProtoError::new(ErrorCode::AuthFailed, "wrong password"));
                }
                Auth::Verified
            }
            (None, Some(password)) => Auth::Register(password::hash(password).await?),
        };
        let guest = matches!(auth, Auth::Guest);
        self.shared.prepare_user(&name, guest).await;
        self.shared
            .outboxes
            .write()
            .expect("outboxes lock")
            .insert(self.session, self.outbox.clone());
        let session = self.session;
        self.shared.run(|core, out| {
            core.hello(session, &name, auth, now_ms(), out);
            if away_events {
                core.want_away_events(session);
            }
        });
        Ok(())
    }

    /// Handles one frame of a signed-in session. Returns how the connection ends, if it does.
    async fn on_text(&mut self, text: &str) -> Option<End> {
        let m = &self.shared.metrics;
        m.frames_in.fetch_add(1, Ordering::Relaxed);
        if !self.bucket.take(Instant::now()) {
            m.rate_limited.fetch_add(1, Ordering::Relaxed);
            if self.bucket.overdrawn() {
                return Some(self.fail(
                    ErrorCode::RateLimited,
                    "flooding: too many messages too fast",
                ));
            }
            self.reply_error(
                ErrorCode::RateLimited,
                "slow down: this message was dropped",
                None,
            );
            return None;
        }
        let msg = match decode_client(text) {
            Ok(msg) => msg,
            Err(e) => return self.refuse_frame(e),
        };
        let session = self.session;
        self.shared.prepare(&msg).await;
        match msg {
            ClientMsg::History {
                room,
                with,
                before,
                after,
                limit,
                reff,
            } => {
                if let Err(e) = self
                    .history(room, with, before, after, limit, reff.clone())
                    .await
                {
                    self.reply_error(e.code, &e.message, reff);
                }
            }
            ClientMsg::Bye { .. } => {
                self.shared.run(|core, out| core.close(session, out));
                return Some(End::ClientClosed);
            }
            msg => {
                if matches!(msg, ClientMsg::Send { .. }) {
                    m.messages_in.fetch_add(1, Ordering::Relaxed);
                }
                self.shared
                    .run(|core, out| core.handle(session, msg, now_ms(), out));
            }
        }
        None
    }

    async fn history(
        &mut self,
        room: Option<String>,
        with: Option<String>,
        before: Option<Position>,
        after: Option<Cursor>,
        limit: Option<u32>,
        reff: Option<String>,
    ) -> Result<(), ProtoError> {
        let (stream, floor) = self.shared.core.lock().expect("core lock").history_stream(
            self.session,
            room.as_deref(),
            with.as_deref(),
        )?;
        let page = match (before, after) {
            (Some(_), Some(_)) => {
                return Err(ProtoError::new(
                    ErrorCode::BadRequest,
                    "history takes `before` or `after`, not both",
                ))
            }
            (_, Some(a)) => Page::After(a),
            (b, None) => Page::Before(b),
        };
        let limit = limit
            .unwrap_or(DEFAULT_HISTORY_LIMIT)
            .clamp(1, MAX_HISTORY_LIMIT);
        let store = self.shared.store.clone();
        let key = stream.clone();
        let result = tokio::task::spawn_blocking(move || store.history(&key, page, limit, floor))
            .await
            .map_err(|_| internal())?;
        let page = result.map_err(|e| {
            tracing::error!(error = %e, "history read failed");
            internal()
        })?;
        let frame = encode_server(&ServerMsg::History {
            reff,
            stream,
            messages: page.messages,
            more: page.more,
        });
        self.queue(frame);
        Ok(())
    }

    /// A malformed or refused frame: say why, and close after too many.
    fn refuse_frame(&mut self, e: ProtoError) -> Option<End> {
        self.shared
            .metrics
            .protocol_errors
            .fetch_add(1, Ordering::Relaxed);
        self.errors += 1;
        if self.errors > MAX_PROTOCOL_ERRORS {
            return Some(self.fail(
                e.code,
                &format!("{} (too many bad frames; closing)", e.message),
            ));
        }
        self.reply_error(e.code, &e.message, None);
        None
    }

    fn reply_error(&self, code: ErrorCode, message: &str, reff: Option<String>) {
        let frame = encode_server(&ServerMsg::Error {
            code,
            message: message.to_string(),
            reff,
        });
        self.queue(frame);
    }

    /// Queues a reply through [`Shared::push`], the one push path that metrics count.
    fn queue(&self, frame: bytes::Bytes) {
        let text = Utf8Bytes::try_from(frame).expect("JSON is UTF-8");
        self.shared.push(&self.outbox, &text);
    }

    /// Closes the connection with an error the client can read.
    fn fail(&self, code: ErrorCode, message: &str) -> End {
        let ws_code = match code {
            ErrorCode::TooLarge => 1009,
            ErrorCode::BadJson => 1007,
            ErrorCode::Internal => 1011,
            ErrorCode::ShuttingDown => 1001,
            _ => 1008,
        };
        self.outbox.close(Closing {
            error: Some((code, message.to_string())),
            ws_code,
            reason: code.as_str().to_string(),
        });
        End::Refused(code)
    }
}

fn internal() -> ProtoError {
    ProtoError::new(
        ErrorCode::Internal,
        "the node could not read its store; try again",
    )
}

/// Maps a WebSocket-level failure to what the client is told, or `None` when the client
/// simply went away (reset, closed without the closing handshake).
fn classify_ws_error(e: &axum::Error) -> Option<(ErrorCode, String)> {
    use std::error::Error as _;
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
    let inner = e.source().and_then(|s| s.downcast_ref::<WsError>());
    match inner {
        Some(WsError::Utf8(_)) => Some((
            ErrorCode::BadJson,
            "a text frame was not valid UTF-8".into(),
        )),
        Some(WsError::Capacity(CapacityError::MessageTooLong { .. })) => Some((
            ErrorCode::TooLarge,
            format!(
                "a frame was over {} bytes",
                switchboard_proto::limits::MAX_FRAME_BYTES
            ),
        )),
        Some(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))
        | Some(WsError::ConnectionClosed)
        | Some(WsError::AlreadyClosed)
        | Some(WsError::Io(_)) => None,
        Some(WsError::Protocol(p)) => Some((
            ErrorCode::BadRequest,
            format!("WebSocket protocol error: {p}"),
        )),
        _ => Some((ErrorCode::BadRequest, format!("WebSocket error: {e}"))),
    }
}

/// Starts the writer task. Not inline in `serve`: the compiler may keep room for a future
/// made inside an async fn in that fn's own future, and the writer's would then sit in every
/// connection's reader task too (measured: 1,256 bytes for `serve` with it inline).
fn spawn_writer(
    sink: SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    ping_every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(write_loop(sink, outbox, ping_every))
}

/// Drains the outbox into the socket: everything queued is fed, then flushed in one go.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    ping_every: Duration,
) {
    let mut batch = Vec::new();
    let mut ticker = tokio::time::interval(ping_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        let closing = tokio::select! {
            c = outbox.next_batch(&mut batch) => c,
            _ = ticker.tick() => {
                let ping = sink.send(Message::Ping(bytes::Bytes::new()));
                if !matches!(Box::pin(tokio::time::timeout(WRITE_TIMEOUT, ping)).await, Ok(Ok(()))) {
                    outbox.close(Closing { error: None, ws_code: 1001, reason: "write timeout".into() });
                    return;
                }
                continue;
            }
        };
        if !batch.is_empty() {
            let write = async {
                for frame in batch.drain(..) {
                    sink.feed(Message::Text(frame)).await?;
                }
                sink.flush().await
            };
            // Boxed (as `bye` below): the task of every idle connection is as large as its
            // largest state, and these are live only while writing.
            let write = Box::pin(tokio::time::timeout(WRITE_TIMEOUT, write));
            if !matches!(write.await, Ok(Ok(()))) {
                outbox.close(Closing {
                    error: None,
                    ws_code: 1001,
                    reason: "write failed".into(),
                });
                return;
            }
            // An idle connection keeps no batch buffer; a busy one allocates one per batch.
            batch = Vec::new();
        }
        if let Some(closing) = closing {
            let bye = async {
                if let Some((code, message)) = closing.error {
                    let frame = encode_server(&ServerMsg::Error {
                        code,
                        message,
                        reff: None,
                    });
                    let text = Utf8Bytes::try_from(frame).expect("JSON is UTF-8");
                    sink.feed(Message::Text(text)).await?;
                }
                let reason: Utf8Bytes = closing.reason.into();
                sink.feed(Message::Close(Some(CloseFrame {
                    code: closing.ws_code,
                    reason,
                })))
                .await?;
                sink.close().await
            };
            let _ = Box::pin(tokio::time::timeout(WRITE_TIMEOUT, bye)).await;
            return;
        }
    }
}

/// A token bucket: `rate` tokens a second up to `burst`.
pub(crate) struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
    /// Frames refused in a row: a client that keeps sending while refused is flooding.
    refused: u32,
}

impl Bucket {
    pub(crate) fn new(rate: u32, burst: u32) -> Bucket {
        Bucket {
            tokens: burst as f64,
            rate: rate as f64,
            burst: burst as f64,
            last: Instant::now(),
            refused: 0,
        }
    }

    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            true
        } else {
            self.refused += 1;
            false
        }
    }

    /// Whether the client went on sending well past being told to slow down.
    pub(crate) fn overdrawn(&self) -> bool {
        self.refused as f64 > self.burst
    }
}
