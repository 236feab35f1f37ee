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
use bytes::Buf;
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
    let mut acks: Vec<u8> = Vec::new();
    let mut last_ack: Vec<u8> = Vec::new();
    let mut last_message_id: Vec<u8> = Vec::new();
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
        let now_ns = clock::nanos_at(now);
        let mut measured = 0u64;
        let mut messages = 0u64;
        let mut to_ack = false;
        while let Some(frame) = scanner.next(&buf)? {
            let command = &buf[frame.command.clone()];
            if command == b"MESSAGE" {
                messages += 1;
                match read_stamp(&buf[frame.body.clone()]) {
                    Some((b'M', sent)) => {
                        measured += 1;
                        let _ = stats.latency.record(now_ns.saturating_sub(sent).max(1));
                    }
                    Some(_) => stats.warmup += 1,
                    None => stats.foreign += 1,
                }
                if ack != AckMode::Auto {
                    let ack_id = frame.ack.clone().map(|r| &buf[r]);
                    let message_id = frame.message_id.clone().map_or(&b""[..], |r| &buf[r]);
                    if ack == AckMode::ClientIndividual {
                        put_ack(&mut acks, version, ack_id, message_id);
                    } else {
                        // Cumulative: one ACK for the last message of this read.
                        last_ack.clear();
                        if let Some(id) = ack_id {
                            last_ack.extend_from_slice(id);
                        }
                        last_message_id.clear();
                        last_message_id.extend_from_slice(message_id);
                        to_ack = true;
                    }
                }
            } else if command == b"ERROR" {
                let message = frame.message.clone().map_or_else(String::new, |r| {
                    String::from_utf8_lossy(&buf[r]).into_owned()
                });
                bail!("broker sent ERROR to a subscriber: {message}");
            }
            buf.advance(frame.consumed);
        }
        window.received(messages);
        if to_ack {
            let id = (version == Version::V1_2 && !last_ack.is_empty()).then_some(&last_ack[..]);
            put_ack(&mut acks, version, id, &last_message_id);
        }
        if !acks.is_empty() {
            wr.write_all(&acks).await?;
            wr.flush().await?;
            acks.clear();
        }
        if measured > 0 {
            stats.delivered += measured;
            stats.last_delivery = Some(now);
            delivered_total.fetch_add(measured, Ordering::Relaxed);
        }
    }
    Ok(())
}
