//! The SQLite store: WAL mode with `synchronous=FULL`, so a committed batch survives a
//! crash or power loss; one writer connection and a small pool of readers.

use std::path::Path;
use std::sync::Mutex;

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use switchboard_core::{Op, OpBody, OpMeta, Restore};
use switchboard_proto::{room_key, ChatMessage, Millis};

use crate::{Bound, HistoryPage, Page, Store, StoreError};

mod ops;
mod streams;
use ops::{ops_since, origin_ops_marked};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    stream TEXT NOT NULL, lamport INTEGER NOT NULL, origin TEXT NOT NULL, oseq INTEGER NOT NULL,
    id TEXT NOT NULL, sender TEXT NOT NULL, room TEXT, recipient TEXT, text TEXT NOT NULL,
    ts INTEGER NOT NULL, queued INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stream, lamport, origin)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_origin ON messages (origin, oseq);
CREATE TABLE IF NOT EXISTS ops (
    origin TEXT NOT NULL, oseq INTEGER NOT NULL, lamport INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (origin, oseq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accounts (
    key TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL, ts INTEGER NOT NULL,
    lamport INTEGER NOT NULL, origin TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rooms (
    key TEXT PRIMARY KEY, name TEXT NOT NULL, topic TEXT, ts INTEGER NOT NULL,
    topic_lamport INTEGER NOT NULL DEFAULT 0, topic_origin TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
    user TEXT NOT NULL, name TEXT NOT NULL, phone TEXT, lamport INTEGER NOT NULL, origin TEXT NOT NULL,
    PRIMARY KEY (user, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox (
    user TEXT NOT NULL, origin TEXT NOT NULL, oseq INTEGER NOT NULL, ts INTEGER NOT NULL,
    PRIMARY KEY (user, origin, oseq)
) WITHOUT ROWID;
";

/// Readers kept open for history queries; more concurrent readers open and close their own.
const READER_POOL: usize = 4;

/// The embedded store a node runs on: one SQLite database file.
pub struct SqliteStore {
    path: std::path::PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database `switchboard.db` in `dir`.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("switchboard.db");
        let writer = Connection::open(&path)?;
        // Small pages for a new database (an existing one keeps its size). A commit writes
        // every page it touched to the WAL, and a batch of messages to many conversations
        // touches one leaf of the by-stream index per conversation: with 4 KiB pages a
        // three-node cluster at 10,000 dm/s wrote 250 MB/s for 3 MB/s of messages.
        writer.pragma_update(None, "page_size", 1024)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: every commit fsyncs the WAL. The group commit makes that one fsync per batch.
        writer.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints run from `maintain` on another connection, not inside a commit, where
        // they would add their copying time to the latency of whoever waits for that commit.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        // 32 MiB of page cache for the writer (SQLite's default is 2 MiB). A group commit
        // under load holds thousands of ops across many conversations; with the default the
        // cache spilled dirty pages to the WAL mid-transaction (`pagerStress`) and read them
        // back: dm flat out 124 k/s with the default, 140 k/s with this (docs/benchmarks.md).
        writer.pragma_update(None, "cache_size", -32 * 1024)?;
        writer.execute_batch(SCHEMA)?;
        migrate(&writer)?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    fn reader(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self.readers.lock().expect("pool lock").pop() {
            return Ok(c);
        }
        let c = Connection::open(&self.path)?;
        c.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(c)
    }

    fn give_back(&self, c: Connection) {
        let mut pool = self.readers.lock().expect("pool lock");
        if pool.len() < READER_POOL {
            pool.push(c);
        }
    }
}

/// Brings a database made by an earlier version up to the schema.
fn migrate(c: &Connection) -> rusqlite::Result<()> {
    let has_queued: bool = c.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'queued'",
        [],
        |row| row.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_queued {
        // Which direct messages were queued for an offline recipient: those still waiting
        // are known; delivered ones were queued too, but no record says so.
        c.execute_batch(
            "ALTER TABLE messages ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
             UPDATE messages SET queued = 1
                 WHERE EXISTS (SELECT 1 FROM inbox i WHERE i.origin = messages.origin AND i.oseq = messages.oseq);",
        )?;
    }
    // The direct messages that were queued are global ops (`Store::global_vv`).
    c.execute_batch(
        "CREATE INDEX IF NOT EXISTS queued_by_origin ON messages (origin, oseq) WHERE queued = 1;",
    )?;
    streams::create(c)
}

/// Reads a message from columns `MSG_COLS`, starting at column `at`.
fn message_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<ChatMessage> {
    Ok(ChatMessage {
        stream: row.get(at)?,
        lamport: row.get::<_, i64>(at + 1)? as u64,
        origin: row.get(at + 2)?,
        oseq: row.get::<_, i64>(at + 3)? as u64,
        id: row.get(at + 4)?,
        from: row.get(at + 5)?,
        room: row.get(at + 6)?,
        to: row.get(at + 7)?,
        text: row.get(at + 8)?,
        ts: row.get::<_, i64>(at + 9)? as u64,
    })
}

fn message_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ChatMessage> {
    message_at(row, 0)
}

const MSG_COLS: &str = "stream, lamport, origin, oseq, id, sender, room, recipient, text, ts";

impl Store for SqliteStore {
    fn load(&self, node: &str) -> Result<Restore, StoreError> {
        let c = self.writer.lock().expect("writer lock");
        let mut r = Restore::default();
        let clock = |sql: &str| -> rusqlite::Result<u64> {
            c.query_row(sql, [], |row| row.get::<_, Option<i64>>(0))
                .map(|v| v.unwrap_or(0) as u64)
        };
        r.clock = clock("SELECT MAX(lamport) FROM messages")?
            .max(clock("SELECT MAX(lamport) FROM ops")?)
            .max(clock("SELECT MAX(value) FROM meta WHERE key = 'clock'")?);
        let own = |sql: &str| -> rusqlite::Result<u64> {
            c.query_row(sql, [node], |row| row.get::<_, Option<i64>>(0))
                .map(|v| v.unwrap_or(0) as u64)
        };
        r.oseq = own("SELECT MAX(oseq) FROM messages WHERE origin = ?1")?
            .max(own("SELECT MAX(oseq) FROM ops WHERE origin = ?1")?);
        let mut st = c.prepare(
            "SELECT origin, MAX(oseq) FROM (SELECT origin, oseq FROM messages UNION ALL SELECT origin, oseq FROM ops)
             GROUP BY origin",
        )?;
        r.vv = st
            .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?
            .collect::<Result<_, _>>()?;
        let mut st = c.prepare("SELECT user, name, phone, lamport, origin FROM contacts")?;
        r.contacts = st
            .query_map([], |row| {
                let at = (row.get::<_, i64>(3)? as u64, row.get(4)?);
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, at))
            })?
            .collect::<Result<_, _>>()?;
        let mut st = c.prepare("SELECT name, hash, lamport, origin FROM accounts")?;
        r.accounts = st
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    (row.get::<_, i64>(2)? as u64, row.get(3)?),
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut st =
            c.prepare("SELECT key, name, topic, topic_lamport, topic_origin FROM rooms")?;
        let rooms: Vec<(String, String, Option<String>, i64, String)> = st
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        for (key, name, topic, lamport, origin) in rooms {
            let cursor = streams::cursor(&c, &key)?;
            r.rooms
                .push((name, topic, cursor, (lamport as u64, origin)));
        }
        // Conversation streams start with '@'; any of their messages names both people.
        let mut st = c.prepare(
            "SELECT stream, sender, recipient FROM messages
             WHERE stream >= '@' AND stream < 'A' GROUP BY stream",
        )?;
        let dms: Vec<(String, String, Option<String>)> = st
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (stream, a, b) in dms {
            let cursor = streams::cursor(&c, &stream)?;
            r.dms.push((stream, a, b.unwrap_or_default(), cursor));
        }
        let mut st = c.prepare(&format!(
            "SELECT i.user, m.{} FROM inbox i JOIN messages m ON m.origin = i.origin AND m.oseq = i.oseq
             ORDER BY i.ts, i.origin, i.oseq",
            MSG_COLS.replace(", ", ", m.")
        ))?;
        r.inbox = st
            .query_map([], |row| Ok((row.get(0)?, message_at(row, 1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(r)
    }

    fn append(&self, ops: &[Op], clock: u64) -> Result<(), StoreError> {
        let mut c = self.writer.lock().expect("writer lock");
        let tx = c.transaction()?;
        {
            let mut put_msg = tx.prepare_cached(
                "INSERT OR IGNORE INTO messages (stream, lamport, origin, oseq, id, sender, room, recipient, text, ts, queued)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut put_op = tx.prepare_cached(
                "INSERT OR IGNORE INTO ops (origin, oseq, lamport, body) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut note_origin = tx.prepare_cached(streams::NOTE_ORIGIN)?;
            for op in ops {
                let m = &op.meta;
                if let OpBody::Message { msg, queued_for } = &op.body {
                    put_msg.execute(params![
                        msg.stream,
                        m.lamport as i64,
                        m.origin,
                        m.oseq as i64,
                        msg.id,
                        msg.from,
                        msg.room,
                        msg.to,
                        msg.text,
                        msg.ts as i64,
                        queued_for.is_some()
                    ])?;
                    note_origin.execute(params![
                        msg.stream,
                        m.origin,
                        m.lamport as i64,
                        m.oseq as i64
                    ])?;
                    if let Some(user) = queued_for {
                        tx.execute(
                            "INSERT OR IGNORE INTO inbox (user, origin, oseq, ts) VALUES (?1, ?2, ?3, ?4)",
                            params![user, m.origin, m.oseq as i64, msg.ts as i64],
                        )?;
                    }
                    continue;
                }
                put_op.execute(params![
                    m.origin,
                    m.oseq as i64,
                    m.lamport as i64,
                    serde_json::to_string(&op.body)?
                ])?;
                match &op.body {
                    OpBody::Message { .. } => unreachable!("handled above"),
                    OpBody::Account { name, hash, ts } => {
                        // The earliest registration (Lamport, origin) of a name wins.
                        tx.execute(
                            "INSERT INTO accounts (key, name, hash, ts, lamport, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                             ON CONFLICT(key) DO UPDATE SET name = excluded.name, hash = excluded.hash,
                                 ts = excluded.ts, lamport = excluded.lamport, origin = excluded.origin
                             WHERE (excluded.lamport, excluded.origin) < (accounts.lamport, accounts.origin)",
                            params![name.to_ascii_lowercase(), name, hash, *ts as i64, m.lamport as i64, m.origin],
                        )?;
                    }
                    OpBody::Room { room, ts } => {
                        tx.execute(
                            "INSERT OR IGNORE INTO rooms (key, name, ts) VALUES (?1, ?2, ?3)",
                            params![room_key(room), room, *ts as i64],
                        )?;
                    }
                    OpBody::Topic {
                        room, topic, ts, ..
                    } => {
                        // The latest setting (Lamport, origin) of a topic wins.
                        tx.execute(
                            "INSERT INTO rooms (key, name, topic, ts, topic_lamport, topic_origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                             ON CONFLICT(key) DO UPDATE SET topic = excluded.topic,
                                 topic_lamport = excluded.topic_lamport, topic_origin = excluded.topic_origin
                             WHERE (excluded.topic_lamport, excluded.topic_origin) > (rooms.topic_lamport, rooms.topic_origin)",
                            params![room_key(room), room, topic, *ts as i64, m.lamport as i64, m.origin],
                        )?;
                    }
                    OpBody::ContactSet {
                        user, name, phone, ..
                    } => {
                        put_contact(&tx, user, name, Some(phone), m)?;
                    }
                    OpBody::ContactDelete { user, name, .. } => {
                        put_contact(&tx, user, name, None, m)?;
                    }
                    OpBody::InboxDelivered { user, entries } => {
                        let mut del = tx.prepare_cached(
                            "DELETE FROM inbox WHERE user = ?1 AND origin = ?2 AND oseq = ?3",
                        )?;
                        for e in entries {
                            del.execute(params![user, e.origin, e.oseq as i64])?;
                        }
                    }
                }
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('clock', ?1)
             ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
            [clock as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn history(
        &self,
        stream: &str,
        page: Page,
        limit: u32,
        floor: Millis,
    ) -> Result<HistoryPage, StoreError> {
        let c = self.reader()?;
        let result = (|| {
            let n = limit as i64 + 1;
            let backwards = matches!(page, Page::Before(_) | Page::Between { newest: true, .. });
            let mut messages: Vec<ChatMessage> = match page {
                Page::Before(before) => {
                    let (lamport, origin) =
                        before.map_or((i64::MAX, String::new()), |p| (p.lamport as i64, p.origin));
                    let mut st = c.prepare_cached(&format!(
                        "SELECT {MSG_COLS} FROM messages
                         WHERE stream = ?1 AND (lamport < ?2 OR (lamport = ?2 AND origin < ?3)) AND ts >= ?4
                         ORDER BY lamport DESC, origin DESC LIMIT ?5"
                    ))?;
                    let rows = st.query_map(
                        params![stream, lamport, origin, floor as i64, n],
                        message_from_row,
                    )?;
                    rows.collect::<Result<_, _>>()?
                }
                Page::Between {
                    after,
                    before,
                    newest,
                } => {
                    let order = if newest { "DESC" } else { "ASC" };
                    // The redundant `lamport >=` and `<=` give the planner a range of the
                    // primary key to scan.
                    let mut st = c.prepare_cached(&format!(
                        "SELECT {MSG_COLS} FROM messages
                         WHERE stream = ?1
                           AND lamport >= ?2 AND (lamport > ?2 OR origin > ?3 OR (?4 AND origin = ?3))
                           AND lamport <= ?5 AND (lamport < ?5 OR origin < ?6 OR (?7 AND origin = ?6))
                           AND ts > ?8 AND ts < ?9 AND ts >= ?10
                         ORDER BY lamport {order}, origin {order} LIMIT ?11"
                    ))?;
                    let (lo, hi) = (sql_bound(&after, -1), sql_bound(&before, i64::MAX));
                    let t_lo = if let Bound::Time(t) = after {
                        t as i64
                    } else {
                        i64::MIN
                    };
                    let t_hi = if let Bound::Time(t) = before {
                        t as i64
                    } else {
                        i64::MAX
                    };
                    let rows = st.query_map(
                        params![
                            stream,
                            lo.0,
                            lo.1,
                            lo.2,
                            hi.0,
                            hi.1,
                            hi.2,
                            t_lo,
                            t_hi,
                            floor as i64,
                            n
                        ],
                        message_from_row,
                    )?;
                    rows.collect::<Result<_, _>>()?
                }
                Page::After(cursor) => {
                    streams::after(&c, stream, &cursor, floor as i64, n as usize)?
                }
            };
            let more = messages.len() > limit as usize;
            messages.truncate(limit as usize);
            if backwards {
                messages.reverse();
            }
            Ok::<_, StoreError>(HistoryPage { messages, more })
        })();
        self.give_back(c);
        result
    }

    fn maintain(&self) -> Result<(), StoreError> {
        self.checkpoint()
    }

    fn ops_of(&self, origin: &str, after: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        let c = self.reader()?;
        let after = after.min(i64::MAX as u64) as i64;
        let result = origin_ops_marked(&c, origin, after, limit, true);
        self.give_back(c);
        result
    }

    fn prev_in_stream(&self, stream: &str, origin: &str, before: u64) -> Result<u64, StoreError> {
        let c = self.reader()?;
        let result = streams::prev_in_stream(&c, stream, origin, before);
        self.give_back(c);
        Ok(result?)
    }

    fn global_vv(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let c = self.reader()?;
        let result = c
            .prepare_cached(
                "SELECT origin, MAX(oseq) FROM (SELECT origin, oseq FROM ops
                 UNION ALL SELECT origin, oseq FROM messages WHERE queued = 1) GROUP BY origin",
            )
            .and_then(|mut st| {
                st.query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?
                    .collect::<Result<BTreeMap<String, u64>, _>>()
            });
        self.give_back(c);
        Ok(result?)
    }

    fn ops_since(&self, vv: &BTreeMap<String, u64>, limit: usize) -> Result<Vec<Op>, StoreError> {
        let c = self.reader()?;
        let result = ops_since(&c, vv, limit);
        self.give_back(c);
        result
    }
}

impl SqliteStore {
    /// Copies the write-ahead log into the database file without blocking the writer
    /// (`PASSIVE`), so the log stays short and reads stay fast.
    fn checkpoint(&self) -> Result<(), StoreError> {
        let c = self.reader()?;
        let result = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        self.give_back(c);
        result?;
        Ok(())
    }

    /// Whether a message id is stored (for tests and diagnostics).
    pub fn has_message(&self, id: &str) -> Result<bool, StoreError> {
        let c = self.reader()?;
        let found = c
            .query_row("SELECT 1 FROM messages WHERE id = ?1", [id], |_| Ok(()))
            .optional()?
            .is_some();
        self.give_back(c);
        Ok(found)
    }
}

/// A [`Page::Between`] bound as SQL parameters (lamport, origin, whether the position itself
/// is in); `open` is the lamport of an open end (or of a time bound, which filters on `ts`).
fn sql_bound(b: &Bound, open: i64) -> (i64, String, bool) {
    match b {
        Bound::Position(p) => (p.lamport as i64, p.origin.clone(), false),
        Bound::Including(p) => (p.lamport as i64, p.origin.clone(), true),
        Bound::Open | Bound::Time(_) => (open, String::new(), true),
    }
}

/// A contact register: the later (Lamport, origin) wins; a delete stores a tombstone (NULL).
fn put_contact(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    name: &str,
    phone: Option<&String>,
    m: &OpMeta,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO contacts (user, name, phone, lamport, origin) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(user, name) DO UPDATE SET phone = excluded.phone, lamport = excluded.lamport,
             origin = excluded.origin
         WHERE (excluded.lamport, excluded.origin) > (contacts.lamport, contacts.origin)",
        params![user, name, phone, m.lamport as i64, m.origin],
    )?;
    Ok(())
}
