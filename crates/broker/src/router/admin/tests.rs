//! Router tests of the admin API's queries and changes (sans-IO, through the
//! harness of `router/tests.rs`; the store's units are taken by hand).
#![allow(clippy::unwrap_used)]

use crate::router::tests::{Harness, persistent};
use crate::router::*;
use crate::store::{Op, empty_segment, recover_from_segments};
use stompkit_frame::Command;

fn sub_with(h: &mut Harness, conn: ConnId, id: &str, dest: &str, selector: Option<&str>) {
    h.router.handle(RouterCommand::Subscribe {
        conn,
        id: id.into(),
        destination: dest.into(),
        ack: AckMode::ClientIndividual,
        prefetch: 10,
        durable: None,
        selector: selector.map(|s| Selector::parse(s).unwrap()),
        receipt: None,
    });
}

fn ack(h: &mut Harness, conn: ConnId, f: &Frame) {
    h.router.handle(RouterCommand::Ack {
        conn,
        ack: AckRef {
            id: f.ack().unwrap().to_owned(),
            subscription: None,
            requeue: true,
        },
        receipt: None,
    });
}

/// The only ERROR written to `conn` (after anything else), and that its
/// outbox is closing.
fn closed_with_error(h: &Harness, conn: ConnId) -> Frame {
    let frames = h.frames(conn);
    let last = frames.last().unwrap();
    assert_eq!(last.command, Command::Error, "{frames:?}");
    assert!(h.outboxes[&conn].is_closing());
    last.clone()
}

/// The store operations of every unit `h.write` takes.
fn write_ops(h: &mut Harness, log: &mut Vec<u8>) -> Vec<Op> {
    h.write(log).into_iter().flat_map(|u| u.ops).collect()
}

#[test]
fn queues_topics_and_overview_show_what_exists_and_hide_reply_destinations() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_2);
    h.send(1, "/queue/b", "x");
    h.send(1, "/queue/b", "yy");
    h.sub(2, "q", "/queue/a", AckMode::Client, 5);
    h.send(1, "/queue/a", "delivered");
    h.sub(2, "t", "/topic/prices.eu", AckMode::Auto, 0);
    h.sub(2, "p", "/topic/prices.*", AckMode::Auto, 0);
    h.durable_sub(2, "d", "/topic/orders", "durable\0\0\0d", AckMode::Auto);
    // A reply queue and topic (their names are secrets) and their owner's subscriptions.
    let frame = Frame::send("/queue/b").header("reply-to", "/temp-queue/r");
    h.send_frame(1, frame);
    let frame = Frame::send("/queue/b").header("reply-to", "/temp-topic/t");
    h.send_frame(1, frame);

    let queues = h.router.queues();
    let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["/queue/a", "/queue/b"]);
    let (a, b) = (&queues[0], &queues[1]);
    assert_eq!((a.ready, a.unacked, a.consumers), (0, 1, 1));
    assert_eq!((b.ready, b.unacked, b.consumers), (4, 0, 0));
    assert!(b.bytes > 3, "headers and bodies: {}", b.bytes);
    assert!(!b.durable, "no store");
    assert_eq!(h.router.queue("/queue/b").as_ref(), Some(b));
    assert_eq!(h.router.queue("/queue/none"), None);
    assert_eq!(h.router.queue("durable\0\0\0d"), None, "no queue");

    let topics = h.router.topics();
    let shown: Vec<(&str, usize, usize)> = topics
        .iter()
        .map(|t| (t.name.as_str(), t.subscribers, t.durable_subscriptions))
        .collect();
    assert_eq!(
        shown,
        [
            ("/topic/orders", 1, 1),
            ("/topic/prices.*", 1, 0),
            ("/topic/prices.eu", 1, 0),
        ]
    );

    let overview = h.router.overview();
    assert_eq!(overview.connections, 2);
    assert_eq!(overview.queues, 2);
    assert_eq!(overview.topics, 3);
    // q, t, p, d and the two reply destinations' owner subscriptions.
    assert_eq!(overview.subscriptions, 6);
}

#[test]
fn peek_shows_the_first_ready_messages_without_consuming_them() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    // `destination` after a header of the client's own.
    let first = Frame::from_parts(Command::Send, Default::default(), "first")
        .header("b-header", "2")
        .header("destination", "/queue/q")
        .header("receipt", "r-1")
        .header("a-header", "1");
    h.send_frame(1, first);
    // 1023 ASCII bytes, then a 2-byte character the 1 KiB cut splits.
    let long = format!("{}é and more", "x".repeat(1023));
    h.send(1, "/queue/q", &long);
    h.send(1, "/queue/q", "third");

    let peeked = h.router.peek("/queue/q", 2).unwrap();
    assert_eq!(peeked.len(), 2);
    let names: Vec<&str> = peeked[0].headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["destination", "message-id", "b-header", "a-header"]);
    assert_eq!(peeked[0].headers[0].1, "/queue/q");
    let id = peeked[0].headers[1].1.clone();
    assert_eq!((peeked[0].body.as_str(), peeked[0].body_len), ("first", 5));
    assert_eq!(
        peeked[1].body,
        "x".repeat(1023),
        "the split character is left out"
    );
    assert_eq!(peeked[1].body_len, long.len());
    assert_eq!(h.router.peek("/queue/q", 1000).unwrap().len(), 3);
    assert!(h.router.peek("/queue/q", 0).unwrap().is_empty());
    assert_eq!(h.router.peek("/queue/none", 10), None);
    assert_eq!(h.router.peek("/topic/q", 10), None);

    // Nothing was consumed.
    assert_eq!(h.router.queue("/queue/q").unwrap().ready, 3);
    h.sub(1, "s", "/queue/q", AckMode::Auto, 0);
    let frames: Vec<Frame> = h
        .frames(1)
        .into_iter()
        .filter(|f| f.command == Command::Message)
        .collect();
    assert_eq!(
        frames[0].message_id(),
        Some(id.as_str()),
        "the id its MESSAGE has"
    );
    let delivered: Vec<(&str, &str)> = frames[0]
        .headers()
        .iter()
        .filter(|(n, _)| *n != "subscription")
        .collect();
    let shown: Vec<(&str, &str)> = peeked[0]
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(shown, delivered, "the headers its MESSAGE has, in order");
    let bodies: Vec<&[u8]> = frames.iter().map(|f| f.body()).collect();
    assert_eq!(bodies, [&b"first"[..], long.as_bytes(), b"third"]);
}

#[test]
fn a_peeked_message_given_back_shows_it_is_redelivered() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.sub(1, "s", "/queue/q", AckMode::Client, 1);
    h.send(1, "/queue/q", "back");
    assert_eq!(h.router.queue("/queue/q").unwrap().unacked, 1);
    h.router.handle(RouterCommand::Closed { conn: 1 });
    let peeked = h.router.peek("/queue/q", 1).unwrap();
    let names: Vec<&str> = peeked[0].headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["destination", "message-id", "redelivered"]);
    assert_eq!(peeked[0].headers[2].1, "true");
}

#[test]
fn a_peeked_body_that_is_not_utf8_is_shown_lossily() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    let frame = Frame::send("/queue/q").with_body(bytes::Bytes::from_static(b"a\xffb"));
    h.send_frame(1, frame);
    let peeked = h.router.peek("/queue/q", 1).unwrap();
    assert_eq!(
        (peeked[0].body.as_str(), peeked[0].body_len),
        ("a\u{fffd}b", 3)
    );
}

#[test]
fn purge_drops_the_ready_messages_and_keeps_unacked_deliveries() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.sub(1, "s", "/queue/q", AckMode::ClientIndividual, 1);
    for body in ["1", "2", "3"] {
        h.send(1, "/queue/q", body);
    }
    let delivered = h.frames(1);
    assert_eq!(delivered.len(), 1);
    assert_eq!(h.router.purge("/queue/q"), Ok(2));
    let q = h.router.queue("/queue/q").unwrap();
    assert_eq!((q.ready, q.unacked, q.bytes), (0, 1, 0));
    // The unacked delivery is still the subscriber's: its ACK settles it.
    ack(&mut h, 1, &delivered[0]);
    assert!(h.frames(1).is_empty(), "nothing left to deliver, no ERROR");
    assert_eq!(h.router.queue("/queue/q").unwrap().unacked, 0);
    h.send(1, "/queue/q", "4");
    assert_eq!(h.bodies(1), ["4"]);

    assert_eq!(h.router.purge("/queue/none"), Err(AdminRefusal::NotFound));
    assert_eq!(h.router.purge("/topic/q"), Err(AdminRefusal::NotFound));
}

#[test]
fn a_purged_queue_nobody_subscribes_to_stays_empty_until_its_next_use() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.send(1, "/queue/q", "1");
    assert_eq!(h.router.purge("/queue/q"), Ok(1));
    let q = h.router.queue("/queue/q").unwrap();
    assert_eq!((q.ready, q.bytes, q.consumers), (0, 0, 0));
    assert_eq!(h.router.purge("/queue/q"), Ok(0));
    // Its next use removes it once unused, as with any destination.
    h.sub(1, "s", "/queue/q", AckMode::Auto, 0);
    h.router.handle(RouterCommand::Unsubscribe {
        conn: 1,
        id: "s".into(),
        forget: false,
        receipt: None,
    });
    assert_eq!(h.router.queue("/queue/q"), None);
    assert_eq!(h.router.destination_count(), 0);
}

#[test]
fn delete_queue_closes_its_consumers_with_error_and_a_later_send_makes_a_new_one() {
    let mut h = Harness::new(RouterConfig::default());
    for conn in 1..=3 {
        h.connect(conn, Version::V1_2);
    }
    h.sub(1, "s", "/queue/q", AckMode::Client, 1);
    h.sub(1, "other", "/queue/other", AckMode::Client, 1);
    h.sub(2, "s", "/queue/q", AckMode::Client, 1);
    h.sub(3, "s", "/queue/elsewhere", AckMode::Auto, 0);
    h.send(3, "/queue/other", "held by 1");
    h.send(3, "/queue/q", "to 1");
    h.send(3, "/queue/q", "to 2");
    h.frames(1);
    h.frames(2);
    // Both windows are full: this one waits in the queue.
    h.send(3, "/queue/q", "ready");
    assert_eq!(h.router.queue("/queue/q").unwrap().ready, 1);

    assert_eq!(h.router.delete_queue("/queue/q"), Ok(()));
    for conn in [1, 2] {
        let error = closed_with_error(&h, conn);
        assert_eq!(error.get("message"), Some("queue deleted"));
        assert_eq!(error.get("destination"), Some("/queue/q"));
    }
    assert_eq!(h.router.queue("/queue/q"), None, "gone");
    assert_eq!(h.router.connection_count(), 1);
    // Connection 1's other subscription was removed as with any close: its
    // unacked message went back to its queue.
    assert_eq!(h.router.queue("/queue/other").unwrap().ready, 1);
    assert!(!h.outboxes[&3].is_closing());
    assert!(h.frames(3).is_empty());

    // A later SEND makes a new, empty queue.
    h.send(3, "/queue/q", "new");
    let q = h.router.queue("/queue/q").unwrap();
    assert_eq!((q.ready, q.unacked, q.consumers), (1, 0, 0));
    assert_eq!(h.router.peek("/queue/q", 10).unwrap()[0].body, "new");

    assert_eq!(
        h.router.delete_queue("/queue/none"),
        Err(AdminRefusal::NotFound)
    );
}

#[test]
fn subscriptions_show_live_ones_and_durable_ones_once() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_2);
    sub_with(&mut h, 1, "sel", "/queue/q", Some("x > 1"));
    h.sub(1, "t", "/topic/t", AckMode::Auto, 0);
    h.durable_sub(
        2,
        "live",
        "/topic/news",
        "durable\0alice\0\0live",
        AckMode::Client,
    );
    h.durable_sub(
        2,
        "away",
        "/topic/a/b",
        "durable\0bob\0app\0x/y%",
        AckMode::Client,
    );
    h.router.handle(RouterCommand::Unsubscribe {
        conn: 2,
        id: "away".into(),
        forget: false,
        receipt: None,
    });
    h.send_frame(1, Frame::send("/queue/q").header("x", "2"));
    h.send(1, "/topic/news", "n");

    let subs = h.router.subscriptions();
    let ids: Vec<&str> = subs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "1/sel",
            "1/t",
            "durable/alice//live",
            "durable/bob/app/x%2Fy%25"
        ]
    );
    let sel = &subs[0];
    assert_eq!(sel.connection, Some(1));
    assert_eq!(sel.destination, "/queue/q");
    assert_eq!(sel.ack, "client-individual");
    assert_eq!(sel.selector.as_deref(), Some("x > 1"));
    assert_eq!((sel.unacked, sel.durable), (1, false));
    assert_eq!(
        (subs[1].ack, subs[1].unacked, subs[1].selector.as_ref()),
        ("auto", 0, None)
    );
    let live = &subs[2];
    assert_eq!(live.connection, Some(2));
    assert_eq!(live.destination, "/topic/news");
    assert_eq!((live.ack, live.unacked, live.durable), ("client", 1, true));
    let away = &subs[3];
    assert_eq!(away.connection, None);
    assert_eq!(away.destination, "/topic/a/b");
    assert_eq!((away.ack, away.unacked, away.durable), ("client", 0, true));
}

#[test]
fn a_reply_destinations_subscription_shows_its_temp_name_not_its_secret_one() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    let frame = Frame::send("/queue/requests").header("reply-to", "/temp-queue/answers");
    h.send_frame(1, frame);
    let subs = h.router.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].id, "1//temp-queue/answers");
    assert_eq!(subs[0].destination, "/temp-queue/answers");
    assert!(h.router.topics().is_empty());
}

#[test]
fn a_durable_subscription_with_a_selector_shows_it() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.router.handle(RouterCommand::Subscribe {
        conn: 1,
        id: "s".into(),
        destination: "/topic/t".into(),
        ack: AckMode::Auto,
        prefetch: 0,
        durable: Some("durable\0\0\0s".into()),
        selector: Some(Selector::parse("kind = 'big'").unwrap()),
        receipt: None,
    });
    let subs = h.router.subscriptions();
    assert_eq!(subs[0].selector.as_deref(), Some("kind = 'big'"));
    h.router.handle(RouterCommand::Closed { conn: 1 });
    let subs = h.router.subscriptions();
    assert_eq!((subs[0].connection, subs[0].ack), (None, "auto"));
    assert_eq!(subs[0].selector.as_deref(), Some("kind = 'big'"));
}

#[test]
fn delete_subscription_removes_a_durable_one_for_good_and_closes_its_subscriber() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_2);
    let key = "durable\0alice\0\0s";
    h.durable_sub(1, "s", "/topic/t", key, AckMode::Client);
    h.sub(1, "plain", "/topic/t", AckMode::Auto, 0);
    h.send(2, "/topic/t", "1");
    h.frames(1);

    assert_eq!(
        h.router.delete_subscription("1/plain"),
        Err(AdminRefusal::NotDurable)
    );
    assert_eq!(
        h.router.delete_subscription("durable/alice//none"),
        Err(AdminRefusal::NotFound)
    );
    assert_eq!(
        h.router.delete_subscription("9/s"),
        Err(AdminRefusal::NotFound)
    );
    assert_eq!(
        h.router.delete_subscription("x"),
        Err(AdminRefusal::NotFound)
    );
    assert_eq!(h.router.delete_subscription("durable/alice//s"), Ok(()));
    let error = closed_with_error(&h, 1);
    assert_eq!(
        error.get("message"),
        Some("subscription deleted by administrator")
    );
    assert!(h.router.subscriptions().is_empty());
    assert!(h.router.topics().is_empty());
    assert_eq!(h.router.destination_count(), 0, "the topic went with it");

    // Gone for good: nothing published meanwhile is kept for its key.
    h.send(2, "/topic/t", "2");
    h.connect(3, Version::V1_2);
    h.durable_sub(3, "s", "/topic/t", key, AckMode::Auto);
    assert!(h.frames(3).is_empty());
    h.send(2, "/topic/t", "3");
    assert_eq!(h.bodies(3), ["3"]);
}

#[test]
fn an_inactive_durable_subscription_is_deleted_by_id_and_a_live_one_by_its_subscription_too() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.durable_sub(1, "a", "/topic/t", "durable\0\0\0a", AckMode::Auto);
    h.durable_sub(1, "b", "/topic/t", "durable\0\0\0b", AckMode::Auto);
    h.router.handle(RouterCommand::Unsubscribe {
        conn: 1,
        id: "a".into(),
        forget: false,
        receipt: None,
    });
    assert_eq!(h.router.topics()[0].durable_subscriptions, 2);
    assert_eq!(h.router.delete_subscription("durable///a"), Ok(()));
    assert!(!h.outboxes[&1].is_closing(), "nobody was subscribed to it");
    assert_eq!(h.router.topics()[0].durable_subscriptions, 1);
    assert_eq!(h.router.delete_subscription("1/b"), Ok(()));
    assert_eq!(
        closed_with_error(&h, 1).get("message"),
        Some("subscription deleted by administrator")
    );
    assert!(h.router.topics().is_empty());
}

#[test]
fn connection_counts_count_published_and_delivered_messages() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_2);
    h.connect(3, Version::V1_2);
    h.sub(2, "t", "/topic/t", AckMode::Auto, 0);
    h.sub(2, "q", "/queue/q", AckMode::Auto, 0);
    h.sub(3, "t", "/topic/t", AckMode::Auto, 0);
    for _ in 0..3 {
        h.send(1, "/topic/t", "t");
    }
    h.send(1, "/queue/q", "q");
    h.send(3, "/queue/elsewhere", "held");
    // A removed subscription's deliveries still count.
    h.router.handle(RouterCommand::Unsubscribe {
        conn: 2,
        id: "t".into(),
        forget: false,
        receipt: None,
    });
    let counts = h.router.connection_counts();
    assert_eq!(counts.len(), 3);
    let c = |subscriptions, messages_in, messages_out| ConnectionCounts {
        subscriptions,
        messages_in,
        messages_out,
    };
    assert_eq!(counts[&1], c(0, 4, 0));
    assert_eq!(counts[&2], c(1, 0, 4));
    assert_eq!(counts[&3], c(1, 1, 3));
    h.router.handle(RouterCommand::Closed { conn: 3 });
    assert!(!h.router.connection_counts().contains_key(&3));
}

#[test]
fn purge_and_delete_remove_persistent_messages_from_the_store() {
    let config = RouterConfig::default();
    let mut h = Harness::with_store(config.clone());
    let mut log = empty_segment();
    h.connect(1, Version::V1_2);
    h.sub(1, "s", "/queue/deleted", AckMode::Client, 1);
    for q in ["/queue/purged", "/queue/deleted", "/queue/kept"] {
        h.send_frame(1, persistent(q, "a"));
        h.send_frame(1, persistent(q, "b"));
    }
    assert_eq!(h.frames(1).len(), 1, "one unacked on /queue/deleted");
    write_ops(&mut h, &mut log);
    assert!(h.router.queue("/queue/kept").unwrap().durable);

    assert_eq!(h.router.purge("/queue/purged"), Ok(2));
    let removed = write_ops(&mut h, &mut log);
    assert_eq!(removed.len(), 2);
    assert!(removed.iter().all(|op| matches!(op, Op::Remove { .. })));

    assert_eq!(h.router.delete_queue("/queue/deleted"), Ok(()));
    let removed = write_ops(&mut h, &mut log);
    let removes = removed.iter().filter(|op| matches!(op, Op::Remove { .. }));
    assert_eq!(
        removes.count(),
        2,
        "the ready one and the unacked one: {removed:?}"
    );

    let recovered = recover_from_segments(&[&log]);
    let queues: Vec<(&str, usize)> = recovered
        .queues
        .iter()
        .map(|(q, m)| (q.as_str(), m.len()))
        .collect();
    assert_eq!(queues, [("/queue/kept", 2)]);
    let restarted = Router::with_store(config, h.metrics.clone(), recovered);
    let names: Vec<String> = restarted.queues().into_iter().map(|q| q.name).collect();
    assert_eq!(names, ["/queue/kept"]);
}

#[test]
fn a_deleted_durable_subscription_leaves_the_store_with_what_it_held() {
    let config = RouterConfig::default();
    let mut h = Harness::with_store(config.clone());
    let mut log = empty_segment();
    h.connect(1, Version::V1_2);
    h.durable_sub(1, "gone", "/topic/t", "durable\0\0\0gone", AckMode::Auto);
    h.durable_sub(1, "kept", "/topic/t", "durable\0\0\0kept", AckMode::Auto);
    h.router.handle(RouterCommand::Closed { conn: 1 });
    h.connect(2, Version::V1_2);
    h.send_frame(2, persistent("/topic/t", "held"));
    write_ops(&mut h, &mut log);

    assert_eq!(h.router.delete_subscription("durable///gone"), Ok(()));
    let ops = write_ops(&mut h, &mut log);
    assert!(
        matches!(&ops[..], [Op::Unsubscribe { key }] if key == "durable\0\0\0gone"),
        "{ops:?}"
    );
    let recovered = recover_from_segments(&[&log]);
    let keys: Vec<&str> = recovered
        .subscriptions
        .iter()
        .map(|s| s.key.as_str())
        .collect();
    assert_eq!(keys, ["durable\0\0\0kept"]);
    let restarted = Router::with_store(config, h.metrics.clone(), recovered);
    let ids: Vec<String> = restarted
        .subscriptions()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["durable///kept"]);
}
