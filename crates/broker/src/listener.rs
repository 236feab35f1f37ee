//! One accepted connection: what it speaks, and who serves it.
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
//! halves: the hot path) and [`serve_stream`] for any other stream (a TLS
//! stream wrapping the TCP one). Both end in `connection::serve_stomp`, or in
//! relay mode (`--upstream`) in `relay::serve`.

use crate::connection::{StompTransport, serve_stomp};
use crate::relay;
use crate::router::ConnId;
use crate::server::Shared;
use crate::session::refusal;
use crate::transport::{Inbound, Outbound, StreamIn, StreamOut, websocket};
use crate::{http, metrics::Metrics};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stompkit_frame::Version;
use stompkit_wire::Encoder;
use stompkit_ws::{
    Sniff, WsError, WsServerConfig, parse_request_head, server_accept_with_prefix, sniff,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Bytes reserved for the first read.
const FIRST_READ: usize = 8 * 1024;

/// What one listener serves.
#[derive(Debug)]
pub(crate) struct Listener {
    /// STOMP over TCP (otherwise a raw STOMP client gets an ERROR).
    pub(crate) stomp: bool,
    /// WebSocket and the demo page, with these settings.
    pub(crate) websocket: Option<WsServerConfig>,
    /// Refused connections (over `max_connections`) that may wait to show
    /// whether they speak HTTP ([`refuse_busy`]).
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

/// Refused connections per listener that may wait for their first bytes at once.
const SNIFFING_REFUSALS: usize = 64;

/// How long a refused connection may take to show whether it speaks HTTP.
const REFUSAL_SNIFF: Duration = Duration::from_secs(1);

/// Answers a connection over `max_connections` (the caller has not counted it):
/// on a listener that serves WebSocket, a peer whose first bytes are HTTP gets
/// `503 Service Unavailable` with `Retry-After` (what a browser's WebSocket can
/// report), anyone else a STOMP ERROR. At most [`SNIFFING_REFUSALS`] wait up to
/// [`REFUSAL_SNIFF`] for those bytes at a time; beyond that the ERROR goes at once.
pub(crate) async fn refuse_busy(mut stream: TcpStream, listener: Arc<Listener>) {
    const MESSAGE: &str = "too many connections";
    let permit = match listener.websocket {
        Some(_) => listener.sniffing_refusals.try_acquire().ok(),
        None => None,
    };
    if permit.is_some() {
        let mut buf = BytesMut::new();
        match read_first(&mut stream, &mut buf, Instant::now() + REFUSAL_SNIFF).await {
            First::Gone => return,
            First::Http => {
                let answer = http::error(&mut stream, 503, MESSAGE);
                let _ = tokio::time::timeout(Duration::from_secs(2), answer).await;
                return;
            }
            First::Stomp => {}
        }
    }
    refuse(stream, MESSAGE).await;
}

/// Serves a plain TCP connection (the fast path: owned socket halves).
pub(crate) async fn serve_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    conn: ConnId,
    shared: Arc<Shared>,
    listener: Arc<Listener>,
) {
    let _ = stream.set_nodelay(true);
    serve_split(stream, TcpStream::into_split, peer, conn, shared, listener).await;
}

/// Serves a connection over any stream, e.g. a TLS stream that wraps the
/// accepted `TcpStream`: the hook for transports layered under STOMP and
/// WebSocket. Behaves exactly like [`serve_tcp`] from the first byte on.
pub(crate) async fn serve_stream<S>(
    stream: S,
    peer: SocketAddr,
    conn: ConnId,
    shared: Arc<Shared>,
    listener: Arc<Listener>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_split(stream, tokio::io::split, peer, conn, shared, listener).await;
}

/// What the first bytes said.
enum First {
    Stomp,
    Http,
    /// The peer closed (or failed) before saying anything decisive.
    Gone,
}

async fn serve_split<S, R, W>(
    mut stream: S,
    split: fn(S) -> (R, W),
    peer: SocketAddr,
    conn: ConnId,
    shared: Arc<Shared>,
    listener: Arc<Listener>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let accepted = Instant::now();
    let deadline = accepted + shared.config.login_timeout();
    let mut buf = BytesMut::new();
    let first = match &listener.websocket {
        // Nothing to tell apart: the session reads the first bytes itself.
        None => First::Stomp,
        Some(_) => read_first(&mut stream, &mut buf, deadline).await,
    };
    match (first, &listener.websocket) {
        (First::Gone, _) => {}
        // Boxed: a WebSocket session's future is much larger than a TCP one's,
        // and an unboxed await would make every TCP connection's task that large.
        (First::Http, Some(ws)) => {
            Box::pin(serve_http(
                stream,
                buf,
                ws,
                peer,
                conn,
                shared.clone(),
                accepted,
                deadline,
            ))
            .await
        }
        (_, _) if !listener.stomp => {
            Metrics::add(&shared.metrics.errors, 1);
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
                accepted,
            };
            serve_session(transport, conn, shared).await;
        }
    }
}

/// Reads until [`sniff`] decides. A peer that stays silent until `deadline` is
/// taken for STOMP (its session then fails the login timeout at once).
async fn read_first<S>(stream: &mut S, buf: &mut BytesMut, deadline: Instant) -> First
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
#[allow(clippy::too_many_arguments)]
async fn serve_http<S>(
    mut stream: S,
    mut buf: BytesMut,
    ws: &WsServerConfig,
    peer: SocketAddr,
    conn: ConnId,
    shared: Arc<Shared>,
    accepted: Instant,
    deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let read_head = async {
        loop {
            match parse_request_head(&buf) {
                Ok(Some(head)) => return Ok(Some(head)),
                Ok(None) => {}
                Err(e) => return Err(e),
            }
            buf.reserve(1024);
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            }
        }
    };
    let head = match tokio::time::timeout_at(deadline, read_head).await {
        Ok(Ok(Some(head))) => head,
        Ok(Err(WsError::Refused { status, reason })) => {
            let _ = http::error(&mut stream, status, reason).await;
            return;
        }
        Ok(_) | Err(_) => return,
    };
    if !head.websocket {
        tracing::debug!(%peer, method = %head.method, target = %head.target, "HTTP request");
        let ws_path = ws.path_allowed(&head.target);
        let respond = http::respond(&mut stream, &head, ws_path);
        let _ = tokio::time::timeout(Duration::from_secs(10), respond).await;
        return;
    }
    // The sniffing buffer (8 KiB reserved) must not live as long as the connection.
    let prefix = buf.to_vec();
    drop(buf);
    let (ws_stream, negotiated) = match server_accept_with_prefix(stream, prefix, ws).await {
        Ok(accepted) => accepted,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "WebSocket upgrade refused");
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
        accepted,
    };
    serve_session(transport, conn, shared).await;
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
        None => serve_stomp(transport, conn, shared).await,
    }
}

/// Answers a connection we will not serve with one ERROR frame, then closes.
pub(crate) async fn refuse<S: AsyncWrite + Unpin>(mut stream: S, message: &str) {
    let mut bytes = Vec::new();
    let _ = Encoder::new(None).encode(&refusal(message), &mut bytes);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
