//! Crashes (SIGKILL) at a random-ish moment while receipted work is in flight,
//! then a restart on the same data directory.

use super::harness::*;
use std::collections::{BTreeMap, BTreeSet};
use stompkit_frame::{Command, Frame};

/// Receipted persistent SENDs: every one is there after the crash, in publish
/// order, exactly once; the unreceipted ones may be there too (never twice).
#[tokio::test]
async fn receipted_persistent_sends_survive_sigkill_in_order_exactly_once() {
    const N: usize = 4000;
    const QUEUE: &str = "/queue/crash-sends";
    let scratch = Scratch::new("sends");
    let broker = scratch.start();
    let conn = Conn::connect(broker.addr).await;
    let batches = (0..N)
        .map(|i| {
            let receipt = format!("s-{i}");
            vec![persistent(
                QUEUE,
                &format!("m-{i}"),
                &[("receipt", &receipt)],
            )]
        })
        .collect();
    let stop = random_in("SIGKILL after this many receipts", 300, 2500);
    let piped = pipeline(conn, batches, 200, stop, move || {
        broker.crash();
    })
    .await;
    assert!(
        piped.written > piped.receipts.len(),
        "no SEND was in flight at the crash"
    );

    let broker = scratch.start();
    let got = drain(broker.addr, QUEUE).await;
    let must = receipted(&piped, "s-");
    let indices = check_recovered(&got, "m-", piped.written, &must);
    let ids: BTreeSet<&str> = got.iter().map(|f| f.message_id().unwrap()).collect();
    assert_eq!(ids.len(), got.len(), "message-ids repeat");
    println!(
        "{} receipted, {} written, {} recovered",
        must.len(),
        piped.written,
        indices.len()
    );
}

/// Receipted ACKs: an acknowledged message never comes back; the others do,
/// marked redelivered.
#[tokio::test]
async fn receipted_acks_survive_sigkill() {
    const N: usize = 400;
    const QUEUE: &str = "/queue/crash-acks";
    let scratch = Scratch::new("acks");
    let broker = scratch.start();
    let frames = (0..N)
        .map(|i| persistent(QUEUE, &format!("a-{i}"), &[]))
        .collect();
    send_all(Conn::connect(broker.addr).await, frames, "f-").await;

    let mut consumer = Conn::connect(broker.addr).await;
    let mut got = consumer
        .subscribe(QUEUE, "c", "client-individual", &[])
        .await;
    let more = consumer.messages(N - got.len()).await;
    got.extend(more);
    let expected: Vec<String> = (0..N).map(|i| format!("a-{i}")).collect();
    assert_eq!(bodies(&got), expected);
    assert!(!got.iter().any(redelivered));
    let batches = got
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let ack = m.get("ack").unwrap();
            let receipt = format!("k-{i}");
            vec![frame(
                Command::Ack,
                &[("id", ack), ("receipt", &receipt)],
                b"",
            )]
        })
        .collect();
    let stop = random_in("SIGKILL after this many ACK receipts", 50, 350);
    let piped = pipeline(consumer, batches, 32, stop, move || {
        broker.crash();
    })
    .await;

    let broker = scratch.start();
    let back = drain(broker.addr, QUEUE).await;
    let acked = receipted(&piped, "k-");
    // An ACK never written cannot have been applied.
    let never_acked: BTreeSet<usize> = (piped.written..N).collect();
    let indices = check_recovered(&back, "a-", N, &never_acked);
    for i in &indices {
        assert!(
            !acked.contains(i),
            "a-{i} came back although its ACK was receipted"
        );
    }
    for m in &back {
        assert!(redelivered(m), "delivered before the crash: {m:?}");
    }
    println!(
        "{} ACKs receipted, {} written, {} came back",
        acked.len(),
        piped.written,
        indices.len()
    );
}

/// Transactions of persistent SENDs: after the crash each one is there whole
/// or not at all, whole when its COMMIT was receipted.
#[tokio::test]
async fn committed_transactions_are_all_or_nothing_across_sigkill() {
    const TRANSACTIONS: usize = 250;
    const SIZE: usize = 20;
    const QUEUE: &str = "/queue/crash-tx";
    let scratch = Scratch::new("tx");
    let broker = scratch.start();
    let conn = Conn::connect(broker.addr).await;
    let batches = (0..TRANSACTIONS)
        .map(|j| {
            let tx = format!("tx-{j}");
            let mut batch = vec![frame(Command::Begin, &[("transaction", &tx)], b"")];
            for i in 0..SIZE {
                let body = format!("t-{}", j * SIZE + i);
                batch.push(persistent(QUEUE, &body, &[("transaction", &tx)]));
            }
            let receipt = format!("c-{j}");
            let commit = [("transaction", tx.as_str()), ("receipt", &receipt)];
            batch.push(frame(Command::Commit, &commit, b""));
            batch
        })
        .collect();
    let stop = random_in("SIGKILL after this many COMMIT receipts", 20, 200);
    let piped = pipeline(conn, batches, 8, stop, move || {
        broker.crash();
    })
    .await;

    let broker = scratch.start();
    let got = drain(broker.addr, QUEUE).await;
    let committed = receipted(&piped, "c-");
    let must: BTreeSet<usize> = committed
        .iter()
        .flat_map(|j| j * SIZE..(j + 1) * SIZE)
        .collect();
    let indices = check_recovered(&got, "t-", piped.written * SIZE, &must);
    let mut per_transaction: BTreeMap<usize, usize> = BTreeMap::new();
    for i in &indices {
        *per_transaction.entry(i / SIZE).or_default() += 1;
    }
    for (j, n) in &per_transaction {
        assert_eq!(*n, SIZE, "transaction {j} came back in part: {n} of {SIZE}");
    }
    println!(
        "{} commits receipted, {} written, {} transactions recovered",
        committed.len(),
        piped.written,
        per_transaction.len()
    );
}

/// Transactions that ACK a message of one queue and SEND a new one to another
/// (a "move"): after the crash each is wholly done or wholly undone; done when
/// its COMMIT was receipted.
#[tokio::test]
async fn a_transaction_acking_and_sending_is_atomic_across_sigkill() {
    const N: usize = 200;
    const SOURCE: &str = "/queue/crash-move-from";
    const TARGET: &str = "/queue/crash-move-to";
    let scratch = Scratch::new("move");
    let broker = scratch.start();
    let frames = (0..N)
        .map(|i| persistent(SOURCE, &format!("s-{i}"), &[]))
        .collect();
    send_all(Conn::connect(broker.addr).await, frames, "f-").await;
    let mut consumer = Conn::connect(broker.addr).await;
    let mut got = consumer
        .subscribe(SOURCE, "c", "client-individual", &[])
        .await;
    let more = consumer.messages(N - got.len()).await;
    got.extend(more);
    let expected: Vec<String> = (0..N).map(|i| format!("s-{i}")).collect();
    assert_eq!(bodies(&got), expected);

    let batches = got
        .iter()
        .enumerate()
        .map(|(j, m)| {
            let tx = format!("tx-{j}");
            let receipt = format!("c-{j}");
            let ack = m.get("ack").unwrap();
            vec![
                frame(Command::Begin, &[("transaction", &tx)], b""),
                frame(Command::Ack, &[("id", ack), ("transaction", &tx)], b""),
                persistent(TARGET, &format!("d-{j}"), &[("transaction", &tx)]),
                frame(
                    Command::Commit,
                    &[("transaction", &tx), ("receipt", &receipt)],
                    b"",
                ),
            ]
        })
        .collect();
    let stop = random_in("SIGKILL after this many COMMIT receipts", 20, 180);
    let piped = pipeline(consumer, batches, 8, stop, move || {
        broker.crash();
    })
    .await;

    let broker = scratch.start();
    let committed = receipted(&piped, "c-");
    let never_written: BTreeSet<usize> = (piped.written..N).collect();
    let left = drain(broker.addr, SOURCE).await;
    let left: BTreeSet<usize> = check_recovered(&left, "s-", N, &never_written)
        .into_iter()
        .collect();
    let moved = drain(broker.addr, TARGET).await;
    let moved: BTreeSet<usize> = check_recovered(&moved, "d-", piped.written, &committed)
        .into_iter()
        .collect();
    for j in 0..N {
        assert!(
            left.contains(&j) != moved.contains(&j),
            "transaction {j} is half done: source still has it: {}, target has it: {}",
            left.contains(&j),
            moved.contains(&j)
        );
    }
    println!(
        "{} commits receipted, {} written, {} moved",
        committed.len(),
        piped.written,
        moved.len()
    );
}

/// A message delivered and not acknowledged before the crash comes back with
/// its original `message-id` and `redelivered:true`; an acknowledged one (ACK
/// with a receipt) does not; a non-persistent one is gone.
#[tokio::test]
async fn delivered_unacked_messages_come_back_redelivered_with_their_ids() {
    const QUEUE: &str = "/queue/crash-redelivered";
    let scratch = Scratch::new("redelivered");
    let broker = scratch.start();
    let mut producer = Conn::connect(broker.addr).await;
    for i in 0..10 {
        producer
            .request(persistent(
                QUEUE,
                &format!("r-{i}"),
                &[("x-n", &i.to_string())],
            ))
            .await;
    }
    producer.request(transient(QUEUE, "volatile", &[])).await;
    let mut consumer = Conn::connect(broker.addr).await;
    let mut got = consumer
        .subscribe(QUEUE, "c", "client-individual", &[])
        .await;
    let more = consumer.messages(11 - got.len()).await;
    got.extend(more);
    let mut expected: Vec<String> = (0..10).map(|i| format!("r-{i}")).collect();
    expected.push("volatile".into());
    assert_eq!(bodies(&got), expected);
    assert!(!got.iter().any(redelivered), "{got:?}");
    consumer.ack(&got[0], false, &[]).await;
    let crashed_log = broker.crash();

    let broker = scratch.start();
    let back = drain(broker.addr, QUEUE).await;
    let want: Vec<String> = (1..10).map(|i| format!("r-{i}")).collect();
    assert_eq!(bodies(&back), want, "log before the crash:\n{crashed_log}");
    for (m, before) in back.iter().zip(&got[1..10]) {
        assert_eq!(m.message_id(), before.message_id(), "{m:?}");
        assert!(redelivered(m), "{m:?}");
        assert_eq!(m.get("x-n"), before.get("x-n"), "headers kept: {m:?}");
        assert_eq!(m.destination(), Some(QUEUE));
    }
}

/// Any RECEIPT waits until every earlier persistent SEND and ACK of its
/// connection is durable: SENDs without receipts followed by a DISCONNECT with
/// one, ACKs without receipts followed by an unrelated SEND with one.
#[tokio::test]
async fn a_receipt_covers_the_earlier_persistent_frames_of_its_connection() {
    const SENT: &str = "/queue/crash-covered-sends";
    const ACKED: &str = "/queue/crash-covered-acks";
    let scratch = Scratch::new("covered");
    let broker = scratch.start();
    let mut producer = Conn::connect(broker.addr).await;
    for i in 0..50 {
        producer.w.push(&persistent(SENT, &format!("p-{i}"), &[]));
    }
    producer.w.flush().await;
    producer.disconnect().await;
    broker.crash();

    let broker = scratch.start();
    let want: Vec<String> = (0..50).map(|i| format!("p-{i}")).collect();
    assert_eq!(bodies(&drain(broker.addr, SENT).await), want);

    let frames = (0..50)
        .map(|i| persistent(ACKED, &format!("q-{i}"), &[]))
        .collect();
    send_all(Conn::connect(broker.addr).await, frames, "f-").await;
    let mut consumer = Conn::connect(broker.addr).await;
    let mut got = consumer
        .subscribe(ACKED, "c", "client-individual", &[])
        .await;
    let more = consumer.messages(50 - got.len()).await;
    got.extend(more);
    for m in &got[..25] {
        let ack = m.get("ack").unwrap();
        consumer.w.push(&frame(Command::Ack, &[("id", ack)], b""));
    }
    consumer.w.flush().await;
    // A receipt on a frame that has nothing to do with the queue.
    let before = consumer
        .request(transient("/topic/crash-covered-elsewhere", "x", &[]))
        .await;
    assert!(before.is_empty(), "{before:?}");
    broker.crash();

    let broker = scratch.start();
    let back = drain(broker.addr, ACKED).await;
    let want: Vec<String> = (25..50).map(|i| format!("q-{i}")).collect();
    assert_eq!(bodies(&back), want);
    assert!(back.iter().all(redelivered), "{back:?}");
}

/// Durable topic subscriptions (both conventions) keep the receipted
/// persistent messages published while the subscriber is away through a crash.
#[tokio::test]
async fn durable_subscription_messages_survive_sigkill_activemq() {
    durable_subscription_crash(Convention::ActiveMq).await;
}

#[tokio::test]
async fn durable_subscription_messages_survive_sigkill_rabbitmq() {
    durable_subscription_crash(Convention::RabbitMq).await;
}

async fn durable_subscription_crash(convention: Convention) {
    const N: usize = 3000;
    let scratch = Scratch::new("durable-sub");
    let broker = scratch.start();
    let durable = Durable::new(convention, "crash");
    let mut sub = durable.connect(broker.addr).await;
    let before = durable.subscribe(&mut sub).await;
    assert!(before.is_empty());
    sub.disconnect().await;

    let mut publisher = Conn::connect(broker.addr).await;
    publisher
        .request(transient(&durable.topic, "volatile", &[]))
        .await;
    let batches: Vec<Vec<Frame>> = (0..N)
        .map(|i| {
            let receipt = format!("s-{i}");
            vec![persistent(
                &durable.topic,
                &format!("m-{i}"),
                &[("receipt", &receipt)],
            )]
        })
        .collect();
    let stop = random_in("SIGKILL after this many receipts", 300, 2500);
    let piped = pipeline(publisher, batches, 200, stop, move || {
        broker.crash();
    })
    .await;

    let broker = scratch.start();
    let mut sub = durable.connect(broker.addr).await;
    let before = durable.subscribe(&mut sub).await;
    let got = until_topic_marker(broker.addr, &mut sub, before, &durable.topic).await;
    // "volatile" was not persistent: gone (index() would name it otherwise).
    let must = receipted(&piped, "s-");
    let indices = check_recovered(&got, "m-", piped.written, &must);
    println!(
        "{convention:?}: {} receipted, {} written, {} recovered",
        must.len(),
        piped.written,
        indices.len()
    );
}
