//! Router dispatch cost: one publish to 1, 100 and 10,000 topic subscribers (and a
//! queue with 100 subscribers), in-process, encoding into real outboxes. Throughput
//! is per delivery, so criterion's "elem/s" is deliveries per second and the time
//! per element is the dispatch cost per delivery. Outboxes are drained after every
//! publish (what the writer tasks do), and that cost is included.
#![allow(missing_docs, clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use stompkit_broker::Metrics;
use stompkit_broker::internals::{Outbox, Router, RouterCommand, RouterConfig, Take};
use stompkit_frame::{AckMode, Frame, Version};

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

criterion_group!(benches, publish);
criterion_main!(benches);
