//! The admin listener end to end, against the real `stompkit-broker` binary
//! started with `--admin` (on `127.0.0.1:0`, or `0.0.0.0:0` for the
//! non-loopback rules), spoken to with a small raw HTTP/1.1 client (and
//! HTTPS with a certificate made at test time).
//!
//! - `api`: every endpoint of the JSON API, its statuses (200, 204, 400, 404,
//!   405, 415) and field names; peek, purge, delete a queue (its consumer
//!   gets ERROR), kick a connection (ERROR `closed by administrator`),
//!   durable subscriptions listed and deleted; the dashboard's files,
//!   `/metrics`, `/healthz`.
//! - `security`: the loopback `Host` check, a non-loopback listener without
//!   admin users (all 401), tokens over plain HTTP, passwords only over
//!   HTTPS (a loopback listener stays plain HTTP), non-admin users refused, a
//!   SIGHUP reload that takes the admin flag away; never an
//!   `Access-Control-*` header.
#![allow(clippy::unwrap_used)]

#[path = "durable/harness.rs"]
#[allow(dead_code)] // Most of the harness is for the durable tests.
mod harness;

#[path = "admin/client.rs"]
mod client;

#[path = "admin/api.rs"]
mod api;
#[path = "admin/security.rs"]
mod security;
