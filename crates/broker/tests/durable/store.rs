//! The data directory: where it is, its lock, recovery from a bad tail, and
//! what a failing write does.

use super::harness::*;
use std::collections::BTreeSet;
use std::path::Path;
use stompkit_frame::Command;

/// Sends `body` persistent to `queue` with a receipt, crashes the broker,
/// restarts it with `again` and returns what the queue holds then.
async fn survives(broker: BrokerProcess, again: Launch, queue: &str, body: &str) -> Vec<String> {
    let mut conn = Conn::connect(broker.addr).await;
    conn.request(persistent(queue, body, &[])).await;
    broker.crash();
    let broker = again.start();
    bodies(&drain(broker.addr, queue).await)
}

/// `dir` holds the lock file and at least one segment.
fn assert_store_in(dir: &Path) {
    assert!(dir.join("lock").is_file(), "no {}/lock", dir.display());
    assert!(
        !segments(dir).is_empty(),
        "no segment in {}/log",
        dir.display()
    );
}

#[tokio::test]
async fn the_store_is_in_stompkit_data_by_default_or_where_flag_env_or_config_say() {
    const QUEUE: &str = "/queue/where";
    let scratch = Scratch::new("where");

    // Default: ./stompkit-data, relative to the working directory.
    let cwd = scratch.root().join("default");
    std::fs::create_dir(&cwd).unwrap();
    let broker = scratch.bare().cwd(&cwd).start();
    let got = survives(broker, scratch.bare().cwd(&cwd), QUEUE, "default").await;
    assert_eq!(got, ["default"]);
    assert_store_in(&cwd.join("stompkit-data"));

    // --data-dir
    let broker = scratch.start();
    let got = survives(broker, scratch.launch(), QUEUE, "flag").await;
    assert_eq!(got, ["flag"]);
    assert_store_in(&scratch.data());

    // STOMPKIT_STORE_DIR, from another working directory: nothing lands there.
    let env_dir = scratch.root().join("from-env");
    let elsewhere = scratch.root().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let launch = || {
        scratch
            .bare()
            .cwd(&elsewhere)
            .env("STOMPKIT_STORE_DIR", &env_dir)
    };
    let got = survives(launch().start(), launch(), QUEUE, "env").await;
    assert_eq!(got, ["env"]);
    assert_store_in(&env_dir);
    assert!(!elsewhere.join("stompkit-data").exists());

    // [store] dir in the config file.
    let config_dir = scratch.root().join("from-config");
    let config = scratch.root().join("dir.toml");
    let dir_line = format!("[store]\ndir = {:?}\n", config_dir.display().to_string());
    std::fs::write(&config, dir_line).unwrap();
    let launch = || scratch.bare().cwd(&elsewhere).arg("--config").arg(&config);
    let got = survives(launch().start(), launch(), QUEUE, "config").await;
    assert_eq!(got, ["config"]);
    assert_store_in(&config_dir);
    assert!(!elsewhere.join("stompkit-data").exists());
}

#[tokio::test]
async fn in_memory_stores_nothing() {
    const QUEUE: &str = "/queue/in-memory";
    let scratch = Scratch::new("in-memory");
    let cwd = scratch.root().join("cwd");
    std::fs::create_dir(&cwd).unwrap();

    let launch = || scratch.bare().cwd(&cwd).arg("--in-memory");
    let broker = launch().start();
    // Receipted and persistent, and still lost with the process.
    let got = survives(broker, launch(), QUEUE, "lost").await;
    assert!(got.is_empty(), "{got:?}");

    let config = scratch.root().join("in-memory.toml");
    std::fs::write(&config, "[store]\nin_memory = true\n").unwrap();
    let launch = || scratch.bare().cwd(&cwd).arg("--config").arg(&config);
    let got = survives(launch().start(), launch(), QUEUE, "lost too").await;
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "an in-memory broker wrote into its working directory"
    );
}

#[tokio::test]
async fn a_second_broker_on_the_same_data_dir_refuses_to_start_until_the_first_is_killed() {
    const QUEUE: &str = "/queue/locked";
    let scratch = Scratch::new("lock");
    let mut first = scratch.start();
    let mut conn = Conn::connect(first.addr).await;
    conn.request(persistent(QUEUE, "kept", &[])).await;

    let (status, stderr) = scratch.launch().log_level("error").run_to_exit();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is in use by another broker"), "{stderr}");

    // The first one is undisturbed.
    first.assert_running();
    conn.request(persistent(QUEUE, "kept too", &[])).await;
    drop(conn);
    first.crash();
    // No cleanup needed after a SIGKILL: the lock died with the process.
    let broker = scratch.start();
    assert_eq!(
        bodies(&drain(broker.addr, QUEUE).await),
        ["kept", "kept too"]
    );
}

/// How the tail of the last segment is damaged.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// One byte of the last record's payload flipped: its checksum fails.
    FlipByte,
    /// The file cut in the middle of the last record's payload.
    Truncate,
    /// Garbage appended after the last (good) record.
    AppendGarbage,
}

#[tokio::test]
async fn a_corrupt_or_truncated_tail_is_skipped_with_a_warning() {
    for damage in [Damage::FlipByte, Damage::Truncate, Damage::AppendGarbage] {
        damaged_tail(damage).await;
    }
}

async fn damaged_tail(damage: Damage) {
    const QUEUE: &str = "/queue/tail";
    const AFTER: &str = "/queue/tail-after";
    const N: usize = 20;
    let scratch = Scratch::new("tail");
    let broker = scratch.start();
    let mut conn = Conn::connect(broker.addr).await;
    // One at a time: each SEND is its own record, the last one last.
    for i in 0..N {
        conn.request(persistent(QUEUE, &format!("tail-body-{i:03}"), &[]))
            .await;
    }
    broker.crash();

    let segment = scratch.segments().pop().expect("a segment");
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = std::fs::read(&segment).unwrap();
    let (start, len) = last_record(&bytes);
    assert!(
        contains(
            &bytes[start + 8..],
            format!("tail-body-{:03}", N - 1).as_bytes()
        ),
        "the last record of {name} is not the last SEND"
    );
    let (skipped, kept) = match damage {
        Damage::FlipByte => {
            bytes[start + 8 + len / 2] ^= 0xFF;
            ((bytes.len() - start) as u64, N - 1)
        }
        Damage::Truncate => {
            bytes.truncate(start + 8 + len / 2);
            ((8 + len / 2) as u64, N - 1)
        }
        Damage::AppendGarbage => {
            bytes.extend_from_slice(&[0xA5; 37]);
            (37, N)
        }
    };
    std::fs::write(&segment, &bytes).unwrap();

    let broker = scratch.start();
    let want: Vec<String> = (0..kept).map(|i| format!("tail-body-{i:03}")).collect();
    assert_eq!(bodies(&drain(broker.addr, QUEUE).await), want, "{damage:?}");
    let log = broker.log();
    assert!(
        line_with(&log, &name, skipped),
        "{damage:?}: no warning naming {name} and {skipped} bytes skipped in:\n{log}"
    );

    // What is written after the damaged stretch survives the next crash too
    // (recovery must not leave the bad bytes in front of new records). Another
    // queue: the drain above acknowledged without a receipt, lazily.
    let mut conn = Conn::connect(broker.addr).await;
    conn.request(persistent(AFTER, "after-recovery", &[])).await;
    broker.crash();
    let broker = scratch.start();
    assert_eq!(
        bodies(&drain(broker.addr, AFTER).await),
        ["after-recovery"],
        "{damage:?}"
    );
}

/// A write that fails (EFBIG under `RLIMIT_FSIZE`): the SEND gets an ERROR
/// saying it is not durable, what was receipted before is kept, and the broker
/// serves on.
#[tokio::test]
async fn a_failing_write_refuses_the_send_and_keeps_what_was_receipted() {
    const QUEUE: &str = "/queue/disk-full";
    // Room for some 1 KiB messages, then every write past 64 KiB fails.
    const LIMIT: u64 = 64 * 1024;
    const TRIES: usize = 400;
    let scratch = Scratch::new("full");
    let mut broker = scratch.launch().file_size_limit(LIMIT).start();
    let mut conn = Conn::connect(broker.addr).await;
    let filler = "x".repeat(1000);
    let mut receipted = BTreeSet::new();
    let mut refused = None;
    for i in 0..TRIES {
        let body = format!("full-{i}-{filler}");
        let (answer, before) = conn.request_or_error(persistent(QUEUE, &body, &[])).await;
        assert!(before.is_empty(), "{before:?}");
        if answer.command == Command::Error {
            let message = answer.message().unwrap_or_default();
            assert!(message.contains("durable"), "{answer:?}");
            refused = Some(i);
            break;
        }
        receipted.insert(i);
    }
    let refused = refused.unwrap_or_else(|| {
        panic!(
            "{TRIES} KiB sent under a {LIMIT}-byte file-size limit and no SEND refused; log:\n{}",
            broker.log()
        )
    });
    assert!(!receipted.is_empty(), "not even the first SEND was stored");
    println!("{} receipted, SEND {refused} refused", receipted.len());

    // The broker serves on: a new connection, a topic round trip.
    broker.assert_running();
    let mut other = Conn::connect(broker.addr).await;
    other
        .subscribe("/topic/still-alive", "alive", "auto", &[])
        .await;
    let got = other
        .request(transient("/topic/still-alive", "pong", &[]))
        .await;
    let got = if got.is_empty() {
        other.messages(1).await
    } else {
        got
    };
    assert_eq!(bodies(&got), ["pong"]);
    broker.assert_running();
    broker.crash();

    // Restarted without the limit: every receipted message, in order, once.
    let broker = scratch.start();
    let back = drain(broker.addr, QUEUE).await;
    let indices: Vec<usize> = back
        .iter()
        .map(|m| {
            let text = body(m);
            let rest = text.strip_prefix("full-").unwrap();
            rest.split('-').next().unwrap().parse().unwrap()
        })
        .collect();
    for pair in indices.windows(2) {
        assert!(pair[0] < pair[1], "{indices:?}");
    }
    let present: BTreeSet<usize> = indices.iter().copied().collect();
    assert!(
        receipted.is_subset(&present),
        "receipted {receipted:?}, back {indices:?}"
    );
    assert!(indices.iter().all(|&i| i <= refused), "{indices:?}");
}

/// The record finder and the log matcher, on data made here (they decide what
/// the corrupt-tail test damages and looks for).
#[test]
fn the_helpers_find_the_last_record_and_the_warning() {
    assert_eq!(crc32_ieee(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    for crc in [crc32_ieee, crc32c] {
        let mut segment = b"SEGHEAD\x01\x00\x00\x00\x00".to_vec();
        let mut starts = Vec::new();
        for payload in [&b"first record"[..], b"", b"the last one\0\0\0\0\0\0\0\0"] {
            starts.push(segment.len());
            segment.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            segment.extend_from_slice(&crc(payload).to_le_bytes());
            segment.extend_from_slice(payload);
        }
        assert_eq!(last_record(&segment), (starts[2], 20));
    }
    let log = "WARN recovery: log/0000000000000002.seg: skipped 37 bytes (truncated record)";
    assert!(line_with(log, "0000000000000002.seg", 37));
    assert!(!line_with(log, "0000000000000002.seg", 3));
    assert!(!line_with(log, "0000000000000002.seg", 7));
    assert!(!line_with(log, "0000000000000001.seg", 37));
}
