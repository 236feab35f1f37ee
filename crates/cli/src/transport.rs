//! Byte streams to a broker for every `--url` scheme: TCP, TLS, and STOMP over
//! WebSocket seen as a byte stream.
//!
//! Owns opening a connection ([`open`], [`connector`]) and the stream types the
//! commands run over: [`Conn`] (and its halves [`ReadHalf`] / [`WriteHalf`]).
//! Plain TCP stays a bare `TcpStream` (split without a lock) so the load
//! generator's hot path is the same as before; TLS and WebSocket streams come
//! from `stompkit_ws::connector` (the same connector the client reconnects
//! with) and are boxed. A WebSocket sends what was written since the last
//! flush as **one** message on `flush` (so a writer that flushes after whole
//! frames, as `FramedWrite` and the bench do, never splits a frame across
//! messages) and reads the payloads of data messages back to back. It does
//! not speak STOMP.

use anyhow::{Context as _, Result};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use stompkit_tokio::{Connector, Scheme, StompUrl, Transport};
use stompkit_ws::{ClientOptions, OutgoingMode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

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

/// The TLS client settings for `stomp+ssl://` and `wss://`: trusting the CA
/// certificates in `ca_file` (PEM) only, when given, else the system's root
/// certificates. `None` for a URL without TLS.
#[cfg(feature = "tls")]
pub fn tls_config(target: &StompUrl, ca_file: Option<&Path>) -> Result<Option<TlsConfig>> {
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
/// (one line; [`StompUrl::parse`] already refuses them), `--ca-file` is unused.
#[cfg(not(feature = "tls"))]
pub fn tls_config(target: &StompUrl, _ca_file: Option<&Path>) -> Result<Option<TlsConfig>> {
    if target.is_tls() {
        return Err(stompkit_tokio::UrlError::TlsUnavailable(target.to_string()).into());
    }
    Ok(None)
}

/// The options of a WebSocket (and TLS) connection to `target`: outgoing
/// messages as `outgoing` says, TLS with `tls` (for `stomp+ssl://` and
/// `wss://`).
pub fn ws_options(tls: Option<&TlsConfig>, outgoing: OutgoingMode) -> ClientOptions {
    #[cfg(not(feature = "tls"))]
    let _no_tls_settings: Option<&TlsConfig> = tls;
    #[allow(unused_mut)]
    let mut options = ClientOptions {
        outgoing,
        ..ClientOptions::default()
    };
    #[cfg(feature = "tls")]
    if let Some(tls) = tls {
        options = options.tls(tls.clone());
    }
    options
}

/// The connector for `target`: stompkit-ws's, the one way to every scheme
/// (TCP, TLS, WebSocket over either), for the client and for [`open`].
pub fn connector(
    target: &StompUrl,
    tls: Option<&TlsConfig>,
    outgoing: OutgoingMode,
) -> Result<Connector> {
    stompkit_ws::connector(target.as_str(), ws_options(tls, outgoing))
        .with_context(|| format!("cannot connect to {target}"))
}

/// Opens a connection to `target` (TCP with `TCP_NODELAY`; TLS and WebSocket
/// handshakes included). `tls` is required for `stomp+ssl://` and `wss://`;
/// WebSocket messages are written as `outgoing` says. Plain TCP stays a bare
/// `TcpStream`; anything else is [`connector`]'s stream.
pub async fn open(
    target: &StompUrl,
    tls: Option<&TlsConfig>,
    outgoing: OutgoingMode,
) -> Result<Conn> {
    if target.scheme() == Scheme::Stomp {
        let stream = TcpStream::connect(target.authority())
            .await
            .with_context(|| format!("cannot connect to {target}"))?;
        stream.set_nodelay(true)?;
        return Ok(Conn::Tcp(stream));
    }
    let stream = connector(target, tls, outgoing)?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {target}"))?;
    Ok(Conn::Boxed(stream))
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
