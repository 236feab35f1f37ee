//! The upstream broker: its address, TLS settings, and opening one connection.
//!
//! Owns turning `[relay]` into a ready [`Upstream`] at startup (a bad URL, an
//! unreadable CA file or no usable system root certificate stops the broker
//! there, not at the first client) and [`Upstream::connect`]: one TCP or TLS
//! byte stream per client session, within `connect_timeout_ms`. Addresses and
//! TLS come from `stompkit-tokio`'s client. A `stomp+ssl` upstream trusts
//! `ca_file` when set (only it), else the system's root certificates; a build
//! without the `tls` feature refuses it.

use crate::config::{ConfigError, RelayConfig};
use std::time::Duration;
use stompkit_tokio::{Address, Connector, Transport};

/// A configured upstream, ready to connect to.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    address: Address,
    connector: Connector,
    timeout: Duration,
}

impl Upstream {
    /// Reads `[relay]`; `Ok(None)` when relay mode is off.
    pub(crate) fn from_config(config: &RelayConfig) -> Result<Option<Upstream>, ConfigError> {
        if !config.is_enabled() {
            return Ok(None);
        }
        let bad = |why: String| ConfigError::Toml(format!("relay.upstream: {why}"));
        let url = config.upstream.trim();
        let address = Address::parse(url).map_err(|_| {
            bad(format!(
                "{url:?} is not stomp://HOST:PORT or stomp+ssl://HOST:PORT"
            ))
        })?;
        let connector = if address.tls {
            tls_connector(&address, url, config)?
        } else {
            Connector::tcp(address.authority())
        };
        Ok(Some(Upstream {
            address,
            connector,
            timeout: config.connect_timeout(),
        }))
    }

    /// Opens one connection (TCP, then TLS when configured) within the connect
    /// timeout; the error is a short reason for the client's ERROR frame.
    pub(crate) async fn connect(&self) -> Result<Box<dyn Transport>, String> {
        match tokio::time::timeout(self.timeout, self.connector.connect()).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no connection within {:?}", self.timeout)),
        }
    }
}

/// The TLS connector for a `stomp+ssl` upstream: `ca_file` when set, else the
/// system's root certificates.
#[cfg(feature = "tls")]
fn tls_connector(
    address: &Address,
    _url: &str,
    config: &RelayConfig,
) -> Result<Connector, ConfigError> {
    use stompkit_tokio::tls;
    let tls_config = match config.ca_file.trim() {
        "" => tls::client_config_with_native_roots().map_err(|e| {
            ConfigError::Toml(format!(
                "relay: no relay.ca_file set and {e}; set relay.ca_file (STOMPKIT_RELAY_CA_FILE) to the PEM file of the CA to trust"
            ))
        })?,
        ca_file => tls::client_config_from_ca_file(ca_file)
            .map_err(|e| ConfigError::Toml(format!("relay.ca_file: {e}")))?,
    };
    let name = match config.tls_server_name.as_str() {
        "" => address.host.as_str(),
        name => name,
    };
    Ok(tls::connector(address.authority(), name, tls_config))
}

/// Without the `tls` feature a `stomp+ssl` upstream is refused.
#[cfg(not(feature = "tls"))]
fn tls_connector(
    _address: &Address,
    url: &str,
    _config: &RelayConfig,
) -> Result<Connector, ConfigError> {
    Err(crate::tls::unavailable(url))
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.address.tls {
            "stomp+ssl"
        } else {
            "stomp"
        };
        write!(f, "{scheme}://{}", self.address.authority())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(upstream: &str) -> RelayConfig {
        RelayConfig {
            upstream: upstream.to_owned(),
            ..RelayConfig::default()
        }
    }

    #[test]
    fn off_plain_tls_and_bad_urls() {
        assert!(Upstream::from_config(&relay("")).unwrap().is_none());
        let up = Upstream::from_config(&relay("stomp://10.1.2.3:7000"))
            .unwrap()
            .unwrap();
        assert_eq!(up.to_string(), "stomp://10.1.2.3:7000");
        for bad in ["http://x:1", "stomp://", "mq.example:61613"] {
            assert!(Upstream::from_config(&relay(bad)).is_err(), "{bad}");
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn a_tls_upstream_trusts_the_ca_file_or_else_the_system_roots() {
        // No CA file: the system's root certificates (this machine has some).
        let up = Upstream::from_config(&relay("stomp+ssl://mq.example"))
            .unwrap()
            .unwrap();
        assert_eq!(up.to_string(), "stomp+ssl://mq.example:61614");
        assert_eq!(
            format!("{:?}", up.connector),
            r#"Connector("tls mq.example:61614")"#
        );
        // A CA file that cannot be read stops the broker at startup, one line.
        let mut missing_ca = relay("stomp+ssl://mq.example");
        missing_ca.ca_file = "/nonexistent/ca.pem".to_owned();
        let error = Upstream::from_config(&missing_ca).unwrap_err().to_string();
        assert!(
            error.contains("relay.ca_file") && error.contains("/nonexistent/ca.pem"),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn a_tls_upstream_is_refused_without_the_tls_feature() {
        let error = Upstream::from_config(&relay("stomp+ssl://mq.example:61614")).unwrap_err();
        assert!(matches!(error, ConfigError::TlsUnavailable(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "stomp+ssl://mq.example:61614: this build of stompkit has no TLS support (built without the \"tls\" feature)"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_short_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let up = Upstream::from_config(&relay(&format!("stomp://{addr}")))
            .unwrap()
            .unwrap();
        let error = up.connect().await.err().unwrap();
        assert!(!error.is_empty());
    }
}
