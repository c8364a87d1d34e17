//! Clients of the seed programs for the gateway tests: seed 001's text WebSocket and seed
//! 002's one-message TCP connections.

use super::WAIT;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A seed 001 client named `name`.
pub async fn seed001(addr: std::net::SocketAddr, name: &str) -> Ws {
    let url = format!("ws://{addr}/ws?name={name}");
    tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap()
        .0
}

/// The next text frame.
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("closed: {other:?}"),
        }
    }
}

/// Sends one seed 002 message on its own connection; returns what the server answered.
pub async fn relay_send(server: std::net::SocketAddr, text: &str) -> String {
    relay_send_from("127.0.0.1", server, text).await
}

/// The next message dialled to a relay client's own listener.
pub async fn relay_inbox(listener: &tokio::net::TcpListener) -> String {
    use tokio::io::AsyncReadExt;
    let (mut s, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut text))
        .await
        .unwrap()
        .unwrap();
    text
}

/// Sends one seed 002 message from a given source address.
pub async fn relay_send_from(source: &str, server: std::net::SocketAddr, text: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut s = socket.connect(server).await.unwrap();
    s.write_all(text.as_bytes()).await.unwrap();
    s.shutdown().await.unwrap();
    let mut reply = String::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_string(&mut reply)).await;
    reply
}
