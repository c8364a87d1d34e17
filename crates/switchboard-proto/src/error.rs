//! Error codes a client can see: stable, documented in docs/protocol.md, never internal detail.

use serde::{Deserialize, Serialize};

/// A stable error code on the wire (`"code": "not_found"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON (or not UTF-8, or not a text frame).
    BadJson,
    /// The `type` field names no message of this protocol version.
    UnknownType,
    /// A required field is missing.
    MissingField,
    /// A field has the wrong type or an invalid value.
    BadRequest,
    /// The user name breaks the naming rules.
    InvalidName,
    /// The room name breaks the naming rules.
    InvalidRoom,
    /// Someone else holds this guest name.
    NameInUse,
    /// Wrong password for a registered name.
    AuthFailed,
    /// No such user or room.
    NotFound,
    /// The action needs membership of the room.
    NotMember,
    /// A frame, text, topic or password is over its limit.
    TooLarge,
    /// The connection sends faster than its rate limit allows.
    RateLimited,
    /// The connection could not read as fast as it was sent to; it is closed.
    SlowConsumer,
    /// The node is at its connection cap.
    TooManyConnections,
    /// No `hello` arrived in time.
    HandshakeTimeout,
    /// The connection said nothing (not even a pong) for too long.
    IdleTimeout,
    /// A message other than `hello` came first, or `hello` came twice.
    NotReady,
    /// The client's protocol version is not supported.
    UnsupportedVersion,
    /// The recipient's offline queue is full.
    InboxFull,
    /// The node is shutting down.
    ShuttingDown,
    /// The node is overloaded for a moment (its disk is behind); retry shortly.
    Busy,
    /// Only a registered name (signed in with its password) has a contact book.
    RegistrationRequired,
    /// Something failed inside the node; the client may retry.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order (the property tests draw from it; a test checks it
    /// against the list in docs/protocol.md).
    pub const ALL: [ErrorCode; 23] = {
        use ErrorCode::*;
        [
            BadJson,
            UnknownType,
            MissingField,
            BadRequest,
            InvalidName,
            InvalidRoom,
            NameInUse,
            AuthFailed,
            NotFound,
            NotMember,
            TooLarge,
            RateLimited,
            SlowConsumer,
            TooManyConnections,
            HandshakeTimeout,
            IdleTimeout,
            NotReady,
            UnsupportedVersion,
            InboxFull,
            ShuttingDown,
            Busy,
            RegistrationRequired,
            Internal,
        ]
    };

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::NameInUse => "name_in_use",
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NotMember => "not_member",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::HandshakeTimeout => "handshake_timeout",
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::InboxFull => "inbox_full",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Busy => "busy",
            ErrorCode::RegistrationRequired => "registration_required",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal to send back to a client: a code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtoError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtoError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtoError {
            code,
            message: message.into(),
        }
    }
}
