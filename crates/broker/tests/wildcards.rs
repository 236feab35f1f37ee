//! Wildcard topic subscriptions, end to end against the `stompkit-broker`
//! binary (on `127.0.0.1:0`, `--in-memory` except for the restart test): each
//! wildcard (`*` one segment, `#` zero or more anywhere, `>` one or more,
//! last), a segment that merely contains one (`a*b`) being literal, the
//! `destination` a MESSAGE names, ERROR for a wildcard in a SEND, on a queue,
//! or a `>` not last, authorization of a pattern (every destination it can
//! match must be allowed), and a durable subscription on a pattern through a
//! SIGKILL.
#![allow(clippy::unwrap_used)]

// The broker process and raw client of the durable tests.
#[path = "durable/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::*;
use std::net::SocketAddr;
use stompkit_frame::{Command, Frame};

/// A broker in memory, configured by `config` (TOML) if given.
fn broker(scratch: &Scratch, config: Option<&str>) -> BrokerProcess {
    let mut launch = scratch.in_memory();
    if let Some(text) = config {
        let path = scratch.root().join("broker.toml");
        std::fs::write(&path, text).unwrap();
        launch = launch.arg("--config").arg(path);
    }
    launch.start()
}

/// Subscribes `id` to `pattern` on a fresh connection, publishes a message
/// to each of `topics` (its body the topic) from another, and returns the
/// MESSAGEs the subscriber got, as (destination, body), in order.
async fn routed(addr: SocketAddr, pattern: &str, topics: &[&str]) -> Vec<Frame> {
    let mut sub = Conn::connect(addr).await;
    let early = sub.subscribe(pattern, "w", "client-individual", &[]).await;
    assert!(early.is_empty(), "{early:?}");
    // A literal subscription on the same connection: its marker comes after
    // every delivery routed before it.
    sub.subscribe("/topic/end-marker", "end", "auto", &[]).await;
    let mut publisher = Conn::connect(addr).await;
    for topic in topics {
        publisher.request(transient(topic, topic, &[])).await;
    }
    let end = marker();
    publisher
        .request(transient("/topic/end-marker", &end, &[]))
        .await;
    let got = sub.until_body(Vec::new(), &end).await;
    for m in &got {
        assert_eq!(m.subscription(), Some("w"), "{m:?}");
        assert!(
            m.get("ack").is_some(),
            "a client-ack MESSAGE has an ack header: {m:?}"
        );
        // Each MESSAGE names the topic it was sent to.
        assert_eq!(m.destination().map(str::as_bytes), Some(m.body()), "{m:?}");
    }
    // Its `ack` value settles it (an unknown one would be ERROR).
    for m in &got {
        sub.ack(m, false, &[]).await;
    }
    got
}

async fn assert_routes(addr: SocketAddr, pattern: &str, topics: &[&str], wanted: &[&str]) {
    let got = routed(addr, pattern, topics).await;
    assert_eq!(bodies(&got), wanted, "{pattern}");
}

#[tokio::test]
async fn star_matches_exactly_one_segment() {
    let scratch = Scratch::new("wild-star");
    let b = broker(&scratch, None);
    let topics = [
        "/topic/a",
        "/topic/a.b",
        "/topic/a.b.c",
        "/topic/b.a",
        "/topic/a.x",
        "/topic/a.b/c",
    ];
    assert_routes(b.addr, "/topic/a.*", &topics, &["/topic/a.b", "/topic/a.x"]).await;
    assert_routes(b.addr, "/topic/*.a", &topics, &["/topic/b.a"]).await;
}

#[tokio::test]
async fn hash_matches_zero_or_more_segments_anywhere() {
    let scratch = Scratch::new("wild-hash");
    let b = broker(&scratch, None);
    let topics = [
        "/topic/a",
        "/topic/a.b",
        "/topic/a.b.c",
        "/topic/b",
        "/topic/ab",
    ];
    let all_a = ["/topic/a", "/topic/a.b", "/topic/a.b.c"];
    assert_routes(b.addr, "/topic/a.#", &topics, &all_a).await;
    let topics = [
        "/topic/a.c",
        "/topic/a.x.c",
        "/topic/a.x.y.c",
        "/topic/a.x",
        "/topic/c",
        "/topic/a.c.d",
    ];
    let mid = ["/topic/a.c", "/topic/a.x.c", "/topic/a.x.y.c"];
    assert_routes(b.addr, "/topic/a.#.c", &topics, &mid).await;
    assert_routes(
        b.addr,
        "/topic/#",
        &["/topic/q", "/topic/q.r"],
        &["/topic/q", "/topic/q.r"],
    )
    .await;
}

#[tokio::test]
async fn greater_than_matches_one_or_more_segments_never_zero() {
    let scratch = Scratch::new("wild-gt");
    let b = broker(&scratch, None);
    let topics = ["/topic/a", "/topic/a.b", "/topic/a.b.c", "/topic/b.c"];
    assert_routes(
        b.addr,
        "/topic/a.>",
        &topics,
        &["/topic/a.b", "/topic/a.b.c"],
    )
    .await;
}

#[tokio::test]
async fn a_segment_that_merely_contains_a_wildcard_is_literal() {
    let scratch = Scratch::new("wild-literal");
    let b = broker(&scratch, None);
    let topics = ["/topic/a*b", "/topic/axb", "/topic/a.b", "/topic/a#"];
    assert_routes(b.addr, "/topic/a*b", &topics, &["/topic/a*b"]).await;
    // A pattern with a literal `a*b` segment.
    let topics = ["/topic/a*b.x", "/topic/axb.x"];
    assert_routes(b.addr, "/topic/a*b.*", &topics, &["/topic/a*b.x"]).await;
    // Sending to such a name is fine.
    let mut publisher = Conn::connect(b.addr).await;
    publisher
        .request(transient("/topic/x.a>b", "ok", &[]))
        .await;
}

/// A message matching several subscriptions of one connection comes once per
/// subscription, each naming its own.
#[tokio::test]
async fn one_message_per_matching_subscription() {
    let scratch = Scratch::new("wild-twice");
    let b = broker(&scratch, None);
    let mut sub = Conn::connect(b.addr).await;
    sub.subscribe("/topic/room.*", "star", "auto", &[]).await;
    sub.subscribe("/topic/room.#", "hash", "auto", &[]).await;
    sub.subscribe("/topic/room.lobby", "literal", "auto", &[])
        .await;
    let mut publisher = Conn::connect(b.addr).await;
    publisher
        .request(transient("/topic/room.lobby", "hi", &[]))
        .await;
    let got = sub.messages(3).await;
    let mut subs: Vec<&str> = got.iter().map(|m| m.subscription().unwrap()).collect();
    subs.sort_unstable();
    assert_eq!(subs, ["hash", "literal", "star"]);
    assert!(
        got.iter()
            .all(|m| m.destination() == Some("/topic/room.lobby"))
    );
    sub.assert_quiet(std::time::Duration::from_millis(200))
        .await;
}

/// Sends `frame` on a fresh connection and returns the ERROR that answers it.
async fn refused(addr: SocketAddr, frame: Frame) -> Frame {
    let mut conn = Conn::connect(addr).await;
    let (answer, before) = conn.request_or_error(frame).await;
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(answer.command, Command::Error, "{answer:?}");
    answer
}

#[tokio::test]
async fn wildcards_where_they_may_not_be_get_error() {
    let scratch = Scratch::new("wild-errors");
    let b = broker(&scratch, None);
    let subscribe = |d: &str| frame(Command::Subscribe, &[("destination", d), ("id", "s")], b"");
    let cases = [
        (
            transient("/topic/a.*", "x", &[]),
            "wildcards are not allowed in a SEND destination",
        ),
        (
            transient("/topic/#", "x", &[]),
            "wildcards are not allowed in a SEND destination",
        ),
        (
            transient("/queue/a.>", "x", &[]),
            "wildcards are allowed on /topic/ destinations only",
        ),
        (
            subscribe("/queue/a.*"),
            "wildcards are allowed on /topic/ destinations only",
        ),
        (
            subscribe("/queue/#"),
            "wildcards are allowed on /topic/ destinations only",
        ),
        (
            subscribe("/topic/a.>.b"),
            "wildcard '>' may only be the last segment",
        ),
        (
            subscribe("/topic/>.#"),
            "wildcard '>' may only be the last segment",
        ),
    ];
    for (frame, message) in cases {
        let error = refused(b.addr, frame.clone()).await;
        assert_eq!(error.message(), Some(message), "{frame:?}");
    }
    let long = format!("/topic/{}", vec!["*"; 65].join("."));
    let error = refused(b.addr, subscribe(&long)).await;
    assert_eq!(
        error.message(),
        Some("too many segments in a wildcard destination")
    );
    // The broker is fine afterwards.
    assert_routes(b.addr, "/topic/ok.*", &["/topic/ok.1"], &["/topic/ok.1"]).await;
}

/// The users file of the authorization test: alice may subscribe to
/// `/topic/chat.*`, carol to `/topic/chat` and `/topic/chat.**`.
fn users() -> String {
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let mut text = String::new();
    for (login, subscribe) in [
        ("alice", r#"["/topic/chat.*"]"#),
        ("carol", r#"["/topic/chat", "/topic/chat.**"]"#),
    ] {
        let hash = stompkit_broker::auth::password::hash_with("pw", params.clone()).unwrap();
        text += &format!(
            "[[auth.users]]\nlogin = {login:?}\npassword_hash = {hash:?}\n\
             send = [\"/topic/**\"]\nsubscribe = {subscribe}\n\n"
        );
    }
    text
}

async fn login(addr: SocketAddr, user: &str) -> Conn {
    Conn::connect_with(addr, &[("login", user), ("passcode", "pw")]).await
}

/// Whether `user` may SUBSCRIBE to `destination` (a refusal is ERROR
/// `forbidden`, and closes that connection).
async fn may_subscribe(addr: SocketAddr, user: &str, destination: &str) -> bool {
    let mut conn = login(addr, user).await;
    let headers = [("destination", destination), ("id", "s")];
    let (answer, _) = conn
        .request_or_error(frame(Command::Subscribe, &headers, b""))
        .await;
    match answer.command {
        Command::Receipt => true,
        _ => {
            assert_eq!(answer.message(), Some("forbidden"), "{answer:?}");
            false
        }
    }
}

#[tokio::test]
async fn a_pattern_is_allowed_only_if_everything_it_matches_is() {
    let scratch = Scratch::new("wild-authz");
    let b = broker(&scratch, Some(&users()));
    // The issue's examples.
    assert!(may_subscribe(b.addr, "alice", "/topic/chat.*").await);
    assert!(may_subscribe(b.addr, "alice", "/topic/chat.lobby").await);
    assert!(!may_subscribe(b.addr, "alice", "/topic/chat.#").await);
    assert!(!may_subscribe(b.addr, "alice", "/topic/#").await);
    assert!(may_subscribe(b.addr, "alice", "/topic/chat.>").await);
    assert!(!may_subscribe(b.addr, "alice", "/topic/*").await);
    // A union of permissions covers `chat.#`.
    assert!(may_subscribe(b.addr, "carol", "/topic/chat.#").await);
    assert!(!may_subscribe(b.addr, "carol", "/topic/#").await);
    // And carol's subscription works.
    let mut carol = login(b.addr, "carol").await;
    carol.subscribe("/topic/chat.#", "c", "auto", &[]).await;
    let mut alice = login(b.addr, "alice").await;
    for topic in ["/topic/chat", "/topic/chat.a.b", "/topic/other"] {
        alice.request(transient(topic, topic, &[])).await;
    }
    let got = carol.messages(2).await;
    assert_eq!(bodies(&got), ["/topic/chat", "/topic/chat.a.b"]);
    carol
        .assert_quiet(std::time::Duration::from_millis(200))
        .await;
}

/// A durable subscription on a pattern, in both conventions: collects from
/// every matching topic while away, is stored, and comes back after a SIGKILL.
#[tokio::test]
async fn a_durable_wildcard_subscription_survives_a_restart() {
    let scratch = Scratch::new("wild-durable");
    let broker = scratch.start();
    let durables: Vec<Durable> = CONVENTIONS
        .iter()
        .map(|&c| {
            let mut d = Durable::new(c, "wild");
            d.topic = format!("{}.#", d.topic);
            d
        })
        .collect();
    for durable in &durables {
        let mut sub = durable.connect(broker.addr).await;
        durable.subscribe(&mut sub).await;
        sub.disconnect().await;
        let root = durable.topic.trim_end_matches(".#");
        let mut publisher = Conn::connect(broker.addr).await;
        for topic in [
            format!("{root}.x"),
            root.to_owned(),
            "/topic/unrelated".into(),
        ] {
            publisher.request(persistent(&topic, &topic, &[])).await;
        }
    }
    broker.crash();

    let broker = scratch.start();
    for durable in &durables {
        let root = durable.topic.trim_end_matches(".#");
        let after = format!("{root}.y.z");
        let mut publisher = Conn::connect(broker.addr).await;
        publisher.request(persistent(&after, &after, &[])).await;
        let mut sub = durable.connect(broker.addr).await;
        let before = durable.subscribe(&mut sub).await;
        let end = marker();
        publisher.request(transient(root, &end, &[])).await;
        let got = sub.until_body(before, &end).await;
        let wanted = [format!("{root}.x"), root.to_owned(), after.clone()];
        assert_eq!(bodies(&got), wanted, "{:?}", durable.convention);
        for m in &got {
            assert_eq!(m.destination().map(str::as_bytes), Some(m.body()), "{m:?}");
            assert_eq!(m.subscription(), Some(durable.id.as_str()), "{m:?}");
        }
    }
}
