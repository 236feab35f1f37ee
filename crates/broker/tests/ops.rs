//! Operating the broker, end to end against the `stompkit-broker` binary:
//!
//! - `logs`: `--log-format json` and `[server] log_format`: every stderr line
//!   is one JSON object.
//! - `check_config`: `check-config FILE` prints the effective configuration
//!   with its secrets masked (exit 0), or one line and exit 2.
//! - `variables`: an unknown `STOMPKIT_<SECTION>_<KEY>` stops the start; the
//!   CLI's and the tools' own `STOMPKIT_*` variables do not.
//! - `reload`: SIGHUP reloads users and permissions (a removed user's
//!   connection gets ERROR, changed permissions apply to the next frame, a
//!   broken file changes nothing), also under load with no message lost.
//! - `tls_reload`: SIGHUP replaces the TLS certificate for new handshakes;
//!   open TLS connections stay.
#![allow(clippy::unwrap_used)]

#[path = "durable/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "ops/broker.rs"]
mod broker;

#[path = "ops/check_config.rs"]
mod check_config;
#[path = "ops/logs.rs"]
mod logs;
#[path = "ops/reload.rs"]
mod reload;
#[cfg(feature = "tls")]
#[path = "ops/tls_reload.rs"]
mod tls_reload;
#[path = "ops/variables.rs"]
mod variables;
