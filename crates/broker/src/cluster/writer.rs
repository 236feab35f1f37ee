//! Carrying out the router's units, in order.
//!
//! Owns applying each [`ClusterOp`] of a unit (publishes handed to the NATS
//! client, stored messages published to JetStream, interests, pull windows,
//! durable subscriptions) and reporting the unit: done once every JetStream
//! acknowledgement of it came (and, for a new interest, once the server
//! answered a flush, so the SUB is in place; while NATS is unreachable the
//! client subscribes when it reconnects), failed if NATS is unreachable for
//! a publish or JetStream refused. Units are reported strictly in order while the next
//! ones are already being published (a pipeline, as the store's writer is).
//! The messages a unit settles are settled after its own stored messages
//! are acknowledged, so a dead letter is in its queue before the message it
//! replaces is gone.

use super::consumers::Consumers;
use super::interest::Interests;
use super::{Cx, durables, subject, wire};
use crate::router::{ClusterOp, ClusterUnit, Settle};
use crate::store::Completion;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How long a new subscription's confirmation may take before its RECEIPT
/// goes anyway (NATS just became unreachable; the client subscribes again
/// when it reconnects).
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs until the router task drops its sender.
pub(super) async fn run(
    cx: Arc<Cx>,
    consumers: Consumers,
    mut units: mpsc::Receiver<Vec<ClusterUnit>>,
    done: mpsc::UnboundedSender<Completion>,
) {
    let mut writer = Writer {
        cx,
        consumers,
        interests: Interests::default(),
    };
    let mut pending: FuturesOrdered<BoxFuture<'static, (u64, Result<(), String>)>> =
        FuturesOrdered::new();
    loop {
        tokio::select! {
            batch = units.recv() => {
                let Some(batch) = batch else { break };
                for unit in batch {
                    pending.push_back(writer.apply(unit).await);
                }
            }
            Some((seq, result)) = pending.next(), if !pending.is_empty() => {
                let completion = match result {
                    Ok(()) => Completion::Durable(seq),
                    Err(error) => Completion::Failed { first: seq, last: seq, error },
                };
                if done.send(completion).is_err() {
                    break;
                }
            }
        }
    }
}

struct Writer {
    cx: Arc<Cx>,
    consumers: Consumers,
    interests: Interests,
}

/// What is left to wait for in a unit.
#[derive(Default)]
struct Waits {
    acks: Vec<async_nats::jetstream::context::PublishAckFuture>,
    flush: bool,
    settles: Vec<(Arc<str>, Settle)>,
}

impl Writer {
    /// Applies `unit`'s ops; the future reports it.
    async fn apply(&mut self, unit: ClusterUnit) -> BoxFuture<'static, (u64, Result<(), String>)> {
        let seq = unit.seq;
        let mut waits = Waits::default();
        for op in unit.ops {
            if let Err(error) = self.op(op, &mut waits).await {
                return Box::pin(async move { (seq, Err(error)) });
            }
        }
        let cx = self.cx.clone();
        let consumers = self.consumers.clone();
        Box::pin(async move { (seq, finish(&cx, &consumers, waits).await) })
    }

    async fn op(&mut self, op: ClusterOp, waits: &mut Waits) -> Result<(), String> {
        match op {
            ClusterOp::Publish {
                destination,
                message,
            } => {
                self.reachable()?;
                let subject = match subject::topic_subject(&destination) {
                    Some(s) => s,
                    None => subject::reply_subject(&destination),
                };
                let payload = wire::encode(&message);
                self.cx
                    .client
                    .publish(subject, payload)
                    .await
                    .map_err(|e| format!("NATS publish failed: {e}"))?;
                crate::metrics::Metrics::add(&self.cx.metrics.cluster_published, 1);
            }
            ClusterOp::Enqueue { queue, message } => {
                self.reachable()?;
                let ack = self.consumers.enqueue(&queue, &message).await?;
                waits.acks.push(ack);
            }
            ClusterOp::Interest {
                destination,
                wanted,
            } => {
                self.interests.set(&self.cx, destination, wanted).await?;
                waits.flush |= wanted;
            }
            ClusterOp::Consume { queue, window } => self.consumers.set_window(queue, window),
            ClusterOp::Settle { token, how } => waits.settles.push((token, how)),
            ClusterOp::Durable(subscription) => {
                self.reachable()?;
                durables::put(&self.cx, &subscription).await?;
            }
            ClusterOp::Forget { key } => {
                self.reachable()?;
                durables::forget(&self.cx, &self.consumers, &key).await?;
            }
        }
        Ok(())
    }

    /// An error naming the outage while NATS is unreachable.
    fn reachable(&self) -> Result<(), String> {
        match self.cx.connected() {
            true => Ok(()),
            false => Err("NATS is unreachable (cluster outage); nothing was published".to_owned()),
        }
    }
}

/// Waits for a unit's acknowledgements (and flush), then settles what it
/// settles.
async fn finish(cx: &Cx, consumers: &Consumers, waits: Waits) -> Result<(), String> {
    let mut result = Ok(());
    for ack in waits.acks {
        if let Err(e) = ack.await {
            result = Err(format!("JetStream did not store the message: {e}"));
        }
    }
    // Unconfirmed while NATS is unreachable: the subscription serves local
    // publishers now and NATS gets it when the client reconnects.
    if result.is_ok() && waits.flush && cx.connected() {
        let flush = tokio::time::timeout(FLUSH_TIMEOUT, cx.client.flush()).await;
        if !matches!(flush, Ok(Ok(()))) {
            tracing::debug!("subscription not confirmed by NATS yet");
        }
    }
    for (token, how) in waits.settles {
        consumers.settle(&token, how).await;
    }
    result
}
