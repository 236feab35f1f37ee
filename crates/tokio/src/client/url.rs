//! Broker addresses: [`StompUrl`], one parser for every scheme stompkit speaks.
//!
//! Owns reading `stomp://`, `stomp+ssl://`, `ws://` and `wss://` URLs (and the
//! aliases `tcp://`, `stomp+tls://`, `ssl://`, `tls://`) into a [`Scheme`],
//! host, port and path, and refusing TLS schemes in a build without the `tls`
//! feature ([`UrlError::TlsUnavailable`], one line). It opens nothing: the
//! [`Connector`](crate::Connector) dials TCP and TLS, `stompkit-ws` WebSocket.

use std::fmt;

/// The transport a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `stomp://` (or `tcp://`): STOMP over TCP, default port 61613.
    Stomp,
    /// `stomp+ssl://` (or `stomp+tls://`, `ssl://`, `tls://`): STOMP over TLS,
    /// default port 61614.
    StompSsl,
    /// `ws://`: STOMP over WebSocket, default port 80.
    Ws,
    /// `wss://`: STOMP over WebSocket over TLS, default port 443.
    Wss,
}

impl Scheme {
    /// The scheme of a URL's `scheme://` part, aliases included (case-sensitive,
    /// as before: `stomp`, `tcp`, `stomp+ssl`, `stomp+tls`, `ssl`, `tls`, `ws`,
    /// `wss`).
    pub fn from_name(name: &str) -> Option<Scheme> {
        Some(match name {
            "stomp" | "tcp" => Scheme::Stomp,
            "stomp+ssl" | "stomp+tls" | "ssl" | "tls" => Scheme::StompSsl,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            _ => return None,
        })
    }

    /// The canonical name (`stomp`, `stomp+ssl`, `ws`, `wss`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Stomp => "stomp",
            Scheme::StompSsl => "stomp+ssl",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    /// Whether the transport is encrypted (`stomp+ssl`, `wss`).
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::StompSsl | Scheme::Wss)
    }

    /// Whether STOMP goes over WebSocket (`ws`, `wss`).
    pub fn is_websocket(self) -> bool {
        matches!(self, Scheme::Ws | Scheme::Wss)
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Stomp => 61613,
            Scheme::StompSsl => 61614,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        }
    }
}

/// Why a URL was refused. The texts are one line each, naming the URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://`.
    #[error("{0:?} is not a URL: expected stomp://host:port, stomp+ssl://, ws:// or wss://")]
    NotAUrl(String),
    /// A scheme other than those of [`Scheme`].
    #[error("unknown URL scheme {0:?}: use stomp, stomp+ssl, ws or wss")]
    UnknownScheme(String),
    /// The port is not a number from 0 to 65535.
    #[error("bad port in {0:?}")]
    BadPort(String),
    /// An IPv6 address's `[` is not closed.
    #[error("unclosed [ in {0:?}")]
    UnclosedBracket(String),
    /// Something other than `:port` after an IPv6 address's `]`.
    #[error("unexpected text after ] in {0:?}")]
    AfterBracket(String),
    /// No host, or (for `stomp://` and `stomp+ssl://`) a path after it.
    #[error("no host in {0:?}")]
    NoHost(String),
    /// A TLS scheme, and this build has no TLS support (the `tls` feature is
    /// off). Holds the URL.
    #[error("{0}: this build of stompkit has no TLS support (built without the \"tls\" feature)")]
    TlsUnavailable(String),
}

/// A parsed broker address: `stomp://host[:port][/]`, `stomp+ssl://…`,
/// `ws://host[:port][/path]` or `wss://…`.
///
/// ```
/// use stompkit_tokio::{Scheme, StompUrl};
/// let url = StompUrl::parse_any("stomp+ssl://broker.example")?;
/// assert_eq!((url.scheme(), url.host(), url.port()), (Scheme::StompSsl, "broker.example", 61614));
/// assert!(url.is_tls());
/// let ws = StompUrl::parse("ws://[::1]:15674/ws?x=1")?;
/// assert_eq!((ws.host(), ws.port(), ws.path()), ("::1", 15674, "/ws?x=1"));
/// assert_eq!(ws.authority(), "[::1]:15674");
/// assert_eq!(StompUrl::parse("stomp://127.0.0.1")?.to_string(), "stomp://127.0.0.1:61613");
/// # Ok::<(), stompkit_tokio::UrlError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StompUrl {
    scheme: Scheme,
    host: String,
    port: u16,
    path: String,
    /// The URL as given (WebSocket URLs are dialed whole).
    url: String,
}

impl StompUrl {
    /// Parses `url`, refusing TLS schemes in a build without the `tls` feature
    /// ([`UrlError::TlsUnavailable`]).
    pub fn parse(url: &str) -> Result<StompUrl, UrlError> {
        let parsed = StompUrl::parse_any(url)?;
        if parsed.is_tls() && !cfg!(feature = "tls") {
            return Err(UrlError::TlsUnavailable(url.to_string()));
        }
        Ok(parsed)
    }

    /// Parses `url` whatever this build supports (the syntax only).
    ///
    /// `stomp://` and `stomp+ssl://` take a host and an optional port (and
    /// trailing slashes); `ws://` and `wss://` also a path (with its query),
    /// `/` when none is given. IPv6 hosts are bracketed (`[::1]:61613`).
    pub fn parse_any(url: &str) -> Result<StompUrl, UrlError> {
        let Some((name, rest)) = url.split_once("://") else {
            return Err(UrlError::NotAUrl(url.to_string()));
        };
        let scheme =
            Scheme::from_name(name).ok_or_else(|| UrlError::UnknownScheme(name.to_string()))?;
        let (authority, path) = if scheme.is_websocket() {
            let (authority, path) = match rest.find(['/', '?', '#']) {
                Some(at) => (&rest[..at], &rest[at..]),
                None => (rest, ""),
            };
            // `user:password@` is the handshake's business, not the address's.
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            (host, path)
        } else {
            (rest.trim_end_matches('/'), "")
        };
        let (host, port) = host_and_port(url, authority, scheme.default_port())?;
        let path = match (scheme.is_websocket(), path) {
            (true, "") => "/".to_string(),
            (true, path) if !path.starts_with('/') => format!("/{path}"),
            (_, path) => path.to_string(),
        };
        Ok(StompUrl {
            scheme,
            host: host.to_string(),
            port,
            path,
            url: url.to_string(),
        })
    }

    /// The transport.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (the scheme's default when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request path with its query, for WebSocket (`/` at least); empty for
    /// `stomp://` and `stomp+ssl://`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the connection is TLS (`stomp+ssl://`, `wss://`).
    pub fn is_tls(&self) -> bool {
        self.scheme.is_tls()
    }

    /// Whether STOMP goes over WebSocket (`ws://`, `wss://`).
    pub fn is_websocket(&self) -> bool {
        self.scheme.is_websocket()
    }

    /// `host:port` for a socket connect, bracketing IPv6 addresses.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for StompUrl {
    /// `stomp://host:port` or `stomp+ssl://host:port` (normalised: canonical
    /// scheme, port always given); a WebSocket URL as given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_websocket() {
            f.write_str(&self.url)
        } else {
            write!(f, "{}://{}", self.scheme.as_str(), self.authority())
        }
    }
}

/// Splits `authority` (`host`, `host:port`, `[v6]`, `[v6]:port`) of `url`.
fn host_and_port<'a>(
    url: &str,
    authority: &'a str,
    default_port: u16,
) -> Result<(&'a str, u16), UrlError> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| UrlError::BadPort(url.to_string()))
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err(UrlError::UnclosedBracket(url.to_string()));
        };
        match after.strip_prefix(':') {
            Some(p) => (host, port(p)?),
            None if after.is_empty() => (host, default_port),
            None => return Err(UrlError::AfterBracket(url.to_string())),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, port(p)?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() || host.contains('/') {
        return Err(UrlError::NoHost(url.to_string()));
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        let url = StompUrl::parse("stomp://127.0.0.1:1234").unwrap();
        assert_eq!(
            (url.scheme(), url.host(), url.port(), url.path()),
            (Scheme::Stomp, "127.0.0.1", 1234, "")
        );
        let url = StompUrl::parse_any("stomp+ssl://broker.example").unwrap();
        assert_eq!((url.scheme(), url.port()), (Scheme::StompSsl, 61614));
        assert!(url.is_tls() && !url.is_websocket());
        assert_eq!(url.to_string(), "stomp+ssl://broker.example:61614");
        assert_eq!(
            StompUrl::parse("stomp://[::1]").unwrap().authority(),
            "[::1]:61613"
        );
        assert_eq!(
            StompUrl::parse_any("tls://[::1]:9/").unwrap().authority(),
            "[::1]:9"
        );
        let ws = StompUrl::parse("ws://h:15674/ws").unwrap();
        assert_eq!(
            (ws.scheme(), ws.host(), ws.port(), ws.path()),
            (Scheme::Ws, "h", 15674, "/ws")
        );
        assert_eq!(ws.to_string(), "ws://h:15674/ws");
        assert_eq!(StompUrl::parse("ws://h").unwrap().path(), "/");
        assert_eq!(
            StompUrl::parse("ws://u:p@h:1/ws").unwrap().authority(),
            "h:1"
        );
        let wss = StompUrl::parse_any("wss://h/ws").unwrap();
        assert!(wss.is_tls() && wss.is_websocket());
        assert_eq!((wss.port(), wss.as_str()), (443, "wss://h/ws"));
    }

    #[test]
    fn refuses_with_one_line_each() {
        let cases = [
            (
                "localhost:61613",
                "\"localhost:61613\" is not a URL: expected stomp://host:port, stomp+ssl://, ws:// or wss://",
            ),
            (
                "http://h",
                "unknown URL scheme \"http\": use stomp, stomp+ssl, ws or wss",
            ),
            ("stomp://h:x", "bad port in \"stomp://h:x\""),
            ("stomp://[::1", "unclosed [ in \"stomp://[::1\""),
            (
                "stomp://[::1]x",
                "unexpected text after ] in \"stomp://[::1]x\"",
            ),
            ("stomp://", "no host in \"stomp://\""),
            ("stomp://a/b:1", "no host in \"stomp://a/b:1\""),
            ("stomp://a/b", "no host in \"stomp://a/b\""),
            ("ws:///ws", "no host in \"ws:///ws\""),
        ];
        for (url, text) in cases {
            assert_eq!(StompUrl::parse_any(url).unwrap_err().to_string(), text);
        }
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_urls_are_refused_without_the_tls_feature() {
        for url in [
            "stomp+ssl://host:61614",
            "stomp+tls://host",
            "ssl://host:1",
            "tls://host:1",
            "wss://host/ws",
        ] {
            let e = StompUrl::parse(url).unwrap_err();
            assert_eq!(e, UrlError::TlsUnavailable(url.to_string()));
            assert_eq!(
                e.to_string(),
                format!(
                    "{url}: this build of stompkit has no TLS support (built without the \"tls\" feature)"
                )
            );
        }
        assert!(StompUrl::parse("stomp://host").is_ok());
        assert!(StompUrl::parse("ws://host/ws").is_ok());
    }
}
