//! Router dispatch cost: one publish to 1, 100 and 10,000 topic subscribers (and a
//! queue with 100 subscribers), in-process, encoding into real outboxes. Throughput
//! is per delivery, so criterion's "elem/s" is deliveries per second and the time
//! per element is the dispatch cost per delivery. Outboxes are drained after every
//! publish (what the writer tasks do), and that cost is included.
//!
//! `router_wildcards`: one publish to `/topic/bench.x`, which one wildcard
//! subscription matches, beside 10 or 100,000 wildcard subscriptions on
//! unrelated segments (`u<i>.*`, `*.u<i>`, `u<i>.#`, `#.u<i>`): the cost must
//! not grow with the patterns that do not match.
//!
//! `router_selective`: a queue holding 0 or 10,000 messages that its one
//! subscriber's selector (`x = 1`, client-individual, prefetch 1) does not
//! select; one SEND it selects, then its ACK, which dispatches the queue
//! again from the oldest held message.
#![allow(missing_docs, clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use stompkit_broker::Metrics;
use stompkit_broker::internals::{AckRef, Outbox, Router, RouterCommand, RouterConfig, Take};
use stompkit_frame::{AckMode, Frame, Version};
use stompkit_selector::Selector;

fn setup(subscribers: usize, destination: &str) -> (Router, Vec<Arc<Outbox>>) {
    let mut router = Router::new(RouterConfig::default(), Arc::new(Metrics::default()));
    let mut outboxes = Vec::new();
    for conn in 0..subscribers as u64 {
        let outbox = Arc::new(Outbox::new(usize::MAX));
        router.handle(RouterCommand::Connect {
            conn,
            outbox: outbox.clone(),
            version: Version::V1_2,
        });
        router.handle(RouterCommand::Subscribe {
            conn,
            id: "sub-0".into(),
            destination: destination.into(),
            ack: AckMode::Auto,
            prefetch: 0,
            durable: None,
            selector: None,
            receipt: None,
        });
        outboxes.push(outbox);
    }
    (router, outboxes)
}

fn drain(outboxes: &[Arc<Outbox>], spare: &mut BytesMut) {
    for o in outboxes {
        if o.take(spare) == Take::Data {
            black_box(&spare[..]);
            spare.clear();
            o.written();
        }
    }
}

fn publish(c: &mut Criterion) {
    let body = Bytes::from(vec![b'x'; 100]);
    let mut group = c.benchmark_group("router_publish");
    for (kind, n) in [
        ("topic", 1),
        ("topic", 100),
        ("topic", 10_000),
        ("queue", 100),
    ] {
        let destination = format!("/{kind}/bench");
        let (mut router, outboxes) = setup(n, &destination);
        let frame = Frame::send(&destination)
            .header("content-type", "text/plain")
            .with_body(body.clone());
        let deliveries = if kind == "topic" { n as u64 } else { 1 };
        group.throughput(Throughput::Elements(deliveries));
        let mut spare = BytesMut::new();
        group.bench_with_input(BenchmarkId::new(kind, n), &n, |b, _| {
            b.iter(|| {
                router.handle(RouterCommand::Send {
                    conn: 0,
                    frame: frame.clone(),
                });
                drain(&outboxes, &mut spare);
            })
        });
    }
    group.finish();
}

/// A router with one subscription to `/topic/bench.*` and `unrelated`
/// wildcard subscriptions that never match `/topic/bench.x`.
fn setup_wildcards(unrelated: usize) -> (Router, Vec<Arc<Outbox>>) {
    let (mut router, outboxes) = setup(1, "/topic/bench.*");
    let quiet = Arc::new(Outbox::new(usize::MAX));
    router.handle(RouterCommand::Connect {
        conn: 1,
        outbox: quiet,
        version: Version::V1_2,
    });
    for i in 0..unrelated {
        let destination = match i % 4 {
            0 => format!("/topic/u{i}.*"),
            1 => format!("/topic/*.u{i}"),
            2 => format!("/topic/u{i}.#"),
            _ => format!("/topic/#.u{i}"),
        };
        router.handle(RouterCommand::Subscribe {
            conn: 1,
            id: format!("sub-{i}"),
            destination,
            ack: AckMode::Auto,
            prefetch: 0,
            durable: None,
            selector: None,
            receipt: None,
        });
    }
    // The one matching subscription gets the message.
    router.handle(RouterCommand::Send {
        conn: 0,
        frame: Frame::send("/topic/bench.x"),
    });
    let mut spare = BytesMut::new();
    assert_eq!(outboxes[0].take(&mut spare), Take::Data);
    assert!(spare.starts_with(b"MESSAGE\ndestination:/topic/bench.x\n"));
    outboxes[0].written();
    (router, outboxes)
}

fn publish_wildcards(c: &mut Criterion) {
    let mut group = c.benchmark_group("router_wildcards");
    for n in [10, 100_000] {
        let (mut router, outboxes) = setup_wildcards(n);
        let frame = Frame::send("/topic/bench.x").with_body(Bytes::from(vec![b'x'; 100]));
        let mut spare = BytesMut::new();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("unrelated", n), &n, |b, _| {
            b.iter(|| {
                router.handle(RouterCommand::Send {
                    conn: 0,
                    frame: frame.clone(),
                });
                drain(&outboxes, &mut spare);
            })
        });
    }
    group.finish();
}

/// A router whose `/queue/sel` holds `unwanted` messages (`x:2`) and has one
/// subscriber selecting `x = 1`, client-individual with prefetch 1.
fn setup_selective(unwanted: usize) -> (Router, Arc<Outbox>) {
    let mut router = Router::new(RouterConfig::default(), Arc::new(Metrics::default()));
    let outbox = Arc::new(Outbox::new(usize::MAX));
    router.handle(RouterCommand::Connect {
        conn: 0,
        outbox: outbox.clone(),
        version: Version::V1_2,
    });
    for _ in 0..unwanted {
        router.handle(RouterCommand::Send {
            conn: 0,
            frame: Frame::send("/queue/sel").header("x", "2"),
        });
    }
    router.handle(RouterCommand::Subscribe {
        conn: 0,
        id: "s".into(),
        destination: "/queue/sel".into(),
        ack: AckMode::ClientIndividual,
        prefetch: 1,
        durable: None,
        selector: Some(Selector::parse("x = 1").unwrap()),
        receipt: None,
    });
    (router, outbox)
}

/// The `ack` header of the one MESSAGE in `outbox`.
fn take_ack(outbox: &Outbox, spare: &mut BytesMut) -> String {
    spare.clear();
    assert_eq!(outbox.take(spare), Take::Data);
    outbox.written();
    let text = std::str::from_utf8(spare).unwrap();
    let start = text.find("\nack:").unwrap() + "\nack:".len();
    let end = start + text[start..].find('\n').unwrap();
    text[start..end].to_owned()
}

fn selective_backlog(c: &mut Criterion) {
    let mut group = c.benchmark_group("router_selective");
    for n in [0, 10_000] {
        let (mut router, outbox) = setup_selective(n);
        let frame = Frame::send("/queue/sel").header("x", "1");
        let mut spare = BytesMut::new();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("backlog", n), &n, |b, _| {
            b.iter(|| {
                router.handle(RouterCommand::Send {
                    conn: 0,
                    frame: frame.clone(),
                });
                let id = take_ack(&outbox, &mut spare);
                let ack = AckRef {
                    id,
                    subscription: None,
                    requeue: true,
                };
                router.handle(RouterCommand::Ack {
                    conn: 0,
                    ack,
                    receipt: None,
                });
            })
        });
    }
    group.finish();
}

criterion_group!(benches, publish, publish_wildcards, selective_backlog);
criterion_main!(benches);
