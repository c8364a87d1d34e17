//! The three wire protocols the load generator speaks, reduced to what the workloads need:
//! connect (with registration), join a room, a room message, a direct message, and reading
//! units (a WebSocket frame or a line) to scan for the send time a text carries.
//!
//! - Switchboard: WebSocket JSON at `/v1/ws` (`ws://HOST:PORT`).
//! - IRC (ngircd, InspIRCd, Switchboard's IRC face): lines over TCP (`irc://HOST:PORT`); a
//!   room is a channel, a direct message a PRIVMSG to a nick.
//! - NATS (`nats://HOST:PORT`): a room is a subject `room.NAME`, a user's direct messages the
//!   subject `user.NAME`, to which each client subscribes.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Switchboard,
    Irc,
    Nats,
}

impl Kind {
    /// Whether a room message comes back to its sender.
    pub fn echoes(self) -> bool {
        !matches!(self, Kind::Irc)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Switchboard => "switchboard",
            Kind::Irc => "irc",
            Kind::Nats => "nats",
        }
    }
}

/// Where to connect: one or more servers of one kind (members are spread over them in turn).
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    pub servers: Vec<SocketAddr>,
    /// Client connections come from 127.0.0.1 ..= 127.0.0.<sources>, to pass the limit of
    /// ephemeral ports per source address.
    pub sources: u8,
    /// IRC: `OPER name password` for senders, then `MODE nick +F` (ngircd's relaxed flood
    /// protection), so that a flat-out sender is not throttled.
    pub irc_oper: Option<(String, String)>,
    /// Connections opened at once (ngircd's listen backlog is 10; InspIRCd answers a
    /// registration on its next one-second tick).
    pub connecting: usize,
}

impl Target {
    /// Parses `ws://h:p,ws://h2:p2` (or `irc://`, `nats://`): one kind for all.
    pub fn parse(urls: &str, sources: u8, irc_oper: Option<&str>) -> anyhow::Result<Target> {
        let mut kind = None;
        let mut servers = Vec::new();
        for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let (scheme, rest) = url.split_once("://").context("a URL needs a scheme")?;
            let k = match scheme {
                "ws" => Kind::Switchboard,
                "irc" => Kind::Irc,
                "nats" => Kind::Nats,
                other => bail!("unknown scheme {other}: ws, irc or nats"),
            };
            if kind.is_some_and(|seen| seen != k) {
                bail!("all URLs must be of one kind");
            }
            kind = Some(k);
            let hostport = rest.trim_end_matches('/');
            let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
                .with_context(|| format!("resolving {hostport}"))?
                .next()
                .with_context(|| format!("no address for {hostport}"))?;
            servers.push(addr);
        }
        let irc_oper = irc_oper
            .map(|s| {
                s.split_once(':')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .context("--irc-oper NAME:PASSWORD")
            })
            .transpose()?;
        Ok(Target {
            kind: kind.context("no URL")?,
            servers,
            sources: sources.max(1),
            irc_oper,
            connecting: 64,
        })
    }

    /// The server client `i` talks to.
    pub fn server(&self, i: usize) -> SocketAddr {
        self.servers[i % self.servers.len()]
    }
}

/// The sending half of a connection: WebSocket text frames or lines, buffered.
///
/// The WebSocket side is written by hand (RFC 6455 framing, after a plain HTTP upgrade): the
/// load generator must not be the bottleneck, and a client library's per-frame work (message
/// types, UTF-8 validation, copies) made it one. Client frames are masked with a zero key,
/// which the protocol allows and which leaves the payload as it is.
pub enum Tx {
    Ws(BufWriter<OwnedWriteHalf>),
    Line(BufWriter<OwnedWriteHalf>),
}

/// The receiving half of a connection.
pub enum Rx {
    Ws(BufReader<OwnedReadHalf>),
    Line(BufReader<OwnedReadHalf>),
}

/// Reads 64 KiB at a time, so that a burst of frames costs few system calls.
const READ_BUFFER: usize = 64 * 1024;

impl Tx {
    /// Queues one frame or line (flushed by `flush`, or when buffers fill).
    pub async fn feed(&mut self, text: String) -> anyhow::Result<()> {
        match self {
            Tx::Ws(w) => {
                let len = text.len();
                let mut head = [0u8; 14];
                head[0] = 0x81; // FIN, text
                let n = if len < 126 {
                    head[1] = 0x80 | len as u8;
                    2
                } else if len <= u16::MAX as usize {
                    head[1] = 0x80 | 126;
                    head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                    4
                } else {
                    head[1] = 0x80 | 127;
                    head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
                    10
                };
                // The mask key follows the length: four zero bytes.
                w.write_all(&head[..n + 4]).await?;
                w.write_all(text.as_bytes()).await?;
            }
            Tx::Line(w) => w.write_all(text.as_bytes()).await?,
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Tx::Ws(w) | Tx::Line(w) => w.flush().await?,
        }
        Ok(())
    }

    pub async fn send(&mut self, text: String) -> anyhow::Result<()> {
        self.feed(text).await?;
        self.flush().await
    }
}

impl Rx {
    /// Reads the next unit (a text frame, or a line without its end) into `buf`. False when
    /// the connection is closed.
    pub async fn next(&mut self, buf: &mut Vec<u8>) -> anyhow::Result<bool> {
        buf.clear();
        match self {
            Rx::Ws(r) => loop {
                // RFC 6455: server frames are not masked. Pings need no answer here: a run is
                // far shorter than the node's idle timeout.
                let b0 = match r.read_u8().await {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
                    Err(e) => return Err(e.into()),
                };
                let b1 = r.read_u8().await?;
                let len = match b1 & 0x7f {
                    126 => r.read_u16().await? as usize,
                    127 => r.read_u64().await? as usize,
                    n => n as usize,
                };
                if b1 & 0x80 != 0 {
                    let mut mask = [0u8; 4];
                    r.read_exact(&mut mask).await?;
                }
                let start = buf.len();
                buf.resize(start + len, 0);
                r.read_exact(&mut buf[start..]).await?;
                match b0 & 0x0f {
                    0x1 | 0x0 if b0 & 0x80 != 0 => return Ok(true),
                    0x1 | 0x0 => continue,
                    0x8 => return Ok(false),
                    _ => buf.truncate(start),
                }
            },
            Rx::Line(r) => {
                let n = r.read_until(b'\n', buf).await?;
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                Ok(n > 0)
            }
        }
    }

    /// Reads until a unit contains `marker`, answering IRC and NATS pings on `tx`.
    pub async fn until(&mut self, tx: &mut Tx, marker: &str, what: &str) -> anyhow::Result<()> {
        let mut buf = Vec::with_capacity(512);
        loop {
            if !self.next(&mut buf).await? {
                bail!("closed while waiting for {what}");
            }
            if contains(&buf, marker.as_bytes()) {
                return Ok(());
            }
            if buf.starts_with(b"PING") {
                let reply = if buf == b"PING" {
                    "PONG\r\n".to_string()
                } else {
                    format!("PONG{}\r\n", String::from_utf8_lossy(&buf[4..]))
                };
                tx.send(reply).await?;
            }
            if contains(&buf, br#""type":"error""#)
                || buf.starts_with(b"-ERR")
                || buf.starts_with(b"ERROR")
            {
                bail!("{what}: {}", String::from_utf8_lossy(&buf));
            }
        }
    }
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Switchboard sheds load it cannot make durable in time (`busy`): the sender is told, and
/// such a message is counted as refused, not lost. On the native protocol that is an error
/// frame (whose type comes first: a cheap test before the search); on the IRC face the
/// numeric 263 (RPL_TRYAGAIN), the line's command.
pub fn is_refusal(unit: &[u8]) -> bool {
    (unit.starts_with(br#"{"type":"error""#) && contains(unit, br#""code":"busy""#))
        || unit.split(|&b| b == b' ').nth(1) == Some(b"263")
}

/// The send time a text carries: `t=<nanoseconds>;` anywhere in the unit.
pub fn stamp(unit: &[u8]) -> Option<u64> {
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&unit[from..], b"t=") {
        let start = from + i + 2;
        let digits = unit[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 && unit.get(start + digits) == Some(&b';') {
            return std::str::from_utf8(&unit[start..start + digits])
                .ok()?
                .parse()
                .ok();
        }
        from = start;
    }
    None
}

/// A TCP connection from source address number `i` (127.0.0.1 + i % sources).
async fn tcp(server: SocketAddr, i: usize, sources: u8) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if sources > 1 {
        let ip = Ipv4Addr::new(127, 0, 0, 1 + (i % sources as usize) as u8);
        socket.bind(SocketAddr::new(ip.into(), 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Opens client `i`'s connection as `name` and registers it; a `privileged` IRC sender also
/// asks to be spared flood limits.
pub async fn connect(
    t: &Target,
    i: usize,
    name: &str,
    privileged: bool,
) -> anyhow::Result<(Tx, Rx)> {
    let server = t.server(i);
    let stream = tcp(server, i, t.sources).await?;
    match t.kind {
        Kind::Switchboard => {
            let (r, w) = stream.into_split();
            let mut r = BufReader::with_capacity(READ_BUFFER, r);
            let mut w = BufWriter::with_capacity(64 * 1024, w);
            // The upgrade (the accept key is not checked: this is a load generator).
            w.write_all(
                format!(
                    "GET /v1/ws HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Key: c3dpdGNoYm9hcmQtYmVuY2g=\r\n\
                     Sec-WebSocket-Version: 13\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
            w.flush().await?;
            let mut line = Vec::new();
            r.read_until(b'\n', &mut line).await?;
            if !contains(&line, b" 101 ") {
                bail!("upgrade refused: {}", String::from_utf8_lossy(&line).trim());
            }
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line).await? == 0 {
                    bail!("closed during the upgrade");
                }
                if line == b"\r\n" {
                    break;
                }
            }
            let (mut tx, mut rx) = (Tx::Ws(w), Rx::Ws(r));
            tx.send(format!(r#"{{"type":"hello","v":1,"name":"{name}"}}"#))
                .await?;
            rx.until(&mut tx, r#""type":"welcome""#, "welcome").await?;
            Ok((tx, rx))
        }
        Kind::Irc => {
            let (r, w) = stream.into_split();
            let (mut tx, mut rx) = (
                Tx::Line(BufWriter::with_capacity(64 * 1024, w)),
                Rx::Line(BufReader::with_capacity(READ_BUFFER, r)),
            );
            tx.send(format!("NICK {name}\r\nUSER {name} 0 * :{name}\r\n"))
                .await?;
            rx.until(&mut tx, " 001 ", "IRC registration (001)").await?;
            if let (true, Some((user, pass))) = (privileged, &t.irc_oper) {
                tx.send(format!("OPER {user} {pass}\r\n")).await?;
                rx.until(&mut tx, " 381 ", "IRC operator (381)").await?;
                tx.send(format!("MODE {name} +F\r\n")).await?;
            }
            Ok((tx, rx))
        }
        Kind::Nats => {
            let (r, w) = stream.into_split();
            let (mut tx, mut rx) = (
                Tx::Line(BufWriter::with_capacity(64 * 1024, w)),
                Rx::Line(BufReader::with_capacity(READ_BUFFER, r)),
            );
            rx.until(&mut tx, "INFO", "NATS INFO").await?;
            tx.send(format!(
                "CONNECT {{\"verbose\":false,\"pedantic\":false,\"name\":\"{name}\"}}\r\nSUB user.{name} 0\r\nPING\r\n"
            ))
            .await?;
            rx.until(&mut tx, "PONG", "NATS PONG").await?;
            Ok((tx, rx))
        }
    }
}

/// Joins `room` and waits until the server confirms it.
pub async fn join(kind: Kind, tx: &mut Tx, rx: &mut Rx, room: &str) -> anyhow::Result<()> {
    match kind {
        Kind::Switchboard => {
            tx.send(format!(r#"{{"type":"join","room":"{room}","ref":"j"}}"#))
                .await?;
            rx.until(tx, r#""type":"joined""#, "joined").await
        }
        Kind::Irc => {
            tx.send(format!("JOIN #{room}\r\n")).await?;
            // 366: the end of the NAMES list that follows a JOIN.
            rx.until(tx, " 366 ", "JOIN (366)").await
        }
        Kind::Nats => {
            tx.send(format!("SUB room.{room} 1\r\nPING\r\n")).await?;
            rx.until(tx, "PONG", "NATS PONG").await
        }
    }
}

/// A message to everyone in `room`.
pub fn room_message(kind: Kind, room: &str, text: &str) -> String {
    match kind {
        Kind::Switchboard => format!(r#"{{"type":"send","room":"{room}","text":"{text}"}}"#),
        Kind::Irc => format!("PRIVMSG #{room} :{text}\r\n"),
        Kind::Nats => format!("PUB room.{room} {}\r\n{text}\r\n", text.len()),
    }
}

/// A direct message to the user `to`.
pub fn direct_message(kind: Kind, to: &str, text: &str) -> String {
    match kind {
        Kind::Switchboard => format!(r#"{{"type":"send","to":"{to}","text":"{text}"}}"#),
        Kind::Irc => format!("PRIVMSG {to} :{text}\r\n"),
        Kind::Nats => format!("PUB user.{to} {}\r\n{text}\r\n", text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_found_in_every_protocol() {
        assert_eq!(stamp(br#"{"type":"message","text":"t=123;xx"}"#), Some(123));
        assert_eq!(stamp(b":a!a@h PRIVMSG #r :t=77;xxxx"), Some(77));
        assert_eq!(stamp(b"t=5;"), Some(5));
        assert_eq!(stamp(b"MSG room.r 1 20"), None);
        assert_eq!(stamp(b"at=no;t=9;"), Some(9));
    }

    #[test]
    fn refusals_are_told_from_deliveries_on_both_faces() {
        let native = br#"{"type":"error","code":"busy","message":"the node is writing a backlog to disk; retry shortly","ref":"7"}"#;
        assert!(is_refusal(native));
        let other_error =
            br#"{"type":"error","code":"not_found","message":"no such user","ref":"7"}"#;
        assert!(!is_refusal(other_error));
        let irc = b":n0 263 d3 PRIVMSG :the node is writing a backlog to disk; retry shortly";
        assert!(is_refusal(irc));
        // A delivery that merely quotes the numeric is still a delivery.
        let quoted = b":d2!d2@switchboard PRIVMSG d3 :t=1; 263 PRIVMSG";
        assert!(!is_refusal(quoted));
        let message = br#"{"type":"message","from":"d2","to":"d3","text":"t=1; busy"}"#;
        assert!(!is_refusal(message));
    }
}
