//! A seed 001 client (docs/compat.md): plain text WebSocket frames at `/ws`, each sent frame
//! a lobby message, each received frame `<sender>: <text>`. Blocking, for the process tests.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::WAIT;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One seed 001 connection, with a runtime of its own so that tests stay blocking.
pub struct Seed001 {
    rt: tokio::runtime::Runtime,
    ws: Ws,
    /// Every frame received so far, in order.
    pub seen: Vec<String>,
}

impl Seed001 {
    /// Connects to `ws://addr/ws?name=name`.
    pub fn connect(addr: &str, name: &str) -> Seed001 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = format!("ws://{addr}/ws?name={name}");
        let (ws, _) = rt
            .block_on(tokio_tungstenite::connect_async(url.as_str()))
            .unwrap();
        Seed001 {
            rt,
            ws,
            seen: Vec::new(),
        }
    }

    /// Sends one line, as the original client does after `1 `.
    pub fn send(&mut self, text: &str) {
        self.rt
            .block_on(self.ws.send(Message::text(text.to_string())))
            .unwrap();
    }

    /// Waits for a frame equal to `want` (one received after the previous `expect`).
    pub fn expect(&mut self, want: &str) {
        assert!(
            self.try_expect(want, WAIT),
            "no frame {want:?}; saw {:#?}",
            self.seen
        );
    }

    /// Like [`Seed001::expect`], but gives up after `wait`: whether `want` came.
    pub fn try_expect(&mut self, want: &str, wait: Duration) -> bool {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ws = &mut self.ws;
            // The timer is made inside the runtime: it needs its clock.
            let next = self
                .rt
                .block_on(async { tokio::time::timeout(left, ws.next()).await });
            match next {
                Err(_) => return false,
                Ok(Some(Ok(Message::Text(t)))) => {
                    self.seen.push(t.to_string());
                    if t.as_str() == want {
                        return true;
                    }
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("closed before {want:?} ({other:?}); saw {:#?}", self.seen),
            }
        }
    }
}
