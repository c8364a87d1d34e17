//! Reading ops back out of the SQLite store, for a peer that lacks them (the mesh's
//! catch-up) or for a node's own publisher (NATS): messages and other ops merged per origin
//! in oseq order.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use switchboard_core::{Op, OpBody, OpMeta};

use super::{message_at, MSG_COLS};
use crate::StoreError;

/// What `Store::ops_since` reads: per origin, messages and other ops past the asker's vector,
/// merged in oseq order.
pub(super) fn ops_since(
    c: &Connection,
    vv: &BTreeMap<String, u64>,
    limit: usize,
) -> Result<Vec<Op>, StoreError> {
    let heads: Vec<(String, i64)> = c
        .prepare_cached(
            "SELECT origin, MAX(oseq) FROM (SELECT origin, oseq FROM messages UNION ALL SELECT origin, oseq FROM ops)
             GROUP BY origin",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (origin, head) in heads {
        let after = vv.get(&origin).copied().unwrap_or(0) as i64;
        if head <= after || out.len() >= limit {
            continue;
        }
        let n = limit - out.len();
        let ops = origin_ops(c, &origin, after, n)?;
        out.extend(ops);
    }
    Ok(out)
}

/// One origin's stored ops (messages and others) after `after`, in oseq order, at most `n`.
fn origin_ops(c: &Connection, origin: &str, after: i64, n: usize) -> Result<Vec<Op>, StoreError> {
    origin_ops_marked(c, origin, after, n, false)
}

/// [`origin_ops`]; with `mark_queued`, a direct message that was queued for an offline
/// recipient says so even once delivered (its inbox row is gone): on NATS that makes it a
/// global op wherever it is read back (`Core::is_scoped`).
pub(super) fn origin_ops_marked(
    c: &Connection,
    origin: &str,
    after: i64,
    n: usize,
    mark_queued: bool,
) -> Result<Vec<Op>, StoreError> {
    let n = n as i64;
    let mut ops: Vec<Op> = Vec::new();
    let mut st = c.prepare_cached(&format!(
        "SELECT {cols}, (SELECT user FROM inbox i WHERE i.origin = m.origin AND i.oseq = m.oseq),
                 m.queued
             FROM messages m WHERE origin = ?1 AND oseq > ?2 ORDER BY oseq LIMIT ?3",
        cols = MSG_COLS
            .replace(", ", ", m.")
            .replacen("stream", "m.stream", 1)
    ))?;
    let rows = st.query_map(params![origin, after, n], |row| {
        let msg = message_at(row, 0)?;
        let mut queued_for: Option<String> = row.get(10)?;
        if mark_queued && queued_for.is_none() && row.get::<_, bool>(11)? {
            queued_for = msg.to.as_deref().map(switchboard_proto::name_key);
        }
        Ok(Op {
            meta: OpMeta {
                origin: msg.origin.clone(),
                oseq: msg.oseq,
                lamport: msg.lamport,
            },
            body: OpBody::Message { msg, queued_for },
        })
    })?;
    for op in rows {
        ops.push(op?);
    }
    let mut st = c.prepare_cached(
            "SELECT oseq, lamport, body FROM ops WHERE origin = ?1 AND oseq > ?2 ORDER BY oseq LIMIT ?3",
        )?;
    let rows = st.query_map(params![origin, after, n], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (oseq, lamport, body) = row?;
        ops.push(Op {
            meta: OpMeta {
                origin: origin.to_string(),
                oseq: oseq as u64,
                lamport: lamport as u64,
            },
            body: serde_json::from_str(&body)?,
        });
    }
    ops.sort_by_key(|op| op.meta.oseq);
    ops.truncate(n as usize);
    Ok(ops)
}
