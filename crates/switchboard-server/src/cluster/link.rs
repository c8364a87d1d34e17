//! One peer link: the handshake on either side, then heartbeats both ways until the link
//! closes. Accepted links arrive through axum, dialled ones through tokio-tungstenite; both
//! are reduced to a stream and a sink of text frames so the link runs the same code.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message as AxMessage, WebSocket};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use switchboard_proto::peer::{PeerMsg, MAX_PEER_FRAME_BYTES, PEER_VERSION};
use tokio_tungstenite::tungstenite::Message as TgMessage;

use super::auth;
use crate::conn::now_ms;
use crate::shared::Shared;

type TextStream = Pin<Box<dyn Stream<Item = anyhow::Result<String>> + Send>>;
type TextSink = Pin<Box<dyn Sink<String, Error = anyhow::Error> + Send>>;

/// Time for the other side to answer each handshake step.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

fn from_axum(ws: WebSocket) -> (TextStream, TextSink) {
    let (sink, stream) = ws.split();
    let stream = stream.filter_map(|m| async move {
        match m {
            Ok(AxMessage::Text(t)) => Some(Ok(t.to_string())),
            Ok(AxMessage::Close(_)) => Some(Err(anyhow::anyhow!("closed"))),
            Ok(_) => None,
            Err(e) => Some(Err(e.into())),
        }
    });
    let sink = sink
        .sink_map_err(anyhow::Error::from)
        .with(|s: String| async move { Ok::<_, anyhow::Error>(AxMessage::Text(s.into())) });
    (Box::pin(stream), Box::pin(sink))
}

fn from_tungstenite<S>(ws: tokio_tungstenite::WebSocketStream<S>) -> (TextStream, TextSink)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let stream = stream.filter_map(|m| async move {
        match m {
            Ok(TgMessage::Text(t)) => Some(Ok(t.to_string())),
            Ok(TgMessage::Close(_)) => Some(Err(anyhow::anyhow!("closed"))),
            Ok(_) => None,
            Err(e) => Some(Err(e.into())),
        }
    });
    let sink = sink
        .sink_map_err(anyhow::Error::from)
        .with(|s: String| async move { Ok::<_, anyhow::Error>(TgMessage::text(s)) });
    (Box::pin(stream), Box::pin(sink))
}

async fn send(tx: &mut TextSink, msg: &PeerMsg) -> anyhow::Result<()> {
    tx.send(serde_json::to_string(msg)?).await
}

async fn recv(rx: &mut TextStream) -> anyhow::Result<PeerMsg> {
    let text = tokio::time::timeout(HANDSHAKE_TIMEOUT, rx.next())
        .await
        .map_err(|_| anyhow::anyhow!("handshake timed out"))?
        .ok_or_else(|| anyhow::anyhow!("closed during the handshake"))??;
    Ok(serde_json::from_str(&text)?)
}

/// The acceptor's side of the handshake, for a WebSocket upgraded at `/v1/peer`.
pub(crate) async fn accept(shared: Arc<Shared>, ws: WebSocket) {
    let (mut rx, mut tx) = from_axum(ws);
    let me = shared.cfg.node_name.clone();
    let Some(secret) = shared.cluster.secret.clone() else {
        let reason = "this node has no cluster secret: clustering is off".to_string();
        let _ = send(&mut tx, &PeerMsg::Refused { reason }).await;
        return;
    };
    let nonce = auth::nonce();
    let challenge = PeerMsg::Challenge {
        v: PEER_VERSION,
        node: me.clone(),
        nonce: nonce.clone(),
    };
    if send(&mut tx, &challenge).await.is_err() {
        return;
    }
    let (node, url, their_nonce) = match recv(&mut rx).await {
        Ok(PeerMsg::Prove {
            v,
            node,
            url,
            nonce: theirs,
            mac,
        }) => {
            let refusal = if v != PEER_VERSION {
                Some(format!("peer protocol version {v} is not {PEER_VERSION}"))
            } else if node == me || switchboard_proto::validate_name(&node).is_err() {
                Some(format!(
                    "node name {node:?} is invalid or already this node's"
                ))
            } else if !auth::verify(&secret, &nonce, &node, &me, &mac) {
                Some("wrong cluster secret".to_string())
            } else {
                None
            };
            if let Some(reason) = refusal {
                tracing::warn!(%node, %reason, "refusing a peer");
                let _ = send(&mut tx, &PeerMsg::Refused { reason }).await;
                return;
            }
            (node, url, theirs)
        }
        Ok(other) => {
            tracing::warn!(?other, "peer handshake: expected prove");
            return;
        }
        Err(e) => {
            tracing::info!(error = %e, "peer handshake failed");
            return;
        }
    };
    let members = shared
        .cluster
        .membership
        .lock()
        .expect("membership lock")
        .members();
    let accepted = PeerMsg::Accepted {
        node: me.clone(),
        mac: auth::prove(&secret, &their_nonce, &me, &node),
        members,
    };
    if send(&mut tx, &accepted).await.is_err() {
        return;
    }
    run(shared, node.clone(), url, node, rx, tx).await;
}

/// The dialler's side: connect to `url`, prove ourselves, check the acceptor's proof.
pub(crate) async fn dial(shared: Arc<Shared>, url: String) {
    match try_dial(&shared, &url).await {
        Ok((node, rx, tx)) => {
            let me = shared.cfg.node_name.clone();
            run(shared, node, url, me, rx, tx).await;
        }
        Err(e) => {
            // A refusal is a configuration error (secret, version, name) that retrying will
            // not fix: the operator must see it. An unreachable peer is routine while it is
            // down, and is retried quietly.
            if e.is::<Refusal>() {
                tracing::warn!(%url, error = %e, "a peer refused the link");
            } else {
                tracing::debug!(%url, error = %e, "dialling a peer failed");
            }
            shared
                .cluster
                .membership
                .lock()
                .expect("membership lock")
                .dial_failed(&url, now_ms());
        }
    }
}

/// The handshake failed on a refusal (either side's), not on the network.
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

async fn try_dial(shared: &Shared, url: &str) -> anyhow::Result<(String, TextStream, TextSink)> {
    let secret = shared
        .cluster
        .secret
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no secret"))?;
    let me = shared.cfg.node_name.clone();
    let endpoint = format!("{}/v1/peer", url.trim_end_matches('/'));
    let mut config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    config.max_message_size = Some(MAX_PEER_FRAME_BYTES);
    config.max_frame_size = Some(MAX_PEER_FRAME_BYTES);
    let connector = tokio_tungstenite::Connector::Rustls(shared.cluster.tls.clone());
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        endpoint.as_str(),
        Some(config),
        true, // no Nagle: ops and clocks are small and latency-bound
        Some(connector),
    );
    let (ws, _) = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
        .await
        .map_err(|_| anyhow::anyhow!("connect timed out"))??;
    let (mut rx, mut tx) = from_tungstenite(ws);
    let (node, nonce) = match recv(&mut rx).await? {
        PeerMsg::Challenge { v, node, nonce } if v == PEER_VERSION => (node, nonce),
        PeerMsg::Challenge { v, node, .. } => {
            // Say why before closing, so the operator of the other node reads it too.
            let reason = format!("peer protocol version {v} is not {PEER_VERSION}");
            let _ = send(
                &mut tx,
                &PeerMsg::Refused {
                    reason: reason.clone(),
                },
            )
            .await;
            return Err(Refusal(format!("{node} at {url}: {reason}")).into());
        }
        PeerMsg::Refused { reason } => {
            return Err(Refusal(format!("{url} refused: {reason}")).into())
        }
        other => anyhow::bail!("expected a challenge, got {other:?}"),
    };
    anyhow::ensure!(node != me, "{url} is this node itself");
    let my_nonce = auth::nonce();
    let prove = PeerMsg::Prove {
        v: PEER_VERSION,
        node: me.clone(),
        url: shared
            .cluster
            .membership
            .lock()
            .expect("membership lock")
            .members()[0]
            .url
            .clone(),
        nonce: my_nonce.clone(),
        mac: auth::prove(&secret, &nonce, &me, &node),
    };
    send(&mut tx, &prove).await?;
    match recv(&mut rx).await? {
        PeerMsg::Accepted {
            node: n,
            mac,
            members,
        } if n == node => {
            anyhow::ensure!(
                auth::verify(&secret, &my_nonce, &node, &me, &mac),
                "{node} failed to prove the secret"
            );
            shared
                .cluster
                .membership
                .lock()
                .expect("membership lock")
                .learn(&members, now_ms());
            Ok((node, rx, tx))
        }
        PeerMsg::Refused { reason } => Err(Refusal(format!("{url} refused: {reason}")).into()),
        other => anyhow::bail!("expected accepted, got {other:?}"),
    }
}

/// An authenticated link: heartbeats out on a timer, live ops and catch-up batches out from
/// the link's queue, frames in until either side closes.
async fn run(
    shared: Arc<Shared>,
    node: String,
    url: String,
    dialed_by: String,
    mut rx: TextStream,
    mut tx: TextSink,
) {
    let cluster = &shared.cluster;
    let (frames_tx, mut frames_rx) = tokio::sync::mpsc::channel::<String>(super::LINK_QUEUE);
    let (link, close) = cluster.new_link(&node, frames_tx);
    let dup = cluster.membership.lock().expect("membership lock").link_up(
        &node,
        &url,
        link,
        &dialed_by,
        now_ms(),
    );
    if let Some(switchboard_core::cluster::Action::Close { link: other, .. }) = dup {
        if other == link {
            cluster.drop_link(link);
            return;
        }
        cluster.close_link(other);
    }
    tracing::info!(%node, link, "peer link up");
    let mut stop = cluster.stop.subscribe();
    let mut ticker = tokio::time::interval(cluster.heartbeat_every);
    let why = 'link: {
        // Queued behind nothing: the link's queue is new.
        shared.run(|core, out| core.peer_linked(&node, out));
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let (clock, vv) = shared.core.lock().expect("core lock").heartbeat();
                    // What was queued before the clock was read goes first: the clock vouches
                    // for those ops, so the peer must have them when it reads it.
                    while let Ok(frame) = frames_rx.try_recv() {
                        if let Err(e) = tx.send(frame).await {
                            break 'link format!("send failed: {e}");
                        }
                    }
                    let members = cluster.membership.lock().expect("membership lock").members();
                    if let Err(e) = send(&mut tx, &PeerMsg::Heartbeat { clock, members, vv }).await {
                        break 'link format!("send failed: {e}");
                    }
                }
                frame = frames_rx.recv() => {
                    let Some(frame) = frame else { break 'link "queue closed".to_string() };
                    if let Err(e) = tx.send(frame).await {
                        break 'link format!("send failed: {e}");
                    }
                }
                frame = rx.next() => match frame {
                    Some(Ok(text)) => match serde_json::from_str::<PeerMsg>(&text) {
                        Ok(msg) => {
                            if let PeerMsg::Heartbeat { clock, members, .. } = &msg {
                                cluster
                                    .membership
                                    .lock()
                                    .expect("membership lock")
                                    .heartbeat(&node, link, *clock, members, now_ms());
                            }
                            let now = now_ms();
                            shared.run(|core, out| core.peer_message(&node, msg, now, out));
                        }
                        Err(e) => break 'link format!("bad frame: {e}"),
                    },
                    Some(Err(e)) => break 'link format!("{e}"),
                    None => break 'link "closed".to_string(),
                },
                _ = close.notified() => break 'link "closed by the membership".to_string(),
                _ = super::stopped(&mut stop) => break 'link "shutting down".to_string(),
            }
        }
    };
    tracing::info!(%node, link, reason = %why, "peer link down");
    let _ = tx.close().await;
    cluster.drop_link(link);
    let still_up = {
        let mut m = cluster.membership.lock().expect("membership lock");
        m.link_down(&node, link, now_ms());
        m.up().contains(&node)
    };
    if !still_up {
        // The peer's users leave the directory with it.
        shared.run(|core, out| core.peer_unlinked(&node, out));
    }
}
