//! A test-kit IRC client written from RFC 1459/2812, https://modern.ircdocs.horse and the
//! IRCv3 message-tags specification: it sends raw lines, parses what comes back (tags,
//! prefix, command, params), and answers the server's PINGs by itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::WAIT;

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One line from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub tags: BTreeMap<String, String>,
    pub prefix: Option<String>,
    pub command: String,
    pub params: Vec<String>,
    pub raw: String,
}

impl Msg {
    /// Parses a line (without CR LF).
    pub fn parse(raw: &str) -> Msg {
        let mut rest = raw;
        let mut tags = BTreeMap::new();
        if let Some(t) = rest.strip_prefix('@') {
            let (t, r) = t.split_once(' ').expect("tags then a command");
            for tag in t.split(';') {
                let (k, v) = tag.split_once('=').unwrap_or((tag, ""));
                tags.insert(k.to_string(), unescape(v));
            }
            rest = r;
        }
        let mut prefix = None;
        if let Some(p) = rest.strip_prefix(':') {
            let (p, r) = p.split_once(' ').expect("prefix then a command");
            prefix = Some(p.to_string());
            rest = r;
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let mut params = Vec::new();
        while !rest.is_empty() {
            if let Some(t) = rest.strip_prefix(':') {
                params.push(t.to_string());
                break;
            }
            let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
            params.push(p.to_string());
            rest = r;
        }
        Msg {
            tags,
            prefix,
            command: command.to_string(),
            params,
            raw: raw.to_string(),
        }
    }

    /// The nick of the prefix (`nick!user@host`).
    pub fn nick(&self) -> &str {
        let p = self.prefix.as_deref().unwrap_or("");
        p.split('!').next().unwrap_or(p)
    }

    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// The last parameter (the trailing text).
    pub fn text(&self) -> &str {
        self.params.last().map_or("", String::as_str)
    }
}

fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(c) => out.push(c),
            None => {}
        }
    }
    out
}

pub struct IrcClient {
    rd: BufReader<tokio::io::ReadHalf<Box<dyn Io>>>,
    wr: tokio::io::WriteHalf<Box<dyn Io>>,
    /// Answer the server's PINGs (on by default).
    pub auto_pong: bool,
}

impl IrcClient {
    pub async fn connect(addr: SocketAddr) -> IrcClient {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        IrcClient::over(Box::new(s))
    }

    /// Connects over TLS, trusting `config`'s roots, checking the name `localhost`.
    pub async fn connect_tls(
        addr: SocketAddr,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> IrcClient {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, s)
            .await
            .unwrap();
        IrcClient::over(Box::new(tls))
    }

    fn over(io: Box<dyn Io>) -> IrcClient {
        let (rd, wr) = tokio::io::split(io);
        IrcClient {
            rd: BufReader::new(rd),
            wr,
            auto_pong: true,
        }
    }

    /// Connects and registers as `nick` (NICK and USER), returning at the end of the MOTD.
    pub async fn register(addr: SocketAddr, nick: &str) -> IrcClient {
        let mut c = IrcClient::connect(addr).await;
        c.send(&format!("NICK {nick}")).await;
        c.send(&format!("USER {nick} 0 * :{nick} the tester")).await;
        c.expect("376").await;
        c
    }

    /// Sends one line; CR LF is added.
    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.unwrap();
        self.wr.flush().await.unwrap();
    }

    /// The next line within `timeout`: `Ok(None)` at the end of the stream, `Err` on timeout.
    pub async fn recv_within(&mut self, timeout: Duration) -> Result<Option<Msg>, ()> {
        loop {
            let mut line = String::new();
            let n = match tokio::time::timeout(timeout, self.rd.read_line(&mut line)).await {
                Err(_) => return Err(()),
                Ok(Err(_)) => return Ok(None),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return Ok(None);
            }
            assert!(line.ends_with("\r\n"), "lines end with CR LF: {line:?}");
            let body = line.trim_end_matches(['\r', '\n']);
            let tags_len = if body.starts_with('@') {
                body.find(' ').map_or(0, |i| i + 1)
            } else {
                0
            };
            assert!(
                line.len() - tags_len <= 512,
                "a line over 512 bytes: {line:?}"
            );
            let m = Msg::parse(body);
            if self.auto_pong && m.command == "PING" {
                let token = m.text().to_string();
                self.send(&format!("PONG :{token}")).await;
                continue;
            }
            return Ok(Some(m));
        }
    }

    /// The next line; panics when none comes in time or the server closed.
    pub async fn recv(&mut self) -> Msg {
        match self.recv_within(WAIT).await {
            Ok(Some(m)) => m,
            Ok(None) => panic!("the server closed the connection"),
            Err(()) => panic!("nothing from the server in {WAIT:?}"),
        }
    }

    /// Reads up to the first line with this command (or numeric), skipping others.
    pub async fn expect(&mut self, command: &str) -> Msg {
        self.expect_where(|m| m.command == command, command).await
    }

    /// Reads up to the first line `check` accepts; the lines skipped are in the panic.
    pub async fn expect_where(&mut self, check: impl Fn(&Msg) -> bool, what: &str) -> Msg {
        let mut skipped = Vec::new();
        loop {
            match self.recv_within(WAIT).await {
                Ok(Some(m)) if check(&m) => return m,
                Ok(Some(m)) => skipped.push(m.raw),
                Ok(None) => panic!("closed while waiting for {what}; saw {skipped:#?}"),
                Err(()) => panic!("no {what} in {WAIT:?}; saw {skipped:#?}"),
            }
        }
    }

    /// Every line up to and including the first with `command`.
    pub async fn until(&mut self, command: &str) -> Vec<Msg> {
        let mut all = Vec::new();
        loop {
            let m = self.recv().await;
            let done = m.command == command;
            all.push(m);
            if done {
                return all;
            }
        }
    }

    /// Whatever arrives within `ms` milliseconds (PINGs answered, not listed).
    pub async fn quiet(&mut self, ms: u64) -> Vec<Msg> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        let mut all = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.recv_within(left)).await {
                Ok(Ok(Some(m))) => all.push(m),
                _ => return all,
            }
        }
    }

    /// Reads until the server closes; returns what it sent. Panics if it stays open.
    pub async fn closed(&mut self) -> Vec<Msg> {
        let mut all = Vec::new();
        loop {
            match self.recv_within(WAIT).await {
                Ok(Some(m)) => all.push(m),
                Ok(None) => return all,
                Err(()) => panic!("the connection stayed open; saw {all:#?}"),
            }
        }
    }

    /// A round trip: PING with a token, up to its PONG; returns what came before.
    pub async fn sync(&mut self) -> Vec<Msg> {
        self.send("PING :sync-token").await;
        let mut all = self.until("PONG").await;
        let pong = all.pop().unwrap();
        assert_eq!(pong.text(), "sync-token");
        all
    }
}
