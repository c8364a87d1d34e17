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

/// Decodes a server frame (for clients).
pub fn decode_server(text: &str) -> Result<ServerMsg, serde_json::Error> {
    serde_json::from_str(text)
}

/// Encodes a client message (for clients).
pub fn encode_client(msg: &ClientMsg) -> String {
    serde_json::to_string(msg).expect("client message serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{ChatMessage, PresenceEvent};
    use proptest::prelude::*;

    fn code(text: &str) -> ErrorCode {
        decode_client(text).unwrap_err().code
    }

    #[test]
    fn classifies_errors() {
        assert_eq!(code("{not json"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"room":"x"}"#), ErrorCode::MissingField);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"join"}"#), ErrorCode::MissingField);
        assert_eq!(code(r#"{"type":"join","room":5}"#), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"type":7}"#), ErrorCode::BadRequest);
        assert_eq!(
            code(&format!(
                r#"{{"type":"ping","x":"{}"}}"#,
                "a".repeat(70_000)
            )),
            ErrorCode::TooLarge
        );
        let e = decode_client(r#"{"type":"join"}"#).unwrap_err();
        assert_eq!(e.message, "missing field `room`");
    }

    #[test]
    fn decodes_documented_examples() {
        let m = decode_client(r#"{"type":"send","room":"general","text":"hi","ref":"7"}"#);
        assert_eq!(
            m.unwrap(),
            ClientMsg::Send {
                room: Some("general".into()),
                to: None,
                text: "hi".into(),
                reff: Some("7".into())
            }
        );
    }

    #[test]
    fn server_message_shape() {
        let msg = ServerMsg::Message(ChatMessage {
            id: "n1-5".into(),
            stream: "#general".into(),
            from: "alice".into(),
            room: Some("general".into()),
            to: None,
            text: "hi".into(),
            ts: 1,
            lamport: 9,
            origin: "n1".into(),
            oseq: 5,
        });
        let text = String::from_utf8(encode_server(&msg).to_vec()).unwrap();
        assert_eq!(
            text,
            r##"{"type":"message","id":"n1-5","stream":"#general","from":"alice","room":"general","text":"hi","ts":1,"lamport":9,"origin":"n1","oseq":5}"##
        );
        let p = ServerMsg::Presence {
            room: "general".into(),
            name: "bob".into(),
            event: PresenceEvent::Leave,
        };
        let text = String::from_utf8(encode_server(&p).to_vec()).unwrap();
        assert_eq!(
            text,
            r#"{"type":"presence","room":"general","name":"bob","event":"leave"}"#
        );
    }

    #[test]
    fn away_frames() {
        for (text, message) in [
            (
                r#"{"type":"away","message":"lunch","ref":"1"}"#,
                Some("lunch"),
            ),
            (r#"{"type":"away","message":null,"ref":"1"}"#, None),
            (r#"{"type":"away","ref":"1"}"#, None),
        ] {
            assert_eq!(
                decode_client(text).unwrap(),
                ClientMsg::Away {
                    message: message.map(str::to_string),
                    reff: Some("1".into())
                }
            );
        }
        // A hello without `away_events` (every client older than away) still decodes.
        let hello = decode_client(r#"{"type":"hello","v":1,"name":"a"}"#).unwrap();
        assert!(matches!(
            hello,
            ClientMsg::Hello {
                away_events: false,
                ..
            }
        ));
        let back = ServerMsg::Away {
            reff: None,
            name: "bob".into(),
            message: None,
        };
        let text = String::from_utf8(encode_server(&back).to_vec()).unwrap();
        assert_eq!(text, r#"{"type":"away","name":"bob"}"#);
        // A `who` from a node without away, and one with it.
        let old = decode_server(r#"{"type":"who","users":["bob"]}"#).unwrap();
        assert!(matches!(old, ServerMsg::Who { away, .. } if away.is_empty()));
        let new = decode_server(r#"{"type":"who","users":["bob"],"away":{"bob":"lunch"}}"#);
        assert!(matches!(new.unwrap(), ServerMsg::Who { away, .. } if away["bob"] == "lunch"));
    }

    fn arb_opt() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(".{0,20}")
    }

    fn arb_client() -> impl Strategy<Value = ClientMsg> {
        prop_oneof![
            (any::<u32>(), ".{0,40}", arb_opt(), arb_opt()).prop_map(
                |(v, name, password, client)| {
                    ClientMsg::Hello {
                        v,
                        name,
                        password,
                        client,
                        away_events: false,
                    }
                }
            ),
            (".{0,40}", arb_opt()).prop_map(|(room, reff)| ClientMsg::Join { room, reff }),
            (arb_opt(), arb_opt(), ".{0,200}", arb_opt()).prop_map(|(room, to, text, reff)| {
                ClientMsg::Send {
                    room,
                    to,
                    text,
                    reff,
                }
            }),
            (
                arb_opt(),
                arb_opt(),
                proptest::option::of((any::<u64>(), "[a-z]{1,8}")),
                proptest::option::of(proptest::collection::vec(
                    ("[a-z]{1,8}", any::<u64>()),
                    0..4
                )),
                any::<Option<u32>>()
            )
                .prop_map(|(room, with, before, after, limit)| ClientMsg::History {
                    room,
                    with,
                    before: before.map(|(lamport, origin)| crate::Position { lamport, origin }),
                    after: after.map(|v| v.into_iter().collect()),
                    limit,
                    reff: None
                }),
            (".{0,40}", arb_opt(), arb_opt()).prop_map(|(room, topic, reff)| ClientMsg::Topic {
                room,
                topic,
                reff
            }),
            arb_opt().prop_map(|reason| ClientMsg::Bye { reason }),
            (arb_opt(), arb_opt()).prop_map(|(message, reff)| ClientMsg::Away { message, reff }),
        ]
    }

    proptest! {
        #[test]
        fn client_round_trip(msg in arb_client()) {
            let text = encode_client(&msg);
            prop_assert_eq!(decode_client(&text).unwrap(), msg);
        }

        #[test]
        fn server_message_round_trip(oseq in any::<u64>(), lamport in any::<u64>(), ts in any::<u64>(), text in ".{0,300}", from in "[a-z]{1,32}") {
            let msg = ServerMsg::Message(ChatMessage {
                id: format!("n-{oseq}"), stream: "#r".into(), from, room: Some("r".into()),
                to: None, text, ts, lamport, origin: "n".into(), oseq,
            });
            let bytes = encode_server(&msg);
            prop_assert_eq!(decode_server(std::str::from_utf8(&bytes).unwrap()).unwrap(), msg);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let _ = decode_client(&text);
        }
    }
}
