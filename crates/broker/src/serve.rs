//! Serving one accepted connection: what it speaks, and who serves it.
//!
//! Owns the path from an accepted stream to a STOMP session: read the first
//! bytes (within `login_timeout_ms`), [`sniff`] them, then
//! - raw STOMP → the session over the byte stream (or, on a WebSocket-only
//!   listener, an ERROR saying TCP STOMP is disabled there);
//! - an HTTP request → a WebSocket upgrade on the configured paths (Origin
//!   policy, sub-protocol; the sub-protocol caps the STOMP versions) and the
//!   session over the WebSocket, or the demo page / 404 (`http.rs`).
//!
//! Entry points: [`serve_tcp`] for a plain TCP connection (split into owned
//! halves: the hot path) and [`serve_tls`] for a TLS stream wrapping the TCP
//! one. Both end in `connection::serve_local`, or in
//! relay mode (`--upstream`) in `relay::serve`. Accepting connections, and
//! refusing those over `max_connections`, is `accept.rs`'s.

use crate::connection::{StompTransport, serve_local};
use crate::http;
use crate::metrics::ErrorReason;
use crate::registry::TransportKind;
use crate::relay;
use crate::router::ConnId;
use crate::session::refusal;
use crate::shared::Shared;
use crate::transport::{Inbound, Outbound, StreamIn, StreamOut, websocket};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stompkit_frame::Version;
use stompkit_wire::Encoder;
use stompkit_ws::{Sniff, WsError, WsServerConfig, server_accept_with_prefix, sniff};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Bytes reserved for the first read.
const FIRST_READ: usize = 8 * 1024;

/// The log target of these lines, as it was before this module was named for
/// what it does (log filters and lines stay as they were).
const LOG_TARGET: &str = "stompkit_broker::listener";

/// Refused connections per listener that may wait for their first bytes at once.
const SNIFFING_REFUSALS: usize = 64;

/// What one listener serves.
#[derive(Debug)]
pub(crate) struct Listener {
    /// STOMP over TCP (otherwise a raw STOMP client gets an ERROR).
    pub(crate) stomp: bool,
    /// WebSocket and the demo page, with these settings.
    pub(crate) websocket: Option<WsServerConfig>,
    /// Refused connections (over `max_connections`) that may wait to show
    /// whether they speak HTTP (`accept.rs`).
    pub(crate) sniffing_refusals: Semaphore,
}

impl Listener {
    /// A listener serving TCP STOMP if `stomp`, WebSocket with `websocket`.
    pub(crate) fn new(stomp: bool, websocket: Option<WsServerConfig>) -> Listener {
        Listener {
            stomp,
            websocket,
            sniffing_refusals: Semaphore::new(SNIFFING_REFUSALS),
        }
    }
}

/// One accepted connection, before it is known what it speaks.
struct Accepted {
    peer: SocketAddr,
    conn: ConnId,
    /// Over TLS.
    tls: bool,
    shared: Arc<Shared>,
    /// When it was accepted (starts the login timeout).
    at: Instant,
    /// The login timeout: the first bytes, an HTTP head, a WebSocket handshake
    /// must come by then.
    deadline: Instant,
}

/// Serves a plain TCP connection (the fast path: owned socket halves).
pub(crate) async fn serve_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    conn: ConnId,
    shared: Arc<Shared>,
    listener: Arc<Listener>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::trace!(target: LOG_TARGET, %peer, error = %e, "TCP_NODELAY not set");
    }
    serve_split(
        stream,
        TcpStream::into_split,
        peer,
        conn,
        false,
        shared,
        listener,
    )
    .await;
}

/// Serves a connection over a TLS stream that wraps the accepted `TcpStream`
/// (the admin API lists it as `tls`, or `wss`). Behaves exactly like
/// [`serve_tcp`] from the first byte on.
pub(crate) async fn serve_tls<S>(
    stream: S,
    peer: SocketAddr,
    conn: ConnId,
    shared: Arc<Shared>,
    listener: Arc<Listener>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_split(stream, tokio::io::split, peer, conn, true, shared, listener).await;
}

/// What the first bytes said.
pub(crate) enum First {
    /// STOMP (or silence until the deadline).
    Stomp,
    /// An HTTP request.
    Http,
    /// The peer closed (or failed) before saying anything decisive.
    Gone,
}

async fn serve_split<S, R, W>(
    mut stream: S,
    split: fn(S) -> (R, W),
    peer: SocketAddr,
    conn: ConnId,
    tls: bool,
    shared: Arc<Shared>,
    listener: Arc<Listener>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let at = Instant::now();
    let deadline = at + shared.config.login_timeout();
    let mut buf = BytesMut::new();
    let first = match &listener.websocket {
        // Nothing to tell apart: the session reads the first bytes itself.
        None => First::Stomp,
        Some(_) => read_first(&mut stream, &mut buf, deadline).await,
    };
    let accepted = Accepted {
        peer,
        conn,
        tls,
        shared,
        at,
        deadline,
    };
    match (first, &listener.websocket) {
        (First::Gone, _) => {}
        // Boxed: a WebSocket session's future is much larger than a TCP one's,
        // and an unboxed await would make every TCP connection's task that large.
        (First::Http, Some(ws)) => Box::pin(serve_http(stream, buf, ws, accepted)).await,
        (_, _) if !listener.stomp => {
            accepted
                .shared
                .metrics
                .count_error(ErrorReason::StompDisabled);
            refuse(
                stream,
                "TCP STOMP is disabled on this listener: use WebSocket",
            )
            .await;
        }
        (_, _) => {
            let (reader, writer) = split(stream);
            let transport = StompTransport {
                inbound: StreamIn::new(reader),
                outbound: StreamOut(writer),
                prefix: buf,
                versions: &Version::ALL,
                peer,
                accepted: at,
                kind: TransportKind::of(tls, false),
            };
            serve_session(transport, accepted.conn, accepted.shared).await;
        }
    }
}

/// Reads until [`sniff`] decides. A peer that stays silent until `deadline` is
/// taken for STOMP (its session then fails the login timeout at once).
pub(crate) async fn read_first<S>(stream: &mut S, buf: &mut BytesMut, deadline: Instant) -> First
where
    S: AsyncRead + Unpin,
{
    let read = async {
        loop {
            match sniff(buf) {
                Sniff::Http => return First::Http,
                Sniff::Stomp => return First::Stomp,
                Sniff::NeedMore => {}
            }
            buf.reserve(FIRST_READ);
            match stream.read_buf(buf).await {
                Ok(0) | Err(_) => return First::Gone,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .unwrap_or(First::Stomp)
}

/// An HTTP request: WebSocket upgrade → STOMP session; otherwise our pages.
async fn serve_http<S>(mut stream: S, mut buf: BytesMut, ws: &WsServerConfig, accepted: Accepted)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = accepted.peer;
    let read_head = http::read_head(&mut stream, &mut buf);
    let head = match tokio::time::timeout_at(accepted.deadline, read_head).await {
        Ok(Ok(Some(head))) => head,
        Ok(Err(WsError::Refused { status, reason })) => {
            if let Err(e) = http::error(&mut stream, status, reason).await {
                tracing::trace!(target: LOG_TARGET, %peer, error = %e, "HTTP error answer not sent");
            }
            return;
        }
        Ok(_) | Err(_) => return,
    };
    if !head.websocket {
        tracing::debug!(target: LOG_TARGET, %peer, method = %head.method, target = %head.target, "HTTP request");
        let ws_path = ws.path_allowed(&head.target);
        let respond = http::respond(&mut stream, &head, ws_path);
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(10), respond).await {
            tracing::trace!(target: LOG_TARGET, %peer, error = %e, "HTTP answer not sent");
        }
        return;
    }
    // The sniffing buffer (8 KiB reserved) must not live as long as the connection.
    let prefix = buf.to_vec();
    drop(buf);
    let (ws_stream, negotiated) = match server_accept_with_prefix(stream, prefix, ws).await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!(target: LOG_TARGET, %peer, error = %e, "WebSocket upgrade refused");
            return;
        }
    };
    let (inbound, outbound) = websocket(ws_stream, ws.outgoing);
    let transport = StompTransport {
        inbound,
        outbound,
        prefix: BytesMut::new(),
        versions: negotiated.allowed_versions(),
        peer,
        accepted: accepted.at,
        kind: TransportKind::of(accepted.tls, true),
    };
    serve_session(transport, accepted.conn, accepted.shared).await;
}

/// The session over a settled transport: the broker's own, or in relay mode
/// one on the upstream broker.
async fn serve_session<I: Inbound, O: Outbound>(
    transport: StompTransport<I, O>,
    conn: ConnId,
    shared: Arc<Shared>,
) {
    match shared.upstream.clone() {
        // Boxed for the same reason: relay sessions are rare and large.
        Some(upstream) => Box::pin(relay::serve(transport, upstream, shared)).await,
        None => serve_local(transport, conn, shared).await,
    }
}

/// Answers a connection we will not serve with one ERROR frame, then closes
/// (within 2 s: the peer may not read).
pub(crate) async fn refuse<S: AsyncWrite + Unpin>(mut stream: S, message: &str) {
    let mut bytes = Vec::new();
    if let Err(e) = Encoder::new(None).encode(&refusal(message), &mut bytes) {
        tracing::debug!(target: LOG_TARGET, error = %e, "refusal not encoded");
        return;
    }
    let answer = async {
        let written = stream.write_all(&bytes).await;
        let shut = stream.shutdown().await;
        written.and(shut)
    };
    match tokio::time::timeout(Duration::from_secs(2), answer).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::trace!(target: LOG_TARGET, error = %e, "refusal not sent"),
        Err(_) => tracing::trace!(target: LOG_TARGET, "refusal not sent in time"),
    }
}
