//! Seed 000's bytes: NUL-padded fixed-width fields, big-endian u32 clocks, and the
//! server-to-server frames, read whole or not at all (../shared/seeds/WIRE-NOTES.md).

use std::time::Duration;

use switchboard_core::BookEntry;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Width of a name field (user, contact, server).
pub const NAME: usize = 256;
/// Width of a phone number field.
pub const PHONE: usize = 20;

/// Handshake role byte of a server.
pub(super) const ROLE_SERVER: u8 = 1;
/// Handshake role byte of a client.
pub(super) const ROLE_CLIENT: u8 = 2;

/// Update: a contact set (a client's, or a server's with a clock and a user).
pub(super) const UPDATE: u8 = 1;
/// Delete: a contact deleted.
pub(super) const DELETE: u8 = 2;
/// HeartBeat (servers), ListAll (clients).
pub(super) const HEARTBEAT: u8 = 3;
/// UpdateClock: read, never sent (the original does not consume its payload).
pub(super) const UPDATE_CLOCK: u8 = 4;
/// AskForUpdate: answered with one Update frame per contact.
pub(super) const ASK_FOR_UPDATE: u8 = 5;

/// A field: the bytes up to the first NUL, or the whole field when it has none.
pub(super) fn field(bytes: &[u8]) -> Result<String, std::str::Utf8Error> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..end]).map(str::to_string)
}

/// A value in a fixed-width field, NUL-padded (values are validated to fit).
pub(super) fn put(buf: &mut Vec<u8>, value: &str, width: usize) {
    let bytes = value.as_bytes();
    let n = bytes.len().min(width);
    buf.extend_from_slice(&bytes[..n]);
    buf.extend(std::iter::repeat_n(0u8, width - n));
}

/// Reads one whole fixed-width field (short reads are fine: `read_exact`).
pub(super) async fn read_field(
    s: &mut (impl AsyncRead + Unpin),
    width: usize,
) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; width];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// The wire's clock: a u32. Our Lamport clock is a u64; past u32::MAX it is sent as
/// u32::MAX rather than wrapped, since a wrapped clock would look ancient to the peer (an
/// original would keep its own larger clock, and our change would lose to older ones at a
/// node comparing stamps). Four billion changes are not expected; this only keeps it safe.
pub(super) fn wire_clock(clock: u64) -> u32 {
    u32::try_from(clock).unwrap_or(u32::MAX)
}

/// A user name from a handshake or a peer's frame: UTF-8, not blank, no control characters.
/// Anything else is refused (the connection is closed): storing into a book named "" or
/// "\u{7}" would be a book no one can name again.
pub(super) fn user_name(bytes: &[u8]) -> Result<String, String> {
    let name = field(bytes).map_err(|_| "a user name is not UTF-8".to_string())?;
    if name.trim().is_empty() {
        return Err("a user name is empty".into());
    }
    if name.chars().any(char::is_control) {
        return Err(format!("user name {name:?} has control characters"));
    }
    Ok(name)
}

/// An Update (`phone` given) or Delete frame between servers.
pub(super) fn change_frame(clock: u64, user: &str, name: &str, phone: Option<&str>) -> Vec<u8> {
    let mut f = Vec::with_capacity(1 + 4 + NAME * 2 + PHONE);
    f.push(if phone.is_some() { UPDATE } else { DELETE });
    f.extend_from_slice(&wire_clock(clock).to_be_bytes());
    put(&mut f, user, NAME);
    put(&mut f, name, NAME);
    if let Some(phone) = phone {
        put(&mut f, phone, PHONE);
    }
    f
}

/// Registers as frames, each with its own stamp's clock: a copy must not claim to be newer
/// than it is, or an old value would beat a newer delete at a node comparing stamps.
pub(super) fn entries_frames(entries: &[BookEntry]) -> Vec<u8> {
    let mut f = Vec::with_capacity(entries.len() * (1 + 4 + NAME * 2 + PHONE));
    for e in entries {
        f.extend(change_frame(
            e.lamport,
            &e.user,
            &e.name,
            e.phone.as_deref(),
        ));
    }
    f
}

/// A HeartBeat frame: health status 1 (the original always sends 1) and our clock.
pub(super) fn heartbeat_frame(clock: u64) -> Vec<u8> {
    let mut f = vec![HEARTBEAT, 1];
    f.extend_from_slice(&wire_clock(clock).to_be_bytes());
    f
}

/// One frame from a linked server.
#[derive(Debug)]
pub(super) enum PeerFrame {
    /// Update (`phone` given) or Delete. The contact fields stay bytes: one that is not UTF-8
    /// refuses that command only (the frame was read whole, the stream stays in step).
    Change {
        clock: u32,
        user: String,
        name: Vec<u8>,
        phone: Option<Vec<u8>>,
    },
    /// HeartBeat or UpdateClock.
    Clock(u32),
    AskForUpdate,
}

/// Reads one whole frame from a linked server within `limit`: the command byte and all of
/// its payload, so a peer that stalls in the middle of a frame is dropped like a silent one.
/// A user name that is not a valid name is an error (the link is closed, nothing stored).
pub(super) async fn read_peer_frame(
    rx: &mut (impl AsyncRead + Unpin),
    limit: Duration,
) -> anyhow::Result<PeerFrame> {
    tokio::time::timeout(limit, read_frame(rx))
        .await
        .map_err(|_| anyhow::anyhow!("no whole frame in {limit:?}"))?
}

async fn read_frame(rx: &mut (impl AsyncRead + Unpin)) -> anyhow::Result<PeerFrame> {
    let cmd = rx.read_u8().await?;
    match cmd {
        UPDATE | DELETE => {
            let clock = rx.read_u32().await?;
            let user = user_name(&read_field(rx, NAME).await?).map_err(anyhow::Error::msg)?;
            let name = read_field(rx, NAME).await?;
            let phone = match cmd {
                UPDATE => Some(read_field(rx, PHONE).await?),
                _ => None,
            };
            Ok(PeerFrame::Change {
                clock,
                user,
                name,
                phone,
            })
        }
        HEARTBEAT => {
            let _status = rx.read_u8().await?;
            Ok(PeerFrame::Clock(rx.read_u32().await?))
        }
        UPDATE_CLOCK => Ok(PeerFrame::Clock(rx.read_u32().await?)),
        ASK_FOR_UPDATE => Ok(PeerFrame::AskForUpdate),
        other => anyhow::bail!("unknown server command byte {other}; closing"),
    }
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

    #[test]
    fn a_clock_past_u32_saturates_instead_of_wrapping() {
        assert_eq!(wire_clock(7), 7);
        assert_eq!(wire_clock(u64::from(u32::MAX)), u32::MAX);
        assert_eq!(wire_clock(u64::from(u32::MAX) + 5), u32::MAX);
        let f = heartbeat_frame(1 << 40);
        assert_eq!(f[2..], u32::MAX.to_be_bytes());
    }

    #[test]
    fn user_names_must_be_names() {
        assert_eq!(user_name(b"Beloin\0\0").unwrap(), "Beloin");
        assert!(user_name(b"\0\0").is_err());
        assert!(user_name(b"  ").is_err());
        assert!(user_name(b"be\x07loin").is_err());
        assert!(user_name(&[0xff, 0xfe]).is_err());
    }
}
