//! The `--metrics` listener of the `stompkit-broker` binary, end to end: after
//! real traffic `/metrics` is valid Prometheus text (checked strictly by
//! `src/metrics_endpoint/exposition/check.rs`) showing the queues' ready and unacknowledged
//! messages and consumers, a refused login, a slow consumer's disconnect, the
//! store's write latency, the build and the process; `/healthz` answers `200
//! ok` while the broker runs and `503` while it shuts down; other paths and
//! methods are refused.
#![allow(clippy::unwrap_used)]

// The strict Prometheus text reader the unit tests use too.
#[path = "../src/metrics_endpoint/exposition/check.rs"]
mod exposition;
// The durable tests' harness: the broker process and a raw STOMP client.
#[path = "durable/harness.rs"]
#[allow(dead_code)]
mod harness;

use exposition::Exposition;
use harness::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use stompkit_frame::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request; the status and the body.
async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut text))
        .await
        .unwrap()
        .unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// `/metrics`, parsed strictly (panics, showing the text, when invalid).
async fn scrape(broker: &BrokerProcess) -> Exposition {
    let (status, text) = http(broker.metrics.unwrap(), "GET", "/metrics").await;
    assert_eq!(status, 200, "{text}");
    exposition::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A cheap argon2id hash (the cost parameters do not change the code path).
fn hash(password: &str) -> String {
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    stompkit_broker::auth::password::hash_with(password, params).unwrap()
}

/// A config file in `scratch` with one user, alice, allowed everything.
fn alice_config(scratch: &Scratch) -> PathBuf {
    let path = scratch.root().join("alice.toml");
    let text = format!(
        "[auth]\nfailure_delay_ms = 0\n\
         [[auth.users]]\nlogin = \"alice\"\npassword_hash = \"{}\"\n",
        hash("secret")
    );
    std::fs::write(&path, text).unwrap();
    path
}

const ALICE: [(&str, &str); 2] = [("login", "alice"), ("passcode", "secret")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_logins_traffic_and_the_store_show_on_metrics() {
    exposition::self_check();
    let scratch = Scratch::new("metrics");
    let config = alice_config(&scratch);
    let broker = scratch
        .launch()
        .metrics()
        .arg("--config")
        .arg(&config)
        .start();
    let before = scrape(&broker).await;
    assert_eq!(before.value("stompkit_auth_failures_total", &[]), Some(0.0));
    assert!(
        before.families["stompkit_queue_messages_ready"]
            .samples
            .is_empty()
    );

    let (mut refused, answer) =
        Conn::open(broker.addr, &[("login", "alice"), ("passcode", "no")]).await;
    assert_eq!(answer.command, Command::Error, "{answer:?}");
    assert_eq!(answer.message(), Some("access refused"));
    assert!(
        refused.r.next_within(WAIT).await.is_none(),
        "closed after ERROR"
    );

    let mut producer = Conn::connect_with(broker.addr, &ALICE).await;
    for body in ["one", "two", "three"] {
        producer
            .request(persistent("/queue/orders", body, &[]))
            .await;
    }
    let mut consumer = Conn::connect_with(broker.addr, &ALICE).await;
    let early = consumer
        .subscribe(
            "/queue/orders",
            "s",
            "client-individual",
            &[("prefetch-count", "1")],
        )
        .await;
    let first = consumer.next_message(early).await;
    assert_eq!(first.body(), b"one");

    let e = scrape(&broker).await;
    let orders = [("queue", "orders")];
    assert_eq!(e.value("stompkit_queue_messages_ready", &orders), Some(2.0));
    assert_eq!(
        e.value("stompkit_queue_messages_unacked", &orders),
        Some(1.0)
    );
    assert_eq!(e.value("stompkit_queue_consumers", &orders), Some(1.0));
    assert!(e.value("stompkit_queue_bytes", &orders).unwrap() > 0.0);
    assert_eq!(e.value("stompkit_messages_published_total", &[]), Some(3.0));
    assert_eq!(e.value("stompkit_messages_delivered_total", &[]), Some(1.0));
    assert_eq!(e.value("stompkit_auth_failures_total", &[]), Some(1.0));
    let protocol = [("reason", "protocol")];
    assert_eq!(e.value("stompkit_errors_total", &protocol), Some(1.0));
    assert_eq!(
        e.value("stompkit_connections_accepted_total", &[]),
        Some(3.0)
    );
    assert!(e.value("stompkit_connections", &[]).unwrap() >= 2.0);
    assert_eq!(e.value("stompkit_subscriptions", &[]), Some(1.0));
    assert!(e.value("stompkit_received_bytes_total", &[]).unwrap() > 0.0);
    // Three persistent SENDs, each written and synced before its RECEIPT.
    assert!(e.value("stompkit_store_write_seconds_count", &[]).unwrap() >= 3.0);
    assert_eq!(e.kind("stompkit_store_write_seconds"), Some("histogram"));
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(e.value("stompkit_build_info", &version), Some(1.0));
    if cfg!(target_os = "linux") {
        assert!(e.value("process_resident_memory_bytes", &[]).unwrap() > 1e6);
        assert!(e.value("process_open_fds", &[]).unwrap() >= 5.0);
        assert!(e.value("process_max_fds", &[]).is_some());
    }

    // Acknowledged: no longer unacknowledged; the next one is.
    let next = consumer.ack(&first, false, &[]).await;
    consumer.next_message(next).await;
    let e = scrape(&broker).await;
    assert_eq!(e.value("stompkit_queue_messages_ready", &orders), Some(1.0));
    assert_eq!(
        e.value("stompkit_queue_messages_unacked", &orders),
        Some(1.0)
    );
    assert_eq!(e.value("stompkit_messages_delivered_total", &[]), Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_disconnect_is_counted_with_its_reason() {
    let scratch = Scratch::new("metrics-slow");
    let broker = scratch
        .in_memory()
        .metrics()
        .env("STOMPKIT_LIMITS_MAX_OUTBOX_BYTES", "262144")
        .start();
    let mut slow = Conn::connect(broker.addr).await;
    slow.subscribe("/topic/firehose", "s", "auto", &[]).await;
    // Never read again: its socket buffers fill, then its outbox.
    let mut producer = Conn::connect(broker.addr).await;
    let body = "x".repeat(64 * 1024);
    let deadline = Instant::now() + WAIT;
    let metric = "stompkit_slow_consumer_disconnects_total";
    while broker.metric(metric) != Some(1.0) {
        assert!(Instant::now() < deadline, "{}", broker.metrics_text());
        for _ in 0..15 {
            producer.w.push(&transient("/topic/firehose", &body, &[]));
        }
        producer
            .request(transient("/topic/firehose", &body, &[]))
            .await;
    }
    let e = scrape(&broker).await;
    let slow_reason = [("reason", "slow_consumer")];
    assert_eq!(e.value("stompkit_errors_total", &slow_reason), Some(1.0));
    assert!(
        e.value("stompkit_messages_dropped_total", &slow_reason)
            .unwrap()
            >= 1.0
    );
    assert_eq!(
        e.value(
            "stompkit_messages_dropped_total",
            &[("reason", "no_credit")]
        ),
        Some(0.0)
    );
    // The slow one was told why, after what it had been sent.
    loop {
        let f = slow.r.next().await;
        if f.command == Command::Error {
            assert_eq!(f.message(), Some("slow consumer"));
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_ok_while_running_and_503_while_shutting_down() {
    let scratch = Scratch::new("metrics-health");
    let mut broker = scratch
        .in_memory()
        .metrics()
        .env("STOMPKIT_LIMITS_MAX_OUTBOX_BYTES", "1048576")
        .env("STOMPKIT_SERVER_CLOSE_LINGER_MS", "20000")
        .env("STOMPKIT_SERVER_SHUTDOWN_TIMEOUT_MS", "20000")
        .start();
    let addr = broker.metrics.unwrap();
    assert_eq!(
        http(addr, "GET", "/healthz").await,
        (200, "ok\n".to_owned())
    );
    assert_eq!(http(addr, "HEAD", "/healthz").await, (200, String::new()));
    assert_eq!(http(addr, "GET", "/nope").await.0, 404);
    assert_eq!(http(addr, "GET", "/api/overview").await.0, 404);
    assert_eq!(http(addr, "POST", "/metrics").await.0, 405);
    assert_eq!(http(addr, "DELETE", "/healthz").await.0, 405);

    // A consumer that stops reading: the broker's writes to it block, so its
    // connection lingers through the shutdown.
    let mut stuck = Conn::connect(broker.addr).await;
    stuck.subscribe("/queue/big", "s", "auto", &[]).await;
    let mut producer = Conn::connect(broker.addr).await;
    let body = "y".repeat(256 * 1024);
    let big = [("queue", "big")];
    let deadline = Instant::now() + WAIT;
    while scrape(&broker)
        .await
        .value("stompkit_queue_messages_ready", &big)
        < Some(1.0)
    {
        assert!(Instant::now() < deadline, "{}", broker.metrics_text());
        producer.request(transient("/queue/big", &body, &[])).await;
    }
    producer.disconnect().await;
    broker.terminate();
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = http(addr, "GET", "/healthz").await;
        if status == 503 {
            assert_eq!(body, "shutting down\n");
            break;
        }
        assert_eq!((status, body.as_str()), (200, "ok\n"));
        assert!(Instant::now() < deadline, "never 503");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // /metrics is still served meanwhile.
    assert!(
        scrape(&broker)
            .await
            .value("stompkit_connections", &[])
            .unwrap()
            >= 1.0
    );
    // The stuck consumer goes; the broker then exits.
    drop(stuck);
    let status = broker.wait_exit(WAIT).expect("the broker did not exit");
    assert!(status.success(), "{status}");
}
