//! `[relay]`: the upstream broker of relay mode and how to reach it. Only the
//! settings; relay mode itself is `relay.rs`'s, its upstream `upstream.rs`'s.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[relay]`: relay every client session to an upstream STOMP broker.
///
/// ```
/// use stompkit_broker::BrokerConfig;
/// let config = BrokerConfig::from_toml("[relay]\nupstream = \"stomp://10.0.0.5:61613\"\n").unwrap();
/// assert_eq!(config.relay.upstream, "stomp://10.0.0.5:61613");
/// assert!(config.relay.login.is_empty()); // clients' own credentials go upstream
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// The upstream broker, `stomp://HOST:PORT` or `stomp+ssl://HOST:PORT`;
    /// empty = no relay: the broker serves clients itself (default).
    pub upstream: String,
    /// PEM file of the CA certificates trusted for a `stomp+ssl` upstream (only
    /// these); empty = the system's root certificates (default; e.g.
    /// `/etc/ssl/certs`).
    pub ca_file: String,
    /// Name checked in the upstream's certificate; empty = the upstream host.
    pub tls_server_name: String,
    /// `host` header (virtual host) sent upstream; empty = the client's own
    /// `host` header (none when the client sent none: the upstream's default).
    pub vhost: String,
    /// Upstream login used for every client instead of the client's own
    /// credentials; empty = forward each client's `login`/`passcode` (default).
    /// Only for deployments that authenticate clients at the relay: clients are
    /// then checked against `[auth]` (users, tokens, and their send/subscribe
    /// rules) before their session goes upstream, and the safe defaults apply
    /// (no non-loopback listener without `[auth]` or `allow_anonymous`).
    pub login: String,
    /// Passcode going with [`login`](RelayConfig::login).
    pub passcode: String,
    /// Heart-beat the relay offers and asks of the upstream, in ms, both ways
    /// (default 10000; 0 = none). The client's heart-beats are negotiated
    /// separately, within `[heartbeat]`.
    pub heartbeat_ms: u64,
    /// How long connecting to the upstream and its CONNECTED may take, in ms
    /// (default 10000).
    pub connect_timeout_ms: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            upstream: String::new(),
            ca_file: String::new(),
            tls_server_name: String::new(),
            vhost: String::new(),
            login: String::new(),
            passcode: String::new(),
            heartbeat_ms: 10_000,
            connect_timeout_ms: 10_000,
        }
    }
}

impl RelayConfig {
    /// Whether relay mode is on.
    pub fn is_enabled(&self) -> bool {
        !self.upstream.trim().is_empty()
    }

    /// Whether relay mode is on and sends each client's own credentials
    /// upstream (no configured [`login`](RelayConfig::login)).
    pub fn forwards_credentials(&self) -> bool {
        self.is_enabled() && self.login.is_empty()
    }

    /// `connect_timeout_ms` as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use crate::BrokerConfig;

    #[test]
    fn relay_keys_come_from_the_environment_too() {
        let vars = [
            ("STOMPKIT_RELAY_UPSTREAM", "stomp+ssl://mq.example:61614"),
            ("STOMPKIT_RELAY_CA_FILE", "/etc/ssl/mq-ca.pem"),
            ("STOMPKIT_RELAY_HEARTBEAT_MS", "0"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = BrokerConfig::default().with_env(vars).unwrap();
        assert!(config.relay.is_enabled());
        assert_eq!(config.relay.upstream, "stomp+ssl://mq.example:61614");
        assert_eq!(config.relay.ca_file, "/etc/ssl/mq-ca.pem");
        assert_eq!(config.relay.heartbeat_ms, 0);
        assert!(config.relay.forwards_credentials());
        let mut shared_login = config.relay.clone();
        shared_login.login = "svc".into();
        assert!(
            !shared_login.forwards_credentials(),
            "then [auth] safe defaults apply"
        );
        assert!(!BrokerConfig::default().relay.is_enabled());
        assert!(!BrokerConfig::default().relay.forwards_credentials());
    }
}
