//! Seed 000's binary contacts protocol, byte for byte (../shared/seeds/WIRE-NOTES.md), as a
//! gateway onto the contact books: original clients manage a book, original servers link as
//! peers. Fixed-width NUL-padded fields, big-endian u32s, no length prefixes. The bytes are
//! in `wire.rs`, server links in `link.rs`; this file accepts connections and serves clients.
//!
//! Better than the original: every field is read exactly (short reads are fine), each
//! connection runs in its own task with a handshake timeout (a silent one blocks nobody),
//! frames are written whole by one writer (never interleaved), an unknown command byte closes
//! that connection with a log line (the stream cannot be resynchronised), invalid UTF-8 and
//! invalid numbers are refused without storing anything, an invalid user name closes the
//! connection, a peer's frame must arrive whole in time, a change is never sent back to the
//! link it came from, old copies cannot bring deleted contacts back, and peers are re-dialled
//! with our state pushed to them. `UpdateClock` is never sent (the original does not read it).

mod link;
mod wire;

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::conn::now_ms;
use crate::shared::Shared;
pub(crate) use link::dial;
use wire::{field, put, read_field, user_name, ROLE_CLIENT, ROLE_SERVER};
pub use wire::{NAME, PHONE};

/// Accepts seed 000 connections until the node stops.
pub(crate) async fn listen(shared: Arc<Shared>, listener: TcpListener) {
    let mut stop = shared.cluster.stop.subscribe();
    while let Some((stream, addr)) =
        crate::cluster::accept_next(&listener, &mut stop, "seed 000").await
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = accept(shared, stream).await {
                tracing::info!(%addr, error = %e, "seed 000 connection ended");
            }
        });
    }
}

/// The handshake, within the node's handshake timeout: a role byte and a name that must be
/// a valid name (a client's names its book, a server's stamps its changes).
async fn accept(shared: Arc<Shared>, mut stream: TcpStream) -> anyhow::Result<()> {
    let mut head = [0u8; 1 + NAME];
    tokio::time::timeout(shared.cfg.handshake_timeout, stream.read_exact(&mut head))
        .await
        .map_err(|_| anyhow::anyhow!("no handshake in time"))??;
    let name = user_name(&head[1..]).map_err(|e| anyhow::anyhow!("handshake refused: {e}"))?;
    match head[0] {
        ROLE_CLIENT => client(shared, stream, name).await,
        ROLE_SERVER => {
            // Subscribe before the link can be asked for a copy: nothing falls in between.
            let changes = shared.contact_changes.subscribe();
            let mut reply = Vec::with_capacity(NAME);
            put(&mut reply, &shared.cfg.node_name, NAME);
            stream.write_all(&reply).await?;
            tracing::info!(peer = %name, "seed 000 server linked");
            link::run(shared, stream, name, changes).await
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
                set(&shared, &user, &name, Some(&phone));
            }
            2 => {
                let name = read_field(&mut rx, NAME).await?;
                set(&shared, &user, &name, None);
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

/// A client's Update or Delete; anything invalid is refused whole, with a log line. `user`
/// is the handshake's name as given: its key is the book, its case goes to linked servers.
fn set(shared: &Shared, user: &str, name: &[u8], phone: Option<&[u8]>) {
    let (Ok(name), Ok(phone)) = (field(name), phone.map(field).transpose()) else {
        tracing::warn!(%user, "seed 000: a field is not UTF-8; refused");
        return;
    };
    let result = shared.run(|core, _| {
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
