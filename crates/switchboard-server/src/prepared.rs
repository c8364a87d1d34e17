//! A listener whose connections are prepared before the HTTP server gets them (a TLS
//! handshake, a look at the request head): each accepted connection is prepared in a task of
//! its own, so a slow or silent client never holds up the accept loop or the others.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// Prepared connections waiting for the HTTP server to take them.
const READY_QUEUE: usize = 256;

/// See the module documentation.
pub struct PreparedListener<Io> {
    ready: tokio::sync::mpsc::Receiver<(Io, SocketAddr)>,
    local: SocketAddr,
}

impl<Io: Send + 'static> PreparedListener<Io> {
    /// Accepts on `listener` and hands each connection `prepare` makes into something (`Some`)
    /// to the HTTP server; `None` means the connection was refused or taken elsewhere.
    pub fn new<F, Fut>(listener: TcpListener, prepare: F) -> std::io::Result<PreparedListener<Io>>
    where
        F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
        Fut: Future<Output = Option<Io>> + Send + 'static,
    {
        let local = listener.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(READY_QUEUE);
        tokio::spawn(async move {
            loop {
                // When the HTTP server lets go of this listener (shutdown), so does the loop,
                // and the port is free again.
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = tx.closed() => return,
                };
                let (tcp, addr) = match accepted {
                    Ok(ok) => ok,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Chat frames are small and wanted now: Nagle's algorithm would hold a
                // frame back until the previous one is acknowledged (tens of ms with the
                // peer's delayed ACK). The writers batch frames themselves.
                let _ = tcp.set_nodelay(true);
                let (prepared, tx) = (prepare(tcp, addr), tx.clone());
                tokio::spawn(async move {
                    if let Some(io) = prepared.await {
                        let _ = tx.send((io, addr)).await;
                    }
                });
            }
        });
        Ok(PreparedListener { ready, local })
    }
}

impl<Io> axum::serve::Listener for PreparedListener<Io>
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Io = Io;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
