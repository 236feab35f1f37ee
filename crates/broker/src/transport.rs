//! The two ends of a connection's byte pipe, whatever carries them.
//!
//! Owns the seam between a transport and the STOMP loop in `connection.rs`:
//! [`Inbound`] (peer → STOMP bytes appended to the parser's buffer) and
//! [`Outbound`] (an outbox buffer → the peer, then the close). Two transports
//! implement them: a byte stream ([`StreamIn`]/[`StreamOut`]: a TCP socket's
//! halves, or the halves of a TLS stream) and a WebSocket ([`WsIn`]/[`WsOut`]:
//! each data message's payload is STOMP bytes; each outbox buffer leaves as one
//! message; the close handshake carries a close code).
//!
//! The connection loop says why a connection ends ([`CloseReason`]); only the
//! WebSocket uses it (as the close code).

use bytes::BytesMut;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stompkit_ws::tokio_tungstenite::WebSocketStream;
use stompkit_ws::tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use stompkit_ws::tokio_tungstenite::tungstenite::{self, Message};
use stompkit_ws::{Incoming, OutgoingMode, PeerFraming, WsError, close_message, incoming};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes reserved before each read from a byte stream.
const READ_CHUNK: usize = 8 * 1024;

/// Why a connection ends, when not normally (a WebSocket sends it as the close
/// code; a normal end, DISCONNECT or the peer leaving, is 1000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The server is shutting down: 1001.
    GoingAway,
    /// The peer sent invalid STOMP: 1002.
    Protocol,
    /// A timeout or a rule of the session (the ERROR frame says which): 1008.
    Policy,
    /// A frame or message over the size limits: 1009.
    TooBig,
}

impl CloseReason {
    fn code(self) -> u16 {
        match self {
            CloseReason::GoingAway => 1001,
            CloseReason::Protocol => 1002,
            CloseReason::Policy => 1008,
            CloseReason::TooBig => 1009,
        }
    }
}

/// Where a connection's STOMP bytes come from.
pub(crate) trait Inbound: Send + 'static {
    /// Waits for the next bytes from the peer and appends them to `buf`;
    /// `Ok(0)` when the peer is done.
    fn read(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> + Send;

    /// Records why the connection ends (the default ignores it).
    fn set_close_reason(&mut self, _reason: CloseReason) {}

    /// After the writer closed its side: waits at most `timeout` for the peer's
    /// side of the close (the default returns at once).
    fn finish(self, _timeout: Duration) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async {}
    }
}

/// Where a connection's outgoing STOMP bytes go.
pub(crate) trait Outbound: Send + 'static {
    /// Writes one outbox buffer (any number of encoded frames, or a heart-beat);
    /// it may take the buffer's contents (`buf` is cleared afterwards either way).
    fn write(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<()>> + Send;

    /// Closes the sending side (after the last buffer).
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// The reading half of a byte stream (TCP, TLS): STOMP as is.
///
/// Memory: an idle connection waits for its next bytes with a small buffer in
/// its task ([`IDLE_READ`] bytes) instead of an [`READ_CHUNK`] heap buffer; a
/// peer whose last read was large (a busy publisher) reads into the heap
/// buffer directly, so it still needs few syscalls.
pub(crate) struct StreamIn<R> {
    reader: R,
    busy: bool,
}

impl<R> StreamIn<R> {
    /// Wraps a reading half.
    pub(crate) fn new(reader: R) -> StreamIn<R> {
        StreamIn {
            reader,
            busy: false,
        }
    }
}

/// Bytes an idle connection's first read after a pause takes (see [`StreamIn`]).
const IDLE_READ: usize = 256;

/// The writing half of a byte stream.
pub(crate) struct StreamOut<W>(pub(crate) W);

impl<R: AsyncRead + Unpin + Send + 'static> Inbound for StreamIn<R> {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if buf.capacity() == 0 && !self.busy {
            let mut first = [0u8; IDLE_READ];
            let n = self.reader.read(&mut first).await?;
            buf.extend_from_slice(&first[..n]);
            self.busy = n == IDLE_READ;
            return Ok(n);
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        let n = self.reader.read_buf(buf).await?;
        self.busy = n >= READ_CHUNK / 2;
        Ok(n)
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> Outbound for StreamOut<W> {
    async fn write(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        self.0.write_all(buf).await
    }

    async fn close(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

/// The close code both halves of a WebSocket agree on (0 = not set: 1000).
type CloseCell = Arc<AtomicU16>;

/// The sending half, handed back by the writer once it sent its Close (so the
/// reader can reach the socket under a broken WebSocket).
type SinkSlot<S> = Arc<Mutex<Option<SplitSink<WebSocketStream<S>, Message>>>>;

/// How long a broken connection's socket is drained before it is dropped, and
/// how long it may stay silent meanwhile.
const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// The reading half of a WebSocket: each data message's payload is STOMP bytes.
pub(crate) struct WsIn<S> {
    stream: SplitStream<WebSocketStream<S>>,
    framing: PeerFraming,
    close: CloseCell,
    sink: SinkSlot<S>,
    /// The WebSocket framing failed (bad frame, message too big): what follows
    /// on the socket is not readable as WebSocket.
    broken: bool,
}

/// The writing half of a WebSocket: each outbox buffer is one message.
pub(crate) struct WsOut<S> {
    sink: Option<SplitSink<WebSocketStream<S>, Message>>,
    slot: SinkSlot<S>,
    framing: PeerFraming,
    mode: OutgoingMode,
    close: CloseCell,
}

/// Splits an accepted WebSocket into the two ends of the STOMP loop.
pub(crate) fn websocket<S>(ws: WebSocketStream<S>, mode: OutgoingMode) -> (WsIn<S>, WsOut<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let framing = PeerFraming::new();
    let close = CloseCell::default();
    let slot = SinkSlot::default();
    (
        WsIn {
            stream,
            framing: framing.clone(),
            close: close.clone(),
            sink: slot.clone(),
            broken: false,
        },
        WsOut {
            sink: Some(sink),
            slot,
            framing,
            mode,
            close,
        },
    )
}

impl<S> Inbound for WsIn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            let message = match self.stream.next().await {
                None => return Ok(0),
                Some(Ok(message)) => incoming(message),
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => return Ok(0),
                Some(Err(e)) => {
                    self.broken = true;
                    let error = WsError::from(e);
                    if let Some(code) = error.close_code() {
                        self.close.store(u16::from(code), Ordering::Relaxed);
                    }
                    return Err(io::Error::other(error));
                }
            };
            self.framing.observe(&message);
            match message {
                Incoming::Data { bytes, .. } if bytes.is_empty() => {}
                Incoming::Data { bytes, .. } => {
                    buf.extend_from_slice(&bytes);
                    return Ok(bytes.len());
                }
                // tungstenite queued the Pong; the next read or write sends it.
                Incoming::Control => {}
                // tungstenite queued our Close reply; the writer's close flushes it.
                Incoming::Close(_) => return Ok(0),
            }
        }
    }

    fn set_close_reason(&mut self, reason: CloseReason) {
        // The first reason wins (a parse error before the shutdown, say).
        let _ = self
            .close
            .compare_exchange(0, reason.code(), Ordering::Relaxed, Ordering::Relaxed);
    }

    async fn finish(mut self, timeout: Duration) {
        if !self.broken {
            // Read (and drop) until the peer's Close arrives or the stream ends.
            let drain = async { while let Some(Ok(_)) = self.stream.next().await {} };
            let _ = tokio::time::timeout(timeout, drain).await;
            return;
        }
        // The framing is lost: half-close the socket and read raw bytes until the
        // peer closes too (or goes quiet), so that unread bytes (the rest of an
        // oversized message) do not turn our close into a reset that could destroy
        // the Close frame in flight.
        let sink = self.sink.lock().ok().and_then(|mut slot| slot.take());
        let Some(Ok(mut ws)) = sink.map(|sink| self.stream.reunite(sink)) else {
            return;
        };
        let socket = ws.get_mut();
        let drain = async {
            let _ = socket.shutdown().await;
            let mut scratch = [0u8; 4096];
            while let Ok(Ok(n)) = tokio::time::timeout(DRAIN_IDLE, socket.read(&mut scratch)).await
            {
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, drain).await;
    }
}

impl<S> Outbound for WsOut<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn write(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        let Some(sink) = &mut self.sink else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let bytes = buf.split().freeze();
        let message = stompkit_ws::outgoing_message(bytes, self.mode, self.framing.sends_text());
        sink.send(message).await.map_err(io::Error::other)
    }

    async fn close(&mut self) {
        let code = match self.close.load(Ordering::Relaxed) {
            0 => 1000,
            code => code,
        };
        let reason = match code {
            1001 => "server shutting down",
            1002 => "invalid STOMP frame",
            1008 => "STOMP session ended by the server",
            1009 => "message too big",
            _ => "",
        };
        let Some(mut sink) = self.sink.take() else {
            return;
        };
        // After the peer's Close this only flushes our queued reply.
        let _ = sink
            .send(close_message(CloseCode::from(code), reason))
            .await;
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(sink);
        }
    }
}
