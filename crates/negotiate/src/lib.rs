//! STOMP version and heart-beat negotiation, sans-IO: no clock, no sockets.
//!
//! - [`negotiate_version`] reads a CONNECT frame's `accept-version` and picks the
//!   highest common version (V1–V4); [`NegotiateError::supported_versions_header`]
//!   gives the `version` header of the ERROR frame when there is none.
//! - [`HeartBeat`] is a `heart-beat` header value (H1, H2); [`negotiate_heartbeat`]
//!   turns the two sides' values into [`HeartBeatIntervals`] (H3).
//! - [`HeartBeater`] keeps the beat timers of one connection, with time passed in
//!   as `now` (H4, H5), in the style of quinn-proto.
//!
//! The small grammars (version lists, `cx,cy` pairs) are parsed with `nom` and are
//! strict: no spaces, no signs, no empty elements.
//!
//! A server's side of a CONNECT, from headers to timer:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use stompkit_frame::Version;
//! use stompkit_negotiate::{
//!     HeartBeat, HeartBeatAction, HeartBeater, negotiate_heartbeat, negotiate_version,
//! };
//!
//! # fn main() -> Result<(), stompkit_negotiate::NegotiateError> {
//! // From the client's CONNECT frame.
//! let version = negotiate_version(Some("1.0,1.1,1.2"), &Version::ALL)?;
//! assert_eq!(version, Version::V1_2);
//! let client = HeartBeat::from_header(Some("10000,10000"))?.clamp(1_000, 60_000);
//!
//! // What the server puts in CONNECTED: it can beat every 5 s, wants one every 20 s.
//! let server = HeartBeat::new(5_000, 20_000);
//! assert_eq!(server.to_string(), "5000,20000");
//!
//! let intervals = negotiate_heartbeat(server, client);
//! assert_eq!(intervals.send, Some(Duration::from_secs(10)));    // max(5000, 10000)
//! assert_eq!(intervals.receive, Some(Duration::from_secs(20))); // max(20000, 10000)
//!
//! let start = Instant::now();
//! let mut beater = HeartBeater::new(intervals, 1.5, start);
//! assert_eq!(beater.poll_timeout(), Some(start + Duration::from_secs(10)));
//! assert_eq!(beater.handle_timeout(start + Duration::from_secs(10)), Some(HeartBeatAction::SendBeat));
//! beater.on_sent(start + Duration::from_secs(10)); // after writing "\n"
//! beater.on_received(start + Duration::from_secs(25)); // a frame from the client
//! assert_eq!(beater.handle_timeout(start + Duration::from_secs(54)), Some(HeartBeatAction::SendBeat));
//! assert_eq!(beater.handle_timeout(start + Duration::from_secs(55)), Some(HeartBeatAction::PeerDead));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod beater;
mod error;
mod grammar;
mod heartbeat;
mod version;

pub use beater::{HeartBeatAction, HeartBeater};
pub use error::NegotiateError;
pub use heartbeat::{HeartBeat, HeartBeatIntervals, negotiate_heartbeat};
/// Re-exported for convenience: the protocol versions negotiated here.
pub use stompkit_frame::Version;
pub use version::{negotiate_version, parse_accept_version};

/// The README's examples, run as doctests (`cargo test --doc`).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
