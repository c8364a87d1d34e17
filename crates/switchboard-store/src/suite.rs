//! One test suite, run on every Store implementation.

use switchboard_core::{InboxEntry, Op, OpBody, OpMeta};
use switchboard_proto::ChatMessage;

use crate::{MemoryStore, Page, SqliteStore, Store};

fn meta(oseq: u64) -> OpMeta {
    OpMeta {
        origin: "n1".into(),
        oseq,
        lamport: oseq + 100,
    }
}

fn msg(stream: &str, seq: u64, ts: u64) -> ChatMessage {
    let dm = stream.starts_with('@');
    ChatMessage {
        id: format!("n1-{seq}"),
        stream: stream.into(),
        seq,
        from: "Alice".into(),
        room: (!dm).then(|| "general".into()),
        to: dm.then(|| "Bob".into()),
        text: format!("text {seq}"),
        ts,
    }
}

fn message_op(oseq: u64, m: ChatMessage, queued_for: Option<&str>) -> Op {
    Op {
        meta: meta(oseq),
        body: OpBody::Message {
            msg: m,
            queued_for: queued_for.map(str::to_string),
        },
    }
}

fn run_suite(store: &dyn Store) {
    let empty = store.load("n1").unwrap();
    assert_eq!((empty.clock, empty.oseq), (0, 0));

    let mut ops = vec![
        Op {
            meta: meta(1),
            body: OpBody::Room {
                room: "General".into(),
                ts: 1,
            },
        },
        Op {
            meta: meta(2),
            body: OpBody::Account {
                name: "Bob".into(),
                hash: "$argon2id$x".into(),
                ts: 1,
            },
        },
    ];
    for seq in 1..=120 {
        ops.push(message_op(2 + seq, msg("#general", seq, seq), None));
    }
    store.append(&ops).unwrap();
    store
        .append(&[
            message_op(123, msg("@alice:bob", 1, 50), Some("bob")),
            message_op(124, msg("@alice:bob", 2, 60), Some("bob")),
            Op {
                meta: meta(125),
                body: OpBody::Topic {
                    room: "General".into(),
                    topic: Some("hello".into()),
                    by: "Alice".into(),
                    ts: 2,
                },
            },
        ])
        .unwrap();

    // Appending the same op again changes nothing.
    store
        .append(&[message_op(3, msg("#general", 1, 1), None)])
        .unwrap();

    let r = store.load("n1").unwrap();
    assert_eq!(r.clock, 225);
    assert_eq!(r.oseq, 125);
    assert_eq!(store.load("other").unwrap().oseq, 0);
    assert_eq!(
        r.accounts,
        vec![("Bob".to_string(), "$argon2id$x".to_string())]
    );
    assert_eq!(
        r.rooms,
        vec![("General".to_string(), Some("hello".to_string()), 120)]
    );
    assert_eq!(
        r.dms,
        vec![("@alice:bob".into(), "Alice".into(), "Bob".into(), 2)]
    );
    assert_eq!(r.inbox.len(), 2);
    assert_eq!(r.inbox[0].0, "bob");
    assert_eq!(r.inbox[0].1.seq, 1);

    // Newest page first, then older pages, each ascending.
    let p = store
        .history("#general", Page::Before(None), 50, 0)
        .unwrap();
    assert_eq!(p.messages.first().unwrap().seq, 71);
    assert_eq!(p.messages.last().unwrap().seq, 120);
    assert!(p.more);
    let p = store
        .history("#general", Page::Before(Some(21)), 50, 0)
        .unwrap();
    assert_eq!(
        p.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    assert!(!p.more);
    // Catching up after a cursor.
    let p = store.history("#general", Page::After(100), 15, 0).unwrap();
    assert_eq!(
        p.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (101..=115).collect::<Vec<_>>()
    );
    assert!(p.more);
    let p = store.history("#general", Page::After(115), 15, 0).unwrap();
    assert_eq!(p.messages.len(), 5);
    assert!(!p.more);
    // A floor hides older messages.
    let p = store
        .history("@alice:bob", Page::Before(None), 10, 55)
        .unwrap();
    assert_eq!(
        p.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(p.messages[0], msg("@alice:bob", 2, 60));
    assert!(store
        .history("#nowhere", Page::Before(None), 10, 0)
        .unwrap()
        .messages
        .is_empty());

    store
        .append(&[Op {
            meta: meta(126),
            body: OpBody::InboxDelivered {
                user: "bob".into(),
                entries: vec![InboxEntry {
                    stream: "@alice:bob".into(),
                    seq: 1,
                }],
            },
        }])
        .unwrap();
    let r = store.load("n1").unwrap();
    assert_eq!(r.inbox.len(), 1);
    assert_eq!(r.inbox[0].1.seq, 2);
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
        s.append(&[message_op(1, msg("#general", 1, 1), None)])
            .unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    assert!(s.has_message("n1-1").unwrap());
    assert_eq!(s.load("n1").unwrap().oseq, 1);
}
