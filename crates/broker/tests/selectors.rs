//! Message selectors (ActiveMQ's JMS selectors on SUBSCRIBE), end to end
//! against the real `stompkit-broker` binary on `127.0.0.1:0`, raw STOMP 1.2
//! over TCP (`--in-memory`, except where durability is the point):
//!
//! - a topic subscriber skips what its selector does not select (not counted
//!   as dropped); header values compare as numbers against numbers (`n > 3`
//!   matches `n:5`, not `n:abc`); JMS names read STOMP headers;
//! - a queue message waits for a consumer that selects it while the messages
//!   behind it flow to others;
//! - a selector that does not parse, is longer than 4 KiB or nests deeper
//!   than 64 gets ERROR `invalid selector` with the position in the body,
//!   and the connection closes;
//! - a durable subscription keeps its selector (and only what it selects)
//!   through a SIGKILL, and another selector replaces it.
#![allow(clippy::unwrap_used)]

#[path = "durable/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::*;
use std::net::SocketAddr;
use std::time::Duration;
use stompkit_frame::{Command, Frame};

const QUIET: Duration = Duration::from_millis(300);

fn in_memory(name: &str) -> (Scratch, BrokerProcess) {
    let scratch = Scratch::new(name);
    let broker = scratch.in_memory().metrics().start();
    (scratch, broker)
}

fn send(destination: &str, body: &str, headers: &[(&str, &str)]) -> Frame {
    transient(destination, body, headers)
}

/// A connection subscribed to `destination` with `selector` (receipted).
async fn subscriber(addr: SocketAddr, destination: &str, selector: &str) -> Conn {
    let mut conn = Conn::connect(addr).await;
    let early = conn
        .subscribe(destination, "s", "auto", &[("selector", selector)])
        .await;
    assert!(early.is_empty(), "{early:?}");
    conn
}

/// The ERROR a SUBSCRIBE with `selector` gets; asserts the connection closes after it.
async fn refused(addr: SocketAddr, selector: &str) -> Frame {
    let mut conn = Conn::connect(addr).await;
    let subscribe = frame(
        Command::Subscribe,
        &[
            ("destination", "/topic/t"),
            ("id", "s"),
            ("selector", selector),
        ],
        b"",
    );
    let (error, before) = conn.request_or_error(subscribe).await;
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(error.get("message"), Some("invalid selector"), "{error:?}");
    assert_eq!(error.receipt_id(), Some("r-1"), "{error:?}");
    assert_eq!(conn.r.next_within(WAIT).await, None, "closed after ERROR");
    error
}

#[tokio::test]
async fn a_topic_subscriber_gets_only_what_its_selector_selects() {
    let (_scratch, broker) = in_memory("topic");
    let mut numeric = subscriber(broker.addr, "/topic/t", "n > 3").await;
    let mut plain = Conn::connect(broker.addr).await;
    plain.subscribe("/topic/t", "s", "auto", &[]).await;
    let mut publisher = Conn::connect(broker.addr).await;
    let sent = [
        ("5", "five"),
        ("2", "two"),
        ("abc", "abc"),
        ("3.5", "three and a half"),
    ];
    for (n, body) in sent {
        publisher.request(send("/topic/t", body, &[("n", n)])).await;
    }
    publisher.request(send("/topic/t", "no n", &[])).await;
    assert_eq!(
        bodies(&numeric.messages(2).await),
        ["five", "three and a half"]
    );
    numeric.assert_quiet(QUIET).await;
    assert_eq!(
        bodies(&plain.messages(5).await),
        ["five", "two", "abc", "three and a half", "no n"]
    );
    assert_eq!(broker.metric_sum("stompkit_messages_dropped_total"), 0.0);
    assert_eq!(
        broker.metric("stompkit_messages_dropped_total{reason=\"no_credit\"}"),
        Some(0.0)
    );
}

#[tokio::test]
async fn selectors_compare_literals_in_like_between_and_jms_names() {
    let (_scratch, broker) = in_memory("grammar");
    let cases: [(&str, &[&str]); 8] = [
        ("JMSPriority > 4", &["urgent"]),
        ("JMSType = 'order' AND JMSCorrelationID = 'c-1'", &["order"]),
        ("JMSDeliveryMode = 'PERSISTENT'", &["urgent"]),
        ("JMSTimestamp BETWEEN 100 AND 200", &["order"]),
        ("region IN ('eu', 'us') AND NOT (region = 'us')", &["order"]),
        ("kind LIKE 'a\\_%' ESCAPE '\\'", &["plain"]),
        ("region IS NULL", &["urgent", "plain"]),
        ("flag = TRUE OR amount / 2.0 >= 25.5", &["order", "plain"]),
    ];
    let mut subs = Vec::new();
    for (selector, _) in cases {
        subs.push(subscriber(broker.addr, "/topic/g", selector).await);
    }
    let mut publisher = Conn::connect(broker.addr).await;
    let messages: [(&str, &[(&str, &str)]); 3] = [
        (
            "order",
            &[
                ("type", "order"),
                ("correlation-id", "c-1"),
                ("timestamp", "150"),
                ("region", "eu"),
                ("flag", "true"),
                ("priority", "4"),
            ],
        ),
        (
            "urgent",
            &[("priority", "9"), ("persistent", "true"), ("kind", "ab")],
        ),
        ("plain", &[("kind", "a_b"), ("amount", "51")]),
    ];
    for (body, headers) in messages {
        publisher.request(send("/topic/g", body, headers)).await;
    }
    // The RECEIPTs came after every delivery was queued to the subscribers.
    for (sub, (selector, want)) in subs.iter_mut().zip(cases) {
        let got = sub.messages(want.len()).await;
        assert_eq!(bodies(&got), want, "{selector}");
        sub.assert_quiet(QUIET).await;
    }
}

#[tokio::test]
async fn a_queue_message_waits_for_a_consumer_that_selects_it_while_later_ones_flow() {
    let (_scratch, broker) = in_memory("queue");
    let mut red = subscriber(broker.addr, "/queue/q", "color = 'red'").await;
    let mut blue = subscriber(broker.addr, "/queue/q", "color = 'blue'").await;
    let mut publisher = Conn::connect(broker.addr).await;
    for (color, body) in [
        ("green", "g1"),
        ("red", "r1"),
        ("blue", "b1"),
        ("red", "r2"),
        ("blue", "b2"),
    ] {
        publisher
            .request(send("/queue/q", body, &[("color", color)]))
            .await;
    }
    assert_eq!(bodies(&red.messages(2).await), ["r1", "r2"]);
    assert_eq!(bodies(&blue.messages(2).await), ["b1", "b2"]);
    red.assert_quiet(QUIET).await;
    blue.assert_quiet(QUIET).await;
    // The green one waited at the head; a consumer that selects it gets it.
    let mut green = Conn::connect(broker.addr).await;
    let early = green
        .subscribe("/queue/q", "s", "auto", &[("selector", "color = 'green'")])
        .await;
    let got = green.next_message(early).await;
    assert_eq!(body(&got), "g1");
    assert_eq!(got.destination(), Some("/queue/q"));
}

#[tokio::test]
async fn a_selector_that_does_not_parse_gets_error_with_the_position() {
    let (_scratch, broker) = in_memory("invalid");
    let error = refused(broker.addr, "(n > 3").await;
    assert_eq!(
        body(&error),
        "invalid selector at position 6: expected ')'\n"
    );
    let error = refused(broker.addr, "n > 3 AND").await;
    assert_eq!(
        body(&error),
        "invalid selector at position 9: expected an expression\n"
    );
    let error = refused(broker.addr, "n = 'open").await;
    assert_eq!(
        body(&error),
        "invalid selector at position 4: unterminated string literal\n"
    );
    // The broker goes on serving others.
    let mut ok = subscriber(broker.addr, "/topic/t", "n = 1").await;
    let mut publisher = Conn::connect(broker.addr).await;
    publisher
        .request(send("/topic/t", "one", &[("n", "1")]))
        .await;
    assert_eq!(bodies(&ok.messages(1).await), ["one"]);
}

#[tokio::test]
async fn a_selector_too_long_or_too_deep_gets_error() {
    let (_scratch, broker) = in_memory("limits");
    let long = format!("s = '{}'", "x".repeat(4096));
    let error = refused(broker.addr, &long).await;
    assert_eq!(
        body(&error),
        "invalid selector at position 4096: selector longer than 4096 bytes\n"
    );
    let deep = format!("{}n = 1{}", "(".repeat(65), ")".repeat(65));
    let error = refused(broker.addr, &deep).await;
    assert_eq!(
        body(&error),
        "invalid selector at position 64: nested too deeply\n"
    );
    let nots = format!("{}n = 1", "NOT ".repeat(1000));
    let error = refused(broker.addr, &nots).await;
    assert!(body(&error).ends_with(": nested too deeply\n"), "{error:?}");
    // 64 levels are fine.
    let fine = format!("{}n = 1{}", "(".repeat(64), ")".repeat(64));
    subscriber(broker.addr, "/topic/t", &fine).await;
}

/// ActiveMQ's durable subscription convention, with a selector.
async fn durable(addr: SocketAddr, selector: &str) -> (Conn, Vec<Frame>) {
    let mut conn = Conn::connect_with(addr, &[("client-id", "selective")]).await;
    let headers = [("activemq.subscriptionName", "big"), ("selector", selector)];
    let early = conn.subscribe("/topic/d", "s", "auto", &headers).await;
    (conn, early)
}

#[tokio::test]
async fn a_durable_subscription_keeps_its_selector_through_a_crash() {
    let scratch = Scratch::new("selector-durable");
    let broker = scratch.start();
    let (sub, early) = durable(broker.addr, "n > 3").await;
    assert!(early.is_empty());
    sub.disconnect().await;
    let mut publisher = Conn::connect(broker.addr).await;
    for n in ["5", "1", "7"] {
        publisher
            .request(persistent("/topic/d", &format!("n{n}"), &[("n", n)]))
            .await;
    }
    broker.crash();

    let broker = scratch.start();
    let mut publisher = Conn::connect(broker.addr).await;
    for n in ["9", "2"] {
        publisher
            .request(persistent("/topic/d", &format!("n{n}"), &[("n", n)]))
            .await;
    }
    let (mut sub, early) = durable(broker.addr, "n > 3").await;
    let mut got = early;
    got.extend(sub.messages(3usize.saturating_sub(got.len())).await);
    assert_eq!(bodies(&got), ["n5", "n7", "n9"]);
    sub.assert_quiet(QUIET).await;
    sub.disconnect().await;

    // Another selector replaces the subscription: what it held is discarded.
    publisher
        .request(persistent("/topic/d", "n8", &[("n", "8")]))
        .await;
    let (mut sub, early) = durable(broker.addr, "n < 3").await;
    assert!(early.is_empty(), "{early:?}");
    publisher
        .request(persistent("/topic/d", "n1", &[("n", "1")]))
        .await;
    publisher
        .request(persistent("/topic/d", "n4", &[("n", "4")]))
        .await;
    assert_eq!(bodies(&sub.messages(1).await), ["n1"]);
    sub.assert_quiet(QUIET).await;
}
