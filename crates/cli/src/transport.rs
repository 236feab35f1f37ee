//! Byte streams to a broker for every `--url` scheme: TCP, TLS, and STOMP over
//! WebSocket seen as a byte stream.
//!
//! Owns opening a connection ([`open`]) and the stream types the commands run
//! over: [`Conn`] (and its halves [`ReadHalf`] / [`WriteHalf`]) and
//! [`WsBytes`], which carries STOMP bytes in WebSocket messages. Plain TCP stays
//! a bare `TcpStream` (split without a lock) so the load generator's hot path is
//! the same as before; TLS and WebSocket streams are boxed.
//!
//! [`WsBytes`] sends what was written since the last flush as **one** message on
//! `flush`, so a writer that flushes after whole frames (as `FramedWrite` and the
//! bench do) never splits a frame across messages; reading yields the payloads
//! of data messages back to back (control messages are answered by tungstenite).
//! It does not speak STOMP.

use crate::target::Target;
#[cfg(feature = "tls")]
use anyhow::bail;
use anyhow::{Context as _, Result};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Sink, Stream};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use stompkit_tokio::Transport;
use stompkit_ws::tokio_tungstenite::WebSocketStream;
use stompkit_ws::tokio_tungstenite::tungstenite;
use stompkit_ws::{ClientOptions, Incoming, OutgoingMode, incoming, outgoing_message};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
#[cfg(feature = "tls")]
use tokio_rustls::TlsConnector;
#[cfg(feature = "tls")]
use tokio_rustls::rustls::pki_types::ServerName;

/// The TLS client settings for `stomp+ssl://` and `wss://` (with the `tls`
/// feature; without it a type with no values: there is never one).
pub type TlsConfig = stompkit_tokio::TlsClientConfig;

/// A connection to a broker, before STOMP: plain TCP, or any other byte stream
/// (TLS, WebSocket).
pub enum Conn {
    /// `stomp://`
    Tcp(TcpStream),
    /// `stomp+ssl://`, `ws://`, `wss://`
    Boxed(Box<dyn Transport>),
}

/// Largest WebSocket message accepted from a broker (about; see `open`).
const MAX_WS_MESSAGE: usize = 256 * 1024 * 1024;

/// How WebSocket messages are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsFraming {
    /// Text messages when the bytes are UTF-8 (what browsers' STOMP clients send).
    Text,
    /// Always binary (no UTF-8 check: the load generator's choice).
    Binary,
}

/// The TLS client settings for `stomp+ssl://` and `wss://`: trusting the CA
/// certificates in `ca_file` (PEM) only, when given, else the system's root
/// certificates. `None` for a URL without TLS.
#[cfg(feature = "tls")]
pub fn tls_config(target: &Target, ca_file: Option<&Path>) -> Result<Option<TlsConfig>> {
    if !target.is_tls() {
        return Ok(None);
    }
    let config = match ca_file {
        Some(ca_file) => stompkit_tokio::tls::client_config_from_ca_file(ca_file)
            .with_context(|| format!("cannot use CA file {}", ca_file.display()))?,
        None => stompkit_tokio::tls::client_config_with_native_roots().context(
            "cannot load the system's root certificates (give the broker's CA with --ca-file)",
        )?,
    };
    Ok(Some(config))
}

/// Without the `tls` feature there are no TLS settings: a TLS URL is refused
/// (one line; [`Target::parse`] already refuses them), `--ca-file` is unused.
#[cfg(not(feature = "tls"))]
pub fn tls_config(target: &Target, _ca_file: Option<&Path>) -> Result<Option<TlsConfig>> {
    if target.is_tls() {
        return Err(crate::target::tls_unavailable(&target.url()));
    }
    Ok(None)
}

/// Opens a connection to `target` (TCP with `TCP_NODELAY`; TLS and WebSocket
/// handshakes included). `tls` is required for `stomp+ssl://` and `wss://`.
pub async fn open(target: &Target, tls: Option<&TlsConfig>, framing: WsFraming) -> Result<Conn> {
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    let describe = || format!("cannot connect to {}", target.url());
    match target {
        Target::Tcp { .. } => {
            let stream = TcpStream::connect(target.authority())
                .await
                .with_context(describe)?;
            stream.set_nodelay(true)?;
            Ok(Conn::Tcp(stream))
        }
        #[cfg(not(feature = "tls"))]
        Target::Tls { .. } => Err(crate::target::tls_unavailable(&target.url())),
        #[cfg(feature = "tls")]
        Target::Tls { host, .. } => {
            let Some(tls) = tls else {
                bail!("{} needs a TLS configuration", target.url());
            };
            let name = ServerName::try_from(host.clone())
                .with_context(|| format!("{host:?} is not a valid TLS server name"))?;
            let tcp = TcpStream::connect(target.authority())
                .await
                .with_context(describe)?;
            tcp.set_nodelay(true)?;
            let stream = TlsConnector::from(tls.clone())
                .connect(name, tcp)
                .await
                .with_context(|| format!("TLS handshake with {} failed", target.url()))?;
            Ok(Conn::Boxed(Box::new(stream)))
        }
        Target::WebSocket { url, .. } => {
            let mut options = ClientOptions::default();
            // A broker may coalesce many frames into one message (stompkit's
            // does, up to its outbox bound): accept messages far larger than
            // one frame.
            options.parser.max_body = MAX_WS_MESSAGE;
            #[cfg(feature = "tls")]
            if let Some(tls) = tls {
                options = options.tls(tls.clone());
            }
            let ws = stompkit_ws::connect(url, options)
                .await
                .with_context(describe)?;
            Ok(Conn::Boxed(Box::new(WsBytes::new(
                ws.into_inner(),
                framing,
            ))))
        }
    }
}

impl Conn {
    /// Splits into halves usable from different tasks (TCP without a lock).
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Conn::Tcp(stream) => {
                let (r, w) = stream.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            Conn::Boxed(stream) => {
                let (r, w) = tokio::io::split(stream);
                (ReadHalf::Boxed(r), WriteHalf::Boxed(w))
            }
        }
    }

    /// The stream as one boxed transport (for the general client).
    pub fn into_transport(self) -> Box<dyn Transport> {
        match self {
            Conn::Tcp(stream) => Box::new(stream),
            Conn::Boxed(stream) => stream,
        }
    }
}

/// The reading half of a [`Conn`].
pub enum ReadHalf {
    /// TCP.
    Tcp(OwnedReadHalf),
    /// Anything else.
    Boxed(tokio::io::ReadHalf<Box<dyn Transport>>),
}

/// The writing half of a [`Conn`]. Flush after a batch: on WebSocket that is
/// what sends it.
pub enum WriteHalf {
    /// TCP.
    Tcp(OwnedWriteHalf),
    /// Anything else.
    Boxed(tokio::io::WriteHalf<Box<dyn Transport>>),
}

/// Delegates the `AsyncRead`/`AsyncWrite` methods to whichever variant is inside.
macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self.get_mut() {
            Self::Tcp($s) => {
                let $s = Pin::new($s);
                $call
            }
            Self::Boxed($s) => {
                let $s = Pin::new($s);
                $call
            }
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// Written bytes are sent as one message once this many are pending, even
/// before a flush (a frame larger than this spans several messages).
const MAX_PENDING: usize = 1 << 20;

/// A WebSocket as a byte stream of STOMP (see the module docs).
pub struct WsBytes<S> {
    ws: WebSocketStream<S>,
    framing: WsFraming,
    /// The rest of the last data message received.
    incoming: Bytes,
    /// Bytes written since the last message was sent.
    pending: BytesMut,
    /// The peer closed (or the stream ended): reads return EOF.
    eof: bool,
}

impl<S> WsBytes<S> {
    /// Wraps an open WebSocket.
    pub fn new(ws: WebSocketStream<S>, framing: WsFraming) -> WsBytes<S> {
        WsBytes {
            ws,
            framing,
            incoming: Bytes::new(),
            pending: BytesMut::new(),
            eof: false,
        }
    }
}

fn ws_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket is closed")
        }
        e => io::Error::other(e),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsBytes<S> {
    /// Sends everything pending as one message and flushes the socket.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_error)?;
            let bytes = self.pending.split().freeze();
            let message = match self.framing {
                WsFraming::Text => outgoing_message(bytes, OutgoingMode::Text, true),
                WsFraming::Binary => outgoing_message(bytes, OutgoingMode::Binary, false),
            };
            Pin::new(&mut self.ws)
                .start_send(message)
                .map_err(ws_error)?;
        }
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_error)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsBytes<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.incoming.is_empty() && !this.eof {
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                None => this.eof = true,
                Some(Err(e)) => match e {
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                        this.eof = true
                    }
                    e => return Poll::Ready(Err(ws_error(e))),
                },
                Some(Ok(message)) => match incoming(message) {
                    Incoming::Data { bytes, .. } => this.incoming = bytes,
                    Incoming::Control => {}
                    Incoming::Close(_) => this.eof = true,
                },
            }
        }
        let n = this.incoming.len().min(buf.remaining());
        buf.put_slice(&this.incoming[..n]);
        this.incoming.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsBytes<S> {
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
            Err(e) => Poll::Ready(Err(ws_error(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use stompkit_ws::tokio_tungstenite::tungstenite::Message;
    use stompkit_ws::tokio_tungstenite::tungstenite::protocol::Role;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (
        WsBytes<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let client = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
        let server = WebSocketStream::from_raw_socket(b, Role::Server, None).await;
        (WsBytes::new(client, WsFraming::Text), server)
    }

    #[tokio::test]
    async fn one_message_per_flush_and_payloads_read_back_to_back() {
        let (mut bytes, mut server) = pair().await;
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
}
