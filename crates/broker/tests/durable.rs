//! Durable messaging, end to end against the real `stompkit-broker` binary:
//! each test starts it on `127.0.0.1:0` with a data directory of its own
//! (`--data-dir`, under `target/tmp`), talks raw STOMP 1.2 over TCP, crashes it
//! with SIGKILL and starts it again on the same directory.
//!
//! - `crash`: receipted persistent SENDs, receipted ACKs, transactions (SENDs,
//!   and ACK + SEND) and durable subscriptions through a SIGKILL at a random
//!   moment with more frames in flight: every receipted effect is there,
//!   in order, exactly once; delivered-but-unacked messages come back with
//!   their `message-id` and `redelivered:true`; a RECEIPT covers the earlier
//!   persistent frames of its connection.
//! - `store`: the data directory (default, flag, environment, config,
//!   in-memory), its lock, a corrupt or truncated tail, a write error.
//! - `subscriptions`: durable topic subscriptions in the ActiveMQ and RabbitMQ
//!   conventions: kept while away, across restarts, removed for good, one
//!   active subscriber, scoped per login.
//! - `expiry`: `expiration`, `expires` and `default_ttl_ms`.
//! - `dead_letters`: `requeue:false` and `max_deliveries`.
//! - `million`: 1,000,000 stored messages through a SIGKILL (`#[ignore]`d:
//!   `cargo xtask ci` runs it in release, step `durable-release`).
#![allow(clippy::unwrap_used)]

// The crate root of a test file resolves modules beside it, so the parts in
// tests/durable/ are named by path.
#[path = "durable/harness.rs"]
#[allow(dead_code)] // `Scratch::in_memory` is for the other test targets.
mod harness;

#[path = "durable/crash.rs"]
mod crash;
#[path = "durable/dead_letters.rs"]
mod dead_letters;
#[path = "durable/expiry.rs"]
mod expiry;
#[path = "durable/million.rs"]
mod million;
#[path = "durable/store.rs"]
mod store;
#[path = "durable/subscriptions.rs"]
mod subscriptions;
