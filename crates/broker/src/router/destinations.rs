//! The destination table: which destinations exist, of which kind.
//!
//! Owns [`Destination`] (its name, kind, pre-encoded `destination:` lines, its
//! subscribers and, for a queue, its held messages), creation on first use
//! within `max_destinations`, removal once unused, and which names are
//! destinations at all. It does not route: topics and queues do that.

use super::queues::QueueMessages;
use super::subscriptions::SubKey;
use super::wildcards::topic_kind;
use super::{Refusal, Router, RouterConfig};
use crate::config::QueueOverflow;
use crate::message::header_line;
use std::sync::Arc;
use stompkit_frame::{AckMode, Version, names};
use stompkit_selector::Selector;

/// A destination's slot in the router.
pub(super) type DestKey = usize;

/// What a destination does with a message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    /// Every subscriber gets every message; nothing is held.
    Topic,
    /// Each message goes to one subscriber; held while none can take it.
    Queue,
    /// A topic pattern (`wildcards.rs`): its subscribers get the messages of
    /// every topic it matches; nothing is published to it.
    Wildcard,
}

/// One destination.
pub(super) struct Destination {
    /// Its name (shared with the router's name table).
    pub(super) name: Arc<str>,
    /// Topic or queue.
    pub(super) kind: Kind,
    /// `destination:...\n` per version.
    pub(super) lines: [Box<[u8]>; 3],
    /// Its subscriptions, in subscription order.
    pub(super) subs: Vec<SubKey>,
    /// Messages held (queues only; always empty for a topic).
    pub(super) messages: QueueMessages,
    /// Queues: where the next round-robin turn starts in `subs`.
    pub(super) next: usize,
    /// A durable subscription's queue: the topic it collects from (its name is
    /// the subscription's key; its `lines` name the topic).
    pub(super) durable_of: Option<DestKey>,
    /// A topic: the queues of its durable subscriptions.
    pub(super) durables: Vec<DestKey>,
    /// A durable subscription's queue dropped its oldest message (logged once).
    pub(super) overflowed: bool,
    /// How many of `subs` have a selector (queues dispatch past a message
    /// none of them selects, `selectors.rs`).
    pub(super) selective: usize,
    /// Bumped whenever a subscription joins (from 1): a held message none of
    /// the subscribers selected at this generation is not offered again
    /// before the next (`selectors.rs`).
    pub(super) joined: u64,
    /// A durable subscription's selector: only what it selects is collected.
    pub(super) selector: Option<Selector>,
    /// A durable subscription's ack mode: its last subscriber's since the
    /// broker started (the admin API shows it while none is subscribed).
    pub(super) durable_ack: Option<AckMode>,
}

impl Destination {
    /// A new destination named `name` whose MESSAGEs name `shown`.
    pub(super) fn new(name: Arc<str>, kind: Kind, shown: &str) -> Destination {
        Destination {
            lines: Version::ALL.map(|v| header_line(names::DESTINATION, shown, v)),
            name,
            kind,
            subs: Vec::new(),
            messages: QueueMessages::new(),
            next: 0,
            durable_of: None,
            durables: Vec::new(),
            overflowed: false,
            selective: 0,
            joined: 1,
            selector: None,
            durable_ack: None,
        }
    }

    /// What it does when full: a durable subscription's queue drops its
    /// oldest (one absent subscriber never blocks publishers); any other
    /// queue follows `queue_overflow`.
    pub(super) fn overflow(&self, config: &RouterConfig) -> QueueOverflow {
        match self.durable_of {
            Some(_) => QueueOverflow::DropOldest,
            None => config.queue_overflow,
        }
    }

    /// Whether nothing needs it any more: no subscriber, no message held, no
    /// durable subscription attached, not a durable subscription itself.
    fn unused(&self) -> bool {
        self.subs.is_empty()
            && self.messages.is_empty()
            && self.durables.is_empty()
            && self.durable_of.is_none()
    }
}

impl Router {
    /// The destination named `name`, created if it does not exist yet.
    pub(super) fn destination(&mut self, name: &str) -> Result<DestKey, Refusal> {
        if let Some(&k) = self.names.get(name) {
            return Ok(k);
        }
        let kind = destination_kind(name).ok_or(Refusal::BadDestination)?;
        self.may_create(self.names.len())?;
        Ok(self.insert_destination(Destination::new(Arc::from(name), kind, name)))
    }

    /// Adds `dest` to the table (no limit checked).
    pub(super) fn insert_destination(&mut self, dest: Destination) -> DestKey {
        let name = dest.name.clone();
        let key = match self.free_dests.pop() {
            Some(k) => {
                self.dests[k] = Some(dest);
                k
            }
            None => {
                self.dests.push(Some(dest));
                self.dests.len() - 1
            }
        };
        if self.dests[key]
            .as_ref()
            .is_some_and(|d| d.kind == Kind::Wildcard)
        {
            self.wildcards.insert(&name, key);
        }
        self.names.insert(name, key);
        key
    }

    /// Whether one more destination may be created while `count` exist.
    pub(super) fn may_create(&self, count: usize) -> Result<(), Refusal> {
        if count >= self.config.max_destinations {
            return Err(Refusal::TooManyDestinations);
        }
        Ok(())
    }

    /// Removes a destination nothing needs any more.
    pub(super) fn collect(&mut self, key: DestKey) {
        let unused = matches!(&self.dests[key], Some(d) if d.unused());
        if unused && let Some(d) = self.dests[key].take() {
            if d.kind == Kind::Wildcard {
                self.wildcards.remove(&d.name);
            }
            self.names.remove(&d.name);
            self.free_dests.push(key);
        }
    }
}

/// `/topic/<name>` (a pattern if it has a wildcard segment) or
/// `/queue/<name>` with a non-empty name; anything else is `None`.
pub(super) fn destination_kind(name: &str) -> Option<Kind> {
    if name.strip_prefix("/topic/").is_some_and(|n| !n.is_empty()) {
        Some(topic_kind(name))
    } else if name.strip_prefix("/queue/").is_some_and(|n| !n.is_empty()) {
        Some(Kind::Queue)
    } else {
        None
    }
}

/// Whether `name` is a destination the broker serves.
pub fn is_valid_destination(name: &str) -> bool {
    destination_kind(name).is_some()
}
