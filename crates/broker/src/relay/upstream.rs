//! The upstream broker: its address, TLS settings, and opening one connection.
//!
//! Owns turning `[relay]` into a ready [`Upstream`] at startup (a bad URL or an
//! unreadable CA file stops the broker there, not at the first client) and
//! [`Upstream::connect`]: one TCP or TLS byte stream per client session, within
//! `connect_timeout_ms`. Addresses and TLS come from `stompkit-tokio`'s client.

use super::RelayConfig;
use crate::config::ConfigError;
use std::time::Duration;
use stompkit_tokio::{Address, Connector, Transport, tls};

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
            if config.ca_file.is_empty() {
                return Err(bad(format!(
                    "{url} uses TLS: set relay.ca_file (STOMPKIT_RELAY_CA_FILE) to the PEM file of the CA to trust"
                )));
            }
            let tls_config = tls::client_config_from_ca_file(&config.ca_file)
                .map_err(|e| ConfigError::Toml(format!("relay.ca_file: {e}")))?;
            let name = match config.tls_server_name.as_str() {
                "" => address.host.as_str(),
                name => name,
            };
            tls::connector(address.authority(), name, tls_config)
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
        let error = Upstream::from_config(&relay("stomp+ssl://mq.example")).unwrap_err();
        assert!(error.to_string().contains("relay.ca_file"), "{error}");
        let mut missing_ca = relay("stomp+ssl://mq.example");
        missing_ca.ca_file = "/nonexistent/ca.pem".to_owned();
        assert!(Upstream::from_config(&missing_ca).is_err());
        for bad in ["http://x:1", "stomp://", "mq.example:61613"] {
            assert!(Upstream::from_config(&relay(bad)).is_err(), "{bad}");
        }
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
