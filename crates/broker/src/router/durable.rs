//! Durable topic subscriptions, and the router's state restored from the store.
//!
//! Owns a durable subscription's life: it is a queue of its own (named by the
//! subscription's key, its MESSAGEs naming the topic) attached to its topic,
//! which gets a copy of every message published to the topic (a pattern: to
//! every topic it matches, `wildcards.rs`) whether its subscriber is there or not (full: the oldest are dropped, `queues.rs`); one
//! subscriber at a time (a second gets ERROR); a plain UNSUBSCRIBE or a closed
//! connection leaves it collecting, an UNSUBSCRIBE with its headers removes it
//! for good. Which SUBSCRIBE is durable and its key (scope and name) is the
//! session's. A selector is the subscription's (stored with it): only what it
//! selects is collected, and a SUBSCRIBE with another selector (or none)
//! replaces the subscription, discarding what it held (ActiveMQ's way). Also owns [`restore`](Router::restore): queues, their messages
//! and durable subscriptions as the store recovered them.

use super::destinations::{DestKey, Destination, Kind, destination_kind};
use super::selectors::selects;
use super::subscriptions::Wants;
use super::wildcards::topic_kind;
use super::{ConnId, Refusal, Router};
use crate::message::Message;
use crate::outbox::Outbox;
use crate::store::{Recovered, StoredSubscription};
use std::sync::Arc;
use stompkit_selector::Selector;

impl Router {
    /// SUBSCRIBE to the topic `topic` through the durable subscription `key`,
    /// created if new (or replaced, dropping what it held, if it was on
    /// another topic or had another selector). Refused while another
    /// subscriber holds it.
    pub(super) fn subscribe_durable(
        &mut self,
        conn: ConnId,
        id: String,
        topic: &str,
        key: String,
        wants: Wants,
    ) -> Result<(), Refusal> {
        let topic_key = self.destination(topic)?;
        let existing = self.names.get(key.as_str()).copied();
        let Wants {
            ack,
            prefetch,
            selector,
        } = wants;
        let backing = match existing.and_then(|k| self.dests[k].as_ref().map(|d| (k, d))) {
            Some((_, d)) if !d.subs.is_empty() => return Err(Refusal::DurableActive),
            Some((k, d)) if d.durable_of == Some(topic_key) && d.selector == selector => k,
            other => {
                if let Some((k, _)) = other {
                    self.forget_durable(k);
                }
                // Forgetting it may have removed the topic, now unused.
                let topic_key = self.destination(topic)?;
                self.may_create(self.names.len())?;
                let subscription = StoredSubscription {
                    key,
                    destination: topic.to_owned(),
                    selector: selector.as_ref().map(|s| s.as_str().to_owned()),
                };
                self.journal.subscribe(subscription.clone());
                self.attach_durable(&subscription, topic_key, selector)
            }
        };
        if let Some(d) = self.dests[backing].as_mut() {
            d.durable_ack = Some(ack);
        }
        // The subscription's queue holds only what its selector selected.
        let wants = Wants {
            ack,
            prefetch,
            selector: None,
        };
        self.subscribe_to(conn, id, backing, wants);
        Ok(())
    }

    /// Adds the queue of durable subscription `subscription` to topic
    /// `topic`, collecting what `selector` selects.
    fn attach_durable(
        &mut self,
        subscription: &StoredSubscription,
        topic: DestKey,
        selector: Option<Selector>,
    ) -> DestKey {
        let name: Arc<str> = Arc::from(subscription.key.as_str());
        let mut dest = Destination::new(name, Kind::Queue, &subscription.destination);
        dest.durable_of = Some(topic);
        dest.selector = selector;
        let key = self.insert_destination(dest);
        if let Some(t) = self.dests[topic].as_mut() {
            t.durables.push(key);
        }
        key
    }

    /// Removes the durable subscription whose queue is `backing`, with what it
    /// holds (nothing if `backing` is no durable subscription's queue).
    pub(super) fn forget_durable(&mut self, backing: DestKey) {
        if let Some(name) = self.drop_durable(backing) {
            self.journal.unsubscribe(&name);
        }
    }

    /// Removes the durable subscription whose queue is `backing` here only
    /// (recording nothing); returns its key.
    pub(super) fn drop_durable(&mut self, backing: DestKey) -> Option<Arc<str>> {
        let topic = self.dests[backing].as_ref().and_then(|d| d.durable_of)?;
        let d = self.dests[backing].take()?;
        self.names.remove(&d.name);
        self.free_dests.push(backing);
        if let Some(t) = self.dests[topic].as_mut() {
            t.durables.retain(|&k| k != backing);
        }
        self.collect(topic);
        Some(d.name)
    }

    /// A message published to topic `topic`: a copy of its own for each
    /// durable subscription of the topic whose selector (if any) selects it.
    #[inline]
    pub(super) fn copy_to_durable_subscriptions(
        &mut self,
        topic: DestKey,
        message: &Message,
        publisher: Option<&Arc<Outbox>>,
    ) {
        let mut i = 0;
        // `enqueue` never changes a topic's durable subscriptions.
        while let Some(&backing) = self.dests[topic].as_ref().and_then(|t| t.durables.get(i)) {
            i += 1;
            let wanted = self.dests[backing].as_ref().is_some_and(|d| {
                d.selector
                    .as_ref()
                    .is_none_or(|s| selects(s, message, self.next_message))
            });
            if !wanted {
                continue;
            }
            let num = self.next_number();
            // A durable subscription's queue drops its oldest rather than refuse.
            let _ = self.enqueue(backing, message.copy(num), publisher);
        }
    }

    /// Makes the queue of a durable subscription made elsewhere (the store,
    /// or another node), without a subscriber.
    pub(super) fn restore_durable(&mut self, subscription: &StoredSubscription) {
        let kind = topic_kind(&subscription.destination);
        let Ok(topic) = self.forced_destination(&subscription.destination, kind) else {
            tracing::warn!(
                topic = subscription.destination,
                "durable subscription not restored"
            );
            return;
        };
        let selector = restored_selector(subscription);
        self.attach_durable(subscription, topic, selector);
    }

    /// Restores what the store recovered: durable subscriptions first (their
    /// topics are created), then every queue's messages in order. Beyond
    /// `max_destinations` they are restored anyway (logged).
    pub(super) fn restore(&mut self, recovered: Recovered) {
        for subscription in &recovered.subscriptions {
            self.restore_durable(subscription);
        }
        for (queue, messages) in recovered.queues {
            let key = match self.names.get(queue.as_str()) {
                Some(&k) => Ok(k),
                None => self.forced_destination(&queue, Kind::Queue),
            };
            let Ok(key) = key else {
                tracing::warn!(
                    queue,
                    count = messages.len(),
                    "stored messages of no queue skipped"
                );
                continue;
            };
            if let Some(d) = self.dests[key].as_mut() {
                for m in messages {
                    d.messages.push_back(Message::from_stored(m));
                }
            }
        }
        self.next_message = self.next_message.max(recovered.max_id + 1);
    }

    /// The destination `name` of `kind`, created past `max_destinations` if
    /// need be (restoring what is stored must not lose it).
    fn forced_destination(&mut self, name: &str, kind: Kind) -> Result<DestKey, Refusal> {
        if let Some(&k) = self.names.get(name) {
            return Ok(k);
        }
        if destination_kind(name) != Some(kind) {
            return Err(Refusal::BadDestination);
        }
        if self.may_create(self.names.len()).is_err() {
            tracing::warn!(
                name,
                "restoring a stored destination beyond max_destinations"
            );
        }
        Ok(self.insert_destination(Destination::new(Arc::from(name), kind, name)))
    }
}

/// A stored durable subscription's selector, parsed again (it parsed when it
/// was stored; one that no longer does is logged and dropped).
fn restored_selector(subscription: &StoredSubscription) -> Option<Selector> {
    let text = subscription.selector.as_deref()?;
    match Selector::parse(text) {
        Ok(selector) => Some(selector),
        Err(error) => {
            tracing::warn!(
                subscription = %subscription.key.replace('\0', "/"),
                %error,
                "stored selector no longer parses: collecting every message"
            );
            None
        }
    }
}
