//! Metrics: counters and gauges, and their Prometheus text rendering.
//!
//! Owns [`Metrics`] (relaxed atomics, shared by the router, the connections and the
//! metrics endpoint; the router adds its per-delivery counts once per command batch,
//! so the hot path touches no shared cache line) and [`render`], the Prometheus text
//! exposition format. Serving it over HTTP is `server.rs`'s job.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Broker-wide counters. All relaxed atomics; read them with [`Metrics::get`].
#[derive(Debug, Default)]
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
    /// Messages dropped (slow consumers with `drop`, no credit on a topic, full queues
    /// with `drop-oldest`).
    pub dropped: AtomicU64,
    /// Queue messages delivered again after a NACK or a subscriber going away.
    pub redelivered: AtomicU64,
    /// Header copies dropped because a receiver's version cannot carry them.
    pub dropped_headers: AtomicU64,
    /// ERROR frames sent.
    pub errors: AtomicU64,
    /// Messages dropped because they expired before delivery.
    pub expired: AtomicU64,
    /// Messages moved to a dead-letter queue.
    pub dead_lettered: AtomicU64,
    /// Messages sent to a reply destination (`/reply-queue/…`,
    /// `/reply-topic/…`) that does not exist (any more: its owner is gone),
    /// or held for an owner that went away: dropped.
    pub reply_dropped: AtomicU64,
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
}

/// One queue's state, as the router reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStat {
    /// The destination name (`/queue/...`).
    pub name: String,
    /// Messages held (not yet delivered).
    pub depth: usize,
    /// Bytes held (headers and bodies).
    pub bytes: usize,
    /// Subscribers now.
    pub subscribers: usize,
}

/// A per-queue gauge: metric name, help text, and its value for one queue.
type QueueGauge = (&'static str, &'static str, fn(&QueueStat) -> usize);

/// Renders the metrics and queue stats in the Prometheus text format (version 0.0.4).
pub fn render(m: &Metrics, queues: &[QueueStat]) -> String {
    let mut out = String::with_capacity(2048);
    for (name, kind, help, value) in counters(m).into_iter().chain(fates(m)) {
        put(
            &mut out,
            format_args!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                Metrics::get(value)
            ),
        );
    }
    let gauges: [QueueGauge; 3] = [
        ("stompkit_queue_depth", "Messages held by a queue.", |q| {
            q.depth
        }),
        (
            "stompkit_queue_bytes",
            "Bytes (headers and bodies) held by a queue.",
            |q| q.bytes,
        ),
        (
            "stompkit_queue_subscribers",
            "Subscribers of a queue.",
            |q| q.subscribers,
        ),
    ];
    for (metric, help, value) in gauges {
        put(
            &mut out,
            format_args!("# HELP {metric} {help}\n# TYPE {metric} gauge\n"),
        );
        for q in queues {
            let name = label(&q.name);
            put(
                &mut out,
                format_args!("{metric}{{queue=\"{name}\"}} {}\n", value(q)),
            );
        }
    }
    out
}

/// Appends formatted text to `out`.
fn put(out: &mut String, args: std::fmt::Arguments<'_>) {
    // Formatting into a String cannot fail: its `write_str` always returns Ok.
    let _ = out.write_fmt(args);
}

/// One broker-wide counter: name, type, help text, value.
type Counter<'m> = (&'static str, &'static str, &'static str, &'m AtomicU64);

/// The broker-wide counters of connections and traffic.
fn counters(m: &Metrics) -> [Counter<'_>; 7] {
    [
        (
            "stompkit_connections",
            "gauge",
            "Open connections.",
            &m.connections,
        ),
        (
            "stompkit_connections_total",
            "counter",
            "Connections accepted.",
            &m.connections_total,
        ),
        (
            "stompkit_subscriptions",
            "gauge",
            "Live subscriptions.",
            &m.subscriptions,
        ),
        (
            "stompkit_messages_in_total",
            "counter",
            "Messages published.",
            &m.messages_in,
        ),
        (
            "stompkit_messages_out_total",
            "counter",
            "Messages delivered.",
            &m.messages_out,
        ),
        (
            "stompkit_bytes_in_total",
            "counter",
            "Bytes read from clients.",
            &m.bytes_in,
        ),
        (
            "stompkit_bytes_out_total",
            "counter",
            "Bytes written to clients.",
            &m.bytes_out,
        ),
    ]
}

/// The broker-wide counters of what became of messages other than delivery,
/// and of errors.
fn fates(m: &Metrics) -> [Counter<'_>; 7] {
    [
        (
            "stompkit_dropped_total",
            "counter",
            "Messages dropped.",
            &m.dropped,
        ),
        (
            "stompkit_redelivered_total",
            "counter",
            "Messages redelivered.",
            &m.redelivered,
        ),
        (
            "stompkit_dropped_headers_total",
            "counter",
            "Header copies a receiver's version could not carry.",
            &m.dropped_headers,
        ),
        (
            "stompkit_errors_total",
            "counter",
            "ERROR frames sent.",
            &m.errors,
        ),
        (
            "stompkit_messages_expired_total",
            "counter",
            "Messages dropped because they expired before delivery.",
            &m.expired,
        ),
        (
            "stompkit_messages_dead_lettered_total",
            "counter",
            "Messages moved to a dead-letter queue.",
            &m.dead_lettered,
        ),
        (
            "stompkit_reply_messages_dropped_total",
            "counter",
            "Replies dropped because their reply destination's owner is gone.",
            &m.reply_dropped,
        ),
    ]
}

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_queue_labels() {
        let m = Metrics::default();
        Metrics::add(&m.messages_in, 3);
        let text = render(
            &m,
            &[QueueStat {
                name: "/queue/a\"b".into(),
                depth: 2,
                bytes: 10,
                subscribers: 0,
            }],
        );
        assert!(text.contains("stompkit_messages_in_total 3\n"));
        assert!(text.contains("stompkit_queue_depth{queue=\"/queue/a\\\"b\"} 2\n"));
        assert!(text.contains("# TYPE stompkit_connections gauge\n"));
        let queues = "# HELP stompkit_queue_depth Messages held by a queue.\n\
            # TYPE stompkit_queue_depth gauge\n\
            stompkit_queue_depth{queue=\"/queue/a\\\"b\"} 2\n\
            # HELP stompkit_queue_bytes Bytes (headers and bodies) held by a queue.\n\
            # TYPE stompkit_queue_bytes gauge\n\
            stompkit_queue_bytes{queue=\"/queue/a\\\"b\"} 10\n\
            # HELP stompkit_queue_subscribers Subscribers of a queue.\n\
            # TYPE stompkit_queue_subscribers gauge\n\
            stompkit_queue_subscribers{queue=\"/queue/a\\\"b\"} 0\n";
        assert!(text.ends_with(queues), "{text}");
    }
}
