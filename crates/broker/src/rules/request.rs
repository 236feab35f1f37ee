//! Client frames after CONNECT, checked for the session's version and turned
//! into typed [`Request`]s.
//!
//! Owns the rules that need nothing but the frame and the version: a client
//! command other than CONNECT, the headers each command requires (C2, C4, C5),
//! the ack mode, NACK not in 1.0, and how 1.0 names a subscription by its
//! destination. Does not own the destinations a server serves nor who may use
//! them (asked of the caller's `destinations`), nor anything kept per
//! connection (subscription ids, open transactions, limits).

use super::ProtocolError;
use stompkit_frame::{AckMode, Command, Frame, Version};

/// The `prefetch-count` SUBSCRIBE header.
pub const PREFETCH_COUNT: &str = "prefetch-count";
/// ActiveMQ's durable subscription name (SUBSCRIBE and UNSUBSCRIBE).
pub const SUBSCRIPTION_NAME: &str = "activemq.subscriptionName";

/// Which convention makes a topic SUBSCRIBE durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durable<'f> {
    /// ActiveMQ's: `activemq.subscriptionName` (with CONNECT's `client-id`).
    Named(&'f str),
    /// RabbitMQ's: `durable:true` (or `persistent:true`) and
    /// `auto-delete:false`, named by the subscription `id`.
    ById,
}

/// A client frame that passed the rules, borrowing from it: what the client
/// asks for, in STOMP's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request<'f> {
    /// SEND, maybe inside a transaction.
    Send {
        /// Where to.
        destination: &'f str,
        /// The `transaction` it belongs to.
        transaction: Option<&'f str>,
    },
    /// SUBSCRIBE.
    Subscribe {
        /// Its `id` (in 1.0 without one, the destination).
        id: &'f str,
        /// What to.
        destination: &'f str,
        /// The ack mode.
        ack: AckMode,
        /// The raw `prefetch-count` header, judged by [`prefetch`].
        prefetch: Option<&'f str>,
        /// Durable, by which convention (its headers asked for it).
        durable: Option<Durable<'f>>,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// The subscription's `id` (in 1.0 maybe its destination).
        id: &'f str,
        /// It carries a durable subscription's headers: remove that for good.
        durable: bool,
    },
    /// ACK, maybe inside a transaction.
    Ack {
        /// The message acknowledged.
        target: AckTarget<'f>,
        /// The `transaction` it belongs to.
        transaction: Option<&'f str>,
    },
    /// NACK (1.1+), maybe inside a transaction.
    Nack {
        /// The message refused.
        target: AckTarget<'f>,
        /// The `transaction` it belongs to.
        transaction: Option<&'f str>,
        /// `false` with `requeue:false`: dead-letter rather than redeliver.
        requeue: bool,
    },
    /// BEGIN.
    Begin {
        /// The transaction to open.
        transaction: &'f str,
    },
    /// COMMIT.
    Commit {
        /// The transaction to commit.
        transaction: &'f str,
    },
    /// ABORT.
    Abort {
        /// The transaction to discard.
        transaction: &'f str,
    },
    /// DISCONNECT.
    Disconnect,
}

/// The message an ACK or NACK names (C4): 1.2 the MESSAGE's `ack` value in
/// `id`; 1.1 `message-id` and `subscription`; 1.0 `message-id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckTarget<'f> {
    /// `id` (1.2) or `message-id` (1.0, 1.1).
    pub(crate) id: &'f str,
    /// `subscription` (1.1; optional in 1.0; unused in 1.2).
    pub(crate) subscription: Option<&'f str>,
}

/// Checks a client frame on an open session of `version` and says what it asks.
///
/// `destinations` judges the destination of a SEND or SUBSCRIBE as soon as it
/// is known, before the SUBSCRIBE's other headers: the local session refuses
/// destinations it does not serve and the principal may not use; a relay
/// leaves them to its upstream.
pub(crate) fn check<'f>(
    version: Version,
    frame: &'f Frame,
    destinations: impl FnOnce(Command, &str) -> Result<(), ProtocolError>,
) -> Result<Request<'f>, ProtocolError> {
    match frame.command {
        Command::Send => {
            let destination = frame
                .destination()
                .ok_or(ProtocolError::MissingDestination)?;
            destinations(Command::Send, destination)?;
            Ok(Request::Send {
                destination,
                transaction: frame.transaction(),
            })
        }
        Command::Subscribe => subscribe(version, frame, destinations),
        Command::Unsubscribe => unsubscribe(version, frame),
        Command::Ack | Command::Nack => ack(version, frame),
        Command::Begin => Ok(Request::Begin {
            transaction: transaction(frame)?,
        }),
        Command::Commit => Ok(Request::Commit {
            transaction: transaction(frame)?,
        }),
        Command::Abort => Ok(Request::Abort {
            transaction: transaction(frame)?,
        }),
        Command::Disconnect => Ok(Request::Disconnect),
        Command::Connect | Command::Stomp => Err(ProtocolError::AlreadyConnected),
        Command::Connected | Command::Message | Command::Receipt | Command::Error => {
            Err(ProtocolError::ServerFrame)
        }
    }
}

/// SUBSCRIBE: `destination`, then (C2) `id`, required from 1.1 (a 1.0
/// subscription without one is named by its destination), then the ack mode.
fn subscribe<'f>(
    version: Version,
    frame: &'f Frame,
    destinations: impl FnOnce(Command, &str) -> Result<(), ProtocolError>,
) -> Result<Request<'f>, ProtocolError> {
    let destination = frame
        .destination()
        .ok_or(ProtocolError::MissingDestination)?;
    destinations(Command::Subscribe, destination)?;
    let id = match (frame.id(), version) {
        (Some(id), _) => id,
        (None, Version::V1_0) => destination,
        (None, _) => return Err(ProtocolError::MissingId),
    };
    let ack = frame
        .ack_mode()
        .map_err(|_| ProtocolError::InvalidAckMode)?;
    Ok(Request::Subscribe {
        id,
        destination,
        ack,
        prefetch: frame.get(PREFETCH_COUNT),
        durable: durable(frame),
    })
}

/// The durable-subscription headers of a SUBSCRIBE, in either convention.
fn durable(frame: &Frame) -> Option<Durable<'_>> {
    if let Some(name) = frame.get(SUBSCRIPTION_NAME) {
        return Some(Durable::Named(name));
    }
    (asks_durable(frame) && frame.get("auto-delete") == Some("false")).then_some(Durable::ById)
}

/// RabbitMQ's `durable:true` (or `persistent:true`).
fn asks_durable(frame: &Frame) -> bool {
    frame.get("durable") == Some("true") || frame.get("persistent") == Some("true")
}

/// UNSUBSCRIBE (C5): `id`; 1.0 may name the destination instead.
fn unsubscribe(version: Version, frame: &Frame) -> Result<Request<'_>, ProtocolError> {
    let id = match (frame.id(), version) {
        (Some(id), _) => Some(id),
        (None, Version::V1_0) => frame.destination(),
        (None, _) => None,
    };
    Ok(Request::Unsubscribe {
        id: id.ok_or(ProtocolError::MissingId)?,
        durable: frame.get(SUBSCRIPTION_NAME).is_some() || asks_durable(frame),
    })
}

/// ACK and NACK (C4); NACK is 1.1+.
fn ack(version: Version, frame: &Frame) -> Result<Request<'_>, ProtocolError> {
    let nack = frame.command == Command::Nack;
    if nack && version == Version::V1_0 {
        return Err(ProtocolError::NackIn1_0);
    }
    let target = match version {
        Version::V1_2 => AckTarget {
            id: frame.id().ok_or(ProtocolError::MissingId)?,
            subscription: None,
        },
        _ => {
            let id = frame.message_id().ok_or(ProtocolError::MissingMessageId)?;
            let subscription = frame.subscription();
            if subscription.is_none() && version == Version::V1_1 {
                return Err(ProtocolError::MissingSubscription);
            }
            AckTarget { id, subscription }
        }
    };
    let transaction = frame.transaction();
    Ok(if nack {
        Request::Nack {
            target,
            transaction,
            requeue: frame.get("requeue") != Some("false"),
        }
    } else {
        Request::Ack {
            target,
            transaction,
        }
    })
}

/// The `transaction` BEGIN, COMMIT and ABORT require.
fn transaction(frame: &Frame) -> Result<&str, ProtocolError> {
    frame.transaction().ok_or(ProtocolError::MissingTransaction)
}

/// A SUBSCRIBE's `prefetch-count`: absent is 0 (no limit); otherwise a positive
/// integer, lowered to `max`.
pub(crate) fn prefetch(raw: Option<&str>, max: u32) -> Result<u32, ProtocolError> {
    match raw {
        None => Ok(0),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n.min(max)),
            _ => Err(ProtocolError::InvalidPrefetch),
        },
    }
}
