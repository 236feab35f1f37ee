//! Router tests of selectors (sans-IO): topic subscribers skip what they do
//! not select, queues dispatch past a message no current subscriber selects,
//! durable subscriptions collect only what they select, keep it across a
//! restart, and are replaced by a SUBSCRIBE with another selector.
#![allow(clippy::unwrap_used)]

use super::tests::Harness;
use super::*;
use crate::store::{empty_segment, encode_unit, recover_from_segments};

fn subscribe(
    h: &mut Harness,
    conn: ConnId,
    dest: &str,
    selector: &str,
    ack: AckMode,
    prefetch: u32,
    durable: Option<&str>,
) {
    h.router.handle(RouterCommand::Subscribe {
        conn,
        id: "s".into(),
        destination: dest.into(),
        ack,
        prefetch,
        durable: durable.map(Into::into),
        selector: Some(Selector::parse(selector).unwrap()),
        receipt: None,
    });
}

fn send(h: &mut Harness, dest: &str, headers: &[(&str, &str)], body: &str) {
    let mut frame = Frame::send(dest);
    for (k, v) in headers {
        frame = frame.header(k, v);
    }
    h.router.handle(RouterCommand::Send {
        conn: 9,
        frame: frame.with_body(body.to_owned()),
    });
}

fn harness(conns: &[ConnId]) -> Harness {
    let mut h = Harness::new(RouterConfig::default());
    for &c in conns.iter().chain(&[9]) {
        h.connect(c, Version::V1_2);
    }
    h
}

#[test]
fn a_topic_subscriber_skips_what_its_selector_does_not_select_without_a_drop() {
    let mut h = harness(&[1, 2]);
    subscribe(&mut h, 1, "/topic/t", "n > 3", AckMode::Auto, 0, None);
    h.sub(2, "s", "/topic/t", AckMode::Auto, 0);
    send(&mut h, "/topic/t", &[("n", "5")], "five");
    send(&mut h, "/topic/t", &[("n", "2")], "two");
    send(&mut h, "/topic/t", &[("n", "abc")], "abc");
    send(&mut h, "/topic/t", &[], "none");
    send(&mut h, "/topic/t", &[("n", "4.5")], "four and a half");
    assert_eq!(h.bodies(1), ["five", "four and a half"]);
    assert_eq!(
        h.bodies(2),
        ["five", "two", "abc", "none", "four and a half"]
    );
    h.router.flush_metrics();
    assert_eq!(h.metrics.dropped_total(), 0);
}

#[test]
fn a_selector_reads_the_broker_message_id_and_jms_names() {
    let mut h = harness(&[1]);
    // The first message sent is number 1.
    subscribe(
        &mut h,
        1,
        "/topic/t",
        "JMSMessageID = '2' OR JMSPriority > 7",
        AckMode::Auto,
        0,
        None,
    );
    send(&mut h, "/topic/t", &[("message-id", "2")], "first");
    send(&mut h, "/topic/t", &[], "second");
    send(&mut h, "/topic/t", &[("priority", "9")], "third");
    assert_eq!(h.bodies(1), ["second", "third"]);
}

#[test]
fn a_queue_message_waits_for_a_subscriber_that_selects_it_and_others_flow_past() {
    let mut h = harness(&[1, 2, 3]);
    subscribe(
        &mut h,
        1,
        "/queue/q",
        "color = 'red'",
        AckMode::Auto,
        0,
        None,
    );
    subscribe(
        &mut h,
        2,
        "/queue/q",
        "color = 'blue'",
        AckMode::Auto,
        0,
        None,
    );
    for (color, body) in [
        ("red", "r1"),
        ("green", "g1"),
        ("blue", "b1"),
        ("red", "r2"),
        ("blue", "b2"),
    ] {
        send(&mut h, "/queue/q", &[("color", color)], body);
    }
    assert_eq!(h.bodies(1), ["r1", "r2"]);
    assert_eq!(h.bodies(2), ["b1", "b2"]);
    assert_eq!(h.router.queues()[0].ready, 1, "green waits");
    // A subscriber that selects it (here: no selector) takes it at once.
    h.sub(3, "s", "/queue/q", AckMode::Auto, 0);
    assert_eq!(h.bodies(3), ["g1"]);
    assert_eq!(h.router.queues()[0].ready, 0);
}

#[test]
fn held_messages_go_to_a_selective_subscriber_that_arrives_later_in_order() {
    let mut h = harness(&[1]);
    for (x, body) in [("2", "a"), ("1", "b"), ("2", "c"), ("1", "d")] {
        send(&mut h, "/queue/q", &[("x", x)], body);
    }
    subscribe(&mut h, 1, "/queue/q", "x = 1", AckMode::Auto, 0, None);
    assert_eq!(h.bodies(1), ["b", "d"]);
    assert_eq!(h.router.queues()[0].ready, 2);
}

#[test]
fn a_selective_subscriber_without_credit_holds_up_only_what_it_selects() {
    let mut h = harness(&[1, 2]);
    subscribe(
        &mut h,
        1,
        "/queue/q",
        "x = 1",
        AckMode::ClientIndividual,
        1,
        None,
    );
    subscribe(&mut h, 2, "/queue/q", "x = 2", AckMode::Auto, 0, None);
    send(&mut h, "/queue/q", &[("x", "1")], "a1");
    send(&mut h, "/queue/q", &[("x", "1")], "a2");
    send(&mut h, "/queue/q", &[("x", "2")], "b1");
    let first = h.frames(1);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].body(), b"a1");
    assert_eq!(h.bodies(2), ["b1"], "b1 is not held up behind a2");
    let ack = AckRef {
        id: first[0].ack().unwrap().to_owned(),
        subscription: None,
        requeue: true,
    };
    h.router.handle(RouterCommand::Ack {
        conn: 1,
        ack,
        receipt: None,
    });
    assert_eq!(h.bodies(1), ["a2"]);
}

#[test]
fn a_nacked_message_goes_back_to_a_subscriber_that_selects_it() {
    let mut h = harness(&[1, 2]);
    subscribe(
        &mut h,
        1,
        "/queue/q",
        "x = 1",
        AckMode::ClientIndividual,
        5,
        None,
    );
    send(&mut h, "/queue/q", &[("x", "1")], "a");
    let f = h.frames(1);
    // Unsubscribing returns it; a subscriber that does not select it leaves it held.
    subscribe(&mut h, 2, "/queue/q", "x = 2", AckMode::Auto, 0, None);
    h.router.handle(RouterCommand::Nack {
        conn: 1,
        ack: AckRef {
            id: f[0].ack().unwrap().to_owned(),
            subscription: None,
            requeue: true,
        },
        receipt: None,
    });
    assert!(h.bodies(2).is_empty());
    let again = h.frames(1);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].get("redelivered"), Some("true"));
}

/// What `h` (see [`Harness::with_store`]) wrote, recovered into a new router.
fn restart(h: &mut Harness, log: &mut Vec<u8>) -> Harness {
    for u in h.router.take_units() {
        encode_unit(&u, log);
    }
    let config = RouterConfig::default();
    let mut new = Harness::new(config.clone());
    new.router = Router::with_store(config, new.metrics.clone(), recover_from_segments(&[log]));
    new
}

#[test]
fn a_durable_subscription_collects_what_it_selects_across_a_restart() {
    let mut h = Harness::with_store(RouterConfig::default());
    let mut log = empty_segment();
    h.connect(1, Version::V1_2);
    h.connect(9, Version::V1_2);
    subscribe(&mut h, 1, "/topic/t", "n > 3", AckMode::Auto, 0, Some("k"));
    h.router.handle(RouterCommand::Closed { conn: 1 });
    for n in ["5", "1", "7"] {
        let headers = [("n", n), ("persistent", "true")];
        send(&mut h, "/topic/t", &headers, n);
    }
    let mut h = restart(&mut h, &mut log);
    h.connect(2, Version::V1_2);
    subscribe(&mut h, 2, "/topic/t", "n > 3", AckMode::Auto, 0, Some("k"));
    assert_eq!(h.bodies(2), ["5", "7"]);
    // It still filters after the restart (the selector was stored).
    h.connect(9, Version::V1_2);
    send(&mut h, "/topic/t", &[("n", "2")], "2");
    send(&mut h, "/topic/t", &[("n", "8")], "8");
    assert_eq!(h.bodies(2), ["8"]);
}

#[test]
fn another_selector_replaces_a_durable_subscription_and_discards_what_it_held() {
    let mut h = harness(&[1]);
    subscribe(&mut h, 1, "/topic/t", "n > 3", AckMode::Auto, 0, Some("k"));
    h.router.handle(RouterCommand::Closed { conn: 1 });
    send(&mut h, "/topic/t", &[("n", "5")], "kept");
    h.connect(2, Version::V1_2);
    subscribe(&mut h, 2, "/topic/t", "n > 3", AckMode::Auto, 0, Some("k"));
    assert_eq!(h.bodies(2), ["kept"], "the same selector keeps it");
    h.router.handle(RouterCommand::Closed { conn: 2 });
    send(&mut h, "/topic/t", &[("n", "6")], "discarded");
    h.connect(3, Version::V1_2);
    subscribe(&mut h, 3, "/topic/t", "n > 1", AckMode::Auto, 0, Some("k"));
    assert!(h.bodies(3).is_empty(), "another selector starts afresh");
    send(&mut h, "/topic/t", &[("n", "2")], "new");
    assert_eq!(h.bodies(3), ["new"]);
}

#[test]
fn messages_nobody_selected_go_to_a_subscriber_that_joins_later() {
    let mut h = harness(&[1, 2, 3]);
    subscribe(&mut h, 1, "/queue/q", "x = 1", AckMode::Auto, 0, None);
    for (x, body) in [("2", "a"), ("3", "b"), ("1", "c"), ("2", "d")] {
        send(&mut h, "/queue/q", &[("x", x)], body);
    }
    assert_eq!(h.bodies(1), ["c"]);
    // Marked unwanted by subscriber 1: an ACK-less pump (another message for
    // it) passes them over, and a new subscriber still gets them, in order.
    send(&mut h, "/queue/q", &[("x", "1")], "e");
    assert_eq!(h.bodies(1), ["e"]);
    subscribe(&mut h, 2, "/queue/q", "x = 2", AckMode::Auto, 0, None);
    assert_eq!(h.bodies(2), ["a", "d"]);
    subscribe(&mut h, 3, "/queue/q", "x = 3", AckMode::Auto, 0, None);
    assert_eq!(h.bodies(3), ["b"]);
    assert_eq!(h.router.queues()[0].ready, 0);
}
