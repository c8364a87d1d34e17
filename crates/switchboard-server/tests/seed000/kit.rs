//! The seed 000 test kit, written from ../shared/seeds/WIRE-NOTES.md: an original client and
//! an original server (the peer side of a link), byte for byte.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{TestServer, WAIT};

/// A value in a NUL-padded field of `width` bytes.
pub fn field(value: &[u8], width: usize) -> Vec<u8> {
    let mut f = value.to_vec();
    f.resize(width, 0);
    f
}

/// A field's text: up to the first NUL.
pub fn text(f: &[u8]) -> String {
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    String::from_utf8(f[..end].to_vec()).unwrap()
}

/// An original client: role byte 2 and the user's name; the listener answers nothing.
pub async fn client(s: &TestServer, user: &str) -> TcpStream {
    let mut c = TcpStream::connect(s.contacts_addr.unwrap()).await.unwrap();
    let mut hello = vec![2];
    hello.extend(field(user.as_bytes(), 256));
    c.write_all(&hello).await.unwrap();
    c
}

/// A client's Update.
pub fn update(name: &[u8], phone: &str) -> Vec<u8> {
    let mut f = vec![1];
    f.extend(field(name, 256));
    f.extend(field(phone.as_bytes(), 20));
    f
}

/// A client's Delete.
pub fn delete(name: &[u8]) -> Vec<u8> {
    let mut f = vec![2];
    f.extend(field(name, 256));
    f
}

/// A client's ListAll: (name bytes, phone).
pub async fn list_all(c: &mut TcpStream) -> Vec<(Vec<u8>, String)> {
    c.write_all(&[3]).await.unwrap();
    let n = tokio::time::timeout(WAIT, c.read_u32())
        .await
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let mut name = vec![0u8; 256];
        let mut phone = vec![0u8; 20];
        c.read_exact(&mut name).await.unwrap();
        c.read_exact(&mut phone).await.unwrap();
        let end = name.iter().position(|&b| b == 0).unwrap_or(256);
        name.truncate(end);
        out.push((name, text(&phone)));
    }
    out
}

/// The contact names a client's ListAll shows.
pub async fn names(c: &mut TcpStream) -> Vec<String> {
    list_all(c)
        .await
        .into_iter()
        .map(|(n, _)| String::from_utf8(n).unwrap())
        .collect()
}

/// Polls a client's ListAll until `ok` holds; panics after [`WAIT`].
pub async fn until_listed(c: &mut TcpStream, what: &str, ok: impl Fn(&[String]) -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let now = names(c).await;
        if ok(&now) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {what}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the other side has closed a socket (within [`WAIT`]).
pub async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {} // heartbeats and the like
        }
    }
}

/// Ops the node has written to its store.
pub async fn ops(s: &TestServer) -> u64 {
    crate::common::metric(s, "switchboard_store_ops_total").await as u64
}

/// One frame a linked server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Update {
        clock: u32,
        user: String,
        name: String,
        phone: String,
    },
    Delete {
        clock: u32,
        user: String,
        name: String,
    },
    HeartBeat {
        clock: u32,
    },
    AskForUpdate,
}

/// An original server's side of a link.
pub struct Original {
    pub sock: TcpStream,
}

impl Original {
    /// Dials a node as an original server named `name`; returns the link and the node's name.
    pub async fn dial(s: &TestServer, name: &str) -> (Original, String) {
        let mut sock = TcpStream::connect(s.contacts_addr.unwrap()).await.unwrap();
        let mut hello = vec![1];
        hello.extend(field(name.as_bytes(), 256));
        sock.write_all(&hello).await.unwrap();
        let mut theirs = vec![0u8; 256];
        tokio::time::timeout(WAIT, sock.read_exact(&mut theirs))
            .await
            .unwrap()
            .unwrap();
        (Original { sock }, text(&theirs))
    }

    /// Like [`Original::dial`], with a 4 KiB receive buffer: an original that stops reading
    /// soon blocks the node's writer for the link.
    pub async fn dial_narrow(s: &TestServer, name: &str) -> Original {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut sock = socket.connect(s.contacts_addr.unwrap()).await.unwrap();
        let mut hello = vec![1];
        hello.extend(field(name.as_bytes(), 256));
        sock.write_all(&hello).await.unwrap();
        let mut theirs = vec![0u8; 256];
        sock.read_exact(&mut theirs).await.unwrap();
        Original { sock }
    }

    /// Accepts a node's dial as the original named `name`; returns the link and the node's
    /// name from its handshake.
    pub async fn accept(listener: &TcpListener, name: &str) -> (Original, String) {
        let (mut sock, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the node never dialled")
            .unwrap();
        let mut hello = vec![0u8; 257];
        sock.read_exact(&mut hello).await.unwrap();
        assert_eq!(hello[0], 1, "a node dials as a server");
        sock.write_all(&field(name.as_bytes(), 256)).await.unwrap();
        (Original { sock }, text(&hello[1..]))
    }

    /// Sends an Update (`phone` given) or a Delete.
    pub async fn send(&mut self, clock: u32, user: &[u8], name: &str, phone: Option<&str>) {
        let mut f = vec![if phone.is_some() { 1 } else { 2 }];
        f.extend_from_slice(&clock.to_be_bytes());
        f.extend(field(user, 256));
        f.extend(field(name.as_bytes(), 256));
        if let Some(p) = phone {
            f.extend(field(p.as_bytes(), 20));
        }
        self.sock.write_all(&f).await.unwrap();
    }

    /// Sends a HeartBeat.
    pub async fn heartbeat(&mut self, clock: u32) {
        let mut f = vec![3, 1];
        f.extend_from_slice(&clock.to_be_bytes());
        self.sock.write_all(&f).await.unwrap();
    }

    /// The next frame, if one starts within `within`. Panics on UpdateClock (which must
    /// never be sent to an original: it would not consume the clock) or any other byte.
    pub async fn next(&mut self, within: Duration) -> Option<Frame> {
        let cmd = tokio::time::timeout(within, self.sock.read_u8())
            .await
            .ok()?;
        let cmd = cmd.expect("the node closed the link");
        let s = &mut self.sock;
        Some(match cmd {
            1 | 2 => {
                let clock = s.read_u32().await.unwrap();
                let mut f = vec![0u8; if cmd == 1 { 532 } else { 512 }];
                s.read_exact(&mut f).await.unwrap();
                let (user, name) = (text(&f[..256]), text(&f[256..512]));
                match cmd {
                    1 => Frame::Update {
                        clock,
                        user,
                        name,
                        phone: text(&f[512..]),
                    },
                    _ => Frame::Delete { clock, user, name },
                }
            }
            3 => {
                assert_eq!(s.read_u8().await.unwrap(), 1, "health status");
                Frame::HeartBeat {
                    clock: s.read_u32().await.unwrap(),
                }
            }
            5 => Frame::AskForUpdate,
            other => panic!("unexpected command byte {other} (UpdateClock must never be sent)"),
        })
    }

    /// Every frame that starts within `window` from now.
    pub async fn during(&mut self, window: Duration) -> Vec<Frame> {
        let deadline = tokio::time::Instant::now() + window;
        let mut all = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(f) if !left.is_zero() => all.push(f),
                _ => return all,
            }
        }
    }

    /// Frames until one matches `ok` (within [`WAIT`] in all), which is returned with the
    /// frames before it.
    pub async fn until(&mut self, ok: impl Fn(&Frame) -> bool) -> (Frame, Vec<Frame>) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self.next(left).await.expect("the awaited frame never came");
            if ok(&f) {
                return (f, before);
            }
            before.push(f);
        }
    }
}

/// Whether a frame is about contact `name`.
pub fn about(f: &Frame, name: &str) -> bool {
    matches!(f, Frame::Update { name: n, .. } | Frame::Delete { name: n, .. } if n == name)
}
