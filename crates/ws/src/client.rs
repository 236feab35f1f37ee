//! The client side: open a `ws://` or `wss://` URL as a [`StompWebSocket`].
//!
//! Owns dialing (TCP, optionally TLS with `tokio-rustls` and the caller's
//! `rustls::ClientConfig`), the opening handshake offering the STOMP
//! sub-protocols, and [`ClientTransport`], the stream type it yields. No root
//! certificates are bundled: `wss://` needs `ClientOptions::tls` (e.g.
//! `stompkit_tokio::tls::client_config_with_native_roots()` for the system's
//! roots). TLS needs the `tls` feature (on by default); without it `wss://` is
//! refused with [`WsError::TlsUnavailable`].

use crate::config::{DEFAULT_READ_BUFFER, OutgoingMode, websocket_config};
use crate::error::WsError;
use crate::stream::StompWebSocket;
use crate::subprotocol::{Negotiated, SubProtocol};
use std::io;
use std::pin::Pin;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::task::{Context, Poll};
use stompkit_wire::ParserConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
#[cfg(feature = "tls")]
use tokio_rustls::TlsConnector;
#[cfg(feature = "tls")]
use tokio_rustls::client::TlsStream;
#[cfg(feature = "tls")]
use tokio_rustls::rustls;
#[cfg(feature = "tls")]
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};

/// Settings of [`connect`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Sub-protocols offered, best first (default: all four). Empty offers none;
    /// note that a client offering some fails when the server picks none.
    pub subprotocols: Vec<SubProtocol>,
    /// An `Origin` header to send (browsers always send one; default none).
    pub origin: Option<String>,
    /// Parser limits for frames from the server.
    pub parser: ParserConfig,
    /// Text or binary outgoing messages (default [`OutgoingMode::Text`]: valid
    /// UTF-8 frames go as text, others as binary).
    pub outgoing: OutgoingMode,
    /// TLS settings for `wss://` URLs (rustls with the `ring` provider, e.g.
    /// from `stompkit_tokio::tls::client_config_from_ca_file`). Only with the
    /// `tls` feature.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            subprotocols: SubProtocol::ALL.to_vec(),
            origin: None,
            parser: ParserConfig::default(),
            outgoing: OutgoingMode::Text,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ClientOptions {
    /// Sets the TLS settings used for `wss://` (with the `tls` feature).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: Arc<rustls::ClientConfig>) -> ClientOptions {
        self.tls = Some(tls);
        self
    }

    /// Sets the sub-protocols offered.
    pub fn subprotocols(mut self, offered: impl IntoIterator<Item = SubProtocol>) -> ClientOptions {
        self.subprotocols = offered.into_iter().collect();
        self
    }

    /// Sets the `Origin` header.
    pub fn origin(mut self, origin: impl Into<String>) -> ClientOptions {
        self.origin = Some(origin.into());
        self
    }
}

/// The stream under a client [`StompWebSocket`]: plain TCP or TLS over TCP.
#[derive(Debug)]
pub enum ClientTransport {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://` (with the `tls` feature)
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ClientTransport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientTransport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            ClientTransport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientTransport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientTransport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            ClientTransport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientTransport::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            ClientTransport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientTransport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            ClientTransport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Host, port and whether TLS, from a `ws://` or `wss://` URL.
fn target(url: &str) -> Result<(String, u16, bool), WsError> {
    let bad = |reason| WsError::Url {
        url: url.to_string(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    let tls = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("ws") => false,
        Some(s) if s.eq_ignore_ascii_case("wss") => true,
        _ => return Err(bad("scheme is not ws or wss")),
    };
    if tls && !cfg!(feature = "tls") {
        return Err(WsError::TlsUnavailable {
            url: url.to_string(),
        });
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((host, port, tls))
}

/// Opens `url` (`ws://host[:port]/path` or `wss://…`, the latter with
/// `ClientOptions::tls`, in builds with the `tls` feature) and performs the handshake offering
/// [`ClientOptions::subprotocols`]. The result is ready for CONNECT; the chosen
/// sub-protocol is in [`StompWebSocket::subprotocol`].
pub async fn connect(
    url: &str,
    options: ClientOptions,
) -> Result<StompWebSocket<ClientTransport>, WsError> {
    let (host, port, tls) = target(url)?;
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    #[cfg(not(feature = "tls"))]
    let transport = {
        debug_assert!(!tls, "target() refuses wss:// without the tls feature");
        ClientTransport::Plain(tcp)
    };
    #[cfg(feature = "tls")]
    let transport = if tls {
        let Some(config) = options.tls.clone() else {
            return Err(WsError::Url {
                url: url.to_string(),
                reason: "wss:// needs a TLS config (ClientOptions::tls)",
            });
        };
        let name = ServerName::try_from(host.clone()).map_err(|_| WsError::Url {
            url: url.to_string(),
            reason: "host is not a valid TLS server name",
        })?;
        let stream = TlsConnector::from(config).connect(name, tcp).await?;
        ClientTransport::Tls(Box::new(stream))
    } else {
        ClientTransport::Plain(tcp)
    };
    connect_with_stream(url, transport, options).await
}

/// Performs the client handshake for `url` over a stream the caller opened
/// (TCP, TLS, a proxy tunnel...), offering [`ClientOptions::subprotocols`].
pub async fn connect_with_stream<S>(
    url: &str,
    stream: S,
    options: ClientOptions,
) -> Result<StompWebSocket<S>, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = url.into_client_request()?;
    if !options.subprotocols.is_empty() {
        let offer: Vec<&str> = options.subprotocols.iter().map(|p| p.as_str()).collect();
        let value = HeaderValue::from_str(&offer.join(", ")).map_err(|_| WsError::Url {
            url: url.to_string(),
            reason: "invalid sub-protocol list",
        })?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", value);
    }
    if let Some(origin) = &options.origin {
        let value = HeaderValue::from_str(origin).map_err(|_| WsError::Url {
            url: url.to_string(),
            reason: "invalid Origin",
        })?;
        request.headers_mut().insert("Origin", value);
    }
    let path = request.uri().path().to_string();
    let host = request
        .headers()
        .get("Host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let config = websocket_config(&options.parser, DEFAULT_READ_BUFFER);
    let (ws, response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    let subprotocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(SubProtocol::from_token);
    let negotiated = Negotiated {
        subprotocol,
        path,
        origin: options.origin.clone(),
        host,
    };
    Ok(StompWebSocket::new(
        ws,
        options.parser,
        options.outgoing,
        Some(negotiated),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            target("ws://127.0.0.1:9/ws").unwrap(),
            ("127.0.0.1".into(), 9, false)
        );
        #[cfg(feature = "tls")]
        assert_eq!(
            target("wss://h.example/stomp").unwrap(),
            ("h.example".into(), 443, true)
        );
        assert_eq!(target("ws://[::1]/ws").unwrap(), ("::1".into(), 80, false));
        assert!(matches!(target("http://h/ws"), Err(WsError::Url { .. })));
        assert!(matches!(
            target("stomp://h:61613"),
            Err(WsError::Url { .. })
        ));
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn wss_is_refused_without_the_tls_feature() {
        let e = target("wss://h.example:8443/ws").unwrap_err();
        assert!(matches!(&e, WsError::TlsUnavailable { url } if url == "wss://h.example:8443/ws"));
        assert_eq!(
            e.to_string(),
            "wss://h.example:8443/ws: this build of stompkit has no TLS support (built without the \"tls\" feature)"
        );
        assert_eq!(e.close_code(), None);
    }

    #[cfg(not(feature = "tls"))]
    #[tokio::test]
    async fn connect_refuses_wss_before_dialing() {
        // Port 1 on loopback: nothing is dialed, the URL is refused first.
        let e = connect("wss://127.0.0.1:1/ws", ClientOptions::default())
            .await
            .err()
            .unwrap();
        assert!(matches!(e, WsError::TlsUnavailable { .. }), "{e:?}");
    }
}
