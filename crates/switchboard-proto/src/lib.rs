//! Switchboard's wire vocabulary: names, limits, the client and server message enums of the
//! native `/v1/ws` protocol, and their JSON codec. No sockets, no runtime.

pub mod client;
pub mod codec;
pub mod cursor;
pub mod error;
pub mod limits;
pub mod names;
pub mod ops;
pub mod peer;
pub mod server;

pub use client::ClientMsg;
pub use codec::{decode_client, decode_server, encode_client, encode_server, is_message_frame};
pub use cursor::{Cursor, Position};
pub use error::{ErrorCode, ProtoError};
pub use names::{dm_stream, name_key, room_key, validate_name, validate_room, NameError};
pub use server::{ChatMessage, RoomInfo, ServerMsg};

/// The protocol version spoken by this build; a client states it in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Milliseconds since the Unix epoch, the unit of every timestamp on the wire.
pub type Millis = u64;
