//! Message selectors on subscriptions: which messages a subscription takes,
//! and queue dispatch past messages no current subscriber selects.
//!
//! Owns what a SUBSCRIBE's `selector` (ActiveMQ's JMS message selectors,
//! `stompkit-selector`; parsed once by the session) means to routing: a topic
//! subscriber skips a message its selector does not select (not counted as
//! dropped); a durable subscription collects only what its selector selects;
//! a queue holds a message until a subscriber that selects it can take it,
//! and dispatches the messages behind it meanwhile. Queues without a
//! selective subscriber keep the plain round-robin of `queues.rs`.
//!
//! A selector reads the message's SEND headers, with `message-id` the number
//! the broker gives it.

use super::Router;
use super::destinations::{DestKey, Destination};
use super::subscriptions::{Payload, SubKey, Subscription};
use crate::message::Message;
use crate::outbox::Outbox;
use std::cell::OnceCell;
use std::sync::Arc;
use stompkit_frame::names;
use stompkit_selector::Selector;

/// Whether `selector` selects `message` delivered as number `num` (its
/// `message-id`).
pub(super) fn selects(selector: &Selector, message: &Message, num: u64) -> bool {
    let id = OnceCell::new();
    let headers = message.headers();
    selector.matches(|name| {
        if name == names::MESSAGE_ID {
            Some(id.get_or_init(|| num.to_string()).as_str())
        } else {
            headers.get(name)
        }
    })
}

impl Subscription {
    /// Whether it takes `message`: it has no selector, or its selector
    /// selects the message.
    #[inline]
    pub(super) fn selects(&self, message: &Message) -> bool {
        self.selector
            .as_ref()
            .is_none_or(|s| selects(s, message, message.num))
    }
}

impl Router {
    /// Queue dispatch when a subscriber has a selector: each held message
    /// from position `from` on, oldest first, goes to the next subscriber in
    /// round-robin order that can take it and selects it; one that none
    /// selects stays where it is, and the messages behind it go on. Stops
    /// when no subscriber can take anything. A message no subscriber selects
    /// (with credit or without) is marked and not evaluated again until a
    /// subscription joins, so a backlog nobody wants costs one comparison per
    /// message, not a selector per subscriber. Kept out of line: queues
    /// without selectors never pay for it.
    #[inline(never)]
    pub(super) fn pump_selective(
        &mut self,
        key: DestKey,
        from: usize,
        publisher: Option<&Arc<Outbox>>,
    ) {
        let Some(dest) = self.dests[key].as_mut() else {
            return;
        };
        let mut at = from;
        while let Some(message) = dest.messages.get(at) {
            if message.expired(self.now) {
                if let Some(m) = dest.messages.remove(at) {
                    self.journal.remove(&m);
                    self.counters.expired += 1;
                }
                continue;
            }
            if message.unwanted_at == dest.joined {
                at += 1;
                continue;
            }
            let (idx, sk) = match choose(dest, &self.subs, message) {
                Choice::To(idx, sk) => (idx, sk),
                Choice::NobodyFree => break,
                Choice::Later => {
                    at += 1;
                    continue;
                }
                Choice::Unwanted => {
                    if let Some(m) = dest.messages.get_mut(at) {
                        m.unwanted_at = dest.joined;
                    }
                    at += 1;
                    continue;
                }
            };
            dest.next = idx + 1;
            let (Some(sub), Some(mut message)) = (self.subs[sk].as_mut(), dest.messages.remove(at))
            else {
                break;
            };
            message.deliveries += 1;
            let (persistent, num) = (message.persistent, message.num);
            let token = message.token.clone();
            let payload = Payload::Held(message);
            match sub.deliver(sk, &dest.lines, payload, publisher, &mut self.counters) {
                // Not written (its connection is closing, so it is skipped next).
                Some(mut message) => {
                    message.deliveries -= 1;
                    dest.messages.insert(at, message);
                }
                None if persistent || token.is_some() => {
                    self.journal
                        .delivered_or_done(num, persistent, token, sub.ack);
                }
                None => {}
            }
        }
    }
}

/// Where one held message goes now.
enum Choice {
    /// To this subscriber (index in `dest.subs`, key).
    To(usize, SubKey),
    /// No subscriber can take any message now.
    NobodyFree,
    /// A subscriber that cannot take it now selects it: it waits.
    Later,
    /// No current subscriber selects it.
    Unwanted,
}

/// The next subscriber in round-robin order with credit and room that
/// selects `message`. A full outbox is skipped and marked blocked, as in
/// `queues.rs`.
fn choose(dest: &Destination, subs: &[Option<Subscription>], message: &Message) -> Choice {
    let n = dest.subs.len();
    let mut any_free = false;
    for i in 0..n {
        let idx = (dest.next + i) % n;
        let sk = dest.subs[idx];
        let Some(sub) = subs[sk].as_ref() else {
            continue;
        };
        if !can_take(sub) {
            if sub.outbox.is_full() {
                sub.outbox.mark_blocked();
            }
            continue;
        }
        any_free = true;
        if sub.selects(message) {
            return Choice::To(idx, sk);
        }
    }
    let waits = || {
        dest.subs
            .iter()
            .filter_map(|&sk| subs[sk].as_ref())
            .any(|sub| !can_take(sub) && sub.selects(message))
    };
    if !any_free {
        Choice::NobodyFree
    } else if waits() {
        Choice::Later
    } else {
        Choice::Unwanted
    }
}

/// Whether a subscriber can take a message now: credit, and an open outbox
/// with room.
fn can_take(sub: &Subscription) -> bool {
    sub.has_credit() && !sub.outbox.is_closing() && !sub.outbox.is_full()
}
