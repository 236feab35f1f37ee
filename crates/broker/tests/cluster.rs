//! Cluster mode end to end: a throwaway nats-server with JetStream
//! (`xtask::nats`) and three `stompkit-broker` processes on it (`--cluster`),
//! each on `127.0.0.1:0`, talked to over raw STOMP 1.2.
//!
//! - topics published on one node reach subscribers on every node (exact
//!   names, `*`, `>` and `#` patterns, names NATS cannot spell) once each,
//!   in publish order;
//! - 10,000 queue messages consumed by consumers on all three nodes, each
//!   exactly once;
//! - a node SIGKILLed while holding unacknowledged messages: another node
//!   redelivers them (`redelivered:true`); a live node keeps what its client
//!   holds past `ack_wait_ms`;
//! - NATS SIGKILLed and restarted mid-traffic: receipted messages survive, the
//!   nodes reconnect by themselves, and while it is away a topic SEND reaches
//!   the node's own subscribers while receipted and queue SENDs get ERROR;
//! - durable subscriptions moving between nodes; request/reply across nodes;
//!   transactions, NACK, dead letters and TTL across nodes;
//! - NATS's `max_payload` fitted or refused at start, an unreachable NATS
//!   refused, NATS credentials and TLS used.
//!
//! Every test is `#[ignore]`d in `cargo test` (they need nats-server):
//! `cargo xtask ci` runs them in the step `cluster-tests`, which installs
//! nats-server when allowed (`CI=true`) or reports the step as skipped. Run by
//! hand, a test fails when nats-server is missing; none passes without having
//! run.
#![allow(clippy::unwrap_used)]

#[path = "durable/harness.rs"]
#[allow(dead_code)] // The crash helpers are for tests/durable.rs.
mod harness;

use harness::{BrokerProcess, Conn, Scratch, bodies, body, frame, redelivered, transient};
use std::collections::HashSet;
use std::time::Duration;
use stompkit_frame::{Command, Frame};
use tokio::time::timeout;
use xtask::nats::Nats;

/// How long a delivery may take across nodes before a test gives up.
const WAIT: Duration = Duration::from_secs(30);
const HOLD: &str = "ack_wait_ms";

/// A nats-server and the broker nodes on it.
struct Cluster {
    nats: Nats,
    scratch: Scratch,
    ack_wait_ms: u64,
}

impl Cluster {
    fn new(name: &str, ack_wait_ms: u64) -> Cluster {
        Cluster {
            nats: Nats::start().unwrap(),
            scratch: Scratch::new(&format!("cluster-{name}")),
            ack_wait_ms,
        }
    }

    /// A broker node on this cluster's NATS.
    fn node(&self) -> BrokerProcess {
        self.scratch
            .in_memory()
            .arg("--cluster")
            .arg(self.nats.url())
            .env("STOMPKIT_CLUSTER_ACK_WAIT_MS", self.ack_wait_ms.to_string())
            .metrics()
            .admin("127.0.0.1:0")
            .start()
    }

    fn nodes(&self, n: usize) -> Vec<BrokerProcess> {
        (0..n).map(|_| self.node()).collect()
    }
}

/// `GET /api/overview`'s `cluster` of `node`.
fn cluster_overview(node: &BrokerProcess) -> serde_json::Value {
    use std::io::{Read, Write};
    let url = node.admin.as_ref().unwrap();
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /api/overview HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str::<serde_json::Value>(body).unwrap()["cluster"].clone()
}

/// Reads MESSAGEs until `n` arrived (panics on anything else or a timeout).
async fn messages(conn: &mut Conn, n: usize) -> Vec<Frame> {
    timeout(WAIT, conn.messages(n))
        .await
        .expect("messages in time")
}

/// Nothing more arrives on `conn` for a while.
async fn quiet(conn: &mut Conn, within: Duration) {
    if let Ok(f) = timeout(within, conn.r.next()).await {
        panic!("unexpected frame: {f:?}");
    }
}

#[tokio::test]
#[ignore = "needs nats-server: cargo xtask ci runs it (cluster-tests)"]
async fn topics_reach_every_node_once_in_publish_order() {
    let cluster = Cluster::new("topics", 30_000);
    let nodes = cluster.nodes(3);
    let patterns = [
        (1, "/topic/news.sport"),
        (1, "/topic/news.*"),
        (2, "/topic/news.#"),
        (2, "/topic/#"),
        (0, "/topic/news.>"),
        (0, "/topic/news.sport"),
    ];
    let mut subs = Vec::new();
    for (node, pattern) in patterns {
        let mut sub = Conn::connect(nodes[node].addr).await;
        sub.subscribe(pattern, "s", "auto", &[]).await;
        subs.push(sub);
    }
    let mut publisher = Conn::connect(nodes[0].addr).await;
    for i in 0..200 {
        publisher
            .w
            .push(&transient("/topic/news.sport", &i.to_string(), &[]));
    }
    publisher.w.flush().await;
    // `news` alone: only the patterns whose `#` matches zero segments.
    publisher
        .request(transient("/topic/news", "bare", &[]))
        .await;
    let expected: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    for (sub, (_, pattern)) in subs.iter_mut().zip(patterns) {
        let got = messages(sub, 200).await;
        assert_eq!(bodies(&got), expected, "{pattern}");
        assert!(
            got.iter()
                .all(|m| m.destination() == Some("/topic/news.sport"))
        );
        if pattern.ends_with('#') {
            let bare = messages(sub, 1).await;
            assert_eq!(body(&bare[0]), "bare", "{pattern}");
            assert_eq!(bare[0].destination(), Some("/topic/news"));
        }
        quiet(sub, Duration::from_millis(300)).await;
    }
}

#[tokio::test]
#[ignore = "needs nats-server: cargo xtask ci runs it (cluster-tests)"]
async fn names_nats_cannot_spell_round_trip() {
    let cluster = Cluster::new("names", 30_000);
    let nodes = cluster.nodes(2);
    let odd = [
        "/topic/a b.c*d",
        "/topic/x..y",
        "/topic/tilde~.>x",
        "/topic/ü/ß",
    ];
    let mut sub = Conn::connect(nodes[1].addr).await;
    for (i, name) in odd.iter().enumerate() {
        sub.subscribe(name, &format!("s{i}"), "auto", &[]).await;
    }
    let mut wild = Conn::connect(nodes[1].addr).await;
    // `*` matches `c*d` (a literal segment) but never a segment with `/`.
    wild.subscribe("/topic/a b.*", "w", "auto", &[]).await;
    wild.subscribe("/topic/ü/ß.*", "w2", "auto", &[]).await;
    let mut publisher = Conn::connect(nodes[0].addr).await;
    for name in odd {
        publisher.request(transient(name, name, &[])).await;
    }
    // One NATS subscription each: their relative order is not kept.
    let got = messages(&mut sub, odd.len()).await;
    for (i, name) in odd.iter().enumerate() {
        let id = format!("s{i}");
        let m = got.iter().find(|m| m.subscription() == Some(id.as_str()));
        let m = m.unwrap_or_else(|| panic!("nothing for {name}: {got:?}"));
        assert_eq!(m.destination(), Some(*name));
        assert_eq!(body(m), *name);
    }
    let got = messages(&mut wild, 1).await;
    assert_eq!(got[0].destination(), Some("/topic/a b.c*d"));
    quiet(&mut wild, Duration::from_millis(300)).await;
}

/// Consumes until `total` distinct bodies were seen across `consumers`
/// (each ACKed one by one); returns every body each one got.
async fn drain(consumers: Vec<Conn>, total: usize) -> Vec<Vec<String>> {
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for mut c in consumers {
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while seen.load(std::sync::atomic::Ordering::SeqCst) < total {
                // Reading is cancel-safe: what was read stays buffered.
                let Ok(f) = timeout(Duration::from_millis(200), c.r.next()).await else {
                    continue;
                };
                assert_eq!(f.command, Command::Message, "{f:?}");
                let ack = f.get("ack").unwrap().to_owned();
                c.w.send(&frame(Command::Ack, &[("id", &ack)], b"")).await;
                got.push(body(&f));
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(timeout(Duration::from_secs(240), t).await.unwrap().unwrap());
    }
    all
}

#[tokio::test]
#[ignore = "needs nats-server: cargo xtask ci runs it (cluster-tests)"]
async fn ten_thousand_queue_messages_are_consumed_once_across_three_nodes() {
    const N: usize = 10_000;
    let cluster = Cluster::new("queue", 30_000);
    let nodes = cluster.nodes(3);
    let mut consumers = Vec::new();
    for node in &nodes {
        let mut c = Conn::connect(node.addr).await;
        c.subscribe(
            "/queue/work",
            "q",
            "client-individual",
            &[("activemq.prefetchSize", "20")],
        )
        .await;
        consumers.push(c);
    }
    let mut publisher = Conn::connect(nodes[0].addr).await;
    for i in 0..N {
        publisher
            .w
            .push(&transient("/queue/work", &format!("m{i}"), &[]));
        if i % 500 == 499 {
            publisher.w.flush().await;
        }
    }
    publisher
        .request(transient("/queue/work", "last", &[]))
        .await;
    let got = drain(consumers, N + 1).await;
    let mut all = HashSet::new();
    for (node, bodies) in got.iter().enumerate() {
        assert!(!bodies.is_empty(), "node {node} consumed nothing");
        for b in bodies {
            assert!(all.insert(b.clone()), "{b} delivered twice");
        }
    }
    assert_eq!(all.len(), N + 1);
}

#[tokio::test]
#[ignore = "needs nats-server: cargo xtask ci runs it (cluster-tests)"]
async fn a_killed_nodes_unacked_messages_are_redelivered_by_another() {
    let cluster = Cluster::new("kill", 2_000);
    let mut nodes = cluster.nodes(3);
    let mut holder = Conn::connect(nodes[0].addr).await;
    holder
        .subscribe(
            "/queue/jobs",
            "q",
            "client",
            &[("activemq.prefetchSize", "5")],
        )
        .await;
    let mut publisher = Conn::connect(nodes[1].addr).await;
    for i in 0..5 {
        publisher
            .request(transient("/queue/jobs", &format!("j{i}"), &[]))
            .await;
    }
    let held = messages(&mut holder, 5).await;
    assert!(held.iter().all(|m| !redelivered(m)));
    // A live node keeps what its client holds past ack_wait_ms.
    let mut other = Conn::connect(nodes[2].addr).await;
    other
        .subscribe("/queue/jobs", "q", "client-individual", &[])
        .await;
    quiet(&mut other, Duration::from_millis(3 * cluster.ack_wait_ms)).await;
    // The holder's node dies: another node gets them again.
    nodes.remove(0).crash();
    let again = messages(&mut other, 5).await;
    let mut names = bodies(&again);
    names.sort();
    assert_eq!(names, ["j0", "j1", "j2", "j3", "j4"], "{HOLD} moved them");
    assert!(again.iter().all(redelivered), "{again:?}");
}

/// SENDs `count` receipted queue messages named `tag-i` through `node`,
/// reconnecting after an ERROR; returns the names whose RECEIPT came.
async fn send_through_outage(node: &BrokerProcess, tag: &str, count: usize) -> Vec<String> {
    let mut receipted = Vec::new();
    let mut conn = Conn::connect(node.addr).await;
    for i in 0..count {
        let name = format!("{tag}-{i}");
        let (answer, _) = conn
            .request_or_error(transient("/queue/safe", &name, &[]))
            .await;
        match answer.command {
            Command::Receipt => receipted.push(name),
            _ => {
                assert!(
                    answer
                        .get("message")
                        .unwrap()
                        .contains("cluster unavailable"),
                    "{answer:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                conn = Conn::connect(node.addr).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    receipted
}

#[tokio::test]
#[ignore = "needs nats-server: cargo xtask ci runs it (cluster-tests)"]
async fn a_nats_restart_mid_traffic_loses_no_receipted_message() {
    let mut cluster = Cluster::new("restart", 30_000);
    let nodes = cluster.nodes(2);
    let sending = {
        let (a, b) = (&nodes[0], &nodes[1]);
        futures_util::future::join(
            send_through_outage(a, "a", 400),
            send_through_outage(b, "b", 400),
        )
    };
    let restart = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // SIGKILL: what it acknowledged is in the page cache (a killed
        // process is no machine crash; see the README on replication).
        cluster.nats.kill();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        cluster.nats.respawn().unwrap();
    };
    let ((a, b), ()) = futures_util::future::join(sending, restart).await;
    let receipted: HashSet<String> = a.into_iter().chain(b).collect();
    assert!(receipted.len() < 800, "the outage refused nothing");
    let mut consumer = Conn::connect(nodes[1].addr).await;
    consumer.subscribe("/queue/safe", "q", "auto", &[]).await;
    let mut got = HashSet::new();
    while !receipted.is_subset(&got) {
        let f = timeout(WAIT, consumer.r.next())
            .await
            .expect("every receipted message");
        got.insert(body(&f));
    }
    // The nodes resubscribed their topics by themselves.
    let mut sub = Conn::connect(nodes[1].addr).await;
    sub.subscribe("/topic/after", "t", "auto", &[]).await;
    let mut publisher = Conn::connect(nodes[0].addr).await;
    publisher
        .request(transient("/topic/after", "back", &[]))
        .await;
    assert_eq!(bodies(&messages(&mut sub, 1).await), ["back"]);
}

#[tokio::test]
#[ignore = "needs nats-server: cargo xtask ci runs it (cluster-tests)"]
async fn while_nats_is_away_a_node_serves_locally_and_refuses_promises() {
    let mut cluster = Cluster::new("outage", 30_000);
    let nodes = cluster.nodes(2);
    let mut local = Conn::connect(nodes[0].addr).await;
    local.subscribe("/topic/local", "t", "auto", &[]).await;
    let mut remote = Conn::connect(nodes[1].addr).await;
    remote.subscribe("/topic/local", "t", "auto", &[]).await;
    cluster.nats.stop();
    let down = |n: &BrokerProcess| n.metric("stompkit_cluster_connected") == Some(0.0);
    let deadline = std::time::Instant::now() + WAIT;
    while !down(&nodes[0]) {
        assert!(
            std::time::Instant::now() < deadline,
            "the node never saw NATS go"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A SUBSCRIBE is answered: the subscription serves this node now.
    let mut late = Conn::connect(nodes[0].addr).await;
    late.subscribe("/topic/local", "t", "auto", &[]).await;
    let mut publisher = Conn::connect(nodes[0].addr).await;
    publisher
        .w
        .send(&transient("/topic/local", "only-here", &[]))
        .await;
    assert_eq!(bodies(&messages(&mut local, 1).await), ["only-here"]);
    assert_eq!(bodies(&messages(&mut late, 1).await), ["only-here"]);
    quiet(&mut remote, Duration::from_millis(300)).await;
    for destination in ["/topic/local", "/queue/any"] {
        let mut c = Conn::connect(nodes[0].addr).await;
        let (answer, _) = c.request_or_error(transient(destination, "x", &[])).await;
        assert_eq!(answer.command, Command::Error, "{destination}: {answer:?}");
        assert!(
            answer
                .get("message")
                .unwrap()
                .starts_with("cluster unavailable")
        );
    }
    assert_eq!(
        nodes[0].metric("stompkit_cluster_local_only_total"),
        Some(1.0)
    );
    let state = cluster_overview(&nodes[0]);
    assert_eq!(state["connected"], false, "{state}");
    assert_eq!(state["local_only"], 1, "{state}");
    assert_eq!(state["servers"][0], cluster.nats.url(), "{state}");
    cluster.nats.respawn().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while nodes[0].metric("stompkit_cluster_connected") != Some(1.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the node never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let state = cluster_overview(&nodes[0]);
    assert_eq!(state["connected"], true, "{state}");
    assert_eq!(state["reconnects"], 1, "{state}");
}

#[tokio::test]
#[ignore = "needs nats-server: cargo xtask ci runs it (cluster-tests)"]
async fn durable_subscriptions_move_between_nodes() {
    let cluster = Cluster::new("durable", 30_000);
    let nodes = cluster.nodes(3);
    let durable = [("activemq.subscriptionName", "feed-sub")];
    let client = [("client-id", "reader")];
    let mut sub = Conn::connect_with(nodes[0].addr, &client).await;
    sub.subscribe("/topic/feed", "d", "client-individual", &durable)
        .await;
    sub.request(frame(Command::Disconnect, &[], b"")).await;
    let mut publisher = Conn::connect(nodes[1].addr).await;
    for i in 0..3 {
        let persistent = [("persistent", "true")];
        publisher
            .request(transient(
                "/topic/feed",
                &format!("while-away-{i}"),
                &persistent,
            ))
            .await;
    }
    let mut sub = Conn::connect_with(nodes[2].addr, &client).await;
    let early = sub
        .subscribe("/topic/feed", "d", "client-individual", &durable)
        .await;
    let mut got = early;
    let more = 3 - got.len();
    got.extend(messages(&mut sub, more).await);
    assert_eq!(
        bodies(&got),
        ["while-away-0", "while-away-1", "while-away-2"]
    );
    for m in &got {
        sub.ack(m, false, &[]).await;
    }
    // Removed for good from another node: nothing is kept for it after.
    let mut on_a = Conn::connect_with(nodes[0].addr, &[("client-id", "other")]).await;
    sub.request(frame(Command::Disconnect, &[], b"")).await;
    let mut sub = Conn::connect_with(nodes[0].addr, &client).await;
    sub.subscribe("/topic/feed", "d", "auto", &durable).await;
    sub.unsubscribe("d", &durable).await;
    sub.request(frame(Command::Disconnect, &[], b"")).await;
    on_a.request(transient("/topic/feed", "after-removal", &[]))
        .await;
    let mut sub = Conn::connect_with(nodes[1].addr, &client).await;
    let early = sub.subscribe("/topic/feed", "d", "auto", &durable).await;
    assert!(early.is_empty(), "{early:?}");
    quiet(&mut sub, Duration::from_millis(500)).await;
}

#[tokio::test]
#[ignore = "needs nats-server: cargo xtask ci runs it (cluster-tests)"]
async fn replies_reach_a_requester_on_another_node() {
    let cluster = Cluster::new("reply", 30_000);
    let nodes = cluster.nodes(2);
    let mut replier = Conn::connect(nodes[1].addr).await;
    replier.subscribe("/queue/rpc", "rpc", "auto", &[]).await;
    let mut requester = Conn::connect(nodes[0].addr).await;
    let request = transient("/queue/rpc", "ping", &[("reply-to", "/temp-queue/answers")]);
    requester.request(request).await;
    let got = messages(&mut replier, 1).await;
    let reply_to = got[0].get("reply-to").unwrap().to_owned();
    assert!(reply_to.starts_with("/reply-queue/"), "{reply_to}");
    replier.request(transient(&reply_to, "pong", &[])).await;
    let answer = messages(&mut requester, 1).await;
    assert_eq!(body(&answer[0]), "pong");
    assert_eq!(answer[0].subscription(), Some("/temp-queue/answers"));
}

#[tokio::test]
#[ignore = "needs nats-server: cargo xtask ci runs it (cluster-tests)"]
async fn queues_keep_their_single_node_meaning_across_nodes() {
    let cluster = Cluster::new("semantics", 30_000);
    let launch = |c: &Cluster| {
        c.scratch
            .in_memory()
            .arg("--cluster")
            .arg(c.nats.url())
            .env("STOMPKIT_DESTINATIONS_MAX_DELIVERIES", "2")
            .start()
    };
    let nodes = [launch(&cluster), launch(&cluster), launch(&cluster)];
    let mut producer = Conn::connect(nodes[0].addr).await;
    // A transaction: nothing until COMMIT, then all of it in order; an
    // aborted one never.
    let tx = [("transaction", "t1")];
    producer.request(frame(Command::Begin, &tx, b"")).await;
    for i in 0..3 {
        producer
            .w
            .send(&transient("/queue/tx", &format!("c{i}"), &tx))
            .await;
    }
    let aborted = [("transaction", "t2")];
    producer.request(frame(Command::Begin, &aborted, b"")).await;
    producer
        .w
        .send(&transient("/queue/tx", "aborted", &aborted))
        .await;
    producer.request(frame(Command::Abort, &aborted, b"")).await;
    let mut consumer = Conn::connect(nodes[1].addr).await;
    consumer
        .subscribe("/queue/tx", "q", "client-individual", &[])
        .await;
    quiet(&mut consumer, Duration::from_millis(300)).await;
    producer.request(frame(Command::Commit, &tx, b"")).await;
    let got = messages(&mut consumer, 3).await;
    assert_eq!(bodies(&got), ["c0", "c1", "c2"]);
    // NACK: redelivered (marked), then dead-lettered at max_deliveries, to
    // a dead-letter queue another node consumes.
    let first = &got[0];
    let again = consumer.ack(first, true, &[]).await;
    let again = consumer.next_message(again).await;
    assert_eq!(body(&again), "c0");
    assert!(redelivered(&again));
    consumer.ack(&again, true, &[]).await;
    let mut dead = Conn::connect(nodes[2].addr).await;
    dead.subscribe("/queue/tx.dlq", "d", "auto", &[]).await;
    let letter = messages(&mut dead, 1).await;
    assert_eq!(body(&letter[0]), "c0");
    assert_eq!(letter[0].get("dead-letter-reason"), Some("max-deliveries"));
    assert_eq!(letter[0].get("original-destination"), Some("/queue/tx"));
    consumer.ack(&got[1], true, &[("requeue", "false")]).await;
    let letter = messages(&mut dead, 1).await;
    assert_eq!(letter[0].get("dead-letter-reason"), Some("nack"));
    // TTL: a message that expires while no node consumes it is never
    // delivered (checked at delivery, on whichever node).
    producer
        .request(transient("/queue/ttl", "stale", &[("expiration", "200")]))
        .await;
    producer
        .request(transient("/queue/ttl", "fresh", &[]))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut late = Conn::connect(nodes[2].addr).await;
    late.subscribe("/queue/ttl", "t", "auto", &[]).await;
    assert_eq!(bodies(&messages(&mut late, 1).await), ["fresh"]);
    quiet(&mut late, Duration::from_millis(300)).await;
}

#[test]
#[ignore = "needs nats-server: cargo xtask ci runs it (cluster-tests)"]
fn a_nats_max_payload_below_the_frame_limits_is_fitted_or_refused() {
    let scratch = Scratch::new("cluster-payload");
    // Room for the headers: max_body is lowered to fit, and said so.
    let roomy = Nats::start_with_config("max_payload: 300000\n").unwrap();
    let node = scratch
        .in_memory()
        .arg("--cluster")
        .arg(roomy.url())
        .start();
    assert!(
        node.log()
            .contains("max_body lowered to fit NATS max_payload")
    );
    drop(node);
    // No room: one line, and the broker does not start.
    let tiny = Nats::start_with_config("max_payload: 100000\n").unwrap();
    let (status, log) = scratch
        .in_memory()
        .arg("--cluster")
        .arg(tiny.url())
        .run_to_exit();
    assert!(!status.success());
    assert!(
        log.contains("NATS max_payload (100000 bytes) leaves no room"),
        "{log}"
    );
    // Unreachable NATS: one line too.
    let url = tiny.url();
    drop(tiny);
    let (status, log) = scratch.in_memory().arg("--cluster").arg(url).run_to_exit();
    assert!(!status.success());
    assert!(log.contains("cannot reach NATS at"), "{log}");
}

/// A node of `nats` started with these `[cluster]` variables; a topic
/// message goes through NATS and back to a subscriber on it.
async fn round_trip(scratch: &Scratch, url: &str, env: &[(&str, &str)]) {
    let mut launch = scratch.in_memory().arg("--cluster").arg(url);
    for (key, value) in env {
        launch = launch.env(key, value);
    }
    let node = launch.start();
    let mut sub = Conn::connect(node.addr).await;
    sub.subscribe("/topic/secure", "s", "auto", &[]).await;
    let mut publisher = Conn::connect(node.addr).await;
    publisher
        .request(transient("/topic/secure", "through NATS", &[]))
        .await;
    assert_eq!(bodies(&messages(&mut sub, 1).await), ["through NATS"]);
}

#[tokio::test]
#[ignore = "needs nats-server: cargo xtask ci runs it (cluster-tests)"]
async fn nats_credentials_and_tls_are_used() {
    let scratch = Scratch::new("cluster-auth");
    let login =
        Nats::start_with_config("authorization { user: stomp, password: s3cret }\n").unwrap();
    let user = ("STOMPKIT_CLUSTER_USER", "stomp");
    round_trip(
        &scratch,
        &login.url(),
        &[user, ("STOMPKIT_CLUSTER_PASSWORD", "s3cret")],
    )
    .await;
    let (status, log) = scratch
        .in_memory()
        .arg("--cluster")
        .arg(login.url())
        .env(user.0, user.1)
        .env("STOMPKIT_CLUSTER_PASSWORD", "wrong")
        .run_to_exit();
    assert!(!status.success());
    assert!(log.contains("cannot reach NATS at"), "{log}");

    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (
        scratch.root().join("nats.pem"),
        scratch.root().join("nats.key"),
    );
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let config = format!(
        "tls {{ cert_file: {:?}, key_file: {:?} }}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let secure = Nats::start_with_config(&config).unwrap();
    let url = format!("tls://127.0.0.1:{}", secure.port());
    let ca = cert.display().to_string();
    round_trip(&scratch, &url, &[("STOMPKIT_CLUSTER_CA_FILE", &ca)]).await;
    // Not trusting the server's certificate: one line, no start.
    let (status, log) = scratch.in_memory().arg("--cluster").arg(&url).run_to_exit();
    assert!(!status.success());
    assert!(log.contains("cannot reach NATS at"), "{log}");
}
