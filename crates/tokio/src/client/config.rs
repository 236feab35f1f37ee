//! How a client connects: [`ClientConfig`] and [`Reconnect`].
//!
//! Owns the settings a session is opened with (virtual host, credentials,
//! versions offered, heart-beat request, buffer bounds, timeouts, reconnect
//! policy), as a builder with safe defaults. It does not open anything.

use std::time::Duration;
use stompkit_frame::Version;
use stompkit_wire::ParserConfig;

/// Settings for [`Client`](crate::Client) sessions.
///
/// ```
/// use std::time::Duration;
/// use stompkit_tokio::{ClientConfig, Reconnect};
/// let config = ClientConfig::new("localhost")
///     .login("guest", "guest")
///     .heart_beat(Duration::from_secs(10), Duration::from_secs(10))
///     .subscription_buffer(64)
///     .reconnect(Reconnect::default());
/// assert_eq!(config.host_name(), "localhost");
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) host: String,
    pub(crate) login: Option<String>,
    pub(crate) passcode: Option<String>,
    pub(crate) versions: Vec<Version>,
    pub(crate) use_stomp_command: bool,
    pub(crate) heart_beat_send: Duration,
    pub(crate) heart_beat_receive: Duration,
    pub(crate) heart_beat_grace: f64,
    pub(crate) extra_headers: Vec<(String, String)>,
    pub(crate) parser: ParserConfig,
    pub(crate) subscription_buffer: usize,
    pub(crate) request_buffer: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) disconnect_timeout: Duration,
    pub(crate) reconnect: Option<Reconnect>,
}

impl ClientConfig {
    /// Defaults for virtual host `host` (the CONNECT `host` header, V6): versions
    /// 1.0–1.2, CONNECT command, heart-beats requested every 10 s both ways with a
    /// 1.5x grace margin, subscription buffers of 256 messages, 10 s timeouts,
    /// reconnect off.
    pub fn new(host: impl Into<String>) -> ClientConfig {
        ClientConfig {
            host: host.into(),
            login: None,
            passcode: None,
            versions: Version::ALL.to_vec(),
            use_stomp_command: false,
            heart_beat_send: Duration::from_secs(10),
            heart_beat_receive: Duration::from_secs(10),
            heart_beat_grace: 1.5,
            extra_headers: Vec::new(),
            parser: ParserConfig::default(),
            subscription_buffer: 256,
            request_buffer: 128,
            connect_timeout: Duration::from_secs(10),
            disconnect_timeout: Duration::from_secs(10),
            reconnect: None,
        }
    }

    /// The virtual host sent in `host`.
    pub fn host_name(&self) -> &str {
        &self.host
    }

    /// Sets `login` and `passcode`.
    pub fn login(mut self, login: impl Into<String>, passcode: impl Into<String>) -> ClientConfig {
        self.login = Some(login.into());
        self.passcode = Some(passcode.into());
        self
    }

    /// The versions offered in `accept-version` (V1); empty means all three.
    pub fn versions(mut self, versions: &[Version]) -> ClientConfig {
        let mut v = if versions.is_empty() {
            Version::ALL.to_vec()
        } else {
            versions.to_vec()
        };
        v.sort();
        v.dedup();
        self.versions = v;
        self
    }

    /// Opens the session with a STOMP frame instead of CONNECT (1.2, V7).
    pub fn use_stomp_command(mut self, yes: bool) -> ClientConfig {
        self.use_stomp_command = yes;
        self
    }

    /// The heart-beat request `cx,cy` (H1): how often this client can send beats,
    /// and how often it wants to receive them. Zero means never. Whole milliseconds.
    pub fn heart_beat(mut self, send: Duration, receive: Duration) -> ClientConfig {
        self.heart_beat_send = send;
        self.heart_beat_receive = receive;
        self
    }

    /// How many receive intervals may pass without data before the server is
    /// declared dead (H5); default 1.5, values below 1.0 are raised to 1.0.
    pub fn heart_beat_grace(mut self, grace: f64) -> ClientConfig {
        self.heart_beat_grace = if grace.is_finite() {
            grace.max(1.0)
        } else {
            1.5
        };
        self
    }

    /// An extra header for the CONNECT frame (for example a broker-specific one).
    pub fn connect_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> ClientConfig {
        self.extra_headers.push((name.into(), value.into()));
        self
    }

    /// Limits for frames read from the server.
    pub fn parser_config(mut self, config: ParserConfig) -> ClientConfig {
        self.parser = config;
        self
    }

    /// The default bound of each subscription's buffer, in messages (at least 1).
    /// Client-ack subscriptions send it as `prefetch-count`.
    pub fn subscription_buffer(mut self, messages: usize) -> ClientConfig {
        self.subscription_buffer = messages.max(1);
        self
    }

    /// How many requests (sends, acks, ...) may wait for the connection task
    /// before callers wait too (at least 1).
    pub fn request_buffer(mut self, requests: usize) -> ClientConfig {
        self.request_buffer = requests.max(1);
        self
    }

    /// How long to wait for CONNECTED.
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.connect_timeout = timeout;
        self
    }

    /// How long [`disconnect`](crate::Client::disconnect) waits for the RECEIPT.
    pub fn disconnect_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.disconnect_timeout = timeout;
        self
    }

    /// Reconnect after a lost connection (off by default). Needs a client made with
    /// a way to connect again ([`Client::connect_with`](crate::Client::connect_with),
    /// [`Client::connect_tcp`](crate::Client::connect_tcp), `tls::connect`).
    pub fn reconnect(mut self, policy: Reconnect) -> ClientConfig {
        self.reconnect = Some(policy);
        self
    }
}

/// Reconnect with exponential backoff. After a lost connection the client
/// connects again, offering the version it had negotiated, re-sends SUBSCRIBE
/// for every live subscription (same ids and destinations) and carries on;
/// requests waiting for a receipt fail with
/// [`ClientError::ConnectionLost`](crate::ClientError::ConnectionLost). An ERROR frame
/// is never retried.
#[derive(Clone, Debug, PartialEq)]
pub struct Reconnect {
    /// Delay before the first attempt.
    pub initial_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// Factor applied to the delay after each failed attempt.
    pub multiplier: f64,
    /// Give up after this many failed attempts in a row (`None`: never).
    pub max_attempts: Option<u32>,
}

impl Default for Reconnect {
    /// 100 ms, doubling up to 30 s, never giving up.
    fn default() -> Reconnect {
        Reconnect {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            multiplier: 2.0,
            max_attempts: None,
        }
    }
}

impl Reconnect {
    /// The delay before attempt `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.max(1.0).powi(attempt.min(64) as i32);
        let secs = self.initial_delay.as_secs_f64() * factor;
        if !secs.is_finite() || secs > self.max_delay.as_secs_f64() {
            self.max_delay
        } else {
            Duration::from_secs_f64(secs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let r = Reconnect::default();
        assert_eq!(r.delay(0), Duration::from_millis(100));
        assert_eq!(r.delay(1), Duration::from_millis(200));
        assert_eq!(r.delay(3), Duration::from_millis(800));
        assert_eq!(r.delay(30), Duration::from_secs(30));
        assert_eq!(r.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn versions_are_sorted_and_deduplicated() {
        let c = ClientConfig::new("h").versions(&[Version::V1_2, Version::V1_0, Version::V1_2]);
        assert_eq!(c.versions, [Version::V1_0, Version::V1_2]);
        let c = ClientConfig::new("h").versions(&[]);
        assert_eq!(c.versions, Version::ALL);
    }
}
