//! A typed client of the native `/v1/ws` protocol, used by the console client, the
//! benchmark and the tests, and the console client's command language.

pub mod console;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchboard_proto::cursor::{advance, covers};
use switchboard_proto::server::{ChatMessage, DmInfo};
use switchboard_proto::{
    decode_server, encode_client, ClientMsg, Cursor, ErrorCode, Millis, Position, ServerMsg,
    PROTOCOL_VERSION,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("the node sent a frame this client does not understand: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("{code}: {message}")]
    Refused { code: ErrorCode, message: String },
    #[error("the connection closed")]
    Closed,
    #[error("timed out waiting for the node")]
    Timeout,
    #[error("unexpected reply: {0:?}")]
    Unexpected(Box<ServerMsg>),
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// What `welcome` told the client.
#[derive(Debug, Clone)]
pub struct Welcome {
    pub node: String,
    pub name: String,
    pub registered: bool,
    pub session: u64,
    pub dms: Vec<DmInfo>,
}

/// A sent message as its acknowledgement describes it: on disk, with its id and place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The message's id (`origin-oseq`), the same in every recipient's copy.
    pub id: String,
    /// The stream it belongs to: `#room` or `@alice:bob`.
    pub stream: String,
    /// Its sequence number in the stream's order: the Lamport clock it was accepted at
    /// (ties broken by origin), as in the recipients' copies.
    pub lamport: u64,
    /// When the node accepted it, in milliseconds since the Unix epoch.
    pub ts: Millis,
    /// A direct message kept for an offline registered user, delivered at their sign-in.
    pub queued: bool,
}

/// A connection to a node. Frames that arrive while a call waits for its reply are kept,
/// in order, for [`Client::recv`].
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    queued: VecDeque<ServerMsg>,
    next_ref: u64,
}

/// How long typed calls wait for their reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    /// Opens a WebSocket to `url` (`ws://host:port` or `wss://...`, with or without the
    /// `/v1/ws` path). `wss://` trusts the usual web roots.
    pub async fn connect(url: &str) -> Result<Client> {
        Client::connect_tls(url, None).await
    }

    /// Like [`Client::connect`], with the TLS configuration to use for `wss://` (for a node
    /// whose certificate comes from an authority of its own).
    pub async fn connect_tls(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Client> {
        let url = ws_url(url);
        let connector = tls.map(tokio_tungstenite::Connector::Rustls);
        let (ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, true, connector)
                .await?;
        Ok(Client {
            ws,
            queued: VecDeque::new(),
            next_ref: 1,
        })
    }

    /// Connects and says hello.
    pub async fn connect_as(
        url: &str,
        name: &str,
        password: Option<&str>,
    ) -> Result<(Client, Welcome)> {
        Client::connect_as_tls(url, name, password, None).await
    }

    /// Connects with a TLS configuration and says hello.
    pub async fn connect_as_tls(
        url: &str,
        name: &str,
        password: Option<&str>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<(Client, Welcome)> {
        let mut c = Client::connect_tls(url, tls).await?;
        let w = c.hello(name, password).await?;
        Ok((c, w))
    }

    /// Sends a message.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<()> {
        self.send_raw(&encode_client(msg)).await
    }

    /// Sends any text frame, valid or not (for tests of bad input).
    pub async fn send_raw(&mut self, text: &str) -> Result<()> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends a raw WebSocket message (binary frames, bad UTF-8...), for tests.
    pub async fn send_ws(&mut self, msg: Message) -> Result<()> {
        self.ws.send(msg).await?;
        Ok(())
    }

    /// The next message from the node, or `None` once the connection is closed.
    pub async fn recv(&mut self) -> Result<Option<ServerMsg>> {
        if let Some(m) = self.queued.pop_front() {
            return Ok(Some(m));
        }
        self.read().await
    }

    /// Like [`Client::recv`], but gives up after `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<ServerMsg>> {
        tokio::time::timeout(timeout, self.recv())
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn read(&mut self) -> Result<Option<ServerMsg>> {
        loop {
            match self.ws.next().await {
                None => return Ok(None),
                Some(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed))
                | Some(Err(tokio_tungstenite::tungstenite::Error::AlreadyClosed)) => {
                    return Ok(None)
                }
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => return Ok(Some(decode_server(&t)?)),
                Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Waits for the first message `pick` accepts, keeping the others for `recv`, in order.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&ServerMsg) -> Option<T>,
    ) -> Result<T> {
        if let Some(pos) = self.queued.iter().position(|m| pick(m).is_some()) {
            let m = self.queued.remove(pos).expect("position is valid");
            return Ok(pick(&m).expect("picked above"));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let m = tokio::time::timeout_at(deadline, self.read())
                .await
                .map_err(|_| ClientError::Timeout)??
                .ok_or(ClientError::Closed)?;
            if let Some(t) = pick(&m) {
                return Ok(t);
            }
            self.queued.push_back(m);
        }
    }

    /// Waits for the reply carrying `reff` (or an error with it).
    async fn reply(&mut self, reff: &str) -> Result<ServerMsg> {
        let m = self
            .wait_for(REPLY_TIMEOUT, |m| {
                (reply_ref(m) == Some(reff)).then(|| m.clone())
            })
            .await?;
        match m {
            ServerMsg::Error { code, message, .. } => Err(ClientError::Refused { code, message }),
            m => Ok(m),
        }
    }

    fn new_ref(&mut self) -> String {
        self.next_ref += 1;
        format!("r{}", self.next_ref)
    }

    /// Says hello and waits for `welcome` (or the refusal).
    pub async fn hello(&mut self, name: &str, password: Option<&str>) -> Result<Welcome> {
        self.send(&ClientMsg::Hello {
            v: PROTOCOL_VERSION,
            name: name.to_string(),
            password: password.map(str::to_string),
            client: Some(concat!("switchboard-client/", env!("CARGO_PKG_VERSION")).into()),
            away_events: true,
        })
        .await?;
        let m = self
            .wait_for(REPLY_TIMEOUT, |m| {
                matches!(m, ServerMsg::Welcome { .. } | ServerMsg::Error { .. }).then(|| m.clone())
            })
            .await?;
        match m {
            ServerMsg::Welcome {
                node,
                name,
                registered,
                session,
                dms,
                ..
            } => Ok(Welcome {
                node,
                name,
                registered,
                session,
                dms,
            }),
            ServerMsg::Error { code, message, .. } => Err(ClientError::Refused { code, message }),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Joins a room; returns the `joined` reply.
    pub async fn join(&mut self, room: &str) -> Result<ServerMsg> {
        let reff = self.new_ref();
        self.send(&ClientMsg::Join {
            room: room.to_string(),
            reff: Some(reff.clone()),
        })
        .await?;
        self.reply(&reff).await
    }

    /// Sends a text to a room or a user and waits for its acknowledgement: `(id, queued)`.
    /// [`Client::say_acked`] gives the whole acknowledgement.
    pub async fn say(&mut self, target: Target<'_>, text: &str) -> Result<(String, bool)> {
        let sent = self.say_acked(target, text).await?;
        Ok((sent.id, sent.queued))
    }

    /// Sends a text to a room or a user and waits for its acknowledgement, which tells where
    /// the message stands in its stream and when the node accepted it.
    pub async fn say_acked(&mut self, target: Target<'_>, text: &str) -> Result<Sent> {
        let reff = self.new_ref();
        let (room, to) = match target {
            Target::Room(r) => (Some(r.to_string()), None),
            Target::User(u) => (None, Some(u.to_string())),
        };
        self.send(&ClientMsg::Send {
            room,
            to,
            text: text.to_string(),
            reff: Some(reff.clone()),
        })
        .await?;
        match self.reply(&reff).await? {
            ServerMsg::Ack {
                id,
                stream,
                lamport,
                ts,
                queued,
                ..
            } => Ok(Sent {
                id,
                stream,
                lamport,
                ts,
                queued,
            }),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Sends any request that carries a `ref` and waits for its reply.
    pub async fn request(&mut self, mut msg: ClientMsg) -> Result<ServerMsg> {
        let reff = self.new_ref();
        msg.set_reff(reff.clone());
        self.send(&msg).await?;
        self.reply(&reff).await
    }

    /// One page of history.
    pub async fn history(
        &mut self,
        target: Target<'_>,
        before: Option<Position>,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<(Vec<ChatMessage>, bool)> {
        let (room, with) = match target {
            Target::Room(r) => (Some(r.to_string()), None),
            Target::User(u) => (None, Some(u.to_string())),
        };
        let msg = ClientMsg::History {
            room,
            with,
            before,
            after,
            limit: Some(limit),
            reff: None,
        };
        match self.request(msg).await? {
            ServerMsg::History { messages, more, .. } => Ok((messages, more)),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    /// Everything in a stream that `since` does not cover and `upto` does, in stream order.
    pub async fn catch_up(
        &mut self,
        target: Target<'_>,
        since: &Cursor,
        upto: &Cursor,
    ) -> Result<Vec<ChatMessage>> {
        let mut out = Vec::new();
        let mut cursor = since.clone();
        loop {
            let (page, more) = self
                .history(target, None, Some(cursor.clone()), 200)
                .await?;
            if page.is_empty() {
                break;
            }
            for m in page {
                advance(&mut cursor, &m);
                if covers(upto, &m) {
                    out.push(m);
                }
            }
            if !more {
                break;
            }
        }
        Ok(out)
    }

    /// Rejoins a room after a reconnect and returns exactly the messages missed since
    /// `since`: those the join's cursor covers come from history, the others arrive live
    /// through `recv`, so nothing is missed and nothing comes twice.
    pub async fn resume_room(
        &mut self,
        room: &str,
        since: &Cursor,
    ) -> Result<(Cursor, Vec<ChatMessage>)> {
        let joined = match self.join(room).await? {
            ServerMsg::Joined { cursor, .. } => cursor,
            other => return Err(ClientError::Unexpected(Box::new(other))),
        };
        let missed = self.catch_up(Target::Room(room), since, &joined).await?;
        Ok((joined, missed))
    }

    /// Says goodbye and closes.
    pub async fn bye(mut self) -> Result<()> {
        self.send(&ClientMsg::Bye { reason: None }).await?;
        let _ = self.ws.close(None).await;
        Ok(())
    }
}

/// Where a message goes.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Room(&'a str),
    User(&'a str),
}

/// Adds `ws://` and `/v1/ws` where they are missing.
pub fn ws_url(url: &str) -> String {
    let with_scheme = if url.contains("://") {
        url.to_string()
    } else {
        format!("ws://{url}")
    };
    let after_scheme = with_scheme.split_once("://").map_or("", |(_, rest)| rest);
    if after_scheme.contains('/') {
        with_scheme
    } else {
        format!("{with_scheme}/v1/ws")
    }
}

/// The `ref` a reply carries.
pub fn reply_ref(m: &ServerMsg) -> Option<&str> {
    match m {
        ServerMsg::Joined { reff, .. }
        | ServerMsg::Left { reff, .. }
        | ServerMsg::Ack { reff, .. }
        | ServerMsg::History { reff, .. }
        | ServerMsg::Rooms { reff, .. }
        | ServerMsg::Topic { reff, .. }
        | ServerMsg::Who { reff, .. }
        | ServerMsg::Whois { reff, .. }
        | ServerMsg::Away { reff, .. }
        | ServerMsg::Pong { reff }
        | ServerMsg::Error { reff, .. }
        | ServerMsg::Contacts { reff, .. }
        | ServerMsg::Contact { reff, .. } => reff.as_deref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(ws_url("ws://h:1"), "ws://h:1/v1/ws");
        assert_eq!(ws_url("h:1"), "ws://h:1/v1/ws");
        assert_eq!(ws_url("ws://h:1/v1/ws"), "ws://h:1/v1/ws");
        assert_eq!(ws_url("wss://h/other"), "wss://h/other");
    }
}
