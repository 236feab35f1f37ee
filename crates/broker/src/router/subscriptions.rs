//! Subscriptions and the one delivery path.
//!
//! Owns [`Subscription`] (its connection, outbox, version, ack mode, credit,
//! selector, pre-encoded `subscription:` line and unacknowledged deliveries), SUBSCRIBE
//! and its removal (UNSUBSCRIBE, or its connection closing: unacked queue
//! messages go back to the queue), and [`Subscription::deliver`]: every MESSAGE
//! the router writes goes through it, topics and queues alike. It does not pick
//! whom to deliver to: topics and queues do.

use super::acks::Unacked;
use super::destinations::DestKey;
use super::{ConnId, Counters, Refusal, Router};
use crate::message::{Delivery, Message, encode_delivery, header_line};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::Arc;
use stompkit_frame::{AckMode, Version, names};
use stompkit_selector::Selector;

/// A subscription's slot in the router.
pub(super) type SubKey = usize;

/// One subscription.
pub(super) struct Subscription {
    /// Its connection.
    pub(super) conn: ConnId,
    /// Its connection's outbox.
    pub(super) outbox: Arc<Outbox>,
    /// Its connection's version.
    pub(super) version: Version,
    /// Its destination.
    pub(super) dest: DestKey,
    /// Its ack mode.
    pub(super) ack: AckMode,
    /// Most unacked deliveries (client ack modes).
    pub(super) prefetch: u32,
    /// `subscription:...\n` for its version.
    pub(super) line: Box<[u8]>,
    /// Deliveries awaiting an ACK, in delivery order.
    pub(super) unacked: VecDeque<Unacked>,
    /// Deliveries awaiting an ACK so far: the tag of the next one.
    pub(super) next_tag: u64,
    /// Only the messages it selects are delivered to it (`selectors.rs`).
    pub(super) selector: Option<Selector>,
    /// MESSAGE frames written to it (the admin API's per-connection count).
    pub(super) delivered: u64,
}

/// What a SUBSCRIBE asks of its deliveries.
pub(super) struct Wants {
    /// Its ack mode.
    pub(super) ack: AckMode,
    /// Most unacked deliveries (client ack modes; 0: the default).
    pub(super) prefetch: u32,
    /// Its selector.
    pub(super) selector: Option<Selector>,
}

/// What a delivery writes: a topic's message, shared by all its subscribers,
/// or a queue's, which a client-ack subscription then holds until acknowledged.
#[expect(
    clippy::large_enum_variant,
    reason = "boxing would allocate per delivery; a payload lives for one inlined call"
)]
pub(super) enum Payload<'m> {
    /// A topic's message (a client-ack subscription keeps only its number).
    Shared(&'m mut Message),
    /// A queue's message, taken from the queue.
    Held(Message),
}

impl Payload<'_> {
    #[inline]
    fn message(&mut self) -> &mut Message {
        match self {
            Payload::Shared(m) => m,
            Payload::Held(m) => m,
        }
    }

    #[inline]
    fn into_held(self) -> Option<Message> {
        match self {
            Payload::Shared(_) => None,
            Payload::Held(m) => Some(m),
        }
    }
}

impl Subscription {
    /// Whether it may take one more message (auto, or client modes below prefetch).
    #[inline]
    pub(super) fn has_credit(&self) -> bool {
        self.ack == AckMode::Auto || self.unacked.len() < self.prefetch as usize
    }

    /// The unacked deliveries an ACK of the one at `pos` settles: up to it
    /// (`client`, cumulative) or just it.
    pub(super) fn settled_by(&self, pos: usize) -> RangeInclusive<usize> {
        let first = if self.ack == AckMode::Client { 0 } else { pos };
        first..=pos
    }

    /// Writes one MESSAGE for `payload` into this subscription's outbox (`key`
    /// is this subscription's, `lines` its destination's), counts it, pauses
    /// `publisher` if the outbox is now congested (`flow.rs`) and, in a client
    /// ack mode, records the delivery as unacked (a queue message with it).
    /// Returns a queue message back when nothing was written (closing).
    #[inline]
    pub(super) fn deliver(
        &mut self,
        key: SubKey,
        lines: &[Box<[u8]>; 3],
        mut payload: Payload<'_>,
        publisher: Option<&Arc<Outbox>>,
        counters: &mut Counters,
    ) -> Option<Message> {
        let delivery = Delivery {
            destination_line: &lines[self.version as usize],
            subscription_line: &self.line,
            version: self.version,
            ack: (self.version == Version::V1_2 && self.ack != AckMode::Auto)
                .then_some((self.next_tag, key)),
        };
        let message = payload.message();
        let mut result = (0, false);
        if !self
            .outbox
            .append(|buf| result = encode_delivery(buf, message, &delivery))
        {
            return payload.into_held();
        }
        counters.delivered += 1;
        self.delivered += 1;
        count_dropped_headers(&counters.metrics, message, result);
        if let Some(publisher) = publisher
            && self.outbox.is_congested()
        {
            self.outbox.park(publisher);
        }
        if self.ack != AckMode::Auto {
            let num = message.num;
            let message = payload.into_held().map(|mut m| {
                m.compact();
                m
            });
            self.unacked.push_back(Unacked {
                num,
                tag: self.next_tag,
                message,
            });
            self.next_tag += 1;
        }
        None
    }
}

impl Router {
    /// SUBSCRIBE: adds a subscription; a queue dispatches to it at once.
    pub(super) fn subscribe(
        &mut self,
        conn: ConnId,
        id: String,
        destination: &str,
        wants: Wants,
    ) -> Result<(), Refusal> {
        let dest = self.destination(destination)?;
        self.subscribe_to(conn, id, dest, wants);
        Ok(())
    }

    /// Adds a subscription of `conn` to the destination `dest`.
    pub(super) fn subscribe_to(&mut self, conn: ConnId, id: String, dest: DestKey, wants: Wants) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Wants {
            ack,
            prefetch,
            selector,
        } = wants;
        let selective = selector.is_some();
        let sub = Subscription {
            conn,
            outbox: c.outbox.clone(),
            version: c.version,
            dest,
            ack,
            prefetch: if prefetch == 0 {
                self.config.default_prefetch
            } else {
                prefetch
            },
            line: header_line(names::SUBSCRIPTION, &id, c.version),
            unacked: VecDeque::new(),
            next_tag: 0,
            selector,
            delivered: 0,
        };
        let key = match self.free_subs.pop() {
            Some(k) => {
                self.subs[k] = Some(sub);
                k
            }
            None => {
                self.subs.push(Some(sub));
                self.subs.len() - 1
            }
        };
        if let Some(old) = c.subs.insert(id, key) {
            // The session rejects duplicates; be safe anyway.
            self.remove_subscription(old);
        }
        if let Some(d) = self.dests[dest].as_mut() {
            d.subs.push(key);
            d.selective += usize::from(selective);
            d.joined += 1;
        }
        Metrics::add(&self.counters.metrics.subscriptions, 1);
        self.subscribers_changed(dest, true);
        self.pump(dest);
    }

    /// Removes a subscription: its unacked queue messages are requeued, and
    /// its destination is removed if now unused.
    pub(super) fn remove_subscription(&mut self, key: SubKey) {
        if let Some(sub) = self.detach_subscription(key) {
            self.settle_removed(sub);
        }
    }

    /// Removes several subscriptions of one connection: all are detached
    /// before any unacked message is requeued, so none goes to another of
    /// them.
    pub(super) fn remove_subscriptions(&mut self, keys: &[SubKey]) {
        let removed: Vec<Subscription> = keys
            .iter()
            .filter_map(|&k| self.detach_subscription(k))
            .collect();
        for sub in removed {
            self.settle_removed(sub);
        }
    }

    /// Takes a subscription out of the router and its destination.
    fn detach_subscription(&mut self, key: SubKey) -> Option<Subscription> {
        let sub = self.subs[key].take()?;
        self.free_subs.push(key);
        if let Some(c) = self.conns.get_mut(&sub.conn) {
            c.delivered_before += sub.delivered;
        }
        self.counters
            .metrics
            .subscriptions
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(d) = self.dests[sub.dest].as_mut()
            && let Some(pos) = d.subs.iter().position(|&k| k == key)
        {
            d.selective -= usize::from(sub.selector.is_some());
            d.subs.remove(pos);
            if d.next > pos {
                d.next -= 1;
            }
        }
        Some(sub)
    }

    /// A detached subscription's unacked queue messages go back; its
    /// destination dispatches again, or goes if now unused.
    fn settle_removed(&mut self, sub: Subscription) {
        self.requeue(sub.dest, sub.unacked.into_iter(), true);
        self.pump(sub.dest);
        self.subscribers_changed(sub.dest, false);
        self.collect(sub.dest);
    }
}

/// Counts (and logs once per message and version) user headers a receiver's
/// version could not carry.
#[inline]
fn count_dropped_headers(metrics: &Metrics, message: &Message, (dropped, new): (u32, bool)) {
    if dropped > 0 {
        Metrics::add(&metrics.dropped_headers, u64::from(dropped));
        if new {
            tracing::warn!(
                message_id = message.num,
                dropped,
                "dropped headers a receiver's STOMP version cannot carry"
            );
        }
    }
}
