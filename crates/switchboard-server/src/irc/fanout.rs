//! One decode and one rendering per room message, not one per IRC member.
//!
//! The core fans a room message out as one shared frame: every member's outbox holds a clone
//! of the same buffer. Native connections write it as it is. An IRC connection must turn it
//! into a `PRIVMSG` line, and did so for itself: a JSON decode and a line built per member,
//! which cost the IRC face the fan-out race against ngircd and InspIRCd (docs/benchmarks.md).
//!
//! The connections of one room are served one after another by the same few worker threads,
//! so each thread remembers the last frame it decoded and the lines it rendered from it, one
//! per combination of the capabilities that change a line (server-time, account-tag,
//! message-tags). The frame is recognised by its buffer: the cache holds a clone, so that
//! buffer cannot be freed and its address reused while it is remembered.

use std::cell::RefCell;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use switchboard_proto::ServerMsg;

/// Ways a rendered line can differ between recipients: three capability bits.
const VARIANTS: usize = 8;

struct Last {
    frame: Utf8Bytes,
    msg: Option<Arc<ServerMsg>>,
    lines: [Option<Arc<str>>; VARIANTS],
}

thread_local! {
    static LAST: RefCell<Option<Last>> = const { RefCell::new(None) };
}

fn same(a: &Utf8Bytes, b: &Utf8Bytes) -> bool {
    let (a, b) = (a.as_str(), b.as_str());
    a.as_ptr() == b.as_ptr() && a.len() == b.len()
}

/// The frame decoded: from this thread's cache when it is the frame decoded last.
pub(super) fn decoded(frame: &Utf8Bytes) -> Option<Arc<ServerMsg>> {
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some(hit) = last.as_ref().filter(|l| same(&l.frame, frame)) {
            return hit.msg.clone();
        }
        let msg = switchboard_proto::decode_server(frame).ok().map(Arc::new);
        *last = Some(Last {
            frame: frame.clone(),
            msg: msg.clone(),
            lines: Default::default(),
        });
        msg
    })
}

/// The lines of `frame` for recipients of capability combination `variant` (below
/// [`VARIANTS`]): rendered by `render` the first time on this thread, shared afterwards.
pub(super) fn rendered(
    frame: &Utf8Bytes,
    variant: usize,
    render: impl FnOnce() -> String,
) -> Arc<str> {
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match last.as_mut().filter(|l| same(&l.frame, frame)) {
            Some(l) => l.lines[variant]
                .get_or_insert_with(|| Arc::from(render()))
                .clone(),
            // Not the frame decoded last (nothing calls it so, but stay correct).
            None => Arc::from(render()),
        }
    })
}

/// The capability combination of a recipient, for [`rendered`].
pub(super) fn variant(server_time: bool, account_tag: bool, message_tags: bool) -> usize {
    usize::from(server_time) | usize::from(account_tag) << 1 | usize::from(message_tags) << 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_decoded_and_rendered_once_per_variant() {
        let frame = Utf8Bytes::from(r#"{"type":"pong"}"#);
        let copy = Utf8Bytes::from(r#"{"type":"pong"}"#);
        let a = decoded(&frame).unwrap();
        let b = decoded(&frame.clone()).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the same buffer is decoded once");
        let mut renders = 0;
        for _ in 0..3 {
            rendered(&frame, 1, || {
                renders += 1;
                "line\r\n".into()
            });
        }
        assert_eq!(renders, 1);
        rendered(&frame, 2, || {
            renders += 1;
            "other\r\n".into()
        });
        assert_eq!(renders, 2, "another variant renders its own line");
        // Equal text in another buffer is another frame.
        let c = decoded(&copy).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
