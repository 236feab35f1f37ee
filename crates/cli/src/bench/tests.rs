//! The durable options end to end against the in-process broker: receipted
//! publishing (with transactions and at a fixed rate), `--drain` and
//! `--then-drain`. (The broker may keep persistent messages in memory; what is
//! checked here is the load generator's counting.)
#![allow(clippy::unwrap_used)]

use super::*;
use clap::Parser;
use std::net::SocketAddr;
use stompkit_broker::{Broker, BrokerConfig};

/// A broker on its own runtime thread, alive until the test process exits.
fn start_broker() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut config = BrokerConfig::default();
            config.server.listen = vec!["127.0.0.1:0".into()];
            // The load generator is under test, not the store: no data directory.
            config.store.in_memory = true;
            let broker = Broker::bind(config).await.unwrap();
            tx.send(broker.local_addrs()[0]).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    load: LoadArgs,
}

/// Runs `stompkit bench ARGS --quiet` against `addr` and returns its report.
fn bench(addr: SocketAddr, args: &[&str]) -> Report {
    let url = format!("stomp://{addr}");
    let all = ["bench", "--url", &url, "--quiet", "--drain-timeout", "5"];
    let cli = Cli::try_parse_from(all.iter().chain(args)).unwrap();
    let runtime = crate::runtime(Some(2)).unwrap();
    let report = runtime.block_on(run_load(&cli.load)).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
}

#[test]
fn receipted_publishing_counts_receipts_and_then_drain_empties_the_queue() {
    let addr = start_broker();
    let r = bench(
        addr,
        &[
            "--mode",
            "queue",
            "-p",
            "2",
            "-s",
            "0",
            "--count",
            "3000",
            "--size",
            "100",
            "--warmup",
            "0.1",
            "--persistent",
            "--receipt-window",
            "64",
            "--then-drain",
        ],
    );
    assert_eq!(r.published, 3000);
    assert!(r.warmup_published > 0);
    assert_eq!(r.emptied, 3000 + r.warmup_published);
    assert!(r.persistent);
    assert_eq!(r.receipt_window, 64);
    assert!(r.receipt_p50_us > 0.0 && r.receipt_p50_us <= r.receipt_p99_us);
    assert!(r.receipt_p99_us <= r.receipt_max_us);
    assert!(r.msgs_per_sec > 0.0);
    assert_eq!((r.p50_us, r.delivered), (0.0, 0), "no subscriber");
}

#[test]
fn transactions_answer_a_whole_commit_with_one_receipt() {
    let addr = start_broker();
    let r = bench(
        addr,
        &[
            "--mode",
            "queue",
            "-p",
            "2",
            "-s",
            "0",
            "--count",
            "2500",
            "--receipt-window",
            "400",
            "--transaction",
            "200",
            "--then-drain",
        ],
    );
    assert_eq!(r.published, 2500);
    assert_eq!(r.transaction, 200);
    assert_eq!(r.emptied, 2500);
}

#[test]
fn a_fixed_rate_with_receipts_keeps_its_rate() {
    let addr = start_broker();
    let r = bench(
        addr,
        &[
            "--mode",
            "queue",
            "-p",
            "2",
            "-s",
            "0",
            "--duration",
            "0.5",
            "--rate",
            "4000",
            "--receipt-window",
            "500",
            "--then-drain",
        ],
    );
    // About 2000 messages in 0.5 s.
    assert!((1500..=2500).contains(&r.published), "{}", r.published);
    assert!(
        r.publish_msgs_per_sec > 3000.0,
        "{}",
        r.publish_msgs_per_sec
    );
    assert_eq!(r.emptied, r.published);
}

#[test]
fn drain_fills_the_queue_then_times_the_consumers() {
    let addr = start_broker();
    let r = bench(
        addr,
        &[
            "--mode",
            "queue",
            "-p",
            "2",
            "-s",
            "3",
            "--drain",
            "4000",
            "--size",
            "64",
            "--ack",
            "client-individual",
            "--sub-header",
            "prefetch-count:100",
        ],
    );
    assert_eq!(r.drain, 4000);
    assert_eq!((r.published, r.expected, r.delivered), (4000, 4000, 4000));
    assert_eq!(r.lost, 0);
    assert_eq!(r.receipt_window, DEFAULT_RECEIPT_WINDOW);
    assert!(r.duration_s > 0.0 && r.msgs_per_sec > 0.0);
    assert!(r.publish_msgs_per_sec > 0.0, "the fill's rate");
}

#[test]
fn the_durable_options_refuse_what_they_cannot_do() {
    let parse = |args: &[&str]| Cli::try_parse_from(["bench"].iter().chain(args)).map(|c| c.load);
    assert!(
        parse(&["--transaction", "10"]).is_err(),
        "needs --receipt-window"
    );
    assert!(parse(&["--drain", "10", "--count", "5"]).is_err());
    let topic_drain = parse(&["--drain", "10"]).unwrap();
    assert!(
        check_durable_options(&topic_drain).is_err(),
        "a topic has nothing to drain"
    );
    let then_drain_with_subscribers = parse(&["--mode", "queue", "--then-drain"]).unwrap();
    assert!(check_durable_options(&then_drain_with_subscribers).is_err());
    let zero = parse(&["--receipt-window", "0"]).unwrap();
    assert!(check_durable_options(&zero).is_err());
}
