//! A WebSocket as a byte stream of STOMP, for callers that run their own parser.
//!
//! Owns the one step between WebSocket messages and STOMP bytes that every
//! stompkit WebSocket user goes through: [`StompWebSocket`](crate::StompWebSocket)
//! (which parses the bytes into frames), a server's own connection loop
//! ([`byte_halves`]: [`WsByteReader`] / [`WsByteWriter`], the broker's), and a
//! client that wants an `AsyncRead + AsyncWrite` stream ([`WsByteStream`], the
//! `stompkit` command's). Reading: the payload of each data message, text or
//! binary, is STOMP bytes (several frames, part of one, or a heart-beat EOL);
//! control messages are answered by tungstenite itself; the peer's Close ends
//! the bytes. Writing: encoded STOMP bytes leave as **one** message, text or
//! binary by [`OutgoingMode`] (never invalid text). It does not parse or encode
//! STOMP, and it does not choose close reasons: the caller does.

use crate::config::OutgoingMode;
use crate::error::WsError;
use crate::message::{Incoming, PeerFraming, close_message, incoming, outgoing_message};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

/// What the next data of a WebSocket is, for STOMP.
pub(crate) enum Received {
    /// The payload of a data message (never empty).
    Bytes(Bytes),
    /// The peer's Close (tungstenite queued our reply: the next read, write or
    /// flush sends it).
    Closed,
    /// The stream ended (or was already closed).
    Ended,
    /// The WebSocket layer failed (bad framing, a message over the limits, a
    /// text message that is not UTF-8).
    Failed(tungstenite::Error),
}

/// Polls `ws` until a data message with bytes, the peer's Close, the end or an
/// error; skips control messages and empty data messages, and records in
/// `framing` whether the peer's last data message was text.
pub(crate) fn poll_received<T>(
    ws: &mut T,
    framing: &PeerFraming,
    cx: &mut Context<'_>,
) -> Poll<Received>
where
    T: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        let message = match ready!(ws.poll_next_unpin(cx)) {
            None
            | Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) =>
            {
                return Poll::Ready(Received::Ended);
            }
            Some(Err(e)) => return Poll::Ready(Received::Failed(e)),
            Some(Ok(message)) => incoming(message),
        };
        framing.observe(&message);
        match message {
            Incoming::Data { bytes, .. } if bytes.is_empty() => {}
            Incoming::Data { bytes, .. } => return Poll::Ready(Received::Bytes(bytes)),
            // tungstenite queued the Pong; the next read or write sends it.
            Incoming::Control => {}
            Incoming::Close(_) => return Poll::Ready(Received::Closed),
        }
    }
}

/// Sends a Close `message`: `Ok(true)` once sent, `Ok(false)` when the
/// WebSocket is already closed or closing (the Close crossed the peer's).
pub(crate) async fn send_close<T>(sink: &mut T, message: Message) -> Result<bool, WsError>
where
    T: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    match sink.send(message).await {
        Ok(()) => Ok(true),
        Err(
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Protocol(tungstenite::error::ProtocolError::SendAfterClosing),
        ) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The close code both halves agree on (0: not set, a normal 1000).
#[derive(Debug, Default)]
struct CloseCell(AtomicU16);

impl CloseCell {
    /// Sets the code unless one is set already (the first reason wins).
    fn set(&self, code: CloseCode) {
        let _unchanged_if_set =
            self.0
                .compare_exchange(0, u16::from(code), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Sets the code, whatever was set before (the WebSocket's own failure
    /// decides how it closes).
    fn force(&self, code: CloseCode) {
        self.0.store(u16::from(code), Ordering::Relaxed);
    }

    fn get(&self) -> CloseCode {
        match self.0.load(Ordering::Relaxed) {
            0 => CloseCode::Normal,
            code => CloseCode::from(code),
        }
    }
}

/// The sending half, handed back by the writer once it sent its Close (so the
/// reader can reach the socket under a broken WebSocket).
type SinkSlot<S> = Arc<Mutex<Option<SplitSink<WebSocketStream<S>, Message>>>>;

/// How long a broken connection's socket is drained before it is dropped, and
/// how long it may stay silent meanwhile.
const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// The reading half of [`byte_halves`]: each data message's payload, appended
/// to the caller's parser buffer. Reading also sends the answers to pings.
#[derive(Debug)]
pub struct WsByteReader<S> {
    stream: SplitStream<WebSocketStream<S>>,
    framing: PeerFraming,
    close: Arc<CloseCell>,
    sink: SinkSlot<S>,
    /// The WebSocket framing failed (bad frame, message too big): what follows
    /// on the socket is not readable as WebSocket.
    broken: bool,
}

/// The writing half of [`byte_halves`]: each buffer of encoded STOMP leaves as
/// one message; [`close`](WsByteWriter::close) sends the close code the halves
/// agreed on.
#[derive(Debug)]
pub struct WsByteWriter<S> {
    sink: Option<SplitSink<WebSocketStream<S>, Message>>,
    slot: SinkSlot<S>,
    framing: PeerFraming,
    mode: OutgoingMode,
    close: Arc<CloseCell>,
}

/// Splits an open WebSocket into a byte reader and a byte writer for a
/// connection loop with its own STOMP parser (a server's, usually), outgoing
/// messages framed by `mode`.
///
/// The halves share the close code: the caller may set one
/// ([`WsByteReader::set_close_code`]; the first one set wins), the reader
/// records the code of a WebSocket error it meets ([`WsError::close_code`]:
/// 1009, 1007, 1002; it replaces any code set), and [`WsByteWriter::close`]
/// sends it (1000 when none was set).
pub fn byte_halves<S>(
    ws: WebSocketStream<S>,
    mode: OutgoingMode,
) -> (WsByteReader<S>, WsByteWriter<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (sink, stream) = ws.split();
    let framing = PeerFraming::new();
    let close = Arc::new(CloseCell::default());
    let slot = SinkSlot::default();
    (
        WsByteReader {
            stream,
            framing: framing.clone(),
            close: close.clone(),
            sink: slot.clone(),
            broken: false,
        },
        WsByteWriter {
            sink: Some(sink),
            slot,
            framing,
            mode,
            close,
        },
    )
}

impl<S> WsByteReader<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Waits for the next data message and appends its payload to `buf`;
    /// `Ok(0)` once the peer sent Close or the stream ended. After an error
    /// the WebSocket is broken (its close code is recorded): call
    /// [`finish`](WsByteReader::finish) after the writer's close.
    pub async fn read(&mut self, buf: &mut BytesMut) -> Result<usize, WsError> {
        let received =
            std::future::poll_fn(|cx| poll_received(&mut self.stream, &self.framing, cx)).await;
        match received {
            Received::Bytes(bytes) => {
                buf.extend_from_slice(&bytes);
                Ok(bytes.len())
            }
            // tungstenite queued our Close reply; the writer's close flushes it.
            Received::Closed | Received::Ended => Ok(0),
            Received::Failed(e) => {
                self.broken = true;
                let error = WsError::from(e);
                if let Some(code) = error.close_code() {
                    self.close.force(code);
                }
                Err(error)
            }
        }
    }

    /// Records the close code [`WsByteWriter::close`] sends, unless one is set
    /// already (a parse error before a shutdown, say: the first reason wins).
    pub fn set_close_code(&mut self, code: CloseCode) {
        self.close.set(code);
    }

    /// After the writer's [`close`](WsByteWriter::close): waits at most
    /// `timeout` for the peer's side of the close handshake.
    ///
    /// On a sound WebSocket it reads (and drops) messages until the peer's
    /// Close arrives. On a broken one (a read failed) the framing is lost: it
    /// half-closes the socket and reads raw bytes until the peer closes too (or
    /// goes quiet), so that unread bytes (the rest of an oversized message) do
    /// not turn our close into a reset that could destroy the Close frame in
    /// flight.
    pub async fn finish(mut self, timeout: Duration) {
        if !self.broken {
            let drain = async { while let Some(Ok(_)) = self.stream.next().await {} };
            let _timed_out = tokio::time::timeout(timeout, drain).await;
            return;
        }
        let sink = self.sink.lock().ok().and_then(|mut slot| slot.take());
        let Some(Ok(mut ws)) = sink.map(|sink| self.stream.reunite(sink)) else {
            return;
        };
        let socket = ws.get_mut();
        let drain = async {
            // The socket is dropped next: a failed shutdown changes nothing.
            let _ignored = socket.shutdown().await;
            let mut scratch = [0u8; 4096];
            while let Ok(Ok(n)) = tokio::time::timeout(DRAIN_IDLE, socket.read(&mut scratch)).await
            {
                if n == 0 {
                    break;
                }
            }
        };
        let _timed_out = tokio::time::timeout(timeout, drain).await;
    }
}

impl<S> WsByteWriter<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Sends `bytes` (any number of encoded frames, or a heart-beat) as one
    /// message, text or binary by the mode and the peer's last message.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), WsError> {
        let Some(sink) = &mut self.sink else {
            return Err(WsError::Io(io::ErrorKind::NotConnected.into()));
        };
        let message = outgoing_message(bytes, self.mode, self.framing.sends_text());
        Ok(sink.send(message).await?)
    }

    /// The close code [`close`](WsByteWriter::close) would send now.
    pub fn close_code(&self) -> CloseCode {
        self.close.get()
    }

    /// Sends Close with [`close_code`](WsByteWriter::close_code) and `reason`
    /// (after the peer's Close this only flushes our queued reply); later
    /// writes fail. A failure to send is not reported: the connection is over
    /// either way.
    pub async fn close(&mut self, reason: &str) {
        let code = self.close.get();
        let Some(mut sink) = self.sink.take() else {
            return;
        };
        if let Err(e) = send_close(&mut sink, close_message(code, reason)).await {
            tracing::debug!(error = %e, "WebSocket Close not sent");
        }
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(sink);
        }
    }
}

/// Written bytes are sent as one message once this many are pending, even
/// before a flush (a frame larger than this spans several messages).
const MAX_PENDING: usize = 1 << 20;

/// A WebSocket as an `AsyncRead + AsyncWrite` byte stream of STOMP, for a
/// client that runs its own codec over it (`stompkit_tokio::Client`, a load
/// generator).
///
/// What was written since the last flush leaves as **one** message on
/// `flush`, so a writer that flushes after whole frames (as `FramedWrite`
/// does) never splits a frame across messages (more than 1 MiB pending is sent
/// before the flush). Reading yields the payloads of data messages back to
/// back; the peer's Close reads as the end of the stream; control messages are
/// answered by tungstenite. Shutting down sends a Close.
#[derive(Debug)]
pub struct WsByteStream<S> {
    ws: WebSocketStream<S>,
    mode: OutgoingMode,
    framing: PeerFraming,
    /// The rest of the last data message received.
    incoming: Bytes,
    /// Bytes written since the last message was sent.
    pending: BytesMut,
    /// The peer closed (or the stream ended): reads return EOF.
    eof: bool,
}

impl<S> WsByteStream<S> {
    /// Wraps an open WebSocket; outgoing messages are framed by `mode`.
    pub fn new(ws: WebSocketStream<S>, mode: OutgoingMode) -> WsByteStream<S> {
        WsByteStream::with_framing(ws, mode, PeerFraming::new())
    }

    /// Wraps an open WebSocket whose peer's framing is tracked by `framing`.
    pub(crate) fn with_framing(
        ws: WebSocketStream<S>,
        mode: OutgoingMode,
        framing: PeerFraming,
    ) -> WsByteStream<S> {
        WsByteStream {
            ws,
            mode,
            framing,
            incoming: Bytes::new(),
            pending: BytesMut::new(),
            eof: false,
        }
    }
}

/// A WebSocket error as an I/O error (the transport's own I/O errors as they are).
fn io_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket is closed")
        }
        e => io::Error::other(e),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsByteStream<S> {
    /// Sends everything pending as one message and flushes the socket.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io_error)?;
            let bytes = self.pending.split().freeze();
            let message = outgoing_message(bytes, self.mode, self.framing.sends_text());
            Pin::new(&mut self.ws)
                .start_send(message)
                .map_err(io_error)?;
        }
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsByteStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.incoming.is_empty() && !this.eof {
            match ready!(poll_received(&mut this.ws, &this.framing, cx)) {
                Received::Bytes(bytes) => this.incoming = bytes,
                Received::Closed | Received::Ended => this.eof = true,
                Received::Failed(e) => return Poll::Ready(Err(io_error(e))),
            }
        }
        let n = this.incoming.len().min(buf.remaining());
        buf.put_slice(&this.incoming[..n]);
        this.incoming.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsByteStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.len() >= MAX_PENDING {
            ready!(this.poll_send_pending(cx))?;
        }
        this.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send_pending(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_pending(cx))?;
        match ready!(Pin::new(&mut this.ws).poll_close(cx)) {
            Ok(())
            | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(io_error(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::Role;

    async fn pair(
        mode: OutgoingMode,
    ) -> (
        WsByteStream<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let client = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
        let server = WebSocketStream::from_raw_socket(b, Role::Server, None).await;
        (WsByteStream::new(client, mode), server)
    }

    #[tokio::test]
    async fn one_message_per_flush_and_payloads_read_back_to_back() {
        let (mut bytes, mut server) = pair(OutgoingMode::Text).await;
        bytes
            .write_all(b"SEND\ndestination:/q/a\n\nA\0")
            .await
            .unwrap();
        bytes
            .write_all(b"SEND\ndestination:/q/a\n\nB\0")
            .await
            .unwrap();
        bytes.flush().await.unwrap();
        let message = server.next().await.unwrap().unwrap();
        assert_eq!(
            message,
            Message::text("SEND\ndestination:/q/a\n\nA\0SEND\ndestination:/q/a\n\nB\0")
        );
        // Non-UTF-8 goes as binary, never as invalid text.
        bytes.write_all(b"SEND\n\n\xff\0").await.unwrap();
        bytes.flush().await.unwrap();
        assert!(server.next().await.unwrap().unwrap().is_binary());

        server.send(Message::text("MESSAGE\n\nhel")).await.unwrap();
        server
            .send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        server.send(Message::binary(&b"lo\0"[..])).await.unwrap();
        let mut got = vec![0u8; 16];
        let mut read = 0;
        while read < 15 {
            read += bytes.read(&mut got[read..]).await.unwrap();
        }
        assert_eq!(&got[..read], b"MESSAGE\n\nhello\0");
        server.close(None).await.unwrap();
        assert_eq!(bytes.read(&mut got).await.unwrap(), 0, "Close reads as EOF");
    }

    #[tokio::test]
    async fn binary_mode_sends_binary_messages() {
        let (mut bytes, mut server) = pair(OutgoingMode::Binary).await;
        bytes.write_all(b"SEND\n\nA\0").await.unwrap();
        bytes.flush().await.unwrap();
        assert!(server.next().await.unwrap().unwrap().is_binary());
    }

    #[tokio::test]
    async fn halves_append_payloads_and_close_with_the_first_code_set() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let server = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        let (mut reader, mut writer) = byte_halves(server, OutgoingMode::Auto);
        client
            .send(Message::binary(&b"SEND\n\n"[..]))
            .await
            .unwrap();
        client.send(Message::text("")).await.unwrap();
        client.send(Message::text("A\0")).await.unwrap();
        let mut buf = BytesMut::new();
        assert_eq!(reader.read(&mut buf).await.unwrap(), 6);
        assert_eq!(
            reader.read(&mut buf).await.unwrap(),
            2,
            "empty messages are skipped"
        );
        assert_eq!(&buf[..], b"SEND\n\nA\0");
        // The peer's last message was text: Auto answers in text.
        writer
            .write(Bytes::from_static(b"MESSAGE\n\nA\0"))
            .await
            .unwrap();
        assert!(client.next().await.unwrap().unwrap().is_text());
        assert_eq!(writer.close_code(), CloseCode::Normal);
        reader.set_close_code(CloseCode::Policy);
        reader.set_close_code(CloseCode::Away);
        writer.close("bye").await;
        assert!(writer.write(Bytes::from_static(b"\n")).await.is_err());
        let Message::Close(Some(frame)) = client.next().await.unwrap().unwrap() else {
            panic!("expected a Close with a code");
        };
        assert_eq!(
            (frame.code, frame.reason.as_str()),
            (CloseCode::Policy, "bye")
        );
        drop(client);
        reader.finish(Duration::from_secs(1)).await;
    }
}
