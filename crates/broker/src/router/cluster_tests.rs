//! The router's side of cluster mode, sans-IO: which ops it asks for, when
//! RECEIPTs go, what it does with what the cluster hands it, and what it
//! refuses while NATS is unreachable. (Against a real NATS: tests/cluster.rs.)
#![allow(clippy::unwrap_used)]

use super::tests::Harness;
use super::*;

fn clustered() -> Harness {
    let mut h = Harness::new(RouterConfig::default());
    h.router = Router::new(RouterConfig::default(), h.metrics.clone()).with_cluster();
    h.router.cluster_event(ClusterEvent::State(true));
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_2);
    h
}

/// Every op of the units taken now, reporting each unit done.
fn ops(h: &mut Harness) -> Vec<ClusterOp> {
    let units = h.router.take_cluster_units();
    let mut ops = Vec::new();
    for unit in units {
        h.router.durable(unit.seq);
        ops.extend(unit.ops);
    }
    ops
}

fn wire(body: &str) -> Wire {
    let mut headers = stompkit_frame::Headers::default();
    headers.push("x", "1");
    Wire {
        headers,
        body: bytes::Bytes::from(body.to_owned()),
        expires: 0,
        id: 0,
    }
}

fn subscribe(h: &mut Harness, conn: ConnId, dest: &str, ack: AckMode, receipt: Option<&str>) {
    h.router.handle(RouterCommand::Subscribe {
        conn,
        id: "s".into(),
        destination: dest.into(),
        ack,
        prefetch: 2,
        durable: None,
        selector: None,
        receipt: receipt.map(str::to_owned),
    });
}

#[test]
fn a_topic_send_leaves_through_nats_and_comes_back_to_local_subscribers() {
    let mut h = clustered();
    subscribe(&mut h, 2, "/topic/a.b", AckMode::Auto, Some("r"));
    // The SUBSCRIBE's RECEIPT waits until NATS has the interest.
    assert!(h.frames(2).is_empty());
    let interest = ops(&mut h);
    assert!(
        matches!(&interest[..], [ClusterOp::Interest { destination, wanted: true }] if &**destination == "/topic/a.b")
    );
    assert_eq!(h.frames(2)[0].command, stompkit_frame::Command::Receipt);

    h.send(1, "/topic/a.b", "hi");
    assert!(h.frames(2).is_empty(), "delivered only when it comes back");
    let published = ops(&mut h);
    let [
        ClusterOp::Publish {
            destination,
            message,
        },
    ] = &published[..]
    else {
        panic!("{published:?}");
    };
    assert_eq!(&**destination, "/topic/a.b");
    h.router.cluster_event(ClusterEvent::Topic {
        interest: destination.clone(),
        destination: destination.to_string(),
        message: message.clone(),
    });
    assert_eq!(h.bodies(2), ["hi"]);
}

#[test]
fn a_message_reaches_each_local_pattern_once_through_its_own_interest() {
    let mut h = clustered();
    subscribe(&mut h, 1, "/topic/a.*", AckMode::Auto, None);
    subscribe(&mut h, 2, "/topic/a.#", AckMode::Auto, None);
    ops(&mut h);
    // NATS delivers it once per subscription of this node: once per pattern.
    for interest in ["/topic/a.*", "/topic/a.#"] {
        h.router.cluster_event(ClusterEvent::Topic {
            interest: Arc::from(interest),
            destination: "/topic/a.b".into(),
            message: wire("m"),
        });
    }
    assert_eq!(h.bodies(1), ["m"]);
    assert_eq!(h.bodies(2), ["m"]);
    // `a.#` is widened on NATS; what it does not match is filtered here.
    h.router.cluster_event(ClusterEvent::Topic {
        interest: Arc::from("/topic/a.#"),
        destination: "/topic/b.c".into(),
        message: wire("other"),
    });
    assert!(h.bodies(2).is_empty());
}

#[test]
fn the_last_subscriber_gone_gives_up_the_interest() {
    let mut h = clustered();
    subscribe(&mut h, 1, "/topic/t", AckMode::Auto, None);
    subscribe(&mut h, 2, "/topic/t", AckMode::Auto, None);
    assert_eq!(ops(&mut h).len(), 2);
    h.router.handle(RouterCommand::Closed { conn: 1 });
    assert!(ops(&mut h).is_empty(), "one subscriber is left");
    h.router.handle(RouterCommand::Closed { conn: 2 });
    assert!(matches!(
        &ops(&mut h)[..],
        [ClusterOp::Interest { wanted: false, .. }]
    ));
}

#[test]
fn a_queue_send_is_stored_in_jetstream_and_its_receipt_waits_for_it() {
    let mut h = clustered();
    h.send_frame(
        1,
        Frame::send("/queue/q").with_body("job").with_receipt("r1"),
    );
    assert!(h.frames(1).is_empty());
    let stored = ops(&mut h);
    assert!(matches!(&stored[..], [ClusterOp::Enqueue { queue, .. }] if &**queue == "/queue/q"));
    assert_eq!(h.frames(1)[0].receipt_id(), Some("r1"));
}

#[test]
fn pulled_queue_messages_are_settled_where_a_single_node_forgets_them() {
    let mut h = clustered();
    subscribe(&mut h, 2, "/queue/q", AckMode::ClientIndividual, None);
    let window = ops(&mut h);
    assert!(
        matches!(&window[..], [ClusterOp::Consume { window: 2, .. }]),
        "{window:?}"
    );
    h.router.cluster_event(ClusterEvent::Queued {
        queue: Arc::from("/queue/q"),
        message: wire("job"),
        token: Arc::from("$JS.ACK.t1"),
        delivered: 2,
    });
    let got = h.frames(2);
    assert_eq!(
        got[0].get("redelivered"),
        Some("true"),
        "JetStream delivered it before"
    );
    assert!(ops(&mut h).is_empty(), "held until ACKed");
    h.router.handle(RouterCommand::Ack {
        conn: 2,
        ack: AckRef {
            id: got[0].get("ack").unwrap().to_owned(),
            subscription: None,
            requeue: true,
        },
        receipt: None,
    });
    let settled = ops(&mut h);
    assert!(
        matches!(&settled[..], [ClusterOp::Settle { token, how: Settle::Ack }] if &**token == "$JS.ACK.t1")
    );
}

#[test]
fn what_a_node_holds_goes_back_when_its_last_consumer_leaves() {
    let mut h = clustered();
    subscribe(&mut h, 2, "/queue/q", AckMode::Client, None);
    ops(&mut h);
    for (i, token) in ["t1", "t2", "t3"].iter().enumerate() {
        h.router.cluster_event(ClusterEvent::Queued {
            queue: Arc::from("/queue/q"),
            message: wire(&i.to_string()),
            token: Arc::from(*token),
            delivered: 1,
        });
    }
    // Prefetch 2: two delivered, one held here.
    assert_eq!(h.bodies(2), ["0", "1"]);
    ops(&mut h);
    h.router.handle(RouterCommand::Closed { conn: 2 });
    let back: Vec<String> = ops(&mut h)
        .iter()
        .filter_map(|op| match op {
            ClusterOp::Settle {
                token,
                how: Settle::Nak,
            } => Some(token.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(back, ["t1", "t2", "t3"], "in queue order");
}

#[test]
fn an_expired_pulled_message_is_settled_not_delivered() {
    let mut h = clustered();
    h.router.set_now(10_000);
    subscribe(&mut h, 2, "/queue/q", AckMode::Auto, None);
    ops(&mut h);
    let mut old = wire("stale");
    old.expires = 5_000;
    h.router.cluster_event(ClusterEvent::Queued {
        queue: Arc::from("/queue/q"),
        message: old,
        token: Arc::from("t"),
        delivered: 1,
    });
    assert!(h.bodies(2).is_empty());
    assert!(matches!(
        &ops(&mut h)[..],
        [ClusterOp::Settle {
            how: Settle::Ack,
            ..
        }]
    ));
    assert_eq!(
        Metrics::get(&h.metrics.expired),
        0,
        "counted at the next flush"
    );
    h.router.flush_metrics();
    assert_eq!(Metrics::get(&h.metrics.expired), 1);
}

#[test]
fn while_nats_is_unreachable_topics_stay_local_and_promises_are_refused() {
    let mut h = clustered();
    h.router.cluster_event(ClusterEvent::State(false));
    subscribe(&mut h, 2, "/topic/t", AckMode::Auto, None);
    ops(&mut h);
    h.send(1, "/topic/t", "local");
    assert_eq!(h.bodies(2), ["local"]);
    assert_eq!(Metrics::get(&h.metrics.cluster_local_only), 1);
    assert!(ops(&mut h).is_empty());
    h.send_frame(1, Frame::send("/topic/t").with_body("x").with_receipt("r"));
    let refused = h.frames(1);
    assert_eq!(refused[0].command, stompkit_frame::Command::Error);
    assert!(
        refused[0]
            .get("message")
            .unwrap()
            .starts_with("cluster unavailable")
    );
    h.send(2, "/queue/q", "job");
    let refused = h.frames(2);
    assert_eq!(
        refused.last().unwrap().command,
        stompkit_frame::Command::Error
    );
}

#[test]
fn a_failed_unit_is_an_error_naming_the_cluster() {
    let mut h = clustered();
    h.send_frame(
        1,
        Frame::send("/queue/q").with_body("job").with_receipt("r1"),
    );
    let units = h.router.take_cluster_units();
    h.router
        .write_failed(units[0].seq, units[0].seq, "NATS is unreachable");
    let error = h.frames(1);
    assert_eq!(error[0].get("message"), Some("cluster unavailable"));
    assert_eq!(error[0].receipt_id(), Some("r1"));
}

#[test]
fn durable_subscriptions_are_made_and_removed_for_the_whole_cluster() {
    let mut h = clustered();
    h.durable_sub(1, "d", "/topic/news", "scope\0name", AckMode::Auto);
    let made = ops(&mut h);
    assert!(
        made.iter()
            .any(|op| matches!(op, ClusterOp::Durable(s) if s.key == "scope\0name"))
    );
    // Made on another node: this node copies what it publishes into it.
    h.router
        .cluster_event(ClusterEvent::Durable(crate::store::StoredSubscription {
            key: "other\0sub".into(),
            destination: "/topic/news".into(),
            selector: None,
        }));
    h.send(2, "/topic/news", "n");
    let copies: Vec<String> = ops(&mut h)
        .iter()
        .filter_map(|op| match op {
            ClusterOp::Enqueue { queue, .. } => Some(queue.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(copies.contains(&"other\0sub".to_owned()));
    h.router.cluster_event(ClusterEvent::Forgotten {
        key: "other\0sub".into(),
    });
    h.send(2, "/topic/news", "n2");
    let copies = ops(&mut h)
        .iter()
        .filter(|op| matches!(op, ClusterOp::Enqueue { .. }))
        .count();
    assert_eq!(copies, 1);
}
