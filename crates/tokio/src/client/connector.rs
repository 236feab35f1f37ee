//! Making connections: [`Connector`] and `stomp://` / `stomp+ssl://` addresses.
//!
//! Owns how a byte stream to the server is obtained, once or again on
//! reconnect: plain TCP, TLS (through `crate::tls`, with the `tls` feature),
//! any closure returning an `AsyncRead + AsyncWrite` stream (`stompkit-ws`
//! makes WebSocket ones), or several of those tried in rotation
//! ([`Connector::failover`]); and which server a stream went to. It does not
//! speak STOMP, and it does not read URLs itself: [`StompUrl`] does.

use crate::client::error::ClientError;
use crate::client::url::StompUrl;
use futures_util::future::BoxFuture;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A stream and the server it goes to.
pub(crate) type Opened = (Box<dyn Transport>, Arc<str>);

type ConnectFn =
    dyn Fn() -> BoxFuture<'static, Result<Box<dyn Transport>, ClientError>> + Send + Sync;

/// Makes a new connection to the server each time it is asked (for the first
/// connection and for reconnects), or to one of several servers
/// ([`failover`](Connector::failover)).
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
    dial: Dial,
    description: Arc<str>,
}

/// How a [`Connector`] gets its stream.
#[derive(Clone)]
enum Dial {
    /// One server.
    One(Arc<ConnectFn>),
    /// Several, in rotation.
    Failover(Arc<Failover>),
}

/// The servers of [`Connector::failover`] and where the next round starts.
struct Failover {
    servers: Vec<Connector>,
    next: AtomicUsize,
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
            dial: Dial::One(Arc::new(move || {
                let fut = connect();
                Box::pin(async move {
                    let stream = fut.await?;
                    Ok(Box::new(stream) as Box<dyn Transport>)
                })
            })),
            description: Arc::from("custom"),
        }
    }

    /// The same connector, described as `name` (in its `Debug` output and in
    /// [`ConnectionEvent`](crate::ConnectionEvent)s; e.g. the URL it dials).
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Connector {
        self.description = name.into();
        self
    }

    /// How this connector describes its server (`tcp host:port`, `tls
    /// host:port`, `custom`, the name given to [`named`](Connector::named)).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Several servers, for failover: each [`connect`](Connector::connect) tries
    /// them in turn and returns the first stream made (or the last error when
    /// none answers). A round starts with the server after the one the
    /// previous round connected to, so after a lost connection the client tries
    /// the next server first, and a server that accepts connections but fails
    /// the session does not hold up the others; the rotation wraps around, so a
    /// server that comes back is used again. With [`Reconnect`](crate::Reconnect),
    /// the backoff delay is waited between rounds, not between servers. An
    /// empty list fails every connect with [`ClientError::InvalidAddress`].
    ///
    /// ```
    /// use stompkit_tokio::Connector;
    /// let servers = Connector::failover(vec![
    ///     Connector::tcp("10.0.0.1:61613"),
    ///     Connector::from_url("stomp://10.0.0.2:61613", None)?,
    /// ]);
    /// assert_eq!(servers.description(), "failover [tcp 10.0.0.1:61613, tcp 10.0.0.2:61613]");
    /// # Ok::<(), stompkit_tokio::ClientError>(())
    /// ```
    pub fn failover(servers: Vec<Connector>) -> Connector {
        let names: Vec<&str> = servers.iter().map(Connector::description).collect();
        let description = Arc::from(format!("failover [{}]", names.join(", ")));
        Connector {
            dial: Dial::Failover(Arc::new(Failover {
                servers,
                next: AtomicUsize::new(0),
            })),
            description,
        }
    }

    /// A connector whose closure may fail with any [`ClientError`] (TLS, ...).
    pub(crate) fn from_fn<F, Fut>(description: String, connect: F) -> Connector
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Box<dyn Transport>, ClientError>> + Send + 'static,
    {
        Connector {
            dial: Dial::One(Arc::new(move || Box::pin(connect()))),
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
        Ok(self.open().await?.0)
    }

    /// Opens one new stream and says which server it goes to (the description
    /// of the connector that made it; for a failover, the server's).
    pub(crate) fn open(&self) -> BoxFuture<'static, Result<Opened, ClientError>> {
        match &self.dial {
            Dial::One(connect) => {
                let fut = connect();
                let server = self.description.clone();
                Box::pin(async move { Ok((fut.await?, server)) })
            }
            Dial::Failover(failover) => Box::pin(failover.clone().open()),
        }
    }
}

impl Failover {
    /// One round over the servers, from `next`.
    async fn open(self: Arc<Failover>) -> Result<Opened, ClientError> {
        let n = self.servers.len();
        let start = self.next.load(Ordering::Relaxed);
        let mut last = None;
        for i in 0..n {
            let at = (start + i) % n;
            match self.servers[at].open().await {
                Ok(opened) => {
                    self.next.store((at + 1) % n, Ordering::Relaxed);
                    return Ok(opened);
                }
                Err(e) => {
                    tracing::debug!(server = %self.servers[at].description, error = %e, "failover: server did not answer");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::InvalidAddress("failover with no server".into())))
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

    /// A connector answering with a pipe when `up`, refusing otherwise.
    fn server(name: &str, up: Arc<std::sync::atomic::AtomicBool>) -> Connector {
        Connector::new(move || {
            let up = up.load(Ordering::SeqCst);
            async move {
                if !up {
                    return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
                }
                Ok(tokio::io::duplex(64).0)
            }
        })
        .named(name)
    }

    #[tokio::test]
    async fn failover_rotates_and_skips_servers_that_are_down() {
        use std::sync::atomic::AtomicBool;
        let ups: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::new(AtomicBool::new(true))).collect();
        let servers = ["a", "b", "c"]
            .iter()
            .zip(&ups)
            .map(|(name, up)| server(name, up.clone()))
            .collect();
        let failover = Connector::failover(servers);
        let next = || async { failover.open().await.map(|(_, s)| s.to_string()) };
        assert_eq!(next().await.unwrap(), "a");
        // each round starts after the server used last
        assert_eq!(next().await.unwrap(), "b");
        ups[2].store(false, Ordering::SeqCst);
        assert_eq!(next().await.unwrap(), "a", "c is down");
        for up in &ups {
            up.store(false, Ordering::SeqCst);
        }
        let e = next().await.unwrap_err();
        assert!(e.is_connection_loss(), "{e:?}");
        ups[1].store(true, Ordering::SeqCst);
        assert_eq!(next().await.unwrap(), "b");
        let none = Connector::failover(Vec::new());
        assert!(matches!(
            none.connect().await.err(),
            Some(ClientError::InvalidAddress(_))
        ));
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
