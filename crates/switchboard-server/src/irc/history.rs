//! CHATHISTORY (draft/chathistory): pages of a room's or a conversation's history read from
//! the store, sent as a `chathistory` batch; msgids that name a place in a stream's order.

use switchboard_proto::limits::MAX_HISTORY_LIMIT;
use switchboard_proto::{ChatMessage, Position};
use switchboard_store::Page;

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

impl Irc {
    /// `CHATHISTORY LATEST|BEFORE|AFTER <target> <selector> <limit>` from the store.
    pub async fn chathistory(&mut self, params: &[String]) {
        let sub = params
            .first()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        if !matches!(sub.as_str(), "LATEST" | "BEFORE" | "AFTER") {
            self.server_line(
                "FAIL",
                &[
                    "CHATHISTORY",
                    "INVALID_PARAMS",
                    &sub,
                    "Only LATEST, BEFORE and AFTER are supported",
                ],
            );
            return;
        }
        let (Some(target), Some(selector), Some(limit)) =
            (params.get(1), params.get(2), params.get(3))
        else {
            self.server_line(
                "FAIL",
                &[
                    "CHATHISTORY",
                    "NEED_MORE_PARAMS",
                    &sub,
                    "Missing parameters",
                ],
            );
            return;
        };
        let limit = limit
            .parse::<u32>()
            .unwrap_or(0)
            .clamp(1, MAX_HISTORY_LIMIT);
        // A timestamp selector only bounds LATEST: the store pages by position.
        let since = selector
            .strip_prefix("timestamp=")
            .and_then(line::parse_iso_time)
            .filter(|_| sub == "LATEST");
        let position = match selector.as_str() {
            "*" if sub == "LATEST" => None,
            _ if since.is_some() => None,
            s => match s.strip_prefix("msgid=").and_then(parse_msgid) {
                Some(p) => Some(p),
                None => {
                    self.server_line(
                        "FAIL",
                        &[
                            "CHATHISTORY",
                            "INVALID_PARAMS",
                            selector,
                            "Use msgid=ID (or * or timestamp= with LATEST)",
                        ],
                    );
                    return;
                }
            },
        };
        let (room, with) = match target.strip_prefix('#') {
            Some(r) => (Some(r.to_string()), None),
            None => (None, Some(target.clone())),
        };
        let found = self.shared.core.lock().expect("core lock").history_stream(
            self.session,
            room.as_deref(),
            with.as_deref(),
        );
        let Ok((stream, floor)) = found else {
            self.server_line(
                "FAIL",
                &[
                    "CHATHISTORY",
                    "INVALID_TARGET",
                    &sub,
                    target,
                    "No such channel or nick",
                ],
            );
            return;
        };
        let page = match (sub.as_str(), &position) {
            ("LATEST", _) => Page::Before(None),
            ("BEFORE", p) => Page::Before(p.clone()),
            (_, Some(p)) => Page::Since(p.clone()),
            (_, None) => Page::Before(None),
        };
        let store = self.shared.store.clone();
        let read = tokio::task::spawn_blocking(move || store.history(&stream, page, limit, floor))
            .await
            .ok()
            .and_then(Result::ok);
        let Some(page) = read else {
            self.server_line(
                "FAIL",
                &[
                    "CHATHISTORY",
                    "MESSAGE_ERROR",
                    &sub,
                    target,
                    "The history could not be read",
                ],
            );
            return;
        };
        let mut messages = page.messages;
        if let ("LATEST", Some(after)) = (sub.as_str(), &position) {
            messages.retain(|m| m.position() > *after);
        }
        if let Some(t) = since {
            messages.retain(|m| m.ts > t);
        }
        self.history_batch(target, &messages);
    }

    /// History as a `chathistory` batch (when the client enabled batch).
    pub(super) fn history_batch(&mut self, target: &str, messages: &[ChatMessage]) {
        let id = self.caps.batch.then(|| {
            self.batches += 1;
            format!("h{}", self.batches)
        });
        if let Some(id) = &id {
            let open = format!("+{id}");
            self.server_line("BATCH", &[&open, "chathistory", target]);
        }
        for m in messages {
            self.show(m, "PRIVMSG", id.as_deref());
        }
        if let Some(id) = &id {
            let close = format!("-{id}");
            self.out
                .push_str(&line::format(&[], &self.server.clone(), "BATCH", &[&close]));
        }
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
}
