//! Broker configuration: every limit and knob, its default, and how to set it.
//!
//! Owns [`BrokerConfig`] (read from TOML, see `crates/broker/stompkit.sample.toml`)
//! and the environment overrides: every key `k` of section `s` can also be set by
//! the variable `STOMPKIT_<S>_<K>` (upper case), e.g. `STOMPKIT_LIMITS_MAX_BODY=1048576`
//! or `STOMPKIT_SERVER_LISTEN=127.0.0.1:61613,[::1]:61613`. The value is read as a TOML
//! value when it parses as one (numbers, booleans, arrays) and as a string otherwise;
//! a comma-separated string sets a list. Overrides are applied generically by walking
//! the serialized key tree, so a new key needs no extra code. A variable naming a
//! known section and no key of it (`STOMPKIT_LIMITS_MAX_CONECTIONS`) is an error,
//! as an unknown key in the file is; other `STOMPKIT_*` variables (the CLI's,
//! [`OTHER_VARIABLES`]) are left alone.
//!
//! It does not parse the command line (`main.rs` does, and `--listen`/`--metrics`
//! override the file) and does not validate semantics beyond types.

pub use crate::auth::config::{AuthConfig, Secret, UserConfig};
pub use cluster::ClusterConfig;
pub use relay::RelayConfig;
pub use tls::TlsConfig;

mod cluster;
mod relay;
mod tls;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use stompkit_wire::ParserConfig;
use stompkit_ws::{DEFAULT_PATHS, OriginPolicy, OutgoingMode};

/// The whole broker configuration. Every field has a documented default.
///
/// ```
/// use stompkit_broker::BrokerConfig;
/// let config: BrokerConfig = toml::from_str("[limits]\nmax_connections = 10\n").unwrap();
/// assert_eq!(config.limits.max_connections, 10);
/// assert_eq!(config.server.listen, ["127.0.0.1:61613"]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Listeners, logging, shutdown.
    pub server: ServerConfig,
    /// Sizes, counts and timeouts.
    pub limits: LimitsConfig,
    /// Heart-beat bounds.
    pub heartbeat: HeartbeatConfig,
    /// Destinations, queues and slow consumers.
    pub destinations: DestinationsConfig,
    /// STOMP over WebSocket on the listen ports.
    pub websocket: WebSocketConfig,
    /// Relay mode: every client session relayed to an upstream broker.
    pub relay: RelayConfig,
    /// Users, tokens, anonymous access and destination rules.
    pub auth: AuthConfig,
    /// The certificate of TLS listeners.
    pub tls: TlsConfig,
    /// Where durable messages and subscriptions are kept.
    pub store: StoreConfig,
    /// The admin listener: HTTP API, dashboard and metrics.
    pub admin: AdminConfig,
    /// Cluster mode: nodes sharing a NATS deployment act as one broker.
    pub cluster: ClusterConfig,
}

/// `[admin]`: the admin listener (JSON API, dashboard, `/metrics`,
/// `/healthz`). Off unless `listen` is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// `IP:PORT` to serve the admin API on (default empty: off). On a loopback
    /// address no login is asked; elsewhere a user with `admin = true`.
    pub listen: String,
}

/// `[store]`: the data directory of persistent messages and durable
/// subscriptions. Relay mode opens no store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The data directory, created on first start (default `./stompkit-data`;
    /// `--data-dir`, `STOMPKIT_STORE_DIR`). One broker at a time: a second one
    /// on the same directory refuses to start.
    pub dir: String,
    /// Keep nothing on disk: persistent messages and durable subscriptions live
    /// in memory only and are lost on restart (default false; `--in-memory`).
    pub in_memory: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            dir: "./stompkit-data".to_owned(),
            in_memory: false,
        }
    }
}

/// `[server]`: where to listen and how to stop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen addresses (default `["127.0.0.1:61613"]`). A bare `HOST:PORT`
    /// serves STOMP over TCP and, when `[websocket] enabled`, WebSocket and the
    /// demo page on the same port (told apart by the first bytes);
    /// `ws://HOST:PORT` serves WebSocket only; `stomp://HOST:PORT` TCP STOMP only.
    /// With TLS (`[tls]` certificate): `tls://HOST:PORT` serves both over TLS,
    /// `stomp+ssl://HOST:PORT` STOMP only, `wss://HOST:PORT` WebSocket only.
    /// See [`ListenSpec`].
    pub listen: Vec<String>,
    /// Prometheus `/metrics` listen address; empty = off (default off).
    pub metrics: String,
    /// `tracing` filter, e.g. `info` or `stompkit_broker=debug` (default `info`).
    pub log_level: String,
    /// Log lines on stderr: `text` (default) or `json` (one object per line;
    /// `--log-format`).
    pub log_format: LogFormat,
    /// How long graceful shutdown waits for clients to go, in ms (default 5000).
    pub shutdown_timeout_ms: u64,
    /// How long a closing connection may take to flush its last bytes, in ms (default 2000).
    pub close_linger_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec!["127.0.0.1:61613".to_owned()],
            metrics: String::new(),
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
            shutdown_timeout_ms: 5000,
            close_linger_ms: 2000,
        }
    }
}

/// How log lines are written (`[server] log_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Readable lines: time, level, target, message and fields (default).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`
    /// (with `message`).
    Json,
}

/// `[limits]`: per-connection and per-frame bounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most open connections; beyond, a new one gets ERROR (an HTTP client on a
    /// WebSocket listener: 503 with `Retry-After`) and is closed (default
    /// 16384). Each needs a file descriptor: `main` raises the soft
    /// `RLIMIT_NOFILE` to the hard limit and warns when that is lower.
    pub max_connections: usize,
    /// Longest command line in bytes (default 1024).
    pub max_command_len: usize,
    /// Longest header line in bytes (default 65536).
    pub max_header_line: usize,
    /// Most headers per frame (default 1000).
    pub max_headers: usize,
    /// Most bytes of command and headers per frame (default 262144).
    pub max_header_bytes: usize,
    /// Largest body in bytes (default 8 MiB; RabbitMQ allows 4 MiB frames).
    pub max_body: usize,
    /// A connection that sends no CONNECT within this many ms is closed (default 10000).
    pub login_timeout_ms: u64,
    /// A frame that has started must complete within this many ms (default 30000).
    pub frame_timeout_ms: u64,
    /// Most subscriptions per connection (default 1000).
    pub max_subscriptions: usize,
    /// Most open transactions per connection (default 16, as RabbitMQ).
    pub max_transactions: usize,
    /// Most frames buffered in one transaction (default 10000).
    pub max_transaction_frames: usize,
    /// Most bytes (headers and bodies) buffered in one transaction (default 16 MiB).
    pub max_transaction_bytes: usize,
    /// Most bytes queued toward one connection before it counts as a slow consumer
    /// (default 8 MiB). A frame is written while the queue is below the bound, so the
    /// queue never exceeds bound + one frame.
    pub max_outbox_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let parser = ParserConfig::default();
        LimitsConfig {
            max_connections: 16_384,
            max_command_len: parser.max_command_len,
            max_header_line: parser.max_header_line,
            max_headers: parser.max_headers,
            max_header_bytes: parser.max_header_bytes,
            max_body: 8 * 1024 * 1024,
            login_timeout_ms: 10_000,
            frame_timeout_ms: 30_000,
            max_subscriptions: 1000,
            max_transactions: 16,
            max_transaction_frames: 10_000,
            max_transaction_bytes: 16 * 1024 * 1024,
            max_outbox_bytes: 8 * 1024 * 1024,
        }
    }
}

/// `[heartbeat]`: the server answers a client's `heart-beat` request mirrored and
/// clamped into `[min_ms, max_ms]` (0 stays 0: no beats), as RabbitMQ does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Shortest interval the server agrees to, in ms (default 1000).
    pub min_ms: u64,
    /// Longest interval the server agrees to, in ms (default 600000).
    pub max_ms: u64,
    /// A peer is dead after `grace` × its interval without data (default 1.5).
    pub grace: f64,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            min_ms: 1000,
            max_ms: 600_000,
            grace: 1.5,
        }
    }
}

/// What a full queue does with a new message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum QueueOverflow {
    /// Refuse the SEND with an ERROR (default).
    #[default]
    Refuse,
    /// Drop the oldest held message to make room (counted as dropped).
    DropOldest,
}

/// What a topic does with a subscriber whose outbox is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SlowConsumer {
    /// Close its connection with an ERROR (default).
    #[default]
    Disconnect,
    /// Drop the messages it cannot take (counted as dropped).
    Drop,
}

/// `[destinations]`: destination, queue and subscription policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationsConfig {
    /// Most destinations (topics + queues) alive at once (default 10000).
    pub max_destinations: usize,
    /// Most messages held per queue (default 100000).
    pub queue_max_messages: usize,
    /// Most bytes (headers and bodies) held per queue (default 64 MiB).
    pub queue_max_bytes: usize,
    /// `refuse` (default) or `drop-oldest`.
    pub queue_overflow: QueueOverflow,
    /// `disconnect` (default) or `drop`.
    pub slow_consumer: SlowConsumer,
    /// Unacknowledged messages allowed per `client`/`client-individual` subscription
    /// without a `prefetch-count` header (default 1000). `auto` subscriptions are
    /// bounded by `max_outbox_bytes` only.
    pub default_prefetch: u32,
    /// Largest `prefetch-count` accepted (default 65535).
    pub max_prefetch: u32,
    /// Time to live of a message whose SEND sets neither `expiration` nor
    /// `expires`, in ms (default 0: none).
    pub default_ttl_ms: u64,
    /// Most deliveries of one queue message (default 10; 0 = unlimited): a
    /// delivery that reached it and is NACKed or returned unacknowledged moves
    /// the message to `/queue/<name>.dlq`.
    pub max_deliveries: u32,
    /// Most temporary destinations (`reply-to:/temp-queue/<name>` and
    /// `/temp-topic/<name>`, each a reply destination of its own) one
    /// connection may hold (default 100); a SEND that would create one more
    /// gets ERROR.
    pub max_temp_queues: usize,
}

impl Default for DestinationsConfig {
    fn default() -> Self {
        DestinationsConfig {
            max_destinations: 10_000,
            queue_max_messages: 100_000,
            queue_max_bytes: 64 * 1024 * 1024,
            queue_overflow: QueueOverflow::Refuse,
            slow_consumer: SlowConsumer::Disconnect,
            default_prefetch: 1000,
            max_prefetch: 65_535,
            default_ttl_ms: 0,
            max_deliveries: 10,
            max_temp_queues: 100,
        }
    }
}

/// What a WebSocket peer's outgoing messages are (`[websocket] outgoing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OutgoingMessages {
    /// Text when the frame is valid UTF-8 and the client sends text; binary
    /// otherwise (default).
    #[default]
    Auto,
    /// Text whenever valid UTF-8, binary otherwise.
    Text,
    /// Always binary.
    Binary,
}

impl From<OutgoingMessages> for OutgoingMode {
    fn from(m: OutgoingMessages) -> OutgoingMode {
        match m {
            OutgoingMessages::Auto => OutgoingMode::Auto,
            OutgoingMessages::Text => OutgoingMode::Text,
            OutgoingMessages::Binary => OutgoingMode::Binary,
        }
    }
}

/// Which `Origin` headers a WebSocket upgrade may carry (`[websocket] origin_check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OriginCheck {
    /// Any Origin on a loopback listener; elsewhere no Origin, the broker's own
    /// host, or an `allowed_origins` entry (default).
    #[default]
    Auto,
    /// As `auto` on a non-loopback listener, on every listener.
    Strict,
    /// Any Origin anywhere (only behind a proxy that checks it).
    Any,
}

impl From<OriginCheck> for OriginPolicy {
    fn from(c: OriginCheck) -> OriginPolicy {
        match c {
            OriginCheck::Auto => OriginPolicy::Auto,
            OriginCheck::Strict => OriginPolicy::Strict,
            OriginCheck::Any => OriginPolicy::Any,
        }
    }
}

/// `[websocket]`: STOMP over WebSocket on the listen ports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Serve WebSocket (and the demo page at `/`) on bare listen addresses
    /// (default true).
    pub enabled: bool,
    /// Refuse STOMP over TCP on every listener: WebSocket only (default false;
    /// also `--ws-only`).
    pub ws_only: bool,
    /// Request paths that accept the upgrade (default `["/ws", "/stomp"]`).
    pub paths: Vec<String>,
    /// Origins accepted besides the `origin_check` defaults, e.g.
    /// `https://app.example.com`; `*` accepts any (default none).
    pub allowed_origins: Vec<String>,
    /// `auto` (default), `strict` or `any`.
    pub origin_check: OriginCheck,
    /// Outgoing messages: `auto` (default), `text` or `binary`.
    pub outgoing: OutgoingMessages,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            enabled: true,
            ws_only: false,
            paths: DEFAULT_PATHS.iter().map(|p| (*p).to_owned()).collect(),
            allowed_origins: Vec::new(),
            origin_check: OriginCheck::Auto,
            outgoing: OutgoingMessages::Auto,
        }
    }
}

/// One `server.listen` entry: an address and what it serves.
///
/// ```
/// use stompkit_broker::ListenSpec;
/// let ws = ListenSpec::parse("ws://0.0.0.0:8080", true).unwrap();
/// assert_eq!((ws.addr.as_str(), ws.stomp, ws.websocket), ("0.0.0.0:8080", false, true));
/// let both = ListenSpec::parse("127.0.0.1:61613", true).unwrap();
/// assert!(both.stomp && both.websocket);
/// assert!(ListenSpec::parse("http://x:1", true).is_err());
/// # #[cfg(feature = "tls")] {
/// // With the `tls` feature (the default):
/// let tls = ListenSpec::parse("tls://0.0.0.0:61614", true).unwrap();
/// assert!(tls.tls && tls.stomp && tls.websocket);
/// let wss = ListenSpec::parse("wss://0.0.0.0:443", true).unwrap();
/// assert!(wss.tls && !wss.stomp && wss.websocket);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    /// `HOST:PORT` to bind.
    pub addr: String,
    /// Serves STOMP over TCP.
    pub stomp: bool,
    /// Serves WebSocket (and the demo page).
    pub websocket: bool,
    /// Speaks TLS first (`[tls]` certificate), then whatever the flags above say.
    pub tls: bool,
}

impl ListenSpec {
    /// Reads a listen entry: `HOST:PORT` (TCP STOMP, plus WebSocket when
    /// `websocket` is on), `ws://HOST:PORT` (WebSocket only) or
    /// `stomp://HOST:PORT` (TCP STOMP only); over TLS: `tls://HOST:PORT` (STOMP,
    /// plus WebSocket when `websocket` is on), `wss://HOST:PORT` (WebSocket only),
    /// `stomp+ssl://HOST:PORT` (STOMP only). A build without the `tls` feature
    /// refuses the TLS ones with [`ConfigError::TlsUnavailable`].
    pub fn parse(entry: &str, websocket: bool) -> Result<ListenSpec, ConfigError> {
        let (scheme, rest) = match entry.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, entry),
        };
        let addr = rest.strip_suffix('/').unwrap_or(rest);
        if addr.is_empty() || addr.contains('/') {
            return Err(ConfigError::Listen(entry.to_owned()));
        }
        let scheme = scheme.map(str::to_ascii_lowercase);
        let (stomp, websocket, tls) = match scheme.as_deref() {
            None => (true, websocket, false),
            Some("ws") => (false, true, false),
            Some("stomp") => (true, false, false),
            Some("tls") => (true, websocket, true),
            Some("wss") => (false, true, true),
            Some("stomp+ssl") => (true, false, true),
            Some(_) => return Err(ConfigError::Listen(entry.to_owned())),
        };
        if tls && !cfg!(feature = "tls") {
            return Err(ConfigError::TlsUnavailable(entry.into()));
        }
        Ok(ListenSpec {
            addr: addr.to_owned(),
            stomp,
            websocket,
            tls,
        })
    }
}

/// A configuration that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML (file or an environment override) is invalid.
    #[error("invalid configuration: {0}")]
    Toml(String),
    /// A `server.listen` entry is not `HOST:PORT` or `SCHEME://HOST:PORT` with a
    /// scheme among `ws`, `stomp`, `tls`, `wss`, `stomp+ssl`.
    #[error(
        "invalid listen address {0:?}: expected HOST:PORT or ws://, stomp://, tls://, wss://, stomp+ssl:// HOST:PORT"
    )]
    Listen(String),
    /// A TLS listen entry, a TLS upstream or a TLS key (named here), in a build
    /// without the `tls` feature.
    #[error("{0}: this build of stompkit has no TLS support (built without the \"tls\" feature)")]
    TlsUnavailable(String),
    /// A `STOMPKIT_<SECTION>_<KEY>` variable of a known section names no key
    /// of it (a misspelt key is refused, as in the TOML file).
    #[error("unknown configuration variable {var} (no key {key} in [{section}])")]
    UnknownVariable {
        /// The variable, as set.
        var: String,
        /// The section it names, lower case.
        section: String,
        /// What follows the section, lower case.
        key: String,
    },
    /// `[server] log_level` is no log filter.
    #[error("invalid [server] log_level {value:?}: {error}")]
    LogLevel {
        /// The value, as set.
        value: String,
        /// The filter parser's reason.
        error: String,
    },
    /// `[admin] listen` in relay mode: the upstream broker holds the queues,
    /// topics and subscriptions the admin API would show.
    #[error(
        "[admin] listen cannot be used with [relay] upstream: in relay mode the upstream broker holds the queues and subscriptions; use its own admin tools"
    )]
    AdminInRelayMode,
    /// `[cluster] servers` with `[relay] upstream`: a node is one or the other.
    #[error(
        "[cluster] servers cannot be used with [relay] upstream: a relay forwards every session to its upstream, a cluster node serves them itself"
    )]
    ClusterInRelayMode,
    /// `[cluster] servers` in a build without the `cluster` feature.
    #[error("[cluster] servers is set but this build has no cluster mode (the `cluster` feature)")]
    ClusterUnavailable,
}

/// `STOMPKIT_*` variables that are no broker configuration although they start
/// like a section's (the `stompkit` CLI's and the test tools'): left alone.
pub(crate) const OTHER_VARIABLES: &[&str] = &[
    // The CLI's (`stompkit --help`).
    "STOMPKIT_URL",
    "STOMPKIT_LOGIN",
    "STOMPKIT_PASSCODE",
    "STOMPKIT_TOKEN",
    "STOMPKIT_CA_FILE",
    "STOMPKIT_ADMIN_URL",
    // The tests' and tools'.
    "STOMPKIT_STORE_PERF_DIR",
    "STOMPKIT_WS_URL",
    "STOMPKIT_WS_IDLE_READ_BUFFER",
];

impl BrokerConfig {
    /// Reads a TOML document (missing keys take their defaults).
    pub fn from_toml(text: &str) -> Result<BrokerConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml(toml_error(&e, text)))
    }

    /// Applies `STOMPKIT_<SECTION>_<KEY>` overrides from `vars` (pass
    /// `std::env::vars()`). What follows `STOMPKIT_` is read in any case
    /// (`STOMPKIT_limits_max_body` is `STOMPKIT_LIMITS_MAX_BODY`); two
    /// variables that differ only in case are an error.
    pub fn with_env(
        self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<BrokerConfig, ConfigError> {
        // By the upper-case name: (the name as set, the value).
        let mut by_name = std::collections::HashMap::new();
        for (var, value) in vars.into_iter().filter(|(k, _)| k.starts_with("STOMPKIT_")) {
            if let Some((other, _)) = by_name.insert(var.to_ascii_uppercase(), (var.clone(), value))
            {
                let (a, b) = (var.clone().min(other.clone()), var.max(other));
                return Err(ConfigError::Toml(format!(
                    "{a} and {b} are the same variable (the case of a variable's name is ignored)"
                )));
            }
        }
        if by_name.is_empty() {
            return Ok(self);
        }
        let mut tree =
            toml::Value::try_from(&self).map_err(|e| ConfigError::Toml(e.to_string()))?;
        check_variables(&tree, by_name.values().map(|(var, _)| var))?;
        if let toml::Value::Table(sections) = &mut tree {
            for (section, keys) in sections.iter_mut() {
                let toml::Value::Table(keys) = keys else {
                    continue;
                };
                for (key, value) in keys.iter_mut() {
                    let upper = format!("STOMPKIT_{section}_{key}").to_ascii_uppercase();
                    if let Some((var, text)) = by_name.get(&upper) {
                        *value = env_value(text, value)
                            .map_err(|e| ConfigError::Toml(format!("{var}: {e}")))?;
                    }
                }
            }
        }
        tree.try_into()
            .map_err(|e: toml::de::Error| ConfigError::Toml(without_values(e.message())))
    }

    /// The parser limits for client connections.
    pub fn parser_config(&self) -> ParserConfig {
        ParserConfig {
            max_command_len: self.limits.max_command_len,
            max_header_line: self.limits.max_header_line,
            max_headers: self.limits.max_headers,
            max_header_bytes: self.limits.max_header_bytes,
            max_body: self.limits.max_body,
            trim_headers: false,
        }
    }

    /// Every `server.listen` entry with what it serves (`[websocket] enabled` and
    /// `ws_only` applied).
    pub fn listen_specs(&self) -> Result<Vec<ListenSpec>, ConfigError> {
        let ws = &self.websocket;
        self.server
            .listen
            .iter()
            .map(|entry| {
                let mut spec = ListenSpec::parse(entry, ws.enabled)?;
                if ws.ws_only {
                    spec.stomp = false;
                    spec.websocket = true;
                }
                Ok(spec)
            })
            .collect()
    }

    /// `login_timeout_ms` as a duration.
    pub fn login_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.login_timeout_ms)
    }

    /// `frame_timeout_ms` as a duration.
    pub fn frame_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.frame_timeout_ms)
    }
}

/// Refuses a variable `STOMPKIT_<SECTION>_<KEY>` whose section is one of
/// `tree`'s (the serialized configuration) but whose key is none of that
/// section's; other `STOMPKIT_*` variables and [`OTHER_VARIABLES`] pass.
fn check_variables<'a>(
    tree: &toml::Value,
    vars: impl Iterator<Item = &'a String>,
) -> Result<(), ConfigError> {
    let toml::Value::Table(sections) = tree else {
        return Ok(());
    };
    let mut vars: Vec<&String> = vars.collect();
    vars.sort();
    for var in vars {
        if OTHER_VARIABLES.contains(&var.as_str()) {
            continue;
        }
        let Some(rest) = var.strip_prefix("STOMPKIT_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        for (section, keys) in sections {
            let (Some(key), toml::Value::Table(keys)) = (
                rest.strip_prefix(section.as_str())
                    .and_then(|r| r.strip_prefix('_')),
                keys,
            ) else {
                continue;
            };
            if !keys.contains_key(key) {
                return Err(ConfigError::UnknownVariable {
                    var: var.clone(),
                    section: section.clone(),
                    key: key.to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// A TOML error of `text` on one line: `line L, column C: what` (the
/// parser's own text quotes the source over several lines).
pub(crate) fn toml_error(error: &toml::de::Error, text: &str) -> String {
    let message = without_values(error.message().trim()).replace('\n', "; ");
    let Some(span) = error.span() else {
        return message;
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column}: {message}")
}

/// `message` with the value left out of a type error: `invalid type: integer
/// `12345`, expected a string` reads `invalid type: integer, expected a
/// string` (the value may be a secret: a `token_secret` or `password_hash`
/// of the wrong type, shown in a start error or a failed reload's log line).
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        // The value may hold anything; what follows it is the type's own text.
        let Some(at) = rest.rfind(", expected ") else {
            return format!("{prefix}(value not shown)");
        };
        let (found, expected) = rest.split_at(at);
        let kind = found.split(['`', '"']).next().unwrap_or("").trim();
        return format!("{prefix}{kind}{expected}");
    }
    message.to_owned()
}

/// Reads one environment value in the shape of the default it replaces.
fn env_value(text: &str, current: &toml::Value) -> Result<toml::Value, String> {
    use toml::Value;
    Ok(match current {
        Value::String(_) => Value::String(text.to_owned()),
        Value::Integer(_) => Value::Integer(text.trim().parse().map_err(|e| format!("{e}"))?),
        Value::Float(_) => Value::Float(text.trim().parse().map_err(|e| format!("{e}"))?),
        Value::Boolean(_) => Value::Boolean(text.trim().parse().map_err(|e| format!("{e}"))?),
        Value::Array(_) => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => {
            let doc: toml::Table =
                toml::from_str(&format!("v = {text}")).map_err(|e| e.to_string())?;
            doc.get("v").cloned().ok_or("no value")?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_config_parses_and_equals_defaults() {
        let text = include_str!("../stompkit.sample.toml");
        assert_eq!(
            BrokerConfig::from_toml(text).unwrap(),
            BrokerConfig::default()
        );
    }

    #[test]
    fn env_overrides_every_kind_of_key() {
        let vars = [
            ("STOMPKIT_LIMITS_MAX_BODY", "1024"),
            ("STOMPKIT_SERVER_LISTEN", "127.0.0.1:1,127.0.0.1:2"),
            ("STOMPKIT_HEARTBEAT_GRACE", "2.5"),
            ("STOMPKIT_DESTINATIONS_QUEUE_OVERFLOW", "drop-oldest"),
            ("STOMPKIT_SERVER_METRICS", "127.0.0.1:9"),
            ("STOMPKIT_DESTINATIONS_MAX_TEMP_QUEUES", "7"),
            ("OTHER", "x"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = BrokerConfig::default().with_env(vars).unwrap();
        assert_eq!(c.limits.max_body, 1024);
        assert_eq!(c.server.listen, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(c.heartbeat.grace, 2.5);
        assert_eq!(c.destinations.queue_overflow, QueueOverflow::DropOldest);
        assert_eq!(c.server.metrics, "127.0.0.1:9");
        assert_eq!(c.destinations.max_temp_queues, 7);
    }

    #[test]
    fn websocket_section_env_and_listen_specs() {
        let vars = [
            ("STOMPKIT_WEBSOCKET_PATHS", "/a,/b"),
            ("STOMPKIT_WEBSOCKET_ALLOWED_ORIGINS", "https://x.example"),
            ("STOMPKIT_WEBSOCKET_OUTGOING", "binary"),
            ("STOMPKIT_WEBSOCKET_ORIGIN_CHECK", "strict"),
            (
                "STOMPKIT_SERVER_LISTEN",
                "127.0.0.1:1,ws://0.0.0.0:2,stomp://[::1]:3/",
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let mut c = BrokerConfig::default().with_env(vars).unwrap();
        assert_eq!(c.websocket.paths, ["/a", "/b"]);
        assert_eq!(c.websocket.allowed_origins, ["https://x.example"]);
        assert_eq!(c.websocket.outgoing, OutgoingMessages::Binary);
        assert_eq!(c.websocket.origin_check, OriginCheck::Strict);
        let kinds = |c: &BrokerConfig| {
            c.listen_specs()
                .unwrap()
                .into_iter()
                .map(|s| (s.addr, s.stomp, s.websocket))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(&c),
            [
                ("127.0.0.1:1".to_owned(), true, true),
                ("0.0.0.0:2".to_owned(), false, true),
                ("[::1]:3".to_owned(), true, false),
            ]
        );
        c.websocket.enabled = false;
        assert_eq!(kinds(&c)[0], ("127.0.0.1:1".to_owned(), true, false));
        c.websocket.ws_only = true;
        assert!(kinds(&c).iter().all(|(_, stomp, ws)| !stomp && *ws));
        c.server.listen = vec!["http://x:1".into()];
        assert!(c.listen_specs().is_err());
        c.server.listen = vec!["ws://x:1/ws".into()];
        assert!(c.listen_specs().is_err());
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_listen_entries() {
        let spec = ListenSpec::parse("stomp+ssl://127.0.0.1:61614", true).unwrap();
        assert!(spec.tls && spec.stomp && !spec.websocket);
        assert!(ListenSpec::parse("TLS://127.0.0.1:1", true).unwrap().tls);
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_listen_entries_are_refused_without_the_tls_feature() {
        for entry in [
            "tls://0.0.0.0:61614",
            "wss://0.0.0.0:443",
            "stomp+ssl://127.0.0.1:61614",
        ] {
            let e = ListenSpec::parse(entry, true).unwrap_err();
            assert!(
                matches!(&e, ConfigError::TlsUnavailable(s) if s == entry),
                "{e:?}"
            );
            assert_eq!(
                e.to_string(),
                format!(
                    "{entry}: this build of stompkit has no TLS support (built without the \"tls\" feature)"
                )
            );
        }
        let mut c = BrokerConfig::default();
        c.server.listen = vec!["127.0.0.1:1".into(), "wss://127.0.0.1:2".into()];
        assert!(matches!(
            c.listen_specs(),
            Err(ConfigError::TlsUnavailable(_))
        ));
        // Plain entries are unaffected.
        assert!(ListenSpec::parse("stomp://127.0.0.1:1", true).is_ok());
    }

    #[test]
    fn unknown_variable_of_a_known_section_is_an_error() {
        let vars = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let e = BrokerConfig::default()
            .with_env(vars(&[("STOMPKIT_LIMITS_MAX_CONECTIONS", "10")]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown configuration variable STOMPKIT_LIMITS_MAX_CONECTIONS \
             (no key max_conections in [limits])"
        );
        for (var, section, key) in [
            ("STOMPKIT_SERVER_LOG_LEVELS", "server", "log_levels"),
            ("STOMPKIT_AUTH_USER", "auth", "user"),
            ("STOMPKIT_TLS_CERT", "tls", "cert"),
            ("STOMPKIT_ADMIN_LISTENER", "admin", "listener"),
            ("STOMPKIT_STORE_DIRECTORY", "store", "directory"),
            ("STOMPKIT_HEARTBEAT_MIN", "heartbeat", "min"),
        ] {
            let e = BrokerConfig::default()
                .with_env(vars(&[(var, "1")]))
                .unwrap_err();
            assert!(
                matches!(&e, ConfigError::UnknownVariable { var: v, section: s, key: k }
                    if v == var && s == section && k == key),
                "{var}: {e:?}"
            );
        }
        // Keys with underscores, other STOMPKIT_* variables and the CLI's are fine.
        let c = BrokerConfig::default()
            .with_env(vars(&[
                ("STOMPKIT_LIMITS_MAX_CONNECTIONS", "10"),
                ("STOMPKIT_AUTH_TOKEN_MAX_TTL_S", "60"),
                ("STOMPKIT_URL", "stomp://127.0.0.1:1"),
                ("STOMPKIT_LOGIN", "alice"),
                ("STOMPKIT_PASSCODE", "secret"),
                ("STOMPKIT_TOKEN", "v1.1.x"),
                ("STOMPKIT_CA_FILE", "ca.pem"),
                ("STOMPKIT_ADMIN_URL", "http://127.0.0.1:61680"),
                ("STOMPKIT_STORE_PERF_DIR", "/tmp/x"),
                ("STOMPKIT_WS_URL", "ws://127.0.0.1:1/ws"),
                ("STOMPKIT_CHROMIUM", "/usr/bin/chromium"),
                ("STOMPKIT_SCREENSHOT_DIR", "/tmp"),
                ("STOMPKIT_INTEROP_ADDR", "127.0.0.1:1"),
                ("STOMPKIT_SERVER", "x"),
                ("STOMPKIT_SERVERS_LISTEN", "x"),
            ]))
            .unwrap();
        assert_eq!(c.limits.max_connections, 10);
        assert_eq!(c.auth.token_max_ttl_s, 60);
    }

    #[test]
    fn toml_errors_are_one_line_with_their_position() {
        let e = BrokerConfig::from_toml("[limits]\nmax_body = 1\n[limits\n").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("invalid configuration: line 3, column "),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
        let e = BrokerConfig::from_toml("[limits]\nmax_bogus = 1\n").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("line 2, column 1") && text.contains("max_bogus"),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn variables_are_read_in_any_case() {
        let vars = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let c = BrokerConfig::default()
            .with_env(vars(&[
                ("STOMPKIT_limits_max_body", "16"),
                ("STOMPKIT_Server_Log_Level", "debug"),
            ]))
            .unwrap();
        assert_eq!(
            (c.limits.max_body, c.server.log_level.as_str()),
            (16, "debug")
        );
        let e = BrokerConfig::default()
            .with_env(vars(&[("STOMPKIT_limits_max_bodies", "16")]))
            .unwrap_err();
        assert!(matches!(e, ConfigError::UnknownVariable { .. }), "{e}");
        let e = BrokerConfig::default()
            .with_env(vars(&[
                ("STOMPKIT_LIMITS_MAX_BODY", "16"),
                ("STOMPKIT_limits_max_body", "32"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("STOMPKIT_LIMITS_MAX_BODY and STOMPKIT_limits_max_body"),
            "{e}"
        );
    }

    #[test]
    fn type_errors_leave_the_value_out() {
        for (text, value, kind) in [
            (
                "[auth]\ntoken_secret = 12345678901234567\n",
                "12345678901234567",
                "integer",
            ),
            ("[relay]\npasscode = 987654\n", "987654", "integer"),
            (
                "[[auth.users]]\nlogin = \"a\"\npassword_hash = 1.25\n",
                "1.25",
                "floating point",
            ),
            (
                "[limits]\nmax_body = \"s3cr3t, expected it\"\n",
                "s3cr3t",
                "string",
            ),
        ] {
            let e = BrokerConfig::from_toml(text).unwrap_err().to_string();
            assert!(!e.contains(value), "{e}");
            assert!(
                e.contains(&format!("invalid type: {kind}, expected ")),
                "{e}"
            );
        }
        // The same for an environment value that makes the wrong type.
        let users = [("STOMPKIT_AUTH_USERS".to_owned(), "hunter2".to_owned())];
        let e = BrokerConfig::default()
            .with_env(users)
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains("hunter2") && e.contains("invalid type: string"),
            "{e}"
        );
    }

    #[test]
    fn bad_env_value_and_unknown_key_are_errors() {
        let bad = [("STOMPKIT_LIMITS_MAX_BODY".to_owned(), "lots".to_owned())];
        assert!(BrokerConfig::default().with_env(bad).is_err());
        assert!(BrokerConfig::from_toml("[limits]\nmax_bogus = 1\n").is_err());
    }
}
