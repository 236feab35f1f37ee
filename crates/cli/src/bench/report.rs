//! The bench result: one [`Report`], printed for people or as one JSON object.
//!
//! The JSON field names are a contract with `xtask` (which parses them); add
//! fields freely, rename none.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::io::Write;

/// Everything a load run measured. Latencies are microseconds, rates per second,
/// MB is 10^6 bytes of message body.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `topic` or `queue`.
    pub mode: String,
    /// The destination used.
    pub destination: String,
    /// The broker URL.
    pub url: String,
    /// Publisher connections.
    pub publishers: usize,
    /// Subscriber connections.
    pub subscribers: usize,
    /// Body size in bytes (at least 17: marker and timestamp).
    pub size: usize,
    /// Ack mode of the subscriptions.
    pub ack: String,
    /// Most deliveries the publishers let be outstanding (0: no limit).
    pub window: u64,
    /// Measured messages published (warm-up excluded).
    pub published: u64,
    /// Measured messages delivered, over all subscribers.
    pub delivered: u64,
    /// Deliveries expected: published × subscribers for topics, published for
    /// queues (0 without subscribers).
    pub expected: u64,
    /// `expected - delivered` when positive.
    pub lost: u64,
    /// `delivered - expected` when positive (duplicates or redeliveries).
    pub extra: u64,
    /// Warm-up messages published (not counted anywhere else).
    pub warmup_published: u64,
    /// MESSAGEs received whose body was not written by this run.
    pub foreign: u64,
    /// Seconds from the first measured publish to the last measured delivery
    /// (to the last publish when there are no subscribers).
    pub duration_s: f64,
    /// Seconds the publishers spent on the measured phase.
    pub publish_duration_s: f64,
    /// Delivered messages per second over `duration_s` (published per second when
    /// there are no subscribers).
    pub msgs_per_sec: f64,
    /// Body megabytes (10^6) per second matching `msgs_per_sec`.
    pub mb_per_sec: f64,
    /// Published messages per second over `publish_duration_s`.
    pub publish_msgs_per_sec: f64,
    /// With `--rate`: the furthest any publisher fell behind its schedule, in
    /// milliseconds (the broker not taking messages fast enough; the timer's
    /// millisecond granularity alone accounts for about 1-2 ms). 0 without a rate.
    pub publish_lag_max_ms: f64,
    /// Publish-to-delivery latency, median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Smallest.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// CPU seconds (user + system) this load generator used, for judging whether
    /// it was the bottleneck; `null` where unknown.
    pub client_cpu_s: Option<f64>,
    /// Every SEND was marked `persistent:true` (`--persistent`).
    pub persistent: bool,
    /// Receipted publishing (`--receipt-window`): most messages per publisher
    /// whose RECEIPT had not arrived; 0 without receipts. With receipts,
    /// `published` counts messages whose RECEIPT arrived, and the publish
    /// figures run from the first measured SEND to the last measured RECEIPT.
    pub receipt_window: u64,
    /// SENDs per transaction (`--transaction`); 0 without transactions.
    pub transaction: u64,
    /// RECEIPT latency (SEND, or COMMIT, written → RECEIPT read) of the measured
    /// messages, median; 0 without receipts.
    pub receipt_p50_us: f64,
    /// 99th percentile.
    pub receipt_p99_us: f64,
    /// 99.9th percentile.
    pub receipt_p999_us: f64,
    /// Largest.
    pub receipt_max_us: f64,
    /// `--drain N`: the messages the queue was filled with before the
    /// subscribers came (the publish figures are the fill's); then `duration_s`
    /// runs from the SUBSCRIBEs to the last delivery, and the latencies include
    /// the time each message waited in the queue. 0 for other runs.
    pub drain: u64,
    /// `--then-drain`: messages consumed after the run to empty the queue.
    pub emptied: u64,
    /// Failures (ERROR frames, closed connections); empty on a clean run.
    pub errors: Vec<String>,
}

/// Latency percentiles in microseconds: p50, p99, p99.9, max, min, mean.
pub fn latency_us(h: &Histogram<u64>) -> [f64; 6] {
    if h.is_empty() {
        return [0.0; 6];
    }
    let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
    [
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
        us(h.min()),
        (h.mean() / 100.0).round() / 10.0,
    ]
}

impl Report {
    /// One JSON object on one line.
    pub fn write_json(&self, out: &mut impl Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        writeln!(out)
    }

    /// A few lines for a person.
    pub fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{} {} via {}: {} publisher(s) -> {} subscriber(s), {} B bodies, ack {}",
            self.mode,
            self.destination,
            self.url,
            self.publishers,
            self.subscribers,
            self.size,
            self.ack
        )?;
        writeln!(
            out,
            "published  {} messages in {:.3} s ({:.0} msg/s){}",
            self.published,
            self.publish_duration_s,
            self.publish_msgs_per_sec,
            if self.warmup_published > 0 {
                format!(", after {} warm-up messages", self.warmup_published)
            } else {
                String::new()
            }
        )?;
        writeln!(
            out,
            "delivered  {} of {} expected, lost {}{} in {:.3} s",
            self.delivered,
            self.expected,
            self.lost,
            if self.extra > 0 {
                format!(", {} extra", self.extra)
            } else {
                String::new()
            },
            self.duration_s
        )?;
        writeln!(
            out,
            "throughput {:.0} msg/s, {:.2} MB/s",
            self.msgs_per_sec, self.mb_per_sec
        )?;
        writeln!(
            out,
            "latency    p50 {} us, p99 {} us, p99.9 {} us, max {} us",
            self.p50_us, self.p99_us, self.p999_us, self.max_us
        )?;
        if let Some(cpu) = self.client_cpu_s {
            let handled = (self.published + self.delivered).max(1);
            writeln!(
                out,
                "loadgen    {cpu:.2} CPU s ({:.2} us per message published or delivered)",
                cpu * 1e6 / handled as f64
            )?;
        }
        self.write_durable(out)?;
        if self.foreign > 0 {
            writeln!(
                out,
                "note       {} messages not from this run were received",
                self.foreign
            )?;
        }
        Ok(())
    }
    /// The lines of the durable options (receipts, drain, emptying).
    fn write_durable(&self, out: &mut impl Write) -> std::io::Result<()> {
        if self.receipt_window > 0 && self.drain == 0 {
            writeln!(
                out,
                "receipts   p50 {} us, p99 {} us, p99.9 {} us, max {} us (SEND written -> RECEIPT read; window {}{})",
                self.receipt_p50_us,
                self.receipt_p99_us,
                self.receipt_p999_us,
                self.receipt_max_us,
                self.receipt_window,
                if self.transaction > 0 {
                    format!(", {} SENDs per transaction", self.transaction)
                } else {
                    String::new()
                }
            )?;
        }
        if self.drain > 0 {
            writeln!(
                out,
                "drain      {} messages filled first; throughput is from SUBSCRIBE to the last delivery",
                self.drain
            )?;
        }
        if self.emptied > 0 {
            writeln!(
                out,
                "emptied    {} messages consumed after the run",
                self.emptied
            )?;
        }
        Ok(())
    }
}

/// CPU seconds used by this process so far (Linux: `/proc/self/stat`, assuming
/// the usual 100 clock ticks per second).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn percentiles_are_in_microseconds() {
        let mut h = crate::bench::subscriber::new_histogram();
        for ns in 1..=1000u64 {
            h.record(ns * 1000).unwrap();
        }
        let [p50, p99, _, max, min, _] = latency_us(&h);
        assert!((p50 - 500.0).abs() < 1.0, "{p50}");
        assert!((p99 - 990.0).abs() < 1.0, "{p99}");
        assert!((max - 1000.0).abs() < 1.0, "{max}");
        assert!((min - 1.0).abs() < 0.01, "{min}");
        assert_eq!(
            latency_us(&crate::bench::subscriber::new_histogram()),
            [0.0; 6]
        );
    }

    #[test]
    fn cpu_time_is_readable_on_linux() {
        assert!(process_cpu_seconds().is_some());
    }
}
