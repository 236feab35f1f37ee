//! The writer thread: group commit, segment files and space reclamation.
//!
//! It blocks for the first submitted units, takes every other unit already
//! queued, encodes them all into one buffer, writes it with one call to the
//! current segment and syncs once (`fdatasync`), then reports the highest
//! durable seq. A failed write or sync is rolled back (the segment is cut back
//! to its length before the batch) and reported as failed; if even that fails
//! the segment is left behind and the next batch starts a new one.
//!
//! Reclamation deletes segments only oldest first, so every Remove and
//! Unsubscribe stays on disk as long as the records it cancels. The oldest
//! segment goes when nothing in it is live; when little of it is live (under a
//! quarter of its bytes), or the whole log is mostly dead, its live Puts (with
//! their current delivery count) and subscriptions (with their creation
//! ordinal) are first copied forward as one unit.

use super::codec::{self, DiskOp, HeaderCheck, Next};
use super::index::Index;
use super::{Completion, Op, StoredMessage, Unit};
use crate::metrics::Metrics;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// A batch stops taking more queued units beyond this many encoded bytes.
const MAX_BATCH_BYTES: usize = 16 << 20;
/// The batch buffer keeps at most this capacity between batches.
const KEEP_CAPACITY: usize = 1 << 20;

/// The file of a segment: where a batch goes, and how a failed one is undone.
pub(super) trait LogFile {
    /// Writes all of `buf` at the current position.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes the written data durable.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts (or extends) the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Moves the write position to `pos`.
    fn seek_to(&mut self, pos: u64) -> io::Result<()>;
}

impl LogFile for File {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(self, buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.seek(SeekFrom::Start(pos)).map(|_| ())
    }
}

/// Appends `buf` and syncs.
pub(super) fn write_synced<F: LogFile>(file: &mut F, buf: &[u8]) -> io::Result<()> {
    file.write_all(buf)?;
    file.sync_data()
}

/// Undoes a failed append: back to `len` bytes, durably, positioned at the end.
pub(super) fn roll_back<F: LogFile>(file: &mut F, len: u64) -> io::Result<()> {
    file.set_len(len)?;
    file.seek_to(len)?;
    file.sync_data()
}

#[cfg(not(test))]
type SegFile = File;
#[cfg(test)]
type SegFile = super::faults::Faulty;

/// The segment being appended to.
struct Current {
    number: u64,
    path: PathBuf,
    file: SegFile,
    /// Bytes on disk.
    size: u64,
    /// Bytes of its header and checkpoint.
    base: u64,
}

/// A full segment, waiting for its contents to die.
#[derive(Debug)]
pub(super) struct Closed {
    /// Its number.
    pub number: u64,
    /// Its file.
    pub path: PathBuf,
    /// Its length.
    pub size: u64,
    /// Whether it holds nothing but a checkpoint: it cancels nothing, so it
    /// can go before older segments do.
    pub bare: bool,
}

/// The path of segment `number` in `log`.
pub(super) fn segment_path(log: &Path, number: u64) -> PathBuf {
    log.join(format!("{number:016x}.seg"))
}

/// Makes the directory's entries (new and deleted files) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Units taken for one write.
#[derive(Default)]
struct Batch {
    units: Vec<Unit>,
}

impl Batch {
    fn seqs(&self) -> Option<(u64, u64)> {
        Some((self.units.first()?.seq, self.units.last()?.seq))
    }
}

/// The writer: owns the segment files.
pub(super) struct Writer {
    log: PathBuf,
    segment_bytes: u64,
    /// Where each batch's write-and-sync time is recorded.
    metrics: Option<Arc<Metrics>>,
    index: Index,
    closed: VecDeque<Closed>,
    current: Option<Current>,
    next_number: u64,
    done: UnboundedSender<Completion>,
    /// The batch being encoded, and each op's encoded size.
    buf: Vec<u8>,
    sizes: Vec<u32>,
    /// A segment reclamation could not handle (warned once).
    stuck: Option<u64>,
    #[cfg(test)]
    faults: std::sync::Arc<super::faults::Faults>,
}

/// Where the writer starts from.
pub(super) struct Start {
    /// The log directory.
    pub log: PathBuf,
    /// Segment size limit.
    pub segment_bytes: u64,
    /// Where each batch's write-and-sync time is recorded.
    pub metrics: Option<Arc<Metrics>>,
    /// The recovered state.
    pub index: Index,
    /// The recovered segments, oldest first.
    pub closed: VecDeque<Closed>,
    /// The number of the segment to start.
    pub next_number: u64,
    /// Where completions go.
    pub done: UnboundedSender<Completion>,
    /// Injected failures.
    #[cfg(test)]
    pub faults: std::sync::Arc<super::faults::Faults>,
}

impl Writer {
    /// Starts a fresh segment for new appends (old ones are never appended to).
    pub fn start(start: Start) -> io::Result<Writer> {
        let mut writer = Writer {
            log: start.log,
            segment_bytes: start.segment_bytes,
            metrics: start.metrics,
            index: start.index,
            closed: start.closed,
            current: None,
            next_number: start.next_number,
            done: start.done,
            buf: Vec::new(),
            sizes: Vec::new(),
            stuck: None,
            #[cfg(test)]
            faults: start.faults,
        };
        writer.rotate()?;
        Ok(writer)
    }

    /// Serves until every sender is gone and everything submitted is written.
    pub fn run(mut self, rx: Receiver<Vec<Unit>>) {
        self.reclaim();
        while let Ok(units) = rx.recv() {
            let mut batch = Batch::default();
            self.take(&mut batch, units);
            while self.buf.len() < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(more) => self.take(&mut batch, more),
                    Err(_) => break,
                }
            }
            self.commit(batch);
            self.reclaim();
        }
    }

    /// Encodes `units` into the batch. A unit too large to encode is reported
    /// failed on its own, after the batch so far is committed.
    fn take(&mut self, batch: &mut Batch, units: Vec<Unit>) {
        for unit in units {
            if codec::encode_unit_sized(&unit, &mut self.buf, &mut self.sizes).is_ok() {
                batch.units.push(unit);
                continue;
            }
            self.commit(std::mem::take(batch));
            let _ = self.done.send(Completion::Failed {
                first: unit.seq,
                last: unit.seq,
                error: "unit larger than 4 GiB".to_owned(),
            });
        }
    }

    /// Writes the encoded batch and reports it.
    fn commit(&mut self, batch: Batch) {
        let Some((first, last)) = batch.seqs() else {
            return;
        };
        let completion = match self.append() {
            Ok(seg) => {
                self.track(batch.units, seg);
                Completion::Durable(last)
            }
            Err(error) => Completion::Failed { first, last, error },
        };
        self.clear_buffers();
        let _ = self.done.send(completion);
    }

    /// Empties the batch buffers, giving back the memory of a large batch.
    fn clear_buffers(&mut self) {
        self.buf.clear();
        self.sizes.clear();
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf.shrink_to(KEEP_CAPACITY);
        }
    }

    /// Applies written units to the live state.
    fn track(&mut self, units: Vec<Unit>, seg: u64) {
        let mut sizes = std::mem::take(&mut self.sizes).into_iter();
        for op in units.into_iter().flat_map(|u| u.ops) {
            let at = (seg, sizes.next().unwrap_or(0));
            match op {
                Op::Put(m) => {
                    self.index.put(m.id, &m.queue, at, m.deliveries, 0);
                }
                Op::Delivered { id } => {
                    self.index.delivered(id);
                }
                Op::Remove { id } => {
                    self.index.remove(id);
                }
                Op::Subscribe(s) => self.index.subscribe(s, None, at),
                Op::Unsubscribe { key } => self.index.unsubscribe(&key, |_| {}),
            }
        }
    }

    /// Appends `self.buf` to the current segment (starting one if needed) and
    /// syncs; returns the segment's number, or why it failed (rolled back).
    fn append(&mut self) -> Result<u64, String> {
        let len = self.buf.len() as u64;
        self.make_room(len)
            .map_err(|e| format!("cannot start a log segment: {e}"))?;
        let Some(cur) = self.current.as_mut() else {
            return Err("no log segment".to_owned());
        };
        let before = cur.size;
        let started = Instant::now();
        let written = write_synced(&mut cur.file, &self.buf);
        if let Some(metrics) = &self.metrics {
            metrics.observe_store_write(started.elapsed());
        }
        match written {
            Ok(()) => {
                cur.size += len;
                Ok(cur.number)
            }
            Err(e) => {
                let error = format!("writing {}: {e}", cur.path.display());
                if let Err(undo) = roll_back(&mut cur.file, before) {
                    tracing::warn!(segment = %cur.path.display(), error = %undo,
                        "store: cannot cut a failed write back; starting a new segment");
                    self.abandon(before + len);
                }
                Err(error)
            }
        }
    }

    /// Starts a new segment if there is none, or the current one has records
    /// and `len` more bytes would take it past the limit.
    fn make_room(&mut self, len: u64) -> io::Result<()> {
        match &self.current {
            Some(c) if c.size == c.base || c.size + len <= self.segment_bytes => Ok(()),
            _ => self.rotate(),
        }
    }

    /// Leaves the current segment behind (its tail may hold a partial write).
    fn abandon(&mut self, size: u64) {
        if let Some(old) = self.current.take() {
            let size = fs::metadata(&old.path).map_or(size, |m| m.len());
            self.closed.push_back(Closed {
                number: old.number,
                path: old.path,
                size,
                bare: false,
            });
        }
    }

    /// Starts a new segment: header and checkpoint, synced, directory synced.
    fn rotate(&mut self) -> io::Result<()> {
        let number = self.next_number;
        self.next_number += 1;
        let path = segment_path(&self.log, number);
        let mut head = codec::header().to_vec();
        let start = codec::begin_record(&mut head, 0, 1);
        codec::encode_checkpoint(self.index.max_id(), self.index.next_ordinal(), &mut head);
        codec::finish_record(&mut head, start)
            .map_err(|_| io::Error::other("checkpoint too large"))?;
        let file = create_segment(&path, &head, &self.log)?;
        if let Some(old) = self.current.take() {
            self.closed.push_back(Closed {
                number: old.number,
                path: old.path,
                size: old.size,
                bare: old.size == old.base,
            });
        }
        self.current = Some(Current {
            number,
            path,
            file: self.wrap(file),
            size: head.len() as u64,
            base: head.len() as u64,
        });
        Ok(())
    }

    #[cfg(not(test))]
    fn wrap(&self, file: File) -> SegFile {
        file
    }

    #[cfg(test)]
    fn wrap(&self, file: File) -> SegFile {
        super::faults::Faulty::new(file, self.faults.clone())
    }

    /// Deletes dead segments from the oldest on, copying forward at most one
    /// mostly dead one per call.
    fn reclaim(&mut self) {
        let mut deleted = self.delete_bare();
        let mut copied = false;
        while let Some(oldest) = self.closed.front() {
            let (number, size) = (oldest.number, oldest.size);
            let live = self.index.seg_live(number);
            if live.count == 0 {
                if !self.delete_oldest() {
                    break;
                }
                deleted = true;
                continue;
            }
            if copied || !self.worth_copying(live.bytes, size) {
                break;
            }
            copied = true;
            if let Err(e) = self.copy_forward(live.count) {
                self.warn_stuck(number, &e);
                break;
            }
        }
        if deleted && let Err(e) = sync_dir(&self.log) {
            tracing::warn!(dir = %self.log.display(), error = %e, "store: cannot sync the log directory");
        }
    }

    /// Whether the oldest segment (`live` of `size` bytes live) is to be copied
    /// forward: it is mostly dead, or the whole log is.
    fn worth_copying(&self, live: u64, size: u64) -> bool {
        let total: u64 = self.closed.iter().map(|c| c.size).sum::<u64>()
            + self.current.as_ref().map_or(0, |c| c.size);
        let total_live = self.index.total_live();
        live.saturating_mul(4) < size
            || total > total_live.saturating_mul(2) + self.segment_bytes.saturating_mul(2)
    }

    /// Deletes the segments holding nothing but a checkpoint (one per start
    /// without writes), wherever they are: a later checkpoint covers theirs.
    fn delete_bare(&mut self) -> bool {
        let mut deleted = false;
        let mut kept = VecDeque::with_capacity(self.closed.len());
        for seg in std::mem::take(&mut self.closed) {
            if seg.bare && self.remove_segment(&seg) {
                deleted = true;
            } else {
                kept.push_back(seg);
            }
        }
        self.closed = kept;
        deleted
    }

    /// Deletes a segment's file and forgets it; false if it could not be.
    fn remove_segment(&mut self, seg: &Closed) -> bool {
        match fs::remove_file(&seg.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                self.warn_stuck(seg.number, &format!("cannot delete: {e}"));
                return false;
            }
        }
        self.index.forget_seg(seg.number);
        true
    }

    /// Deletes the oldest segment; false if it could not be.
    fn delete_oldest(&mut self) -> bool {
        let Some(oldest) = self.closed.pop_front() else {
            return false;
        };
        if self.remove_segment(&oldest) {
            return true;
        }
        self.closed.push_front(oldest);
        false
    }

    /// Copies the oldest segment's `count` live messages and subscriptions
    /// to the current segment as one unit (its records then are all dead).
    fn copy_forward(&mut self, count: u64) -> Result<(), String> {
        let Some(oldest) = self.closed.front() else {
            return Ok(());
        };
        let number = oldest.number;
        let data = fs::read(&oldest.path)
            .map_err(|e| format!("cannot read {}: {e}", oldest.path.display()))?;
        let messages = self.live_puts(number, &Bytes::from(data));
        let subs = self.index.subscriptions(Some(number));
        if (messages.len() + subs.len()) as u64 != count {
            return Err("live records missing from the segment".to_owned());
        }
        self.buf.clear();
        self.sizes.clear();
        let start = codec::begin_record(&mut self.buf, 0, messages.len() + subs.len());
        for m in &messages {
            let before = self.buf.len();
            codec::encode_put(m, &mut self.buf);
            self.sizes.push(codec::op_size(self.buf.len() - before));
        }
        for s in &subs {
            let before = self.buf.len();
            codec::encode_subscribe_at(s.ordinal, &s.sub, &mut self.buf);
            self.sizes.push(codec::op_size(self.buf.len() - before));
        }
        let written = codec::finish_record(&mut self.buf, start)
            .map_err(|_| "copy larger than 4 GiB".to_owned())
            .and_then(|()| self.append());
        let sizes = std::mem::take(&mut self.sizes);
        self.clear_buffers();
        let seg = written?;
        let mut sizes = sizes.into_iter();
        for m in messages {
            let at = (seg, sizes.next().unwrap_or(0));
            self.index.put(m.id, &m.queue, at, m.deliveries, 0);
        }
        for s in subs {
            let at = (seg, sizes.next().unwrap_or(0));
            self.index.subscribe(s.sub, Some(s.ordinal), at);
        }
        #[cfg(test)]
        self.faults
            .copies
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// The live messages whose Put is in segment `number` (contents `data`),
    /// by id, with their current delivery count.
    fn live_puts(&self, number: u64, data: &Bytes) -> Vec<StoredMessage> {
        let mut found: HashMap<u64, StoredMessage> = HashMap::new();
        if codec::check_header(data) != HeaderCheck::Valid {
            return Vec::new();
        }
        let mut pos = codec::HEADER_LEN;
        let mut ops = Vec::new();
        while let Next::Record(end) = codec::read_record(data, pos, &mut ops) {
            pos = end;
            for (op, _) in ops.drain(..) {
                if let DiskOp::Put(mut m) = op
                    && let Some(live) = self.index.message(m.id)
                    && live.seg == number
                {
                    m.deliveries = live.deliveries;
                    found.insert(m.id, m);
                }
            }
        }
        let mut messages: Vec<StoredMessage> = found.into_values().collect();
        messages.sort_unstable_by_key(|m| m.id);
        messages
    }

    fn warn_stuck(&mut self, number: u64, error: &str) {
        if self.stuck != Some(number) {
            self.stuck = Some(number);
            let segment = segment_path(&self.log, number);
            tracing::warn!(segment = %segment.display(), error,
                "store: cannot reclaim the oldest log segment; the log grows until it can");
        }
    }
}

/// Creates a segment holding `head`, synced, and syncs the directory.
fn create_segment(path: &Path, head: &[u8], log: &Path) -> io::Result<File> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let written = write_synced(&mut file, head).and_then(|()| sync_dir(log));
    if let Err(e) = written {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(file)
}
