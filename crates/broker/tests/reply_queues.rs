//! Request/reply through temporary destinations (RabbitMQ's `/temp-queue/`),
//! end to end against the `stompkit-broker` binary (`--in-memory`, on
//! `127.0.0.1:0`), raw STOMP 1.2 over TCP: the `reply-to` rewrite, the reply
//! on the subscription id `/temp-queue/<name>` without a SUBSCRIBE, who may
//! send and who may receive, the limit per connection, transactions,
//! `/temp-topic/`, and replies dropped (and counted) once the owner is gone.
#![allow(clippy::unwrap_used)]

// The durable tests' harness: the broker process and a raw STOMP client.
#[path = "durable/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use stompkit_frame::{Command, Frame};

/// The broker, all in memory, with `/metrics`, plus `extra` arguments.
fn broker(scratch: &Scratch, extra: &[&str]) -> BrokerProcess {
    let mut launch = scratch.in_memory().metrics();
    for arg in extra {
        launch = launch.arg(arg);
    }
    launch.start()
}

/// A SEND of `body` to `destination` with `reply-to` and `extra` headers.
fn request_frame(destination: &str, reply_to: &str, body: &str, extra: &[(&str, &str)]) -> Frame {
    let mut headers = vec![("reply-to", reply_to)];
    headers.extend_from_slice(extra);
    transient(destination, body, &headers)
}

/// The opaque part of a reply destination: at least 128 bits of hex or
/// base64url text.
fn assert_opaque(name: &str, prefix: &str) {
    let opaque = name
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{name:?} does not start with {prefix}"));
    let hex = opaque.bytes().all(|b| b.is_ascii_hexdigit());
    let bits = if hex {
        opaque.len() * 4
    } else {
        opaque.len() * 6
    };
    assert!(bits >= 128, "{name:?}: only {bits} bits");
    assert!(
        opaque
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{name:?}"
    );
}

/// `requester` sends a request to `queue` with `reply-to`; `responder`
/// (subscribed to `queue`) gets it: returns the MESSAGE.
async fn ask(requester: &mut Conn, responder: &mut Conn, queue: &str, reply_to: &str) -> Frame {
    let before = requester
        .request(request_frame(queue, reply_to, "ask", &[]))
        .await;
    assert!(before.is_empty(), "{before:?}");
    let got = responder.messages(1).await.pop().unwrap();
    assert_eq!(got.body(), b"ask");
    got
}

/// The `reply-to` of a request MESSAGE (exactly one such header).
fn reply_to(message: &Frame) -> String {
    let all: Vec<&str> = message.headers().get_all("reply-to").collect();
    assert_eq!(all.len(), 1, "{message:?}");
    all[0].to_owned()
}

/// Waits until the metric `name` is `n`.
async fn assert_metric(broker: &BrokerProcess, name: &str, n: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let value = broker.metric(name);
        if value == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} is {value:?}, wanted {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn request_responder_reply_round_trip() {
    let scratch = Scratch::new("reply-round-trip");
    let broker = broker(&scratch, &[]);
    let mut responder = Conn::connect(broker.addr).await;
    responder.subscribe("/queue/req", "work", "auto", &[]).await;
    let mut requester = Conn::connect(broker.addr).await;
    let request = ask(
        &mut requester,
        &mut responder,
        "/queue/req",
        "/temp-queue/answers",
    )
    .await;
    // What the responder sees is the rewritten header, never /temp-queue/.
    let reply = reply_to(&request);
    assert_opaque(&reply, "/reply-queue/");
    let answer = transient(&reply, "forty-two", &[("correlation-id", "c-1")]);
    responder.request(answer).await;
    let got = requester.messages(1).await.pop().unwrap();
    assert_eq!(got.command, Command::Message);
    assert_eq!(got.subscription(), Some("/temp-queue/answers"));
    assert_eq!(got.destination(), Some(reply.as_str()));
    assert_eq!(got.get("correlation-id"), Some("c-1"));
    assert_eq!(got.get("ack"), None, "auto acknowledgement: no ack header");
    assert_eq!(got.body(), b"forty-two");
    // More replies to the same name keep coming on the same subscription.
    responder.request(transient(&reply, "again", &[])).await;
    let got = requester.messages(1).await.pop().unwrap();
    assert_eq!(got.subscription(), Some("/temp-queue/answers"));
    assert_eq!(got.body(), b"again");
    responder.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn reply_names_are_opaque_per_connection_and_stable_per_name() {
    let scratch = Scratch::new("reply-names");
    let broker = broker(&scratch, &[]);
    let mut responder = Conn::connect(broker.addr).await;
    responder.subscribe("/queue/req", "work", "auto", &[]).await;
    let mut one = Conn::connect(broker.addr).await;
    let mut two = Conn::connect(broker.addr).await;
    let q = "/queue/req";
    let a1 = reply_to(&ask(&mut one, &mut responder, q, "/temp-queue/a").await);
    let a1_again = reply_to(&ask(&mut one, &mut responder, q, "/temp-queue/a").await);
    let b1 = reply_to(&ask(&mut one, &mut responder, q, "/temp-queue/b").await);
    let a2 = reply_to(&ask(&mut two, &mut responder, q, "/temp-queue/a").await);
    for name in [&a1, &b1, &a2] {
        assert_opaque(name, "/reply-queue/");
    }
    assert_eq!(
        a1, a1_again,
        "one name, one reply queue, for the connection's life"
    );
    assert_ne!(a1, b1);
    assert_ne!(
        a1, a2,
        "another connection's /temp-queue/a is another queue"
    );
    // Each reply goes to its own owner only.
    responder.request(transient(&a2, "for two", &[])).await;
    let got = two.messages(1).await.pop().unwrap();
    assert_eq!(got.body(), b"for two");
    one.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn nobody_may_subscribe_to_a_reply_queue() {
    let scratch = Scratch::new("reply-subscribe");
    let broker = broker(&scratch, &[]);
    let mut responder = Conn::connect(broker.addr).await;
    responder.subscribe("/queue/req", "work", "auto", &[]).await;
    let mut owner = Conn::connect(broker.addr).await;
    let reply = reply_to(&ask(&mut owner, &mut responder, "/queue/req", "/temp-queue/r").await);
    let mut thief = Conn::connect(broker.addr).await;
    let subscribe = frame(
        Command::Subscribe,
        &[("destination", &reply), ("id", "steal")],
        b"",
    );
    let (error, _) = thief.request_or_error(subscribe.clone()).await;
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(
        error.message(),
        Some("reply destinations cannot be subscribed to")
    );
    // Not even its owner: its replies come without a SUBSCRIBE.
    let (error, _) = owner.request_or_error(subscribe).await;
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(
        error.message(),
        Some("reply destinations cannot be subscribed to")
    );
    // The reply queue was not disturbed by the attempt: a new owner's reply
    // still works (the old owner's connection was closed by its ERROR).
    let mut owner = Conn::connect(broker.addr).await;
    let reply = reply_to(&ask(&mut owner, &mut responder, "/queue/req", "/temp-queue/r").await);
    responder.request(transient(&reply, "yours", &[])).await;
    assert_eq!(owner.messages(1).await[0].body(), b"yours");
    // And /temp-queue/ itself is only for reply-to.
    let mut explicit = Conn::connect(broker.addr).await;
    let subscribe = frame(
        Command::Subscribe,
        &[("destination", "/temp-queue/r"), ("id", "mine")],
        b"",
    );
    let (error, _) = explicit.request_or_error(subscribe).await;
    assert_eq!(
        error.message(),
        Some("temporary destinations are only for the reply-to header")
    );
}

/// A cheap argon2id hash (the cost parameters do not change the code path).
fn hash(password: &str) -> String {
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    stompkit_broker::auth::password::hash_with(password, params).unwrap()
}

/// A config file in `scratch`: alice may send requests and subscribe to
/// nothing; bob may take requests and send to nothing.
fn users_config(scratch: &Scratch) -> PathBuf {
    let path = scratch.root().join("users.toml");
    let text = format!(
        "[auth]\n\
         [[auth.users]]\nlogin = \"alice\"\npassword_hash = \"{}\"\n\
         send = [\"/queue/requests\"]\nsubscribe = []\n\
         [[auth.users]]\nlogin = \"bob\"\npassword_hash = \"{}\"\n\
         send = []\nsubscribe = [\"/queue/requests\"]\n",
        hash("alice-pw"),
        hash("bob-pw"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_responder_without_any_send_permission_can_still_reply() {
    let scratch = Scratch::new("reply-permissions");
    let config = users_config(&scratch);
    let broker = broker(&scratch, &["--config", config.to_str().unwrap()]);
    let alice = [("login", "alice"), ("passcode", "alice-pw")];
    let bob = [("login", "bob"), ("passcode", "bob-pw")];
    let mut responder = Conn::connect_with(broker.addr, &bob).await;
    responder
        .subscribe("/queue/requests", "work", "auto", &[])
        .await;
    let mut requester = Conn::connect_with(broker.addr, &alice).await;
    let request = ask(
        &mut requester,
        &mut responder,
        "/queue/requests",
        "/temp-queue/rpc",
    )
    .await;
    let reply = reply_to(&request);
    responder.request(transient(&reply, "done", &[])).await;
    let got = requester.messages(1).await.pop().unwrap();
    assert_eq!(got.subscription(), Some("/temp-queue/rpc"));
    assert_eq!(got.body(), b"done");
    // The control: bob really may send nowhere else.
    let (error, _) = responder
        .request_or_error(transient("/queue/requests", "x", &[]))
        .await;
    assert_eq!(error.message(), Some("forbidden"), "{error:?}");
}

#[tokio::test]
async fn replies_after_the_owner_left_are_dropped_and_counted() {
    const DROPPED: &str = "stompkit_messages_dropped_total{reason=\"reply_destination_gone\"}";
    let scratch = Scratch::new("reply-gone");
    let broker = broker(&scratch, &[]);
    assert_metric(&broker, DROPPED, 0.0).await;
    let mut responder = Conn::connect(broker.addr).await;
    responder.subscribe("/queue/req", "work", "auto", &[]).await;
    let mut requester = Conn::connect(broker.addr).await;
    let reply = reply_to(
        &ask(
            &mut requester,
            &mut responder,
            "/queue/req",
            "/temp-queue/r",
        )
        .await,
    );
    requester.disconnect().await;
    // Receipted, not refused: the responder carries on.
    responder.request(transient(&reply, "too late", &[])).await;
    let never = "/reply-queue/0123456789abcdef0123456789abcdef";
    responder.request(transient(never, "nobody", &[])).await;
    assert_metric(&broker, DROPPED, 2.0).await;
    // A new connection reusing the name gets a new queue, not the old one.
    let mut again = Conn::connect(broker.addr).await;
    let fresh = reply_to(&ask(&mut again, &mut responder, "/queue/req", "/temp-queue/r").await);
    assert_ne!(fresh, reply);
    again.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn max_temp_queues_is_enforced_per_connection() {
    let scratch = Scratch::new("reply-limit");
    let broker = scratch
        .in_memory()
        .env("STOMPKIT_DESTINATIONS_MAX_TEMP_QUEUES", "2")
        .start();
    let mut responder = Conn::connect(broker.addr).await;
    responder.subscribe("/queue/req", "work", "auto", &[]).await;
    let mut requester = Conn::connect(broker.addr).await;
    let q = "/queue/req";
    ask(&mut requester, &mut responder, q, "/temp-queue/a").await;
    ask(&mut requester, &mut responder, q, "/temp-topic/b").await;
    // Reusing a name makes nothing new.
    ask(&mut requester, &mut responder, q, "/temp-queue/a").await;
    let (error, _) = requester
        .request_or_error(request_frame(q, "/temp-queue/c", "third", &[]))
        .await;
    assert_eq!(error.command, Command::Error, "{error:?}");
    let message = error.message().unwrap();
    assert!(
        message.contains("too many temporary queues") && message.contains("max_temp_queues"),
        "{message}"
    );
    responder.assert_quiet(Duration::from_millis(200)).await;
    // Another connection has its own allowance.
    let mut other = Conn::connect(broker.addr).await;
    ask(&mut other, &mut responder, q, "/temp-queue/c").await;
}

#[tokio::test]
async fn temp_topics_reply_on_their_subscription_id() {
    let scratch = Scratch::new("reply-topic");
    let broker = broker(&scratch, &[]);
    let mut responder = Conn::connect(broker.addr).await;
    responder.subscribe("/queue/req", "work", "auto", &[]).await;
    let mut requester = Conn::connect(broker.addr).await;
    let request = ask(
        &mut requester,
        &mut responder,
        "/queue/req",
        "/temp-topic/updates",
    )
    .await;
    let reply = reply_to(&request);
    assert_opaque(&reply, "/reply-topic/");
    for i in 0..3 {
        responder
            .request(transient(&reply, &format!("update-{i}"), &[]))
            .await;
    }
    let got = requester.messages(3).await;
    assert_eq!(bodies(&got), ["update-0", "update-1", "update-2"]);
    for m in &got {
        assert_eq!(m.subscription(), Some("/temp-topic/updates"));
        assert_eq!(m.destination(), Some(reply.as_str()));
    }
}

#[tokio::test]
async fn a_transactional_request_is_rewritten_at_commit() {
    let scratch = Scratch::new("reply-transaction");
    let broker = broker(&scratch, &[]);
    let mut responder = Conn::connect(broker.addr).await;
    responder.subscribe("/queue/req", "work", "auto", &[]).await;
    let mut requester = Conn::connect(broker.addr).await;
    let tx = [("transaction", "t")];
    requester.request(frame(Command::Begin, &tx, b"")).await;
    for body in ["one", "two"] {
        let send = request_frame("/queue/req", "/temp-queue/tx", body, &tx);
        requester.request(send).await;
    }
    responder.assert_quiet(Duration::from_millis(200)).await;
    requester.request(frame(Command::Commit, &tx, b"")).await;
    let got = responder.messages(2).await;
    let reply = reply_to(&got[0]);
    assert_opaque(&reply, "/reply-queue/");
    assert_eq!(reply_to(&got[1]), reply, "one name, one reply queue");
    responder.request(transient(&reply, "answer", &[])).await;
    let got = requester.messages(1).await.pop().unwrap();
    assert_eq!(got.subscription(), Some("/temp-queue/tx"));
}
