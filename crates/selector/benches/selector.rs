//! Selector evaluation per message: typical selectors against a realistic
//! STOMP header set (the headers a SEND from an order service carries).
//!
//! Run: `cargo bench -p stompkit-selector --bench selector`. Each row is one
//! `Selector::matches` call (ns per message); parsing is done once, outside.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use stompkit_selector::Selector;

/// A realistic message: broker headers, content headers, a few properties.
const HEADERS: [(&str, &str); 12] = [
    ("destination", "/queue/orders"),
    ("message-id", "1234567"),
    ("content-type", "application/json"),
    ("content-length", "512"),
    ("persistent", "true"),
    ("priority", "5"),
    ("timestamp", "1765000000000"),
    ("correlation-id", "c0ffee-42"),
    ("type", "order.created"),
    ("region", "eu-west"),
    ("amount", "129.90"),
    ("n", "7"),
];

fn lookup(name: &str) -> Option<&'static str> {
    HEADERS.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

const SELECTORS: [(&str, &str); 5] = [
    ("equality", "region = 'eu-west'"),
    (
        "numeric_and_in",
        "n > 3 AND region IN ('eu-west', 'us-east', 'ap-south')",
    ),
    ("like", "type LIKE 'order.%'"),
    (
        "jms_names",
        "JMSPriority >= 4 AND JMSDeliveryMode = 'PERSISTENT'",
    ),
    (
        "compound",
        "(amount BETWEEN 100 AND 500 OR region = 'us-east') AND NOT (type LIKE '%.deleted') AND missing IS NULL",
    ),
];

fn eval(c: &mut Criterion) {
    let mut group = c.benchmark_group("selector_eval");
    for (name, text) in SELECTORS {
        let selector = Selector::parse(text).expect("bench selector parses");
        assert!(
            selector.matches(lookup),
            "{name} must match the bench message"
        );
        group.bench_function(name, |b| b.iter(|| black_box(&selector).matches(lookup)));
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let (_, text) = SELECTORS[4];
    c.bench_function("selector_parse/compound", |b| {
        b.iter(|| Selector::parse(black_box(text)))
    });
}

criterion_group!(benches, eval, parse);
criterion_main!(benches);
