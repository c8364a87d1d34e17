//! One IRC connection, in one task: it reads lines and answers them, and drains the session's
//! outbox into IRC lines (replies.rs), writing everything it has after each step in one go.
//! The state every part of the gateway works on lives here.
//! Before registration the connection has no session in the core and answers alone; once
//! NICK, USER (and PASS or SASL) are in and CAP negotiation is over, it says hello to the
//! core like any client.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use switchboard_core::SessionId;
use switchboard_proto::{ChatMessage, ClientMsg};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::Instrument;

use super::line::{self, Framed, Framer, Line};
use crate::conn::{now_ms, Bucket};
use crate::outbox::{Closing, Outbox};
use crate::shared::Shared;

/// A write that takes longer than this means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The capabilities this server offers (IRCv3), in the order `CAP LS` lists them.
pub(super) const CAPS: &[&str] = &[
    "account-tag",
    "away-notify",
    "batch",
    "draft/chathistory",
    "echo-message",
    "message-tags",
    "multi-prefix",
    "sasl",
    "server-time",
];

/// Capabilities a client enabled.
#[derive(Debug, Default, Clone)]
pub(super) struct Caps {
    pub account_tag: bool,
    pub away_notify: bool,
    pub batch: bool,
    pub chathistory: bool,
    pub echo: bool,
    pub message_tags: bool,
    pub multi_prefix: bool,
    pub sasl: bool,
    pub server_time: bool,
}

impl Caps {
    pub(super) fn flag(&mut self, cap: &str) -> Option<&mut bool> {
        Some(match cap {
            "account-tag" => &mut self.account_tag,
            "away-notify" => &mut self.away_notify,
            "batch" => &mut self.batch,
            "draft/chathistory" => &mut self.chathistory,
            "echo-message" => &mut self.echo,
            "message-tags" => &mut self.message_tags,
            "multi-prefix" => &mut self.multi_prefix,
            "sasl" => &mut self.sasl,
            "server-time" => &mut self.server_time,
            _ => return None,
        })
    }

    pub fn enabled(&self) -> Vec<&'static str> {
        let mut c = self.clone();
        CAPS.iter()
            .copied()
            .filter(|cap| c.flag(cap).is_some_and(|f| *f))
            .collect()
    }
}

/// What a request sent to the core with a `ref` was for: its reply or error becomes this
/// command's IRC answer.
#[derive(Debug, Clone)]
pub(super) enum Pending {
    Join(String),
    Part(String),
    Send { target: String, notice: bool },
    TopicRead(String),
    TopicSet(String),
    Names(String),
    List(Option<Vec<String>>),
    Who(String),
    WhoNick(String),
    Whois(String),
    Away,
}

/// A channel this connection is in, and who is in it (for away-notify), by key.
#[derive(Debug, Clone, Default)]
pub(super) struct Channel {
    pub name: String,
    pub members: BTreeSet<String>,
}

/// Telling this connection's own messages from those of the same user's other sessions, so
/// that without echo-message a client never sees what it sent itself (see replies.rs).
#[derive(Debug, Default)]
pub(super) struct Echo {
    /// Messages sent and not yet acknowledged or refused.
    pub sent: u32,
    /// Acknowledged ids (and whether it was a NOTICE) whose message has not come back yet.
    pub acked: VecDeque<(String, bool)>,
    /// Messages of this user that came back while sends were unacknowledged: this
    /// connection's own, or another session's; the acknowledgements tell.
    pub held: Vec<ChatMessage>,
}

/// How the SASL exchange stands.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Sasl {
    Idle,
    /// `AUTHENTICATE PLAIN` said; collecting the base64 payload.
    Plain(String),
}

pub(super) struct Irc {
    pub shared: Arc<Shared>,
    pub session: SessionId,
    /// This node's name, the prefix of server replies.
    pub server: String,
    /// Lines waiting to be written.
    pub out: String,
    pub outbox: Option<Arc<Outbox>>,
    /// The nick asked for (NICK), before registration.
    pub nick: Option<String>,
    pub(super) user: Option<String>,
    pub(super) pass: Option<String>,
    /// CAP LS or REQ was said, END not yet: registration waits.
    pub(super) cap_open: bool,
    pub(super) sasl: Sasl,
    pub(super) sasl_failures: u32,
    /// The account a SASL exchange proved, by its registered name.
    pub(super) sasl_account: Option<String>,
    /// The name the core welcomed this session under: registered once set.
    pub name: Option<String>,
    pub caps: Caps,
    bucket: Bucket,
    flood_noticed: bool,
    pub pending: HashMap<String, Pending>,
    next_ref: u64,
    pub echo: Echo,
    pub channels: BTreeMap<String, Channel>,
    pub batches: u64,
    /// The user's direct conversations, by the other's key: their name as shown (TARGETS).
    pub dms: BTreeMap<String, String>,
    /// Joins whose history is still to be played back (playback.rs).
    pub playback: Vec<super::playback::Playback>,
}

/// Why a connection ends.
#[derive(Debug)]
pub(super) enum End {
    /// An ERROR was written (or the client went away): close.
    Closed,
}

/// Runs one IRC connection to its end.
pub(super) async fn run<S>(shared: Arc<Shared>, stream: S, addr: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let Ok(permit) = shared.conns.clone().try_acquire_owned() else {
        shared
            .metrics
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        let bye = "ERROR :Closing link: the node is at its connection limit; try again later or another node\r\n";
        let _ = tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(bye.as_bytes())).await;
        return;
    };
    let session = shared.next_session.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("irc", session, %addr);
    async move {
        let m = &shared.metrics;
        m.connections_open.fetch_add(1, Ordering::Relaxed);
        m.connections_total.fetch_add(1, Ordering::Relaxed);
        let mut irc = Irc::new(shared.clone(), session);
        let end = irc.serve(&mut rd, &mut wr).await;
        tracing::debug!(?end, "IRC connection ending");
        if irc.outbox.is_some() {
            shared.end_session(session, "goodbye");
        }
        let _ = tokio::time::timeout(WRITE_TIMEOUT, wr.shutdown()).await;
        m.connections_open.fetch_sub(1, Ordering::Relaxed);
        drop(permit);
    }
    .instrument(span)
    .await
}

/// What woke the connection up.
enum Event {
    Batch(Option<Closing>),
    Read(std::io::Result<usize>),
    Timer,
    Stop,
}

impl Irc {
    fn new(shared: Arc<Shared>, session: SessionId) -> Irc {
        let bucket = Bucket::new(shared.cfg.rate_per_sec, shared.cfg.burst);
        Irc {
            server: shared.cfg.node_name.clone(),
            shared,
            session,
            out: String::new(),
            outbox: None,
            nick: None,
            user: None,
            pass: None,
            cap_open: false,
            sasl: Sasl::Idle,
            sasl_failures: 0,
            sasl_account: None,
            name: None,
            caps: Caps::default(),
            bucket,
            flood_noticed: false,
            pending: HashMap::new(),
            next_ref: 0,
            echo: Echo::default(),
            channels: BTreeMap::new(),
            batches: 0,
            dms: BTreeMap::new(),
            playback: Vec::new(),
        }
    }

    /// The nick replies are addressed to: the session's name, the nick asked for, or `*`.
    pub fn me(&self) -> &str {
        self.name.as_deref().or(self.nick.as_deref()).unwrap_or("*")
    }

    /// Queues a line from the server: `:server CODE me params...`.
    pub fn numeric(&mut self, code: &str, params: &[&str]) {
        let me = self.me().to_string();
        let mut all = vec![me.as_str()];
        all.extend_from_slice(params);
        let line = line::format(&[], &self.server, code, &all);
        self.out.push_str(&line);
    }

    /// Queues a line from the server without the nick (NOTICE, PONG, CAP...).
    pub fn server_line(&mut self, command: &str, params: &[&str]) {
        let line = line::format(&[], &self.server, command, params);
        self.out.push_str(&line);
    }

    /// Queues an ERROR: the last line before the connection closes.
    pub(super) fn error(&mut self, why: &str) -> End {
        self.out.push_str(&line::format(
            &[],
            "",
            "ERROR",
            &[&format!("Closing link: {why}")],
        ));
        End::Closed
    }

    async fn serve<R, W>(&mut self, rd: &mut R, wr: &mut W) -> End
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let cfg = self.shared.cfg.clone();
        let mut framer = Framer::default();
        // Small: every idle connection keeps it (IRC lines are short; a long one takes two reads).
        let mut chunk = [0u8; 512];
        let mut batch = Vec::new();
        let mut stop = self.shared.cluster.stop.subscribe();
        let started = Instant::now();
        let mut heard = Instant::now();
        let mut pinged = false;
        loop {
            let deadline = if self.name.is_none() {
                started + cfg.handshake_timeout
            } else if pinged {
                heard + cfg.idle_timeout
            } else {
                heard + cfg.idle_timeout / 3
            };
            let outbox = self.outbox.clone();
            let event = tokio::select! {
                biased;
                c = async {
                    match &outbox {
                        Some(o) => o.next_batch(&mut batch).await,
                        None => std::future::pending().await,
                    }
                } => Event::Batch(c),
                n = rd.read(&mut chunk) => Event::Read(n),
                _ = tokio::time::sleep_until(deadline.into()) => Event::Timer,
                _ = crate::cluster::stopped(&mut stop), if outbox.is_none() => Event::Stop,
            };
            let ended = match event {
                Event::Batch(closing) => self.frames(&mut batch, closing).await,
                Event::Read(Ok(0)) | Event::Read(Err(_)) => return End::Closed,
                Event::Read(Ok(n)) => {
                    heard = Instant::now();
                    pinged = false;
                    framer.push(&chunk[..n]);
                    let mut ended = None;
                    while let Some(f) = framer.next() {
                        // Boxed: a future is as large as its largest state, and every idle
                        // connection would otherwise carry this rarely-live one.
                        ended = Box::pin(self.on_framed(f)).await;
                        // Replies the core made at once go out in order with the gateway's.
                        if ended.is_none() {
                            if let Some(o) = self.outbox.clone() {
                                if let Some(closing) = o.next_batch(&mut batch).now_or_never() {
                                    ended = self.frames(&mut batch, closing).await;
                                }
                            }
                        }
                        if ended.is_some() {
                            break;
                        }
                    }
                    ended
                }
                Event::Timer if self.name.is_none() => Some(self.error(
                    "registration timed out (send NICK and USER, and CAP END if you began CAP)",
                )),
                Event::Timer if pinged => Some(self.error("ping timeout")),
                Event::Timer => {
                    pinged = true;
                    let server = self.server.clone();
                    self.server_line("PING", &[&server]);
                    None
                }
                Event::Stop => Some(self.error("the node is shutting down")),
            };
            if !self.out.is_empty() {
                let text = std::mem::take(&mut self.out);
                tracing::trace!(%text, "IRC lines out");
                let write = tokio::time::timeout(WRITE_TIMEOUT, async {
                    wr.write_all(text.as_bytes()).await?;
                    wr.flush().await
                });
                if !matches!(Box::pin(write).await, Ok(Ok(()))) {
                    return End::Closed;
                }
            }
            if let Some(end) = ended {
                return end;
            }
        }
    }

    /// Frames from the core's outbox; a closing outbox ends the connection with an ERROR.
    /// A join's playback goes out right after its JOIN burst, before the frames after it.
    async fn frames(
        &mut self,
        batch: &mut Vec<axum::extract::ws::Utf8Bytes>,
        closing: Option<Closing>,
    ) -> Option<End> {
        for frame in std::mem::take(batch) {
            if super::fanout::is_rendered(&frame) {
                // A room message, rendered for this connection by the fan-out.
                self.out.push_str(&frame);
            } else if let Ok(msg) = switchboard_proto::decode_server(&frame) {
                self.translate(msg);
            }
            if !self.playback.is_empty() {
                // Boxed, as on_framed: only a join carries this state.
                Box::pin(self.play_back()).await;
            }
        }
        let closing = closing?;
        let why = match closing.error {
            Some((_, message)) => message,
            None => closing.reason,
        };
        Some(self.error(&why))
    }

    async fn on_framed(&mut self, framed: Framed) -> Option<End> {
        let line = match framed {
            Framed::Empty => return None,
            Framed::TooLong => {
                self.numeric("417", &["Input line was too long"]);
                return None;
            }
            Framed::NotUtf8 => {
                self.server_line(
                    "FAIL",
                    &["*", "INVALID_UTF8", "This server only takes UTF-8 text"],
                );
                return None;
            }
            Framed::Line(l) => l,
        };
        // Never the parameters of PASS and AUTHENTICATE: they carry passwords.
        if matches!(line.command.as_str(), "PASS" | "AUTHENTICATE") {
            tracing::trace!(command = %line.command, "IRC line");
        } else {
            tracing::trace!(command = %line.command, params = ?line.params, "IRC line");
        }
        self.shared
            .metrics
            .frames_in
            .fetch_add(1, Ordering::Relaxed);
        if !self.bucket.take(Instant::now()) {
            self.shared
                .metrics
                .rate_limited
                .fetch_add(1, Ordering::Relaxed);
            if self.bucket.overdrawn() {
                return Some(self.error("Excess Flood"));
            }
            if !std::mem::replace(&mut self.flood_noticed, true) {
                let me = self.me().to_string();
                self.server_line(
                    "NOTICE",
                    &[&me, "You are sending too fast: lines are being dropped; keep on and you will be disconnected"],
                );
            }
            return None;
        }
        self.flood_noticed = false;
        self.command(line).await
    }

    /// Every command, before and after registration.
    async fn command(&mut self, l: Line) -> Option<End> {
        let p = |i: usize| l.params.get(i).map(String::as_str);
        match l.command.as_str() {
            "CAP" => return self.cap(&l.params).await,
            "PING" => {
                let server = self.server.clone();
                let token = p(0).unwrap_or("").to_string();
                self.server_line("PONG", &[&server, &token]);
                return None;
            }
            "PONG" => return None,
            "QUIT" => {
                let why = format!("Quit: {}", p(0).unwrap_or("bye"));
                return Some(self.error(&why));
            }
            "AUTHENTICATE" => return self.authenticate(p(0)).await,
            _ => {}
        }
        if self.name.is_none() {
            return self.unregistered(&l).await;
        }
        super::commands::command(self, l).await
    }

    /// Sends a request to the core with a fresh `ref` remembered as `pending`.
    pub fn request(&mut self, mut msg: ClientMsg, pending: Pending) {
        self.next_ref += 1;
        let reff = format!("i{}", self.next_ref);
        msg.set_reff(reff.clone());
        if let Pending::Send { .. } = pending {
            self.echo.sent += 1;
            self.shared
                .metrics
                .messages_in
                .fetch_add(1, Ordering::Relaxed);
        }
        self.pending.insert(reff, pending);
        let session = self.session;
        self.shared
            .run(|core, out| core.handle(session, msg, now_ms(), out));
    }
}
