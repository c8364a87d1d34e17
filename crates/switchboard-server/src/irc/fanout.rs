//! A room message rendered as IRC lines once per fan-out, not once per IRC member.
//!
//! The core fans a room message out as one JSON frame shared by every member's outbox.
//! Native connections write it as it is. An IRC connection used to decode that JSON and build
//! its `PRIVMSG` line itself, per member: flat out that cost the IRC face its race against
//! ngircd and InspIRCd (docs/benchmarks.md). Now the server's fan-out (`Shared::execute`)
//! decodes the frame once and renders the line once for each way IRC members want it (three
//! capabilities change a line: server-time, account-tag, message-tags), and queues that text
//! to the IRC members instead of the JSON. An IRC connection writes such a frame as it is: it
//! tells the two apart by the first byte (JSON starts with `{`, an IRC line with `:` or `@`).
//!
//! A member's own messages still come as JSON: the connection matches them with its sends
//! for echo-message (replies.rs).

use std::sync::atomic::{AtomicU8, Ordering};

use axum::extract::ws::Utf8Bytes;
use switchboard_core::Core;
use switchboard_proto::{ChatMessage, ServerMsg};

use super::history::msgid;
use super::line::{self, escape_tag, iso_time, split_text};
use super::replies::{key, mask};

/// Ways a rendered line can differ between recipients: three capability bits.
const VARIANTS: usize = 8;

/// What the fan-out needs to know of an IRC connection, kept on its outbox.
#[derive(Debug)]
pub(crate) struct IrcTaste {
    /// The user's name key: their own messages go to them as JSON.
    key: String,
    /// The capability combination (see [`variant`]); changed by a later CAP REQ.
    variant: AtomicU8,
}

impl IrcTaste {
    pub(super) fn new(name: &str, variant: u8) -> IrcTaste {
        IrcTaste {
            key: key(name),
            variant: AtomicU8::new(variant),
        }
    }

    pub(super) fn set_variant(&self, variant: u8) {
        self.variant.store(variant, Ordering::Relaxed);
    }
}

/// The capability combination of a recipient.
pub(super) fn variant(server_time: bool, account_tag: bool, message_tags: bool) -> u8 {
    u8::from(server_time) | u8::from(account_tag) << 1 | u8::from(message_tags) << 2
}

/// One fan-out's IRC renderings, made on first need.
pub(crate) struct Lines<'a> {
    frame: &'a Utf8Bytes,
    /// `None` until decoded; `Some(None)` when the frame is not a room message. With the
    /// sender's name key, compared with every IRC member's.
    message: Option<Option<(ChatMessage, String)>>,
    registered: Option<bool>,
    lines: [Option<Utf8Bytes>; VARIANTS],
}

impl<'a> Lines<'a> {
    pub(crate) fn new(frame: &'a Utf8Bytes) -> Lines<'a> {
        Lines {
            frame,
            message: None,
            registered: None,
            lines: Default::default(),
        }
    }

    /// The text to queue for an IRC member, or `None` when it should get the JSON frame.
    pub(crate) fn for_member(&mut self, taste: &IrcTaste, core: &Core) -> Option<Utf8Bytes> {
        let (m, from) = self
            .message
            .get_or_insert_with(|| match switchboard_proto::decode_server(self.frame) {
                Ok(ServerMsg::Message(m)) if m.room.is_some() => {
                    let from = key(&m.from);
                    Some((m, from))
                }
                _ => None,
            })
            .as_ref()?;
        if *from == taste.key {
            return None;
        }
        let v = taste.variant.load(Ordering::Relaxed);
        let slot = &mut self.lines[usize::from(v) % VARIANTS];
        if slot.is_none() {
            let registered = *self
                .registered
                .get_or_insert_with(|| core.is_registered(&m.from));
            *slot = Some(Utf8Bytes::from(render(m, v, registered, "PRIVMSG", None)));
        }
        slot.clone()
    }
}

/// Whether a queued frame is IRC text rendered by the fan-out (not the core's JSON).
pub(super) fn is_rendered(frame: &str) -> bool {
    !frame.starts_with('{')
}

/// A message as IRC lines (one per line of its text, split to fit), with the tags of
/// capability combination `variant`; `registered` says whether its sender's name is an
/// account (for account-tag).
pub(super) fn render(
    m: &ChatMessage,
    variant: u8,
    registered: bool,
    command: &str,
    batch: Option<&str>,
) -> String {
    let mut out = String::new();
    let target = match (&m.room, &m.to) {
        (Some(room), _) => format!("#{room}"),
        (None, Some(to)) => to.clone(),
        (None, None) => return out,
    };
    let prefix = mask(&m.from);
    let mut tags = Vec::new();
    if let Some(b) = batch {
        tags.push(format!("batch={b}"));
    }
    if variant & 1 != 0 {
        tags.push(format!("time={}", iso_time(m.ts)));
    }
    if variant & 2 != 0 && registered {
        tags.push(format!("account={}", escape_tag(&m.from)));
    }
    let mut id = (variant & 4 != 0).then(|| format!("msgid={}", escape_tag(&msgid(m))));
    let budget = line::MAX_LINE - (prefix.len() + command.len() + target.len() + 8);
    for text in m.text.split(['\n', '\r']).filter(|t| !t.trim().is_empty()) {
        for piece in split_text(text, budget) {
            let mut t = tags.clone();
            // The msgid names the message: it goes on its first line only.
            t.extend(id.take());
            out.push_str(&line::format(&t, &prefix, command, &[&target, piece]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(from: &str, text: &str) -> ChatMessage {
        switchboard_proto::decode_server(&format!(
            r#"{{"type":"message","id":"n1-7","stream":"r:lobby","origin":"n1","oseq":7,"lamport":3,"from":"{from}","room":"lobby","text":"{text}","ts":0}}"#
        ))
        .map(|m| match m {
            ServerMsg::Message(m) => m,
            other => panic!("{other:?}"),
        })
        .expect("a message frame")
    }

    #[test]
    fn tags_follow_the_capabilities() {
        let m = message("ann", "hi");
        assert_eq!(
            render(&m, 0, true, "PRIVMSG", None),
            ":ann!ann@switchboard PRIVMSG #lobby :hi\r\n"
        );
        let all = render(&m, variant(true, true, true), true, "PRIVMSG", None);
        assert!(
            all.starts_with("@time=1970-01-01T00:00:00.000Z;account=ann;msgid="),
            "{all}"
        );
        let guest = render(&m, variant(false, true, false), false, "PRIVMSG", None);
        assert!(!guest.contains("account="), "{guest}");
        assert!(is_rendered(&all) && !is_rendered(r#"{"type":"pong"}"#));
    }
}
