//! The NATS subscriptions of this node: one per local topic, pattern or
//! reply destination with a subscriber.
//!
//! Owns subscribing (the subject from `subject.rs`: a pattern's may be wider
//! than it, the router filters) and giving up (the subscription's reader
//! stops, which unsubscribes), and the reader: each message decoded and
//! handed to the router as received for that one destination, so a message
//! matching two local patterns is delivered once through each. NATS
//! re-subscribes by itself after a reconnect.

use super::{Cx, subject, wire};
use crate::metrics::Metrics;
use crate::router::ClusterEvent;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// This node's NATS subscriptions, by local destination.
#[derive(Default)]
pub(super) struct Interests {
    readers: HashMap<Arc<str>, JoinHandle<()>>,
}

impl Drop for Interests {
    fn drop(&mut self) {
        for reader in self.readers.values() {
            reader.abort();
        }
    }
}

impl Interests {
    /// Subscribes for `destination` (`wanted`) or stops.
    pub(super) async fn set(
        &mut self,
        cx: &Arc<Cx>,
        destination: Arc<str>,
        wanted: bool,
    ) -> Result<(), String> {
        if !wanted {
            if let Some(reader) = self.readers.remove(&destination) {
                reader.abort();
            }
            return Ok(());
        }
        if self.readers.contains_key(&destination) {
            return Ok(());
        }
        let subject = match subject::interest_subject(&destination) {
            Some(s) => s,
            None => subject::reply_subject(&destination),
        };
        let subscriber = cx
            .client
            .subscribe(subject)
            .await
            .map_err(|e| format!("NATS subscribe failed: {e}"))?;
        let reader = tokio::spawn(read(cx.clone(), destination.clone(), subscriber));
        self.readers.insert(destination, reader);
        Ok(())
    }
}

/// Hands the router every message `subscriber` receives for `interest`.
async fn read(cx: Arc<Cx>, interest: Arc<str>, mut subscriber: async_nats::Subscriber) {
    while let Some(received) = subscriber.next().await {
        let destination = match subject::topic_destination(&received.subject) {
            Some(topic) => topic,
            None => interest.to_string(),
        };
        let message = match wire::decode(received.payload) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(subject = %received.subject, %error, "NATS message ignored");
                continue;
            }
        };
        Metrics::add(&cx.metrics.cluster_received, 1);
        let event = ClusterEvent::Topic {
            interest: interest.clone(),
            destination,
            message,
        };
        if !cx.tell(event).await {
            return;
        }
    }
}
