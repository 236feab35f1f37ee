//! Router unit tests: sans-IO, outboxes read back through the wire parser.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::{QueueOverflow, SlowConsumer};
use crate::metrics::DropReason;
use stompkit_frame::Command;
use stompkit_wire::{Event, Parser};

pub(super) struct Harness {
    pub(super) router: Router,
    pub(super) outboxes: HashMap<ConnId, Arc<Outbox>>,
    pub(super) metrics: Arc<Metrics>,
}

impl Harness {
    pub(super) fn new(config: RouterConfig) -> Harness {
        let metrics = Arc::new(Metrics::default());
        Harness {
            router: Router::new(config, metrics.clone()),
            outboxes: HashMap::new(),
            metrics,
        }
    }

    pub(super) fn connect(&mut self, conn: ConnId, version: Version) {
        self.connect_bounded(conn, version, 1 << 20);
    }

    pub(super) fn connect_bounded(&mut self, conn: ConnId, version: Version, bound: usize) {
        let outbox = Arc::new(Outbox::new(bound));
        self.outboxes.insert(conn, outbox.clone());
        self.router.handle(RouterCommand::Connect {
            conn,
            outbox,
            version,
        });
    }

    pub(super) fn sub(&mut self, conn: ConnId, id: &str, dest: &str, ack: AckMode, prefetch: u32) {
        self.router.handle(RouterCommand::Subscribe {
            conn,
            id: id.into(),
            destination: dest.into(),
            ack,
            prefetch,
            durable: None,
            selector: None,
            receipt: None,
        });
    }

    /// A harness whose router has an empty store (its units are taken with
    /// [`Harness::write`]).
    pub(super) fn with_store(config: RouterConfig) -> Harness {
        let mut h = Harness::new(config.clone());
        h.router = Router::with_store(config, h.metrics.clone(), Recovered::default());
        h
    }

    /// A durable subscription (`key`) to `topic`, without prefetch or selector.
    pub(super) fn durable_sub(
        &mut self,
        conn: ConnId,
        id: &str,
        topic: &str,
        key: &str,
        ack: AckMode,
    ) {
        self.router.handle(RouterCommand::Subscribe {
            conn,
            id: id.into(),
            destination: topic.into(),
            ack,
            prefetch: 0,
            durable: Some(key.into()),
            selector: None,
            receipt: None,
        });
    }

    /// Routes `frame` as a SEND from `conn`.
    pub(super) fn send_frame(&mut self, conn: ConnId, frame: Frame) {
        self.router.handle(RouterCommand::Send { conn, frame });
    }

    /// Takes the router's store units, appends them to `log`, and reports
    /// them durable.
    pub(super) fn write(&mut self, log: &mut Vec<u8>) -> Vec<crate::store::Unit> {
        let units = self.router.take_units();
        for u in &units {
            crate::store::encode_unit(u, log);
        }
        if let Some(last) = units.last() {
            self.router.durable(last.seq);
        }
        units
    }

    pub(super) fn send(&mut self, conn: ConnId, dest: &str, body: &str) {
        self.router.handle(RouterCommand::Send {
            conn,
            frame: Frame::send(dest).with_body(body.to_owned()),
        });
    }

    /// Frames written to `conn` since the last call.
    pub(super) fn frames(&self, conn: ConnId) -> Vec<Frame> {
        let outbox = &self.outboxes[&conn];
        let mut parser = Parser::new();
        parser.set_version(Version::V1_2);
        parser.push(&outbox.drain());
        let mut out = Vec::new();
        while let Some(e) = parser.next_event().unwrap() {
            if let Event::Frame(f) = e {
                out.push(f);
            }
        }
        out
    }

    pub(super) fn bodies(&self, conn: ConnId) -> Vec<String> {
        self.frames(conn)
            .iter()
            .map(|f| String::from_utf8(f.body().to_vec()).unwrap())
            .collect()
    }
}

/// A `persistent:true` SEND of `body` to `dest`.
pub(super) fn persistent(dest: &str, body: &str) -> Frame {
    Frame::send(dest)
        .header("persistent", "true")
        .with_body(body.to_owned())
}

fn ack_ref(f: &Frame) -> AckRef {
    AckRef {
        id: f.ack().unwrap().to_owned(),
        subscription: None,
        requeue: true,
    }
}

#[test]
fn topic_fans_out_to_every_subscriber_in_publish_order() {
    let mut h = Harness::new(RouterConfig::default());
    for c in 1..=3 {
        h.connect(c, Version::V1_2);
        h.sub(c, "s", "/topic/t", AckMode::Auto, 0);
    }
    for i in 0..5 {
        h.send(1, "/topic/t", &i.to_string());
    }
    for c in 1..=3 {
        assert_eq!(h.bodies(c), ["0", "1", "2", "3", "4"]);
    }
    // A topic holds nothing: a late subscriber sees only later messages.
    h.connect(4, Version::V1_2);
    h.sub(4, "s", "/topic/t", AckMode::Auto, 0);
    h.send(1, "/topic/t", "5");
    assert_eq!(h.bodies(4), ["5"]);
}

#[test]
fn s1_message_carries_destination_message_id_and_subscription() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_1);
    h.sub(1, "sub-9", "/queue/q", AckMode::Auto, 0);
    h.send(1, "/queue/q", "x");
    let f = &h.frames(1)[0];
    assert_eq!(f.command, Command::Message);
    assert_eq!(f.destination(), Some("/queue/q"));
    assert_eq!(f.subscription(), Some("sub-9"));
    assert!(f.message_id().is_some());
    assert_eq!(f.ack(), None, "no ack header for auto or before 1.2");
}

#[test]
fn queue_delivers_each_message_once_round_robin_and_holds_without_subscribers() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_2);
    for i in 0..4 {
        h.send(1, "/queue/q", &i.to_string());
    }
    assert_eq!(h.router.queues()[0].ready, 4);
    h.sub(1, "a", "/queue/q", AckMode::Auto, 0);
    assert_eq!(
        h.bodies(1),
        ["0", "1", "2", "3"],
        "held messages go to the first subscriber"
    );
    h.sub(2, "b", "/queue/q", AckMode::Auto, 0);
    for i in 4..8 {
        h.send(1, "/queue/q", &i.to_string());
    }
    let (a, b) = (h.bodies(1), h.bodies(2));
    assert_eq!(a.len() + b.len(), 4);
    assert_eq!(a.len(), 2, "round-robin: {a:?} {b:?}");
}

#[test]
fn s2_client_ack_is_cumulative_and_prefetch_bounds_unacked() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.sub(1, "s", "/queue/q", AckMode::Client, 3);
    for i in 0..5 {
        h.send(2, "/queue/q", &i.to_string()); // conn 2 unknown: ignored
    }
    h.connect(2, Version::V1_2);
    for i in 0..5 {
        h.send(2, "/queue/q", &i.to_string());
    }
    let got = h.frames(1);
    assert_eq!(got.len(), 3, "prefetch-count 3");
    assert!(
        got.iter().all(|f| f.ack().is_some()),
        "1.2 client mode carries ack"
    );
    h.router.handle(RouterCommand::Ack {
        conn: 1,
        ack: ack_ref(&got[1]),
        receipt: Some("r".into()),
    });
    let next = h.frames(1);
    // Cumulative: two acked → two more delivered, then the RECEIPT after them.
    assert_eq!(next.len(), 3);
    assert_eq!(next[0].body(), b"3");
    assert_eq!(next[1].body(), b"4");
    assert_eq!(next[2].command, Command::Receipt);
    // Acking the first one again is an unknown id.
    h.router.handle(RouterCommand::Ack {
        conn: 1,
        ack: ack_ref(&got[0]),
        receipt: None,
    });
    let err = h.frames(1);
    assert_eq!(err[0].command, Command::Error);
    assert_eq!(err[0].message(), Some("ACK/NACK of an unknown message"));
    assert!(h.outboxes[&1].is_closing());
}

#[test]
fn client_individual_ack_and_nack_requeue_with_redelivered() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_1);
    h.sub(1, "s", "/queue/q", AckMode::ClientIndividual, 0);
    h.send(1, "/queue/q", "a");
    h.send(1, "/queue/q", "b");
    let got = h.frames(1);
    let r = |f: &Frame| AckRef {
        id: f.message_id().unwrap().into(),
        subscription: Some("s".into()),
        requeue: true,
    };
    h.router.handle(RouterCommand::Ack {
        conn: 1,
        ack: r(&got[1]),
        receipt: None,
    });
    h.router.handle(RouterCommand::Nack {
        conn: 1,
        ack: r(&got[0]),
        receipt: None,
    });
    let again = h.frames(1);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body(), b"a");
    assert_eq!(again[0].get("redelivered"), Some("true"));
    assert_eq!(again[0].message_id(), got[0].message_id());
    assert_eq!(Metrics::get(&h.metrics.redelivered), 1);
}

#[test]
fn a_redelivery_gets_a_new_ack_id_so_a_late_ack_for_the_first_delivery_cannot_settle_it() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.sub(1, "s", "/queue/q", AckMode::ClientIndividual, 0);
    h.send(1, "/queue/q", "a");
    let first = h.frames(1);
    h.router.handle(RouterCommand::Nack {
        conn: 1,
        ack: ack_ref(&first[0]),
        receipt: None,
    });
    let again = h.frames(1);
    assert_eq!(again[0].body(), b"a");
    assert_eq!(
        again[0].message_id(),
        first[0].message_id(),
        "the same message"
    );
    assert_ne!(again[0].get("ack"), first[0].get("ack"), "a new delivery");
    // The new id settles the redelivery: nothing left to redeliver on close.
    let mut h2 = Harness::new(RouterConfig::default());
    h2.connect(1, Version::V1_2);
    h2.connect(2, Version::V1_2);
    h2.sub(1, "s", "/queue/q", AckMode::ClientIndividual, 0);
    h2.send(1, "/queue/q", "a");
    let first2 = h2.frames(1);
    h2.router.handle(RouterCommand::Nack {
        conn: 1,
        ack: ack_ref(&first2[0]),
        receipt: None,
    });
    let again2 = h2.frames(1);
    h2.router.handle(RouterCommand::Ack {
        conn: 1,
        ack: ack_ref(&again2[0]),
        receipt: None,
    });
    h2.sub(2, "t", "/queue/q", AckMode::Auto, 0);
    h2.router.handle(RouterCommand::Disconnect {
        conn: 1,
        receipt: None,
    });
    assert!(h2.frames(2).is_empty(), "acknowledged: not redelivered");
    // A late ACK naming the first delivery is an unknown ACK: ERROR, and the
    // redelivered message stays unacknowledged (it goes to the next subscriber).
    h.router.handle(RouterCommand::Ack {
        conn: 1,
        ack: ack_ref(&first[0]),
        receipt: None,
    });
    let refused = h.frames(1);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].command, Command::Error);
    h.connect(2, Version::V1_2);
    h.sub(2, "t", "/queue/q", AckMode::Auto, 0);
    let moved = h.frames(2);
    assert_eq!(
        moved.len(),
        1,
        "the redelivery was not settled by the late ACK"
    );
    assert_eq!(moved[0].body(), b"a");
}

#[test]
fn unacked_messages_of_a_closed_connection_go_to_another_subscriber() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_0);
    h.sub(1, "s", "/queue/q", AckMode::Client, 0);
    h.send(1, "/queue/q", "m1");
    assert_eq!(h.bodies(1), ["m1"]);
    h.sub(2, "/queue/q", "/queue/q", AckMode::Auto, 0);
    h.router.handle(RouterCommand::Closed { conn: 1 });
    let got = h.frames(2);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body(), b"m1");
    assert_eq!(got[0].get("redelivered"), Some("true"));
}

#[test]
fn unsubscribe_requeues_unacked_and_answers_receipt() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.sub(1, "s", "/queue/q", AckMode::ClientIndividual, 0);
    h.send(1, "/queue/q", "m1");
    h.frames(1);
    h.router.handle(RouterCommand::Unsubscribe {
        conn: 1,
        id: "s".into(),
        forget: false,
        receipt: Some("u".into()),
    });
    let got = h.frames(1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].receipt_id(), Some("u"));
    assert_eq!(h.router.queues()[0].ready, 1);
}

#[test]
fn full_queue_refuses_send_with_error_or_drops_oldest() {
    let config = RouterConfig {
        queue_max_messages: 2,
        ..RouterConfig::default()
    };
    let mut h = Harness::new(config.clone());
    h.connect(1, Version::V1_2);
    h.send(1, "/queue/q", "a");
    h.send(1, "/queue/q", "b");
    h.router.handle(RouterCommand::Send {
        conn: 1,
        frame: Frame::send("/queue/q").with_receipt("r").with_body("c"),
    });
    let got = h.frames(1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].command, Command::Error);
    assert_eq!(got[0].message(), Some("queue is full"));
    assert_eq!(got[0].receipt_id(), Some("r"));

    let mut h = Harness::new(RouterConfig {
        queue_overflow: QueueOverflow::DropOldest,
        ..config
    });
    h.connect(1, Version::V1_2);
    for b in ["a", "b", "c"] {
        h.send(1, "/queue/q", b);
    }
    h.sub(1, "s", "/queue/q", AckMode::Auto, 0);
    assert_eq!(h.bodies(1), ["b", "c"]);
    h.router.flush_metrics();
    assert_eq!(h.metrics.dropped(DropReason::QueueFull), 1);
    assert_eq!(h.metrics.dropped_total(), 1);
}

#[test]
fn queue_byte_limit_counts_headers_not_only_bodies() {
    // Bodiless messages with 1 KiB of headers are not free: a 4 KiB queue holds three.
    let mut h = Harness::new(RouterConfig {
        queue_max_bytes: 4096,
        ..RouterConfig::default()
    });
    h.connect(1, Version::V1_2);
    let heavy = || Frame::send("/queue/q").header("x-pad", &"p".repeat(1000));
    for _ in 0..3 {
        h.router.handle(RouterCommand::Send {
            conn: 1,
            frame: heavy(),
        });
    }
    assert!(h.frames(1).is_empty());
    let stats = h.router.queues();
    assert_eq!(stats[0].ready, 3);
    assert!(stats[0].bytes > 3000, "{:?}", stats[0].bytes);
    h.router.handle(RouterCommand::Send {
        conn: 1,
        frame: heavy(),
    });
    let got = h.frames(1);
    assert_eq!(got[0].message(), Some("queue is full"), "{got:?}");
}

#[test]
fn a_queue_whose_only_message_is_refused_or_dropped_is_removed() {
    // Found by the `session` fuzz target: the queue stayed, empty and unused,
    // counting against max_destinations for good.
    for overflow in [QueueOverflow::Refuse, QueueOverflow::DropOldest] {
        let mut h = Harness::new(RouterConfig {
            queue_max_bytes: 16,
            queue_overflow: overflow,
            ..RouterConfig::default()
        });
        h.connect(1, Version::V1_2);
        h.send(1, "/queue/big", "a body larger than the queue's byte limit");
        assert_eq!(h.router.destination_count(), 0, "{overflow:?}");
    }
}

#[test]
fn slow_topic_consumer_is_disconnected_or_misses_messages() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect_bounded(1, Version::V1_2, 200);
    h.connect(2, Version::V1_2);
    h.sub(1, "s", "/topic/t", AckMode::Auto, 0);
    h.sub(2, "s", "/topic/t", AckMode::Auto, 0);
    for _ in 0..5 {
        h.send(2, "/topic/t", &"x".repeat(60));
    }
    let slow = h.frames(1);
    assert_eq!(slow.len(), 3, "two messages reached the bound, then ERROR");
    assert_eq!(slow[2].message(), Some("slow consumer"));
    assert_eq!(h.frames(2).len(), 5, "the others are not stalled");
    assert_eq!(h.router.connection_count(), 1);
    assert_eq!(h.metrics.errors(ErrorReason::SlowConsumer), 1);

    let mut h = Harness::new(RouterConfig {
        slow_consumer: SlowConsumer::Drop,
        ..RouterConfig::default()
    });
    h.connect_bounded(1, Version::V1_2, 200);
    h.sub(1, "s", "/topic/t", AckMode::Auto, 0);
    for _ in 0..5 {
        h.send(1, "/topic/t", &"x".repeat(60));
    }
    assert_eq!(h.frames(1).len(), 2);
    h.send(1, "/topic/t", "after drain");
    assert_eq!(h.bodies(1), ["after drain"]);
    h.router.flush_metrics();
    assert_eq!(h.metrics.dropped(DropReason::SlowConsumer), 3);
    assert_eq!(h.metrics.dropped_total(), 3);
    assert_eq!(h.metrics.errors(ErrorReason::SlowConsumer), 0);
}

#[test]
fn queue_skips_a_full_outbox_and_resumes_when_drained() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect_bounded(1, Version::V1_2, 200);
    h.sub(1, "s", "/queue/q", AckMode::Auto, 0);
    for _ in 0..5 {
        h.send(2, "/queue/q", "");
    }
    h.connect(2, Version::V1_2);
    for i in 0..5 {
        h.send(2, "/queue/q", &format!("{i}{}", "x".repeat(60)));
    }
    assert_eq!(h.frames(1).len(), 2);
    assert_eq!(h.router.queues()[0].ready, 3, "held, not dropped");
    assert!(h.outboxes[&1].take_blocked());
    h.router.handle(RouterCommand::Drained { conn: 1 });
    assert_eq!(h.frames(1).len(), 2);
    h.router.handle(RouterCommand::Drained { conn: 1 });
    assert_eq!(h.frames(1).len(), 1);
}

#[test]
fn commit_applies_in_order_and_refuses_atomically() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.sub(1, "s", "/topic/t", AckMode::Auto, 0);
    let ops = vec![
        TxOp::Send(Frame::send("/topic/t").with_body("1")),
        TxOp::Send(Frame::send("/topic/t").with_body("2")),
    ];
    h.router.handle(RouterCommand::Commit {
        conn: 1,
        ops,
        receipt: Some("c".into()),
    });
    let got = h.frames(1);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].receipt_id(), Some("c"));
    let ops = vec![
        TxOp::Send(Frame::send("/topic/t").with_body("3")),
        TxOp::Ack(AckRef {
            id: "99.0".into(),
            subscription: None,
            requeue: true,
        }),
    ];
    h.router.handle(RouterCommand::Commit {
        conn: 1,
        ops,
        receipt: None,
    });
    let got = h.frames(1);
    assert_eq!(
        got.len(),
        1,
        "nothing of the refused commit was published: {got:?}"
    );
    assert_eq!(got[0].command, Command::Error);
}

#[test]
fn commit_is_refused_whole_when_a_later_operation_would_fail() {
    // Each ACK alone names an unacked message, but applied in order the later
    // one no longer does; a queue or the destination table would overflow
    // half-way. Before, the SEND ahead of them was published anyway.
    let commit = |h: &mut Harness, ops: Vec<TxOp>| {
        h.router.handle(RouterCommand::Commit {
            conn: 1,
            ops,
            receipt: None,
        });
    };
    let ack = |f: &Frame| TxOp::Ack(ack_ref(f));
    for (mode, twice) in [(AckMode::ClientIndividual, false), (AckMode::Client, true)] {
        let mut h = Harness::new(RouterConfig::default());
        h.connect(1, Version::V1_2);
        h.connect(2, Version::V1_2);
        h.sub(1, "w", "/queue/work", mode, 0);
        h.sub(2, "t", "/topic/t", AckMode::Auto, 0);
        h.send(2, "/queue/work", "m1");
        h.send(2, "/queue/work", "m2");
        let got = h.frames(1);
        // Individual: m1 twice. Client: m2 (covers m1), then m1.
        let (a, b) = if twice {
            (&got[1], &got[0])
        } else {
            (&got[0], &got[0])
        };
        let ops = vec![
            TxOp::Send(Frame::send("/topic/t").with_body("x")),
            ack(a),
            ack(b),
        ];
        commit(&mut h, ops);
        assert_eq!(
            h.frames(1)[0].message(),
            Some("ACK/NACK of an unknown message")
        );
        assert!(
            h.frames(2).is_empty(),
            "{mode:?}: the SEND of a refused COMMIT was published"
        );
    }

    let mut h = Harness::new(RouterConfig {
        queue_max_messages: 2,
        max_destinations: 2,
        ..RouterConfig::default()
    });
    h.connect(1, Version::V1_2);
    h.sub(1, "t", "/topic/t", AckMode::Auto, 0);
    let send = |d: &str| TxOp::Send(Frame::send(d).with_body("x"));
    commit(
        &mut h,
        vec![
            send("/topic/t"),
            send("/queue/q"),
            send("/queue/q"),
            send("/queue/q"),
        ],
    );
    let got = h.frames(1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].message(), Some("queue is full"));
    assert_eq!(h.router.destination_count(), 0);

    let mut h = Harness::new(RouterConfig {
        max_destinations: 2,
        ..RouterConfig::default()
    });
    h.connect(1, Version::V1_2);
    h.sub(1, "t", "/topic/t", AckMode::Auto, 0);
    // A new topic without subscribers comes and goes; two new queues stay.
    commit(
        &mut h,
        vec![
            send("/topic/t"),
            send("/topic/u"),
            send("/queue/a"),
            send("/queue/b"),
        ],
    );
    let got = h.frames(1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].message(), Some("too many destinations"));
    assert_eq!(h.router.destination_count(), 0);
    h.connect(1, Version::V1_2);
    h.sub(1, "t", "/topic/t", AckMode::Auto, 0);
    commit(
        &mut h,
        vec![send("/topic/u"), send("/queue/a"), send("/topic/t")],
    );
    assert_eq!(h.bodies(1), ["x"], "fits: applied");
}

#[test]
fn destinations_are_created_on_first_use_removed_when_unused_and_limited() {
    let mut h = Harness::new(RouterConfig {
        max_destinations: 1,
        ..RouterConfig::default()
    });
    h.connect(1, Version::V1_2);
    h.sub(1, "a", "/topic/a", AckMode::Auto, 0);
    assert_eq!(h.router.destination_count(), 1);
    h.router.handle(RouterCommand::Unsubscribe {
        conn: 1,
        id: "a".into(),
        forget: false,
        receipt: None,
    });
    assert_eq!(h.router.destination_count(), 0);
    h.send(1, "/queue/held", "x");
    h.send(1, "/queue/other", "y");
    let got = h.frames(1);
    assert_eq!(got[0].message(), Some("too many destinations"));
}

#[test]
fn topic_client_ack_without_credit_misses_messages() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_0);
    h.sub(1, "s", "/topic/t", AckMode::Client, 1);
    h.send(1, "/topic/t", "a");
    h.send(1, "/topic/t", "b");
    let got = h.frames(1);
    assert_eq!(got.len(), 1);
    let id = got[0].message_id().unwrap().to_owned();
    h.router.handle(RouterCommand::Ack {
        conn: 1,
        ack: AckRef {
            id,
            subscription: None,
            requeue: true,
        },
        receipt: None,
    });
    h.send(1, "/topic/t", "c");
    assert_eq!(h.bodies(1), ["c"]);
}

#[test]
fn disconnect_answers_receipt_then_closes() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.router.handle(RouterCommand::Disconnect {
        conn: 1,
        receipt: Some("bye".into()),
    });
    assert_eq!(h.frames(1)[0].receipt_id(), Some("bye"));
    assert!(h.outboxes[&1].is_closing());
    assert_eq!(h.router.connection_count(), 0);
}

#[test]
fn a_publisher_pauses_while_a_receiver_is_congested_topic_and_queue() {
    for dest in ["/topic/flow", "/queue/flow"] {
        let mut h = Harness::new(RouterConfig::default());
        h.connect(1, Version::V1_2); // publisher
        // Bound 1 MiB: congested from 128 KiB.
        h.connect_bounded(2, Version::V1_2, 1 << 20);
        h.sub(2, "s", dest, AckMode::Auto, 0);
        let body = "x".repeat(1024);
        let mut sent = 0;
        while !h.outboxes[&1].is_paused() {
            h.send(1, dest, &body);
            sent += 1;
            assert!(sent < 200, "never paused");
        }
        assert!(
            sent >= 100,
            "paused at {sent} KiB, before the congestion level"
        );
        assert!(h.outboxes[&2].is_congested());
        // Messages still arriving (already read) are delivered, not dropped.
        h.send(1, dest, &body);
        h.router.flush_metrics();
        assert_eq!(h.metrics.dropped_total(), 0);
        // The subscriber's writer drains its outbox: the publisher resumes.
        assert_eq!(h.frames(2).len(), sent + 1);
        assert!(!h.outboxes[&1].is_paused(), "{dest}");
    }
}
