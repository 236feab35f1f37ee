//! The protocol errors: every rule a client frame or a session can break, each
//! with the `message` (and, for some, the body) of the ERROR frame that answers it.
//!
//! Owns the wording of the broker's ERROR frames; both sessions send exactly
//! these texts. Does not build frames (`frames.rs`) nor decide when a rule is
//! broken (`request.rs` and the sessions do).

use crate::wildcard::PatternError;
use std::fmt;
use stompkit_selector::SelectorError;
use stompkit_wire::ParseError;

/// A broken protocol rule: the reason a session sends ERROR and closes (S4).
///
/// Small and `Copy`, like the wire parser's [`ParseError`]: [`message`](Self::message)
/// is the ERROR frame's `message` header and [`body`](Self::body) its body text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProtocolError {
    /// The bytes are not a valid frame, or exceed a limit.
    Parse(ParseError),
    /// The first frame is not CONNECT or STOMP.
    ExpectedConnect,
    /// CONNECT's `accept-version` names no version the server speaks (V4).
    NoCommonVersion,
    /// CONNECT's `accept-version` is not a version list (V4).
    MalformedAcceptVersion,
    /// CONNECT's `heart-beat` is not two integers (H1).
    MalformedHeartBeat,
    /// The login was refused.
    AccessRefused,
    /// A frame arrived while the login was being checked.
    FrameBeforeLogin,
    /// No CONNECT arrived within the login timeout.
    LoginTimeout,
    /// The login verdict did not arrive within the login timeout.
    LoginNotVerified,
    /// A frame was started and not finished within the frame timeout.
    FrameTimeout,
    /// No data from the client within its heart-beat interval and grace (H5).
    HeartBeatTimeout,
    /// The server is shutting down.
    ShuttingDown,
    /// A configuration reload removed the session's user.
    UserRemoved,
    /// A configuration reload turned anonymous access off.
    AnonymousRemoved,
    /// A second CONNECT or STOMP on an open session.
    AlreadyConnected,
    /// CONNECTED, MESSAGE, RECEIPT or ERROR sent by a client.
    ServerFrame,
    /// SEND or SUBSCRIBE without `destination`.
    MissingDestination,
    /// A destination this broker does not serve.
    UnsupportedDestination,
    /// A wildcard where it may not be (SEND, queue, misplaced `>`).
    Wildcard(PatternError),
    /// The principal may not SEND to or SUBSCRIBE to the destination.
    Forbidden,
    /// SEND or SUBSCRIBE to `/temp-queue/…` or `/temp-topic/…` (they are
    /// only for `reply-to`).
    TemporaryDestination,
    /// SUBSCRIBE to a reply destination (`/reply-queue/…`, `/reply-topic/…`).
    ReplySubscribe,
    /// SUBSCRIBE with an `id` the broker keeps for temporary destinations.
    ReservedSubscriptionId,
    /// SUBSCRIBE, UNSUBSCRIBE or (1.2) ACK/NACK without `id` (C2, C4, C5).
    MissingId,
    /// SUBSCRIBE with an `ack` other than auto, client, client-individual.
    InvalidAckMode,
    /// SUBSCRIBE with a `prefetch-count` that is not a positive integer.
    InvalidPrefetch,
    /// SUBSCRIBE with a `selector` that does not parse, is too long or
    /// nests too deeply (the body says where and why).
    InvalidSelector(SelectorError),
    /// A second SUBSCRIBE with an `id` in use on the connection.
    DuplicateSubscription,
    /// More subscriptions than `[limits] max_subscriptions`.
    TooManySubscriptions,
    /// An ActiveMQ durable subscription (`activemq.subscriptionName`) on a
    /// connection whose CONNECT had no `client-id`.
    DurableWithoutClientId,
    /// UNSUBSCRIBE of an `id` not subscribed.
    UnknownSubscription,
    /// NACK on a 1.0 session.
    NackIn1_0,
    /// ACK/NACK without `message-id` (1.0, 1.1).
    MissingMessageId,
    /// ACK/NACK without `subscription` (1.1).
    MissingSubscription,
    /// BEGIN, COMMIT or ABORT without `transaction`.
    MissingTransaction,
    /// BEGIN of a transaction already open.
    TransactionAlreadyOpen,
    /// More open transactions than `[limits] max_transactions`.
    TooManyTransactions,
    /// COMMIT, ABORT or a transactional frame naming no open transaction.
    UnknownTransaction,
    /// A transaction over `[limits] max_transaction_frames` or `_bytes`.
    TransactionTooLarge,
}

impl ProtocolError {
    /// The ERROR frame's `message` header.
    pub(crate) fn message(&self) -> &'static str {
        match self {
            ProtocolError::Parse(e) => e.message(),
            ProtocolError::ExpectedConnect => "expected CONNECT or STOMP frame",
            ProtocolError::NoCommonVersion => "no supported protocol version",
            ProtocolError::MalformedAcceptVersion => "malformed accept-version header",
            ProtocolError::MalformedHeartBeat => "malformed heart-beat header",
            ProtocolError::AccessRefused => "access refused",
            ProtocolError::FrameBeforeLogin => "frame received before login completed",
            ProtocolError::LoginTimeout => "login timeout: no CONNECT frame received",
            ProtocolError::LoginNotVerified => "login timeout: login not verified in time",
            ProtocolError::FrameTimeout => "frame not completed in time",
            ProtocolError::HeartBeatTimeout => "heart-beat timeout: no data from client",
            ProtocolError::ShuttingDown => "server shutting down",
            ProtocolError::UserRemoved => "user removed",
            ProtocolError::AnonymousRemoved => "anonymous access removed",
            ProtocolError::AlreadyConnected => "already connected",
            ProtocolError::ServerFrame => "unexpected server frame from client",
            ProtocolError::MissingDestination => "missing destination header",
            ProtocolError::UnsupportedDestination => "unsupported destination",
            ProtocolError::Wildcard(e) => e.message(),
            ProtocolError::Forbidden => "forbidden",
            ProtocolError::TemporaryDestination => {
                "temporary destinations are only for the reply-to header"
            }
            ProtocolError::ReplySubscribe => "reply destinations cannot be subscribed to",
            ProtocolError::ReservedSubscriptionId => "reserved subscription id",
            ProtocolError::MissingId => "missing id header",
            ProtocolError::InvalidAckMode => "invalid ack mode",
            ProtocolError::InvalidPrefetch => "invalid prefetch-count header",
            ProtocolError::InvalidSelector(_) => "invalid selector",
            ProtocolError::DuplicateSubscription => "duplicate subscription id",
            ProtocolError::TooManySubscriptions => "too many subscriptions",
            ProtocolError::DurableWithoutClientId => {
                "durable subscription needs a client-id header on CONNECT"
            }
            ProtocolError::UnknownSubscription => "unknown subscription id",
            ProtocolError::NackIn1_0 => "NACK is not supported in STOMP 1.0",
            ProtocolError::MissingMessageId => "missing message-id header",
            ProtocolError::MissingSubscription => "missing subscription header",
            ProtocolError::MissingTransaction => "missing transaction header",
            ProtocolError::TransactionAlreadyOpen => "transaction already open",
            ProtocolError::TooManyTransactions => "too many open transactions",
            ProtocolError::UnknownTransaction => "unknown transaction",
            ProtocolError::TransactionTooLarge => "transaction too large",
        }
    }

    /// The ERROR frame's body text when it says more than the message; `None`
    /// means the body repeats the message. [`Forbidden`](Self::Forbidden)'s
    /// body names who and where, so the session writes it
    /// ([`forbidden_body`](super::forbidden_body)).
    pub(crate) fn body(&self) -> Option<&'static str> {
        match self {
            ProtocolError::UnsupportedDestination => {
                Some("destinations are /topic/<name> and /queue/<name>")
            }
            ProtocolError::TemporaryDestination => Some(
                "SEND with reply-to:/temp-queue/<name> (or /temp-topic/<name>): replies \
                 arrive on the subscription id /temp-queue/<name> without a SUBSCRIBE",
            ),
            ProtocolError::ReplySubscribe => Some(
                "only the connection that made a reply destination receives from it, \
                 on the subscription id /temp-queue/<name>, without a SUBSCRIBE",
            ),
            ProtocolError::UserRemoved => Some(
                "the configuration was reloaded without this login: log in again as a configured user",
            ),
            ProtocolError::AnonymousRemoved => Some(
                "the configuration was reloaded with anonymous access off: log in as a configured user",
            ),
            ProtocolError::ReservedSubscriptionId => Some(
                "subscription ids starting /temp-queue/ or /temp-topic/ are the broker's \
                 (the subscriptions of temporary destinations)",
            ),
            _ => None,
        }
    }
}

impl ProtocolError {
    /// The ERROR frame's body when it is made for this one error (an
    /// invalid selector's position and reason); else [`body`](Self::body).
    pub(crate) fn detail(&self) -> Option<String> {
        match self {
            ProtocolError::InvalidSelector(e) => Some(e.to_string()),
            _ => None,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ProtocolError {}
