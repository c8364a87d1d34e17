//! One test suite, run on every Store implementation.

use std::collections::BTreeMap;

use switchboard_core::{InboxEntry, Op, OpBody, OpMeta};
use switchboard_proto::{ChatMessage, Cursor, Position};

use crate::{Bound, MemoryStore, Page, SqliteStore, Store};

mod contacts;

fn meta(origin: &str, oseq: u64, lamport: u64) -> OpMeta {
    OpMeta {
        origin: origin.into(),
        oseq,
        lamport,
    }
}

fn msg(stream: &str, origin: &str, oseq: u64, lamport: u64, ts: u64) -> ChatMessage {
    let dm = stream.starts_with('@');
    ChatMessage {
        id: format!("{origin}-{oseq}"),
        stream: stream.into(),
        from: "Alice".into(),
        room: (!dm).then(|| "general".into()),
        to: dm.then(|| "Bob".into()),
        text: format!("text {origin}-{oseq}"),
        ts,
        lamport,
        origin: origin.into(),
        oseq,
    }
}

fn message_op(m: ChatMessage, queued_for: Option<&str>) -> Op {
    Op {
        meta: meta(&m.origin.clone(), m.oseq, m.lamport),
        body: OpBody::Message {
            msg: m,
            queued_for: queued_for.map(str::to_string),
        },
    }
}

fn ids(page: &[ChatMessage]) -> Vec<String> {
    page.iter().map(|m| m.id.clone()).collect()
}

fn run_suite(store: &dyn Store) {
    let empty = store.load("n1").unwrap();
    assert_eq!((empty.clock, empty.oseq), (0, 0));

    let mut ops = vec![
        Op {
            meta: meta("n1", 1, 1),
            body: OpBody::Room {
                room: "General".into(),
                ts: 1,
            },
        },
        Op {
            meta: meta("n1", 2, 2),
            body: OpBody::Account {
                name: "Bob".into(),
                hash: "$argon2id$x".into(),
                ts: 1,
            },
        },
    ];
    // 120 messages from n1 (lamport 10, 12, 14...) and 10 from n2 interleaved (lamport 11, 13...).
    for i in 1..=120 {
        ops.push(message_op(msg("#general", "n1", 2 + i, 8 + 2 * i, i), None));
    }
    for i in 1..=10 {
        ops.push(message_op(msg("#general", "n2", i, 9 + 2 * i, i), None));
    }
    store.append(&ops, 0).unwrap();
    store
        .append(
            &[
                message_op(msg("@alice:bob", "n1", 123, 300, 50), Some("bob")),
                message_op(msg("@alice:bob", "n1", 124, 301, 60), Some("bob")),
                Op {
                    meta: meta("n1", 125, 302),
                    body: OpBody::Topic {
                        room: "General".into(),
                        topic: Some("hello".into()),
                        by: "Alice".into(),
                        ts: 2,
                    },
                },
            ],
            0,
        )
        .unwrap();
    // Appending the same op again changes nothing.
    store
        .append(&[message_op(msg("#general", "n1", 3, 10, 1), None)], 0)
        .unwrap();

    let r = store.load("n1").unwrap();
    assert_eq!(r.clock, 302);
    assert_eq!(r.oseq, 125);
    assert_eq!(store.load("n2").unwrap().oseq, 10);
    assert_eq!(
        r.vv,
        BTreeMap::from([("n1".to_string(), 125), ("n2".to_string(), 10)])
    );
    assert_eq!(
        r.accounts,
        vec![(
            "Bob".to_string(),
            "$argon2id$x".to_string(),
            (2, "n1".to_string())
        )]
    );
    let general = Cursor::from([("n1".to_string(), 122), ("n2".to_string(), 10)]);
    let topic_at = (302, "n1".to_string());
    assert_eq!(
        r.rooms,
        vec![(
            "General".to_string(),
            Some("hello".to_string()),
            general,
            topic_at
        )]
    );
    let dm = Cursor::from([("n1".to_string(), 124)]);
    assert_eq!(
        r.dms,
        vec![("@alice:bob".into(), "Alice".into(), "Bob".into(), dm)]
    );
    assert_eq!(r.inbox.len(), 2);
    assert_eq!(r.inbox[0].0, "bob");
    assert_eq!(r.inbox[0].1.oseq, 123);

    // The newest page first, in stream order (lamport, origin).
    let p = store
        .history("#general", Page::Before(None), 50, 0)
        .unwrap();
    assert_eq!(p.messages.len(), 50);
    assert_eq!(p.messages.last().unwrap().id, "n1-122");
    assert!(p
        .messages
        .windows(2)
        .all(|w| w[0].position() < w[1].position()));
    assert!(p.more);
    // Paging back to the start covers every message once.
    let mut seen = ids(&p.messages);
    let mut before = p.messages[0].position();
    loop {
        let p = store
            .history("#general", Page::Before(Some(before.clone())), 50, 0)
            .unwrap();
        let mut page = ids(&p.messages);
        page.extend(seen);
        seen = page;
        if !p.more {
            break;
        }
        before = p.messages[0].position();
    }
    assert_eq!(seen.len(), 130);
    assert_eq!(&seen[..3], ["n1-3", "n2-1", "n1-4"]);
    // Catching up from a cursor: exactly what it does not cover, in stream order.
    let cursor = Cursor::from([("n1".to_string(), 10)]);
    let p = store
        .history("#general", Page::After(cursor), 15, 0)
        .unwrap();
    assert_eq!(&ids(&p.messages)[..4], ["n2-1", "n2-2", "n2-3", "n2-4"]);
    assert!(p.more);
    let cursor = Cursor::from([("n1".to_string(), 120), ("n2".to_string(), 10)]);
    let p = store
        .history("#general", Page::After(cursor), 15, 0)
        .unwrap();
    assert_eq!(ids(&p.messages), ["n1-121", "n1-122"]);
    assert!(!p.more);
    // A floor hides older messages.
    let p = store
        .history("@alice:bob", Page::Before(None), 10, 55)
        .unwrap();
    assert_eq!(ids(&p.messages), ["n1-124"]);
    assert_eq!(p.messages[0], msg("@alice:bob", "n1", 124, 301, 60));
    let nowhere = store
        .history("#nowhere", Page::Before(None), 10, 0)
        .unwrap();
    assert!(nowhere.messages.is_empty());
    let pos = Position {
        lamport: 13,
        origin: "n1".into(),
    };
    let p = store
        .history("#general", Page::Before(Some(pos)), 10, 0)
        .unwrap();
    assert_eq!(
        ids(&p.messages),
        ["n1-3", "n2-1", "n1-4"],
        "(13, n2) sorts after (13, n1)"
    );
    // Forward from a message's position, strictly after it, in stream order.
    let p = store
        .history("#general", since(seen_pos(&seen, store, 1)), 3, 0)
        .unwrap();
    assert_eq!(ids(&p.messages), seen[2..5]);
    assert!(p.more);
    let last = store
        .history("#general", Page::Before(None), 1, 0)
        .unwrap()
        .messages[0]
        .position();
    let p = store.history("#general", since(last), 3, 0).unwrap();
    assert!(p.messages.is_empty() && !p.more);
    between(store, &seen);

    store
        .append(
            &[Op {
                meta: meta("n1", 126, 303),
                body: OpBody::InboxDelivered {
                    user: "bob".into(),
                    entries: vec![InboxEntry {
                        origin: "n1".into(),
                        oseq: 123,
                    }],
                },
            }],
            0,
        )
        .unwrap();
    let r = store.load("n1").unwrap();
    assert_eq!(r.inbox.len(), 1);
    assert_eq!(r.inbox[0].1.oseq, 124);

    // What a peer lacks: everything past its vector, each origin in order.
    let vv = BTreeMap::from([("n1".to_string(), 120), ("n2".to_string(), 10)]);
    let lack = store.ops_since(&vv, 100).unwrap();
    let ids: Vec<(String, u64)> = lack
        .iter()
        .map(|o| (o.meta.origin.clone(), o.meta.oseq))
        .collect();
    let want: Vec<(String, u64)> = (121..=126).map(|n| ("n1".to_string(), n)).collect();
    assert_eq!(ids, want);
    assert!(
        matches!(
            &lack[2].body,
            OpBody::Message {
                queued_for: None,
                ..
            }
        ),
        "delivered"
    );
    assert!(
        matches!(
            &lack[3].body,
            OpBody::Message {
                queued_for: Some(_),
                ..
            }
        ),
        "waiting"
    );
    assert!(matches!(&lack[4].body, OpBody::Topic { .. }));
    assert_eq!(store.ops_since(&BTreeMap::new(), 1000).unwrap().len(), 136);
    assert_eq!(store.ops_since(&BTreeMap::new(), 7).unwrap().len(), 7);

    // Concurrent registrations of one name: the earliest (Lamport, origin) wins everywhere,
    // whatever the order they arrive in. Topics: the latest wins.
    let account = |origin: &str, lamport: u64, hash: &str| Op {
        meta: meta(origin, 500 + lamport, lamport),
        body: OpBody::Account {
            name: "Zed".into(),
            hash: hash.into(),
            ts: 0,
        },
    };
    store.append(&[account("n2", 400, "late")], 0).unwrap();
    store.append(&[account("n3", 399, "early")], 0).unwrap();
    store.append(&[account("n1", 401, "later")], 0).unwrap();
    let r = store.load("n1").unwrap();
    let zed = r.accounts.iter().find(|a| a.0 == "Zed").unwrap();
    assert_eq!(
        (zed.1.as_str(), &zed.2),
        ("early", &(399, "n3".to_string()))
    );
    let topic = |origin: &str, lamport: u64, t: &str| Op {
        meta: meta(origin, 600 + lamport, lamport),
        body: OpBody::Topic {
            room: "General".into(),
            topic: Some(t.into()),
            by: "x".into(),
            ts: 0,
        },
    };
    store.append(&[topic("n2", 700, "newest")], 0).unwrap();
    store.append(&[topic("n3", 650, "older")], 0).unwrap();
    let r = store.load("n1").unwrap();
    assert_eq!(r.rooms[0].1.as_deref(), Some("newest"));
}

fn clock_is_kept(store: &dyn Store) {
    store
        .append(&[message_op(msg("#c", "n1", 1, 5, 1), None)], 900)
        .unwrap();
    assert_eq!(
        store.load("n1").unwrap().clock,
        900,
        "a clock heard of survives"
    );
    store.append(&[], 100).unwrap();
    assert_eq!(store.load("n1").unwrap().clock, 900, "and never goes back");
}

#[test]
fn clocks_never_go_back() {
    clock_is_kept(&MemoryStore::new());
    let dir = tempfile::tempdir().unwrap();
    clock_is_kept(&SqliteStore::open(dir.path()).unwrap());
}

/// The global version vector leaves out what travels by interest: room messages, and direct
/// messages that were not queued for an offline recipient.
fn global_vector(store: &dyn Store) {
    let room = Op {
        meta: meta("x", 1, 1),
        body: OpBody::Room {
            room: "general".into(),
            ts: 1,
        },
    };
    store
        .append(
            &[
                room,
                message_op(msg("#general", "x", 2, 2, 2), None),
                message_op(msg("@alice:bob", "x", 3, 3, 3), Some("bob")),
                message_op(msg("@alice:bob", "x", 4, 4, 4), None),
                message_op(msg("#general", "y", 1, 5, 5), None),
            ],
            5,
        )
        .unwrap();
    let vv = store.global_vv().unwrap();
    assert_eq!(vv.get("x"), Some(&3));
    assert_eq!(vv.get("y"), None);
    assert_eq!(store.load("n1").unwrap().vv.get("x"), Some(&4));
    // One origin's ops after a point, of every kind, in order.
    let seqs = |after, limit| -> Vec<u64> {
        let ops = store.ops_of("x", after, limit).unwrap();
        ops.iter().map(|o| o.meta.oseq).collect()
    };
    assert_eq!(seqs(1, 2), [2, 3]);
    assert_eq!(seqs(0, 10), [1, 2, 3, 4]);
    assert!(seqs(4, 10).is_empty());
    assert!(store.ops_of("z", 0, 10).unwrap().is_empty());
    // A queued message stays a global op once delivered (its inbox entry gone).
    let delivered = Op {
        meta: meta("x", 5, 6),
        body: OpBody::InboxDelivered {
            user: "bob".into(),
            entries: vec![InboxEntry {
                origin: "x".into(),
                oseq: 3,
            }],
        },
    };
    store.append(&[delivered], 6).unwrap();
    let queued = store.ops_of("x", 2, 1).unwrap();
    assert!(!switchboard_core::Core::is_scoped(&queued[0]), "{queued:?}");
    // The message of an origin in a stream before a given one.
    assert_eq!(store.prev_in_stream("@alice:bob", "x", 4).unwrap(), 3);
    assert_eq!(store.prev_in_stream("@alice:bob", "x", 3).unwrap(), 0);
    assert_eq!(store.prev_in_stream("#general", "x", 9).unwrap(), 2);
}

#[test]
fn the_global_vector_counts_what_every_node_receives() {
    global_vector(&MemoryStore::new());
    let dir = tempfile::tempdir().unwrap();
    global_vector(&SqliteStore::open(dir.path()).unwrap());
}

#[test]
fn memory_store() {
    run_suite(&MemoryStore::new());
}

#[test]
fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    run_suite(&SqliteStore::open(dir.path()).unwrap());
}

#[test]
fn sqlite_store_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SqliteStore::open(dir.path()).unwrap();
        s.append(&[message_op(msg("#general", "n1", 1, 1, 1), None)], 0)
            .unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    assert!(s.has_message("n1-1").unwrap());
    assert_eq!(s.load("n1").unwrap().oseq, 1);
}

/// Forwards from a message's place, strictly after it.
fn since(p: Position) -> Page {
    Page::Between {
        after: Bound::Position(p),
        before: Bound::Open,
        newest: false,
    }
}

/// `Page::Between`: positions (either end in or out), times, both mixed, either direction.
fn between(store: &dyn Store, seen: &[String]) {
    let at = |i: usize| seen_pos(seen, store, i);
    let page = |after, before, newest, limit| {
        let p = store
            .history(
                "#general",
                Page::Between {
                    after,
                    before,
                    newest,
                },
                limit,
                0,
            )
            .unwrap();
        (ids(&p.messages), p.more)
    };
    let (pos, inc) = (Bound::Position, Bound::Including);
    assert_eq!(
        page(pos(at(1)), pos(at(5)), false, 10),
        (seen[2..5].to_vec(), false)
    );
    assert_eq!(
        page(pos(at(1)), pos(at(5)), false, 2),
        (seen[2..4].to_vec(), true)
    );
    assert_eq!(
        page(pos(at(1)), pos(at(5)), true, 2),
        (seen[3..5].to_vec(), true)
    );
    assert_eq!(
        page(inc(at(1)), inc(at(3)), false, 10),
        (seen[1..4].to_vec(), false)
    );
    // Times filter: ts 3 is n1-5 and n2-3, in stream order.
    let ts3 = vec!["n1-5".to_string(), "n2-3".to_string()];
    let (t2, t4) = (Bound::Time(2), Bound::Time(4));
    assert_eq!(
        page(t2.clone(), t4.clone(), false, 10),
        (ts3.clone(), false)
    );
    assert_eq!(page(t2, t4, true, 1), (ts3[1..].to_vec(), true));
    assert_eq!(
        page(pos(at(0)), Bound::Time(2), false, 10),
        (vec!["n2-1".to_string()], false)
    );
    assert_eq!(
        page(Bound::Open, Bound::Open, true, 1),
        (vec!["n1-122".to_string()], true)
    );
    assert_eq!(
        page(Bound::Open, Bound::Open, false, 2),
        (seen[..2].to_vec(), true)
    );
    // The floor still hides older messages.
    let open = Page::Between {
        after: Bound::Open,
        before: Bound::Open,
        newest: true,
    };
    let p = store.history("@alice:bob", open, 10, 55).unwrap();
    assert_eq!(ids(&p.messages), ["n1-124"]);
}

/// The position of the `i`th message of `#general` (ids in stream order in `seen`).
fn seen_pos(seen: &[String], store: &dyn Store, i: usize) -> Position {
    let all = store
        .history("#general", Page::Before(None), 500, 0)
        .unwrap()
        .messages;
    all.iter().find(|m| m.id == seen[i]).unwrap().position()
}

#[test]
fn sqlite_opens_a_database_made_before_queued_messages_were_marked() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = rusqlite::Connection::open(dir.path().join("switchboard.db")).unwrap();
        c.execute_batch(
            "CREATE TABLE messages (
                stream TEXT NOT NULL, lamport INTEGER NOT NULL, origin TEXT NOT NULL, oseq INTEGER NOT NULL,
                id TEXT NOT NULL, sender TEXT NOT NULL, room TEXT, recipient TEXT, text TEXT NOT NULL,
                ts INTEGER NOT NULL, PRIMARY KEY (stream, lamport, origin)) WITHOUT ROWID;
             CREATE TABLE inbox (user TEXT NOT NULL, origin TEXT NOT NULL, oseq INTEGER NOT NULL,
                ts INTEGER NOT NULL, PRIMARY KEY (user, origin, oseq)) WITHOUT ROWID;
             INSERT INTO messages VALUES ('@alice:bob', 1, 'x', 1, 'x-1', 'Alice', NULL, 'Bob', 'hi', 1);
             INSERT INTO messages VALUES ('@alice:bob', 2, 'x', 2, 'x-2', 'Alice', NULL, 'Bob', 'hi', 2);
             INSERT INTO inbox VALUES ('bob', 'x', 1, 1);",
        )
        .unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    // The message still waiting in an inbox was queued: a global op.
    assert_eq!(s.global_vv().unwrap().get("x"), Some(&1));
    assert_eq!(s.load("n1").unwrap().inbox.len(), 1);
}

#[test]
fn sqlite_opens_a_database_made_with_the_stream_origin_index() {
    let dir = tempfile::tempdir().unwrap();
    {
        // What the previous version made: two origins writing in two streams, and its index.
        let s = SqliteStore::open(dir.path()).unwrap();
        let ops: Vec<Op> = [
            ("@alice:bob", "n1", 1, 1),
            ("@alice:bob", "n2", 1, 2),
            ("#general", "n1", 2, 3),
            ("@alice:bob", "n1", 3, 4),
            ("@alice:bob", "n2", 2, 5),
            ("#general", "n1", 4, 6),
        ]
        .into_iter()
        .map(|(stream, origin, oseq, lamport)| {
            message_op(msg(stream, origin, oseq, lamport, lamport), None)
        })
        .collect();
        s.append(&ops, 6).unwrap();
        drop(s);
        let c = rusqlite::Connection::open(dir.path().join("switchboard.db")).unwrap();
        c.execute_batch(
            "DELETE FROM stream_origins;
             CREATE INDEX messages_by_stream_origin ON messages (stream, origin, oseq);",
        )
        .unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    // n1's messages past its 2 (which is in the other stream), and all of n2's.
    let cursor = Cursor::from([("n1".to_string(), 2)]);
    let p = s.history("@alice:bob", Page::After(cursor), 10, 0).unwrap();
    assert_eq!(ids(&p.messages), ["n2-1", "n1-3", "n2-2"]);
    // n1 has nothing past its 3: only n2's newer message.
    let cursor = Cursor::from([("n1".to_string(), 3), ("n2".to_string(), 1)]);
    let p = s.history("@alice:bob", Page::After(cursor), 10, 0).unwrap();
    assert_eq!(ids(&p.messages), ["n2-2"]);
    let load = s.load("n1").unwrap();
    assert_eq!(load.dms.len(), 1);
    assert_eq!(
        load.dms[0].3,
        Cursor::from([("n1".into(), 3), ("n2".into(), 2)])
    );
    assert_eq!(s.prev_in_stream("@alice:bob", "n1", 3).unwrap(), 1);
    let c = rusqlite::Connection::open(dir.path().join("switchboard.db")).unwrap();
    let index: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages_by_stream_origin'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(index, 0, "the index is dropped");
}
