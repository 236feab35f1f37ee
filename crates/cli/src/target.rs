//! Broker addresses as given with `--url`: which transport, which host and port.
//!
//! `stomp://host[:port]` (TCP, default port 61613), `stomp+ssl://host[:port]`
//! (TLS, default 61614), `ws://host[:port]/path` and `wss://host[:port]/path`
//! (STOMP over WebSocket; the URL is passed on whole). A build without the
//! `tls` feature refuses the TLS ones (`stomp+ssl://`, `wss://`, ...) with one
//! line.

use anyhow::{Result, bail};

/// The one-line error for a TLS address in a build without the `tls` feature.
#[cfg_attr(feature = "tls", allow(dead_code))]
pub fn tls_unavailable(url: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{url}: this build of stompkit has no TLS support (built without the \"tls\" feature)"
    )
}

/// A parsed `--url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Plain TCP to `host:port`.
    Tcp {
        /// Host name or IP (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// TLS over TCP; the certificate is checked for `host`.
    Tls {
        /// Host name or IP (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// STOMP over WebSocket (`ws://` or `wss://`), the URL as given.
    WebSocket {
        /// The whole URL, path included.
        url: String,
        /// `wss://` (TLS).
        secure: bool,
    },
}

impl Target {
    /// Parses a `--url` value.
    pub fn parse(url: &str) -> Result<Target> {
        let target = Target::parse_any(url)?;
        if target.is_tls() && !cfg!(feature = "tls") {
            return Err(tls_unavailable(url));
        }
        Ok(target)
    }

    /// Parses a `--url` value, TLS or not, whatever this build supports.
    fn parse_any(url: &str) -> Result<Target> {
        let Some((scheme, rest)) = url.split_once("://") else {
            bail!(
                "{url:?} is not a URL: expected stomp://host:port, stomp+ssl://, ws:// or wss://"
            );
        };
        let tls = match scheme {
            "stomp" | "tcp" => false,
            "stomp+ssl" | "stomp+tls" | "ssl" | "tls" => true,
            "ws" | "wss" => {
                return Ok(Target::WebSocket {
                    url: url.to_string(),
                    secure: scheme == "wss",
                });
            }
            other => bail!("unknown URL scheme {other:?}: use stomp, stomp+ssl, ws or wss"),
        };
        let rest = rest.trim_end_matches('/');
        let default_port = if tls { 61614 } else { 61613 };
        let bad_port = || anyhow::anyhow!("bad port in {url:?}");
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                bail!("unclosed [ in {url:?}");
            };
            match after.strip_prefix(':') {
                Some(p) => (host, p.parse().map_err(|_| bad_port())?),
                None if after.is_empty() => (host, default_port),
                None => bail!("unexpected text after ] in {url:?}"),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad_port())?),
                None => (rest, default_port),
            }
        };
        if host.is_empty() || host.contains('/') {
            bail!("no host in {url:?}");
        }
        let host = host.to_string();
        Ok(if tls {
            Target::Tls { host, port }
        } else {
            Target::Tcp { host, port }
        })
    }

    /// `host:port` for a socket connect (IPv6 bracketed); empty for WebSocket
    /// (its URL is dialed whole).
    pub fn authority(&self) -> String {
        match self {
            Target::Tcp { host, port } | Target::Tls { host, port } => {
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
            Target::WebSocket { .. } => String::new(),
        }
    }

    /// Whether the connection is TLS (`stomp+ssl://`, `wss://`).
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            Target::Tls { .. } | Target::WebSocket { secure: true, .. }
        )
    }

    /// The URL, normalised (for messages).
    pub fn url(&self) -> String {
        match self {
            Target::Tcp { .. } => format!("stomp://{}", self.authority()),
            Target::Tls { .. } => format!("stomp+ssl://{}", self.authority()),
            Target::WebSocket { url, .. } => url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
            let e = Target::parse(url).unwrap_err();
            assert_eq!(
                format!("{e:#}"),
                format!(
                    "{url}: this build of stompkit has no TLS support (built without the \"tls\" feature)"
                )
            );
        }
        assert!(Target::parse("stomp://host").is_ok());
        assert!(Target::parse("ws://host/ws").is_ok());
    }

    #[test]
    fn parses_the_schemes() {
        assert_eq!(
            Target::parse("stomp://127.0.0.1:1234").unwrap(),
            Target::Tcp {
                host: "127.0.0.1".into(),
                port: 1234
            }
        );
        assert_eq!(
            Target::parse_any("stomp+ssl://broker.example").unwrap(),
            Target::Tls {
                host: "broker.example".into(),
                port: 61614
            }
        );
        assert_eq!(
            Target::parse("stomp://[::1]").unwrap().authority(),
            "[::1]:61613"
        );
        assert_eq!(
            Target::parse("ws://h:15674/ws").unwrap(),
            Target::WebSocket {
                url: "ws://h:15674/ws".into(),
                secure: false
            }
        );
        // (`parse` refuses these two in a build without the `tls` feature.)
        let wss = Target::parse_any("wss://h/ws").unwrap();
        assert!(wss.is_tls() && Target::parse_any("stomp+ssl://h").unwrap().is_tls());
        assert!(!Target::parse("stomp://h").unwrap().is_tls());
        assert_eq!(wss.url(), "wss://h/ws");
        assert!(Target::parse("http://h").is_err());
        assert!(Target::parse("stomp://h:x").is_err());
        assert!(Target::parse("localhost:61613").is_err());
    }
}
