//! Router tests of persistence, RECEIPTs that wait for the store, expiry,
//! dead letters and durable subscriptions (sans-IO: the store's units are
//! taken by hand, and restarts go through the store's pure recovery).
#![allow(clippy::unwrap_used)]

use super::tests::{Harness, persistent};
use super::*;
use crate::store::{Op, empty_segment, recover_from_segments};
use stompkit_frame::Command;

/// A router over an empty store, with the harness of `tests.rs`.
fn durable_harness(config: RouterConfig) -> Harness {
    let mut h = Harness::with_store(config);
    h.router.set_now(1_000_000);
    h
}

fn commands(frames: &[Frame]) -> Vec<Command> {
    frames.iter().map(|f| f.command).collect()
}

/// Everything written so far, as one segment, recovered into a new router.
fn restart(h: &Harness, log: &[u8], config: RouterConfig) -> Harness {
    let recovered = recover_from_segments(&[log]);
    let mut new = Harness::new(config.clone());
    new.router = Router::with_store(config, new.metrics.clone(), recovered);
    new.router.set_now(h.router.now);
    new
}

#[test]
fn a_persistent_send_is_receipted_only_once_durable_and_a_plain_one_at_once() {
    let mut h = durable_harness(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.send_frame(1, Frame::send("/queue/q").header("receipt", "plain"));
    assert_eq!(commands(&h.frames(1)), [Command::Receipt]);
    assert!(h.router.take_units().is_empty(), "nothing to write");

    h.send_frame(1, persistent("/queue/q", "p").header("receipt", "r1"));
    // A later frame's RECEIPT waits for the earlier persistent SEND too.
    h.router.handle(RouterCommand::Receipt {
        conn: 1,
        receipt: "r2".into(),
    });
    assert!(h.frames(1).is_empty(), "no RECEIPT before the disk");
    let units = h.router.take_units();
    assert_eq!(units.len(), 1);
    assert!(matches!(&units[0].ops[..], [Op::Put(m)] if m.queue == "/queue/q"));
    h.router.durable(units[0].seq);
    let receipts: Vec<_> = h
        .frames(1)
        .iter()
        .map(|f| f.receipt_id().unwrap().to_owned())
        .collect();
    assert_eq!(receipts, ["r1", "r2"]);
}

#[test]
fn a_failed_write_gets_error_naming_the_receipt_and_later_frames_still_work() {
    let mut h = durable_harness(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_2);
    h.send_frame(1, persistent("/queue/q", "lost").header("receipt", "r"));
    let units = h.router.take_units();
    h.router
        .write_failed(units[0].seq, units[0].seq, "No space left on device");
    let frames = h.frames(1);
    assert_eq!(commands(&frames), [Command::Error]);
    assert_eq!(frames[0].receipt_id(), Some("r"));
    assert!(frames[0].get("message").unwrap().contains("durable"));
    assert!(h.outboxes[&1].is_closing());
    // Another connection goes on.
    h.send_frame(2, persistent("/queue/q", "kept").header("receipt", "r2"));
    let units = h.router.take_units();
    h.router.durable(units[0].seq);
    assert_eq!(commands(&h.frames(2)), [Command::Receipt]);
}

#[test]
fn an_ack_with_a_receipt_is_durable_before_its_receipt_and_removes_the_message() {
    let mut h = durable_harness(RouterConfig::default());
    let mut log = empty_segment();
    h.connect(1, Version::V1_2);
    h.sub(1, "s", "/queue/q", AckMode::ClientIndividual, 0);
    h.send_frame(1, persistent("/queue/q", "a"));
    let message = h.frames(1).remove(0);
    let units = h.write(&mut log);
    assert!(matches!(
        &units[0].ops[..],
        [Op::Put(_), Op::Delivered { .. }]
    ));
    h.router.handle(RouterCommand::Ack {
        conn: 1,
        ack: AckRef {
            id: message.ack().unwrap().into(),
            subscription: None,
            requeue: true,
        },
        receipt: Some("acked".into()),
    });
    assert!(h.frames(1).is_empty());
    let units = h.write(&mut log);
    assert!(matches!(&units[0].ops[..], [Op::Remove { .. }]));
    assert_eq!(commands(&h.frames(1)), [Command::Receipt]);
    let again = restart(&h, &log, RouterConfig::default());
    assert_eq!(again.router.queues().len(), 0, "nothing left to recover");
}

#[test]
fn after_a_restart_messages_come_in_order_with_their_ids_and_delivered_ones_redelivered() {
    let config = RouterConfig::default();
    let mut h = durable_harness(config.clone());
    let mut log = empty_segment();
    h.connect(1, Version::V1_2);
    for body in ["1", "2", "3"] {
        h.send_frame(1, persistent("/queue/q", body));
    }
    h.send_frame(1, Frame::send("/queue/q").with_body("not persistent"));
    h.sub(1, "s", "/queue/q", AckMode::Client, 1);
    let first = h.frames(1).remove(0);
    h.write(&mut log);

    let mut h = restart(&h, &log, config);
    h.connect(7, Version::V1_2);
    h.sub(7, "s", "/queue/q", AckMode::Auto, 0);
    let frames = h.frames(7);
    let bodies: Vec<_> = frames.iter().map(|f| f.body().to_vec()).collect();
    assert_eq!(bodies, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
    assert_eq!(frames[0].message_id(), first.message_id());
    assert_eq!(frames[0].get("redelivered"), Some("true"));
    assert_eq!(frames[1].get("redelivered"), None);
    // New messages get new ids.
    h.send_frame(7, Frame::send("/queue/q").with_body("4"));
    let next: u64 = h.frames(7)[0].message_id().unwrap().parse().unwrap();
    assert!(next > frames[2].message_id().unwrap().parse().unwrap());
}

#[test]
fn a_commit_is_one_unit_with_its_sends_and_acks() {
    let mut h = durable_harness(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.sub(1, "s", "/queue/in", AckMode::ClientIndividual, 0);
    h.send_frame(1, persistent("/queue/in", "x"));
    let message = h.frames(1).remove(0);
    h.router.take_units();
    h.router.handle(RouterCommand::Commit {
        conn: 1,
        ops: vec![
            TxOp::Send(persistent("/queue/out", "a")),
            TxOp::Ack(AckRef {
                id: message.ack().unwrap().into(),
                subscription: None,
                requeue: true,
            }),
            TxOp::Send(persistent("/queue/out", "b")),
        ],
        receipt: Some("c".into()),
    });
    let units = h.router.take_units();
    assert_eq!(units.len(), 1, "one atomic write");
    assert!(matches!(
        &units[0].ops[..],
        [Op::Put(_), Op::Remove { .. }, Op::Put(_)]
    ));
}

#[test]
fn expired_messages_are_never_delivered_and_are_counted() {
    let config = RouterConfig {
        default_ttl_ms: 50,
        ..RouterConfig::default()
    };
    let mut h = durable_harness(config);
    let now = h.router.now;
    h.connect(1, Version::V1_2);
    h.send_frame(
        1,
        Frame::send("/queue/q")
            .header("expiration", "100")
            .with_body("rabbit"),
    );
    h.send_frame(
        1,
        Frame::send("/queue/q")
            .header("expires", &(now + 300).to_string())
            .with_body("amq"),
    );
    h.send_frame(
        1,
        Frame::send("/queue/q")
            .header("expires", "0")
            .with_body("never"),
    );
    h.send_frame(1, Frame::send("/queue/q").with_body("default"));
    h.router.set_now(now + 200);
    h.sub(1, "s", "/queue/q", AckMode::Auto, 0);
    assert_eq!(h.bodies(1), ["amq", "never"]);
    h.router.flush_metrics();
    assert_eq!(Metrics::get(&h.metrics.expired), 2);
}

#[test]
fn nacks_past_max_deliveries_and_requeue_false_go_to_the_dead_letter_queue() {
    let config = RouterConfig {
        max_deliveries: 2,
        ..RouterConfig::default()
    };
    let mut h = durable_harness(config);
    h.connect(1, Version::V1_2);
    h.sub(1, "s", "/queue/orders", AckMode::ClientIndividual, 1);
    h.send_frame(1, persistent("/queue/orders", "twice"));
    h.send_frame(1, persistent("/queue/orders", "refused"));
    let nack = |h: &mut Harness, requeue: bool| {
        let m = h.frames(1).remove(0);
        h.router.handle(RouterCommand::Nack {
            conn: 1,
            ack: AckRef {
                id: m.ack().unwrap().into(),
                subscription: None,
                requeue,
            },
            receipt: None,
        });
        m
    };
    let first = nack(&mut h, true);
    assert_eq!(first.get("redelivered"), None);
    let second = nack(&mut h, true);
    assert_eq!(second.get("redelivered"), Some("true"));
    assert_eq!(second.body(), b"twice", "redelivered first, in order");
    nack(&mut h, false);
    h.connect(2, Version::V1_2);
    h.sub(2, "d", "/queue/orders.dlq", AckMode::Auto, 0);
    let letters = h.frames(2);
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].body(), b"twice");
    assert_eq!(letters[0].get("dead-letter-reason"), Some("max-deliveries"));
    assert_eq!(letters[0].get("delivery-count"), Some("2"));
    assert_eq!(
        letters[0].get("original-destination"),
        Some("/queue/orders")
    );
    assert_eq!(letters[1].body(), b"refused");
    assert_eq!(letters[1].get("dead-letter-reason"), Some("nack"));
    assert_eq!(letters[1].get("persistent"), Some("true"));
    assert_eq!(Metrics::get(&h.metrics.dead_lettered), 2);
}

#[test]
fn a_durable_subscription_keeps_messages_while_away_and_across_a_restart() {
    let config = RouterConfig::default();
    let mut h = durable_harness(config.clone());
    let mut log = empty_segment();
    h.connect(1, Version::V1_2);
    h.durable_sub(1, "s", "/topic/news", "k", AckMode::Auto);
    h.send_frame(1, persistent("/topic/news", "live"));
    assert_eq!(h.bodies(1), ["live"]);
    h.router.handle(RouterCommand::Closed { conn: 1 });
    h.connect(2, Version::V1_2);
    h.send_frame(2, persistent("/topic/news", "while away"));
    h.send_frame(2, Frame::send("/topic/news").with_body("not persistent"));
    h.write(&mut log);

    let mut h = restart(&h, &log, config);
    h.connect(3, Version::V1_2);
    h.sub(3, "plain", "/topic/news", AckMode::Auto, 0);
    h.durable_sub(3, "s", "/topic/news", "k", AckMode::Auto);
    let frames = h.frames(3);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].body(), b"while away");
    assert_eq!(frames[0].destination(), Some("/topic/news"));
    assert_eq!(frames[0].subscription(), Some("s"));
    // Held by connection 3: a second claim is refused.
    h.connect(4, Version::V1_2);
    h.durable_sub(4, "s", "/topic/news", "k", AckMode::Auto);
    let refused = h.frames(4);
    assert_eq!(commands(&refused), [Command::Error]);
    assert!(
        refused[0]
            .get("message")
            .unwrap()
            .contains("durable subscription")
    );
}

#[test]
fn unsubscribe_with_the_durable_headers_removes_the_subscription_for_good() {
    let config = RouterConfig::default();
    let mut h = durable_harness(config.clone());
    let mut log = empty_segment();
    h.connect(1, Version::V1_2);
    h.durable_sub(1, "s", "/topic/t", "k", AckMode::Auto);
    h.router.handle(RouterCommand::Unsubscribe {
        conn: 1,
        id: "s".into(),
        forget: true,
        receipt: None,
    });
    h.send_frame(1, persistent("/topic/t", "nobody"));
    h.write(&mut log);
    assert_eq!(h.router.destination_count(), 0, "nothing left");
    let mut h = restart(&h, &log, config);
    h.connect(2, Version::V1_2);
    h.durable_sub(2, "s", "/topic/t", "k", AckMode::Auto);
    assert!(h.frames(2).is_empty());
}

#[test]
fn a_full_durable_subscription_drops_its_oldest_and_never_refuses_publishers() {
    let config = RouterConfig {
        queue_max_messages: 2,
        ..RouterConfig::default()
    };
    let mut h = durable_harness(config);
    h.connect(1, Version::V1_2);
    h.durable_sub(1, "s", "/topic/t", "k", AckMode::Auto);
    h.router.handle(RouterCommand::Closed { conn: 1 });
    h.connect(2, Version::V1_2);
    for i in 0..5 {
        h.send_frame(
            2,
            persistent("/topic/t", &i.to_string()).header("receipt", "r"),
        );
    }
    h.write(&mut empty_segment());
    assert!(
        commands(&h.frames(2))
            .iter()
            .all(|c| *c == Command::Receipt)
    );
    h.durable_sub(2, "s", "/topic/t", "k", AckMode::Auto);
    assert_eq!(h.bodies(2), ["3", "4"]);
}

#[test]
fn a_disconnect_receipt_waits_for_the_disk_then_closes() {
    let mut h = durable_harness(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.send_frame(1, persistent("/queue/q", "p"));
    h.router.handle(RouterCommand::Disconnect {
        conn: 1,
        receipt: Some("bye".into()),
    });
    assert!(h.frames(1).is_empty());
    assert!(!h.outboxes[&1].is_closing());
    let units = h.router.take_units();
    h.router.durable(units.last().unwrap().seq);
    assert_eq!(commands(&h.frames(1)), [Command::Receipt]);
    assert!(h.outboxes[&1].is_closing());
}

#[test]
fn a_persistent_message_taken_at_once_by_an_auto_subscriber_is_put_and_removed_in_one_unit() {
    let mut h = durable_harness(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.sub(1, "s", "/queue/q", AckMode::Auto, 0);
    h.send_frame(1, persistent("/queue/q", "x").header("receipt", "r"));
    let units = h.router.take_units();
    assert!(matches!(&units[..], [u] if matches!(&u.ops[..], [Op::Put(_), Op::Remove { .. }])));
    h.router.durable(units[0].seq);
    assert_eq!(commands(&h.frames(1)), [Command::Message, Command::Receipt]);
}

#[test]
fn a_receipt_goes_once_its_own_connection_is_durable_whatever_others_wait_for() {
    let mut h = durable_harness(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_2);
    h.send_frame(1, persistent("/queue/a", "x").header("receipt", "r1"));
    h.send_frame(2, persistent("/queue/b", "y").header("receipt", "r2"));
    h.router.handle(RouterCommand::Receipt {
        conn: 1,
        receipt: "r3".into(),
    });
    let units = h.router.take_units();
    h.router.durable(units[0].seq);
    let receipts: Vec<_> = h
        .frames(1)
        .iter()
        .map(|f| f.receipt_id().unwrap().to_owned())
        .collect();
    assert_eq!(
        receipts,
        ["r1", "r3"],
        "not held behind connection 2's unit"
    );
    assert!(h.frames(2).is_empty());
}

#[test]
fn a_closed_connections_unacked_messages_go_back_not_to_its_other_subscriptions() {
    let mut h = durable_harness(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.sub(1, "s1", "/queue/b", AckMode::Client, 0);
    h.sub(1, "s2", "/queue/b", AckMode::Auto, 0);
    h.connect(2, Version::V1_2);
    h.send_frame(2, persistent("/queue/b", "m"));
    assert_eq!(h.frames(1).len(), 1, "delivered to s1");
    h.router.handle(RouterCommand::Closed { conn: 1 });
    assert!(
        h.frames(1).is_empty(),
        "nothing more to the closed connection"
    );
    h.sub(2, "s", "/queue/b", AckMode::Auto, 0);
    let frames = h.frames(2);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].get("redelivered"), Some("true"));
}
