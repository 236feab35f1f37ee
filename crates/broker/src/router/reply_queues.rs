//! Request/reply through temporary destinations, as RabbitMQ defines them.
//!
//! Owns a connection's temporary destinations ([`TempDestinations`]): a SEND
//! with `reply-to:/temp-queue/<name>` (or `/temp-topic/<name>`) gets, on the
//! first use of that `<name>` by its connection, a private reply destination
//! named `/reply-queue/<32 hex digits>` (`/reply-topic/…`), 128 bits from the
//! OS random source, and the `reply-to` header every receiver sees names it
//! instead. The same `<name>` maps to the same reply destination for the
//! connection's life. The owner receives what is sent there on the
//! subscription `/temp-queue/<name>` without any SUBSCRIBE (ack `auto`, so a
//! 1.2 MESSAGE has no `ack` header); the MESSAGE's `destination` is the reply
//! destination's name.
//!
//! - Whoever knows the name may SEND to it: the name is the capability (the
//!   session asks no permission). Nobody may SUBSCRIBE to it, nor SEND or
//!   SUBSCRIBE to `/temp-queue/…` itself (the session refuses those).
//! - A reply queue holds messages while its owner's outbox is full, within the
//!   queue limits, like any queue; a reply topic holds nothing (a message its
//!   owner cannot take is dropped as on any topic). Neither is ever stored:
//!   `persistent:true` is ignored.
//! - It goes with its owner's connection; what it held then, and what is sent
//!   to it later (or to a reply name that never existed), is dropped and
//!   counted (`stompkit_messages_dropped_total{reason="reply_destination_gone"}`).
//! - `[destinations] max_temp_queues` bounds them per connection (queues and
//!   topics together); each also counts toward `max_destinations`.
//! - In a transaction the rewrite happens when the SEND takes effect, at
//!   COMMIT (an aborted transaction makes no reply destination); COMMIT's dry
//!   run checks the limits first, so it is applied whole or refused whole.
//!
//! Routing a reply is the queues' and topics' own (`queues.rs`, `topics.rs`);
//! here is only which destination a SEND names, and their lifecycle.

use super::destinations::{DestKey, Destination, Kind};
use super::subscriptions::Wants;
use super::{ConnId, Refusal, Router};
use crate::metrics::DropReason;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use stompkit_frame::{AckMode, Command, Frame};

/// The SEND header naming where replies go.
const REPLY_TO: &str = "reply-to";
/// A temporary queue, as a SEND's `reply-to` names it.
const TEMP_QUEUE: &str = "/temp-queue/";
/// A temporary topic, as a SEND's `reply-to` names it.
const TEMP_TOPIC: &str = "/temp-topic/";
/// What a temporary queue is called once rewritten.
const REPLY_QUEUE: &str = "/reply-queue/";
/// What a temporary topic is called once rewritten.
const REPLY_TOPIC: &str = "/reply-topic/";
/// Random bytes in a reply destination's name (128 bits).
const SECRET_BYTES: usize = 16;

/// One connection's temporary destinations: `/temp-queue/<name>` or
/// `/temp-topic/<name>` (also the id of the owner's subscription) → the
/// reply destination's name.
pub(super) type TempDestinations = HashMap<Box<str>, Arc<str>>;

/// How the local session judges a frame's destination among the private ones
/// (see [`private_destination`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrivateAccess {
    /// Not a private destination: the usual rules apply.
    Public,
    /// A SEND to a reply destination: allowed without any permission.
    Capability,
    /// A SUBSCRIBE to a reply destination: refused.
    ReplySubscribe,
    /// A SEND or SUBSCRIBE naming `/temp-queue/…` or `/temp-topic/…`: refused
    /// (they are only for `reply-to`).
    Temporary,
}

/// What the local session must do with a `command` to `destination`.
#[inline]
pub fn private_destination(command: Command, destination: &str) -> PrivateAccess {
    if is_reply_destination(destination) {
        if command == Command::Send {
            PrivateAccess::Capability
        } else {
            PrivateAccess::ReplySubscribe
        }
    } else if temporary_kind(destination).is_some() {
        PrivateAccess::Temporary
    } else {
        PrivateAccess::Public
    }
}

/// Whether a subscription id is one the broker gives temporary destinations'
/// subscriptions (`/temp-queue/…`, `/temp-topic/…`): a SUBSCRIBE may not use it.
#[inline]
pub fn is_reserved_subscription_id(id: &str) -> bool {
    temporary_kind(id).is_some()
}

/// Whether `name` is a reply destination's (`/reply-queue/…`, `/reply-topic/…`).
#[inline]
pub(super) fn is_reply_destination(name: &str) -> bool {
    name.starts_with("/reply-") && (name.starts_with(REPLY_QUEUE) || name.starts_with(REPLY_TOPIC))
}

/// `/temp-queue/…` or `/temp-topic/…`: the kind of reply destination it
/// stands for, and its `<name>` (maybe empty).
fn temporary_kind(value: &str) -> Option<(Kind, &str)> {
    if let Some(name) = value.strip_prefix(TEMP_QUEUE) {
        Some((Kind::Queue, name))
    } else {
        value
            .strip_prefix(TEMP_TOPIC)
            .map(|name| (Kind::Topic, name))
    }
}

/// The temporary destination a SEND's `reply-to` names, if any; ERROR for
/// one with an empty `<name>`.
fn temporary_reply_to(frame: &Frame) -> Result<Option<(Kind, &str)>, Refusal> {
    let Some(value) = frame.get(REPLY_TO) else {
        return Ok(None);
    };
    match temporary_kind(value) {
        Some((_, "")) => Err(Refusal::BadReplyTo),
        Some((kind, _)) => Ok(Some((kind, value))),
        None => Ok(None),
    }
}

/// A fresh reply destination name: `prefix` and 128 random bits in
/// hexadecimal.
fn reply_name(prefix: &str) -> Result<String, Refusal> {
    let mut secret = [0u8; SECRET_BYTES];
    OsRng.try_fill_bytes(&mut secret).map_err(|error| {
        tracing::error!(%error, "no random bytes for a reply destination name");
        Refusal::NoRandomness
    })?;
    let mut name = String::with_capacity(prefix.len() + 2 * SECRET_BYTES);
    name.push_str(prefix);
    for byte in secret {
        // Writing into a String cannot fail.
        let _ = write!(name, "{byte:02x}");
    }
    Ok(name)
}

impl Router {
    /// Where a SEND to `name` goes: its destination (created if needed, for a
    /// public one) and whether it is a reply destination. `None` for a reply
    /// destination that does not exist: the message is dropped and counted.
    #[inline]
    pub(super) fn target(&mut self, name: &str) -> Result<Option<(DestKey, bool)>, Refusal> {
        if !is_reply_destination(name) {
            return self.destination(name).map(|key| Some((key, false)));
        }
        match self.names.get(name) {
            Some(&key) => Ok(Some((key, true))),
            None => {
                tracing::debug!("reply to a reply destination that is gone: dropped");
                self.counters
                    .metrics
                    .count_dropped(DropReason::ReplyDestinationGone, 1);
                Ok(None)
            }
        }
    }

    /// A SEND's `reply-to:/temp-queue/<name>` (or `/temp-topic/`) becomes the
    /// name of `conn`'s reply destination for it, created on first use.
    #[inline]
    pub(super) fn rewrite_reply_to(
        &mut self,
        conn: ConnId,
        frame: &mut Frame,
    ) -> Result<(), Refusal> {
        let Some((kind, temp)) = temporary_reply_to(frame)? else {
            return Ok(());
        };
        let existing = self.conns.get(&conn).and_then(|c| c.temps.get(temp));
        let reply = match existing {
            Some(reply) => reply.clone(),
            None => {
                let temp = Box::from(temp);
                self.create_reply_destination(conn, temp, kind)?
            }
        };
        frame.headers_mut().set(REPLY_TO, &reply);
        Ok(())
    }

    /// Makes `conn`'s reply destination for `temp` (within the limits) and its
    /// owner's subscription, whose id is `temp`.
    fn create_reply_destination(
        &mut self,
        conn: ConnId,
        temp: Box<str>,
        kind: Kind,
    ) -> Result<Arc<str>, Refusal> {
        let owned = self.conns.get(&conn).map_or(0, |c| c.temps.len());
        if owned >= self.config.max_temp_queues {
            return Err(Refusal::TooManyTempQueues);
        }
        self.may_create(self.names.len())?;
        let prefix = if kind == Kind::Queue {
            REPLY_QUEUE
        } else {
            REPLY_TOPIC
        };
        let mut name = reply_name(prefix)?;
        while self.names.contains_key(name.as_str()) {
            name = reply_name(prefix)?;
        }
        let name: Arc<str> = Arc::from(name);
        let key = self.insert_destination(Destination::new(name.clone(), kind, &name));
        let wants = Wants {
            ack: AckMode::Auto,
            prefetch: 0,
            selector: None,
        };
        self.subscribe_to(conn, temp.to_string(), key, wants);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.temps.insert(temp, name.clone());
        }
        Ok(name)
    }

    /// Removes a closed connection's reply destinations (their subscriptions
    /// are already gone): what they held is dropped and counted.
    pub(super) fn drop_reply_destinations(&mut self, temps: TempDestinations) {
        for name in temps.into_values() {
            let Some(&key) = self.names.get(&name) else {
                continue;
            };
            if let Some(dest) = self.dests[key].as_mut() {
                let mut dropped = 0;
                // Never persistent: nothing to remove from the store.
                while dest.messages.pop_front().is_some() {
                    dropped += 1;
                }
                self.counters
                    .metrics
                    .count_dropped(DropReason::ReplyDestinationGone, dropped);
            }
            self.collect(key);
        }
    }

    /// COMMIT's dry run of a SEND's `reply-to`: whether the temporary
    /// destination it names exists for `conn` or may be made, counting those
    /// the transaction makes before it (`made`) and the `destinations` that
    /// would exist (increased by one it makes).
    pub(super) fn plan_reply_to<'f>(
        &self,
        conn: ConnId,
        frame: &'f Frame,
        made: &mut HashSet<&'f str>,
        destinations: &mut usize,
    ) -> Result<(), Refusal> {
        let Some((_, temp)) = temporary_reply_to(frame)? else {
            return Ok(());
        };
        let owned = self.conns.get(&conn).map(|c| &c.temps);
        if owned.is_some_and(|t| t.contains_key(temp)) || made.contains(temp) {
            return Ok(());
        }
        if owned.map_or(0, HashMap::len) + made.len() >= self.config.max_temp_queues {
            return Err(Refusal::TooManyTempQueues);
        }
        self.may_create(*destinations)?;
        *destinations += 1;
        made.insert(temp);
        Ok(())
    }

    /// COMMIT's dry run of a SEND to `name`: whether it is a reply
    /// destination that does not exist (the SEND will be dropped, never
    /// refused).
    pub(super) fn is_missing_reply_destination(&self, name: &str) -> bool {
        is_reply_destination(name) && !self.names.contains_key(name)
    }
}

#[cfg(test)]
mod tests;
