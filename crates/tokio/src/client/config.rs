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
    /// [`Client::connect_tcp`](crate::Client::connect_tcp), `tls::connect`,
    /// `stompkit_ws::connect_client`).
    pub fn reconnect(mut self, policy: Reconnect) -> ClientConfig {
        self.reconnect = Some(policy);
        self
    }
}

/// Reconnect with exponential backoff and jitter. After a lost connection the
/// client connects again (through its [`Connector`](crate::Connector): with
/// [`Connector::failover`](crate::Connector::failover), to the next server), offering the version it had negotiated, re-sends SUBSCRIBE
/// for every live subscription (same ids and destinations) and carries on;
/// requests waiting for a receipt fail with
/// [`ClientError::ConnectionLost`](crate::ClientError::ConnectionLost). An ERROR frame
/// ends the session for good unless [`after_error`](Reconnect::after_error) is set; a
/// CONNECT answered with ERROR (refused credentials) is never retried.
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
    /// How much of each delay is left to chance, so that many clients cut off
    /// at once do not all come back at the same moment (default
    /// [`Jitter::Equal`]).
    pub jitter: Jitter,
    /// Also reconnect after the server ended a session with an ERROR frame
    /// (as stomp.js does), e.g. for brokers that send ERROR when they shut
    /// down (stompkit-broker's `server shutting down`, RabbitMQ's
    /// `connection_forced`). Default `false`: an ERROR usually answers
    /// something this client did, and doing it again would fail again.
    pub after_error: bool,
}

/// Randomness applied to each reconnect delay `d` (the exponential delay of
/// [`Reconnect::delay`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly `d`.
    None,
    /// Uniform in `[0, d]` ("full jitter": spreads clients the most).
    Full,
    /// Uniform in `[d/2, d]` ("equal jitter": never less than half of `d`).
    #[default]
    Equal,
}

impl Default for Reconnect {
    /// 100 ms, doubling up to 30 s, equal jitter, never giving up, not after
    /// an ERROR frame.
    fn default() -> Reconnect {
        Reconnect {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            multiplier: 2.0,
            max_attempts: None,
            jitter: Jitter::Equal,
            after_error: false,
        }
    }
}

impl Reconnect {
    /// The delay before attempt `attempt` (0-based) with [`jitter`](Reconnect::jitter)
    /// applied, drawn at random: within [`delay_bounds`](Reconnect::delay_bounds).
    pub fn jittered_delay(&self, attempt: u32) -> Duration {
        self.delay_at(attempt, random_unit())
    }

    /// The shortest and longest delay [`jittered_delay`](Reconnect::jittered_delay)
    /// can return for `attempt`.
    pub fn delay_bounds(&self, attempt: u32) -> (Duration, Duration) {
        (self.delay_at(attempt, 0.0), self.delay_at(attempt, 1.0))
    }

    /// The jittered delay for a draw `unit` in `[0, 1]` (0: the shortest).
    fn delay_at(&self, attempt: u32, unit: f64) -> Duration {
        let d = self.delay(attempt);
        let unit = unit.clamp(0.0, 1.0);
        match self.jitter {
            Jitter::None => d,
            Jitter::Full => d.mul_f64(unit),
            Jitter::Equal => d / 2 + (d - d / 2).mul_f64(unit),
        }
    }

    /// The delay before attempt `attempt` (0-based), without jitter: the
    /// exponential curve, capped at [`max_delay`](Reconnect::max_delay).
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

/// A number in `[0, 1)` from std's randomly keyed hasher (no rand crate): good
/// enough to spread reconnects, not for anything secret.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    // The top 53 bits: every value exactly representable.
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
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
    fn jitter_stays_within_its_bounds() {
        let ms = Duration::from_millis;
        let none = Reconnect {
            jitter: Jitter::None,
            ..Reconnect::default()
        };
        assert_eq!(none.delay_bounds(2), (ms(400), ms(400)));
        assert_eq!(none.jittered_delay(2), ms(400));
        let full = Reconnect {
            jitter: Jitter::Full,
            ..Reconnect::default()
        };
        assert_eq!(full.delay_bounds(2), (ms(0), ms(400)));
        let equal = Reconnect::default();
        assert_eq!(equal.jitter, Jitter::Equal);
        assert_eq!(equal.delay_bounds(2), (ms(200), ms(400)));
        assert_eq!(equal.delay_bounds(30), (ms(15_000), ms(30_000)));
        for policy in [&full, &equal] {
            let draws: Vec<Duration> = (0..200).map(|_| policy.jittered_delay(3)).collect();
            let (lo, hi) = policy.delay_bounds(3);
            assert!(draws.iter().all(|d| (lo..=hi).contains(d)), "{draws:?}");
            // Random, not one fixed point: 200 equal draws would be a broken source.
            assert!(draws.iter().any(|d| *d != draws[0]), "{draws:?}");
        }
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }

    #[test]
    fn versions_are_sorted_and_deduplicated() {
        let c = ClientConfig::new("h").versions(&[Version::V1_2, Version::V1_0, Version::V1_2]);
        assert_eq!(c.versions, [Version::V1_0, Version::V1_2]);
        let c = ClientConfig::new("h").versions(&[]);
        assert_eq!(c.versions, Version::ALL);
    }
}
