//! The durable store: persistent queue messages and durable subscriptions, on
//! disk under the data directory, as an append-only log of checksummed records.
//!
//! Owns everything below the router's [`Op`]s: the directory lock (`flock`, so a
//! second broker on the same directory refuses to start and one killed with
//! SIGKILL restarts without cleanup), the record format (length, CRC-32, payload;
//! one record per [`Unit`], so a unit is on disk whole or not at all), segment
//! files and their removal once nothing live is left in them, recovery at start
//! (a corrupt or truncated tail is skipped, reported in [`Recovered::skipped`] and
//! logged, and everything before it is kept), and the one writer thread doing
//! group commit: it takes every unit submitted while the previous `fdatasync`
//! ran, writes them in one call and syncs once, then reports the highest
//! durable [`Unit::seq`] ([`Completion::Durable`]) or the units it could not
//! write ([`Completion::Failed`]).
//!
//! It does not decide what is durable or when a RECEIPT may go: the router does
//! (`router/`), handing units over through the router task.
//!
//! The data directory holds `lock` (the `flock`ed file) and `log/`, whose
//! segments are named by 16 hexadecimal digits in write order
//! (`log/0000000000000001.seg`, …). Recovery reads them in name order.
//!
//! [`encode_unit`] and [`recover_from_segments`] are the pure core (no file, no
//! thread) that the writer and `open` use, and the session fuzz target drives.
//!
//! # On disk (`codec.rs`)
//! A segment starts with `STOMPKIT-LOG` and a format version byte (1); `open`
//! refuses a segment with anything else. Then records, one per unit:
//! `[u32 LE payload length][u32 LE CRC-32 of the payload][payload]`. A payload
//! is the unit's seq and op count (LEB128 varints) and its ops, each a tag byte
//! and its fields (integers as varints, text and bodies as a varint length and
//! the bytes). The writer adds two ops of its own: a checkpoint as the first
//! record of every segment it starts (the highest message id and subscription
//! counter so far, so deleting older segments forgets neither) and a
//! subscription copied forward with its creation ordinal.
//!
//! # Recovery (`recovery.rs`, rules in `index.rs`)
//! Segments are replayed in order. A Put inserts or replaces a message by id
//! (its delivery count included); Delivered adds one to a live message's count;
//! Remove deletes one; Subscribe creates a subscription or replaces one of the
//! same key (a replacement counts as a new creation: it moves to the end);
//! Unsubscribe removes the subscription and every live message of its queue so
//! far. Unknown ids and keys are ignored. A truncated, mismatching or
//! undecodable record ends its segment (the rest is skipped, reported and, by
//! `open`, cut off the file) and the next segment is read. Bodies are slices
//! of the segment buffers, copied only out of segments less than half live.
//!
//! # Writing and reclaiming space (`writer.rs`)
//! Each `open` starts a new segment; a segment is closed past
//! [`StoreOptions::segment_bytes`]. A failed write or sync is cut back off the
//! segment and reported; if the cut fails too the segment is left behind (its
//! torn tail is skipped at the next start) and a new one started. Segments are
//! deleted only oldest first, so each Remove and Unsubscribe stays on disk as
//! long as the records it cancels: the oldest goes once nothing in it is live.
//! When under a quarter of its bytes are live, or the whole log holds more than
//! twice its live bytes plus two segments, its live Puts (with their current
//! delivery count) and subscriptions are first copied to the current segment
//! as one unit. A segment holding only a checkpoint can go at any time.

mod codec;
#[cfg(test)]
mod faults;
mod files;
mod index;
mod recovery;
#[cfg(test)]
mod tests;
mod writer;

use bytes::Bytes;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::thread::{self, JoinHandle};
use stompkit_frame::Headers;
use tokio::sync::mpsc;

/// One durable message, as written and as recovered.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredMessage {
    /// Its number (`message-id`), unique for the store's lifetime and growing in
    /// publish order: recovery orders each queue by it.
    pub id: u64,
    /// Which queue holds it: a destination name (`/queue/orders`) or a durable
    /// subscription's key.
    pub queue: String,
    /// The SEND's headers.
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
    /// When it expires, in milliseconds since the Unix epoch; 0 = never.
    pub expires: u64,
    /// Deliveries so far (a [`Op::Delivered`] adds one).
    pub deliveries: u32,
}

/// One durable subscription (ActiveMQ's or RabbitMQ's convention).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSubscription {
    /// Its key, unique in the store (scope and name); also the queue key of its
    /// messages.
    pub key: String,
    /// The topic destination (a pattern, once wildcards exist).
    pub destination: String,
    /// Its `selector`, if any.
    pub selector: Option<String>,
}

/// One change to the durable state.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A message joins its queue.
    Put(StoredMessage),
    /// A message was delivered once more (written lazily; restores
    /// `redelivered` and the delivery count).
    Delivered {
        /// The message.
        id: u64,
    },
    /// A message left its queue (acknowledged, expired, dropped, dead-lettered).
    Remove {
        /// The message.
        id: u64,
    },
    /// A durable subscription was created (or replaced, same key).
    Subscribe(StoredSubscription),
    /// A durable subscription and its messages were removed.
    Unsubscribe {
        /// Its key.
        key: String,
    },
}

/// Operations written together: after a crash, all of them or none.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    /// Its number: units are submitted in increasing `seq` order.
    pub seq: u64,
    /// What it changes, in order.
    pub ops: Vec<Op>,
}

/// What the writer reports, in `seq` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Every unit up to and including `seq` is on disk.
    Durable(u64),
    /// Units `first..=last` could not be written (none of them is on disk; the
    /// store keeps serving later units).
    Failed {
        /// The first unit not written.
        first: u64,
        /// The last unit not written.
        last: u64,
        /// Why, in one line.
        error: String,
    },
}

/// A stretch of a segment that recovery skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The segment file.
    pub segment: PathBuf,
    /// Where the bad stretch starts.
    pub offset: u64,
    /// Its length in bytes (to the end of the segment).
    pub bytes: u64,
    /// Why: `truncated record` or `checksum mismatch` (or `bad record`; or
    /// `unknown segment format` from [`recover_from_segments`], where `open`
    /// refuses to start).
    pub reason: &'static str,
}

/// The durable state found at start.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Live messages by queue key, each queue in `id` order; queues in order of
    /// their first message's id.
    pub queues: Vec<(String, Vec<StoredMessage>)>,
    /// Live durable subscriptions, in creation order.
    pub subscriptions: Vec<StoredSubscription>,
    /// The highest message id ever written (0 if none): new ids start above it.
    pub max_id: u64,
    /// Corrupt or truncated stretches skipped (already logged).
    pub skipped: Vec<Skipped>,
}

/// Why the store could not open.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the directory's lock.
    #[error("data directory {0} is in use by another broker (its lock is held)")]
    Locked(PathBuf),
    /// Creating, locking or reading the directory failed.
    #[error("data directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Store tuning (defaults suit a broker).
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// A segment is closed and a new one started beyond this size (default 64 MiB).
    pub segment_bytes: u64,
    /// Where the writer records how long each batch's write and sync took
    /// (`stompkit_store_write_seconds`); none by default.
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_bytes: 64 * 1024 * 1024,
            metrics: None,
        }
    }
}

/// An open store: the directory is locked and the writer thread runs until the
/// store is dropped (it then writes what was submitted, syncs and stops).
pub struct Store {
    /// Units to the writer; `None` once dropping.
    units: Option<std_mpsc::Sender<Vec<Unit>>>,
    /// Where completions go (to report units the writer can no longer take).
    done: mpsc::UnboundedSender<Completion>,
    writer: Option<JoinHandle<()>>,
    /// The locked file: closed (unlocked) after the writer stopped.
    _lock: File,
    #[cfg(test)]
    faults: std::sync::Arc<faults::Faults>,
}

/// Appends `unit` to `out` as one record, exactly as the writer writes it.
///
/// A unit whose encoding would exceed 4 GiB cannot be a record: nothing is
/// appended (the writer reports such a unit [`Completion::Failed`]).
pub fn encode_unit(unit: &Unit, out: &mut Vec<u8>) {
    let _ = codec::encode_unit_sized(unit, out, &mut Vec::new());
}

/// A segment with no record yet: its header. [`encode_unit`] appends records
/// to it.
pub fn empty_segment() -> Vec<u8> {
    codec::header().to_vec()
}

/// Recovery over segment contents (in write order), as `open` does over the
/// files (named `segment-<index>` in [`Skipped::segment`]).
///
/// Each segment is a header (`STOMPKIT-LOG` and the format version byte)
/// followed by records as [`encode_unit`] writes them. A segment with another
/// header is skipped whole (reason `unknown segment format`); `open` refuses
/// to start on one instead.
pub fn recover_from_segments(segments: &[&[u8]]) -> Recovered {
    let segments: Vec<recovery::Segment> = segments
        .iter()
        .enumerate()
        .map(|(i, data)| recovery::Segment {
            number: i as u64,
            name: PathBuf::from(format!("segment-{i}")),
            data: Bytes::copy_from_slice(data),
        })
        .collect();
    recovery::recover(&segments).recovered
}

impl Store {
    /// Locks `dir` (creating it if missing), recovers what it holds and starts
    /// the writer. Completions arrive on the returned receiver.
    ///
    /// A corrupt or truncated stretch is cut off its segment file (so it is
    /// reported once); new units go to a new segment. It reads the whole log:
    /// call it before the runtime starts or from `spawn_blocking`.
    pub fn open(
        dir: &Path,
        options: StoreOptions,
    ) -> Result<(Store, Recovered, mpsc::UnboundedReceiver<Completion>), StoreError> {
        let lock = files::lock(dir)?;
        let log = dir.join(files::LOG);
        let mut replay = recovery::Replay::default();
        let segments = files::load(&log, |seg, decoded| replay.segment(seg, decoded))?;
        let outcome = replay.finish();
        files::cut(&segments, &outcome.valid)?;
        let next_number = segments.last().map_or(1, |s| s.number.saturating_add(1));
        let closed = segments
            .iter()
            .zip(outcome.valid.iter().zip(&outcome.bare))
            .filter(|(_, (len, _))| **len > 0)
            .map(|(s, (len, bare))| writer::Closed {
                number: s.number,
                path: s.name.clone(),
                size: *len,
                bare: *bare,
            })
            .collect();
        drop(segments);
        let (done, completions) = mpsc::unbounded_channel();
        #[cfg(test)]
        let faults = std::sync::Arc::new(faults::Faults::default());
        let writer = writer::Writer::start(writer::Start {
            log: log.clone(),
            segment_bytes: options.segment_bytes,
            metrics: options.metrics,
            index: outcome.index,
            closed,
            next_number,
            done: done.clone(),
            #[cfg(test)]
            faults: faults.clone(),
        })
        .map_err(|source| StoreError::Io {
            path: log.clone(),
            source,
        })?;
        let (units, rx) = std_mpsc::channel();
        let handle = thread::Builder::new()
            .name("stompkit-store".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|source| StoreError::Io { path: log, source })?;
        let store = Store {
            units: Some(units),
            done,
            writer: Some(handle),
            _lock: lock,
            #[cfg(test)]
            faults,
        };
        Ok((store, outcome.recovered, completions))
    }

    /// Hands units to the writer (never blocks; `seq` must grow).
    pub fn submit(&self, units: Vec<Unit>) {
        let (Some(first), Some(last)) = (units.first(), units.last()) else {
            return;
        };
        let (first, last) = (first.seq, last.seq);
        let sent = self.units.as_ref().is_some_and(|tx| tx.send(units).is_ok());
        if !sent {
            let _ = self.done.send(Completion::Failed {
                first,
                last,
                error: "the store's writer has stopped".to_owned(),
            });
        }
    }
}

impl Drop for Store {
    /// Lets the writer write and sync everything submitted, waits for it, then
    /// unlocks the directory.
    fn drop(&mut self) {
        drop(self.units.take());
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!("store: the writer thread panicked");
        }
    }
}
