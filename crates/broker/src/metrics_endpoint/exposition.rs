//! The Prometheus text of one scrape (format version 0.0.4, written by the
//! `prometheus-client` crate).
//!
//! Owns the metric family names, their help texts, types and labels: the
//! broker's counters ([`Metrics`], read at scrape time: nothing here is on a
//! hot path), the router's queues, the store's write latency histogram, the
//! build, and the process's memory and open files. Names follow Prometheus's
//! conventions: `stompkit_` first, the unit last, `_total` on counters only,
//! one type per family, and a `reason` label where one thing has several
//! causes.

use super::process::Sample;
use crate::metrics::{DropReason, ErrorReason, Metrics};
use crate::router::QueueInfo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// The content type of the text [`render`] writes.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The broker's version, as `stompkit_build_info{version}` shows it.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Prometheus text of `metrics` (read now), `queues` and `process`.
pub(crate) fn render(metrics: Arc<Metrics>, queues: Vec<QueueInfo>, process: Sample) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        metrics,
        queues,
        process,
    }));
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail, and every family here encodes.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
        tracing::error!(error = %e, "metrics not rendered");
    }
    out
}

/// What one scrape shows.
#[derive(Debug)]
struct Scrape {
    metrics: Arc<Metrics>,
    queues: Vec<QueueInfo>,
    process: Sample,
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let build = [("version", VERSION)];
        enc.encode_descriptor(
            "stompkit_build",
            "The broker's version; always 1.",
            None,
            MetricType::Info,
        )?
        .encode_info(&build)?;
        self.connections(&mut enc)?;
        self.traffic(&mut enc)?;
        self.fates(&mut enc)?;
        self.cluster(&mut enc)?;
        self.reasons(&mut enc)?;
        self.queues(&mut enc)?;
        let latency = self.metrics.store_write();
        latency.encode(enc.encode_descriptor(
            "stompkit_store_write",
            "Time the store took to write and sync one batch of records.",
            Some(&Unit::Seconds),
            latency.metric_type(),
        )?)?;
        self.process.encode(&mut enc)
    }
}

impl Scrape {
    /// Connections, logins and subscriptions.
    fn connections(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let m = &*self.metrics;
        gauge(
            enc,
            "stompkit_connections",
            "Open connections.",
            None,
            read(&m.connections),
        )?;
        counter(
            enc,
            "stompkit_connections_accepted",
            "Connections accepted.",
            None,
            read(&m.connections_total),
        )?;
        counter(
            enc,
            "stompkit_auth_failures",
            "Logins refused (bad password or token, unknown login, anonymous refused).",
            None,
            read(&m.auth_failures),
        )?;
        gauge(
            enc,
            "stompkit_subscriptions",
            "Live subscriptions.",
            None,
            read(&m.subscriptions),
        )
    }

    /// Messages and bytes in and out.
    fn traffic(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let m = &*self.metrics;
        let families = [
            (
                "stompkit_messages_published",
                "Messages published (SENDs routed).",
                None,
                &m.messages_in,
            ),
            (
                "stompkit_messages_delivered",
                "MESSAGE frames delivered.",
                None,
                &m.messages_out,
            ),
            (
                "stompkit_received",
                "Bytes read from clients.",
                Some(Unit::Bytes),
                &m.bytes_in,
            ),
            (
                "stompkit_sent",
                "Bytes written to clients.",
                Some(Unit::Bytes),
                &m.bytes_out,
            ),
        ];
        for (name, help, unit, value) in families {
            counter(enc, name, help, unit.as_ref(), read(value))?;
        }
        Ok(())
    }

    /// Cluster mode's state and traffic (nothing when not clustered).
    fn cluster(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let m = &*self.metrics;
        let Some(up) = m.cluster_up() else {
            return Ok(());
        };
        gauge(
            enc,
            "stompkit_cluster_connected",
            "1 while NATS is reachable, 0 while not (cluster mode).",
            None,
            u64::from(up),
        )?;
        let families = [
            (
                "stompkit_cluster_local_only",
                "Topic SENDs that reached this node's subscribers only, NATS being unreachable.",
                &m.cluster_local_only,
            ),
            (
                "stompkit_cluster_published",
                "Messages this node published to NATS and JetStream.",
                &m.cluster_published,
            ),
            (
                "stompkit_cluster_received",
                "Messages this node received from NATS and JetStream.",
                &m.cluster_received,
            ),
            (
                "stompkit_cluster_reconnects",
                "Times NATS became reachable again after an outage.",
                &m.cluster_reconnects,
            ),
        ];
        for (name, help, value) in families {
            counter(enc, name, help, None, read(value))?;
        }
        Ok(())
    }

    /// What became of messages other than delivery.
    fn fates(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let m = &*self.metrics;
        let families = [
            (
                "stompkit_messages_redelivered",
                "Queue messages delivered again after a NACK or their subscriber going away.",
                &m.redelivered,
            ),
            (
                "stompkit_messages_expired",
                "Messages dropped because they expired before delivery.",
                &m.expired,
            ),
            (
                "stompkit_messages_dead_lettered",
                "Messages moved to a dead-letter queue.",
                &m.dead_lettered,
            ),
            (
                "stompkit_headers_dropped",
                "Header copies a receiver's STOMP version could not carry.",
                &m.dropped_headers,
            ),
        ];
        for (name, help, value) in families {
            counter(enc, name, help, None, read(value))?;
        }
        // The ERRORs sent for it, under the name alerts look for.
        let help = "Connections closed for not reading their messages fast enough.";
        let disconnects = m.errors(ErrorReason::SlowConsumer);
        counter(
            enc,
            "stompkit_slow_consumer_disconnects",
            help,
            None,
            disconnects,
        )
    }

    /// The counters with a `reason` label.
    fn reasons(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let m = &*self.metrics;
        let mut dropped = enc.encode_descriptor(
            "stompkit_messages_dropped",
            "Messages dropped, by reason.",
            None,
            MetricType::Counter,
        )?;
        for reason in DropReason::ALL {
            let labels = [("reason", reason.label())];
            ConstCounter::new(m.dropped(reason)).encode(dropped.encode_family(&labels)?)?;
        }
        let mut errors = enc.encode_descriptor(
            "stompkit_errors",
            "ERROR frames sent and connections refused, by reason.",
            None,
            MetricType::Counter,
        )?;
        for reason in ErrorReason::ALL {
            let labels = [("reason", reason.label())];
            ConstCounter::new(m.errors(reason)).encode(errors.encode_family(&labels)?)?;
        }
        Ok(())
    }

    /// One gauge family per queue figure, labelled by queue name (what
    /// follows `/queue/`).
    fn queues(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        type Figure = fn(&QueueInfo) -> usize;
        let families: [(&str, &str, Option<Unit>, Figure); 4] = [
            (
                "stompkit_queue_messages_ready",
                "Messages a queue holds, ready for delivery.",
                None,
                |q| q.ready,
            ),
            (
                "stompkit_queue_messages_unacked",
                "A queue's messages delivered and awaiting an ACK.",
                None,
                |q| q.unacked,
            ),
            (
                "stompkit_queue_consumers",
                "Subscriptions on a queue.",
                None,
                |q| q.consumers,
            ),
            (
                "stompkit_queue",
                "Bytes (headers and bodies) of a queue's ready messages.",
                Some(Unit::Bytes),
                |q| q.bytes,
            ),
        ];
        for (name, help, unit, figure) in families {
            let mut family = enc.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for q in &self.queues {
                let labels = [("queue", q.short_name())];
                let value = u64::try_from(figure(q)).unwrap_or(u64::MAX);
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

impl Sample {
    /// The process's families: those it could read.
    fn encode(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        if let Some(bytes) = self.resident_bytes {
            let help = "Resident memory size.";
            gauge(
                enc,
                "process_resident_memory",
                help,
                Some(&Unit::Bytes),
                bytes,
            )?;
        }
        if let Some(fds) = self.open_fds {
            gauge(enc, "process_open_fds", "Open file descriptors.", None, fds)?;
        }
        if let Some(max) = self.max_fds {
            let help = "The limit on open file descriptors (RLIMIT_NOFILE, soft).";
            gauge(enc, "process_max_fds", help, None, max)?;
        }
        Ok(())
    }
}

/// Reads a counter.
fn read(counter: &AtomicU64) -> u64 {
    Metrics::get(counter)
}

/// One counter family without labels (`name` gets the unit and `_total`).
fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: u64,
) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(enc.encode_descriptor(name, help, unit, metric.metric_type())?)
}

/// One gauge family without labels (`name` gets the unit).
fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: u64,
) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(enc.encode_descriptor(name, help, unit, metric.metric_type())?)
}

#[cfg(test)]
mod check;
#[cfg(test)]
mod tests;
