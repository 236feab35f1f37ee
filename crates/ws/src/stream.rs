//! A WebSocket as a stream and sink of STOMP frames.
//!
//! Owns [`StompWebSocket`] (and its halves [`StompReader`] / [`StompWriter`]):
//! one `stompkit_wire::Parser` per connection fed with every data message, so
//! frames may be coalesced in one message or split over several; an `Encoder` for
//! outgoing frames, wrapped into text or binary messages by
//! [`outgoing_message`](crate::outgoing_message); the close handshake. Turning
//! messages into bytes is the byte-stream adapter's (`byte_stream`), shared
//! with [`WsByteStream`](crate::WsByteStream) and the broker.

use crate::byte_stream::{Received, WsByteStream, poll_received, send_close};
use crate::config::{OutgoingMode, WsServerConfig};
use crate::error::WsError;
use crate::handshake::server_accept;
use crate::message::{PeerFraming, close_message, outgoing_message};
use crate::subprotocol::{Negotiated, SubProtocol};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use stompkit_frame::{Frame, Version};
use stompkit_wire::{Encoder, Event, Parser, ParserConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

/// How long [`StompWebSocket::close`] waits for the peer's Close reply.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The parsing half's state: one parser and its buffer.
#[derive(Debug)]
struct ReadState {
    parser: Parser,
    /// Bytes received and not yet parsed; dropped whenever empty so an idle
    /// connection holds no buffer.
    buf: BytesMut,
    framing: PeerFraming,
    done: bool,
}

impl ReadState {
    fn poll_event<T>(
        &mut self,
        ws: &mut T,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Event, WsError>>>
    where
        T: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
    {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match self.parser.parse(&mut self.buf) {
                Ok(Some(event)) => {
                    if self.buf.is_empty() {
                        self.buf = BytesMut::new();
                    }
                    return Poll::Ready(Some(Ok(event)));
                }
                Ok(None) => {}
                Err(e) => {
                    self.done = true;
                    self.buf = BytesMut::new();
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            match ready!(poll_received(ws, &self.framing, cx)) {
                Received::Bytes(bytes) => self.buf.extend_from_slice(&bytes),
                // Polling on after the peer's Close writes our queued reply;
                // the stream then ends.
                Received::Closed => {}
                Received::Ended => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Received::Failed(e) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }
}

/// The encoding half's state.
#[derive(Debug)]
struct WriteState {
    encoder: Encoder,
    mode: OutgoingMode,
    framing: PeerFraming,
}

impl WriteState {
    fn frames<'a>(&self, frames: impl IntoIterator<Item = &'a Frame>) -> Result<Message, WsError> {
        let mut buf = BytesMut::new();
        for frame in frames {
            self.encoder.encode(frame, &mut buf)?;
        }
        Ok(self.bytes(buf.freeze()))
    }

    fn bytes(&self, bytes: Bytes) -> Message {
        outgoing_message(bytes, self.mode, self.framing.sends_text())
    }

    fn heartbeat(&self) -> Message {
        self.bytes(Bytes::from_static(b"\n"))
    }
}

fn states(parser: ParserConfig, mode: OutgoingMode) -> (ReadState, WriteState) {
    let framing = PeerFraming::new();
    (
        ReadState {
            parser: Parser::with_config(parser),
            buf: BytesMut::new(),
            framing: framing.clone(),
            done: false,
        },
        WriteState {
            encoder: Encoder::new(None),
            mode,
            framing,
        },
    )
}

/// A WebSocket carrying STOMP: a [`Stream`] of [`Event`]s (frames and
/// heart-beats) and a [`Sink`] of [`Frame`]s, with the same parser and limits as
/// TCP.
///
/// Reading answers pings and the peer's Close by itself; keep polling the stream
/// until it ends after a Close. After a [`WsError`] the stream ends; a server
/// sends an ERROR frame, then [`fail`](StompWebSocket::fail) (or
/// [`close`](StompWebSocket::close)) with the error's close code.
///
/// Whoever reads CONNECT/CONNECTED calls [`set_version`](StompWebSocket::set_version).
/// To read and write from different tasks, [`split`](StompWebSocket::split).
#[derive(Debug)]
pub struct StompWebSocket<S> {
    ws: WebSocketStream<S>,
    read: ReadState,
    write: WriteState,
    negotiated: Option<Negotiated>,
}

impl<S> StompWebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps an open WebSocket (client or server side). `negotiated` is what the
    /// handshake settled, when known.
    pub fn new(
        ws: WebSocketStream<S>,
        parser: ParserConfig,
        mode: OutgoingMode,
        negotiated: Option<Negotiated>,
    ) -> StompWebSocket<S> {
        let (read, write) = states(parser, mode);
        StompWebSocket {
            ws,
            read,
            write,
            negotiated,
        }
    }

    /// Server side: [`server_accept`] on `stream`, then wraps the WebSocket with
    /// `config`'s parser limits and outgoing mode.
    pub async fn accept(stream: S, config: &WsServerConfig) -> Result<StompWebSocket<S>, WsError> {
        let (ws, negotiated) = server_accept(stream, config).await?;
        Ok(StompWebSocket::new(
            ws,
            config.parser.clone(),
            config.outgoing,
            Some(negotiated),
        ))
    }

    /// What the handshake settled (server side: path, Origin, sub-protocol;
    /// client side: the sub-protocol the server chose).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The sub-protocol in use, if any.
    pub fn subprotocol(&self) -> Option<SubProtocol> {
        self.negotiated.as_ref().and_then(|n| n.subprotocol)
    }

    /// The STOMP version the parser and encoder use (`None` before CONNECT/CONNECTED).
    pub fn version(&self) -> Option<Version> {
        self.read.parser.version()
    }

    /// Tells the parser and the encoder the negotiated version.
    pub fn set_version(&mut self, version: Version) {
        self.read.parser.set_version(version);
        self.write.encoder.set_version(version);
    }

    /// Whether a frame has started arriving and not finished (for a
    /// frame-completion timeout).
    pub fn in_frame(&self) -> bool {
        self.read.parser.in_frame()
    }

    /// Sends one frame as one message.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), WsError> {
        let message = self.write.frames([frame])?;
        Ok(self.ws.send(message).await?)
    }

    /// Sends several frames coalesced into one message.
    pub async fn send_batch(&mut self, frames: &[Frame]) -> Result<(), WsError> {
        let message = self.write.frames(frames)?;
        Ok(self.ws.send(message).await?)
    }

    /// Sends already-encoded STOMP bytes (frames for the negotiated version, or
    /// heart-beat EOLs) as one message.
    pub async fn send_bytes(&mut self, bytes: Bytes) -> Result<(), WsError> {
        let message = self.write.bytes(bytes);
        Ok(self.ws.send(message).await?)
    }

    /// Sends a heart-beat: a message holding one LF.
    pub async fn send_heartbeat(&mut self) -> Result<(), WsError> {
        let message = self.write.heartbeat();
        Ok(self.ws.send(message).await?)
    }

    /// The close handshake: sends Close with `code` and `reason`, then reads
    /// (discarding) until the peer's Close arrives or [`CLOSE_TIMEOUT`] passes.
    /// Use [`CloseCode::Normal`] (1000) for an orderly end.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), WsError> {
        if !send_close(&mut self.ws, close_message(code, reason)).await? {
            return Ok(());
        }
        let drain = async { while let Some(Ok(_)) = self.ws.next().await {} };
        let _timed_out = tokio::time::timeout(CLOSE_TIMEOUT, drain).await;
        self.read.done = true;
        Ok(())
    }

    /// Ends the connection after `error`: sends Close with
    /// [`WsError::close_code`] (1009 too big, 1007 text not UTF-8, 1002 protocol
    /// error) and the error's text, when a close frame can be sent. It does not
    /// wait for the peer's reply (what follows a bad message is not worth
    /// reading): drop the connection afterwards.
    pub async fn fail(&mut self, error: &WsError) -> Result<(), WsError> {
        self.read.done = true;
        let Some(code) = error.close_code() else {
            return Ok(());
        };
        send_close(&mut self.ws, close_message(code, &error.to_string())).await?;
        Ok(())
    }

    /// The WebSocket.
    pub fn get_ref(&self) -> &WebSocketStream<S> {
        &self.ws
    }

    /// Gives back the WebSocket (bytes already received but not parsed are lost).
    pub fn into_inner(self) -> WebSocketStream<S> {
        self.ws
    }

    /// The WebSocket as a byte stream of STOMP ([`WsByteStream`]), for a codec
    /// of the caller's own, keeping the outgoing mode (bytes already received
    /// but not parsed are lost).
    pub fn into_byte_stream(self) -> WsByteStream<S> {
        WsByteStream::with_framing(self.ws, self.write.mode, self.write.framing)
    }

    /// Splits into a writer and a reader usable from different tasks. Each half
    /// keeps its own version: call `set_version` on both.
    pub fn split(self) -> (StompWriter<S>, StompReader<S>) {
        let (sink, stream) = self.ws.split();
        (
            StompWriter {
                ws: sink,
                write: self.write,
            },
            StompReader {
                ws: stream,
                read: self.read,
                negotiated: self.negotiated,
            },
        )
    }
}

impl<S> Stream for StompWebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Event, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.read.poll_event(&mut this.ws, cx)
    }
}

impl<S> Sink<Frame> for StompWebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(ready!(self.ws.poll_ready_unpin(cx)).map_err(Into::into))
    }

    fn start_send(mut self: Pin<&mut Self>, frame: Frame) -> Result<(), WsError> {
        let message = self.write.frames([&frame])?;
        Ok(self.ws.start_send_unpin(message)?)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(ready!(self.ws.poll_flush_unpin(cx)).map_err(Into::into))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(ready!(self.ws.poll_close_unpin(cx)).map_err(Into::into))
    }
}

/// The reading half of a split [`StompWebSocket`]: a [`Stream`] of [`Event`]s.
/// Polling it also writes the replies to pings and to the peer's Close.
#[derive(Debug)]
pub struct StompReader<S> {
    ws: SplitStream<WebSocketStream<S>>,
    read: ReadState,
    negotiated: Option<Negotiated>,
}

impl<S> StompReader<S> {
    /// Tells the parser the negotiated version.
    pub fn set_version(&mut self, version: Version) {
        self.read.parser.set_version(version);
    }

    /// The parser's version.
    pub fn version(&self) -> Option<Version> {
        self.read.parser.version()
    }

    /// Whether a frame has started arriving and not finished.
    pub fn in_frame(&self) -> bool {
        self.read.parser.in_frame()
    }

    /// What the handshake settled.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }
}

impl<S> Stream for StompReader<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Event, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.read.poll_event(&mut this.ws, cx)
    }
}

/// The writing half of a split [`StompWebSocket`]: a [`Sink`] of [`Frame`]s
/// and heart-beats.
#[derive(Debug)]
pub struct StompWriter<S> {
    ws: SplitSink<WebSocketStream<S>, Message>,
    write: WriteState,
}

impl<S> StompWriter<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Tells the encoder the negotiated version.
    pub fn set_version(&mut self, version: Version) {
        self.write.encoder.set_version(version);
    }

    /// Sends one frame as one message.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), WsError> {
        let message = self.write.frames([frame])?;
        Ok(self.ws.send(message).await?)
    }

    /// Sends several frames coalesced into one message.
    pub async fn send_batch(&mut self, frames: &[Frame]) -> Result<(), WsError> {
        let message = self.write.frames(frames)?;
        Ok(self.ws.send(message).await?)
    }

    /// Sends already-encoded STOMP bytes as one message.
    pub async fn send_bytes(&mut self, bytes: Bytes) -> Result<(), WsError> {
        let message = self.write.bytes(bytes);
        Ok(self.ws.send(message).await?)
    }

    /// Sends a heart-beat (one LF).
    pub async fn send_heartbeat(&mut self) -> Result<(), WsError> {
        let message = self.write.heartbeat();
        Ok(self.ws.send(message).await?)
    }

    /// Sends Close with `code` and `reason`. The reader half sees the peer's
    /// reply and then ends.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), WsError> {
        send_close(&mut self.ws, close_message(code, reason)).await?;
        Ok(())
    }
}

impl<S> Sink<Frame> for StompWriter<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(ready!(self.ws.poll_ready_unpin(cx)).map_err(Into::into))
    }

    fn start_send(mut self: Pin<&mut Self>, frame: Frame) -> Result<(), WsError> {
        let message = self.write.frames([&frame])?;
        Ok(self.ws.start_send_unpin(message)?)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(ready!(self.ws.poll_flush_unpin(cx)).map_err(Into::into))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(ready!(self.ws.poll_close_unpin(cx)).map_err(Into::into))
    }
}
