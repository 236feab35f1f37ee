//! Making connections: [`Connector`] and `stomp://` / `stomp+ssl://` addresses.
//!
//! Owns how a byte stream to the server is obtained, once or again on
//! reconnect: plain TCP, TLS (through `crate::tls`, with the `tls` feature) or
//! any closure returning an `AsyncRead + AsyncWrite` stream. It does not speak
//! STOMP, and it does not read URLs itself: [`StompUrl`] does.

use crate::client::error::ClientError;
use crate::client::url::StompUrl;
use futures_util::future::BoxFuture;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// The TLS client settings [`Connector::from_url`] and
/// [`Client::connect_url`](crate::Client::connect_url) take for `stomp+ssl://`:
/// with the `tls` feature an `Arc<rustls::ClientConfig>`; without it a type with
/// no values, so only `None` can be passed (and TLS addresses are refused with
/// [`ClientError::TlsUnavailable`]).
#[cfg(feature = "tls")]
pub type TlsClientConfig = Arc<rustls::ClientConfig>;

/// The TLS client settings [`Connector::from_url`] and
/// [`Client::connect_url`](crate::Client::connect_url) take for `stomp+ssl://`:
/// with the `tls` feature an `Arc<rustls::ClientConfig>`; without it (this
/// build) a type with no values, so only `None` can be passed (and TLS addresses
/// are refused with [`ClientError::TlsUnavailable`]).
#[cfg(not(feature = "tls"))]
#[derive(Clone, Debug)]
pub enum TlsClientConfig {}

/// A byte stream a client can run over: TCP, TLS, an in-memory duplex, ...
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

type ConnectFn =
    dyn Fn() -> BoxFuture<'static, Result<Box<dyn Transport>, ClientError>> + Send + Sync;

/// Makes a new connection to the server each time it is asked (for the first
/// connection and for reconnects).
///
/// ```
/// use stompkit_tokio::Connector;
/// let tcp = Connector::tcp("127.0.0.1:61613");
/// let from_url = Connector::from_url("stomp://127.0.0.1:61613", None)?;
/// // any stream: here an in-memory pipe
/// let custom = Connector::new(|| async {
///     let (client, _server) = tokio::io::duplex(1024);
///     Ok::<_, std::io::Error>(client)
/// });
/// # let _ = (tcp, from_url, custom);
/// # Ok::<(), stompkit_tokio::ClientError>(())
/// ```
#[derive(Clone)]
pub struct Connector {
    connect: Arc<ConnectFn>,
    description: Arc<str>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Connector").field(&self.description).finish()
    }
}

impl Connector {
    /// A connector from a closure returning a future of a stream.
    pub fn new<F, Fut, S>(connect: F) -> Connector
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
        S: Transport,
    {
        Connector {
            connect: Arc::new(move || {
                let fut = connect();
                Box::pin(async move {
                    let stream = fut.await?;
                    Ok(Box::new(stream) as Box<dyn Transport>)
                })
            }),
            description: Arc::from("custom"),
        }
    }

    /// A connector whose closure may fail with any [`ClientError`] (TLS, ...).
    pub(crate) fn from_fn<F, Fut>(description: String, connect: F) -> Connector
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Box<dyn Transport>, ClientError>> + Send + 'static,
    {
        Connector {
            connect: Arc::new(move || Box::pin(connect())),
            description: Arc::from(description),
        }
    }

    /// Plain TCP to `addr` (`host:port`), with `TCP_NODELAY` set.
    pub fn tcp(addr: impl Into<String>) -> Connector {
        let addr: Arc<str> = Arc::from(addr.into());
        let description = format!("tcp {addr}");
        Connector::from_fn(description, move || {
            let addr = addr.clone();
            async move {
                let stream = tokio::net::TcpStream::connect(&*addr).await?;
                stream.set_nodelay(true)?;
                Ok(Box::new(stream) as Box<dyn Transport>)
            }
        })
    }

    /// From an address: `stomp://host:port` or `tcp://host:port` (TCP), or
    /// `stomp+ssl://host:port` / `stomp+tls://host:port` (TLS; the server name
    /// checked is `host`). TLS uses `tls` when given, else a config trusting the
    /// system's root certificates (`crate::tls::client_config_with_native_roots`).
    /// A build without the `tls` feature refuses TLS addresses with
    /// [`ClientError::TlsUnavailable`].
    pub fn from_url(url: &str, tls: Option<TlsClientConfig>) -> Result<Connector, ClientError> {
        let address = Address::parse(url)?;
        if !address.tls {
            return Ok(Connector::tcp(address.authority()));
        }
        #[cfg(feature = "tls")]
        {
            let tls = match tls {
                Some(tls) => tls,
                None => crate::tls::client_config_with_native_roots()?,
            };
            Ok(crate::tls::connector(
                address.authority(),
                &address.host,
                tls,
            ))
        }
        #[cfg(not(feature = "tls"))]
        {
            if let Some(never) = tls {
                match never {}
            }
            Err(ClientError::TlsUnavailable(url.to_string()))
        }
    }

    /// Opens one new stream to the server (what the client does on connect and
    /// on each reconnect); callers that speak STOMP themselves, such as the
    /// broker's relay mode, use it directly.
    pub async fn connect(&self) -> Result<Box<dyn Transport>, ClientError> {
        (self.connect)().await
    }
}

/// A parsed `stomp://` or `stomp+ssl://` address (what a [`Connector`] dials;
/// [`StompUrl`] reads every scheme, WebSocket too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// Host name or IP address (without brackets for IPv6).
    pub host: String,
    /// Port (default 61613, or 61614 for TLS).
    pub port: u16,
    /// Whether the scheme asks for TLS.
    pub tls: bool,
}

impl Address {
    /// Parses `scheme://host[:port][/]`.
    ///
    /// ```
    /// use stompkit_tokio::Address;
    /// let a = Address::parse("stomp+ssl://broker.example:61614")?;
    /// assert_eq!((a.host.as_str(), a.port, a.tls), ("broker.example", 61614, true));
    /// assert_eq!(Address::parse("stomp://[::1]")?.port, 61613);
    /// # Ok::<(), stompkit_tokio::ClientError>(())
    /// ```
    pub fn parse(url: &str) -> Result<Address, ClientError> {
        let bad = || ClientError::InvalidAddress(url.to_string());
        let parsed = StompUrl::parse_any(url).map_err(|_| bad())?;
        if parsed.is_websocket() {
            return Err(bad());
        }
        Ok(Address {
            host: parsed.host().to_string(),
            port: parsed.port(),
            tls: parsed.is_tls(),
        })
    }

    /// `host:port`, bracketing IPv6 addresses.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_reject() {
        let a = Address::parse("stomp://127.0.0.1:61613").unwrap();
        assert_eq!(a.authority(), "127.0.0.1:61613");
        assert!(!a.tls);
        let a = Address::parse("stomp+ssl://[::1]:9/").unwrap();
        assert_eq!(a.authority(), "[::1]:9");
        assert!(a.tls);
        for bad in [
            "http://x:1",
            "stomp://",
            "stomp://x:port",
            "x:1",
            "stomp://a/b:1",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_url_without_config_uses_the_system_roots() {
        let connector = Connector::from_url("stomp+ssl://localhost:1", None).unwrap();
        assert_eq!(format!("{connector:?}"), r#"Connector("tls localhost:1")"#);
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_urls_are_refused_without_the_tls_feature() {
        for url in [
            "stomp+ssl://host:61614",
            "stomp+tls://host",
            "ssl://host:1",
            "tls://host:1",
        ] {
            let e = Connector::from_url(url, None).unwrap_err();
            assert!(
                matches!(&e, ClientError::TlsUnavailable(u) if u == url),
                "{e:?}"
            );
            let text = e.to_string();
            assert_eq!(
                text,
                format!(
                    "{url}: this build of stompkit has no TLS support (built without the \"tls\" feature)"
                )
            );
        }
        assert!(Connector::from_url("stomp://host:61613", None).is_ok());
    }
}
