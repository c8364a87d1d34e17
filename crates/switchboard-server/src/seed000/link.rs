//! Links with seed 000 servers: the originals, or other nodes over that protocol. Both
//! directions run on one socket: their Updates, Deletes and heartbeats in; our contact
//! changes, heartbeats, pushed state and AskForUpdate answers out, each frame written whole
//! by one writer. docs/contacts.md says what each side sends and why.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::SessionId;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;

use super::wire::{self, PeerFrame, ASK_FOR_UPDATE, NAME, ROLE_SERVER};
use crate::conn::now_ms;
use crate::shared::{ContactChange, Shared};

/// Heartbeat interval, as the original.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// The first re-dial delay, and the delay after a link that was up: it doubles while
/// dialling fails.
const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The longest re-dial delay.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// Frames the reader may queue for the writer (AskForUpdate answers): a peer that asks
/// faster than it reads waits for the writer instead of growing a queue.
const OUT_FRAMES: usize = 16;

/// Links with a server we dial, for ever: handshake, our whole state (deletes included),
/// AskForUpdate, then the link; re-dialled with backoff whenever it drops, and the backoff
/// starts again from 0.5 s once a link has been up.
pub(crate) async fn dial(shared: Arc<Shared>, addr: String) {
    let mut stop = shared.cluster.stop.subscribe();
    let mut delay = FIRST_DELAY;
    loop {
        // (whether the link came up, how it ended)
        let attempt = async {
            match open(&shared, &addr).await {
                Ok((stream, name, changes)) => {
                    tracing::info!(%addr, peer = %name, "seed 000 peer linked");
                    (true, run(shared.clone(), stream, name, changes).await)
                }
                Err(e) => (false, Err(e)),
            }
        };
        let linked = tokio::select! {
            (linked, r) = attempt => {
                if let Err(e) = r {
                    tracing::info!(%addr, error = %e, "seed 000 peer link down");
                }
                linked
            }
            _ = crate::cluster::stopped(&mut stop) => return,
        };
        if linked {
            delay = FIRST_DELAY;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = crate::cluster::stopped(&mut stop) => return,
        }
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Dials and shakes hands, then pushes what the peer may lack and asks for its copy.
///
/// Why push everything, deletes included: an original dials once and never asks again, and
/// it acknowledges nothing, so after an outage we cannot know which of our changes reached
/// it (bytes in a broken socket's buffer are lost with it). Our whole state is the only
/// sure answer; Delete frames carry the deletes a full copy of live contacts would lose. It
/// goes before AskForUpdate, so that the copy the peer answers with already has our deletes
/// applied and cannot bring them back.
async fn open(
    shared: &Shared,
    addr: &str,
) -> anyhow::Result<(TcpStream, String, broadcast::Receiver<ContactChange>)> {
    let limit = shared.cfg.handshake_timeout;
    let mut stream = tokio::time::timeout(limit, TcpStream::connect(addr)).await??;
    stream.set_nodelay(true)?;
    let mut hello = vec![ROLE_SERVER];
    wire::put(&mut hello, &shared.cfg.node_name, NAME);
    stream.write_all(&hello).await?;
    let theirs = tokio::time::timeout(limit, wire::read_field(&mut stream, NAME)).await??;
    let name = wire::user_name(&theirs).map_err(|e| anyhow::anyhow!("peer name: {e}"))?;
    // Subscribe before the snapshot: a change made in between is sent twice, never lost.
    let changes = shared.contact_changes.subscribe();
    let state = shared.core.lock().expect("core lock").book_entries(true);
    let mut first = wire::entries_frames(&state);
    first.push(ASK_FOR_UPDATE);
    tokio::time::timeout(shared.cfg.contacts_peer_silence, stream.write_all(&first))
        .await
        .map_err(|_| anyhow::anyhow!("{name} does not read our state"))??;
    Ok((stream, name, changes))
}

/// A link with a server (either side, after the handshake) until it drops: the peer's
/// frames are read here, ours are written by one writer task.
pub(super) async fn run(
    shared: Arc<Shared>,
    stream: TcpStream,
    name: String,
    changes: broadcast::Receiver<ContactChange>,
) -> anyhow::Result<()> {
    // The link's id, from the sessions' counter so that it names no session: changes it
    // brings carry it, and its writer skips them (a peer never hears its own changes back).
    let id = shared.next_session.fetch_add(1, Ordering::Relaxed);
    let (mut rx, tx) = stream.into_split();
    let (out_tx, out_rx) = mpsc::channel(OUT_FRAMES);
    let mut writer = tokio::spawn(write(shared.clone(), tx, out_rx, changes, id));
    let result = tokio::select! {
        r = read(&shared, &mut rx, &name, id, &out_tx) => r,
        _ = &mut writer => Err(anyhow::anyhow!("writing to {name} failed")),
    };
    writer.abort();
    result
}

/// The peer's frames, each read whole within the silence limit.
async fn read(
    shared: &Shared,
    rx: &mut OwnedReadHalf,
    peer: &str,
    id: SessionId,
    out_tx: &mpsc::Sender<Vec<u8>>,
) -> anyhow::Result<()> {
    let limit = shared.cfg.contacts_peer_silence;
    loop {
        let frame = wire::read_peer_frame(rx, limit)
            .await
            .map_err(|e| anyhow::anyhow!("{peer}: {e}"))?;
        match frame {
            PeerFrame::Change {
                clock,
                user,
                name,
                phone,
            } => apply(shared, (clock, peer), id, &user, &name, phone.as_deref()),
            PeerFrame::Clock(clock) => shared.run(|core, _| core.observe_clock(clock.into())),
            PeerFrame::AskForUpdate => {
                // As the original: one Update frame per live contact, nothing else.
                let live = shared.core.lock().expect("core lock").book_entries(false);
                if out_tx.send(wire::entries_frames(&live)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// A peer's Update or Delete: stamped with its clock and name, it takes effect only if it
/// is newer than what the book holds and changes it (`Core::contact_from_peer`). A contact
/// field that is not UTF-8, or a refused value, stores nothing and is logged.
fn apply(
    shared: &Shared,
    (clock, peer): (u32, &str),
    link: SessionId,
    user: &str,
    name: &[u8],
    phone: Option<&[u8]>,
) {
    let (Ok(name), Ok(phone)) = (wire::field(name), phone.map(wire::field).transpose()) else {
        tracing::warn!(%peer, %user, "seed 000: a field is not UTF-8; refused");
        return;
    };
    let result = shared.run(|core, _| {
        core.contact_from_peer(user, &name, phone, (clock.into(), peer), now_ms(), link)
    });
    if let Err(e) = result {
        tracing::warn!(%peer, %user, contact = %name, error = %e.message, "seed 000: refused");
    }
}

/// The link's writer: heartbeats, our contact changes (not those the link brought), the
/// reader's answers; after a lag on the changes, the whole state, deletes included. A write
/// that takes longer than the silence limit ends the link.
async fn write(
    shared: Arc<Shared>,
    mut tx: OwnedWriteHalf,
    mut out_rx: mpsc::Receiver<Vec<u8>>,
    mut changes: broadcast::Receiver<ContactChange>,
    id: SessionId,
) {
    let mut beat = tokio::time::interval(HEARTBEAT);
    loop {
        let frame = tokio::select! {
            f = out_rx.recv() => match f { Some(f) => f, None => return },
            _ = beat.tick() => wire::heartbeat_frame(shared.core.lock().expect("core lock").clock()),
            c = changes.recv() => match c {
                Ok(c) if c.by == Some(id) => continue,
                Ok(c) => wire::change_frame(c.lamport, &c.user, &c.name, c.phone.as_deref()),
                Err(RecvError::Lagged(n)) => {
                    // Missed changes may be deletes: resend everything, tombstones included.
                    tracing::warn!(missed = n, "seed 000 link lagged; sending the whole state");
                    let all = shared.core.lock().expect("core lock").book_entries(true);
                    wire::entries_frames(&all)
                }
                Err(RecvError::Closed) => return,
            },
        };
        // A peer that stops reading is dropped like one that stops talking.
        let limit = shared.cfg.contacts_peer_silence;
        match tokio::time::timeout(limit, tx.write_all(&frame)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
