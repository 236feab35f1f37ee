//! Durable subscriptions of the whole cluster, in the JetStream stream
//! `STOMPKIT_DURABLES` every node watches.
//!
//! Owns that stream (file storage, the last message per subject kept: one
//! subject per subscription key), writing a subscription made or removed on
//! this node (an empty message removes it), and the watch that tells this
//! node's router of every subscription (existing ones first), so whichever
//! node a topic message is published on copies it into every durable
//! subscription's stream, wherever its subscriber is. A subscription's
//! messages are its own stream's (`consumers.rs`); removing it deletes them.
//!
//! A message is the topic, then a line feed and the selector if it has one;
//! its subject's last token is the subscription key in hexadecimal. (A
//! JetStream key-value bucket would do the same, but the client's buckets
//! need a newer server than 2.9.)

use super::consumers::Consumers;
use super::{Cx, subject};
use crate::router::ClusterEvent;
use crate::store::StoredSubscription;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::stream::{self, StorageType};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// The stream.
const STREAM: &str = "STOMPKIT_DURABLES";
/// Its subjects' prefix.
const SUBJECTS: &str = "stompkit.durables.";
/// How long to wait before watching again after the watch ended.
const RETRY: Duration = Duration::from_millis(500);

/// The stream, made if missing.
async fn registry(cx: &Cx) -> Result<stream::Stream, String> {
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![format!("{SUBJECTS}*")],
        max_messages_per_subject: 1,
        storage: StorageType::File,
        num_replicas: cx.config.replicas.max(1),
        ..Default::default()
    };
    cx.js
        .get_or_create_stream(config)
        .await
        .map_err(|e| format!("JetStream stream {STREAM}: {e}"))
}

/// Records `value` for the subscription `key` (empty: removed) and waits
/// for JetStream to store it.
async fn record(cx: &Cx, key: &str, value: String) -> Result<(), String> {
    registry(cx).await?;
    let ack = cx
        .js
        .publish(format!("{SUBJECTS}{}", hex(key)), value.into())
        .await
        .map_err(|e| e.to_string())?;
    ack.await.map(drop).map_err(|e| e.to_string())
}

/// Records `subscription` for the whole cluster.
pub(super) async fn put(cx: &Cx, subscription: &StoredSubscription) -> Result<(), String> {
    let mut value = subscription.destination.clone();
    if let Some(selector) = &subscription.selector {
        value.push('\n');
        value.push_str(selector);
    }
    record(cx, &subscription.key, value)
        .await
        .map_err(|e| format!("durable subscription not recorded: {e}"))
}

/// Removes the subscription `key` and its messages from the cluster.
pub(super) async fn forget(cx: &Cx, consumers: &Consumers, key: &str) -> Result<(), String> {
    record(cx, key, String::new())
        .await
        .map_err(|e| format!("durable subscription not removed: {e}"))?;
    let (stream, _) = subject::durable_stream(key);
    // Never made when nothing was published to it.
    drop(cx.js.delete_stream(&stream).await);
    consumers.forget_stream(key).await;
    Ok(())
}

/// Tells the router of every durable subscription of the cluster, then of
/// each change, for as long as the router runs.
pub(super) async fn watch(cx: Arc<Cx>, consumers: Consumers) {
    loop {
        match watch_once(&cx, &consumers).await {
            Ok(false) => return,
            Ok(true) => {}
            Err(error) => tracing::warn!(%error, "durable subscriptions not watched yet"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One watch, until it ends (`Ok(true)`) or the router is gone (`Ok(false)`).
async fn watch_once(cx: &Cx, consumers: &Consumers) -> Result<bool, String> {
    let stream = registry(cx).await?;
    let config = pull::OrderedConfig {
        filter_subject: format!("{SUBJECTS}*"),
        deliver_policy: DeliverPolicy::LastPerSubject,
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| e.to_string())?;
        let hexed = message
            .subject
            .as_str()
            .strip_prefix(SUBJECTS)
            .unwrap_or_default();
        let Some(key) = unhex(hexed) else {
            continue;
        };
        let value = String::from_utf8_lossy(&message.payload);
        let event = match value.split_once('\n') {
            _ if value.is_empty() => {
                // Its stream is gone (the node that removed it deleted it).
                consumers.forget_stream(&key).await;
                ClusterEvent::Forgotten { key }
            }
            Some((d, s)) => durable(key, d, Some(s)),
            None => durable(key, &value, None),
        };
        if !cx.tell(event).await {
            return Ok(false);
        }
    }
    Ok(true)
}

fn durable(key: String, destination: &str, selector: Option<&str>) -> ClusterEvent {
    ClusterEvent::Durable(StoredSubscription {
        key,
        destination: destination.to_owned(),
        selector: selector.map(str::to_owned),
    })
}

/// `text` in lower-case hexadecimal.
fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The text [`hex`] made.
fn unhex(hex: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_hex() {
        for key in ["", "client\0sub", "ü/x y"] {
            assert_eq!(unhex(&hex(key)).as_deref(), Some(key));
        }
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("a"), None);
    }
}
