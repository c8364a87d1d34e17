//! The HTTP face of a node: the WebSocket endpoint, health, metrics and the web client.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use switchboard_proto::limits::MAX_FRAME_BYTES;

use crate::prepared::PreparedListener;
use crate::shared::Shared;
use crate::{conn, web};

/// Bytes read from the socket at a time per connection, allocated up front for every
/// connection: the largest single cost of an idle connection (docs/benchmarks.md,
/// "connections"). tungstenite's default (128 KiB) would cost gigabytes at tens of thousands of
/// idle connections. 192 bytes take a typical client frame in one read (a 100-byte message
/// is about 160 bytes on the wire; clients send far less than they receive), and a larger
/// frame grows the buffer for as long as it needs. 128 would save 64 bytes more per
/// connection but cost dm throughput 15% (two reads per message frame); docs/benchmarks.md.
const READ_BUFFER: usize = 192;

/// Bytes of outgoing frames gathered before the socket write: a writer's batch goes out in
/// as few syscalls as this allows.
const WRITE_BUFFER: usize = 32 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/ws", get(ws_upgrade))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/peer", get(peer_upgrade))
        .route("/ws", get(seed001_upgrade))
        .route("/v1/cluster", get(cluster_status))
        .merge(web::routes())
        .with_state(shared)
}

async fn ws_upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    let ws = ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(shared.cfg.outbox_bytes + WRITE_BUFFER)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES);
    match shared.conns.clone().try_acquire_owned() {
        Ok(permit) => ws.on_upgrade(move |socket| conn::run(shared, socket, permit)),
        Err(_) => {
            shared
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            ws.on_upgrade(conn::refuse)
        }
    }
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let (sessions, users, pending, stored_own) = {
        let core = shared.core.lock().expect("core lock");
        (
            core.session_count(),
            core.user_count(),
            core.pending_count(),
            core.stored_of(&shared.cfg.node_name),
        )
    };
    let status = if shared.shutting_down.load(Ordering::Acquire) {
        "shutting_down"
    } else {
        "ok"
    };
    let mut body = serde_json::json!({
        "status": status,
        "node": shared.cfg.node_name,
        "sessions": sessions,
        "users": users,
        "pending_ops": pending,
    });
    // The node serves its own users with the backplane down, so the status stays `ok`; the
    // backplane's own state says whether the rest of the cluster is reachable.
    if let Some(bp) = &shared.cluster.backplane {
        body["backplane"] = bp.health(stored_own);
    }
    let code = if status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let (sessions, users, stored_own) = {
        let core = shared.core.lock().expect("core lock");
        (
            core.session_count(),
            core.user_count(),
            core.stored_of(&shared.cfg.node_name),
        )
    };
    let mut text = shared.metrics.render(sessions, users);
    if let Some(bp) = &shared.cluster.backplane {
        text.push_str(&bp.render_metrics(stored_own));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn peer_upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    let max = switchboard_proto::peer::MAX_PEER_FRAME_BYTES;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| crate::cluster::accept(shared, socket))
}

async fn cluster_status(State(shared): State<Arc<Shared>>) -> Response {
    let core = shared.core.lock().expect("core lock");
    let status = shared
        .cluster
        .status(core.clock(), |node| core.replication_lag(node));
    drop(core);
    // Public, read-only facts; a page served by one node reads them from another node when it
    // fails over, which is a cross-origin request.
    (
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        axum::Json(status),
    )
        .into_response()
}

/// Seed 001's plain-text WebSocket (`/ws?name=...`).
async fn seed001_upgrade(
    State(shared): State<Arc<Shared>>,
    axum::extract::ConnectInfo(ClientAddr(addr)): axum::extract::ConnectInfo<ClientAddr>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(permit) = shared.conns.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    let name = q.get("name").cloned();
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            crate::lobby::run(
                shared,
                socket,
                crate::lobby::Seed::Text { asked: name },
                addr,
            )
            .await;
            drop(permit);
        })
}

/// The address a client connected from, over plain TCP or TLS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub std::net::SocketAddr);

/// `/`: the web client, or, for a WebSocket upgrade (`ws://HOST:PORT/?uuid=...`), seed 003's
/// JSON chat.
pub(crate) async fn root(
    State(shared): State<Arc<Shared>>,
    axum::extract::ConnectInfo(ClientAddr(addr)): axum::extract::ConnectInfo<ClientAddr>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return crate::web::file("index.html");
    };
    let Ok(permit) = shared.conns.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    let uuid = q.get("uuid").cloned().unwrap_or_default();
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            crate::lobby::run(shared, socket, crate::lobby::Seed::Json { uuid }, addr).await;
            drop(permit);
        })
}

impl<Io>
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, PreparedListener<Io>>>
    for ClientAddr
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, PreparedListener<Io>>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}
