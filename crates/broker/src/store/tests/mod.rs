//! Tests of the store: the codec, recovery's rules, the lock, the writer,
//! reclamation, and a model check of encode → recover; measurements are
//! ignored tests (`cargo test --release -p stompkit-broker --lib store::tests::perf -- --ignored --nocapture`).

mod codec;
mod lock;
mod model;
mod perf;
mod reclaim;
mod recovery;
mod writer;

use super::*;
use std::time::{Duration, Instant};

/// A message with a couple of headers.
pub(super) fn msg(id: u64, queue: &str, body: &str) -> StoredMessage {
    let mut headers = Headers::with_capacity(2);
    headers.push("destination", queue);
    headers.push("x-note", "a:b\\c\nd é");
    StoredMessage {
        id,
        queue: queue.to_owned(),
        headers,
        body: Bytes::copy_from_slice(body.as_bytes()),
        expires: 0,
        deliveries: 0,
    }
}

pub(super) fn put(id: u64, queue: &str, body: &str) -> Op {
    Op::Put(msg(id, queue, body))
}

pub(super) fn sub(key: &str, destination: &str) -> StoredSubscription {
    StoredSubscription {
        key: key.to_owned(),
        destination: destination.to_owned(),
        selector: None,
    }
}

pub(super) fn unit(seq: u64, ops: Vec<Op>) -> Unit {
    Unit { seq, ops }
}

/// A segment holding `units`, as the writer lays them out.
pub(super) fn segment(units: &[Unit]) -> Vec<u8> {
    let mut out = super::codec::header().to_vec();
    for u in units {
        encode_unit(u, &mut out);
    }
    out
}

/// The state of a recovery, comparable.
#[derive(Debug, PartialEq)]
pub(super) struct State {
    pub queues: Vec<(String, Vec<StoredMessage>)>,
    pub subscriptions: Vec<StoredSubscription>,
    pub max_id: u64,
}

pub(super) fn state(r: &Recovered) -> State {
    State {
        queues: r.queues.clone(),
        subscriptions: r.subscriptions.clone(),
        max_id: r.max_id,
    }
}

/// Message ids by queue, for short assertions.
pub(super) fn ids(r: &Recovered) -> Vec<(String, Vec<u64>)> {
    r.queues
        .iter()
        .map(|(q, ms)| (q.clone(), ms.iter().map(|m| m.id).collect()))
        .collect()
}

/// Completions until `seq` is settled (durable or failed); panics after 20 s.
pub(super) fn settle(rx: &mut mpsc::UnboundedReceiver<Completion>, seq: u64) -> Vec<Completion> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(c) => {
                let settled = match &c {
                    Completion::Durable(s) => *s >= seq,
                    Completion::Failed { last, .. } => *last >= seq,
                };
                seen.push(c);
                if settled {
                    return seen;
                }
            }
            Err(mpsc::error::TryRecvError::Empty) => {
                assert!(
                    Instant::now() < deadline,
                    "no completion for {seq}: {seen:?}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("completions closed: {e}"),
        }
    }
}

/// Opens `dir` with small segments.
pub(super) fn open_small(
    dir: &Path,
    segment_bytes: u64,
) -> (Store, Recovered, mpsc::UnboundedReceiver<Completion>) {
    Store::open(
        dir,
        StoreOptions {
            segment_bytes,
            ..StoreOptions::default()
        },
    )
    .expect("open")
}

/// The segment files of `dir`, in order, with their sizes (a file the
/// writer deletes meanwhile is left out).
pub(super) fn segment_files(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir.join("log"))
        .expect("log dir")
        .filter_map(|e| {
            let e = e.expect("entry");
            let len = e.metadata().ok()?.len();
            Some((e.file_name().to_string_lossy().into_owned(), len))
        })
        .collect();
    files.sort();
    files
}
