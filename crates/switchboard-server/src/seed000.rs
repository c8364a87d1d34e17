//! Seed 000's binary contacts protocol, byte for byte (../shared/seeds/WIRE-NOTES.md), as a
//! gateway onto the contact books: original clients manage a book, original servers link as
//! peers. Fixed-width NUL-padded fields, big-endian u32s, no length prefixes.
//!
//! Better than the original: every field is read exactly (short reads are fine), each
//! connection runs in its own task with a handshake timeout (a silent one blocks nobody),
//! frames are written whole by one writer (never interleaved), an unknown command byte closes
//! that connection with a log line (the stream cannot be resynchronised), invalid UTF-8 and
//! invalid numbers are refused without storing anything, heartbeats are watched, and peers are
//! re-dialled. `UpdateClock` is never sent (the original does not read it).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;

use crate::conn::now_ms;
use crate::shared::{ContactChange, Shared};

/// Width of a name field (user, contact, server).
pub const NAME: usize = 256;
/// Width of a phone number field.
pub const PHONE: usize = 20;
/// Time to send the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeat interval, as the original.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A peer silent for this long is dropped (and re-dialled if we dialled it).
const PEER_SILENCE: Duration = Duration::from_secs(20);

const ROLE_SERVER: u8 = 1;
const ROLE_CLIENT: u8 = 2;

/// A field: the bytes up to the first NUL, or the whole field when it has none.
fn field(bytes: &[u8]) -> Result<String, std::str::Utf8Error> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..end]).map(str::to_string)
}

/// A value in a fixed-width field, NUL-padded (values are validated to fit).
fn put(buf: &mut Vec<u8>, value: &str, width: usize) {
    let bytes = value.as_bytes();
    let n = bytes.len().min(width);
    buf.extend_from_slice(&bytes[..n]);
    buf.extend(std::iter::repeat_n(0u8, width - n));
}

async fn read_field(s: &mut (impl AsyncReadExt + Unpin), width: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; width];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Accepts seed 000 connections until the node stops.
pub(crate) async fn listen(shared: Arc<Shared>, listener: TcpListener) {
    let mut stop = shared.cluster.stop.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = crate::cluster::stopped(&mut stop) => return,
        };
        match accepted {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = accept(shared, stream).await {
                        tracing::info!(%addr, error = %e, "seed 000 connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "seed 000 accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn accept(shared: Arc<Shared>, mut stream: TcpStream) -> anyhow::Result<()> {
    let mut head = [0u8; 1 + NAME];
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut head))
        .await
        .map_err(|_| anyhow::anyhow!("no handshake in time"))??;
    let name = field(&head[1..]).map_err(|_| anyhow::anyhow!("handshake name is not UTF-8"))?;
    match head[0] {
        ROLE_CLIENT => client(shared, stream, name).await,
        ROLE_SERVER => {
            let mut reply = Vec::with_capacity(NAME);
            put(&mut reply, &shared.cfg.node_name, NAME);
            stream.write_all(&reply).await?;
            tracing::info!(peer = %name, "seed 000 server linked");
            peer(shared, stream, name).await
        }
        other => anyhow::bail!("unknown role byte {other}"),
    }
}

/// A client: Update and Delete (no reply), ListAll, on the book of the user it named.
async fn client(shared: Arc<Shared>, stream: TcpStream, user: String) -> anyhow::Result<()> {
    let (mut rx, mut tx) = stream.into_split();
    loop {
        let mut cmd = [0u8; 1];
        if rx.read_exact(&mut cmd).await.is_err() {
            return Ok(()); // the client went away
        }
        match cmd[0] {
            1 => {
                let name = read_field(&mut rx, NAME).await?;
                let phone = read_field(&mut rx, PHONE).await?;
                set(&shared, &user, &name, Some(&phone), None);
            }
            2 => {
                let name = read_field(&mut rx, NAME).await?;
                set(&shared, &user, &name, None, None);
            }
            3 => {
                let contacts = shared.core.lock().expect("core lock").contacts_of(&user);
                let mut out = Vec::with_capacity(4 + contacts.len() * (NAME + PHONE));
                out.extend_from_slice(&(contacts.len() as u32).to_be_bytes());
                for c in contacts {
                    put(&mut out, &c.name, NAME);
                    put(&mut out, &c.phone, PHONE);
                }
                tx.write_all(&out).await?;
            }
            other => anyhow::bail!("unknown client command byte {other}; closing"),
        }
    }
}

/// Applies an Update or Delete; anything invalid is refused whole, with a log line.
fn set(shared: &Shared, user: &str, name: &[u8], phone: Option<&[u8]>, clock: Option<u64>) {
    let (Ok(name), Ok(phone)) = (field(name), phone.map(field).transpose()) else {
        tracing::warn!(%user, "seed 000: a field is not UTF-8; refused");
        return;
    };
    let result = shared.run(|core, _| {
        if let Some(c) = clock {
            core.observe_clock(c);
        }
        let exists = core.contacts_of(user).iter().any(|c| c.name == name);
        if phone.is_none() && !exists {
            return Ok(());
        }
        core.contact_update(user, &name, phone, now_ms(), None)
    });
    if let Err(e) = result {
        tracing::warn!(%user, contact = %name, error = %e.message, "seed 000: refused");
    }
}

/// Links with an original server we dial, for ever: handshake, AskForUpdate, then the link;
/// re-dialled with backoff whenever it drops.
pub(crate) async fn dial(shared: Arc<Shared>, addr: String) {
    let mut stop = shared.cluster.stop.subscribe();
    let mut delay = Duration::from_millis(500);
    loop {
        let attempt = async {
            let mut stream =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(&addr)).await??;
            stream.set_nodelay(true)?;
            let mut hello = vec![ROLE_SERVER];
            put(&mut hello, &shared.cfg.node_name, NAME);
            stream.write_all(&hello).await?;
            let theirs =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, read_field(&mut stream, NAME)).await??;
            let name = field(&theirs).map_err(|_| anyhow::anyhow!("peer name is not UTF-8"))?;
            stream.write_all(&[5]).await?; // AskForUpdate: pull a full copy
            tracing::info!(%addr, peer = %name, "seed 000 peer linked");
            peer(shared.clone(), stream, name).await
        };
        tokio::select! {
            r = attempt => {
                if let Err(e) = r {
                    tracing::info!(%addr, error = %e, "seed 000 peer link down");
                }
            }
            _ = crate::cluster::stopped(&mut stop) => return,
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// A link with an original server (either side): its Updates, Deletes and heartbeats in; our
/// contact changes, heartbeats and AskForUpdate answers out, each frame written whole.
async fn peer(shared: Arc<Shared>, stream: TcpStream, name: String) -> anyhow::Result<()> {
    let (mut rx, mut tx) = stream.into_split();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1024);
    let mut changes = shared.contact_changes.subscribe();
    let writer_shared = shared.clone();
    let writer = tokio::spawn(async move {
        let mut beat = tokio::time::interval(HEARTBEAT);
        loop {
            let frame = tokio::select! {
                f = out_rx.recv() => match f { Some(f) => f, None => return },
                _ = beat.tick() => {
                    let clock = writer_shared.core.lock().expect("core lock").clock();
                    let mut f = vec![3, 1];
                    f.extend_from_slice(&(clock as u32).to_be_bytes());
                    f
                }
                c = changes.recv() => match c {
                    Ok(c) => change_frame(&writer_shared, &c),
                    Err(RecvError::Lagged(_)) => full_copy(&writer_shared),
                    Err(RecvError::Closed) => return,
                },
            };
            if tx.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let result = async {
        loop {
            let mut cmd = [0u8; 1];
            tokio::time::timeout(PEER_SILENCE, rx.read_exact(&mut cmd))
                .await
                .map_err(|_| anyhow::anyhow!("no heartbeat from {name}"))??;
            match cmd[0] {
                1 => {
                    let clock = rx.read_u32().await? as u64;
                    let user = field(&read_field(&mut rx, NAME).await?).unwrap_or_default();
                    let contact = read_field(&mut rx, NAME).await?;
                    let phone = read_field(&mut rx, PHONE).await?;
                    set(&shared, &user, &contact, Some(&phone), Some(clock));
                }
                2 => {
                    let clock = rx.read_u32().await? as u64;
                    let user = field(&read_field(&mut rx, NAME).await?).unwrap_or_default();
                    let contact = read_field(&mut rx, NAME).await?;
                    set(&shared, &user, &contact, None, Some(clock));
                }
                3 => {
                    let _status = rx.read_u8().await?;
                    let clock = rx.read_u32().await? as u64;
                    shared.core.lock().expect("core lock").observe_clock(clock);
                }
                4 => {
                    let clock = rx.read_u32().await? as u64;
                    shared.core.lock().expect("core lock").observe_clock(clock);
                }
                5 => {
                    if out_tx.send(full_copy(&shared)).await.is_err() {
                        return Ok(());
                    }
                }
                other => anyhow::bail!("unknown server command byte {other} from {name}; closing"),
            }
        }
    }
    .await;
    writer.abort();
    result
}

/// One Update or Delete frame for a change.
fn change_frame(shared: &Shared, c: &ContactChange) -> Vec<u8> {
    let clock = shared.core.lock().expect("core lock").clock() as u32;
    let mut f = Vec::with_capacity(1 + 4 + NAME * 2 + PHONE);
    match &c.phone {
        Some(phone) => {
            f.push(1);
            f.extend_from_slice(&clock.to_be_bytes());
            put(&mut f, &c.user, NAME);
            put(&mut f, &c.name, NAME);
            put(&mut f, phone, PHONE);
        }
        None => {
            f.push(2);
            f.extend_from_slice(&clock.to_be_bytes());
            put(&mut f, &c.user, NAME);
            put(&mut f, &c.name, NAME);
        }
    }
    f
}

/// The answer to AskForUpdate: one Update frame per contact of every user, nothing else.
fn full_copy(shared: &Shared) -> Vec<u8> {
    let (clock, all) = {
        let core = shared.core.lock().expect("core lock");
        (core.clock() as u32, core.all_contacts())
    };
    let mut f = Vec::with_capacity(all.len() * (1 + 4 + NAME * 2 + PHONE));
    for (user, name, phone) in all {
        f.push(1);
        f.extend_from_slice(&clock.to_be_bytes());
        put(&mut f, &user, NAME);
        put(&mut f, &name, NAME);
        put(&mut f, &phone, PHONE);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_nul_padded_and_a_full_field_is_taken_whole() {
        let mut buf = Vec::new();
        put(&mut buf, "Juan", NAME);
        assert_eq!(buf.len(), NAME);
        assert_eq!(field(&buf).unwrap(), "Juan");
        let whole = "x".repeat(NAME);
        let mut buf = Vec::new();
        put(&mut buf, &whole, NAME);
        assert_eq!(field(&buf).unwrap(), whole);
        assert!(field(&[0xff, 0xfe, 0]).is_err());
    }
}
