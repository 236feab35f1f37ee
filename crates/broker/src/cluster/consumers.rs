//! Queues in JetStream: storing messages, pulling them for this node's
//! consumers, settling them.
//!
//! Owns, per queue (a `/queue/` destination or a durable subscription's
//! queue), its work-queue stream (file storage, `[cluster] replicas`, made
//! on first use) and the one durable pull consumer every node shares, so
//! JetStream hands each message to one node at a time; the pull loop, which
//! keeps at most the router's window of unsettled messages on this node;
//! the tokens of the messages this node holds, settled (`+ACK`, `-NAK`) when
//! the router is done with them and kept alive (`+WPI`, every third of
//! `ack_wait_ms`) while it is not, so only a node that stopped answering
//! loses its messages to another node.
//!
//! Streams are named by `subject.rs`. A publish carries `Nats-Msg-Id` (node,
//! run and message number), so JetStream stores a retried one once.

use super::{Cx, subject, wire};
use crate::metrics::Metrics;
use crate::router::{ClusterEvent, Settle, Wire};
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// The durable consumer all nodes share on a queue's stream.
const CONSUMER: &str = "stompkit";
/// How long one pull request waits for messages.
const PULL_EXPIRES: Duration = Duration::from_secs(1);
/// How long to wait before trying again after NATS refused.
const RETRY: Duration = Duration::from_millis(500);
/// How long JetStream remembers a `Nats-Msg-Id`.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Most messages unacknowledged on a queue across the cluster.
const MAX_ACK_PENDING: i64 = 100_000;

/// The queues this node pulls and the messages it holds (cheap to clone).
#[derive(Clone)]
pub(super) struct Consumers {
    inner: Arc<Inner>,
}

struct Inner {
    cx: Arc<Cx>,
    queues: Mutex<HashMap<Arc<str>, Arc<Pull>>>,
    /// Tokens of the messages this node holds, and their queue's pull.
    held: Mutex<HashMap<Arc<str>, Arc<Pull>>>,
    /// Streams known to exist.
    streams: tokio::sync::Mutex<HashSet<String>>,
}

/// One queue's pull state.
struct Pull {
    window: watch::Sender<u32>,
    outstanding: AtomicU32,
    settled: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A queue's stream and subject: a destination, or a durable key.
fn stream_of(queue: &str) -> (String, String) {
    match queue.starts_with('/') {
        true => subject::queue_stream(queue),
        false => subject::durable_stream(queue),
    }
}

impl Consumers {
    pub(super) fn new(cx: Arc<Cx>) -> Consumers {
        Consumers {
            inner: Arc::new(Inner {
                cx,
                queues: Mutex::default(),
                held: Mutex::default(),
                streams: tokio::sync::Mutex::default(),
            }),
        }
    }

    /// Stores `message` in `queue`'s stream; the future is JetStream's
    /// acknowledgement.
    pub(super) async fn enqueue(
        &self,
        queue: &str,
        message: &Wire,
    ) -> Result<PublishAckFuture, String> {
        let cx = &self.inner.cx;
        let (stream, subject) = stream_of(queue);
        self.ensure_stream(&stream, &subject).await?;
        let mut headers = async_nats::HeaderMap::new();
        let id = format!("{}-{}", cx.node, message.id);
        headers.insert("Nats-Msg-Id", id.as_str());
        let ack = cx
            .js
            .publish_with_headers(subject, headers, wire::encode(message))
            .await
            .map_err(|e| format!("JetStream publish failed: {e}"))?;
        Metrics::add(&cx.metrics.cluster_published, 1);
        Ok(ack)
    }

    /// Makes the stream `name` on `subject` unless known to exist.
    async fn ensure_stream(&self, name: &str, subject: &str) -> Result<(), String> {
        if self.inner.streams.lock().await.contains(name) {
            return Ok(());
        }
        self.stream(name, subject).await.map(drop)
    }

    /// The stream `name` on `subject`, made if missing.
    async fn stream(&self, name: &str, subject: &str) -> Result<stream::Stream, String> {
        let cx = &self.inner.cx;
        let config = stream::Config {
            name: name.to_owned(),
            subjects: vec![subject.to_owned()],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            num_replicas: cx.config.replicas.max(1),
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        let stream = cx
            .js
            .get_or_create_stream(config)
            .await
            .map_err(|e| format!("JetStream stream {name}: {e}"))?;
        self.inner.streams.lock().await.insert(name.to_owned());
        Ok(stream)
    }

    /// Forgets that `queue`'s stream exists (it was deleted).
    pub(super) async fn forget_stream(&self, queue: &str) {
        let (name, _) = stream_of(queue);
        self.inner.streams.lock().await.remove(&name);
    }

    /// This node may hold up to `window` unsettled messages of `queue`
    /// (0: pull no more).
    pub(super) fn set_window(&self, queue: Arc<str>, window: u32) {
        let mut queues = lock(&self.inner.queues);
        if let Some(pull) = queues.get(&queue) {
            pull.window.send_replace(window);
            pull.settled.notify_one();
            return;
        }
        if window == 0 {
            return;
        }
        let pull = Arc::new(Pull {
            window: watch::Sender::new(window),
            outstanding: AtomicU32::new(0),
            settled: Notify::new(),
        });
        queues.insert(queue.clone(), pull.clone());
        tokio::spawn(pull_loop(self.clone(), queue, pull));
    }

    /// Settles a message this node holds.
    pub(super) async fn settle(&self, token: &Arc<str>, how: Settle) {
        if let Some(pull) = lock(&self.inner.held).remove(token) {
            pull.outstanding.fetch_sub(1, Ordering::Relaxed);
            pull.settled.notify_one();
        }
        let reply: &'static [u8] = match how {
            Settle::Ack => b"+ACK",
            Settle::Nak => b"-NAK",
        };
        let client = &self.inner.cx.client;
        if let Err(error) = client.publish(token.to_string(), reply.into()).await {
            tracing::warn!(%error, "JetStream acknowledgement not sent");
        }
    }

    /// The shared consumer of `queue`'s stream.
    async fn consumer(&self, queue: &str) -> Result<PullConsumer, String> {
        let (name, subject) = stream_of(queue);
        let stream = self.stream(&name, &subject).await?;
        let config = pull::Config {
            durable_name: Some(CONSUMER.to_owned()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.inner.cx.config.ack_wait(),
            max_deliver: -1,
            max_ack_pending: MAX_ACK_PENDING,
            ..Default::default()
        };
        stream
            .get_or_create_consumer(CONSUMER, config)
            .await
            .map_err(|e| format!("JetStream consumer of {name}: {e}"))
    }

    /// Takes a pulled message: held here, handed to the router. False once
    /// the router is gone.
    async fn take(
        &self,
        queue: &Arc<str>,
        pull: &Arc<Pull>,
        m: async_nats::jetstream::Message,
    ) -> bool {
        let cx = &self.inner.cx;
        let Some(token) = m
            .message
            .reply
            .as_ref()
            .map(|r| Arc::<str>::from(r.as_str()))
        else {
            return true;
        };
        let (delivered, sequence) = m
            .info()
            .map_or((1, 0), |i| (i.delivered, i.stream_sequence));
        let mut message = match wire::decode(m.message.payload.clone()) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%queue, %error, "queue message discarded");
                drop(cx.client.publish(token.to_string(), "+TERM".into()).await);
                return true;
            }
        };
        // Its `message-id` on every node and at every redelivery.
        message.id = sequence;
        lock(&self.inner.held).insert(token.clone(), pull.clone());
        pull.outstanding.fetch_add(1, Ordering::Relaxed);
        Metrics::add(&cx.metrics.cluster_received, 1);
        cx.tell(ClusterEvent::Queued {
            queue: queue.clone(),
            message,
            token,
            delivered: u64::try_from(delivered).unwrap_or(1),
        })
        .await
    }
}

/// Pulls `queue`'s messages while this node has room for them.
async fn pull_loop(consumers: Consumers, queue: Arc<str>, pull: Arc<Pull>) {
    let mut window = pull.window.subscribe();
    let mut consumer = None;
    while !consumers.inner.cx.router.is_closed() {
        let room =
            (*window.borrow_and_update()).saturating_sub(pull.outstanding.load(Ordering::Relaxed));
        if *window.borrow() == 0 {
            // No local consumer: asleep until one comes (or the router goes).
            tokio::select! {
                changed = window.changed() => if changed.is_err() { return },
                () = consumers.inner.cx.router.closed() => return,
            }
            continue;
        }
        if room == 0 {
            // Full: until something is settled (the timer only as a backstop).
            tokio::select! {
                _ = window.changed() => {}
                () = pull.settled.notified() => {}
                () = tokio::time::sleep(PULL_EXPIRES) => {}
            }
            continue;
        }
        let c = match consumer.take() {
            Some(c) => c,
            None => match consumers.consumer(&queue).await {
                Ok(c) => c,
                Err(error) => {
                    tracing::warn!(%queue, %error, "cannot pull queue messages yet");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            },
        };
        let batch = c
            .batch()
            .max_messages(usize::try_from(room).unwrap_or(1))
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                tracing::debug!(%queue, %error, "pull request failed");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        consumer = Some(c);
        // What arrives once no local consumer is left waits for the pull
        // request to end, then goes back in stream order (given back at
        // once, it could come straight back to this request, and another
        // node would get a queue's messages out of order).
        let mut returned = Vec::new();
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) if *window.borrow() == 0 => returned.push(m),
                Ok(m) => {
                    if !consumers.take(&queue, &pull, m).await {
                        return;
                    }
                }
                Err(error) => {
                    tracing::debug!(%queue, %error, "pull interrupted");
                    consumer = None;
                    break;
                }
            }
        }
        give_back(&consumers.inner.cx, returned).await;
    }
}

/// NAKs pulled messages no local consumer took, in stream order.
async fn give_back(cx: &Cx, mut returned: Vec<async_nats::jetstream::Message>) {
    returned.sort_by_key(|m| m.info().map_or(0, |i| i.stream_sequence));
    for m in returned {
        if let Some(reply) = &m.message.reply {
            drop(cx.client.publish(reply.to_string(), "-NAK".into()).await);
        }
    }
}

/// Tells JetStream, every third of `ack_wait_ms`, that this node still
/// works on every message it holds.
pub(super) async fn progress(cx: Arc<Cx>, consumers: Consumers) {
    let mut tick = tokio::time::interval((cx.config.ack_wait() / 3).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let tokens: Vec<Arc<str>> = lock(&consumers.inner.held).keys().cloned().collect();
        for token in tokens {
            if cx
                .client
                .publish(token.to_string(), "+WPI".into())
                .await
                .is_err()
            {
                break;
            }
        }
    }
}
