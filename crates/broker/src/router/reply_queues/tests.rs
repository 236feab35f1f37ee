//! Reply destinations, sans-IO: the `reply-to` rewrite, delivery to the
//! owner, limits, transactions, and what goes with the owner.
#![allow(clippy::unwrap_used)]

use super::super::tests::Harness;
use super::*;
use crate::metrics::Metrics;
use crate::router::{RouterCommand, RouterConfig, TxOp};
use crate::store::Recovered;
use stompkit_frame::Version;

/// A SEND to `dest` with `reply-to` and a body.
fn request(dest: &str, reply_to: &str, body: &str) -> Frame {
    Frame::send(dest)
        .header(REPLY_TO, reply_to)
        .with_body(body.to_owned())
}

/// `requester` (1) sends a request with `reply-to`, `responder` (2)
/// subscribed to `/queue/req` gets it: returns the rewritten `reply-to`.
fn round_trip_reply_to(h: &mut Harness, reply_to: &str) -> String {
    h.router.handle(RouterCommand::Send {
        conn: 1,
        frame: request("/queue/req", reply_to, "ask"),
    });
    let got = h.frames(2);
    assert_eq!(got.len(), 1, "{got:?}");
    got[0].get(REPLY_TO).unwrap().to_owned()
}

fn two_party(config: RouterConfig) -> Harness {
    let mut h = Harness::new(config);
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_2);
    h.sub(2, "req", "/queue/req", AckMode::Auto, 0);
    h
}

fn secret_of(reply: &str, prefix: &str) -> String {
    let secret = reply
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{reply}"));
    assert_eq!(secret.len(), 32, "{reply}");
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{reply}");
    secret.to_owned()
}

#[test]
fn reply_to_is_rewritten_and_the_reply_reaches_the_owner_without_subscribe() {
    let mut h = two_party(RouterConfig::default());
    let reply = round_trip_reply_to(&mut h, "/temp-queue/answers");
    secret_of(&reply, "/reply-queue/");
    h.router.handle(RouterCommand::Send {
        conn: 2,
        frame: Frame::send(&reply)
            .header("correlation-id", "c1")
            .with_body("42"),
    });
    let got = h.frames(1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].command, Command::Message);
    assert_eq!(got[0].subscription(), Some("/temp-queue/answers"));
    assert_eq!(got[0].destination(), Some(reply.as_str()));
    assert_eq!(got[0].get("correlation-id"), Some("c1"));
    assert_eq!(got[0].ack(), None, "auto: no ack header in 1.2");
    assert_eq!(got[0].body(), b"42");
    assert!(h.frames(2).is_empty(), "only the owner receives");
    // Not shown among the queues (its name is the capability).
    assert!(h.router.queues().iter().all(|q| q.name == "/queue/req"));
}

#[test]
fn one_name_one_reply_destination_per_connection() {
    let mut h = two_party(RouterConfig::default());
    let first = round_trip_reply_to(&mut h, "/temp-queue/a");
    let again = round_trip_reply_to(&mut h, "/temp-queue/a");
    let other = round_trip_reply_to(&mut h, "/temp-queue/b");
    assert_eq!(first, again);
    assert_ne!(first, other);
    h.connect(3, Version::V1_2);
    h.router.handle(RouterCommand::Send {
        conn: 3,
        frame: request("/queue/req", "/temp-queue/a", "ask"),
    });
    let third = h.frames(2)[0].get(REPLY_TO).unwrap().to_owned();
    assert_ne!(
        first, third,
        "another connection's /temp-queue/a is its own"
    );
    // A reply-to that is not temporary passes unchanged.
    assert_eq!(round_trip_reply_to(&mut h, "/queue/mine"), "/queue/mine");
}

#[test]
fn replies_after_the_owner_left_are_dropped_and_counted() {
    let mut h = two_party(RouterConfig::default());
    let reply = round_trip_reply_to(&mut h, "/temp-queue/a");
    let before = h.router.destination_count();
    h.router.handle(RouterCommand::Closed { conn: 1 });
    assert_eq!(
        h.router.destination_count(),
        before - 1,
        "gone with its owner"
    );
    h.send(2, &reply, "late");
    h.send(
        2,
        "/reply-queue/00000000000000000000000000000000",
        "never was",
    );
    assert_eq!(h.metrics.dropped(DropReason::ReplyDestinationGone), 2);
    assert!(!h.outboxes[&2].is_closing(), "a late reply is no error");
    assert_eq!(h.router.destination_count(), before - 1, "not re-created");
}

#[test]
fn a_reply_queue_holds_while_the_owner_is_full_and_drops_what_it_held_when_the_owner_goes() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect_bounded(1, Version::V1_2, 200);
    h.connect(2, Version::V1_2);
    h.sub(2, "req", "/queue/req", AckMode::Auto, 0);
    let reply = round_trip_reply_to(&mut h, "/temp-queue/a");
    for i in 0..5 {
        h.send(2, &reply, &format!("{i}{}", "x".repeat(60)));
    }
    assert_eq!(h.frames(1).len(), 2, "two fit in the outbox");
    h.router.handle(RouterCommand::Drained { conn: 1 });
    assert_eq!(h.frames(1).len(), 2, "held ones follow when it drained");
    h.router.handle(RouterCommand::Closed { conn: 1 });
    assert_eq!(
        h.metrics.dropped(DropReason::ReplyDestinationGone),
        1,
        "the last one held"
    );
    assert_eq!(h.router.destination_count(), 1, "only /queue/req is left");
}

#[test]
fn a_reply_topic_holds_nothing() {
    let mut h = Harness::new(RouterConfig {
        slow_consumer: crate::config::SlowConsumer::Drop,
        ..RouterConfig::default()
    });
    h.connect_bounded(1, Version::V1_2, 200);
    h.connect(2, Version::V1_2);
    h.sub(2, "req", "/queue/req", AckMode::Auto, 0);
    let reply = round_trip_reply_to(&mut h, "/temp-topic/news");
    secret_of(&reply, "/reply-topic/");
    for i in 0..5 {
        h.send(2, &reply, &format!("{i}{}", "x".repeat(60)));
    }
    let got = h.frames(1);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].subscription(), Some("/temp-topic/news"));
    h.router.handle(RouterCommand::Drained { conn: 1 });
    assert!(h.frames(1).is_empty(), "nothing was held");
    h.router.flush_metrics();
    assert_eq!(h.metrics.dropped(DropReason::SlowConsumer), 3);
}

#[test]
fn max_temp_queues_is_per_connection_and_refused_with_error() {
    let mut h = two_party(RouterConfig {
        max_temp_queues: 2,
        ..RouterConfig::default()
    });
    round_trip_reply_to(&mut h, "/temp-queue/a");
    round_trip_reply_to(&mut h, "/temp-topic/b");
    round_trip_reply_to(&mut h, "/temp-queue/a");
    h.router.handle(RouterCommand::Send {
        conn: 1,
        frame: request("/queue/req", "/temp-queue/c", "too many").with_receipt("r"),
    });
    let got = h.frames(1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].command, Command::Error);
    assert!(
        got[0].message().unwrap().contains("max_temp_queues"),
        "{got:?}"
    );
    assert_eq!(got[0].receipt_id(), Some("r"));
    assert!(h.frames(2).is_empty(), "the refused SEND was not routed");
    // Another connection has its own allowance.
    h.connect(3, Version::V1_2);
    h.router.handle(RouterCommand::Send {
        conn: 3,
        frame: request("/queue/req", "/temp-queue/c", "fine"),
    });
    assert_eq!(h.bodies(2), ["fine"]);
}

#[test]
fn an_empty_temporary_name_is_an_error() {
    let mut h = two_party(RouterConfig::default());
    h.router.handle(RouterCommand::Send {
        conn: 1,
        frame: request("/queue/req", "/temp-queue/", "x"),
    });
    let got = h.frames(1);
    assert_eq!(got[0].command, Command::Error);
    assert!(got[0].message().unwrap().contains("reply-to"), "{got:?}");
}

#[test]
fn a_transaction_rewrites_at_commit_and_is_refused_whole_past_the_limit() {
    let mut h = two_party(RouterConfig {
        max_temp_queues: 1,
        ..RouterConfig::default()
    });
    let before = h.router.destination_count();
    let ops = vec![
        TxOp::Send(request("/queue/req", "/temp-queue/a", "1")),
        TxOp::Send(request("/queue/req", "/temp-queue/b", "2")),
    ];
    h.router.handle(RouterCommand::Commit {
        conn: 1,
        ops,
        receipt: None,
    });
    assert_eq!(h.frames(1)[0].command, Command::Error);
    assert!(h.frames(2).is_empty(), "nothing of it applied");
    assert_eq!(h.router.destination_count(), before, "no reply queue made");

    h.connect(3, Version::V1_2);
    let ops = vec![
        TxOp::Send(request("/queue/req", "/temp-queue/a", "1")),
        TxOp::Send(request("/queue/req", "/temp-queue/a", "2")),
    ];
    h.router.handle(RouterCommand::Commit {
        conn: 3,
        ops,
        receipt: Some("c".into()),
    });
    assert_eq!(h.frames(3)[0].receipt_id(), Some("c"));
    let got = h.frames(2);
    assert_eq!(got.len(), 2);
    let reply = got[0].get(REPLY_TO).unwrap();
    secret_of(reply, "/reply-queue/");
    assert_eq!(
        got[1].get(REPLY_TO),
        Some(reply),
        "one name, one reply queue"
    );
    // A COMMIT sending to a reply destination that is gone just drops it.
    let ops = vec![TxOp::Send(Frame::send("/reply-queue/gone").with_body("x"))];
    h.router.handle(RouterCommand::Commit {
        conn: 2,
        ops,
        receipt: Some("d".into()),
    });
    assert_eq!(h.frames(2)[0].receipt_id(), Some("d"));
    assert_eq!(h.metrics.dropped(DropReason::ReplyDestinationGone), 1);
}

#[test]
fn a_reply_is_never_stored() {
    let metrics = Arc::new(Metrics::default());
    let mut router = Router::with_store(RouterConfig::default(), metrics, Recovered::default());
    let outbox = Arc::new(crate::outbox::Outbox::new(200));
    router.handle(RouterCommand::Connect {
        conn: 1,
        outbox: outbox.clone(),
        version: Version::V1_2,
    });
    router.handle(RouterCommand::Connect {
        conn: 2,
        outbox: Arc::new(crate::outbox::Outbox::new(1 << 20)),
        version: Version::V1_2,
    });
    router.handle(RouterCommand::Send {
        conn: 1,
        frame: request("/topic/nobody", "/temp-queue/a", "ask"),
    });
    let reply = router
        .names
        .keys()
        .find(|n| n.starts_with(REPLY_QUEUE))
        .unwrap()
        .to_string();
    // Fill the owner's outbox so that replies are held in the queue.
    for _ in 0..5 {
        router.handle(RouterCommand::Send {
            conn: 2,
            frame: Frame::send(&reply)
                .header("persistent", "true")
                .with_body("x".repeat(60)),
        });
    }
    assert!(outbox.is_full());
    assert!(router.take_units().is_empty(), "nothing for the store");
    // The control: the same SEND to a queue is stored.
    router.handle(RouterCommand::Send {
        conn: 1,
        frame: Frame::send("/queue/q").header("persistent", "true"),
    });
    assert!(!router.take_units().is_empty());
}

#[test]
fn private_destinations_and_reserved_ids() {
    use PrivateAccess::*;
    let cases = [
        (Command::Send, "/reply-queue/abc", Capability),
        (Command::Send, "/reply-topic/abc", Capability),
        (Command::Subscribe, "/reply-queue/abc", ReplySubscribe),
        (Command::Subscribe, "/reply-topic/abc", ReplySubscribe),
        (Command::Send, "/temp-queue/a", Temporary),
        (Command::Subscribe, "/temp-topic/a", Temporary),
        (Command::Send, "/queue/reply-queue", Public),
        (Command::Subscribe, "/reply-x/a", Public),
    ];
    for (command, name, access) in cases {
        assert_eq!(
            private_destination(command, name),
            access,
            "{command} {name}"
        );
    }
    assert!(is_reserved_subscription_id("/temp-queue/a"));
    assert!(is_reserved_subscription_id("/temp-topic/"));
    assert!(!is_reserved_subscription_id("temp-queue/a"));
}
