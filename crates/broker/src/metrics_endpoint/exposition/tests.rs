use super::*;
use crate::metrics::{DropReason, ErrorReason};
use std::time::Duration;

use super::check;

fn queue(name: &str, ready: usize, unacked: usize, consumers: usize) -> QueueInfo {
    QueueInfo {
        name: name.into(),
        ready,
        unacked,
        consumers,
        durable: false,
        bytes: ready * 10,
    }
}

fn sample() -> Sample {
    Sample {
        resident_bytes: Some(5 << 20),
        open_fds: Some(12),
        max_fds: Some(1024),
    }
}

#[test]
fn the_checker_refuses_what_it_should() {
    check::self_check();
}

#[test]
fn every_family_is_valid_and_holds_its_value() {
    let m = Arc::new(Metrics::default());
    Metrics::add(&m.messages_in, 3);
    Metrics::add(&m.connections, 2);
    Metrics::add(&m.connections_total, 5);
    Metrics::add(&m.auth_failures, 1);
    for _ in 0..4 {
        m.count_error(ErrorReason::SlowConsumer);
    }
    Metrics::add(&m.bytes_in, 100);
    m.count_dropped(DropReason::NoCredit, 7);
    m.count_error(ErrorReason::ConnectionLimit);
    m.observe_store_write(Duration::from_millis(3));
    let queues = vec![
        queue("/queue/a\"b", 2, 1, 3),
        queue("/queue/orders", 0, 0, 0),
    ];
    let text = render(m, queues, sample());
    let e = check::parse(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
    let v = |name: &str, labels: &[(&str, &str)]| e.value(name, labels);
    assert_eq!(v("stompkit_build_info", &[("version", VERSION)]), Some(1.0));
    assert_eq!(v("stompkit_connections", &[]), Some(2.0));
    assert_eq!(v("stompkit_connections_accepted_total", &[]), Some(5.0));
    assert_eq!(v("stompkit_messages_published_total", &[]), Some(3.0));
    assert_eq!(v("stompkit_messages_delivered_total", &[]), Some(0.0));
    assert_eq!(v("stompkit_received_bytes_total", &[]), Some(100.0));
    assert_eq!(v("stompkit_auth_failures_total", &[]), Some(1.0));
    assert_eq!(
        v("stompkit_slow_consumer_disconnects_total", &[]),
        Some(4.0)
    );
    let dropped = "stompkit_messages_dropped_total";
    assert_eq!(v(dropped, &[("reason", "no_credit")]), Some(7.0));
    assert_eq!(v(dropped, &[("reason", "slow_consumer")]), Some(0.0));
    let errors = "stompkit_errors_total";
    assert_eq!(v(errors, &[("reason", "connection_limit")]), Some(1.0));
    assert_eq!(v(errors, &[("reason", "protocol")]), Some(0.0));
    assert_eq!(v(errors, &[("reason", "slow_consumer")]), Some(4.0));
    let a = [("queue", "a\"b")];
    assert_eq!(v("stompkit_queue_messages_ready", &a), Some(2.0));
    assert_eq!(v("stompkit_queue_messages_unacked", &a), Some(1.0));
    assert_eq!(v("stompkit_queue_consumers", &a), Some(3.0));
    assert_eq!(v("stompkit_queue_bytes", &a), Some(20.0));
    assert_eq!(
        v("stompkit_queue_messages_ready", &[("queue", "orders")]),
        Some(0.0)
    );
    assert_eq!(v("stompkit_store_write_seconds_count", &[]), Some(1.0));
    assert_eq!(
        v("stompkit_store_write_seconds_bucket", &[("le", "0.004")]),
        Some(1.0)
    );
    assert_eq!(
        v("stompkit_store_write_seconds_bucket", &[("le", "0.002")]),
        Some(0.0)
    );
    assert_eq!(
        v("process_resident_memory_bytes", &[]),
        Some(5.0 * 1048576.0)
    );
    assert_eq!(v("process_open_fds", &[]), Some(12.0));
    assert_eq!(v("process_max_fds", &[]), Some(1024.0));
    assert!(
        text.contains("stompkit_queue_messages_ready{queue=\"a\\\"b\"} 2\n"),
        "{text}"
    );
}

#[test]
fn types_are_the_conventional_ones() {
    let text = render(Arc::new(Metrics::default()), Vec::new(), sample());
    let e = check::parse(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
    for (family, kind) in [
        ("stompkit_build_info", "gauge"),
        ("stompkit_connections", "gauge"),
        ("stompkit_subscriptions", "gauge"),
        ("stompkit_connections_accepted_total", "counter"),
        ("stompkit_messages_dropped_total", "counter"),
        ("stompkit_messages_expired_total", "counter"),
        ("stompkit_messages_dead_lettered_total", "counter"),
        ("stompkit_errors_total", "counter"),
        ("stompkit_queue_messages_ready", "gauge"),
        ("stompkit_queue_bytes", "gauge"),
        ("stompkit_store_write_seconds", "histogram"),
        ("process_resident_memory_bytes", "gauge"),
    ] {
        assert_eq!(e.kind(family), Some(kind), "{family}\n{text}");
    }
    // Every family is a stompkit_ or process_ one, and the old names are gone.
    for name in e.families.keys() {
        assert!(
            name.starts_with("stompkit_") || name.starts_with("process_"),
            "{name}"
        );
    }
    for old in [
        "stompkit_queue_depth",
        "stompkit_queue_subscribers",
        "stompkit_dropped_total",
        "stompkit_connections_total",
        "stompkit_reply_messages_dropped_total",
    ] {
        assert!(e.kind(old).is_none(), "{old} is still there");
    }
    // With no queue, the queue families are declared with no sample.
    assert!(e.families["stompkit_queue_consumers"].samples.is_empty());
}

#[test]
fn process_families_are_left_out_when_unknown() {
    let text = render(Arc::new(Metrics::default()), Vec::new(), Sample::default());
    let e = check::parse(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
    assert!(
        !e.families.keys().any(|f| f.starts_with("process_")),
        "{text}"
    );
}
