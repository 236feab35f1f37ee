//! Dead letters: a message that will not be redelivered moves to its queue's
//! dead-letter queue.
//!
//! Owns where a dead letter goes (`/queue/<name>.dlq` for `/queue/<name>`; for
//! a durable subscription to `/topic/<name>`, `/queue/<name>.dlq`), what it
//! carries (the message's headers plus `original-destination`,
//! `delivery-count` and `dead-letter-reason`), and that the move is one store
//! unit (the old message removed, the dead letter put). Whether a message is
//! dead-lettered is `queues.rs`'s `requeue`. Expired messages are dropped, not
//! dead-lettered.

use super::Router;
use super::destinations::DestKey;
use crate::message::Message;
use crate::metrics::{DropReason, Metrics};
use stompkit_frame::names;

/// Why a message is dead-lettered (its `dead-letter-reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DeadLetter {
    /// NACKed with `requeue:false`.
    Nack,
    /// Its last delivery reached `max_deliveries`.
    MaxDeliveries,
}

impl DeadLetter {
    fn reason(self) -> &'static str {
        match self {
            DeadLetter::Nack => "nack",
            DeadLetter::MaxDeliveries => "max-deliveries",
        }
    }
}

/// The dead-letter queue of the queue or topic `destination` (the name its
/// MESSAGEs carry).
fn dead_letter_queue(destination: &str) -> String {
    let name = destination
        .strip_prefix("/queue/")
        .or_else(|| destination.strip_prefix("/topic/"))
        .unwrap_or(destination);
    format!("/queue/{name}.dlq")
}

impl Router {
    /// Moves `message`, taken from `from`, to its dead-letter queue. A dead
    /// letter that queue cannot take (limits) is dropped and counted.
    pub(super) fn dead_letter(&mut self, from: DestKey, message: Message, why: DeadLetter) {
        let Some(d) = self.dests[from].as_ref() else {
            return;
        };
        // A durable subscription's message names the topic it was sent to
        // (for a subscription on a pattern, one of many).
        let original = match d.durable_of {
            Some(_) => message
                .headers()
                .get(names::DESTINATION)
                .unwrap_or(&d.name)
                .to_string(),
            None => d.name.to_string(),
        };
        self.journal.remove(&message);
        let num = self.next_number();
        let letter = message.dead_letter(num, &original, why.reason());
        let queue = dead_letter_queue(&original);
        let moved = self
            .destination(&queue)
            .and_then(|key| self.enqueue(key, letter, None));
        match moved {
            Ok(()) => Metrics::add(&self.counters.metrics.dead_lettered, 1),
            Err(refusal) => {
                self.counters.dropped.one(DropReason::DeadLetterRefused);
                tracing::warn!(
                    queue,
                    message_id = message.num,
                    why = refusal.message(),
                    "dead letter dropped"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dead_letter_queue;

    #[test]
    fn dead_letters_of_a_queue_or_a_topic_go_to_a_queue_named_after_it() {
        assert_eq!(dead_letter_queue("/queue/orders"), "/queue/orders.dlq");
        assert_eq!(dead_letter_queue("/topic/news"), "/queue/news.dlq");
    }
}
