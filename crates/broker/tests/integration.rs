//! Integration tests: the broker in-process on 127.0.0.1:0, driven over real
//! sockets, raw and with the stompkit-tokio client. Rule ids as in spec/RULES.md.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use futures_util::StreamExt;
use std::time::Duration;
use stompkit_frame::{Command, Frame, Version};
use stompkit_wire::{Event, Parser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;
use support::{Raw, WAIT, start};

// ---------------------------------------------------------------- sessions

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_connected_headers_and_v2_missing_accept_version_is_1_0() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut raw = Raw::open(addr).await;
    raw.write(b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:localhost\nheart-beat:0,0\n\n\0")
        .await;
    let f = raw.frame().await;
    assert_eq!(f.version(), Some("1.2"));
    assert!(f.session().is_some());
    assert_eq!(
        f.server(),
        Some(concat!("stompkit/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(f.heart_beat(), Some("0,0"));
    let mut raw = Raw::open(addr).await;
    raw.write(b"CONNECT\nhost:localhost\n\n\0").await;
    assert_eq!(raw.frame().await.version(), Some("1.0"));
    let mut raw = Raw::open(addr).await;
    raw.write(b"STOMP\naccept-version:1.1\nhost:localhost\n\n\0")
        .await;
    assert_eq!(
        raw.frame().await.version(),
        Some("1.1"),
        "V7: STOMP is CONNECT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_no_common_version_gets_error_with_version_header_and_close() {
    let broker = start(|_| {}).await;
    let mut raw = Raw::open(broker.local_addrs()[0]).await;
    raw.write(b"CONNECT\naccept-version:2.0\nhost:localhost\n\n\0")
        .await;
    let e = raw.expect_error("no supported protocol version").await;
    assert_eq!(e.version(), Some("1.0,1.1,1.2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_case_gets_error_with_message_receipt_id_and_close() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    let cases: &[(&str, &[u8], &str, bool)] = &[
        ("1.2", b"FROB\nreceipt:r\n\n\0", "unknown command", false),
        ("1.2", b"send\ndestination:/queue/a\n\n\0", "unknown command", false),
        ("1.2", b"SEND\nreceipt:r\n\nx\0", "missing destination header", true),
        ("1.2", b"SUBSCRIBE\ndestination:/queue/a\nreceipt:r\n\n\0", "missing id header", true),
        ("1.2", b"BEGIN\nreceipt:r\n\n\0", "missing transaction header", true),
        ("1.2", b"ACK\nid:1.1\nreceipt:r\n\n\0", "ACK/NACK of an unknown message", true),
        ("1.1", b"NACK\nmessage-id:1\nsubscription:s\nreceipt:r\n\n\0", "ACK/NACK of an unknown message", true),
        ("1.2", b"COMMIT\ntransaction:t\nreceipt:r\n\n\0", "unknown transaction", true),
        ("1.2", b"ABORT\ntransaction:t\nreceipt:r\n\n\0", "unknown transaction", true),
        (
            "1.2",
            b"SUBSCRIBE\nid:1\ndestination:/queue/a\n\n\0SUBSCRIBE\nid:1\ndestination:/queue/b\nreceipt:r\n\n\0",
            "duplicate subscription id",
            true,
        ),
        ("1.2", b"BEGIN\ntransaction:t\n\nbody\0", "frame must not have a body", false),
        ("1.2", b"SEND\ndestination:/queue/a\nk:\\t\n\n\0", "invalid header escape", false),
        ("1.2", b"SEND\ndestination:/queue/a\ncontent-length:5x\n\nhello\0", "invalid content-length", false),
        ("1.2", b"SEND\ndestination:/queue/a\nk:a\rb\n\n\0", "bare CR not followed by LF", false),
        ("1.0", b"NACK\nmessage-id:1\n\n\0", "NACK is not supported in STOMP 1.0", false),
        ("1.2", b"SEND\ndestination:/nowhere\nreceipt:r\n\n\0", "unsupported destination", true),
    ];
    for &(version, bytes, message, has_receipt) in cases {
        let mut raw = Raw::connect(addr, Some(version)).await;
        raw.write(bytes).await;
        let e = raw.expect_error(message).await;
        assert_eq!(e.receipt_id(), has_receipt.then_some("r"), "{message}");
    }
    // Malformed heart-beat on CONNECT.
    let mut raw = Raw::open(addr).await;
    raw.write(b"CONNECT\naccept-version:1.2\nhost:h\nheart-beat:1;2\n\n\0")
        .await;
    raw.expect_error("malformed heart-beat header").await;
    // Frames before CONNECT.
    let mut raw = Raw::open(addr).await;
    raw.write(b"SEND\ndestination:/queue/a\n\n\0").await;
    raw.expect_error("expected CONNECT or STOMP frame").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_side_by_side_with_headers_passed_through_per_version() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut v10 = Raw::connect(addr, None).await;
    let mut v11 = Raw::connect(addr, Some("1.1")).await;
    let mut v12 = Raw::connect(addr, Some("1.0,1.1,1.2")).await;
    v10.write(b"SUBSCRIBE\ndestination:/topic/mix\nreceipt:s\n\n\0")
        .await;
    assert_eq!(v10.frame().await.receipt_id(), Some("s"));
    v11.subscribe("a", "/topic/mix", "").await;
    v12.subscribe("b", "/topic/mix", "").await;
    v12.write(b"SEND\ndestination:/topic/mix\ncontent-type:text/plain\nx-colon:a\\cb\nx-lf:1\\n2\nreceipt:p\n\nhello\0").await;
    let m = v10.frame().await;
    assert_eq!(m.get("x-colon"), Some("a:b"), "1.0 carries raw colons");
    assert_eq!(
        m.get("x-lf"),
        None,
        "an LF cannot be carried to 1.0: dropped"
    );
    assert_eq!(m.content_type(), Some("text/plain"));
    for raw in [&mut v11, &mut v12] {
        let m = raw.frame().await;
        assert_eq!(m.get("x-colon"), Some("a:b"));
        assert_eq!(m.get("x-lf"), Some("1\n2"));
        assert_eq!(m.destination(), Some("/topic/mix"));
        assert!(m.message_id().is_some());
        assert_eq!(m.body(), b"hello");
    }
    assert_eq!(
        v12.frame().await.receipt_id(),
        Some("p"),
        "RECEIPT after the effect"
    );
    assert_eq!(Metrics::get(&broker.metrics().dropped_headers), 1);
}

use stompkit_broker::{DropReason, ErrorReason, Metrics};

// ------------------------------------------------------------- destinations

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_round_robin_ack_nack_and_redelivery_to_another_subscriber() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut producer = Raw::connect(addr, Some("1.2")).await;
    // Held while nobody is subscribed.
    producer.write(b"SEND\ndestination:/queue/work\n\nm1\0SEND\ndestination:/queue/work\nreceipt:p\n\nm2\0").await;
    assert_eq!(producer.frame().await.receipt_id(), Some("p"));
    let mut a = Raw::connect(addr, Some("1.2")).await;
    // Held messages are delivered on SUBSCRIBE, before its RECEIPT (after the effect).
    let got = a
        .subscribe(
            "a",
            "/queue/work",
            "ack:client-individual\nprefetch-count:1\n",
        )
        .await;
    assert_eq!(got.len(), 1, "prefetch-count:1");
    let m1 = &got[0];
    assert_eq!(m1.body(), b"m1");
    let mut b = Raw::connect(addr, Some("1.1")).await;
    let got = b.subscribe("b", "/queue/work", "ack:client\n").await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].body(),
        b"m2",
        "exactly one subscriber gets each message"
    );
    // NACK requeues m1; round-robin gives it back to a (b was served last).
    a.write(format!("NACK\nid:{}\nreceipt:n\n\n\0", m1.ack().unwrap()).as_bytes())
        .await;
    let again = a.frame().await;
    assert_eq!(again.body(), b"m1");
    assert_eq!(again.get("redelivered"), Some("true"));
    assert_eq!(a.frame().await.receipt_id(), Some("n"));
    // b goes away without acking m2: m2 returns to the queue and, once a acks m1
    // (freeing its one credit), is redelivered to a.
    drop(b);
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.write(format!("ACK\nid:{}\n\n\0", again.ack().unwrap()).as_bytes())
        .await;
    let m2 = a.frame().await;
    assert_eq!(m2.body(), b"m2");
    assert_eq!(m2.get("redelivered"), Some("true"));
    assert_eq!(Metrics::get(&broker.metrics().redelivered), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mib_bodies_with_nuls_reach_every_version() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut subs = Vec::new();
    for v in ["1.0", "1.1", "1.2"] {
        let mut raw = Raw::connect(addr, Some(v)).await;
        raw.subscribe("s", "/topic/big", "").await;
        subs.push(raw);
    }
    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    assert!(body.contains(&0));
    let mut producer = Raw::connect(addr, Some("1.2")).await;
    let mut frame = format!(
        "SEND\ndestination:/topic/big\ncontent-length:{}\n\n",
        body.len()
    )
    .into_bytes();
    frame.extend_from_slice(&body);
    frame.push(0);
    producer.write(&frame).await;
    for raw in &mut subs {
        let m = raw.frame().await;
        assert_eq!(m.content_length(), Ok(Some(body.len() as u64)));
        assert!(m.body() == body, "body intact");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_on_one_topic() {
    let _ = stompkit_broker::raise_nofile_limit();
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut subs = Vec::new();
    for chunk in 0..10 {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..100 {
            set.spawn(async move {
                let mut raw = Raw::connect(addr, Some("1.2")).await;
                raw.subscribe(&format!("s{chunk}-{i}"), "/topic/crowd", "")
                    .await;
                raw
            });
        }
        while let Some(raw) = set.join_next().await {
            subs.push(raw.unwrap());
        }
    }
    let mut producer = Raw::connect(addr, Some("1.2")).await;
    producer
        .write(b"SEND\ndestination:/topic/crowd\n\n1\0SEND\ndestination:/topic/crowd\n\n2\0")
        .await;
    let mut set = tokio::task::JoinSet::new();
    for mut raw in subs {
        set.spawn(async move {
            let a = raw.frame().await;
            let b = raw.frame().await;
            (a.body_bytes(), b.body_bytes())
        });
    }
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        let (a, b) = r.unwrap();
        assert_eq!(
            (&a[..], &b[..]),
            (&b"1"[..], &b"2"[..]),
            "publish order per publisher"
        );
        n += 1;
    }
    assert_eq!(n, 1000);
}

// ----------------------------------------------------------- limits, timers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_topic_consumer_is_disconnected_and_others_keep_flowing() {
    let broker = start(|c| c.limits.max_outbox_bytes = 1024 * 1024).await;
    let addr = broker.local_addrs()[0];
    let mut slow = Raw::connect(addr, Some("1.2")).await;
    slow.subscribe("s", "/topic/firehose", "").await;
    let mut fast = Raw::connect(addr, Some("1.2")).await;
    fast.subscribe("f", "/topic/firehose", "").await;
    let mut producer = Raw::connect(addr, Some("1.2")).await;
    let body = "x".repeat(16 * 1024);
    // ~32 MB: far beyond loopback socket buffers plus the 1 MiB bound.
    let count = 2000;
    let (progress, mut received) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        for i in 0..count {
            assert_eq!(fast.frame().await.command, Command::Message);
            let _ = progress.send(i + 1);
        }
    });
    let frame = format!("SEND\ndestination:/topic/firehose\n\n{body}\0");
    for i in 0..count {
        producer.write(frame.as_bytes()).await;
        if i % 20 == 19 {
            // Keep pace with the reading subscriber: it must never look slow.
            while received.recv().await.unwrap() < i + 1 {}
        }
    }
    reader.await.unwrap();
    // The slow one: messages, then ERROR "slow consumer", then close.
    let mut saw_error = false;
    while let Some(f) = slow.try_frame().await {
        if f.command == Command::Error {
            assert_eq!(f.message(), Some("slow consumer"));
            saw_error = true;
        }
    }
    assert!(saw_error, "the slow consumer was told why");
    let metrics = broker.metrics();
    assert!(metrics.dropped(DropReason::SlowConsumer) > 0);
    assert_eq!(metrics.errors(ErrorReason::SlowConsumer), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h5_silent_peer_is_closed_after_heart_beat_grace() {
    let broker = start(|c| c.heartbeat.min_ms = 50).await;
    let mut raw = Raw::open(broker.local_addrs()[0]).await;
    raw.write(b"CONNECT\naccept-version:1.2\nhost:h\nheart-beat:100,0\n\n\0")
        .await;
    let f = raw.frame().await;
    assert_eq!(f.heart_beat(), Some("0,100"));
    let started = std::time::Instant::now();
    raw.parser.set_version(Version::V1_2);
    let e = raw.frame().await;
    assert!(e.message().unwrap().contains("heart-beat"), "{e:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(140) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    raw.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_heart_beats_arrive_when_asked() {
    let broker = start(|c| c.heartbeat.min_ms = 50).await;
    let mut stream = TcpStream::connect(broker.local_addrs()[0]).await.unwrap();
    stream
        .write_all(b"CONNECT\naccept-version:1.2\nhost:h\nheart-beat:0,100\n\n\0")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(450);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let after = got.iter().position(|&b| b == 0).unwrap();
    let beats = got[after + 1..].iter().filter(|&&b| b == b'\n').count();
    assert!(beats >= 2, "got {beats} beats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_frame_completion_timeouts_close_the_connection() {
    let broker = start(|c| {
        c.limits.login_timeout_ms = 150;
        c.limits.frame_timeout_ms = 150;
    })
    .await;
    let addr = broker.local_addrs()[0];
    let mut idle = Raw::open(addr).await;
    idle.expect_error("login timeout: no CONNECT frame received")
        .await;
    let mut drip = Raw::connect(addr, Some("1.2")).await;
    drip.write(b"SEND\ndestination:/queue/a\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    drip.write(b"x:y\n").await;
    drip.expect_error("frame not completed in time").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_refuses_with_error() {
    let broker = start(|c| c.limits.max_connections = 2).await;
    let addr = broker.local_addrs()[0];
    let _a = Raw::connect(addr, Some("1.2")).await;
    let _b = Raw::connect(addr, Some("1.2")).await;
    let mut c = Raw::open(addr).await;
    c.expect_error("too many connections").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_receipts_is_back_pressured_then_served() {
    // Every SEND asks for a RECEIPT the size of the frame; the client reads none.
    // The broker must stop reading from it once its outbox is full (not queue
    // receipts without bound), and serve it again once it reads.
    // A frame timeout shorter than the stall: a frame cut by the pause must not
    // count against it (long enough that a loaded machine completes frames).
    let broker = start(|c| {
        c.limits.max_outbox_bytes = 64 * 1024;
        c.limits.frame_timeout_ms = 1000;
    })
    .await;
    let addr = broker.local_addrs()[0];
    let mut raw = Raw::connect(addr, Some("1.2")).await;
    let receipt = "r".repeat(1000);
    let mut batch = Vec::new();
    for i in 0..64 {
        batch.extend_from_slice(
            format!("SEND\ndestination:/topic/nobody\nreceipt:{receipt}{i}\n\n\0").as_bytes(),
        );
    }
    const TOTAL: usize = 64 * 1024 * 1024;
    let mut written = 0;
    while written < TOTAL {
        let write = raw.stream.write(&batch[written % batch.len()..]);
        match tokio::time::timeout(Duration::from_millis(2000), write).await {
            Ok(n) => written += n.unwrap(),
            Err(_) => break, // stalled for 2 s: the broker stopped reading
        }
    }
    assert!(
        written < TOTAL,
        "the broker read everything: no back-pressure"
    );
    let read_by_broker = Metrics::get(&broker.metrics().bytes_in);
    assert!(
        read_by_broker < 24 * 1024 * 1024,
        "the broker read {read_by_broker} bytes from a client that reads nothing"
    );
    // Reading resumes the flow: every receipt of every whole batch arrives, in order.
    // Finish the batch the stall cut, then send one more.
    let batches = written.div_ceil(batch.len()) + 1;
    let (mut reader, mut writer) = raw.stream.into_split();
    let count = tokio::spawn(async move {
        let (mut parser, mut buf, mut n) = (Parser::new(), BytesMut::new(), 0usize);
        parser.set_version(Version::V1_2);
        while n < batches * 64 {
            match parser.parse(&mut buf).unwrap() {
                Some(Event::Frame(f)) => {
                    assert_eq!(f.command, Command::Receipt, "{f:?}");
                    assert_eq!(
                        f.receipt_id(),
                        Some(format!("{receipt}{}", n % 64).as_str())
                    );
                    n += 1;
                }
                Some(Event::HeartBeat) => {}
                None => assert!(reader.read_buf(&mut buf).await.unwrap() > 0, "closed"),
            }
        }
        n
    });
    if written % batch.len() != 0 {
        writer
            .write_all(&batch[written % batch.len()..])
            .await
            .unwrap();
    }
    writer.write_all(&batch).await.unwrap();
    let n = tokio::time::timeout(WAIT, count).await.unwrap().unwrap();
    assert_eq!(n, batches * 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_refuses_send_and_oversized_body_is_an_error() {
    let broker = start(|c| {
        c.destinations.queue_max_messages = 1;
        c.limits.max_body = 1000;
    })
    .await;
    let addr = broker.local_addrs()[0];
    let mut raw = Raw::connect(addr, Some("1.2")).await;
    raw.write(
        b"SEND\ndestination:/queue/full\n\n1\0SEND\ndestination:/queue/full\nreceipt:r\n\n2\0",
    )
    .await;
    assert_eq!(
        raw.expect_error("queue is full").await.receipt_id(),
        Some("r")
    );
    let mut raw = Raw::connect(addr, Some("1.2")).await;
    raw.write(format!("SEND\ndestination:/queue/x\n\n{}\0", "y".repeat(2000)).as_bytes())
        .await;
    raw.expect_error("body too large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_sends_error_to_clients_and_metrics_are_served() {
    let broker = start(|c| c.server.metrics = "127.0.0.1:0".into()).await;
    let addr = broker.local_addrs()[0];
    let mut raw = Raw::connect(addr, Some("1.2")).await;
    raw.write(b"SEND\ndestination:/queue/depth\nreceipt:r\n\nx\0")
        .await;
    assert_eq!(raw.frame().await.receipt_id(), Some("r"));
    let mut http = TcpStream::connect(broker.metrics_addr().unwrap())
        .await
        .unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    http.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("stompkit_connections 1\n"), "{text}");
    assert!(
        text.contains("stompkit_messages_published_total 1\n"),
        "{text}"
    );
    assert!(
        text.contains("stompkit_queue_messages_ready{queue=\"depth\"} 1\n"),
        "{text}"
    );
    let stopping = tokio::spawn(broker.shutdown());
    raw.expect_error("server shutting down").await;
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

// ------------------------------------------------------ stompkit-tokio client

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_pub_sub_transactions_and_acks() {
    use stompkit_tokio::{AckMode, Client, ClientConfig, SubscribeOptions};
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0].to_string();
    for version in Version::ALL {
        let config = || ClientConfig::new("localhost").versions(&[version]);
        let client = Client::connect_tcp(addr.clone(), config()).await.unwrap();
        assert_eq!(client.version(), version);
        let topic = format!("/topic/t{version}");
        let queue = format!("/queue/q{version}");
        // Receipts: the subscriptions exist before the other client publishes.
        let (mut sub, registered) = client
            .subscribe_with_receipt(SubscribeOptions::new(&topic).ack(AckMode::Auto))
            .await
            .unwrap();
        registered.await.unwrap();
        let (mut work, registered) = client
            .subscribe_with_receipt(SubscribeOptions::new(&queue).ack(AckMode::Client))
            .await
            .unwrap();
        registered.await.unwrap();
        let other = Client::connect_tcp(addr.clone(), config()).await.unwrap();
        other
            .send_with_receipt(Frame::send(&topic).header("x-k", "v").with_body("t1"))
            .await
            .unwrap()
            .await
            .unwrap();
        let m = sub.next().await.unwrap().unwrap();
        assert_eq!(m.body(), b"t1");
        assert_eq!(m.header("x-k"), Some("v"));
        let tx = other.begin().await.unwrap();
        tx.send(Frame::send(&queue).with_body("q1")).await.unwrap();
        tx.send(Frame::send(&queue).with_body("q2")).await.unwrap();
        tx.commit_with_receipt().await.unwrap().await.unwrap();
        let q1 = work.next().await.unwrap().unwrap();
        let q2 = work.next().await.unwrap().unwrap();
        assert_eq!((q1.body(), q2.body()), (&b"q1"[..], &b"q2"[..]));
        client.ack(&q2).await.unwrap();
        client.disconnect().await.unwrap();
        other.disconnect().await.unwrap();
    }
}
