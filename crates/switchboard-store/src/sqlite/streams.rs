//! Reading a stream by origin: what a node has of it (its cursor), the messages past a
//! client's cursor (catch-up), and an origin's previous message in it.
//!
//! These once used an index on `(stream, origin, oseq)`. Each message added a leaf of it to
//! the commit's writes, one per conversation in the batch: with it a cluster at 10,000 dm/s
//! had p99 100-138 ms, without it 27-56 ms, and a node's dm flat out was 10-25% slower
//! (docs/benchmarks.md). They read the primary key `(stream, lamport, origin)` instead, on
//! one fact: an origin stamps its ops with a Lamport clock and a sequence that rise
//! together, so "after sequence x of origin O" is "after the Lamport stamp of O's last
//! message at or before x" (found in the `(origin, oseq)` index).
//!
//! Which origins wrote in a stream, with the stamps of their first and last messages there,
//! is the small table `stream_origins`, one row per (stream, origin), updated with each
//! message. Its rows are a few dozen bytes, so a commit to a hundred conversations touches
//! a few of its pages, where the index touched a leaf per conversation.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use switchboard_proto::{ChatMessage, Cursor};

use super::{message_from_row, MSG_COLS};

/// The table of who wrote where: per stream and origin, the stamp of its first and last
/// message there, and the sequence of the last.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stream_origins (
    stream TEXT NOT NULL, origin TEXT NOT NULL, first_lamport INTEGER NOT NULL,
    last_lamport INTEGER NOT NULL, last_oseq INTEGER NOT NULL,
    PRIMARY KEY (stream, origin)
) WITHOUT ROWID;
";

/// Records that `origin` wrote in `stream` at `lamport` (?3) with sequence `oseq` (?4).
/// Messages may be stored out of order (a catch-up), hence the MIN and MAX.
pub(super) const NOTE_ORIGIN: &str = "
INSERT INTO stream_origins (stream, origin, first_lamport, last_lamport, last_oseq)
    VALUES (?1, ?2, ?3, ?3, ?4)
ON CONFLICT (stream, origin) DO UPDATE SET
    first_lamport = MIN(first_lamport, excluded.first_lamport),
    last_oseq = CASE WHEN excluded.last_lamport > last_lamport THEN excluded.last_oseq ELSE last_oseq END,
    last_lamport = MAX(last_lamport, excluded.last_lamport)";

/// Creates `stream_origins`; for a database made before it, fills it from the messages (in
/// one pass) and drops the index it replaces. Since then both are written in the same
/// transaction, so messages without any `stream_origins` row mean an older database.
pub(super) fn create(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch(SCHEMA)?;
    let older: bool = c.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM stream_origins) AND EXISTS (SELECT 1 FROM messages)",
        [],
        |row| row.get(0),
    )?;
    if older {
        c.execute(
            "INSERT OR IGNORE INTO stream_origins (stream, origin, first_lamport, last_lamport, last_oseq)
                 SELECT stream, origin, MIN(lamport), MAX(lamport), MAX(oseq)
                 FROM messages GROUP BY stream, origin",
            [],
        )?;
    }
    c.execute_batch("DROP INDEX IF EXISTS messages_by_stream_origin;")
}

/// Per origin that wrote in `stream`: the stamps of its first and last message there.
fn origins(c: &Connection, stream: &str) -> rusqlite::Result<Vec<(String, i64, i64)>> {
    c.prepare_cached(
        "SELECT origin, first_lamport, last_lamport FROM stream_origins WHERE stream = ?1",
    )?
    .query_map([stream], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
    .collect()
}

/// The Lamport stamp of `origin`'s last message at or before sequence `oseq`, in any
/// stream; `None` if it has none.
fn stamp_at(c: &Connection, origin: &str, oseq: u64) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached(
        "SELECT lamport FROM messages WHERE origin = ?1 AND oseq <= ?2 ORDER BY oseq DESC LIMIT 1",
    )?
    .query_row(params![origin, oseq.min(i64::MAX as u64) as i64], |row| {
        row.get(0)
    })
    .optional()
}

/// `origin`'s latest message in `stream` stamped before `below`: its sequence, or 0.
fn last_before(c: &Connection, stream: &str, origin: &str, below: i64) -> rusqlite::Result<u64> {
    let found: Option<i64> = c
        .prepare_cached(
            "SELECT oseq FROM messages WHERE stream = ?1 AND lamport < ?3 AND origin = ?2
             ORDER BY lamport DESC LIMIT 1",
        )?
        .query_row(params![stream, origin, below], |row| row.get(0))
        .optional()?;
    Ok(found.unwrap_or(0) as u64)
}

/// What a node has of one stream: origin -> highest oseq.
pub(super) fn cursor(c: &Connection, stream: &str) -> rusqlite::Result<Cursor> {
    c.prepare_cached("SELECT origin, last_oseq FROM stream_origins WHERE stream = ?1")?
        .query_map([stream], |row| {
            Ok((row.get(0)?, row.get::<_, i64>(1)? as u64))
        })?
        .collect()
}

/// `origin`'s last message in `stream` before its sequence `before`: its sequence, or 0.
pub(super) fn prev_in_stream(
    c: &Connection,
    stream: &str,
    origin: &str,
    before: u64,
) -> rusqlite::Result<u64> {
    let Some(first) = before.checked_sub(1) else {
        return Ok(0);
    };
    // Everything of the origin up to `before - 1` is stamped at most this.
    let Some(stamp) = stamp_at(c, origin, first)? else {
        return Ok(0);
    };
    last_before(c, stream, origin, stamp.saturating_add(1))
}

/// The first `n` messages of `stream` past `cursor` (per origin, past its sequence there; all
/// of an origin it does not name), in stream order, from `floor` on.
///
/// One scan of the stream from the lowest place of an origin with something new, skipping
/// what each origin already had seen: its cost is the stream's messages since the client
/// left off (roughly), not the stream's length.
pub(super) fn after(
    c: &Connection,
    stream: &str,
    cursor: &Cursor,
    floor: i64,
    n: usize,
) -> rusqlite::Result<Vec<ChatMessage>> {
    // Per origin: the stamp its messages must be above. An origin with nothing past it
    // does not lower where the scan starts (an origin silent since long ago).
    let mut above: BTreeMap<String, i64> = BTreeMap::new();
    let mut from = i64::MAX;
    for (origin, first, last) in origins(c, stream)? {
        let seen = match cursor.get(&origin) {
            Some(&x) if x > 0 => stamp_at(c, &origin, x)?.unwrap_or(first - 1),
            _ => first - 1,
        };
        if last > seen {
            from = from.min(seen);
        }
        above.insert(origin, seen);
    }
    if from == i64::MAX {
        return Ok(Vec::new());
    }
    let mut st = c.prepare_cached(&format!(
        "SELECT {MSG_COLS} FROM messages WHERE stream = ?1 AND lamport > ?2 AND ts >= ?3
         ORDER BY lamport ASC, origin ASC"
    ))?;
    let mut rows = st.query(params![stream, from, floor])?;
    let mut out = Vec::new();
    while out.len() < n {
        let Some(row) = rows.next()? else { break };
        let m = message_from_row(row)?;
        if above
            .get(&m.origin)
            .is_none_or(|&seen| m.lamport as i64 > seen)
        {
            out.push(m);
        }
    }
    Ok(out)
}
