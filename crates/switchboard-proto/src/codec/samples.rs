//! Strategies that generate every message type of both directions, for the property tests
//! and the check of docs/protocol.md.
//!
//! Each enum has an exhaustive `match` naming its variants ([`client_index`],
//! [`server_index`]): a new variant does not compile until it is given an index there, and
//! then `*_VARIANTS` is one short, so `strategies_cover_every_variant` fails until the
//! strategy generates it too. Nothing can be added to the protocol untested.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use proptest::test_runner::{Config, TestRunner};

use crate::server::{ContactInfo, DmInfo, Limits, PresenceEvent, RoomInfo};
use crate::{ChatMessage, ClientMsg, Cursor, ErrorCode, Position, ServerMsg};

/// How many variants `ClientMsg` has.
pub(super) const CLIENT_VARIANTS: usize = 15;
/// How many variants `ServerMsg` has.
pub(super) const SERVER_VARIANTS: usize = 18;

/// A number per `ClientMsg` variant, from 0 to `CLIENT_VARIANTS - 1`.
pub(super) fn client_index(m: &ClientMsg) -> usize {
    match m {
        ClientMsg::Hello { .. } => 0,
        ClientMsg::Join { .. } => 1,
        ClientMsg::Leave { .. } => 2,
        ClientMsg::Rooms { .. } => 3,
        ClientMsg::Topic { .. } => 4,
        ClientMsg::Send { .. } => 5,
        ClientMsg::History { .. } => 6,
        ClientMsg::Who { .. } => 7,
        ClientMsg::Whois { .. } => 8,
        ClientMsg::Away { .. } => 9,
        ClientMsg::Ping { .. } => 10,
        ClientMsg::Contacts { .. } => 11,
        ClientMsg::ContactSet { .. } => 12,
        ClientMsg::ContactDelete { .. } => 13,
        ClientMsg::Bye { .. } => 14,
    }
}

/// A number per `ServerMsg` variant, from 0 to `SERVER_VARIANTS - 1`.
pub(super) fn server_index(m: &ServerMsg) -> usize {
    match m {
        ServerMsg::Welcome { .. } => 0,
        ServerMsg::Joined { .. } => 1,
        ServerMsg::Left { .. } => 2,
        ServerMsg::Message(_) => 3,
        ServerMsg::Ack { .. } => 4,
        ServerMsg::History { .. } => 5,
        ServerMsg::Presence { .. } => 6,
        ServerMsg::Rooms { .. } => 7,
        ServerMsg::Topic { .. } => 8,
        ServerMsg::Who { .. } => 9,
        ServerMsg::Whois { .. } => 10,
        ServerMsg::Away { .. } => 11,
        ServerMsg::Pong { .. } => 12,
        ServerMsg::Error { .. } => 13,
        ServerMsg::Shutdown { .. } => 14,
        ServerMsg::Undelivered { .. } => 15,
        ServerMsg::Contacts { .. } => 16,
        ServerMsg::Contact { .. } => 17,
    }
}

/// Any text, including quotes, backslashes, control and non-ASCII characters.
fn text() -> BoxedStrategy<String> {
    ".{0,24}".boxed()
}

fn opt() -> BoxedStrategy<Option<String>> {
    proptest::option::of(text()).boxed()
}

fn cursor() -> BoxedStrategy<Cursor> {
    btree_map("[a-z0-9-]{1,8}", any::<u64>(), 0..4).boxed()
}

fn position() -> BoxedStrategy<Position> {
    (any::<u64>(), text())
        .prop_map(|(lamport, origin)| Position { lamport, origin })
        .boxed()
}

fn names() -> BoxedStrategy<Vec<String>> {
    vec(text(), 0..4).boxed()
}

fn error_code() -> BoxedStrategy<ErrorCode> {
    proptest::sample::select(ErrorCode::ALL.to_vec()).boxed()
}

/// A room message or a direct message.
pub(super) fn chat() -> BoxedStrategy<ChatMessage> {
    (
        (text(), text(), text(), opt(), opt()),
        (text(), any::<u64>(), any::<u64>(), text(), any::<u64>()),
    )
        .prop_map(
            |((id, stream, from, room, to), (text, ts, lamport, origin, oseq))| ChatMessage {
                id,
                stream,
                from,
                room,
                to,
                text,
                ts,
                lamport,
                origin,
                oseq,
            },
        )
        .boxed()
}

/// Every `ClientMsg` variant, with arbitrary field values.
pub(super) fn arb_client() -> BoxedStrategy<ClientMsg> {
    let history =
        (opt(), opt(), proptest::option::of(position())).prop_flat_map(|(room, with, before)| {
            (proptest::option::of(cursor()), any::<Option<u32>>(), opt()).prop_map(
                move |(after, limit, reff)| ClientMsg::History {
                    room: room.clone(),
                    with: with.clone(),
                    before: before.clone(),
                    after,
                    limit,
                    reff,
                },
            )
        });
    Union::new(vec![
        (any::<u32>(), text(), opt(), opt(), any::<bool>())
            .prop_map(
                |(v, name, password, client, away_events)| ClientMsg::Hello {
                    v,
                    name,
                    password,
                    client,
                    away_events,
                },
            )
            .boxed(),
        (text(), opt())
            .prop_map(|(room, reff)| ClientMsg::Join { room, reff })
            .boxed(),
        (text(), opt())
            .prop_map(|(room, reff)| ClientMsg::Leave { room, reff })
            .boxed(),
        opt().prop_map(|reff| ClientMsg::Rooms { reff }).boxed(),
        (text(), opt(), opt())
            .prop_map(|(room, topic, reff)| ClientMsg::Topic { room, topic, reff })
            .boxed(),
        (opt(), opt(), text(), opt())
            .prop_map(|(room, to, text, reff)| ClientMsg::Send {
                room,
                to,
                text,
                reff,
            })
            .boxed(),
        history.boxed(),
        (opt(), opt())
            .prop_map(|(room, reff)| ClientMsg::Who { room, reff })
            .boxed(),
        (text(), opt())
            .prop_map(|(name, reff)| ClientMsg::Whois { name, reff })
            .boxed(),
        (opt(), opt())
            .prop_map(|(message, reff)| ClientMsg::Away { message, reff })
            .boxed(),
        opt().prop_map(|reff| ClientMsg::Ping { reff }).boxed(),
        opt().prop_map(|reff| ClientMsg::Contacts { reff }).boxed(),
        (text(), text(), opt())
            .prop_map(|(name, phone, reff)| ClientMsg::ContactSet { name, phone, reff })
            .boxed(),
        (text(), opt())
            .prop_map(|(name, reff)| ClientMsg::ContactDelete { name, reff })
            .boxed(),
        opt().prop_map(|reason| ClientMsg::Bye { reason }).boxed(),
    ])
    .boxed()
}

fn limits() -> BoxedStrategy<Limits> {
    any::<(u32, u32, u32, u32)>()
        .prop_map(
            |(max_frame_bytes, max_text_bytes, rate_per_sec, burst)| Limits {
                max_frame_bytes,
                max_text_bytes,
                rate_per_sec,
                burst,
            },
        )
        .boxed()
}

fn welcome() -> BoxedStrategy<ServerMsg> {
    let dm = (text(), text(), cursor()).prop_map(|(with, stream, cursor)| DmInfo {
        with,
        stream,
        cursor,
    });
    (
        (any::<u32>(), text(), text(), any::<bool>(), any::<u64>()),
        limits(),
        vec(dm, 0..3),
    )
        .prop_map(
            |((v, node, name, registered, session), limits, dms)| ServerMsg::Welcome {
                v,
                node,
                name,
                registered,
                session,
                limits,
                dms,
            },
        )
        .boxed()
}

/// The replies and events about rooms and users.
fn server_rooms_and_users() -> Vec<BoxedStrategy<ServerMsg>> {
    let room = (text(), any::<u32>(), opt()).prop_map(|(room, members, topic)| RoomInfo {
        room,
        members,
        topic,
    });
    let event = prop_oneof![Just(PresenceEvent::Join), Just(PresenceEvent::Leave)];
    vec![
        (text(), cursor(), opt(), names(), opt())
            .prop_map(|(room, cursor, topic, members, reff)| ServerMsg::Joined {
                room,
                cursor,
                topic,
                members,
                reff,
            })
            .boxed(),
        (text(), opt())
            .prop_map(|(room, reff)| ServerMsg::Left { room, reff })
            .boxed(),
        (text(), text(), event)
            .prop_map(|(room, name, event)| ServerMsg::Presence { room, name, event })
            .boxed(),
        (opt(), vec(room, 0..3))
            .prop_map(|(reff, rooms)| ServerMsg::Rooms { reff, rooms })
            .boxed(),
        (opt(), text(), opt(), opt())
            .prop_map(|(reff, room, topic, by)| ServerMsg::Topic {
                reff,
                room,
                topic,
                by,
            })
            .boxed(),
        (opt(), opt(), names(), btree_map(text(), text(), 0..3))
            .prop_map(|(reff, room, users, away)| ServerMsg::Who {
                reff,
                room,
                users,
                away,
            })
            .boxed(),
        (opt(), text(), any::<(bool, bool)>(), names(), opt())
            .prop_map(
                |(reff, name, (online, registered), rooms, away)| ServerMsg::Whois {
                    reff,
                    name,
                    online,
                    registered,
                    rooms,
                    away,
                },
            )
            .boxed(),
        (opt(), text(), opt())
            .prop_map(|(reff, name, message)| ServerMsg::Away {
                reff,
                name,
                message,
            })
            .boxed(),
    ]
}

/// Messages, their acknowledgements and history.
fn server_messages() -> Vec<BoxedStrategy<ServerMsg>> {
    vec![
        chat().prop_map(ServerMsg::Message).boxed(),
        (
            opt(),
            text(),
            text(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(|(reff, id, stream, lamport, ts, queued)| ServerMsg::Ack {
                reff,
                id,
                stream,
                lamport,
                ts,
                queued,
            })
            .boxed(),
        (opt(), text(), vec(chat(), 0..3), any::<bool>())
            .prop_map(|(reff, stream, messages, more)| ServerMsg::History {
                reff,
                stream,
                messages,
                more,
            })
            .boxed(),
        (text(), text(), text())
            .prop_map(|(to, id, reason)| ServerMsg::Undelivered { to, id, reason })
            .boxed(),
    ]
}

/// Pong, errors, shutdown and contacts.
fn server_other() -> Vec<BoxedStrategy<ServerMsg>> {
    let contact = (text(), text(), any::<bool>()).prop_map(|(name, phone, online)| ContactInfo {
        name,
        phone,
        online,
    });
    vec![
        opt().prop_map(|reff| ServerMsg::Pong { reff }).boxed(),
        (error_code(), text(), opt())
            .prop_map(|(code, message, reff)| ServerMsg::Error {
                code,
                message,
                reff,
            })
            .boxed(),
        text()
            .prop_map(|reason| ServerMsg::Shutdown { reason })
            .boxed(),
        (opt(), vec(contact, 0..3))
            .prop_map(|(reff, contacts)| ServerMsg::Contacts { reff, contacts })
            .boxed(),
        (opt(), text(), opt())
            .prop_map(|(reff, name, phone)| ServerMsg::Contact { reff, name, phone })
            .boxed(),
    ]
}

/// Every `ServerMsg` variant, with arbitrary field values.
pub(super) fn arb_server() -> BoxedStrategy<ServerMsg> {
    let mut all = vec![welcome()];
    all.extend(server_rooms_and_users());
    all.extend(server_messages());
    all.extend(server_other());
    Union::new(all).boxed()
}

/// `n` values drawn from `strategy` with a fixed seed.
pub(super) fn draw<T: std::fmt::Debug>(strategy: &BoxedStrategy<T>, n: usize) -> Vec<T> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).expect("a value").current())
        .collect()
}

/// The wire `type` of a message, read back from its JSON.
pub(super) fn wire_type(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).expect("encoded JSON");
    v["type"].as_str().expect("a type").to_string()
}

/// Each variant's wire `type`, by index: drawn from the strategies, so that it also checks
/// that they cover every variant.
pub(super) fn client_types() -> Vec<String> {
    let mut types = vec![String::new(); CLIENT_VARIANTS];
    for m in draw(&arb_client(), 3_000) {
        types[client_index(&m)] = wire_type(&crate::encode_client(&m));
    }
    types
}

/// See [`client_types`].
pub(super) fn server_types() -> Vec<String> {
    let mut types = vec![String::new(); SERVER_VARIANTS];
    for m in draw(&arb_server(), 3_000) {
        let json = String::from_utf8(crate::encode_server(&m).to_vec()).expect("UTF-8");
        types[server_index(&m)] = wire_type(&json);
    }
    types
}

#[test]
fn strategies_cover_every_variant() {
    let client = client_types();
    let missing: Vec<usize> = (0..CLIENT_VARIANTS)
        .filter(|i| client[*i].is_empty())
        .collect();
    assert!(
        missing.is_empty(),
        "arb_client never makes variants {missing:?}"
    );
    let server = server_types();
    let missing: Vec<usize> = (0..SERVER_VARIANTS)
        .filter(|i| server[*i].is_empty())
        .collect();
    assert!(
        missing.is_empty(),
        "arb_server never makes variants {missing:?}"
    );
    // The list the decoder uses to tell `unknown_type` apart is the enum's own.
    let mut listed: Vec<&str> = crate::client::CLIENT_TYPES.to_vec();
    let mut made: Vec<&str> = client.iter().map(String::as_str).collect();
    listed.sort_unstable();
    made.sort_unstable();
    assert_eq!(listed, made, "CLIENT_TYPES differs from ClientMsg's types");
}
