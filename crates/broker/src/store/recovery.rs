//! Recovery: replays segments, in write order, into the live state.
//!
//! Each segment is one buffer; bodies come out as slices of it (no copy),
//! except from segments that are mostly dead, whose live bodies are copied so
//! the rest of the buffer can be freed. A bad record ends its segment: the rest
//! of it is skipped, reported and logged, and the next segment is read.

use super::codec::{self, DiskOp, HeaderCheck, Next, SizedOp};
use super::index::Index;
use super::{Recovered, Skipped, StoredMessage};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// One segment's contents.
pub(super) struct Segment {
    /// Its number (file name).
    pub number: u64,
    /// What [`Skipped::segment`] calls it.
    pub name: PathBuf,
    /// The whole file.
    pub data: Bytes,
}

/// What recovery found.
pub(super) struct Outcome {
    /// The state for the router.
    pub recovered: Recovered,
    /// The same state for the writer.
    pub index: Index,
    /// Per segment, the length of its valid part (where a skipped stretch starts).
    pub valid: Vec<u64>,
    /// Per segment, whether it holds nothing but checkpoints.
    pub bare: Vec<bool>,
}

/// Replays `segments` in order.
pub(super) fn recover(segments: &[Segment]) -> Outcome {
    let mut replay = Replay::default();
    for seg in segments {
        replay.segment(seg, decode(seg));
    }
    replay.finish()
}

/// A segment's valid records, decoded (the part of recovery that needs no
/// state, so it can run on the thread that reads the files).
pub(super) struct Decoded {
    /// The ops of its valid records, in order, each with its encoded size.
    ops: Vec<SizedOp>,
    /// The length of its valid part.
    valid: usize,
    /// Why the rest is not valid, if it is not.
    bad: Option<&'static str>,
}

/// Decodes `seg` up to its first bad record.
pub(super) fn decode(seg: &Segment) -> Decoded {
    let data = &seg.data;
    let mut ops = Vec::new();
    let bad = match codec::check_header(data) {
        HeaderCheck::Valid => None,
        HeaderCheck::Torn if data.is_empty() => {
            return Decoded {
                ops,
                valid: 0,
                bad: None,
            };
        }
        HeaderCheck::Torn => Some(codec::TRUNCATED),
        HeaderCheck::Unknown => Some(codec::UNKNOWN_FORMAT),
    };
    if bad.is_some() {
        return Decoded { ops, valid: 0, bad };
    }
    let mut pos = codec::HEADER_LEN;
    let mut record = Vec::new();
    loop {
        match codec::read_record(data, pos, &mut record) {
            Next::End => {
                return Decoded {
                    ops,
                    valid: pos,
                    bad: None,
                };
            }
            Next::Record(end) => {
                ops.append(&mut record);
                pos = end;
            }
            Next::Bad(reason) => {
                return Decoded {
                    ops,
                    valid: pos,
                    bad: Some(reason),
                };
            }
        }
    }
}

/// Recovery under way: segments are replayed one by one as they are read.
#[derive(Default)]
pub(super) struct Replay {
    index: Index,
    /// Message contents and segments by slot (`None` once dead), delivery
    /// counts kept up to date.
    contents: Vec<Option<(StoredMessage, u64)>>,
    skipped: Vec<Skipped>,
    /// Each segment's number and length.
    lengths: Vec<(u64, u64)>,
    valid: Vec<u64>,
    bare: Vec<bool>,
}

impl Replay {
    /// Replays the next segment, decoded.
    pub fn segment(&mut self, seg: &Segment, decoded: Decoded) {
        let bare = decoded
            .ops
            .iter()
            .all(|(op, _)| matches!(op, DiskOp::Checkpoint { .. }));
        for (op, size) in decoded.ops {
            self.apply(op, (seg.number, size));
        }
        if let Some(reason) = decoded.bad {
            self.skip(seg, decoded.valid, reason);
        }
        self.valid.push(decoded.valid as u64);
        self.bare.push(bare);
        self.lengths.push((seg.number, seg.data.len() as u64));
    }

    /// The state found.
    pub fn finish(self) -> Outcome {
        let copy = mostly_dead(&self.lengths, &self.index);
        let subscriptions = self.index.subscriptions(None);
        Outcome {
            recovered: Recovered {
                queues: group(self.contents, &copy),
                subscriptions: subscriptions.into_iter().map(|s| s.sub).collect(),
                max_id: self.index.max_id(),
                skipped: self.skipped,
            },
            index: self.index,
            valid: self.valid,
            bare: self.bare,
        }
    }

    /// Applies one op read from disk.
    fn apply(&mut self, op: DiskOp, at: (u64, u32)) {
        let Replay {
            index, contents, ..
        } = self;
        match op {
            DiskOp::Put(m) => {
                let slot = contents.len();
                let replaced = index.put(m.id, &m.queue, at, m.deliveries, slot);
                contents.push(Some((m, at.0)));
                if let Some(old) = replaced {
                    bury(contents, old);
                }
            }
            DiskOp::Delivered(id) => {
                let slot = index.delivered(id);
                if let Some(Some((m, _))) = slot.and_then(|slot| contents.get_mut(slot)) {
                    m.deliveries = m.deliveries.saturating_add(1);
                }
            }
            DiskOp::Remove(id) => {
                if let Some(old) = index.remove(id) {
                    bury(contents, old);
                }
            }
            DiskOp::Subscribe(sub, ordinal) => index.subscribe(sub, ordinal, at),
            DiskOp::Unsubscribe(key) => index.unsubscribe(&key, |old| bury(contents, old)),
            DiskOp::Checkpoint {
                max_id,
                next_ordinal,
            } => index.checkpoint(max_id, next_ordinal),
        }
    }

    /// Records and logs a skipped stretch: from `offset` to the end of `seg`.
    fn skip(&mut self, seg: &Segment, offset: usize, reason: &'static str) {
        let bytes = (seg.data.len() - offset) as u64;
        let offset = offset as u64;
        tracing::warn!(
            segment = %seg.name.display(),
            offset,
            bytes,
            reason,
            "store: skipped the rest of a log segment (corrupt or truncated); kept everything before it"
        );
        self.skipped.push(Skipped {
            segment: seg.name.clone(),
            offset,
            bytes,
            reason,
        });
    }
}

/// Frees a dead message's content.
fn bury(contents: &mut [Option<(StoredMessage, u64)>], slot: usize) {
    if let Some(c) = contents.get_mut(slot) {
        *c = None;
    }
}

/// Segments less than half live: their live bodies are copied out, so the
/// segment's buffer can be freed.
fn mostly_dead(lengths: &[(u64, u64)], index: &Index) -> HashSet<u64> {
    lengths
        .iter()
        .filter(|(number, len)| index.seg_live(*number).bytes * 2 < *len)
        .map(|(number, _)| *number)
        .collect()
}

/// Groups the live messages (contents by slot, each with its segment) by
/// queue, each queue in id order, queues in order of their first message.
fn group(
    contents: Vec<Option<(StoredMessage, u64)>>,
    copy: &HashSet<u64>,
) -> Vec<(String, Vec<StoredMessage>)> {
    // Slots are in Put order: by id, but for re-Puts and copies.
    let sorted = contents.iter().flatten().map(|(m, _)| m.id).is_sorted();
    let mut live: Box<dyn Iterator<Item = (StoredMessage, u64)>> = if sorted {
        Box::new(contents.into_iter().flatten())
    } else {
        let mut live: Vec<(StoredMessage, u64)> = contents.into_iter().flatten().collect();
        live.sort_by_key(|(m, _)| m.id);
        Box::new(live.into_iter())
    };
    let mut queues: Vec<(String, Vec<StoredMessage>)> = Vec::new();
    let mut slots: HashMap<String, usize> = HashMap::new();
    let mut last = usize::MAX;
    let mut seg_copy = None;
    for (mut msg, seg) in &mut live {
        let copy_body = match seg_copy {
            Some((s, c)) if s == seg => c,
            _ => seg_copy.insert((seg, copy.contains(&seg))).1,
        };
        if copy_body {
            msg.body = Bytes::copy_from_slice(&msg.body);
        }
        if queues.get(last).is_none_or(|(q, _)| *q != msg.queue) {
            last = *slots.entry(msg.queue.clone()).or_insert_with(|| {
                queues.push((msg.queue.clone(), Vec::new()));
                queues.len() - 1
            });
        }
        queues[last].1.push(msg);
    }
    queues
}
