//! One bench publisher: writes pre-encoded SEND frames, many per `write` call.
//!
//! The SEND is encoded once ([`SendTemplate`]); a batch buffer holds that frame
//! repeated, and per batch only each body's stamp (marker + send time) is patched
//! in before one `write_all`. Without `--rate` batches go out back to back and TCP
//! back-pressure sets the pace. With a rate, a batch holds the messages that have
//! come due (tokio's timer ticks in milliseconds, so at high rates that is a
//! millisecond's worth) and every frame is stamped with the time it is written.
//! Stamping with the due time instead would charge the timer's granularity to the
//! broker; a broker that stalls the publisher shows instead as the publisher
//! falling behind schedule ([`PublisherStats::max_lag`]) and a published rate
//! below the one asked for.
//!
//! A reader task watches the connection for an ERROR, and at the end a DISCONNECT
//! with a receipt confirms the broker has read every SEND.

use super::clock;
use super::flow::Window;
use super::proto::{SendTemplate, Session, stamp};
use super::scan::Scanner;
use crate::transport::{ReadHalf, WriteHalf};
use anyhow::{Result, anyhow, bail};
use bytes::{Buf, BytesMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, watch};

/// How much one publisher sends.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Measured messages to send (`None`: until `duration` is over).
    pub count: Option<u64>,
    /// How long to send measured messages when `count` is `None`.
    pub duration: Duration,
    /// Warm-up time before measuring.
    pub warmup: Duration,
    /// Messages per second for this publisher (`None`: as fast as possible).
    pub rate: Option<f64>,
    /// Largest number of frames per write.
    pub batch: usize,
    /// How long to wait for the final RECEIPT.
    pub receipt_timeout: Duration,
}

/// The counters a publisher shares with the rest of the run.
pub struct Counters {
    /// Measured messages published, over all publishers (for the progress bar).
    pub published: Arc<AtomicU64>,
    /// The publishers' window (see [`super::flow`]).
    pub window: Arc<Window>,
    /// Deliveries one message makes (subscribers for a topic, 1 for a queue).
    pub fan_out: u64,
}

/// What one publisher did.
pub struct PublisherStats {
    /// Measured messages written.
    pub published: u64,
    /// Warm-up messages written.
    pub warmup: u64,
    /// When the measured phase started.
    pub measured_start: Instant,
    /// When the last measured frame was written.
    pub end: Instant,
    /// With a rate: the furthest the measured phase fell behind its schedule.
    pub max_lag: Duration,
    /// Receipted publishing ([`super::receipted`]): SEND written → RECEIPT read,
    /// nanoseconds, of the measured messages. `None` here.
    pub receipt_latency: Option<hdrhistogram::Histogram<u64>>,
}

/// Waits for `start`, sends the warm-up and measured phases, then disconnects.
pub async fn run(
    session: Session,
    template: SendTemplate,
    plan: Plan,
    counters: Counters,
    mut start: watch::Receiver<bool>,
) -> Result<PublisherStats> {
    let Session { stream, buf, .. } = session;
    let (rd, wr) = stream.into_split();
    let (error_tx, mut error_rx) = oneshot::channel();
    let reader = tokio::spawn(watch_replies(rd, buf, error_tx));
    while !*start.borrow_and_update() {
        start.changed().await?;
    }
    let frame_len = template.bytes.len();
    let batch = plan.batch.max(1);
    let mut phase = Phase {
        wr,
        frames: template.bytes.repeat(batch),
        frame_len,
        body_at: template.body_at,
        batch,
        rate: plan.rate,
        max_lag: Duration::ZERO,
        window: counters.window,
        fan_out: counters.fan_out,
    };
    let warmup = if plan.warmup.is_zero() {
        0
    } else {
        let until = Instant::now() + plan.warmup;
        phase
            .send(b'W', None, Some(until), &mut error_rx, None)
            .await?
    };
    let measured_start = Instant::now();
    let until = match plan.count {
        Some(_) => None,
        None => Some(measured_start + plan.duration),
    };
    let published = phase
        .send(
            b'M',
            plan.count,
            until,
            &mut error_rx,
            Some(&counters.published),
        )
        .await?;
    let end = Instant::now();
    phase
        .wr
        .write_all(b"DISCONNECT\nreceipt:bench-end\n\n\0")
        .await?;
    phase.wr.flush().await?;
    match tokio::time::timeout(plan.receipt_timeout, reader).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(e),
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => bail!(
            "no RECEIPT for a publisher's DISCONNECT within {:?}",
            plan.receipt_timeout
        ),
    }
    Ok(PublisherStats {
        published,
        warmup,
        measured_start,
        end,
        max_lag: phase.max_lag,
        receipt_latency: None,
    })
}

struct Phase {
    wr: WriteHalf,
    frames: Vec<u8>,
    frame_len: usize,
    body_at: usize,
    batch: usize,
    rate: Option<f64>,
    max_lag: Duration,
    window: Arc<Window>,
    fan_out: u64,
}

impl Phase {
    /// Sends frames marked `marker` until `count` are sent or `until` passes.
    async fn send(
        &mut self,
        marker: u8,
        count: Option<u64>,
        until: Option<Instant>,
        error: &mut oneshot::Receiver<String>,
        published_total: Option<&AtomicU64>,
    ) -> Result<u64> {
        let start = Instant::now();
        let start_ns = clock::nanos_at(start);
        let mut sent = 0u64;
        loop {
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) || count.is_some_and(|c| sent >= c) {
                return Ok(sent);
            }
            if let Ok(message) = error.try_recv() {
                bail!("broker sent ERROR to a publisher: {message}");
            }
            let mut n = self.batch as u64;
            if let Some(c) = count {
                n = n.min(c - sent);
            }
            let now_ns = clock::nanos_at(now);
            if let Some(rate) = self.rate {
                let due = ((now - start).as_secs_f64() * rate) as u64 + 1;
                if due <= sent {
                    let next = start + Duration::from_secs_f64(sent as f64 / rate);
                    let next = until.map_or(next, |u| next.min(u));
                    tokio::time::sleep_until(next.into()).await;
                    continue;
                }
                n = n.min(due - sent);
                // The oldest message of this batch was due at sent / rate.
                let due_at = start_ns + (sent as f64 * 1e9 / rate) as u64;
                let lag = Duration::from_nanos(now_ns.saturating_sub(due_at));
                self.max_lag = self.max_lag.max(lag);
            }
            self.window.acquire(n * self.fan_out).await;
            for i in 0..n as usize {
                let at = i * self.frame_len + self.body_at;
                stamp(&mut self.frames[at..], marker, now_ns);
            }
            self.wr
                .write_all(&self.frames[..n as usize * self.frame_len])
                .await?;
            self.wr.flush().await?;
            sent += n;
            if let Some(total) = published_total {
                total.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// Reads what the broker sends a publisher: `Ok` on the final RECEIPT or when the
/// broker closes, an error on ERROR (also passed to the writer through `error`).
async fn watch_replies(
    mut rd: ReadHalf,
    mut buf: BytesMut,
    error: oneshot::Sender<String>,
) -> Result<()> {
    let mut scanner = Scanner::default();
    loop {
        while let Some(frame) = scanner.next(&buf)? {
            match &buf[frame.command.clone()] {
                b"RECEIPT" => return Ok(()),
                b"ERROR" => {
                    let message = frame.message.clone().map_or_else(String::new, |r| {
                        String::from_utf8_lossy(&buf[r]).into_owned()
                    });
                    let _ = error.send(message.clone());
                    return Err(anyhow!("broker sent ERROR to a publisher: {message}"));
                }
                _ => {}
            }
            buf.advance(frame.consumed);
        }
        if rd.read_buf(&mut buf).await? == 0 {
            // RabbitMQ's Web-STOMP closes on DISCONNECT without the RECEIPT.
            // Earlier, a close shows as a failed write.
            return Ok(());
        }
    }
}
