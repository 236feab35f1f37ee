//! Why a relayed session ends with an ERROR to its client: a client frame broke
//! one of the protocol's rules, or the upstream failed.
//!
//! Owns the wording of the relay's own ERRORs (the upstream's failures); the
//! client's are the rules layer's [`ProtocolError`], worded there once for both
//! sessions. Does not build or send the ERROR frame (the session does).

use crate::rules::ProtocolError;
use stompkit_frame::Command;
use stompkit_wire::ParseError;

/// A reason to end a relayed session; its `Display` is the ERROR's `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RelayError {
    /// The client broke a protocol rule.
    #[error(transparent)]
    Client(#[from] ProtocolError),
    /// No CONNECTED within `[relay] connect_timeout_ms`.
    #[error("upstream did not answer CONNECT in time")]
    ConnectTimeout,
    /// No data from the upstream within its heart-beat interval and grace.
    #[error("upstream heart-beat timeout: no data from upstream")]
    HeartBeatTimeout,
    /// The upstream sent bytes that are not a valid frame.
    #[error("invalid frame from upstream: {}", .0.message())]
    InvalidFrame(ParseError),
    /// The connection to the upstream could not be opened (the body says why).
    #[error("upstream unavailable")]
    Unavailable,
    /// The upstream closed the connection before CONNECTED.
    #[error("upstream closed the connection")]
    Closed,
    /// The upstream connection ended while the session was open.
    #[error("upstream connection lost")]
    Lost,
    /// A frame the upstream may not send on an open session.
    #[error("unexpected {} frame from upstream", .0.as_str())]
    UnexpectedFrame(Command),
    /// The upstream answered CONNECT with something else than CONNECTED.
    #[error("upstream sent {} instead of CONNECTED", .0.as_str())]
    NotConnected(Command),
    /// CONNECTED names a version the client did not offer.
    #[error("upstream chose a version the client did not offer")]
    VersionNotOffered,
    /// CONNECTED's `heart-beat` is not two integers.
    #[error("malformed heart-beat header from upstream")]
    MalformedHeartBeat,
    /// A frame the session's version cannot carry (the body says why).
    #[error("frame cannot be relayed")]
    NotRelayable,
}
