//! Topics: fan-out of one message to every subscriber.
//!
//! Owns topic delivery: every current subscriber with credit whose selector
//! (if any) selects the message gets it (the others skip it: not dropped),
//! written through the one [`deliver`](super::subscriptions::Subscription::deliver);
//! one with no credit, or whose outbox is full, misses it, and a full one is
//! closed too under `slow_consumer = disconnect` (the policy is `flow.rs`'s;
//! the router closes it after the command). Nothing is held.

use super::Router;
use super::destinations::DestKey;
use super::subscriptions::Payload;
use crate::flow::{self, SlowAction};
use crate::message::Message;
use crate::metrics::DropReason;
use crate::outbox::Outbox;
use std::sync::Arc;

impl Router {
    /// Topic delivery: one encode per subscriber, straight into its outbox.
    pub(super) fn fan_out(
        &mut self,
        key: DestKey,
        mut message: Message,
        publisher: Option<&Arc<Outbox>>,
    ) {
        self.fan_out_to(key, key, &mut message, publisher);
    }

    /// Delivers `message` to the subscribers of `key` (a topic, or a pattern
    /// matching it), its MESSAGEs naming the topic `shown`.
    #[inline]
    pub(super) fn fan_out_to(
        &mut self,
        key: DestKey,
        shown: DestKey,
        message: &mut Message,
        publisher: Option<&Arc<Outbox>>,
    ) {
        let (Some(dest), Some(shown)) = (self.dests[key].as_ref(), self.dests[shown].as_ref())
        else {
            return;
        };
        let slow = self.config.slow_consumer;
        for &sk in &dest.subs {
            let Some(sub) = self.subs[sk].as_mut() else {
                continue;
            };
            if !sub.selects(message) {
                continue;
            }
            if !sub.has_credit() {
                self.counters.dropped.one(DropReason::NoCredit);
                continue;
            }
            if sub.outbox.is_full() {
                self.counters.dropped.one(DropReason::SlowConsumer);
                if flow::slow_topic_subscriber(slow) == SlowAction::Close {
                    self.to_close.push(sub.conn);
                }
                continue;
            }
            // A topic's message is never handed back: nothing to requeue.
            let payload = Payload::Shared(message);
            sub.deliver(sk, &shown.lines, payload, publisher, &mut self.counters);
        }
    }
}
