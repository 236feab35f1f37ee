//! stompkit-broker: a STOMP 1.0/1.1/1.2 broker.
//!
//! The protocol lives in two sans-IO state machines, so every rule is unit-testable
//! and fuzzable without sockets:
//! - [`Session`] (`session.rs`): one connection's protocol: frames and parse errors
//!   in, router commands and frames out, time passed in.
//! - [`Router`] (`router.rs`): destinations, subscriptions, queues, acks; writes
//!   deliveries straight into each connection's [`Outbox`].
//!
//! The network loop is thin around them: `server.rs` binds and accepts (one task
//! owns the router), `listener.rs` tells raw STOMP from HTTP/WebSocket by the first
//! bytes, `transport.rs` turns a byte stream or a WebSocket into STOMP bytes in and
//! out, and `connection.rs` runs one reader and one writer task per session over
//! any transport.
//!
//! Relay mode (`relay.rs`, `--upstream stomp://HOST:PORT`) replaces session and
//! router by one upstream STOMP session per client, on another broker.
//!
//! TLS (`tls.rs`: TLS listeners with `[tls]`, and a `stomp+ssl://` upstream
//! trusting `[relay] ca_file` or the system's root certificates) needs the `tls`
//! cargo feature, on by default. Without it rustls and ring are not compiled, and
//! TLS listen entries, a TLS upstream and the TLS keys are refused at start with
//! one line ([`ConfigError::TlsUnavailable`]).
#![deny(missing_docs)]

pub mod auth;
mod authz;
mod config;
mod connection;
mod http;
mod listener;
mod message;
mod metrics;
mod outbox;
mod relay;
mod router;
mod server;
mod session;
mod tls;
mod transport;

pub use auth::{AuthRequest, Authenticator, Principal, Verdict};
pub use authz::{Glob, Permissions};
pub use config::{
    AuthConfig, BrokerConfig, ConfigError, DestinationsConfig, HeartbeatConfig, LimitsConfig,
    ListenSpec, OriginCheck, OutgoingMessages, QueueOverflow, RelayConfig, Secret, ServerConfig,
    SlowConsumer, TlsConfig, UserConfig, WebSocketConfig,
};
pub use metrics::{Metrics, QueueStat, render as render_metrics};
pub use outbox::{Outbox, Take};
pub use router::{AckRef, ConnId, Router, RouterCommand, RouterConfig, TxOp, is_valid_destination};
pub use server::{BoundListener, Broker, RunningBroker, raise_nofile_limit};
pub use session::{PREFETCH_COUNT, SERVER, Session, refusal};

/// The README's examples, run as doctests (`cargo test --doc`).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
