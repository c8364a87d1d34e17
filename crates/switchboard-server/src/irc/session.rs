//! One IRC connection, in one task: it reads lines and answers them, and drains the session's
//! outbox into IRC lines (replies.rs), writing everything it has after each step in one go.
//! Before registration the connection has no session in the core and answers alone; once
//! NICK, USER (and PASS or SASL) are in and CAP negotiation is over, it says hello to the
//! core like any client.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use switchboard_core::{Auth, SessionId};
use switchboard_proto::limits::{MAX_HISTORY_LIMIT, MAX_PASSWORD_BYTES};
use switchboard_proto::{ChatMessage, ClientMsg, ErrorCode};
use switchboard_store::Page;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::Instrument;

use super::line::{self, Framed, Framer, Line};
use crate::conn::{now_ms, Bucket};
use crate::outbox::{Closing, Outbox};
use crate::password;
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
    fn flag(&mut self, cap: &str) -> Option<&mut bool> {
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
enum Sasl {
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
    user: Option<String>,
    pass: Option<String>,
    /// CAP LS or REQ was said, END not yet: registration waits.
    cap_open: bool,
    sasl: Sasl,
    sasl_failures: u32,
    /// The account a SASL exchange proved, by its registered name.
    sasl_account: Option<String>,
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
        shared.irc.set_away(session, irc.me(), None);
        if irc.outbox.is_some() {
            shared.run(|core, out| core.close(session, out));
            shared
                .outboxes
                .write()
                .expect("outboxes lock")
                .remove(&session);
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
    Away(super::AwayChange),
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
    fn error(&mut self, why: &str) -> End {
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
        let mut chunk = [0u8; 2048];
        let mut batch = Vec::new();
        let mut stop = self.shared.cluster.stop.subscribe();
        let mut away = self.shared.irc.changes.subscribe();
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
            let away_notify = self.caps.away_notify && self.name.is_some();
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
                a = away.recv(), if away_notify => match a {
                    Ok(a) => Event::Away(a),
                    Err(_) => continue,
                },
            };
            let ended = match event {
                Event::Batch(closing) => self.frames(&mut batch, closing),
                Event::Read(Ok(0)) | Event::Read(Err(_)) => return End::Closed,
                Event::Read(Ok(n)) => {
                    heard = Instant::now();
                    pinged = false;
                    framer.push(&chunk[..n]);
                    let mut ended = None;
                    while let Some(f) = framer.next() {
                        ended = self.on_framed(f).await;
                        // Replies the core made at once go out in order with the gateway's.
                        if ended.is_none() {
                            if let Some(o) = self.outbox.clone() {
                                if let Some(closing) = o.next_batch(&mut batch).now_or_never() {
                                    ended = self.frames(&mut batch, closing);
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
                Event::Away(a) => {
                    self.away_changed(&a);
                    None
                }
            };
            if !self.out.is_empty() {
                let text = std::mem::take(&mut self.out);
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
    fn frames(
        &mut self,
        batch: &mut Vec<axum::extract::ws::Utf8Bytes>,
        closing: Option<Closing>,
    ) -> Option<End> {
        for frame in std::mem::take(batch) {
            if let Ok(msg) = switchboard_proto::decode_server(&frame) {
                self.translate(msg);
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
        super::replies::command(self, l).await
    }

    async fn unregistered(&mut self, l: &Line) -> Option<End> {
        let p0 = l.params.first().cloned();
        match l.command.as_str() {
            "PASS" => match p0 {
                None => self.numeric("461", &["PASS", "Not enough parameters"]),
                Some(p) if p.is_empty() || p.len() > MAX_PASSWORD_BYTES => {
                    self.numeric("464", &["A password is 1 to 256 bytes"]);
                }
                Some(p) => self.pass = Some(p),
            },
            "NICK" => match p0.filter(|n| !n.is_empty()) {
                None => self.numeric("431", &["No nickname given"]),
                Some(n) => {
                    if let Err(e) = switchboard_proto::validate_name(&n) {
                        let why = format!("Erroneous nickname: {e}");
                        self.numeric("432", &[&n, &why]);
                    } else {
                        self.nick = Some(n);
                        return self.try_register().await;
                    }
                }
            },
            "USER" => {
                if l.params.len() < 4 {
                    self.numeric("461", &["USER", "Not enough parameters"]);
                } else if self.outbox.is_some() {
                    self.numeric("462", &["You may not reregister"]);
                } else {
                    self.user = Some(l.params[0].clone());
                    return self.try_register().await;
                }
            }
            // Said before the welcome (while a registration is being written): harmless.
            _ if self.outbox.is_some() => {}
            _ => self.numeric("451", &["You have not registered"]),
        }
        None
    }

    /// `CAP LS|LIST|REQ|END` (IRCv3 capability negotiation, version 302).
    async fn cap(&mut self, params: &[String]) -> Option<End> {
        let me = self.me().to_string();
        let sub = params.first().map(|s| s.to_ascii_uppercase());
        match sub.as_deref() {
            Some("LS") => {
                if self.name.is_none() {
                    self.cap_open = true;
                }
                let v302 = params.get(1).and_then(|v| v.parse::<u32>().ok()) >= Some(302);
                let list: Vec<String> = CAPS
                    .iter()
                    .map(|c| match *c {
                        "sasl" if v302 => "sasl=PLAIN".to_string(),
                        c => c.to_string(),
                    })
                    .collect();
                self.server_line("CAP", &[&me, "LS", &list.join(" ")]);
            }
            Some("LIST") => {
                let list = self.caps.enabled().join(" ");
                self.server_line("CAP", &[&me, "LIST", &list]);
            }
            Some("REQ") => {
                if self.name.is_none() {
                    self.cap_open = true;
                }
                let asked = params.get(1).cloned().unwrap_or_default();
                let mut next = self.caps.clone();
                let ok = asked.split_whitespace().all(|c| {
                    let (on, name) = match c.strip_prefix('-') {
                        Some(n) => (false, n),
                        None => (true, c),
                    };
                    next.flag(name).map(|f| *f = on).is_some()
                });
                if ok && !asked.trim().is_empty() {
                    self.caps = next;
                    self.server_line("CAP", &[&me, "ACK", &asked]);
                } else {
                    self.server_line("CAP", &[&me, "NAK", &asked]);
                }
            }
            Some("END") => {
                if self.name.is_none() && self.cap_open {
                    self.cap_open = false;
                    return self.try_register().await;
                }
            }
            _ => {
                let sub = params.first().cloned().unwrap_or_default();
                self.numeric("410", &[&sub, "Invalid CAP command"]);
            }
        }
        None
    }

    /// `AUTHENTICATE` (SASL PLAIN): the account must exist, the password must match it.
    async fn authenticate(&mut self, arg: Option<&str>) -> Option<End> {
        if self.name.is_some() || self.outbox.is_some() {
            self.numeric("907", &["You have already authenticated using SASL"]);
            return None;
        }
        if !self.caps.sasl {
            self.numeric(
                "904",
                &["SASL authentication failed: enable the sasl capability first"],
            );
            return None;
        }
        let Some(arg) = arg else {
            self.numeric("461", &["AUTHENTICATE", "Not enough parameters"]);
            return None;
        };
        if arg == "*" {
            self.sasl = Sasl::Idle;
            self.numeric("906", &["SASL authentication aborted"]);
            return None;
        }
        match &mut self.sasl {
            Sasl::Idle => {
                if arg.eq_ignore_ascii_case("PLAIN") {
                    self.sasl = Sasl::Plain(String::new());
                    self.server_bare("AUTHENTICATE", "+");
                } else {
                    self.numeric("908", &["PLAIN", "are available SASL mechanisms"]);
                    self.numeric("904", &["SASL authentication failed"]);
                }
                None
            }
            Sasl::Plain(buf) => {
                if arg != "+" {
                    buf.push_str(arg);
                }
                if buf.len() > 1200 {
                    self.sasl = Sasl::Idle;
                    self.numeric("905", &["SASL message too long"]);
                    return None;
                }
                // A 400-byte chunk means more follows.
                if arg.len() == 400 {
                    return None;
                }
                let payload = std::mem::take(buf);
                self.sasl = Sasl::Idle;
                self.sasl_plain(&payload).await
            }
        }
    }

    fn server_bare(&mut self, command: &str, param: &str) {
        self.out.push_str(&format!("{command} {param}\r\n"));
    }

    async fn sasl_plain(&mut self, payload: &str) -> Option<End> {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let fields: Option<(String, String)> = decoded.and_then(|d| {
            let mut f = d.split('\0');
            let (_authz, authc, pass) = (f.next()?, f.next()?, f.next()?);
            Some((authc.to_string(), pass.to_string()))
        });
        let Some((account, pass)) = fields else {
            return self.sasl_failed("SASL authentication failed: not a PLAIN message");
        };
        let hash = self
            .shared
            .core
            .lock()
            .expect("core lock")
            .account_hash(&account);
        let ok = match hash {
            Some(h) if !pass.is_empty() && pass.len() <= MAX_PASSWORD_BYTES => {
                password::verify(pass, h).await
            }
            _ => false,
        };
        if !ok {
            return self
                .sasl_failed("SASL authentication failed: unknown account or wrong password");
        }
        let account = self
            .shared
            .core
            .lock()
            .expect("core lock")
            .registered_name(&account)
            .unwrap_or(account);
        let me = self.me().to_string();
        let mask = format!("{me}!{me}@{}", super::HOST);
        let logged = format!("You are now logged in as {account}");
        self.numeric("900", &[&mask, &account, &logged]);
        self.numeric("903", &["SASL authentication successful"]);
        self.sasl_account = Some(account);
        None
    }

    fn sasl_failed(&mut self, why: &str) -> Option<End> {
        self.numeric("904", &[why]);
        self.sasl_failures += 1;
        if self.sasl_failures >= 3 {
            return Some(self.error("too many failed authentications"));
        }
        None
    }

    /// Once NICK and USER are in and CAP negotiation is over: signs in to the core. A name
    /// held by someone else gets 433 and the client may try another; a wrong password gets
    /// 464 and the connection closes.
    async fn try_register(&mut self) -> Option<End> {
        if self.outbox.is_some() || self.cap_open || self.user.is_none() {
            return None;
        }
        let nick = self.nick.clone()?;
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return Some(self.error("the node is shutting down"));
        }
        let (name, auth) = match self.sasl_account.clone() {
            Some(account) => (account, Auth::Verified),
            None => {
                let hash = self
                    .shared
                    .core
                    .lock()
                    .expect("core lock")
                    .account_hash(&nick);
                match (hash, self.pass.clone()) {
                    (Some(h), Some(p)) => {
                        if !password::verify(p, h).await {
                            self.numeric("464", &["Password incorrect"]);
                            return Some(self.error("wrong password"));
                        }
                        (nick.clone(), Auth::Verified)
                    }
                    (Some(_), None) => {
                        self.numeric(
                            "433",
                            &[&nick, "Nickname is registered: give its password with PASS or SASL, or choose another"],
                        );
                        self.nick = None;
                        return None;
                    }
                    (None, Some(p)) => match password::hash(p).await {
                        Ok(h) => (nick.clone(), Auth::Register(h)),
                        Err(_) => return Some(self.error("could not hash the password")),
                    },
                    (None, None) => (nick.clone(), Auth::Guest),
                }
            }
        };
        let outbox = Arc::new(Outbox::new(self.shared.cfg.outbox_bytes));
        self.shared
            .outboxes
            .write()
            .expect("outboxes lock")
            .insert(self.session, outbox.clone());
        let session = self.session;
        let ok = self.shared.run(|core, out| {
            core.hello(session, &name, auth, now_ms(), out);
            core.has_session(session)
        });
        if ok {
            self.outbox = Some(outbox);
            return None;
        }
        self.shared
            .outboxes
            .write()
            .expect("outboxes lock")
            .remove(&session);
        let mut none = Vec::new();
        let why = outbox
            .next_batch(&mut none)
            .now_or_never()
            .flatten()
            .and_then(|c| c.error);
        match why {
            Some((ErrorCode::NameInUse, _)) => {
                self.numeric("433", &[&name, "Nickname is already in use"]);
                self.nick = None;
            }
            Some((ErrorCode::AuthFailed, m)) => {
                self.numeric("433", &[&name, &m]);
                self.nick = None;
            }
            Some((ErrorCode::InvalidName, m)) => {
                self.numeric("432", &[&name, &m]);
                self.nick = None;
            }
            Some((_, m)) => return Some(self.error(&m)),
            None => return Some(self.error("could not sign in")),
        }
        None
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

    /// `CHATHISTORY LATEST|BEFORE|AFTER <target> <selector> <limit>` from the store.
    pub async fn chathistory(&mut self, params: &[String]) {
        let sub = params
            .first()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        if !matches!(sub.as_str(), "LATEST" | "BEFORE" | "AFTER") {
            self.server_line(
                "FAIL",
                &[
                    "CHATHISTORY",
                    "INVALID_PARAMS",
                    &sub,
                    "Only LATEST, BEFORE and AFTER are supported",
                ],
            );
            return;
        }
        let (Some(target), Some(selector), Some(limit)) =
            (params.get(1), params.get(2), params.get(3))
        else {
            self.server_line(
                "FAIL",
                &[
                    "CHATHISTORY",
                    "NEED_MORE_PARAMS",
                    &sub,
                    "Missing parameters",
                ],
            );
            return;
        };
        let limit = limit
            .parse::<u32>()
            .unwrap_or(0)
            .clamp(1, MAX_HISTORY_LIMIT);
        // A timestamp selector only bounds LATEST: the store pages by position.
        let since = selector
            .strip_prefix("timestamp=")
            .and_then(line::parse_iso_time)
            .filter(|_| sub == "LATEST");
        let position = match selector.as_str() {
            "*" if sub == "LATEST" => None,
            _ if since.is_some() => None,
            s => match s
                .strip_prefix("msgid=")
                .and_then(super::replies::parse_msgid)
            {
                Some(p) => Some(p),
                None => {
                    self.server_line(
                        "FAIL",
                        &[
                            "CHATHISTORY",
                            "INVALID_PARAMS",
                            selector,
                            "Use msgid=ID (or * or timestamp= with LATEST)",
                        ],
                    );
                    return;
                }
            },
        };
        let (room, with) = match target.strip_prefix('#') {
            Some(r) => (Some(r.to_string()), None),
            None => (None, Some(target.clone())),
        };
        let found = self.shared.core.lock().expect("core lock").history_stream(
            self.session,
            room.as_deref(),
            with.as_deref(),
        );
        let Ok((stream, floor)) = found else {
            self.server_line(
                "FAIL",
                &[
                    "CHATHISTORY",
                    "INVALID_TARGET",
                    &sub,
                    target,
                    "No such channel or nick",
                ],
            );
            return;
        };
        let page = match (sub.as_str(), &position) {
            ("LATEST", _) => Page::Before(None),
            ("BEFORE", p) => Page::Before(p.clone()),
            (_, Some(p)) => Page::Since(p.clone()),
            (_, None) => Page::Before(None),
        };
        let store = self.shared.store.clone();
        let read = tokio::task::spawn_blocking(move || store.history(&stream, page, limit, floor))
            .await
            .ok()
            .and_then(Result::ok);
        let Some(page) = read else {
            self.server_line(
                "FAIL",
                &[
                    "CHATHISTORY",
                    "MESSAGE_ERROR",
                    &sub,
                    target,
                    "The history could not be read",
                ],
            );
            return;
        };
        let mut messages = page.messages;
        if let ("LATEST", Some(after)) = (sub.as_str(), &position) {
            messages.retain(|m| m.position() > *after);
        }
        if let Some(t) = since {
            messages.retain(|m| m.ts > t);
        }
        self.history_batch(target, &messages);
    }
}
