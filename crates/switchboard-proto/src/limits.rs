//! Size limits of the native protocol, in one place so that server, client and docs agree.

/// Largest WebSocket message a client may send, in bytes. Larger frames close the connection
/// with `too_large`: nothing legitimate comes near it.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Largest message text, in bytes of UTF-8. A longer text is refused with `too_large`
/// and the connection stays open.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Longest user name, in characters (all ASCII).
pub const MAX_NAME_LEN: usize = 32;

/// Longest room name, in characters, without the leading `#`.
pub const MAX_ROOM_LEN: usize = 64;

/// Longest room topic, in bytes of UTF-8.
pub const MAX_TOPIC_BYTES: usize = 512;

/// Longest away message, in bytes of UTF-8: IRC's AWAYLEN, so that the same message fits
/// every face of the service (an IRC client is told `AWAYLEN=200`).
pub const MAX_AWAY_BYTES: usize = 200;

/// Longest password, in bytes: argon2 accepts more, but nobody types more.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Most messages one `history` request returns.
pub const MAX_HISTORY_LIMIT: u32 = 500;

/// Default page size of `history` when the client gives none.
pub const DEFAULT_HISTORY_LIMIT: u32 = 50;

/// Longest contact name, in bytes: the binary contacts protocol's field width (seed 000).
pub const MAX_CONTACT_NAME_BYTES: usize = 256;

/// Longest phone number, in bytes: the binary contacts protocol's field width (seed 000).
pub const MAX_PHONE_BYTES: usize = 20;

/// Most contacts in one book.
pub const MAX_CONTACTS: usize = 10_000;

/// Longest client-chosen `ref`, echoed back in replies.
pub const MAX_REF_BYTES: usize = 64;
