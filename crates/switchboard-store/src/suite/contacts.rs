//! The store suite's contact registers: last writer wins by (Lamport, origin), tombstones
//! included, whatever the arrival order, on every Store implementation.

use switchboard_core::{Op, OpBody};

use super::meta;
use crate::{MemoryStore, SqliteStore, Store};

/// A contact op of bob's book: a set (`phone` given) or a delete, stamped (lamport, origin),
/// the origin's `oseq`-th op.
fn contact_op(origin: &str, oseq: u64, lamport: u64, name: &str, phone: Option<&str>) -> Op {
    Op {
        meta: meta(origin, oseq, lamport),
        body: match phone {
            Some(p) => OpBody::ContactSet {
                user: "bob".into(),
                name: name.into(),
                phone: p.into(),
                ts: 0,
                shown: None,
            },
            None => OpBody::ContactDelete {
                user: "bob".into(),
                name: name.into(),
                ts: 0,
                shown: None,
            },
        },
    }
}

/// A stored register, as `load` returns it.
fn register(name: &str, phone: Option<&str>, lamport: u64, origin: &str) -> Register {
    (
        "bob".to_string(),
        name.to_string(),
        phone.map(str::to_string),
        (lamport, origin.to_string()),
    )
}

type Register = (String, String, Option<String>, (u64, String));

fn book(store: &dyn Store) -> Vec<Register> {
    let mut c = store.load("n1").unwrap().contacts;
    c.sort();
    c
}

fn contact_registers(store: &dyn Store) {
    let set = |origin: &str, lamport: u64, name: &str, phone: Option<&str>| {
        contact_op(origin, lamport, lamport, name, phone)
    };
    // Arrival order does not matter: the later stamp wins, and a tombstone beats an older set.
    store
        .append(&[set("n2", 5, "Juan", Some("222"))], 0)
        .unwrap();
    store
        .append(&[set("n1", 4, "Juan", Some("111"))], 0)
        .unwrap();
    store
        .append(
            &[set("n1", 7, "Ana", None), set("n3", 6, "Ana", Some("333"))],
            0,
        )
        .unwrap();
    assert_eq!(
        book(store),
        vec![
            register("Ana", None, 7, "n1"),
            register("Juan", Some("222"), 5, "n2"),
        ]
    );
}

#[test]
fn contacts_are_last_writer_wins_registers() {
    contact_registers(&MemoryStore::new());
    let dir = tempfile::tempdir().unwrap();
    contact_registers(&SqliteStore::open(dir.path()).unwrap());
}

/// Two nodes edit the same contact at the same Lamport clock (concurrent edits): the origin
/// breaks the tie, the greater name winning, in whichever order (and batch) the ops arrive,
/// so every node's store keeps the same register.
fn equal_lamport_ties(store: &dyn Store) {
    // Juan: n1 then n2 in separate batches; Ana: n2 then n1; Bea: one batch, a delete from
    // the greater origin against a set from the smaller one; Caio: the reverse.
    store
        .append(&[contact_op("n1", 1, 9, "Juan", Some("111"))], 0)
        .unwrap();
    store
        .append(&[contact_op("n2", 1, 9, "Juan", Some("222"))], 0)
        .unwrap();
    store
        .append(&[contact_op("n2", 2, 9, "Ana", Some("222"))], 0)
        .unwrap();
    store
        .append(&[contact_op("n1", 2, 9, "Ana", Some("111"))], 0)
        .unwrap();
    store
        .append(
            &[
                contact_op("n1", 3, 9, "Bea", Some("111")),
                contact_op("n2", 3, 9, "Bea", None),
            ],
            0,
        )
        .unwrap();
    store
        .append(
            &[
                contact_op("n2", 4, 9, "Caio", Some("222")),
                contact_op("n1", 4, 9, "Caio", None),
            ],
            0,
        )
        .unwrap();
    assert_eq!(
        book(store),
        vec![
            register("Ana", Some("222"), 9, "n2"),
            register("Bea", None, 9, "n2"),
            register("Caio", Some("222"), 9, "n2"),
            register("Juan", Some("222"), 9, "n2"),
        ]
    );
}

#[test]
fn an_equal_lamport_clock_is_decided_by_the_origin() {
    equal_lamport_ties(&MemoryStore::new());
    let dir = tempfile::tempdir().unwrap();
    equal_lamport_ties(&SqliteStore::open(dir.path()).unwrap());
}
