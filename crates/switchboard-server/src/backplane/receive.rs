//! What a node hears on NATS: one task reads the broadcast subject, the node's inbox and the
//! subjects of the rooms and users it receives (interest.rs), and hands it all to the core.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use switchboard_proto::ops::{Op, OpBody};
use switchboard_proto::peer::PeerMsg;

use super::members::Change;
use super::{interest, Backplane, INCARNATION};
use crate::conn::now_ms;
use crate::shared::Shared;

/// Hears the other nodes: broadcasts, this node's inbox, and the rooms it receives.
///
/// One task reads every subscription, so that order holds between them: whatever is ready
/// is taken at once, and room messages are applied before anything else in it, vouches
/// included (interest.rs says why that is enough).
pub(super) async fn receive_loop(
    shared: Arc<Shared>,
    bp: Arc<Backplane>,
    client: async_nats::Client,
) {
    let all = format!("sb.{}.all.*", bp.cfg.cluster);
    let inbox = format!("sb.{}.to.{}.*", bp.cfg.cluster, bp.node);
    let (a, b) = loop {
        match (
            client.subscribe(all.clone()).await,
            client.subscribe(inbox.clone()).await,
        ) {
            (Ok(a), Ok(b)) => break (a, b),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let Some(mut new_subs) = bp.interests.subs_rx.lock().expect("interest lock").take() else {
        return;
    };
    let mut subs = futures_util::stream::SelectAll::new();
    subs.push(a.boxed());
    subs.push(b.boxed());
    let (rooms_prefix, dms_prefix) = (bp.cfg.rooms_prefix(), bp.cfg.dms_prefix());
    loop {
        let first = tokio::select! {
            Some((sub, ended)) = new_subs.recv() => {
                subs.push(sub.take_until(ended).boxed());
                continue;
            }
            m = subs.next() => match m {
                Some(m) => m,
                None => return,
            },
        };
        let mut ready = vec![first];
        while ready.len() < RECEIVE_BATCH {
            match subs.next().now_or_never() {
                Some(Some(m)) => ready.push(m),
                _ => break,
            }
        }
        let (scoped, others): (Vec<_>, Vec<_>) = ready.into_iter().partition(|m| {
            let s = m.subject.as_str();
            s.starts_with(&rooms_prefix) || s.starts_with(&dms_prefix)
        });
        if !scoped.is_empty() {
            scoped_messages(&shared, &bp, scoped);
        }
        for m in others {
            let Some(from) = m.subject.as_str().rsplit('.').next().map(str::to_string) else {
                continue;
            };
            if from == bp.node {
                continue;
            }
            let msg = match serde_json::from_slice::<PeerMsg>(&m.payload) {
                Ok(msg) => msg,
                Err(e) => {
                    tracing::warn!(%from, error = %e, "undecodable message on the backplane");
                    continue;
                }
            };
            let header = |name: &str| {
                m.headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .and_then(|v| v.as_str().parse::<u64>().ok())
            };
            let (incarnation, prev) = (header(INCARNATION), header(interest::PREV));
            heard(&shared, &bp, &from, msg, incarnation, prev);
        }
    }
}

/// Messages taken from the subscriptions at once, at most (far more than a subscription
/// buffers between two reads in practice, so a batch holds whatever was ready).
const RECEIVE_BATCH: usize = 100_000;

/// Live room and direct messages: applied in order; a gap makes the scope backfill.
///
/// Their origins' vouches come after all of them: the subscriptions hand out messages in no
/// particular order between subjects, so an origin's later message in one room may come
/// before its earlier one in another, and vouching for the first would let a third node's
/// message overtake the second (order.rs). An origin with a gap here vouches for nothing.
fn scoped_messages(shared: &Shared, bp: &Arc<Backplane>, messages: Vec<async_nats::Message>) {
    let mut gaps = Vec::new();
    let mut n = 0;
    shared.run(|core, out| {
        let mut vouches: BTreeMap<String, u64> = BTreeMap::new();
        let mut gapped: HashSet<String> = HashSet::new();
        for m in &messages {
            let Some((origin, ops)) = interest::decode_scoped(m) else {
                tracing::warn!(subject = %m.subject, "undecodable message on the backplane");
                continue;
            };
            n += ops.len() as u64;
            let scopes = ops.first().map(scopes_of).unwrap_or_default();
            let room_clock = ops
                .iter()
                .filter(|op| matches!(&op.body, OpBody::Message { msg, .. } if msg.room.is_some()))
                .map(|op| op.meta.lamport)
                .max();
            if core
                .apply_scoped(&origin, interest::prev_of(m), ops, out)
                .is_err()
            {
                gaps.extend(scopes);
                gapped.insert(origin);
            } else if let Some(clock) = room_clock {
                let v = vouches.entry(origin).or_insert(0);
                *v = (*v).max(clock);
            }
        }
        for (origin, clock) in vouches {
            if !gapped.contains(&origin) {
                core.peer_clock(&origin, clock, out);
            }
        }
        bp.unpark(core, out);
    });
    bp.interests.received.fetch_add(n, Relaxed);
    gaps.sort();
    gaps.dedup();
    for scope in gaps {
        bp.backfill(scope);
    }
}

/// The scopes that bring an op here: its room, or the two users of its conversation.
fn scopes_of(op: &Op) -> Vec<interest::Scope> {
    use interest::Scope;
    let switchboard_proto::ops::OpBody::Message { msg, .. } = &op.body else {
        return Vec::new();
    };
    match &msg.room {
        Some(_) => vec![Scope::Room(msg.stream.clone())],
        None => {
            let to = msg.to.as_deref().unwrap_or_default();
            vec![
                Scope::User(switchboard_proto::name_key(&msg.from)),
                Scope::User(switchboard_proto::name_key(to)),
            ]
        }
    }
}

/// One message from `from`: link it if it is new (or back, or restarted), then hand the
/// message to the core.
fn heard(
    shared: &Shared,
    bp: &Backplane,
    from: &str,
    msg: PeerMsg,
    incarnation: Option<u64>,
    prev: Option<u64>,
) {
    let now = now_ms();
    let (change, resync) = {
        let mut m = bp.members.lock().expect("members lock");
        let mut change = m.heard(from, now);
        let mut resync = false;
        if let PeerMsg::Heartbeat { clock, members, .. } = &msg {
            let url = members
                .first()
                .filter(|x| x.node == from)
                .map_or("", |x| x.url.as_str());
            if m.heartbeat(from, url, incarnation.unwrap_or(0), *clock) == Change::Restarted
                && change == Change::Nothing
            {
                change = Change::Restarted;
            }
            // Its heartbeat leaves us out: it declared us down (or has just started) and
            // dropped what we told it. Say it again.
            let counts_us = members.iter().skip(1).any(|x| x.node == bp.node);
            resync = change == Change::Nothing
                && !counts_us
                && m.should_resync(from, now, bp.heartbeat_every.as_millis() as u64 * 2);
        }
        (change, resync)
    };
    shared.run(|core, out| {
        match change {
            Change::Restarted => {
                tracing::info!(node = %from, "backplane member restarted");
                core.peer_unlinked(from, out);
                core.peer_linked(from, out);
            }
            Change::Linked => {
                tracing::info!(node = %from, "backplane member up");
                core.peer_linked(from, out);
            }
            Change::Nothing if resync => core.peer_linked(from, out),
            Change::Nothing => {}
        }
        bp.park(core, from, &msg);
        match msg {
            // A catch-up of the node's global ops (room messages come by interest).
            PeerMsg::Ops { ops } => {
                let prev = prev.or_else(|| ops.first().map(|o| o.meta.oseq.saturating_sub(1)));
                apply_global(core, bp, from, prev.unwrap_or(0), ops, now, out);
            }
            msg => core.peer_message(from, msg, now, out),
        }
    });
}

/// Applies global ops of `from` that follow its global op `prev`; a gap asks `from` to catch
/// this node up.
pub(super) fn apply_global(
    core: &mut switchboard_core::Core,
    bp: &Backplane,
    from: &str,
    prev: u64,
    ops: Vec<Op>,
    now: u64,
    out: &mut Vec<switchboard_core::Effect>,
) {
    if core.apply_global(from, prev, ops, now, out).is_err() {
        out.push(switchboard_core::Effect::ToPeer {
            node: from.to_string(),
            msg: PeerMsg::Sync {
                vv: core.version_vector(),
            },
        });
    }
    bp.unpark(core, out);
}
