//! Dead letters: `NACK` with `requeue:false`, and `[destinations]
//! max_deliveries` (NACKs and deliveries returned by a disconnect), into
//! `/queue/<name>.dlq`.

use super::harness::*;
use std::time::Duration;
use stompkit_frame::Frame;

/// Asserts `m` is the dead letter of `queue`'s message with these values.
fn assert_dead_letter(m: &Frame, queue: &str, count: u32, reason: &str) {
    let dlq = format!("{queue}.dlq");
    assert_eq!(m.destination(), Some(dlq.as_str()), "{m:?}");
    assert_eq!(m.get("original-destination"), Some(queue), "{m:?}");
    assert_eq!(
        m.get("delivery-count"),
        Some(count.to_string().as_str()),
        "{m:?}"
    );
    assert_eq!(m.get("dead-letter-reason"), Some(reason), "{m:?}");
}

/// NACKs `nacks` deliveries in turn, starting with `first` (each checked: its
/// body, `redelivered` from the second on), and returns the delivery that
/// follows the last NACK.
async fn nack_rounds(consumer: &mut Conn, first: Frame, want: &str, nacks: u32) -> Frame {
    let mut delivery = first;
    for n in 1..=nacks {
        assert_eq!(body(&delivery), want);
        assert_eq!(redelivered(&delivery), n > 1, "delivery {n}: {delivery:?}");
        let early = consumer.ack(&delivery, true, &[]).await;
        delivery = consumer.next_message(early).await;
    }
    delivery
}

/// `requeue:false` dead-letters at once, with the headers, and the move is as
/// durable as the NACK (receipted): after a SIGKILL it is in the `.dlq`, not
/// back in the queue.
#[tokio::test]
async fn a_nack_with_requeue_false_dead_letters_at_once_and_durably() {
    const QUEUE: &str = "/queue/orders";
    let scratch = Scratch::new("dlq-nack");
    let broker = scratch.start();
    let mut producer = Conn::connect(broker.addr).await;
    producer
        .request(persistent(QUEUE, "poison", &[("x-trace", "42")]))
        .await;
    let mut consumer = Conn::connect(broker.addr).await;
    let early = consumer
        .subscribe(QUEUE, "c", "client-individual", &[])
        .await;
    let first = consumer.next_message(early).await;
    // One plain NACK (requeued, redelivered), then requeue:false.
    let second = nack_rounds(&mut consumer, first.clone(), "poison", 1).await;
    assert!(redelivered(&second), "{second:?}");
    assert_eq!(second.message_id(), first.message_id());
    let early = consumer.ack(&second, true, &[("requeue", "false")]).await;
    assert!(early.is_empty(), "{early:?}");
    consumer.assert_quiet(Duration::from_millis(300)).await;
    broker.crash();

    let broker = scratch.start();
    let left = drain(broker.addr, QUEUE).await;
    assert!(left.is_empty(), "{left:?}");
    let dead = drain(broker.addr, "/queue/orders.dlq").await;
    assert_eq!(bodies(&dead), ["poison"]);
    assert_dead_letter(&dead[0], QUEUE, 2, "nack");
    assert_eq!(dead[0].get("x-trace"), Some("42"), "headers kept");
}

/// With `max_deliveries = 3`, the third delivery NACKed goes to the `.dlq`.
#[tokio::test]
async fn the_last_allowed_delivery_nacked_is_dead_lettered() {
    const QUEUE: &str = "/queue/nacked";
    let scratch = Scratch::new("dlq-max");
    let broker = scratch
        .launch()
        .env("STOMPKIT_DESTINATIONS_MAX_DELIVERIES", "3")
        .start();
    let mut producer = Conn::connect(broker.addr).await;
    producer.request(persistent(QUEUE, "m", &[])).await;
    let mut consumer = Conn::connect(broker.addr).await;
    let early = consumer
        .subscribe(QUEUE, "c", "client-individual", &[])
        .await;
    let first = consumer.next_message(early).await;
    let third = nack_rounds(&mut consumer, first, "m", 2).await;
    assert_eq!(body(&third), "m");
    assert!(redelivered(&third));
    let early = consumer.ack(&third, true, &[]).await;
    assert!(early.is_empty(), "a fourth delivery: {early:?}");
    consumer.assert_quiet(Duration::from_millis(300)).await;
    let dead = drain(broker.addr, "/queue/nacked.dlq").await;
    assert_eq!(bodies(&dead), ["m"]);
    assert_dead_letter(&dead[0], QUEUE, 3, "max-deliveries");
}

/// A delivery returned unacknowledged (the subscriber disconnects) counts too.
#[tokio::test]
async fn deliveries_returned_by_a_disconnect_count_toward_max_deliveries() {
    const QUEUE: &str = "/queue/abandoned";
    let scratch = Scratch::new("dlq-returned");
    let broker = scratch
        .launch()
        .env("STOMPKIT_DESTINATIONS_MAX_DELIVERIES", "3")
        .start();
    let mut producer = Conn::connect(broker.addr).await;
    producer.request(persistent(QUEUE, "m", &[])).await;
    for n in 1..=3 {
        let mut consumer = Conn::connect(broker.addr).await;
        let early = consumer.subscribe(QUEUE, "c", "client", &[]).await;
        let delivery = consumer.next_message(early).await;
        assert_eq!(body(&delivery), "m");
        assert_eq!(redelivered(&delivery), n > 1, "delivery {n}");
        consumer.disconnect().await;
    }
    assert!(drain(broker.addr, QUEUE).await.is_empty());
    let dead = drain(broker.addr, "/queue/abandoned.dlq").await;
    assert_eq!(bodies(&dead), ["m"]);
    assert_dead_letter(&dead[0], QUEUE, 3, "max-deliveries");
}

/// The default is 10 deliveries; 0 means no limit.
#[tokio::test]
async fn max_deliveries_is_10_by_default_and_0_means_unlimited() {
    const QUEUE: &str = "/queue/stubborn";
    let scratch = Scratch::new("dlq-default");
    let broker = scratch.start();
    let mut producer = Conn::connect(broker.addr).await;
    producer.request(persistent(QUEUE, "m", &[])).await;
    let mut consumer = Conn::connect(broker.addr).await;
    let early = consumer
        .subscribe(QUEUE, "c", "client-individual", &[])
        .await;
    let first = consumer.next_message(early).await;
    let tenth = nack_rounds(&mut consumer, first, "m", 9).await;
    let early = consumer.ack(&tenth, true, &[]).await;
    assert!(early.is_empty(), "an eleventh delivery: {early:?}");
    consumer.assert_quiet(Duration::from_millis(300)).await;
    let dead = drain(broker.addr, "/queue/stubborn.dlq").await;
    assert_eq!(bodies(&dead), ["m"]);
    assert_dead_letter(&dead[0], QUEUE, 10, "max-deliveries");
    drop(broker);

    let unlimited = Scratch::new("dlq-unlimited");
    let broker = unlimited
        .launch()
        .env("STOMPKIT_DESTINATIONS_MAX_DELIVERIES", "0")
        .start();
    let mut producer = Conn::connect(broker.addr).await;
    producer.request(persistent(QUEUE, "m", &[])).await;
    let mut consumer = Conn::connect(broker.addr).await;
    let early = consumer
        .subscribe(QUEUE, "c", "client-individual", &[])
        .await;
    let first = consumer.next_message(early).await;
    let sixteenth = nack_rounds(&mut consumer, first, "m", 15).await;
    assert_eq!(body(&sixteenth), "m");
    let dead = drain(broker.addr, "/queue/stubborn.dlq").await;
    assert!(dead.is_empty(), "{dead:?}");
}
