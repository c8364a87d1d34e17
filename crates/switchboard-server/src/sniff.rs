//! A listener that looks at the head of each plain connection before HTTP does: seed 003's
//! console client sends an HTTP upgrade request with `Client-Type: console` and then speaks raw
//! JSON without waiting for an answer, so it must be taken off before the HTTP server would
//! reply. Every other connection goes on to axum untouched (the peek consumes nothing).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::lobby::{Seed, TextsIn, TextsOut};
use crate::prepared::PreparedListener;
use crate::shared::Shared;

/// How much of a request head is looked at.
const HEAD: usize = 8 * 1024;
/// How long to wait for a request head before handing the connection on anyway.
const PEEK_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest raw JSON object a console client may send.
const MAX_OBJECT: usize = 64 * 1024;

/// A plain listener that takes seed 003's console clients off before HTTP.
pub type SniffListener = PreparedListener<TcpStream>;

/// Serves plain HTTP on `listener`, diverting seed 003's console clients.
pub(crate) fn listener(
    listener: TcpListener,
    shared: Arc<Shared>,
) -> std::io::Result<SniffListener> {
    PreparedListener::new(listener, move |tcp, addr| {
        let shared = shared.clone();
        async move {
            match console_head(&tcp).await {
                Some(head_len) => {
                    console(shared, tcp, head_len, addr).await;
                    None
                }
                None => Some(tcp),
            }
        }
    })
}

/// The length of the request head when it is seed 003's console client's.
async fn console_head(tcp: &TcpStream) -> Option<usize> {
    let mut buf = vec![0u8; HEAD];
    let deadline = tokio::time::Instant::now() + PEEK_TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        let seen = &buf[..n];
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
            let console = head.lines().any(|l| {
                l.split_once(':')
                    .is_some_and(|(k, v)| k.trim() == "client-type" && v.trim() == "console")
            });
            return console.then_some(end + 4);
        }
        if n == HEAD || !seen.starts_with(b"GET") && n >= 3 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Seed 003's console client: raw JSON objects of any length both ways, after its request.
async fn console(shared: Arc<Shared>, mut tcp: TcpStream, head_len: usize, addr: SocketAddr) {
    let mut head = vec![0u8; head_len];
    if tcp.read_exact(&mut head).await.is_err() {
        return;
    }
    let uuid = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|path| path.split_once("uuid="))
        .map(|(_, rest)| rest.split('&').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let (rx, tx) = tcp.into_split();
    // A stream of JSON objects: read into a buffer, take every complete object out of it.
    let texts =
        futures_util::stream::unfold((rx, Vec::<u8>::new()), |(mut rx, mut buf)| async move {
            loop {
                let mut objects =
                    serde_json::Deserializer::from_slice(&buf).into_iter::<serde_json::Value>();
                match objects.next() {
                    Some(Ok(v)) => {
                        let used = objects.byte_offset();
                        buf.drain(..used);
                        return Some((v.to_string(), (rx, buf)));
                    }
                    Some(Err(e)) if !e.is_eof() => return None,
                    _ => {}
                }
                if buf.len() > MAX_OBJECT {
                    return None;
                }
                let mut chunk = [0u8; 4096];
                match rx.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
    let out = futures_util::sink::unfold(tx, |mut tx, text: String| async move {
        tx.write_all(text.as_bytes()).await?;
        Ok::<_, anyhow::Error>(tx)
    });
    let texts: TextsIn = Box::pin(texts);
    let out: TextsOut = Box::pin(out);
    crate::lobby::run_texts(shared, texts, out, Seed::Json { uuid }, addr).await;
}
