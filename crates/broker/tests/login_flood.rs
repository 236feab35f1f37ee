//! A flood of bad logins (real argon2id cost, 19 MiB per check) against the
//! in-process broker while a publisher and a subscriber keep exchanging
//! messages: delivery must go on with bounded latency and no loss, and memory
//! must stay bounded, because password checks run on the blocking pool behind
//! `verify_concurrency`. Alone in its test binary so the RSS figures are ours.
#![allow(clippy::unwrap_used)]

mod support;

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use stompkit_broker::auth::{password, token};
use stompkit_broker::{Broker, BrokerConfig, Secret, UserConfig};
use stompkit_frame::{Command, Frame};
use stompkit_tokio::{AckMode, Client, ClientConfig, Event, StompCodec, SubscribeOptions};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

const SECRET: &str = "flood test secret, 32 bytes long";
const FLOODERS: usize = 64;
const FLOOD: Duration = Duration::from_secs(4);
const TICK: Duration = Duration::from_millis(5);
/// Latency bound for the well-behaved pair while the flood runs. Password checks
/// on the network threads would hold both workers for seconds.
const MAX_LATENCY: Duration = Duration::from_millis(1000);
/// RSS growth bound: `verify_concurrency` (2) × 19 MiB plus buffers; 64 checks at
/// once would take 1.2 GiB.
const MAX_RSS_GROWTH_MIB: u64 = 120;

/// (current RSS, peak RSS) in KiB, from /proc/self/status.
fn rss_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flood_does_not_stall_delivery_or_grow_memory() {
    let mut config = BrokerConfig::default();
    config.server.listen = vec!["127.0.0.1:0".into()];
    support::in_memory(&mut config);
    config.auth.users = vec![UserConfig {
        login: "target".into(),
        // Default cost: what `stompkit-broker passwd` produces.
        password_hash: password::hash("the real password").unwrap(),
        send: None,
        subscribe: None,
        admin: false,
    }];
    config.auth.token_secret = Secret::new(SECRET);
    // Worst case for the semaphore: no per-address slow-down (as from many addresses).
    config.auth.failure_delay_ms = 0;
    config.auth.max_failure_delay_ms = 0;
    config.auth.verify_concurrency = 2;
    config.limits.login_timeout_ms = 60_000;
    let broker = Broker::bind(config).await.unwrap();
    let addr = broker.local_addrs()[0];

    // The well-behaved pair logs in with tokens (no password check).
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let login = |l: &str| {
        ClientConfig::new("localhost").login(l, token::mint(SECRET.as_bytes(), l, now + 600))
    };
    let subscriber = Client::connect_tcp(addr.to_string(), login("sub"))
        .await
        .unwrap();
    let publisher = Client::connect_tcp(addr.to_string(), login("pub"))
        .await
        .unwrap();
    // With a receipt: the first tick must not reach the topic before the
    // subscription does.
    let options = SubscribeOptions::new("/topic/ticks").ack(AckMode::Auto);
    let (mut sub, registered) = subscriber.subscribe_with_receipt(options).await.unwrap();
    registered.await.unwrap();
    let start = Instant::now();
    let stamp = move || start.elapsed().as_micros() as u64;

    let (rss_before, _) = rss_kib().unwrap_or_default();
    let flooding = Arc::new(AtomicBool::new(true));
    let refused = Arc::new(AtomicU64::new(0));
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|_| {
            let (flooding, refused) = (flooding.clone(), refused.clone());
            tokio::spawn(async move {
                while flooding.load(Ordering::Relaxed) {
                    let tcp = TcpStream::connect(addr).await.unwrap();
                    let mut f = Framed::new(tcp, StompCodec::new());
                    let connect = Frame::connect("localhost", "1.2")
                        .header("login", "target")
                        .header("passcode", "guess");
                    if f.send(connect).await.is_err() {
                        continue;
                    }
                    if let Some(Ok(Event::Frame(e))) = f.next().await {
                        assert_eq!(e.command, Command::Error);
                        assert_eq!(e.message(), Some("access refused"));
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    let receive = tokio::spawn(async move {
        let mut latencies = Vec::new();
        while let Some(m) = sub.next().await {
            let m = m.unwrap();
            let text = std::str::from_utf8(m.body()).unwrap().to_owned();
            if text == "end" {
                break;
            }
            let (n, sent_at) = text.split_once(' ').unwrap();
            assert_eq!(
                n.parse::<usize>().unwrap(),
                latencies.len(),
                "lost or reordered"
            );
            let sent_at = Duration::from_micros(sent_at.parse().unwrap());
            latencies.push(start.elapsed() - sent_at);
        }
        (sub, latencies)
    });
    let mut sent = 0u64;
    let mut ticker = tokio::time::interval(TICK);
    let until = Instant::now() + FLOOD;
    while Instant::now() < until {
        ticker.tick().await;
        let body = format!("{sent} {}", stamp());
        publisher
            .send(Frame::send("/topic/ticks").with_body(body))
            .await
            .unwrap();
        sent += 1;
    }
    publisher
        .send(Frame::send("/topic/ticks").with_body("end"))
        .await
        .unwrap();
    let (_sub, mut latencies) = tokio::time::timeout(Duration::from_secs(30), receive)
        .await
        .expect("the subscriber stopped receiving")
        .unwrap();
    flooding.store(false, Ordering::Relaxed);
    for f in flooders {
        f.await.unwrap();
    }
    let (_, rss_peak) = rss_kib().unwrap_or_default();

    latencies.sort();
    let (p50, p99, max) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        *latencies.last().unwrap(),
    );
    let refused = refused.load(Ordering::Relaxed);
    let growth_mib = rss_peak.saturating_sub(rss_before) / 1024;
    println!(
        "login flood: {FLOODERS} connections, {refused} refused logins in {:?}; {sent} messages, none lost; latency p50 {p50:?} p99 {p99:?} max {max:?}; peak RSS +{growth_mib} MiB",
        FLOOD
    );
    assert_eq!(latencies.len() as u64, sent);
    assert!(refused >= 4, "the flood made only {refused} login attempts");
    assert!(max < MAX_LATENCY, "delivery stalled: max latency {max:?}");
    if rss_before > 0 {
        assert!(
            growth_mib < MAX_RSS_GROWTH_MIB,
            "RSS grew by {growth_mib} MiB during the flood"
        );
    }
    publisher.disconnect().await.unwrap();
    subscriber.disconnect().await.unwrap();
    broker.shutdown().await;
}
