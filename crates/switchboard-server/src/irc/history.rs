//! CHATHISTORY (draft/chathistory): pages of a room's or a conversation's history read from
//! the store, sent as a `chathistory` batch; TARGETS, the conversations with history in a
//! time window; msgids that name a place in a stream's order.

use switchboard_proto::limits::MAX_HISTORY_LIMIT;
use switchboard_proto::{ChatMessage, Millis, Position};
use switchboard_store::{Bound, Page, Store, StoreError};

use super::line;
use super::session::Irc;

/// A message's IRC msgid: its Lamport clock and its id (`origin-oseq`), so that a CHATHISTORY
/// selector names a place in the stream's order.
pub(super) fn msgid(m: &ChatMessage) -> String {
    format!("{}-{}", m.lamport, m.id)
}

/// The position a msgid names.
pub(super) fn parse_msgid(s: &str) -> Option<Position> {
    let (lamport, id) = s.split_once('-')?;
    let (origin, oseq) = id.rsplit_once('-')?;
    oseq.parse::<u64>().ok()?;
    Some(Position {
        lamport: lamport.parse().ok()?,
        origin: origin.to_string(),
    })
}

/// A CHATHISTORY message reference: `msgid=` or `timestamp=`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ref {
    Msgid(Position),
    Time(Millis),
}

impl Ref {
    fn parse(s: &str) -> Option<Ref> {
        if let Some(id) = s.strip_prefix("msgid=") {
            return parse_msgid(id).map(Ref::Msgid);
        }
        s.strip_prefix("timestamp=")
            .and_then(line::parse_iso_time)
            .map(Ref::Time)
    }

    /// The reference as a bound that leaves it out (BEFORE, AFTER, BETWEEN, LATEST).
    fn bound(&self) -> Bound {
        match self {
            Ref::Msgid(p) => Bound::Position(p.clone()),
            Ref::Time(t) => Bound::Time(*t),
        }
    }

    /// The reference as a lower bound that takes it in: AROUND shows the message it names, or
    /// the messages of the millisecond it names.
    fn from(&self) -> Bound {
        match self {
            Ref::Msgid(p) => Bound::Including(p.clone()),
            Ref::Time(t) => Bound::Time(t.saturating_sub(1)),
        }
    }
}

/// What to read for one CHATHISTORY command.
enum Query {
    Page(Page),
    /// AROUND: up to half the limit from the reference on, and the rest before it.
    Around(Ref),
    /// BETWEEN a msgid and a timestamp: which comes first is only known by reading, so
    /// forwards from the first and, when that finds nothing, backwards from it.
    Either(Bound, Bound),
}

fn between(after: Bound, before: Bound, newest: bool) -> Page {
    Page::Between {
        after,
        before,
        newest,
    }
}

/// Reads what a query asks for, in stream order.
fn read(
    store: &dyn Store,
    stream: &str,
    query: Query,
    limit: u32,
    floor: Millis,
) -> Result<Vec<ChatMessage>, StoreError> {
    let page = |p: Page, limit: u32| store.history(stream, p, limit, floor).map(|p| p.messages);
    match query {
        Query::Page(p) => page(p, limit),
        Query::Around(r) => {
            // Half from the reference on; the rest before it; and when the start of the
            // stream leaves that short, more after it.
            let half = limit - limit / 2;
            let mut after = page(between(r.from(), Bound::Open, false), half)?;
            let left = limit - after.len() as u32;
            let mut out = if left > 0 {
                page(between(Bound::Open, r.bound(), true), left)?
            } else {
                Vec::new()
            };
            let room = limit - out.len() as u32;
            if after.len() as u32 == half && room > half {
                after = page(between(r.from(), Bound::Open, false), room)?;
            }
            out.append(&mut after);
            Ok(out)
        }
        Query::Either(a, b) => {
            let forwards = page(between(a.clone(), b.clone(), false), limit)?;
            if !forwards.is_empty() {
                return Ok(forwards);
            }
            page(between(b, a, true), limit)
        }
    }
}

impl Irc {
    /// `CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN|TARGETS ...` from the store.
    pub async fn chathistory(&mut self, params: &[String]) {
        let sub = params
            .first()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        let refs = match sub.as_str() {
            "LATEST" | "BEFORE" | "AFTER" | "AROUND" => 1,
            "BETWEEN" | "TARGETS" => 2,
            _ => return self.fail(&["INVALID_PARAMS", &sub, "Unknown command"]),
        };
        // TARGETS has no target: its parameters start one place earlier.
        let first = if sub == "TARGETS" { 1 } else { 2 };
        let Some(limit) = params.get(first + refs) else {
            return self.fail(&["INVALID_PARAMS", &sub, "Insufficient parameters"]);
        };
        let Some(limit) = limit.parse::<u32>().ok().filter(|n| *n > 0) else {
            return self.fail(&["INVALID_PARAMS", &sub, limit, "Invalid limit"]);
        };
        let limit = limit.min(MAX_HISTORY_LIMIT);
        let selectors = &params[first..first + refs];
        let mut parsed = Vec::new();
        for s in selectors {
            match Ref::parse(s) {
                Some(r) => parsed.push(r),
                None if s == "*" && sub == "LATEST" => {}
                None => {
                    return self.fail(&[
                        "INVALID_PARAMS",
                        &sub,
                        s,
                        "Use msgid=ID or timestamp=YYYY-MM-DDThh:mm:ss.sssZ (or * with LATEST)",
                    ])
                }
            }
        }
        if sub == "TARGETS" {
            return match parsed.as_slice() {
                [Ref::Time(a), Ref::Time(b)] => self.targets(*a, *b, limit).await,
                _ => self.fail(&["INVALID_PARAMS", &sub, "TARGETS takes two timestamps"]),
            };
        }
        let query = match (sub.as_str(), parsed.as_slice()) {
            ("LATEST", []) => Query::Page(between(Bound::Open, Bound::Open, true)),
            ("LATEST", [r]) => Query::Page(between(r.bound(), Bound::Open, true)),
            ("BEFORE", [r]) => Query::Page(between(Bound::Open, r.bound(), true)),
            ("AFTER", [r]) => Query::Page(between(r.bound(), Bound::Open, false)),
            ("AROUND", [r]) => Query::Around(r.clone()),
            ("BETWEEN", [a, b]) => match (a, b) {
                (Ref::Msgid(x), Ref::Msgid(y)) if x > y => {
                    Query::Page(between(b.bound(), a.bound(), true))
                }
                (Ref::Time(x), Ref::Time(y)) if x > y => {
                    Query::Page(between(b.bound(), a.bound(), true))
                }
                (Ref::Msgid(_), Ref::Msgid(_)) | (Ref::Time(_), Ref::Time(_)) => {
                    Query::Page(between(a.bound(), b.bound(), false))
                }
                _ => Query::Either(a.bound(), b.bound()),
            },
            _ => unreachable!("one reference, or two for BETWEEN"),
        };
        let target = &params[1];
        let (room, with) = match target.strip_prefix('#') {
            Some(r) => (Some(r), None),
            None => (None, Some(target.as_str())),
        };
        let found =
            self.shared
                .core
                .lock()
                .expect("core lock")
                .history_stream(self.session, room, with);
        let Ok((stream, floor)) = found else {
            return self.fail(&["INVALID_TARGET", &sub, target, "No such channel or nick"]);
        };
        let store = self.shared.store.clone();
        let read = tokio::task::spawn_blocking(move || read(&*store, &stream, query, limit, floor))
            .await
            .ok()
            .and_then(Result::ok);
        match read {
            Some(messages) => self.history_batch(target, &messages),
            None => self.fail(&[
                "MESSAGE_ERROR",
                &sub,
                target,
                "The history could not be read",
            ]),
        }
    }

    /// `CHATHISTORY TARGETS`: this connection's channels and the user's conversations with a
    /// message between two times, by the time of their latest one there, oldest first; at
    /// most `limit` of them counted from the first time given (so from the newest when it is
    /// the later one).
    async fn targets(&mut self, a: Millis, b: Millis, limit: u32) {
        let (lo, hi) = (a.min(b), a.max(b));
        let mut wanted: Vec<(String, String, Millis)> = self
            .channels
            .values()
            .map(|c| {
                let name = format!("#{}", c.name);
                (switchboard_proto::room_key(&c.name), name, 0)
            })
            .collect();
        {
            let core = self.shared.core.lock().expect("core lock");
            for nick in self.dms.values() {
                if let Ok((stream, floor)) = core.history_stream(self.session, None, Some(nick)) {
                    wanted.push((stream, nick.clone(), floor));
                }
            }
        }
        let store = self.shared.store.clone();
        let latest = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for (stream, name, floor) in wanted {
                let window = between(Bound::Time(lo), Bound::Time(hi), true);
                let page = store.history(&stream, window, 1, floor)?;
                if let Some(m) = page.messages.last() {
                    found.push((m.ts, name));
                }
            }
            Ok::<_, StoreError>(found)
        })
        .await
        .ok()
        .and_then(Result::ok);
        let Some(mut found) = latest else {
            return self.fail(&[
                "MESSAGE_ERROR",
                "TARGETS",
                "*",
                "The history could not be read",
            ]);
        };
        found.sort();
        let limit = limit as usize;
        if a <= b {
            found.truncate(limit);
        } else {
            found.drain(..found.len().saturating_sub(limit));
        }
        let id = self.open_batch(&["draft/chathistory-targets"]);
        let server = self.server.clone();
        let tags: Vec<String> = id.iter().map(|id| format!("batch={id}")).collect();
        for (ts, name) in found {
            let time = line::iso_time(ts);
            self.out.push_str(&line::format(
                &tags,
                &server,
                "CHATHISTORY",
                &["TARGETS", &name, &time],
            ));
        }
        self.close_batch(id);
    }

    /// `FAIL CHATHISTORY ...`.
    fn fail(&mut self, params: &[&str]) {
        let mut all = vec!["CHATHISTORY"];
        all.extend_from_slice(params);
        self.server_line("FAIL", &all);
    }

    /// Opens a batch of this type (when the client enabled batch), and returns its id.
    fn open_batch(&mut self, kind: &[&str]) -> Option<String> {
        if !self.caps.batch {
            return None;
        }
        self.batches += 1;
        let id = format!("h{}", self.batches);
        let open = format!("+{id}");
        let mut params = vec![open.as_str()];
        params.extend_from_slice(kind);
        self.server_line("BATCH", &params);
        Some(id)
    }

    fn close_batch(&mut self, id: Option<String>) {
        if let Some(id) = id {
            let close = format!("-{id}");
            self.out
                .push_str(&line::format(&[], &self.server.clone(), "BATCH", &[&close]));
        }
    }

    /// History as a `chathistory` batch (when the client enabled batch).
    pub(super) fn history_batch(&mut self, target: &str, messages: &[ChatMessage]) {
        let id = self.open_batch(&["chathistory", target]);
        for m in messages {
            self.show(m, "PRIVMSG", id.as_deref());
        }
        self.close_batch(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgids_name_positions() {
        let p = parse_msgid("2077-node-1.a-1042").unwrap();
        assert_eq!((p.lamport, p.origin.as_str()), (2077, "node-1.a"));
        assert_eq!(parse_msgid("x-y"), None);
        assert_eq!(parse_msgid("12-n1-x"), None);
    }

    #[test]
    fn references() {
        let p = Position {
            lamport: 7,
            origin: "n1".into(),
        };
        assert_eq!(Ref::parse("msgid=7-n1-3"), Some(Ref::Msgid(p)));
        assert_eq!(
            Ref::parse("timestamp=1970-01-01T00:00:01.500Z"),
            Some(Ref::Time(1500))
        );
        assert_eq!(Ref::parse("*"), None);
        assert_eq!(Ref::parse("timestamp=yesterday"), None);
        assert_eq!(Ref::Time(1500).from(), Bound::Time(1499));
    }
}
