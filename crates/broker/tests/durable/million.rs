//! 1,000,000 stored messages through a SIGKILL.

use super::harness::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stompkit_frame::Command;
use tokio::sync::Semaphore;

const N: usize = 1_000_000;
/// SENDs per transaction: one COMMIT (one record, one receipt) per this many.
const PER_TRANSACTION: usize = 1000;
/// Transactions written ahead of their receipts.
const WINDOW: usize = 4;
const QUEUE: &str = "/queue/million";

/// Fills a durable queue with 1,000,000 small persistent messages (committed
/// in transactions of 1,000, pipelined), SIGKILLs the broker, restarts it and
/// consumes them all: every one, in publish order, each once.
///
/// The queue limits are raised for it (`STOMPKIT_DESTINATIONS_QUEUE_MAX_MESSAGES`
/// 2,000,000, `..._QUEUE_MAX_BYTES` 2 GiB): the defaults (100,000 messages,
/// 64 MiB) would refuse SENDs long before a million.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1,000,000 messages take minutes in a debug build; `cargo xtask ci` runs it \
            in release (step durable-release: cargo test -p stompkit-broker --release \
            --test durable -- --ignored)"]
async fn a_million_stored_messages_survive_sigkill_in_order() {
    let scratch = Scratch::new("million");
    let launch = || {
        scratch
            .launch()
            .env("STOMPKIT_DESTINATIONS_QUEUE_MAX_MESSAGES", "2000000")
            .env("STOMPKIT_DESTINATIONS_QUEUE_MAX_BYTES", "2147483648")
            .startup_timeout(Duration::from_secs(600))
    };
    let broker = launch().start();

    let started = Instant::now();
    fill(broker.addr).await;
    let filled = started.elapsed();
    let size: u64 = scratch
        .segments()
        .iter()
        .map(|s| s.metadata().unwrap().len())
        .sum();
    broker.crash();

    let restarting = Instant::now();
    let broker = launch().start();
    let recovered = restarting.elapsed();

    let consuming = Instant::now();
    let mut conn = Conn::connect(broker.addr).await;
    let end = marker();
    conn.request(transient(QUEUE, &end, &[])).await;
    let subscribe = [("destination", QUEUE), ("id", "all"), ("ack", "auto")];
    conn.w
        .send(&frame(Command::Subscribe, &subscribe, b""))
        .await;
    let mut ids = HashSet::with_capacity(N);
    let mut next = 0;
    loop {
        let m = conn.r.next().await;
        assert_eq!(m.command, Command::Message, "{m:?}");
        if m.body() == end.as_bytes() {
            break;
        }
        let text = std::str::from_utf8(m.body()).unwrap();
        assert_eq!(
            text.parse::<usize>().ok(),
            Some(next),
            "after {next} in order"
        );
        assert!(
            ids.insert(m.message_id().unwrap().to_owned()),
            "message-id repeated: {m:?}"
        );
        next += 1;
    }
    assert_eq!(next, N, "messages recovered");
    println!(
        "{N} messages: filled in {filled:?} ({} MiB of segments), recovered in \
         {recovered:?}, consumed in {:?}",
        size >> 20,
        consuming.elapsed()
    );
}

/// Sends the N messages as transactions of PER_TRANSACTION, WINDOW ahead, and
/// waits for every COMMIT's receipt.
async fn fill(addr: std::net::SocketAddr) {
    let Conn { mut r, mut w, .. } = Conn::connect(addr).await;
    let permits = Arc::new(Semaphore::new(WINDOW));
    let transactions = N / PER_TRANSACTION;
    let writer = tokio::spawn({
        let permits = Arc::clone(&permits);
        async move {
            let mut bytes = Vec::with_capacity(PER_TRANSACTION * 80);
            for j in 0..transactions {
                permits.acquire().await.unwrap().forget();
                bytes.clear();
                bytes.extend_from_slice(format!("BEGIN\ntransaction:t{j}\n\n\0").as_bytes());
                for i in j * PER_TRANSACTION..(j + 1) * PER_TRANSACTION {
                    let send = format!(
                        "SEND\ndestination:{QUEUE}\npersistent:true\ntransaction:t{j}\n\n{i}\0"
                    );
                    bytes.extend_from_slice(send.as_bytes());
                }
                let commit = format!("COMMIT\ntransaction:t{j}\nreceipt:c{j}\n\n\0");
                bytes.extend_from_slice(commit.as_bytes());
                w.push_raw(&bytes);
                w.flush().await;
            }
            w
        }
    });
    for j in 0..transactions {
        let f = r.next().await;
        assert_eq!(f.command, Command::Receipt, "after {j} receipts: {f:?}");
        permits.add_permits(1);
    }
    drop(writer.await.unwrap());
}
