//! `--then-drain`: after a publish-only run into a queue, consume everything it
//! published (ack auto, unmeasured), so a durable queue does not keep a
//! benchmark's messages on the broker's disk for the runs that follow.
//!
//! It counts MESSAGE frames and nothing else: no timing, no stamps.

use super::connect_many;
use super::proto::{Endpoint, Session};
use super::scan::Scanner;
use anyhow::{Context, Result, bail};
use bytes::Buf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stompkit_frame::{AckMode, Frame};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Subscribes `consumers` sessions to `destination` and reads until `expected`
/// MESSAGEs came, or none came for `idle`. Returns how many came.
pub async fn run(
    endpoint: &Endpoint,
    destination: &str,
    consumers: usize,
    expected: u64,
    idle: Duration,
) -> Result<u64> {
    let count = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut set = JoinSet::new();
    for mut session in connect_many(endpoint, consumers)
        .await
        .context("connecting consumers")?
    {
        session
            .send(&Frame::subscribe(destination, "0", AckMode::Auto))
            .await?;
        set.spawn(count_messages(session, count.clone(), stop_rx.clone()));
    }
    let mut last = 0;
    let mut last_change = Instant::now();
    loop {
        let now = count.load(Ordering::Relaxed);
        if now >= expected || set.is_empty() {
            break;
        }
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= idle {
            break;
        }
        if let Some(joined) = set.try_join_next() {
            joined??;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    while let Some(joined) = set.join_next().await {
        joined??;
    }
    Ok(count.load(Ordering::Relaxed))
}

/// Counts the MESSAGEs one session receives until `stop`.
async fn count_messages(
    session: Session,
    count: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let Session {
        stream, mut buf, ..
    } = session;
    // The write half stays open (dropping it would close the session).
    let (mut rd, _wr) = stream.into_split();
    let mut scanner = Scanner::default();
    loop {
        let mut messages = 0;
        while let Some(frame) = scanner.next(&buf)? {
            match &buf[frame.command.clone()] {
                b"MESSAGE" => messages += 1,
                b"ERROR" => {
                    let message = frame.message.clone().map_or_else(String::new, |r| {
                        String::from_utf8_lossy(&buf[r]).into_owned()
                    });
                    bail!("broker sent ERROR: {message}");
                }
                _ => {}
            }
            buf.advance(frame.consumed);
        }
        count.fetch_add(messages, Ordering::Relaxed);
        if buf.capacity() - buf.len() < 64 * 1024 {
            buf.reserve(256 * 1024);
        }
        tokio::select! {
            biased;
            _ = stop.changed() => return Ok(()),
            read = rd.read_buf(&mut buf) => {
                if read? == 0 {
                    if *stop.borrow() {
                        return Ok(());
                    }
                    bail!("broker closed a consumer's connection");
                }
            }
        }
    }
}
