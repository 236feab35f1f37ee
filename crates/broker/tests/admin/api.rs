//! The JSON API, the dashboard's files, `/metrics` and `/healthz` on a
//! loopback admin listener (no login).

use crate::client::{Admin, encode};
use crate::harness::{BrokerProcess, Conn, Convention, Durable, Scratch, WAIT, now_ms, transient};
use serde_json::Value;
use std::time::{Duration, Instant};
use stompkit_frame::Command;

/// A broker keeping nothing on disk, with its admin listener on 127.0.0.1.
fn start(scratch: &Scratch) -> (BrokerProcess, Admin) {
    let broker = scratch.in_memory().admin("127.0.0.1:0").start();
    let admin = Admin::new(broker.admin.as_deref().unwrap());
    (broker, admin)
}

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Polls `GET path` until `done` holds for its JSON; returns that JSON.
async fn until(admin: &Admin, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let value = admin.json(path).await;
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The element of a JSON array whose `key` is `value`.
fn find<'v>(list: &'v Value, key: &str, value: &str) -> Option<&'v Value> {
    list.as_array().unwrap().iter().find(|v| v[key] == value)
}

#[tokio::test]
async fn overview_and_queues_with_their_field_names() {
    let scratch = Scratch::new("admin-overview");
    let (broker, admin) = start(&scratch);
    let mut conn = Conn::connect(broker.addr).await;
    for i in 0..3 {
        conn.request(transient("/queue/orders/eu", &format!("m{i}"), &[]))
            .await;
    }
    let overview = admin.json("/api/overview").await;
    assert_eq!(
        keys(&overview),
        [
            "cluster",
            "connections",
            "history",
            "messages_delivered",
            "messages_published",
            "queues",
            "rates",
            "subscriptions",
            "topics",
            "uptime_s",
            "version"
        ]
    );
    assert_eq!(overview["version"], env!("CARGO_PKG_VERSION"));
    assert!(overview["cluster"].is_null(), "not clustered");
    assert_eq!(overview["connections"], 1);
    assert_eq!(overview["queues"], 1);
    assert_eq!(overview["messages_published"], 3);
    assert_eq!(
        keys(&overview["rates"]),
        ["delivered_per_s", "published_per_s"]
    );
    // The sampler's second sample shows the three messages.
    let overview = until(&admin, "/api/overview", |o| {
        o["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["published_per_s"].as_f64() > Some(0.0))
    })
    .await;
    let history = overview["history"].as_array().unwrap();
    assert_eq!(
        keys(&history[0]),
        ["delivered_per_s", "published_per_s", "t"]
    );
    let times: Vec<u64> = history.iter().map(|s| s["t"].as_u64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {times:?}"
    );
    assert!(
        times
            .iter()
            .all(|&t| t <= now_ms() && t > now_ms() - 600_000),
        "{times:?}"
    );
    assert!(
        overview["rates"]["published_per_s"].as_f64().unwrap() > 0.0,
        "{overview}"
    );

    let queues = admin.json("/api/queues").await;
    assert_eq!(queues.as_array().unwrap().len(), 1, "{queues}");
    let queue = &queues[0];
    assert_eq!(
        keys(queue),
        [
            "bytes",
            "consumers",
            "destination",
            "durable",
            "name",
            "ready",
            "unacked"
        ]
    );
    assert_eq!(queue["name"], "orders/eu");
    assert_eq!(queue["destination"], "/queue/orders/eu");
    assert_eq!(queue["ready"], 3);
    assert_eq!(queue["durable"], false, "--in-memory");
    assert!(queue["bytes"].as_u64().unwrap() >= 6);
    let one = admin
        .json(&format!("/api/queues/{}", encode("orders/eu")))
        .await;
    assert_eq!(&one, queue);
    admin
        .get("/api/queues/nothing-here")
        .await
        .assert_error(404, "no such queue");
    conn.disconnect().await;
}

#[tokio::test]
async fn statuses_for_methods_paths_and_parameters() {
    let scratch = Scratch::new("admin-statuses");
    let (_broker, admin) = start(&scratch);
    admin
        .get("/api/nothing")
        .await
        .assert_error(404, "not found");
    admin
        .get("/index.html")
        .await
        .assert_error(404, "not found");
    admin
        .get("/api/queues/%zz")
        .await
        .assert_error(400, "percent-encoding");
    admin
        .get("/api/queues/%C3")
        .await
        .assert_error(400, "percent-encoding");

    let wrong = admin.delete("/api/overview").await;
    wrong.assert_error(405, "method not allowed");
    assert_eq!(wrong.header("allow"), Some("GET, HEAD"));
    let wrong = admin.get("/api/queues/q/contents").await;
    wrong.assert_error(405, "method not allowed");
    assert_eq!(wrong.header("allow"), Some("DELETE"));
    let wrong = admin.send("PUT", "/api/queues/q", &[], b"").await;
    assert_eq!(wrong.header("allow"), Some("GET, HEAD, DELETE"));
    wrong.assert_error(405, "method not allowed");

    // A POST needs JSON (a form cannot send it without the page asking CORS,
    // which the listener never allows); none of the paths takes one.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let post = admin.send("POST", "/api/queues", &form, b"a=b").await;
    post.assert_error(415, "application/json");
    admin
        .send("POST", "/api/queues", &[], b"")
        .await
        .assert_error(415, "application/json");
    let json = [("Content-Type", "application/json")];
    let post = admin.send("POST", "/api/queues", &json, b"{}").await;
    post.assert_error(405, "method not allowed");
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    let head = admin.send("HEAD", "/api/overview", &[], b"").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(
        head.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );
    let api = admin.get("/api/queues").await;
    assert_eq!(api.header("cache-control"), Some("no-store"));
    assert_eq!(api.header("x-content-type-options"), Some("nosniff"));
    assert!(
        api.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    let broken = admin
        .raw(b"GET /api/queues HTTP/1.1\r\nBad Header\r\n\r\n")
        .await;
    assert_eq!(broken.status, 400, "{}", broken.text());
}

#[tokio::test]
async fn dashboard_files_metrics_and_health() {
    let scratch = Scratch::new("admin-pages");
    let (_broker, admin) = start(&scratch);
    for (path, content_type, needle) in [
        ("/", "text/html; charset=utf-8", "admin.js"),
        ("/admin.js", "text/javascript; charset=utf-8", "/api/"),
        ("/admin.css", "text/css; charset=utf-8", "{"),
    ] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(page.header("content-type"), Some(content_type), "{path}");
        assert!(page.text().contains(needle), "{path}");
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
    let metrics = admin.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        metrics.text().contains("stompkit_connections "),
        "{}",
        metrics.text()
    );
    let health = admin.get("/healthz").await;
    assert_eq!((health.status, health.text().trim()), (200, "ok"));
    admin
        .delete("/healthz")
        .await
        .assert_error(405, "method not allowed");
}

#[tokio::test]
async fn peek_and_purge() {
    let scratch = Scratch::new("admin-peek");
    let (broker, admin) = start(&scratch);
    let mut conn = Conn::connect(broker.addr).await;
    let big = "x".repeat(2048);
    conn.request(transient("/queue/peeked", "m0", &[("x-n", "0")]))
        .await;
    conn.request(transient("/queue/peeked", &big, &[("x-n", "1")]))
        .await;
    conn.request(transient("/queue/peeked", "m2", &[("x-n", "2")]))
        .await;

    let peeked = admin.json("/api/queues/peeked/messages?count=2").await;
    let list = peeked.as_array().unwrap();
    assert_eq!(list.len(), 2, "{peeked}");
    assert_eq!(keys(&list[0]), ["body", "body_len", "headers"]);
    assert_eq!(list[0]["headers"]["destination"], "/queue/peeked");
    assert_eq!(list[0]["headers"]["x-n"], "0");
    assert_eq!(
        (list[0]["body"].as_str(), list[0]["body_len"].as_u64()),
        (Some("m0"), Some(2))
    );
    assert_eq!(
        list[1]["body"].as_str().unwrap().len(),
        1024,
        "the first 1 KiB"
    );
    assert_eq!(list[1]["body_len"], 2048);
    let all = admin.json("/api/queues/peeked/messages").await;
    assert_eq!(all.as_array().unwrap().len(), 3, "default count 10: {all}");
    for bad in ["0", "1001", "-1", "x", ""] {
        let answer = admin
            .get(&format!("/api/queues/peeked/messages?count={bad}"))
            .await;
        answer.assert_error(400, "count");
    }
    admin
        .get("/api/queues/nothing/messages")
        .await
        .assert_error(404, "no such queue");
    let queue = admin.json("/api/queues/peeked").await;
    assert_eq!(queue["ready"], 3, "a peek consumes nothing");

    let purged = admin.delete("/api/queues/peeked/contents").await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert_eq!(purged.json(), serde_json::json!({ "purged": 3 }));
    // A purged queue stays listed, empty.
    let queue = admin.json("/api/queues/peeked").await;
    assert_eq!(
        (queue["ready"].as_u64(), queue["bytes"].as_u64()),
        (Some(0), Some(0))
    );
    admin
        .delete("/api/queues/nothing/contents")
        .await
        .assert_error(404, "no such queue");
    // Nothing is left to deliver.
    let mut sub = Conn::connect(broker.addr).await;
    let before = sub.subscribe("/queue/peeked", "s", "auto", &[]).await;
    assert!(before.is_empty(), "{before:?}");
    sub.assert_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn deleting_a_queue_errors_its_consumer() {
    let scratch = Scratch::new("admin-delete-queue");
    let (broker, admin) = start(&scratch);
    let mut consumer = Conn::connect(broker.addr).await;
    consumer
        .subscribe("/queue/doomed", "c", "client", &[])
        .await;
    let mut producer = Conn::connect(broker.addr).await;
    producer
        .request(transient("/queue/doomed", "one", &[]))
        .await;
    let queue = until(&admin, "/api/queues/doomed", |q| q["unacked"] == 1).await;
    assert_eq!(queue["consumers"], 1);

    let deleted = admin.delete("/api/queues/doomed").await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert!(deleted.body.is_empty());
    let message = consumer.r.next().await;
    assert_eq!(message.command, Command::Message, "{message:?}");
    let error = consumer.r.next().await;
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(error.get("message"), Some("queue deleted"), "{error:?}");
    assert!(
        consumer.r.next_within(WAIT).await.is_none(),
        "closed after the ERROR"
    );
    admin
        .get("/api/queues/doomed")
        .await
        .assert_error(404, "no such queue");
    admin
        .delete("/api/queues/doomed")
        .await
        .assert_error(404, "no such queue");
    producer.disconnect().await;
}

#[tokio::test]
async fn connections_are_listed_and_kicked() {
    let scratch = Scratch::new("admin-connections");
    let (broker, admin) = start(&scratch);
    let before = now_ms();
    let mut conn = Conn::connect(broker.addr).await;
    conn.subscribe("/queue/mine", "s", "auto", &[]).await;
    conn.request(transient("/queue/other", "hello", &[])).await;
    let list = until(&admin, "/api/connections", |l| {
        l.as_array()
            .unwrap()
            .first()
            .is_some_and(|c| c["messages_in"] == 1)
    })
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let c = &list[0];
    assert_eq!(
        keys(c),
        [
            "connected_at",
            "id",
            "login",
            "messages_in",
            "messages_out",
            "peer",
            "pending_bytes",
            "subscriptions",
            "transport",
            "version"
        ]
    );
    assert_eq!(c["login"], Value::Null);
    assert_eq!(
        (c["version"].as_str(), c["transport"].as_str()),
        (Some("1.2"), Some("tcp"))
    );
    assert_eq!(c["subscriptions"], 1);
    assert_eq!(c["messages_out"], 0);
    assert!(c["pending_bytes"].is_u64());
    assert!(c["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{c}");
    let at = c["connected_at"].as_u64().unwrap();
    assert!(before <= at && at <= now_ms(), "{at}");
    let id = c["id"].as_u64().unwrap();

    admin
        .delete("/api/connections/abc")
        .await
        .assert_error(400, "bad connection id");
    admin
        .delete("/api/connections/999999")
        .await
        .assert_error(404, "no such connection");
    let kicked = admin.delete(&format!("/api/connections/{id}")).await;
    assert_eq!(kicked.status, 204, "{}", kicked.text());
    let error = conn.r.next().await;
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(error.get("message"), Some("closed by administrator"));
    assert!(
        conn.r.next_within(WAIT).await.is_none(),
        "closed after the ERROR"
    );
    until(&admin, "/api/connections", |l| {
        l.as_array().unwrap().is_empty()
    })
    .await;
    admin
        .delete(&format!("/api/connections/{id}"))
        .await
        .assert_error(404, "no such connection");
    let metrics = admin.get("/metrics").await.text();
    assert!(
        metrics.contains("\nstompkit_errors_total{reason=\"admin\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn topics_and_durable_subscriptions() {
    let scratch = Scratch::new("admin-durable");
    let broker = scratch.launch().admin("127.0.0.1:0").start();
    let admin = Admin::new(broker.admin.as_deref().unwrap());
    // A durable subscription, its subscriber gone.
    let durable = Durable::new(Convention::RabbitMq, "admin");
    let mut away = durable.connect(broker.addr).await;
    durable.subscribe(&mut away).await;
    durable.unsubscribe_plain(&mut away).await;
    away.disconnect().await;
    // A live one on another topic, with a selector.
    let mut live = Conn::connect(broker.addr).await;
    live.subscribe(
        "/topic/prices.eu",
        "p",
        "client",
        &[("selector", "price > 1")],
    )
    .await;

    let topics = admin.json("/api/topics").await;
    let topic = find(&topics, "destination", &durable.topic).unwrap_or_else(|| panic!("{topics}"));
    assert_eq!(
        keys(topic),
        [
            "destination",
            "durable_subscriptions",
            "name",
            "subscribers"
        ]
    );
    assert_eq!(
        topic["name"],
        durable.topic.strip_prefix("/topic/").unwrap()
    );
    assert_eq!(
        (
            topic["subscribers"].as_u64(),
            topic["durable_subscriptions"].as_u64()
        ),
        (Some(0), Some(1))
    );
    let prices = find(&topics, "name", "prices.eu").unwrap_or_else(|| panic!("{topics}"));
    assert_eq!(prices["subscribers"], 1);

    let subs = admin.json("/api/subscriptions").await;
    let stored = find(&subs, "destination", &durable.topic).unwrap_or_else(|| panic!("{subs}"));
    assert_eq!(
        keys(stored),
        [
            "ack",
            "connection",
            "destination",
            "durable",
            "id",
            "selector",
            "unacked"
        ]
    );
    assert_eq!(
        (stored["durable"].as_bool(), &stored["connection"]),
        (Some(true), &Value::Null)
    );
    let live_sub =
        find(&subs, "destination", "/topic/prices.eu").unwrap_or_else(|| panic!("{subs}"));
    assert_eq!(live_sub["durable"], false);
    assert_eq!(
        (live_sub["ack"].as_str(), live_sub["selector"].as_str()),
        (Some("client"), Some("price > 1"))
    );
    assert!(live_sub["connection"].is_u64(), "{live_sub}");

    let live_id = encode(live_sub["id"].as_str().unwrap());
    let refused = admin.delete(&format!("/api/subscriptions/{live_id}")).await;
    refused.assert_error(400, "not a durable subscription");
    let id = encode(stored["id"].as_str().unwrap());
    let deleted = admin.delete(&format!("/api/subscriptions/{id}")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    admin
        .delete(&format!("/api/subscriptions/{id}"))
        .await
        .assert_error(404, "no such subscription");
    let subs = admin.json("/api/subscriptions").await;
    assert!(
        find(&subs, "destination", &durable.topic).is_none(),
        "{subs}"
    );
    // Deleted for good: a message to the topic is kept for nobody.
    let mut publisher = Conn::connect(broker.addr).await;
    publisher
        .request(transient(&durable.topic, "lost", &[]))
        .await;
    let mut back = durable.connect(broker.addr).await;
    let early = back.request(durable.subscribe_frame()).await;
    assert!(early.is_empty(), "{early:?}");
    back.assert_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_websocket_session_is_listed_as_ws_and_kicked() {
    use futures_util::{SinkExt, StreamExt};
    use stompkit_ws::tokio_tungstenite::client_async;
    use stompkit_ws::tokio_tungstenite::tungstenite::Message;

    let scratch = Scratch::new("admin-ws");
    let (broker, admin) = start(&scratch);
    let tcp = tokio::net::TcpStream::connect(broker.addr).await.unwrap();
    let (mut ws, _) = client_async(format!("ws://{}/ws", broker.addr), tcp)
        .await
        .unwrap();
    let connect = "CONNECT\naccept-version:1.2\nhost:localhost\n\n\0";
    ws.send(Message::text(connect)).await.unwrap();
    let connected = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(connected.starts_with("CONNECTED\n"), "{connected}");

    let list = until(&admin, "/api/connections", |l| {
        !l.as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(list[0]["transport"], "ws", "{list}");
    let id = list[0]["id"].as_u64().unwrap();
    let kicked = admin.delete(&format!("/api/connections/{id}")).await;
    assert_eq!(kicked.status, 204, "{}", kicked.text());
    let error = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let error = error.into_text().unwrap();
    assert!(error.starts_with("ERROR\n"), "{error}");
    assert!(
        error.contains("\nmessage:closed by administrator\n"),
        "{error}"
    );
}
