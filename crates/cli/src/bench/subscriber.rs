//! One bench subscriber: reads MESSAGEs as fast as the socket gives them, records
//! publish-to-delivery latency, and acknowledges in the client ack modes.
//!
//! Hot loop: one `read` into a large buffer, then every complete frame in it is
//! found with the [`Scanner`] (no allocation per message),
//! timed against one clock reading per read, and all ACKs of that read go out in
//! one write. The shared delivered counter is bumped once per read.

use super::clock;
use super::flow::Window;
use super::proto::{Session, put_ack, read_stamp};
use super::scan::Scanner;
use anyhow::{Result, bail};
use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use stompkit_frame::{AckMode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// What one subscriber saw.
pub struct SubscriberStats {
    /// Latency of measured messages, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Measured messages received.
    pub delivered: u64,
    /// Warm-up messages received.
    pub warmup: u64,
    /// MESSAGEs whose body was not one of ours.
    pub foreign: u64,
    /// When the last measured message arrived.
    pub last_delivery: Option<Instant>,
}

/// A new latency histogram: 1 ns to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("constant bounds are valid")
}

/// Runs until `stop` turns true; returns the stats, and the failure that ended
/// it early if any (an ERROR from the broker, a closed connection, a malformed
/// frame): what was received until then still counts.
pub async fn run(
    session: Session,
    ack: AckMode,
    delivered_total: Arc<AtomicU64>,
    window: Arc<Window>,
    stop: watch::Receiver<bool>,
) -> (SubscriberStats, Option<anyhow::Error>) {
    let mut stats = SubscriberStats {
        latency: new_histogram(),
        delivered: 0,
        warmup: 0,
        foreign: 0,
        last_delivery: None,
    };
    let error = receive(session, ack, delivered_total, &window, stop, &mut stats)
        .await
        .err();
    (stats, error)
}

/// The reading loop behind [`run`].
async fn receive(
    session: Session,
    ack: AckMode,
    delivered_total: Arc<AtomicU64>,
    window: &Window,
    mut stop: watch::Receiver<bool>,
    stats: &mut SubscriberStats,
) -> Result<()> {
    let Session {
        stream,
        mut buf,
        version,
        ..
    } = session;
    let (mut rd, mut wr) = stream.into_split();
    let mut scanner = Scanner::default();
    let mut acks = Acks::new(ack, version);
    buf.reserve(256 * 1024);
    loop {
        if buf.capacity() - buf.len() < 64 * 1024 {
            buf.reserve(256 * 1024);
        }
        let read = tokio::select! {
            biased;
            _ = stop.changed() => break,
            read = rd.read_buf(&mut buf) => read?,
        };
        if read == 0 {
            if *stop.borrow() {
                break;
            }
            bail!("broker closed a subscriber connection");
        }
        let now = Instant::now();
        let counts = take_frames(
            &mut scanner,
            &mut buf,
            clock::nanos_at(now),
            stats,
            &mut acks,
        )?;
        window.received(counts.messages);
        acks.end_of_read();
        if !acks.out.is_empty() {
            wr.write_all(&acks.out).await?;
            wr.flush().await?;
            acks.out.clear();
        }
        if counts.measured > 0 {
            stats.delivered += counts.measured;
            stats.last_delivery = Some(now);
            delivered_total.fetch_add(counts.measured, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// What one read held.
struct ReadCounts {
    /// MESSAGEs of the measured phase.
    measured: u64,
    /// Every MESSAGE.
    messages: u64,
}

/// Takes every complete frame out of `buf`: MESSAGEs are timed against
/// `now_ns` and acknowledged into `acks`; an ERROR ends the subscriber.
fn take_frames(
    scanner: &mut Scanner,
    buf: &mut BytesMut,
    now_ns: u64,
    stats: &mut SubscriberStats,
    acks: &mut Acks,
) -> Result<ReadCounts> {
    let mut counts = ReadCounts {
        measured: 0,
        messages: 0,
    };
    while let Some(frame) = scanner.next(buf)? {
        let command = &buf[frame.command.clone()];
        if command == b"MESSAGE" {
            counts.messages += 1;
            match read_stamp(&buf[frame.body.clone()]) {
                Some((b'M', sent)) => {
                    counts.measured += 1;
                    // A value out of the histogram's range (an hour) is not recorded.
                    let _out_of_range = stats.latency.record(now_ns.saturating_sub(sent).max(1));
                }
                Some(_) => stats.warmup += 1,
                None => stats.foreign += 1,
            }
            if acks.mode != AckMode::Auto {
                let ack_id = frame.ack.clone().map(|r| &buf[r]);
                let message_id = frame.message_id.clone().map_or(&b""[..], |r| &buf[r]);
                acks.message(ack_id, message_id);
            }
        } else if command == b"ERROR" {
            let message = frame.message.clone().map_or_else(String::new, |r| {
                String::from_utf8_lossy(&buf[r]).into_owned()
            });
            bail!("broker sent ERROR to a subscriber: {message}");
        }
        buf.advance(frame.consumed);
    }
    Ok(counts)
}

/// The ACKs a subscriber owes, written once per read.
struct Acks {
    mode: AckMode,
    version: Version,
    /// Encoded ACK frames to write.
    out: Vec<u8>,
    /// Cumulative mode: the last message's `ack` and `message-id`, and whether
    /// this read had one.
    last_ack: Vec<u8>,
    last_message_id: Vec<u8>,
    due: bool,
}

impl Acks {
    fn new(mode: AckMode, version: Version) -> Acks {
        Acks {
            mode,
            version,
            out: Vec::new(),
            last_ack: Vec::new(),
            last_message_id: Vec::new(),
            due: false,
        }
    }

    /// A MESSAGE to acknowledge (not in auto mode).
    fn message(&mut self, ack_id: Option<&[u8]>, message_id: &[u8]) {
        if self.mode == AckMode::ClientIndividual {
            put_ack(&mut self.out, self.version, ack_id, message_id);
            return;
        }
        // Cumulative: one ACK for the last message of this read.
        self.last_ack.clear();
        if let Some(id) = ack_id {
            self.last_ack.extend_from_slice(id);
        }
        self.last_message_id.clear();
        self.last_message_id.extend_from_slice(message_id);
        self.due = true;
    }

    /// After a read's frames: the cumulative ACK, if one is due.
    fn end_of_read(&mut self) {
        if !std::mem::take(&mut self.due) {
            return;
        }
        let id = (self.version == Version::V1_2 && !self.last_ack.is_empty())
            .then_some(&self.last_ack[..]);
        put_ack(&mut self.out, self.version, id, &self.last_message_id);
    }
}
