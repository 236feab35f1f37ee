//! WebSocket as a transport of `stompkit-tokio`'s async client.
//!
//! Owns [`connector`] (a [`stompkit_tokio::Connector`] for a URL: `ws://` and
//! `wss://` through [`connect`](crate::connect) and
//! [`WsByteStream`](crate::WsByteStream), `stomp://` and `stomp+ssl://` through
//! `stompkit-tokio` itself) and [`connect_client`]. The client speaks STOMP over
//! the byte stream as over TCP: each flush of its writer leaves as one
//! WebSocket message, and the payloads of incoming messages are read back to
//! back, so reconnect, failover ([`stompkit_tokio::Connector::failover`] over
//! several of these) and everything else work the same on every transport.

use crate::client::{ClientOptions, connect};
use crate::error::WsError;
use stompkit_tokio::{Client, ClientConfig, ClientError, Connector, Scheme, StompUrl, UrlError};

/// The largest WebSocket message a [`connector`]'s stream accepts from a
/// server: a broker may put many frames in one message (stompkit-broker
/// coalesces what is ready to send), so the limit is far above one frame's.
/// Frames themselves are checked by the client's own parser
/// ([`ClientConfig::parser_config`]).
pub const MAX_CLIENT_MESSAGE: usize = 256 * 1024 * 1024;

/// A [`Connector`] for `url`, for [`Client::connect_with`] (and so for
/// reconnect and [`Connector::failover`]):
///
/// - `ws://host[:port]/path` and `wss://…`: a new WebSocket each time, opened
///   with `options` (sub-protocols, `Origin`, TLS for `wss://`: `options.tls`,
///   or the system's root certificates when it is `None`), as a byte stream.
///   `options.parser` only bounds WebSocket messages here, and is raised to
///   [`MAX_CLIENT_MESSAGE`].
/// - `stomp://` and `stomp+ssl://` (and their aliases): the same as
///   [`Connector::from_url`] with `options.tls`.
///
/// The connector is described by the URL (in its `Debug` output and in
/// [`ConnectionEvent`](stompkit_tokio::ConnectionEvent)s). A URL that does not
/// parse, or a TLS one in a build without the `tls` feature, is refused here,
/// before anything is dialed.
///
/// ```
/// use stompkit_ws::{ClientOptions, connector};
/// let ws = connector("ws://127.0.0.1:15674/ws", ClientOptions::default())?;
/// assert_eq!(ws.description(), "ws://127.0.0.1:15674/ws");
/// let tcp = connector("stomp://127.0.0.1:61613", ClientOptions::default())?;
/// assert_eq!(tcp.description(), "tcp 127.0.0.1:61613");
/// # Ok::<(), stompkit_tokio::ClientError>(())
/// ```
pub fn connector(url: &str, options: ClientOptions) -> Result<Connector, ClientError> {
    let parsed = StompUrl::parse(url).map_err(url_error)?;
    if parsed.is_websocket() && parsed.is_tls() && !cfg!(feature = "tls") {
        return Err(ClientError::TlsUnavailable(url.to_string()));
    }
    #[cfg(feature = "tls")]
    let tls = options.tls.clone();
    #[cfg(not(feature = "tls"))]
    let tls = None;
    match parsed.scheme() {
        Scheme::Stomp | Scheme::StompSsl => Connector::from_url(url, tls),
        Scheme::Ws | Scheme::Wss => Ok(websocket(parsed, options)),
    }
}

/// The WebSocket connector of [`connector`]: `wss://` without TLS settings
/// trusts the system's root certificates, loaded on each connect (so a
/// missing system store is a connect error).
fn websocket(url: StompUrl, mut options: ClientOptions) -> Connector {
    options.parser.max_body = options.parser.max_body.max(MAX_CLIENT_MESSAGE);
    let name = url.to_string();
    Connector::new(move || {
        let (url, options) = (url.clone(), options.clone());
        async move {
            #[cfg(feature = "tls")]
            let options = if url.is_tls() && options.tls.is_none() {
                let roots = stompkit_tokio::tls::client_config_with_native_roots()
                    .map_err(std::io::Error::other)?;
                options.tls(roots)
            } else {
                options
            };
            open(&url, options).await
        }
    })
    .named(name)
}

/// Opens the WebSocket and turns it into a byte stream; errors become I/O
/// errors (the transport's own as they are), which the client treats as a
/// lost connection (reconnect and failover go on).
async fn open(
    url: &StompUrl,
    options: ClientOptions,
) -> std::io::Result<crate::WsByteStream<crate::ClientTransport>> {
    match connect(url.as_str(), options).await {
        Ok(ws) => Ok(ws.into_byte_stream()),
        Err(WsError::Io(e)) => Err(e),
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// A URL refused by [`StompUrl::parse`] as the client reports it.
fn url_error(e: UrlError) -> ClientError {
    match e {
        UrlError::TlsUnavailable(url) => ClientError::TlsUnavailable(url),
        e => ClientError::InvalidAddress(e.to_string()),
    }
}

/// Opens a [`Client`] session to `url` (`ws://`, `wss://`, `stomp://` or
/// `stomp+ssl://`; see [`connector`]), reconnecting through the same
/// connector when `config` asks for it.
///
/// ```no_run
/// # async fn f() -> Result<(), stompkit_tokio::ClientError> {
/// use stompkit_tokio::{AckMode, ClientConfig, Reconnect};
/// use stompkit_ws::ClientOptions;
/// let config = ClientConfig::new("localhost").reconnect(Reconnect::default());
/// let client = stompkit_ws::connect_client("ws://127.0.0.1:61613/ws", config, ClientOptions::default()).await?;
/// let _chat = client.subscribe("/topic/chat", AckMode::Auto).await?;
/// # Ok(()) }
/// ```
pub async fn connect_client(
    url: &str,
    config: ClientConfig,
    options: ClientOptions,
) -> Result<Client, ClientError> {
    Client::connect_with(connector(url, options)?, config).await
}
