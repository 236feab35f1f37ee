//! Accepting connections on one listener, and refusing those over
//! `max_connections`.
//!
//! Owns the accept loop of a bound listener (until the shutdown signal; backing
//! off when `accept` fails, e.g. out of descriptors), the open-connection count
//! and the refusal beyond `max_connections` (an ERROR frame, or `503` to a peer
//! that speaks HTTP), the TLS handshake of a TLS listener, and one task per
//! accepted connection that `serve.rs` serves. Binding and shutdown are
//! `server.rs`'s.

use crate::http;
use crate::metrics::{ErrorReason, Metrics};
use crate::router::ConnId;
use crate::serve::{self, First, Listener};
use crate::shared::Shared;
use crate::tls;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The log target of these lines, as it was when the accept loop lived in
/// `server.rs` (log filters and lines stay as they were).
const LOG_TARGET: &str = "stompkit_broker::server";

/// How long a refused connection may take to show whether it speaks HTTP.
const REFUSAL_SNIFF: Duration = Duration::from_secs(1);

/// Accepts connections on `tcp` until the broker shuts down; each is served
/// in its own task (over TLS first when `tls`).
pub(crate) async fn accept_loop(
    tcp: TcpListener,
    listener: Arc<Listener>,
    tls: Option<tls::Acceptor>,
    shared: Arc<Shared>,
) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = tcp.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(target: LOG_TARGET, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let open = shared.metrics.connections.fetch_add(1, Ordering::Relaxed);
        if open >= shared.config.limits.max_connections as u64 {
            shared.metrics.connections.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(target: LOG_TARGET, %peer, "too many connections: refusing");
            shared.metrics.count_error(ErrorReason::ConnectionLimit);
            if tls.is_none() {
                tokio::spawn(refuse_busy(stream, listener.clone()));
            } // A TLS peer could not read a plain answer: it is just closed.
            continue;
        }
        Metrics::add(&shared.metrics.connections_total, 1);
        let conn = shared.next_conn();
        tokio::spawn(serve_counted(
            stream,
            peer,
            conn,
            shared.clone(),
            listener.clone(),
            tls.clone(),
        ));
    }
}

/// Serves one accepted connection (counted open), then counts it closed.
async fn serve_counted(
    stream: TcpStream,
    peer: SocketAddr,
    conn: ConnId,
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    tls: Option<tls::Acceptor>,
) {
    match tls {
        None => serve::serve_tcp(stream, peer, conn, shared.clone(), listener).await,
        // Boxed: the TLS state is large, and an unboxed await would make
        // every plain connection's task that large too.
        Some(acceptor) => Box::pin(async {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::trace!(target: LOG_TARGET, %peer, error = %e, "TCP_NODELAY not set");
            }
            let timeout = shared.config.login_timeout();
            match tls::handshake(&acceptor, stream, timeout).await {
                Ok(stream) => serve::serve_tls(stream, peer, conn, shared.clone(), listener).await,
                Err(e) => {
                    tracing::info!(target: LOG_TARGET, %peer, error = %e, "TLS handshake failed")
                }
            }
        })
        .await,
    }
    shared.metrics.connections.fetch_sub(1, Ordering::Relaxed);
}

/// Answers a connection over `max_connections` (the caller has not counted it):
/// on a listener that serves WebSocket, a peer whose first bytes are HTTP gets
/// `503 Service Unavailable` with `Retry-After` (what a browser's WebSocket can
/// report), anyone else a STOMP ERROR. At most a few per listener
/// (`Listener::sniffing_refusals`) wait up to [`REFUSAL_SNIFF`] for those bytes
/// at a time; beyond that the ERROR goes at once.
async fn refuse_busy(mut stream: TcpStream, listener: Arc<Listener>) {
    const MESSAGE: &str = "too many connections";
    let permit = match listener.websocket {
        Some(_) => listener.sniffing_refusals.try_acquire().ok(),
        None => None,
    };
    if permit.is_some() {
        let mut buf = BytesMut::new();
        match serve::read_first(&mut stream, &mut buf, Instant::now() + REFUSAL_SNIFF).await {
            First::Gone => return,
            First::Http => {
                let answer = http::error(&mut stream, 503, MESSAGE);
                if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), answer).await {
                    tracing::trace!(target: LOG_TARGET, error = %e, "503 not sent");
                }
                return;
            }
            First::Stomp => {}
        }
    }
    serve::refuse(stream, MESSAGE).await;
}
