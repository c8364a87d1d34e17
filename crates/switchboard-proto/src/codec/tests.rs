//! The codec's unit and property tests.

use super::samples;
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

#[test]
fn message_frames_are_told_by_their_first_bytes() {
    let msg = ServerMsg::Message(ChatMessage {
        id: "n1-1".into(),
        stream: "@a:b".into(),
        from: "a".into(),
        room: None,
        to: Some("b".into()),
        text: "{\"type\":\"message\",".into(),
        ts: 1,
        lamport: 1,
        origin: "n1".into(),
        oseq: 1,
    });
    assert!(is_message_frame(&encode_server(&msg)));
    for other in samples::draw(&samples::arb_server(), 500) {
        let frame = encode_server(&other);
        let is_message = matches!(other, ServerMsg::Message(_));
        assert_eq!(is_message_frame(&frame), is_message, "{other:?}");
    }
}

/// How a valid frame is spoilt.
#[derive(Debug, Clone)]
enum Mutation {
    /// Cut after this many characters (less than the whole).
    Truncate(usize),
    /// `type` becomes this unknown name.
    UnknownType(String),
    /// `type` becomes this known name.
    OtherType(&'static str),
    /// The value of the n-th field (other than `type`) becomes one of another JSON kind.
    WrongFieldType(usize),
    /// `type` becomes a number.
    TypeNotString,
    /// `type` is left out.
    NoType,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        "[a-z_]{1,12}"
            .prop_filter("unknown", |t| !crate::client::CLIENT_TYPES
                .contains(&t.as_str()))
            .prop_map(Mutation::UnknownType),
        proptest::sample::select(crate::client::CLIENT_TYPES).prop_map(Mutation::OtherType),
        any::<usize>().prop_map(Mutation::WrongFieldType),
        Just(Mutation::TypeNotString),
        Just(Mutation::NoType),
    ]
}

/// A value of a different JSON kind than `v`: never acceptable where `v` was.
fn other_kind(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(_) => Value::String("5".into()),
        Value::Null | Value::Bool(_) | Value::String(_) | Value::Array(_) | Value::Object(_) => {
            Value::from(5)
        }
    }
}

/// Applies `m` to the encoding of `msg`; returns the spoilt text and the error code it must
/// get, or `None` when the spoilt frame may still be valid (another type that happens to take
/// the same fields).
fn spoil(msg: &ClientMsg, m: &Mutation) -> Option<(String, Option<ErrorCode>)> {
    let text = encode_client(msg);
    let mut obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    let code = match m {
        Mutation::Truncate(at) => {
            let chars: Vec<char> = text.chars().collect();
            let cut: String = chars[..at % chars.len()].iter().collect();
            return Some((cut, Some(ErrorCode::BadJson)));
        }
        Mutation::UnknownType(t) => {
            obj.insert("type".into(), t.clone().into());
            Some(ErrorCode::UnknownType)
        }
        Mutation::OtherType(t) => {
            obj.insert("type".into(), (*t).into());
            None
        }
        Mutation::WrongFieldType(n) => {
            let fields: Vec<String> = obj.keys().filter(|k| *k != "type").cloned().collect();
            if fields.is_empty() {
                return None;
            }
            let key = &fields[n % fields.len()];
            let spoilt = other_kind(&obj[key]);
            obj.insert(key.clone(), spoilt);
            Some(ErrorCode::BadRequest)
        }
        Mutation::TypeNotString => {
            obj.insert("type".into(), 7.into());
            Some(ErrorCode::BadRequest)
        }
        Mutation::NoType => {
            obj.remove("type");
            Some(ErrorCode::MissingField)
        }
    };
    Some((serde_json::Value::Object(obj).to_string(), code))
}

proptest! {
    #[test]
    fn client_round_trip(msg in samples::arb_client()) {
        let text = encode_client(&msg);
        prop_assert_eq!(decode_client(&text).unwrap(), msg);
    }

    #[test]
    fn server_round_trip(msg in samples::arb_server()) {
        let bytes = encode_server(&msg);
        prop_assert_eq!(decode_server(std::str::from_utf8(&bytes).unwrap()).unwrap(), msg);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = decode_client(&text);
        let _ = decode_server(&text);
    }

    #[test]
    fn spoilt_frames_get_the_right_error(msg in samples::arb_client(), m in mutation()) {
        let Some((text, want)) = spoil(&msg, &m) else { return Ok(()) };
        match (decode_client(&text), want) {
            (Err(e), Some(want)) => prop_assert_eq!(e.code, want, "{} -> {}", text, e.message),
            (Ok(got), Some(_)) => prop_assert!(false, "{} decoded as {:?}", text, got),
            // Another known type: valid only as that type, else refused as malformed.
            (Ok(got), None) => {
                let Mutation::OtherType(t) = &m else { unreachable!() };
                prop_assert_eq!(samples::wire_type(&encode_client(&got)), *t);
            }
            (Err(e), None) => prop_assert!(
                matches!(e.code, ErrorCode::BadRequest | ErrorCode::MissingField),
                "{} -> {:?}", text, e
            ),
        }
        // A server frame spoilt the same ways is refused too, never a panic.
        let server = encode_server(&ServerMsg::Pong { reff: msg.reff().map(str::to_string) });
        let server = std::str::from_utf8(&server).unwrap();
        let cut = server.char_indices().nth(server.chars().count() / 2).unwrap().0;
        prop_assert!(decode_server(&server[..cut]).is_err());
    }
}
