//! A fault-injecting TCP proxy in front of one node's peer port, for partitions between node
//! processes.
//!
//! Every node advertises its proxy (`--advertise`) and is given the others' proxies as
//! `--peer`, so every peer link, whoever dials it, goes through the proxy of the node it
//! dials. One proxy thus carries links from several dialers; to cut some and not others it
//! reads who dials from the handshake: the dialer's first WebSocket frame is its `prove`,
//! which names it (docs/cluster.md, "Handshake"). A cut dialer's bytes are held, not
//! refused: the link goes silent as behind a real partition, and both ends must notice by
//! their heartbeat timeouts. When the partition heals, connections held during it are closed
//! (as TCP gives up on them) and new ones flow.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a pump waits on a read before looking at the partition again.
const POLL: Duration = Duration::from_millis(20);

/// The largest first frame the proxy reads to find the dialer's name (a `prove` is ~300
/// bytes); past it, the connection is passed through unnamed.
const MAX_SNIFF: usize = 64 * 1024;

/// A proxy in front of one node (see the module documentation).
pub struct PeerProxy {
    pub addr: SocketAddr,
    /// Dialers whose links to this node are cut.
    cut: Arc<Mutex<BTreeSet<String>>>,
}

/// One proxied connection: who dialled it (once known), and whether the partition held it.
struct Conn {
    dialer: Mutex<Option<String>>,
    held: AtomicBool,
}

impl PeerProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `target`.
    pub fn start(target: SocketAddr) -> PeerProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(Mutex::new(BTreeSet::new()));
        let cuts = cut.clone();
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                let cut = cuts.clone();
                std::thread::spawn(move || relay(inbound, target, cut));
            }
        });
        PeerProxy { addr, cut }
    }

    /// `ws://` and the proxy's address: what the node advertises and its peers dial.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Cuts the links dialled by these nodes to this proxy's node.
    pub fn cut(&self, dialers: &[&str]) {
        let mut cut = self.cut.lock().unwrap();
        cut.extend(dialers.iter().map(|d| d.to_string()));
    }

    /// Lets every dialer through again.
    pub fn heal(&self) {
        self.cut.lock().unwrap().clear();
    }
}

/// Carries one connection both ways until either side closes or a held connection heals.
fn relay(inbound: TcpStream, target: SocketAddr, cut: Arc<Mutex<BTreeSet<String>>>) {
    let Ok(outbound) = TcpStream::connect(target) else {
        return;
    };
    for s in [&inbound, &outbound] {
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(POLL)).unwrap();
    }
    let conn = Arc::new(Conn {
        dialer: Mutex::new(None),
        held: AtomicBool::new(false),
    });
    let (from_node, to_dialer) = (outbound.try_clone().unwrap(), inbound.try_clone().unwrap());
    let (c, k) = (conn.clone(), cut.clone());
    let back = std::thread::spawn(move || pump(from_node, to_dialer, &c, &k, false));
    pump(inbound, outbound, &conn, &cut, true);
    let _ = back.join();
}

/// Whether the partition holds this connection now. Marks it held: once held, it closes
/// when the partition heals instead of carrying on.
fn blocked(conn: &Conn, cut: &Mutex<BTreeSet<String>>) -> bool {
    let dialer = conn.dialer.lock().unwrap();
    let is_cut = dialer
        .as_ref()
        .is_some_and(|d| cut.lock().unwrap().contains(d));
    if is_cut {
        conn.held.store(true, Ordering::SeqCst);
    }
    is_cut
}

/// Copies `from` to `to`. The dialer's direction (`sniff`) first holds back the first frame
/// after the HTTP upgrade request until it has named the dialer.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    conn: &Conn,
    cut: &Mutex<BTreeSet<String>>,
    sniff: bool,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut naming = sniff;
    let mut head_sent = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if blocked(conn, cut) {
            std::thread::sleep(POLL);
            continue;
        }
        if conn.held.load(Ordering::SeqCst) {
            break; // healed: this connection died in the partition
        }
        if !pending.is_empty() && !naming {
            if to.write_all(&pending).is_err() {
                break;
            }
            pending.clear();
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if naming && !head_sent {
            // The upgrade request goes at once; the first frame waits to be read whole.
            if let Some(end) = find(&pending, b"\r\n\r\n") {
                let head: Vec<u8> = pending.drain(..end + 4).collect();
                if to.write_all(&head).is_err() {
                    break;
                }
                head_sent = true;
            }
        }
        if naming && head_sent {
            if let Some(name) = dialer_of(&pending) {
                *conn.dialer.lock().unwrap() = Some(name);
                naming = false;
            } else if pending.len() > MAX_SNIFF {
                naming = false;
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `node` of a complete first WebSocket frame (masked, as a client's are) at the start of
/// `bytes`, once the upgrade request has gone: `Some("?")` for a frame that names nobody.
fn dialer_of(bytes: &[u8]) -> Option<String> {
    if bytes.len() < 2 {
        return None;
    }
    let masked = bytes[1] & 0x80 != 0;
    let (len, mut at) = match bytes[1] & 0x7f {
        126 => (
            u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mask: Vec<u8> = if masked {
        at += 4;
        bytes.get(at - 4..at)?.to_vec()
    } else {
        vec![0; 4]
    };
    let payload: Vec<u8> = bytes
        .get(at..at + len)?
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    let value: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
    Some(value["node"].as_str().unwrap_or("?").to_string())
}
