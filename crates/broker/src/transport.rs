//! The two ends of a connection's byte pipe, whatever carries them.
//!
//! Owns the seam between a transport and the STOMP loop in `connection.rs`:
//! [`Inbound`] (peer → STOMP bytes appended to the parser's buffer) and
//! [`Outbound`] (an outbox buffer → the peer, then the close). Two transports
//! implement them: a byte stream ([`StreamIn`]/[`StreamOut`]: a TCP socket's
//! halves, or the halves of a TLS stream) and a WebSocket ([`WsIn`]/[`WsOut`]:
//! each data message's payload is STOMP bytes; each outbox buffer leaves as one
//! message; the close handshake carries a close code). The WebSocket framing
//! itself (messages ⇄ bytes, text or binary, ping, close handshake, draining a
//! broken connection) is stompkit-ws's [`byte_halves`]; this module only maps
//! the broker's [`CloseReason`]s to close codes and their reason texts.
//!
//! The connection loop says why a connection ends ([`CloseReason`]); only the
//! WebSocket uses it (as the close code).

use bytes::BytesMut;
use std::future::Future;
use std::io;
use std::time::Duration;
use stompkit_ws::tokio_tungstenite::WebSocketStream;
use stompkit_ws::tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use stompkit_ws::{OutgoingMode, WsByteReader, WsByteWriter, byte_halves};
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

/// The reading half of a WebSocket: each data message's payload is STOMP bytes
/// (stompkit-ws's [`WsByteReader`]).
pub(crate) struct WsIn<S>(WsByteReader<S>);

/// The writing half of a WebSocket: each outbox buffer is one message
/// (stompkit-ws's [`WsByteWriter`]); the close carries the code of the
/// [`CloseReason`] the reading half was given.
pub(crate) struct WsOut<S>(WsByteWriter<S>);

/// Splits an accepted WebSocket into the two ends of the STOMP loop.
pub(crate) fn websocket<S>(ws: WebSocketStream<S>, mode: OutgoingMode) -> (WsIn<S>, WsOut<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (reader, writer) = byte_halves(ws, mode);
    (WsIn(reader), WsOut(writer))
}

impl<S> Inbound for WsIn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.0.read(buf).await.map_err(io::Error::other)
    }

    fn set_close_reason(&mut self, reason: CloseReason) {
        // The first reason wins (a parse error before the shutdown, say).
        self.0.set_close_code(CloseCode::from(reason.code()));
    }

    async fn finish(self, timeout: Duration) {
        self.0.finish(timeout).await;
    }
}

impl<S> Outbound for WsOut<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn write(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        let bytes = buf.split().freeze();
        self.0.write(bytes).await.map_err(io::Error::other)
    }

    async fn close(&mut self) {
        let reason = match u16::from(self.0.close_code()) {
            1001 => "server shutting down",
            1002 => "invalid STOMP frame",
            1008 => "STOMP session ended by the server",
            1009 => "message too big",
            _ => "",
        };
        self.0.close(reason).await;
    }
}
