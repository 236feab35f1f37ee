//! Queues: where held messages live, whether a queue admits one more, and
//! round-robin dispatch.
//!
//! Owns [`QueueMessages`] (a queue's held messages and their bytes: the one
//! place a queue's storage lives, so a durable store can go behind it),
//! [`admission`] (the queue limits and the overflow policy, used by SEND and by
//! COMMIT's check alike), enqueueing a SEND, dispatch to subscribers with credit
//! and room, and the one [`requeue`](Router::requeue) (NACK, UNSUBSCRIBE and a
//! closed connection put messages back through it). Writing a MESSAGE is
//! `subscriptions.rs`'s; dispatch on a queue with a selective subscriber is
//! `selectors.rs`'s.

use super::acks::Unacked;
use super::dead_letters::DeadLetter;
use super::destinations::{DestKey, Destination, Kind};
use super::subscriptions::{Payload, SubKey, Subscription};
use super::wildcards::sent_to_lines;
use super::{Refusal, Router, RouterConfig};
use crate::config::QueueOverflow;
use crate::message::Message;
use crate::metrics::{DropReason, Metrics};
use crate::outbox::Outbox;
use std::collections::VecDeque;
use std::sync::Arc;

/// A queue's held messages, oldest first, and the bytes they hold (headers and
/// bodies, [`Message::len`]).
#[derive(Debug, Default)]
pub(super) struct QueueMessages {
    messages: VecDeque<Message>,
    bytes: usize,
}

impl QueueMessages {
    /// No messages.
    pub(super) fn new() -> QueueMessages {
        QueueMessages::default()
    }

    /// Messages held.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether none is held.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Bytes held.
    #[inline]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds a new message, last.
    #[inline]
    pub(super) fn push_back(&mut self, message: Message) {
        self.bytes += message.len();
        self.messages.push_back(message);
    }

    /// Puts a message back first (requeued, or not taken after all).
    #[inline]
    pub(super) fn push_front(&mut self, message: Message) {
        self.bytes += message.len();
        self.messages.push_front(message);
    }

    /// Takes the oldest message (to deliver it, or to drop it).
    #[inline]
    pub(super) fn pop_front(&mut self) -> Option<Message> {
        let message = self.messages.pop_front()?;
        self.bytes -= message.len();
        Some(message)
    }

    /// Takes the newest message (a refused SEND's).
    pub(super) fn pop_back(&mut self) -> Option<Message> {
        let message = self.messages.pop_back()?;
        self.bytes -= message.len();
        Some(message)
    }

    /// The newest message.
    pub(super) fn back_mut(&mut self) -> Option<&mut Message> {
        self.messages.back_mut()
    }

    /// The message at `at` (0: the oldest).
    #[inline]
    pub(super) fn get(&self, at: usize) -> Option<&Message> {
        self.messages.get(at)
    }

    /// The message at `at`, to mark it.
    #[inline]
    pub(super) fn get_mut(&mut self, at: usize) -> Option<&mut Message> {
        self.messages.get_mut(at)
    }

    /// Takes the message at `at` (a selective subscriber's, from behind
    /// messages it does not select).
    pub(super) fn remove(&mut self, at: usize) -> Option<Message> {
        let message = self.messages.remove(at)?;
        self.bytes -= message.len();
        Some(message)
    }

    /// Puts a message back at `at` (not taken after all).
    pub(super) fn insert(&mut self, at: usize, message: Message) {
        self.bytes += message.len();
        self.messages.insert(at, message);
    }
}

/// Whether a queue admits a message that takes it to `messages` held and
/// `bytes`, by the queue limits and the overflow policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// Within the limits.
    Fits,
    /// Over them; the message is refused (`queue_overflow = refuse`).
    Refuse,
    /// Over them; the oldest messages are dropped until it fits
    /// (`queue_overflow = drop-oldest`).
    DropOldest,
}

/// The one place a queue's limits are compared (see [`Admission`]), for a
/// queue whose overflow policy is `overflow` ([`Destination::overflow`]).
#[inline]
pub(super) fn admission(
    config: &RouterConfig,
    overflow: QueueOverflow,
    messages: usize,
    bytes: usize,
) -> Admission {
    if messages <= config.queue_max_messages && bytes <= config.queue_max_bytes {
        return Admission::Fits;
    }
    match overflow {
        QueueOverflow::Refuse => Admission::Refuse,
        QueueOverflow::DropOldest => Admission::DropOldest,
    }
}

impl Router {
    /// A SEND to a queue: recorded for the store (if persistent), offered to
    /// its subscribers, then held if the queue admits it (see [`admission`]).
    pub(super) fn enqueue(
        &mut self,
        key: DestKey,
        message: Message,
        publisher: Option<&Arc<Outbox>>,
    ) -> Result<(), Refusal> {
        if self.in_jetstream(key) && message.token.is_none() {
            self.enqueue_clustered(key, &message);
            return Ok(());
        }
        let Some(dest) = self.dests[key].as_mut() else {
            return Ok(());
        };
        let num = message.num;
        self.journal.put(&dest.name, &message);
        dest.messages.push_back(message);
        if dest.selective > 0 {
            // Every earlier message was offered to every subscriber able to
            // take it, and any change since dispatched again: only the new
            // one can go now (`selectors.rs`).
            let newest = dest.messages.len() - 1;
            self.pump_selective(key, newest, publisher);
        } else {
            self.pump_from(key, publisher);
        }
        let Some(dest) = self.dests[key].as_mut() else {
            return Ok(());
        };
        let overflow = dest.overflow(&self.config);
        let held = &mut dest.messages;
        let result = match admission(&self.config, overflow, held.len(), held.bytes()) {
            Admission::Fits => Ok(()),
            Admission::Refuse => {
                // Nobody could take it: the new message is the last one held.
                if let Some(m) = held.pop_back() {
                    self.journal.remove(&m);
                }
                Err(Refusal::QueueFull)
            }
            Admission::DropOldest => {
                while admission(&self.config, overflow, held.len(), held.bytes()) != Admission::Fits
                    && let Some(m) = held.pop_front()
                {
                    self.journal.remove(&m);
                    self.counters.dropped.one(DropReason::QueueFull);
                }
                if dest.durable_of.is_some() && !dest.overflowed {
                    dest.overflowed = true;
                    tracing::warn!(
                        subscription = %dest.name.replace('\0', "/"),
                        "durable subscription full while its subscriber is away: \
                         dropping its oldest messages (counted as dropped)"
                    );
                }
                Ok(())
            }
        };
        let held = &mut dest.messages;
        // Held (nobody could take it): keep only its own bytes.
        if let Some(m) = held.back_mut()
            && m.num == num
        {
            m.compact();
        }
        // Refusing or dropping its only message may leave the queue unused.
        self.collect(key);
        result
    }

    /// Queue dispatch: hand held messages round-robin to subscribers with
    /// credit (past messages none selects, if one has a selector).
    pub(super) fn pump(&mut self, key: DestKey) {
        match self.dests[key].as_ref() {
            Some(d) if d.selective > 0 && d.kind == Kind::Queue => {
                self.pump_selective(key, 0, None)
            }
            _ => self.pump_from(key, None),
        }
    }

    /// [`pump`](Router::pump) without selectors, on behalf of a publisher,
    /// who is paused if a receiving outbox is congested.
    fn pump_from(&mut self, key: DestKey, publisher: Option<&Arc<Outbox>>) {
        let shows_sent_to = self.shows_sent_to(key);
        let Some(dest) = self.dests[key].as_mut() else {
            return;
        };
        if dest.kind != Kind::Queue {
            return;
        }
        while !dest.messages.is_empty() && !dest.subs.is_empty() {
            let Some((idx, sk)) = next_subscriber(dest, &self.subs) else {
                break;
            };
            dest.next = idx + 1;
            let Some(sub) = self.subs[sk].as_mut() else {
                break;
            };
            let Some(mut message) = dest.messages.pop_front() else {
                break;
            };
            if message.expired(self.now) {
                self.journal.remove(&message);
                self.counters.expired += 1;
                continue;
            }
            message.deliveries += 1;
            let (persistent, num) = (message.persistent, message.num);
            let token = message.token.clone();
            let own = shows_sent_to.then(|| sent_to_lines(&message, sub.version));
            let lines = own.as_ref().and_then(Option::as_ref).unwrap_or(&dest.lines);
            let payload = Payload::Held(message);
            match sub.deliver(sk, lines, payload, publisher, &mut self.counters) {
                Some(mut message) => {
                    message.deliveries -= 1;
                    dest.messages.push_front(message);
                }
                None if persistent || token.is_some() => {
                    self.journal
                        .delivered_or_done(num, persistent, token, sub.ack);
                }
                None => {}
            }
        }
    }

    /// The one requeue: puts `returned` deliveries' queue messages back at the
    /// head of `dest`'s queue, in their order, marked `redelivered`, and counts
    /// them (topic deliveries hold no message and are just settled). A
    /// message NACKed with `requeue:false` (`requeue` false), or whose last
    /// delivery reached `max_deliveries`, is dead-lettered instead.
    pub(super) fn requeue(
        &mut self,
        dest: DestKey,
        returned: impl DoubleEndedIterator<Item = Unacked>,
        requeue: bool,
    ) {
        let Some(d) = self.dests[dest].as_mut() else {
            return;
        };
        let max = self.config.max_deliveries;
        let mut requeued = 0;
        let mut dead = Vec::new();
        for u in returned.rev() {
            let Some(mut m) = u.message else { continue };
            if !requeue {
                dead.push((m, DeadLetter::Nack));
            } else if max > 0 && m.deliveries >= max {
                dead.push((m, DeadLetter::MaxDeliveries));
            } else {
                m.redelivered = true;
                d.messages.push_front(m);
                requeued += 1;
            }
        }
        Metrics::add(&self.counters.metrics.redelivered, requeued);
        // Dead letters go in their delivery order.
        for (m, reason) in dead.into_iter().rev() {
            self.dead_letter(dest, m, reason);
        }
    }
}

/// The next subscriber in round-robin order with credit and room in its
/// outbox (index in `dest.subs`, key). A full outbox is skipped and marked
/// blocked: its writer reports when it drained (`flow.rs`).
#[inline]
fn next_subscriber(dest: &Destination, subs: &[Option<Subscription>]) -> Option<(usize, SubKey)> {
    let n = dest.subs.len();
    for i in 0..n {
        let idx = (dest.next + i) % n;
        let sk = dest.subs[idx];
        if let Some(sub) = subs[sk].as_ref()
            && sub.has_credit()
            && !sub.outbox.is_closing()
        {
            if sub.outbox.is_full() {
                sub.outbox.mark_blocked();
                continue;
            }
            return Some((idx, sk));
        }
    }
    None
}
