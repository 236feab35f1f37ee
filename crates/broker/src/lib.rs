//! stompkit-broker: a STOMP 1.0/1.1/1.2 broker.
//!
//! Run it with [`Broker`] ([`Broker::bind`] → [`RunningBroker`]) and a
//! [`BrokerConfig`]; watch it through [`Metrics`]; plug logins in with an
//! [`Authenticator`] and rights with [`Permissions`].
//!
//! The protocol lives in two sans-IO state machines, so every rule is unit-testable
//! and fuzzable without sockets:
//! - `Session` (`session.rs`): one connection's protocol: frames and parse errors
//!   in, router commands and frames out, time passed in.
//! - `Router` (`router/`): destinations, subscriptions, queues, acks; writes
//!   deliveries straight into each connection's `Outbox`. Flow control (when a
//!   publisher pauses, what a full outbox means) is `flow.rs`'s.
//!
//! They are not public API: fuzz targets and benchmarks reach them through
//! `internals`, which is hidden from the docs and may change in any release.
//!
//! The network loop is thin around them, its modules depending one way:
//! `server.rs` binds and stops, `accept.rs` accepts (and refuses beyond
//! `max_connections`), `serve.rs` tells raw STOMP from HTTP/WebSocket by the
//! first bytes, `transport.rs` turns a byte stream or a WebSocket into STOMP
//! bytes in and out, and `connection.rs` drives one session over any transport
//! (one reader loop and one writer task); all of them share `shared.rs`'s state,
//! and `router_task.rs` is the one task that owns the router.
//!
//! Relay mode (`relay.rs`, `--upstream stomp://HOST:PORT`) replaces session and
//! router by one upstream STOMP session per client, on another broker, driven
//! by the same connection driver.
//!
//! TLS (`tls.rs`: TLS listeners with `[tls]`, and a `stomp+ssl://` upstream
//! trusting `[relay] ca_file` or the system's root certificates) needs the `tls`
//! cargo feature, on by default. Without it rustls and ring are not compiled, and
//! TLS listen entries, a TLS upstream and the TLS keys are refused at start with
//! one line ([`ConfigError::TlsUnavailable`]).
#![deny(missing_docs)]

mod accept;
mod admin;
pub mod auth;
mod authz;
mod check;
#[cfg(feature = "cluster")]
mod cluster;
mod config;
mod connection;
mod flow;
mod http;
mod message;
mod metrics;
mod metrics_endpoint;
mod outbox;
mod registry;
mod relay;
mod reload;
mod router;
mod router_task;
mod rules;
mod serve;
mod server;
mod session;
mod shared;
mod store;
mod tls;
mod transport;
mod upstream;
mod wildcard;

pub use auth::{AuthRequest, AuthSetupError, Authenticator, Credential, Principal, Verdict};
pub use authz::{Glob, Permissions};
pub use check::StartError;
pub use check::{MASKED, check_config, masked_toml};
pub use config::{
    AdminConfig, AuthConfig, BrokerConfig, ConfigError, DestinationsConfig, HeartbeatConfig,
    LimitsConfig, ListenSpec, LogFormat, OriginCheck, OutgoingMessages, QueueOverflow, RelayConfig,
    Secret, ServerConfig, SlowConsumer, StoreConfig, TlsConfig, UserConfig, WebSocketConfig,
};
pub use metrics::{DropReason, ErrorReason, Metrics};
pub use reload::{ReloadError, Reloaded};
pub use server::{BoundListener, Broker, RunningBroker, raise_nofile_limit};
pub use session::{PREFETCH_COUNT, SERVER};
pub use store::StoreError;
pub use tls::TlsSetupError;

/// The broker's sans-IO core, for the fuzz targets (`fuzz/`) and benchmarks
/// (`benches/`) that drive it without sockets. Not public API: hidden from the
/// docs, with no stability promise; a program using the broker runs a
/// [`Broker`].
///
/// A module rather than a cargo feature so that fuzz and bench code need no
/// feature flag and `cargo clippy --all-targets` checks them as they are.
#[doc(hidden)]
pub mod internals {
    pub use crate::outbox::{Outbox, Take};
    pub use crate::router::{
        AckRef, ClusterEvent, ClusterOp, ClusterUnit, ConnId, Router, RouterCommand, RouterConfig,
        Settle, TxOp, Wire, is_valid_destination,
    };
    pub use crate::session::Session;
    /// The durable store (`store/`): its records, and its pure recovery.
    pub mod store {
        pub use crate::store::{
            Completion, Op, Recovered, Skipped, Store, StoreError, StoreOptions, StoredMessage,
            StoredSubscription, Unit, empty_segment, encode_unit, recover_from_segments,
        };
    }
}

/// The README's examples, run as doctests (`cargo test --doc`).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
