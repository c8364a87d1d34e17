//! Switchboard's IO shell: it binds nothing itself (the binary or the test does), serves
//! HTTP and WebSocket on a listener it is given, turns frames into core commands and core
//! effects into frames, and group-commits ops to the store.

mod backplane;
mod cluster;
mod config;
mod conn;
mod http;
mod irc;
mod lobby;
mod metrics;
mod outbox;
mod password;
mod prepared;
mod seed000;
mod seed002;
mod shared;
mod sniff;
pub mod tls;
mod web;
mod writer;

/// Internals re-exported for the crate's micro-benchmarks (`benches/outbox.rs`), which, being
/// a separate crate, see only public items. Not part of the API: hidden from the docs and free
/// to change.
#[doc(hidden)]
pub mod bench_api {
    pub use crate::outbox::{Outbox, Pushed};
}

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use switchboard_core::cluster::MembershipConfig;
use switchboard_core::Core;
use switchboard_proto::limits::{MAX_FRAME_BYTES, MAX_TEXT_BYTES};
use switchboard_proto::server::Limits;
use switchboard_store::{SqliteStore, Store};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use backplane::BackplaneConfig;
pub use config::Config;

use crate::outbox::Closing;
use crate::shared::Shared;

/// Runs a node on `listener` until `shutdown` resolves with the reason to give clients.
///
/// Shutdown runs in two phases: stop accepting and tell every client why (seed 002's EXIT),
/// then let queues drain for up to `drain_timeout` and write every op still waiting.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = String> + Send,
) -> anyhow::Result<()> {
    serve_with(listener, None, None, config, shutdown).await
}

/// [`serve`], plus seed 000's binary contacts protocol on `contacts` and seed 002's relay on
/// `relay` when given.
pub async fn serve_with(
    listener: TcpListener,
    contacts: Option<TcpListener>,
    relay: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = String> + Send,
) -> anyhow::Result<()> {
    let listeners = Listeners {
        contacts,
        relay,
        ..Listeners::new(listener)
    };
    serve_listeners(listeners, config, shutdown).await
}

/// The sockets a node serves, bound by the caller: HTTP and WebSocket (always), and the
/// gateways that are switched on.
pub struct Listeners {
    /// HTTP: the native WebSocket protocol, the web page, seeds 001 and 003, peers.
    pub http: TcpListener,
    /// Seed 000's binary contacts protocol.
    pub contacts: Option<TcpListener>,
    /// Seed 002's directory relay.
    pub relay: Option<TcpListener>,
    /// IRC in plain text (6667 by convention).
    pub irc: Option<TcpListener>,
    /// IRC over TLS with the node's certificate (6697 by convention); needs `Config::tls`.
    pub ircs: Option<TcpListener>,
}

impl Listeners {
    /// Only HTTP.
    pub fn new(http: TcpListener) -> Listeners {
        Listeners {
            http,
            contacts: None,
            relay: None,
            irc: None,
            ircs: None,
        }
    }
}

/// Runs a node on the given listeners until `shutdown` resolves with the reason to give
/// clients (see [`serve`]).
pub async fn serve_listeners(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = String> + Send,
) -> anyhow::Result<()> {
    let Listeners {
        http: listener,
        contacts,
        relay,
        irc,
        ircs,
    } = listeners;
    config.validate()?;
    anyhow::ensure!(
        ircs.is_none() || config.tls.is_some(),
        "IRC over TLS needs the node's certificate and key (--tls-cert, --tls-key)"
    );
    let tls_config = match &config.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let peer_tls = tls::client_config(config.tls_ca.as_deref())?;
    let store = SqliteStore::open(&config.data_dir)
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(store);
    let restore = store.load(&config.node_name).context("loading the store")?;
    let mut core = Core::new(
        switchboard_core::Config {
            node: config.node_name.clone(),
            inbox_cap: config.inbox_cap,
            limits: Limits {
                max_frame_bytes: MAX_FRAME_BYTES as u32,
                max_text_bytes: MAX_TEXT_BYTES as u32,
                rate_per_sec: config.rate_per_sec,
                burst: config.burst,
            },
            incarnation: conn::now_ms(),
        },
        restore,
    );
    if config.backplane.is_some() {
        // On NATS a node receives the rooms its users are in, not every room (backplane/).
        core.scope_streams(store.global_vv().context("loading the store")?);
    }
    let addr = listener.local_addr()?;
    let advertise = config.advertise.clone().unwrap_or_else(|| {
        let ip = if addr.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            addr.ip()
        };
        let scheme = if config.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}", std::net::SocketAddr::new(ip, addr.port()))
    });
    // With NATS as the backplane the node has no peer links: no secret, so it dials no peer
    // and refuses every one (NATS's own authentication is the gate).
    let backplane = config.backplane.clone().map(|bp| {
        Arc::new(backplane::Backplane::new(
            bp,
            config.node_name.clone(),
            advertise.clone(),
            config.heartbeat_every,
            config.peer_down_after,
        ))
    });
    let secret = if backplane.is_some() {
        None
    } else {
        config.cluster_secret.clone()
    };
    let cluster = cluster::Cluster::new(
        peer_tls,
        MembershipConfig {
            node: config.node_name.clone(),
            url: advertise,
            down_after: config.peer_down_after.as_millis() as u64,
            backoff_min: 100,
            backoff_max: 5_000,
            seed: rand::random(),
        },
        secret,
        &config.peers,
        config.heartbeat_every,
        backplane.clone(),
    );
    let (doorbell, doorbell_rx) = std::sync::mpsc::sync_channel(1);
    let shared = Arc::new(Shared {
        conns: Arc::new(Semaphore::new(config.max_connections)),
        cfg: config,
        core: Mutex::new(core),
        outboxes: RwLock::new(HashMap::new()),
        store,
        doorbell,
        writer_stop: AtomicBool::new(false),
        metrics: metrics::Metrics::default(),
        next_session: AtomicU64::new(1),
        shutting_down: AtomicBool::new(false),
        cluster,
        contact_changes: tokio::sync::broadcast::channel(4096).0,
        relay: seed002::Registry::default(),
    });
    let writer = writer::spawn(shared.clone(), doorbell_rx);
    let upkeep = writer::spawn_maintenance(shared.clone());
    tracing::info!(%addr, node = %shared.cfg.node_name, "node listening");
    tokio::spawn(cluster::drive(shared.clone()));
    if let Some(bp) = backplane {
        bp.attach(&shared);
        tokio::spawn(backplane::run(shared.clone(), bp));
    }
    if let Some(l) = contacts {
        tracing::info!(addr = %l.local_addr()?, "seed 000 contacts protocol listening");
        tokio::spawn(seed000::listen(shared.clone(), l));
    }
    let relay_task = relay.map(|l| {
        tracing::info!(addr = ?l.local_addr(), "seed 002 relay listening");
        tokio::spawn(seed002::listen(shared.clone(), l))
    });
    if let Some(l) = irc {
        tracing::info!(addr = %l.local_addr()?, "IRC listening");
        tokio::spawn(irc::listen(shared.clone(), l, None));
    }
    if let Some(l) = ircs {
        tracing::info!(addr = %l.local_addr()?, "IRC over TLS listening");
        tokio::spawn(irc::listen(shared.clone(), l, tls_config.clone()));
    }
    for peer in shared.cfg.contacts_peers.clone() {
        tokio::spawn(seed000::dial(shared.clone(), peer));
    }

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = http::router(shared.clone());
    let stopped = async {
        let _ = stop_rx.await;
    };
    let sniff_shared = shared.clone();
    let http = match tls_config {
        Some(tls) => {
            let listener = tls::listener(listener, tls)?;
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<http::ClientAddr>(),
                )
                .with_graceful_shutdown(stopped)
                .await
            })
        }
        None => tokio::spawn(async move {
            let listener = sniff::listener(listener, sniff_shared)?;
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<http::ClientAddr>(),
            )
            .with_graceful_shutdown(stopped)
            .await
        }),
    };

    let reason = shutdown.await;
    tracing::info!(%reason, "shutting down");
    shared.shutting_down.store(true, Ordering::Release);
    let _ = stop_tx.send(());
    shared.cluster.stop.send_replace(true);
    if let Some(t) = relay_task {
        // It tells every relay client EXIT before it ends.
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    shared.run(|core, out| core.shutdown(&reason, out));
    for outbox in shared.outboxes.read().expect("outboxes lock").values() {
        outbox.close(Closing {
            error: None,
            ws_code: 1001,
            reason: "node shutting down".into(),
        });
    }
    let deadline = Instant::now() + shared.cfg.drain_timeout;
    while shared.conns.available_permits() < shared.cfg.max_connections && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shared.writer_stop.store(true, Ordering::Release);
    shared.ring();
    tokio::task::spawn_blocking(move || (writer.join(), upkeep.join()))
        .await
        .map(|(w, u)| w.and(u))?
        .map_err(|_| anyhow::anyhow!("a store thread panicked"))?;
    let _ = tokio::time::timeout(Duration::from_secs(1), http).await;
    tracing::info!("stopped");
    Ok(())
}
