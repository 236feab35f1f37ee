//! Metrics: the broker's live counters.
//!
//! Owns [`Metrics`] (relaxed atomics, shared by the router, the connections and
//! the metrics endpoint; the router adds its per-delivery counts once per
//! command batch, so the hot path touches no shared cache line), the reasons a
//! message is dropped ([`DropReason`]) or an ERROR is sent ([`ErrorReason`]),
//! and the store's write latency histogram. Turning them into Prometheus text
//! at scrape time, with the router's queues and the process's figures, is
//! `metrics_endpoint.rs`'s; nothing here formats text.

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why a message was dropped (the `reason` label of
/// `stompkit_messages_dropped_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// A client-ack topic subscriber had no credit (prefetch) left.
    NoCredit,
    /// A topic subscriber's outbox was full (slow consumer).
    SlowConsumer,
    /// A full queue (`queue_overflow = drop-oldest`, or a durable
    /// subscription's queue while its subscriber is away) dropped its oldest.
    QueueFull,
    /// A dead letter its dead-letter queue could not take (limits).
    DeadLetterRefused,
    /// Sent to a reply destination (`/reply-queue/…`, `/reply-topic/…`) whose
    /// owner is gone, or held for an owner that went away.
    ReplyDestinationGone,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 5] = [
        DropReason::NoCredit,
        DropReason::SlowConsumer,
        DropReason::QueueFull,
        DropReason::DeadLetterRefused,
        DropReason::ReplyDestinationGone,
    ];

    /// Its `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::NoCredit => "no_credit",
            DropReason::SlowConsumer => "slow_consumer",
            DropReason::QueueFull => "queue_full",
            DropReason::DeadLetterRefused => "dead_letter_refused",
            DropReason::ReplyDestinationGone => "reply_destination_gone",
        }
    }
}

/// Why an ERROR frame was sent, or a connection refused (the `reason` label
/// of `stompkit_errors_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorReason {
    /// The session refused a frame: malformed, forbidden, a refused login, a
    /// protocol rule broken (every ERROR `rules/` writes).
    Protocol,
    /// The router refused a frame: queue full, unknown ACK, too many
    /// destinations, unsupported destination, ….
    Refused,
    /// A topic subscriber was too slow (`slow_consumer = disconnect`).
    SlowConsumer,
    /// The store could not write what the frame needed.
    StoreWrite,
    /// A connection over `max_connections` was refused.
    ConnectionLimit,
    /// TCP STOMP on a WebSocket-only listener.
    StompDisabled,
    /// Relay mode: an ERROR from the upstream, or the relay's own.
    Relay,
    /// An administrator closed the connection, deleted its queue or its
    /// durable subscription (the admin API).
    Admin,
}

impl ErrorReason {
    /// Every reason, in label order.
    pub const ALL: [ErrorReason; 8] = [
        ErrorReason::Protocol,
        ErrorReason::Refused,
        ErrorReason::SlowConsumer,
        ErrorReason::StoreWrite,
        ErrorReason::ConnectionLimit,
        ErrorReason::StompDisabled,
        ErrorReason::Relay,
        ErrorReason::Admin,
    ];

    /// Its `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            ErrorReason::Protocol => "protocol",
            ErrorReason::Refused => "refused",
            ErrorReason::SlowConsumer => "slow_consumer",
            ErrorReason::StoreWrite => "store_write",
            ErrorReason::ConnectionLimit => "connection_limit",
            ErrorReason::StompDisabled => "stomp_disabled",
            ErrorReason::Relay => "relay",
            ErrorReason::Admin => "admin",
        }
    }
}

/// The upper bounds of the store write latency buckets, in seconds: 0.5 ms
/// doubling up to about 4 s (an fdatasync on a busy disk).
fn store_write_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 14)
}

/// Broker-wide counters. All relaxed atomics; read one with [`Metrics::get`].
#[derive(Debug)]
pub struct Metrics {
    /// Connections open now.
    pub connections: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Subscriptions alive now.
    pub subscriptions: AtomicU64,
    /// SEND frames routed (including those committed in transactions).
    pub messages_in: AtomicU64,
    /// MESSAGE frames written to outboxes.
    pub messages_out: AtomicU64,
    /// Bytes read from clients.
    pub bytes_in: AtomicU64,
    /// Bytes written to clients.
    pub bytes_out: AtomicU64,
    /// Queue messages delivered again after a NACK or a subscriber going away.
    pub redelivered: AtomicU64,
    /// Header copies dropped because a receiver's version cannot carry them.
    pub dropped_headers: AtomicU64,
    /// Messages dropped because they expired before delivery.
    pub expired: AtomicU64,
    /// Messages moved to a dead-letter queue.
    pub dead_lettered: AtomicU64,
    /// Logins refused (bad password or token, unknown user, anonymous
    /// refused), and admin API credentials refused.
    pub auth_failures: AtomicU64,
    /// Messages dropped, by [`DropReason`] (indexed by `reason as usize`).
    dropped: [AtomicU64; DropReason::ALL.len()],
    /// ERROR frames sent and connections refused, by [`ErrorReason`].
    errors: [AtomicU64; ErrorReason::ALL.len()],
    /// Seconds each store batch took to write and sync.
    store_write: Histogram,
    /// Cluster mode: 1 while NATS is reachable, 0 while not; `u64::MAX`
    /// when the broker is not clustered.
    cluster_connected: AtomicU64,
    /// Cluster mode: topic SENDs that reached local subscribers only, NATS
    /// being unreachable.
    pub cluster_local_only: AtomicU64,
    /// Cluster mode: messages received from NATS and JetStream.
    pub cluster_received: AtomicU64,
    /// Cluster mode: messages published to NATS and JetStream.
    pub cluster_published: AtomicU64,
    /// Cluster mode: times NATS became reachable again after an outage.
    pub cluster_reconnects: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            messages_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            dropped_headers: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            dropped: Default::default(),
            errors: Default::default(),
            store_write: Histogram::new(store_write_buckets()),
            cluster_connected: AtomicU64::new(u64::MAX),
            cluster_local_only: AtomicU64::new(0),
            cluster_received: AtomicU64::new(0),
            cluster_published: AtomicU64::new(0),
            cluster_reconnects: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Adds to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        if n != 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Cluster mode: records whether NATS is reachable now.
    pub fn set_cluster_up(&self, up: bool) {
        let was = self
            .cluster_connected
            .swap(u64::from(up), Ordering::Relaxed);
        if up && was == 0 {
            Metrics::add(&self.cluster_reconnects, 1);
        }
    }

    /// Cluster mode: whether NATS is reachable now; `None` when the broker
    /// is not clustered.
    pub fn cluster_up(&self) -> Option<bool> {
        match self.cluster_connected.load(Ordering::Relaxed) {
            u64::MAX => None,
            n => Some(n == 1),
        }
    }

    /// Counts `n` messages dropped for `reason`.
    #[inline]
    pub fn count_dropped(&self, reason: DropReason, n: u64) {
        Metrics::add(&self.dropped[reason as usize], n);
    }

    /// Messages dropped for `reason` since start.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        Metrics::get(&self.dropped[reason as usize])
    }

    /// Messages dropped for any reason since start.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(Metrics::get).sum()
    }

    /// Counts one ERROR frame sent (or connection refused) for `reason`.
    #[inline]
    pub fn count_error(&self, reason: ErrorReason) {
        Metrics::add(&self.errors[reason as usize], 1);
    }

    /// ERROR frames sent (and connections refused) for `reason` since start.
    pub fn errors(&self, reason: ErrorReason) -> u64 {
        Metrics::get(&self.errors[reason as usize])
    }

    /// Records one store batch's write and sync taking `took`.
    pub fn observe_store_write(&self, took: Duration) {
        self.store_write.observe(took.as_secs_f64());
    }

    /// The store write latency histogram (shared: a clone observes into the
    /// same buckets).
    pub(crate) fn store_write(&self) -> &Histogram {
        &self.store_write
    }
}

/// Message drops the router gathers between two flushes (plain integers: the
/// routing path touches no atomic).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DropCounts([u64; DropReason::ALL.len()]);

impl DropCounts {
    /// One more message dropped for `reason`.
    #[inline]
    pub(crate) fn one(&mut self, reason: DropReason) {
        self.0[reason as usize] += 1;
    }

    /// Adds the gathered drops to `metrics` and starts again from zero.
    pub(crate) fn flush(&mut self, metrics: &Metrics) {
        for reason in DropReason::ALL {
            metrics.count_dropped(reason, std::mem::take(&mut self.0[reason as usize]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_index_their_own_counters_and_labels_are_distinct() {
        let m = Metrics::default();
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, i);
            m.count_dropped(reason, i as u64 + 1);
        }
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(m.dropped(reason), i as u64 + 1, "{reason:?}");
        }
        assert_eq!(m.dropped_total(), 15);
        for (i, reason) in ErrorReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, i);
        }
        m.count_error(ErrorReason::SlowConsumer);
        assert_eq!(m.errors(ErrorReason::SlowConsumer), 1);
        assert_eq!(m.errors(ErrorReason::Protocol), 0);
        let mut labels: Vec<&str> = DropReason::ALL.iter().map(|r| r.label()).collect();
        labels.extend(ErrorReason::ALL.iter().map(|r| r.label()));
        let distinct: std::collections::BTreeSet<&str> = labels.iter().copied().collect();
        // slow_consumer is in both families; every other label is its own.
        assert_eq!(distinct.len(), labels.len() - 1);
    }

    #[test]
    fn batched_drops_are_added_once_and_reset() {
        let m = Metrics::default();
        let mut counts = DropCounts::default();
        counts.one(DropReason::NoCredit);
        counts.one(DropReason::NoCredit);
        counts.one(DropReason::QueueFull);
        counts.flush(&m);
        counts.flush(&m);
        assert_eq!(m.dropped(DropReason::NoCredit), 2);
        assert_eq!(m.dropped(DropReason::QueueFull), 1);
        assert_eq!(m.dropped_total(), 3);
    }

    #[test]
    fn store_writes_land_in_their_bucket() {
        use prometheus_client::encoding::prometheus_text::encode;
        use prometheus_client::registry::Registry;
        let m = Metrics::default();
        m.observe_store_write(Duration::from_micros(300));
        m.observe_store_write(Duration::from_millis(3));
        let mut registry = Registry::default();
        registry.register("w", "W", m.store_write().clone());
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(text.contains("w_bucket{le=\"0.0005\"} 1\n"), "{text}");
        assert!(text.contains("w_bucket{le=\"0.002\"} 1\n"), "{text}");
        assert!(text.contains("w_bucket{le=\"0.004\"} 2\n"), "{text}");
        assert!(text.contains("w_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("w_count 2\n"), "{text}");
    }
}
