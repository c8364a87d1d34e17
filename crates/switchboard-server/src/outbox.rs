//! A connection's outbound queue: bounded in bytes, drained in batches by the connection's
//! single writer. Overflow means the client reads slower than it is sent to: the queue is
//! dropped and the connection closed with `slow_consumer` (docs/protocol.md, "Slow consumers").

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::extract::ws::Utf8Bytes;
use switchboard_proto::ErrorCode;
use tokio::sync::Notify;

/// Why the writer closes the connection after flushing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    /// An error frame to send before closing, if any.
    pub error: Option<(ErrorCode, String)>,
    /// The WebSocket close code (1000 normal, 1001 going away, 1008 policy, 1011 error).
    pub ws_code: u16,
    /// The close frame's reason text (at most 123 bytes by RFC 6455).
    pub reason: String,
}

struct Inner {
    frames: VecDeque<Utf8Bytes>,
    bytes: usize,
    closing: Option<Closing>,
}

/// See the module documentation.
pub struct Outbox {
    inner: Mutex<Inner>,
    /// Wakes the writer: frames queued or closing asked.
    notify: Notify,
    /// Wakes whoever waits in [`Outbox::closed`] (the reader). Separate from `notify` so
    /// that a wake-up meant for the writer is never taken by the reader.
    closing: Notify,
    /// Most bytes queued before the client counts as a slow consumer.
    limit: usize,
    /// Set for an IRC connection: the fan-out queues room messages to it as IRC lines.
    irc: Option<Box<crate::irc::fanout::IrcTaste>>,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The queue overflowed just now: the connection is being closed.
    Overflowed,
    /// The connection was already closing; the frame was dropped.
    Closed,
}

impl Outbox {
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner {
                frames: VecDeque::new(),
                bytes: 0,
                closing: None,
            }),
            notify: Notify::new(),
            closing: Notify::new(),
            limit,
            irc: None,
        }
    }

    /// The outbox of an IRC connection (see irc/fanout.rs).
    pub(crate) fn for_irc(limit: usize, taste: crate::irc::fanout::IrcTaste) -> Outbox {
        Outbox {
            irc: Some(Box::new(taste)),
            ..Outbox::new(limit)
        }
    }

    pub(crate) fn irc(&self) -> Option<&crate::irc::fanout::IrcTaste> {
        self.irc.as_deref()
    }

    /// Queues a frame (a cheap clone of shared bytes).
    pub fn push(&self, frame: &Utf8Bytes) -> Pushed {
        let mut inner = self.inner.lock().expect("outbox lock");
        if inner.closing.is_some() {
            return Pushed::Closed;
        }
        if inner.bytes + frame.len() > self.limit {
            inner.frames.clear();
            inner.bytes = 0;
            inner.closing = Some(Closing {
                error: Some((
                    ErrorCode::SlowConsumer,
                    format!(
                        "more than {} bytes were waiting for you to read; reconnect and resume",
                        self.limit
                    ),
                )),
                ws_code: 1008,
                reason: "slow consumer".into(),
            });
            drop(inner);
            self.notify.notify_one();
            self.closing.notify_waiters();
            return Pushed::Overflowed;
        }
        inner.bytes += frame.len();
        let wake = inner.frames.is_empty();
        inner.frames.push_back(frame.clone());
        drop(inner);
        if wake {
            self.notify.notify_one();
        }
        Pushed::Queued
    }

    /// Asks the writer to close the connection once what is queued is sent. The first reason
    /// given wins.
    pub fn close(&self, closing: Closing) {
        let mut inner = self.inner.lock().expect("outbox lock");
        if inner.closing.is_none() {
            inner.closing = Some(closing);
        }
        drop(inner);
        self.notify.notify_one();
        self.closing.notify_waiters();
    }

    /// Whether the connection is closing.
    pub fn is_closing(&self) -> bool {
        self.inner.lock().expect("outbox lock").closing.is_some()
    }

    /// Waits until frames are queued or the connection closes, then moves every queued frame
    /// into `batch`. Returns the closing reason once the queue is empty and closing was asked.
    pub async fn next_batch(&self, batch: &mut Vec<Utf8Bytes>) -> Option<Closing> {
        loop {
            {
                let mut inner = self.inner.lock().expect("outbox lock");
                if !inner.frames.is_empty() {
                    if batch.is_empty() {
                        // Hand the queue's buffer over whole: an idle connection then keeps
                        // no queue buffer at all (the writer drops the batch once written).
                        *batch = Vec::from(std::mem::take(&mut inner.frames));
                    } else {
                        batch.extend(inner.frames.drain(..));
                    }
                    inner.bytes = 0;
                    return None;
                }
                if let Some(c) = &inner.closing {
                    return Some(c.clone());
                }
            }
            self.notify.notified().await;
        }
    }

    /// Resolves when the connection starts closing (for the reader to stop).
    pub async fn closed(&self) {
        loop {
            let notified = self.closing.notified();
            tokio::pin!(notified);
            // Registered before the check, so a close between the check and the await wakes it.
            notified.as_mut().enable();
            if self.is_closing() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overflow_closes_with_slow_consumer() {
        let ob = Outbox::new(10);
        let f = Utf8Bytes::from("123456");
        assert_eq!(ob.push(&f), Pushed::Queued);
        assert_eq!(ob.push(&f), Pushed::Overflowed);
        assert_eq!(ob.push(&f), Pushed::Closed);
        let mut batch = Vec::new();
        let closing = ob.next_batch(&mut batch).await.unwrap();
        assert!(batch.is_empty());
        assert_eq!(closing.error.unwrap().0, ErrorCode::SlowConsumer);
    }

    #[tokio::test]
    async fn drains_everything_then_reports_close() {
        let ob = Outbox::new(100);
        ob.push(&Utf8Bytes::from("a"));
        ob.push(&Utf8Bytes::from("b"));
        ob.close(Closing {
            error: None,
            ws_code: 1001,
            reason: "bye".into(),
        });
        let mut batch = Vec::new();
        assert_eq!(ob.next_batch(&mut batch).await, None);
        assert_eq!(batch.len(), 2);
        batch.clear();
        assert_eq!(ob.next_batch(&mut batch).await.unwrap().ws_code, 1001);
    }
}
