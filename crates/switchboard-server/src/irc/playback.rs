//! Join playback: a client that cannot fetch history itself (it did not enable
//! draft/chathistory: irssi, WeeChat 3.8, ii) gets a channel's latest messages right after
//! the JOIN burst, as a bouncer such as ZNC gives them, so that joining a room shows what was
//! said there. Clients that speak draft/chathistory ask with `CHATHISTORY LATEST` instead,
//! and get nothing unasked (the specification says a server should not play history back to
//! them).

use switchboard_proto::cursor::covers;
use switchboard_proto::{ChatMessage, Cursor};
use switchboard_store::{Bound, Page, Store, StoreError};

use super::line::iso_time;
use super::session::Irc;

/// How many of a channel's latest messages a join plays back: a screenful, enough to tell
/// what the room is talking about, little enough not to bury the join.
pub(super) const JOIN_PLAYBACK: usize = 20;

/// Pages read back at most looking for them, in case many messages arrived since the join.
const MAX_PAGES: usize = 8;

/// A join whose playback is still to be sent.
#[derive(Debug, Clone)]
pub(super) struct Playback {
    /// `#room`, as the JOIN showed it.
    pub channel: String,
    /// The room's stream key.
    pub stream: String,
    /// What of the room was delivered when the join was handled (`joined.cursor`).
    pub cursor: Cursor,
}

/// The newest `JOIN_PLAYBACK` messages of a stream that the cursor covers, in stream order.
/// Every message the cursor does not cover reaches the session live (delivery happens at
/// durability, to the members at that moment), so leaving those out means none is shown
/// twice, whatever arrived between the join and this read.
fn covered(store: &dyn Store, p: &Playback) -> Result<Vec<ChatMessage>, StoreError> {
    let mut out: Vec<ChatMessage> = Vec::new();
    let mut before = Bound::Open;
    for _ in 0..MAX_PAGES {
        let page = Page::Between {
            after: Bound::Open,
            before: before.clone(),
            newest: true,
        };
        let read = store.history(&p.stream, page, JOIN_PLAYBACK as u32 + 8, 0)?;
        let Some(first) = read.messages.first() else {
            break;
        };
        before = Bound::Position(first.position());
        let mut older: Vec<ChatMessage> = read
            .messages
            .into_iter()
            .filter(|m| covers(&p.cursor, m))
            .collect();
        older.append(&mut out);
        out = older;
        if out.len() >= JOIN_PLAYBACK || !read.more {
            break;
        }
    }
    out.drain(..out.len().saturating_sub(JOIN_PLAYBACK));
    Ok(out)
}

/// A message's text with its time in front, `[HH:MM] text` (UTC) on each line, for a client
/// without server-time: otherwise history would look said just now.
fn stamped(m: &ChatMessage) -> ChatMessage {
    let hhmm = &iso_time(m.ts)[11..16];
    let text = m
        .text
        .split(['\n', '\r'])
        .filter(|t| !t.trim().is_empty())
        .map(|t| format!("[{hhmm}] {t}"))
        .collect::<Vec<_>>()
        .join("\n");
    ChatMessage { text, ..m.clone() }
}

impl Irc {
    /// Sends the playback of the joins just made, before any later frame of the outbox is
    /// translated: live messages come after it.
    pub(super) async fn play_back(&mut self) {
        for p in std::mem::take(&mut self.playback) {
            let store = self.shared.store.clone();
            let read = p.clone();
            let found = tokio::task::spawn_blocking(move || covered(&*store, &read))
                .await
                .ok()
                .and_then(Result::ok);
            let Some(mut messages) = found else {
                tracing::warn!(channel = %p.channel, "join playback could not be read");
                continue;
            };
            if messages.is_empty() {
                continue;
            }
            if !self.caps.server_time {
                messages = messages.iter().map(stamped).collect();
            }
            self.history_batch(&p.channel, &messages);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_each_line_with_utc_hours_and_minutes() {
        let m = ChatMessage {
            id: "n1-1".into(),
            stream: "#r".into(),
            from: "a".into(),
            room: Some("r".into()),
            to: None,
            text: "one\ntwo".into(),
            ts: (13 * 3600 + 7 * 60 + 59) * 1000,
            lamport: 1,
            origin: "n1".into(),
            oseq: 1,
        };
        assert_eq!(stamped(&m).text, "[13:07] one\n[13:07] two");
    }
}
