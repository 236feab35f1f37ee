//! Message expiry: `expiration:<ms from now>` (RabbitMQ), `expires:<ms since
//! the epoch>` (ActiveMQ, 0 = never), `[destinations] default_ttl_ms`.

use super::harness::*;
use std::time::{Duration, Instant};

/// Waits until `stompkit_messages_expired_total` is `n`.
async fn assert_expired_counted(broker: &BrokerProcess, n: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let expired = broker.metric("stompkit_messages_expired_total");
        if expired == Some(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expired messages not counted: stompkit_messages_expired_total {expired:?}, wanted {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn expired_messages_are_never_delivered_nor_dead_lettered_but_counted() {
    const QUEUE: &str = "/queue/ttl";
    let scratch = Scratch::new("ttl");
    let broker = scratch.launch().metrics().start();
    let mut conn = Conn::connect(broker.addr).await;
    let soon = (now_ms() + 300).to_string();
    let later = (now_ms() + 600_000).to_string();
    let sends = [
        persistent(QUEUE, "expiration-300", &[("expiration", "300")]),
        persistent(QUEUE, "plain", &[]),
        persistent(QUEUE, "expires-soon", &[("expires", &soon)]),
        persistent(QUEUE, "expires-0-never", &[("expires", "0")]),
        persistent(QUEUE, "expiration-long", &[("expiration", "600000")]),
        transient(QUEUE, "transient-expires-later", &[("expires", &later)]),
        transient(QUEUE, "transient-expiration-300", &[("expiration", "300")]),
    ];
    for send in sends {
        conn.request(send).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        bodies(&drain(broker.addr, QUEUE).await),
        [
            "plain",
            "expires-0-never",
            "expiration-long",
            "transient-expires-later"
        ]
    );
    let dead = drain(broker.addr, "/queue/ttl.dlq").await;
    assert!(dead.is_empty(), "expired messages dead-lettered: {dead:?}");
    assert_expired_counted(&broker, 3.0).await;
}

/// A message that expires while it waits behind an unacknowledged one
/// (prefetch 1) is skipped when the consumer gets credit again.
#[tokio::test]
async fn a_message_expiring_in_the_queue_is_skipped_at_delivery() {
    const QUEUE: &str = "/queue/ttl-waiting";
    let scratch = Scratch::new("ttl-waiting");
    let broker = scratch.start();
    let mut consumer = Conn::connect(broker.addr).await;
    let mut early = consumer
        .subscribe(QUEUE, "c", "client-individual", &[("prefetch-count", "1")])
        .await;
    let mut producer = Conn::connect(broker.addr).await;
    producer.request(persistent(QUEUE, "hold", &[])).await;
    producer
        .request(persistent(QUEUE, "short", &[("expiration", "300")]))
        .await;
    producer.request(persistent(QUEUE, "after", &[])).await;
    let hold = consumer.next_message(std::mem::take(&mut early)).await;
    assert_eq!(body(&hold), "hold");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let early = consumer.ack(&hold, false, &[]).await;
    let next = consumer.next_message(early).await;
    assert_eq!(body(&next), "after");
}

#[tokio::test]
async fn default_ttl_expires_messages_without_an_expiry_header() {
    const QUEUE: &str = "/queue/ttl-default";
    let scratch = Scratch::new("ttl-default");
    let broker = scratch
        .launch()
        .env("STOMPKIT_DESTINATIONS_DEFAULT_TTL_MS", "1000")
        .start();
    let mut conn = Conn::connect(broker.addr).await;
    conn.request(persistent(QUEUE, "old-persistent", &[])).await;
    conn.request(transient(QUEUE, "old-transient", &[])).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A subscriber first, so the marker (under the same TTL) is delivered at once.
    let mut consumer = Conn::connect(broker.addr).await;
    let before = consumer.subscribe(QUEUE, "c", "auto", &[]).await;
    let end = marker();
    conn.request(transient(QUEUE, &end, &[])).await;
    let got = consumer.until_body(before, &end).await;
    assert!(got.is_empty(), "{:?}", bodies(&got));
}

/// Expiry is kept on disk as a point in time: a persistent message that
/// expires while the broker is down is not delivered after the restart.
#[tokio::test]
async fn messages_that_expire_while_the_broker_is_down_stay_undelivered() {
    const QUEUE: &str = "/queue/ttl-restart";
    let scratch = Scratch::new("ttl-restart");
    let broker = scratch.start();
    let mut conn = Conn::connect(broker.addr).await;
    let sent = Instant::now();
    let soon = (now_ms() + 1500).to_string();
    conn.request(persistent(QUEUE, "expires", &[("expires", &soon)]))
        .await;
    conn.request(persistent(QUEUE, "expiration", &[("expiration", "1500")]))
        .await;
    conn.request(persistent(QUEUE, "kept", &[])).await;
    broker.crash();
    let wait = Duration::from_millis(2000).saturating_sub(sent.elapsed());
    tokio::time::sleep(wait).await;
    let broker = scratch.start();
    assert_eq!(bodies(&drain(broker.addr, QUEUE).await), ["kept"]);
}
