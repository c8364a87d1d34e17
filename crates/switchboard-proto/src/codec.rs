//! The JSON codec of the native protocol, with errors classified into stable codes.

use bytes::Bytes;

use crate::client::CLIENT_TYPES;
use crate::limits::MAX_FRAME_BYTES;
use crate::{ClientMsg, ErrorCode, ProtoError, ServerMsg};

/// Decodes one client frame, telling malformed JSON, unknown types and missing fields apart.
pub fn decode_client(text: &str) -> Result<ClientMsg, ProtoError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(ProtoError::new(
            ErrorCode::TooLarge,
            format!("frame is over {MAX_FRAME_BYTES} bytes"),
        ));
    }
    match serde_json::from_str::<ClientMsg>(text) {
        Ok(msg) => Ok(msg),
        Err(err) => Err(classify(text, err)),
    }
}

/// Works out why a frame did not decode. Only runs on the error path, so the extra parse
/// costs nothing in the common case.
fn classify(text: &str, err: serde_json::Error) -> ProtoError {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return ProtoError::new(ErrorCode::BadJson, format!("invalid JSON: {e}")),
    };
    let Some(obj) = value.as_object() else {
        return ProtoError::new(ErrorCode::BadRequest, "a message must be a JSON object");
    };
    match obj.get("type") {
        None => ProtoError::new(ErrorCode::MissingField, "missing field `type`"),
        Some(serde_json::Value::String(t)) if !CLIENT_TYPES.contains(&t.as_str()) => {
            ProtoError::new(
                ErrorCode::UnknownType,
                format!("unknown message type `{t}`"),
            )
        }
        Some(serde_json::Value::String(_)) => {
            let msg = err.to_string();
            // serde_json appends " at line 1 column N"; the position is noise to a client.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            if msg.starts_with("missing field") {
                ProtoError::new(ErrorCode::MissingField, msg)
            } else {
                ProtoError::new(ErrorCode::BadRequest, msg)
            }
        }
        Some(_) => ProtoError::new(ErrorCode::BadRequest, "`type` must be a string"),
    }
}

/// Encodes a server message once into shared bytes, ready to queue to any number of clients.
pub fn encode_server(msg: &ServerMsg) -> Bytes {
    // Serialising these plain data types cannot fail: no maps with non-string keys, no
    // user-defined Serialize impls.
    Bytes::from(serde_json::to_vec(msg).expect("server message serialises"))
}

/// How every encoded chat message frame begins: serde writes an internally tagged enum's
/// tag first, and `message` is the only type with this tag.
const MESSAGE_FRAME_PREFIX: &[u8] = br#"{"type":"message","#;

/// Whether an encoded server frame is a chat message (`ServerMsg::Message`), told by its
/// first bytes without decoding it: the server counts deliveries of chat messages apart from
/// presence, topic and other fan-outs, on every fan-out, so a full decode would cost too much.
pub fn is_message_frame(frame: &[u8]) -> bool {
    frame.starts_with(MESSAGE_FRAME_PREFIX)
}

/// Decodes a server frame (for clients).
pub fn decode_server(text: &str) -> Result<ServerMsg, serde_json::Error> {
    serde_json::from_str(text)
}

/// Encodes a client message (for clients).
pub fn encode_client(msg: &ClientMsg) -> String {
    serde_json::to_string(msg).expect("client message serialises")
}

// The tests live in files of their own (codec/): the property strategies cover every message
// type, and the documentation check reads docs/protocol.md.
#[cfg(test)]
mod doc_examples;
#[cfg(test)]
mod samples;
#[cfg(test)]
mod tests;
