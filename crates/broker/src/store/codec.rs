//! The on-disk format: the segment header, records and the ops inside them.
//!
//! A segment starts with [`MAGIC`] and the format [`VERSION`] byte. Then come
//! records, each `[u32 LE payload length][u32 LE CRC-32 of the payload][payload]`,
//! one per unit. A payload is the unit's `seq` and op count (varints) and its
//! ops, each a tag byte and its fields: integers as LEB128 varints, text and
//! bodies as a varint length and the bytes.
//!
//! Besides the router's [`Op`]s the writer writes two ops of its own: a
//! checkpoint (first record of every segment it starts: the highest message id
//! and the next subscription ordinal so far, so deleting old segments forgets
//! neither) and a subscription copied forward with its creation ordinal (so
//! compaction keeps the creation order).
//!
//! Reading never panics and never trusts a length: anything that does not
//! decode is reported as a bad record (see [`read_record`]).

use super::{Op, StoredMessage, StoredSubscription, Unit};
use bytes::Bytes;
use stompkit_frame::Headers;

/// The first bytes of every segment file.
pub(super) const MAGIC: &[u8; 12] = b"STOMPKIT-LOG";
/// The format version, the byte after [`MAGIC`].
pub(super) const VERSION: u8 = 1;
/// The length of a segment header.
pub(super) const HEADER_LEN: usize = MAGIC.len() + 1;
/// Length and checksum before each payload.
const RECORD_HEAD: usize = 8;
/// Header text a decoded message may carry at most (a header list addresses 2 GiB).
const MAX_HEADER_TEXT: usize = 1 << 30;

/// [`super::Skipped::reason`] for a record cut short.
pub(super) const TRUNCATED: &str = "truncated record";
/// [`super::Skipped::reason`] for a record whose checksum does not match.
pub(super) const CHECKSUM: &str = "checksum mismatch";
/// [`super::Skipped::reason`] for a record that does not decode.
pub(super) const BAD_RECORD: &str = "bad record";
/// [`super::Skipped::reason`] for a segment with an unknown header.
pub(super) const UNKNOWN_FORMAT: &str = "unknown segment format";

const PUT: u8 = 1;
const DELIVERED: u8 = 2;
const REMOVE: u8 = 3;
const SUBSCRIBE: u8 = 4;
const UNSUBSCRIBE: u8 = 5;
const SUBSCRIBE_AT: u8 = 6;
const CHECKPOINT: u8 = 7;

/// The segment header: magic and version.
pub(super) fn header() -> [u8; HEADER_LEN] {
    let mut h = [0; HEADER_LEN];
    h[..MAGIC.len()].copy_from_slice(MAGIC);
    h[MAGIC.len()] = VERSION;
    h
}

/// What a segment's first bytes say.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum HeaderCheck {
    /// A header of this format: records follow.
    Valid,
    /// Shorter than a header and the start of one (a segment whose creation
    /// was cut short; empty included): it holds nothing.
    Torn,
    /// Another magic or version: not ours to read.
    Unknown,
}

/// Checks a segment's header.
pub(super) fn check_header(data: &[u8]) -> HeaderCheck {
    let expected = header();
    match data.get(..HEADER_LEN) {
        Some(h) if h == expected => HeaderCheck::Valid,
        Some(_) => HeaderCheck::Unknown,
        None if expected.starts_with(data) => HeaderCheck::Torn,
        None => HeaderCheck::Unknown,
    }
}

/// A record whose payload would exceed 4 GiB: it cannot be written.
#[derive(Debug)]
pub(super) struct TooLarge;

/// Starts a record: room for its length and checksum. Returns where it starts.
pub(super) fn begin_record(out: &mut Vec<u8>, seq: u64, ops: usize) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEAD]);
    put_varint(out, seq);
    put_varint(out, ops as u64);
    start
}

/// Ends the record begun at `start`: fills in its length and checksum, or
/// removes it if it is too large.
pub(super) fn finish_record(out: &mut Vec<u8>, start: usize) -> Result<(), TooLarge> {
    let payload = &out[start + RECORD_HEAD..];
    let Ok(len) = u32::try_from(payload.len()) else {
        out.truncate(start);
        return Err(TooLarge);
    };
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + RECORD_HEAD].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Appends `unit` as one record and each op's encoded size to `sizes`; on
/// [`TooLarge`] neither `out` nor `sizes` changes.
pub(super) fn encode_unit_sized(
    unit: &Unit,
    out: &mut Vec<u8>,
    sizes: &mut Vec<u32>,
) -> Result<(), TooLarge> {
    let sizes_before = sizes.len();
    let start = begin_record(out, unit.seq, unit.ops.len());
    for op in &unit.ops {
        let before = out.len();
        encode_op(op, out);
        sizes.push(op_size(out.len() - before));
    }
    finish_record(out, start).inspect_err(|_| sizes.truncate(sizes_before))
}

/// An op's encoded size as the live-space accounting keeps it.
pub(super) fn op_size(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Appends one of the router's ops.
pub(super) fn encode_op(op: &Op, out: &mut Vec<u8>) {
    match op {
        Op::Put(m) => encode_put(m, out),
        Op::Delivered { id } => {
            out.push(DELIVERED);
            put_varint(out, *id);
        }
        Op::Remove { id } => {
            out.push(REMOVE);
            put_varint(out, *id);
        }
        Op::Subscribe(s) => {
            out.push(SUBSCRIBE);
            encode_subscription(s, out);
        }
        Op::Unsubscribe { key } => {
            out.push(UNSUBSCRIBE);
            put_bytes(out, key.as_bytes());
        }
    }
}

/// Appends a Put (the writer copies live messages forward with it).
pub(super) fn encode_put(m: &StoredMessage, out: &mut Vec<u8>) {
    out.push(PUT);
    put_varint(out, m.id);
    put_varint(out, m.expires);
    put_varint(out, u64::from(m.deliveries));
    put_bytes(out, m.queue.as_bytes());
    put_varint(out, m.headers.len() as u64);
    for (name, value) in m.headers.iter() {
        put_bytes(out, name.as_bytes());
        put_bytes(out, value.as_bytes());
    }
    put_bytes(out, &m.body);
}

fn encode_subscription(s: &StoredSubscription, out: &mut Vec<u8>) {
    put_bytes(out, s.key.as_bytes());
    put_bytes(out, s.destination.as_bytes());
    match &s.selector {
        None => out.push(0),
        Some(sel) => {
            out.push(1);
            put_bytes(out, sel.as_bytes());
        }
    }
}

/// Appends a subscription copied forward, keeping its creation ordinal.
pub(super) fn encode_subscribe_at(ordinal: u64, s: &StoredSubscription, out: &mut Vec<u8>) {
    out.push(SUBSCRIBE_AT);
    put_varint(out, ordinal);
    encode_subscription(s, out);
}

/// Appends a checkpoint: the highest message id and next subscription ordinal.
pub(super) fn encode_checkpoint(max_id: u64, next_ordinal: u64, out: &mut Vec<u8>) {
    out.push(CHECKPOINT);
    put_varint(out, max_id);
    put_varint(out, next_ordinal);
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// An op as read back: the router's ops and the writer's own.
#[derive(Debug, PartialEq)]
pub(super) enum DiskOp {
    /// [`Op::Put`].
    Put(StoredMessage),
    /// [`Op::Delivered`].
    Delivered(u64),
    /// [`Op::Remove`].
    Remove(u64),
    /// [`Op::Subscribe`] (no ordinal) or a copied subscription (its ordinal).
    Subscribe(StoredSubscription, Option<u64>),
    /// [`Op::Unsubscribe`].
    Unsubscribe(String),
    /// The writer's checkpoint.
    Checkpoint {
        /// The highest message id so far.
        max_id: u64,
        /// The next subscription ordinal.
        next_ordinal: u64,
    },
}

/// What is at a position of a segment.
#[derive(Debug)]
pub(super) enum Next {
    /// The end of the data.
    End,
    /// A whole, valid record, its ops read; where the next record starts.
    Record(usize),
    /// Something else: the reason ([`TRUNCATED`], [`CHECKSUM`], [`BAD_RECORD`]).
    Bad(&'static str),
}

/// Op read back, with its encoded size.
pub(super) type SizedOp = (DiskOp, u32);

/// Reads the record at `pos` of `data` (`pos <= data.len()`) into `ops`
/// (cleared first; left empty unless the record is valid). Bodies are slices
/// of `data`.
pub(super) fn read_record(data: &Bytes, pos: usize, ops: &mut Vec<SizedOp>) -> Next {
    ops.clear();
    let rest = data.len().saturating_sub(pos);
    if rest == 0 {
        return Next::End;
    }
    let Some(head) = data.get(pos..pos + RECORD_HEAD) else {
        return Next::Bad(TRUNCATED);
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let start = pos + RECORD_HEAD;
    if len > rest - RECORD_HEAD {
        return Next::Bad(TRUNCATED);
    }
    let end = start + len;
    if crc32fast::hash(&data[start..end]) != crc {
        return Next::Bad(CHECKSUM);
    }
    let mut r = Reader {
        data,
        pos: start,
        end,
    };
    match r.payload(ops) {
        Ok(()) => Next::Record(end),
        Err(Malformed) => {
            ops.clear();
            Next::Bad(BAD_RECORD)
        }
    }
}

/// A payload that does not decode.
#[derive(Debug)]
struct Malformed;

/// A cursor over one payload.
struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    fn payload(&mut self, ops: &mut Vec<SizedOp>) -> Result<(), Malformed> {
        let _seq = self.varint()?;
        let count = self.varint()?;
        ops.reserve(self.bounded(count));
        for _ in 0..count {
            let before = self.pos;
            let op = self.op()?;
            ops.push((op, op_size(self.pos - before)));
        }
        if self.pos == self.end {
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// A count read from disk, capped by the bytes left (each item takes one).
    fn bounded(&self, count: u64) -> usize {
        usize::try_from(count).map_or(0, |c| c.min(self.end - self.pos))
    }

    fn op(&mut self) -> Result<DiskOp, Malformed> {
        Ok(match self.u8()? {
            PUT => DiskOp::Put(self.message()?),
            DELIVERED => DiskOp::Delivered(self.varint()?),
            REMOVE => DiskOp::Remove(self.varint()?),
            SUBSCRIBE => DiskOp::Subscribe(self.subscription()?, None),
            UNSUBSCRIBE => DiskOp::Unsubscribe(self.string()?),
            SUBSCRIBE_AT => {
                let ordinal = self.varint()?;
                DiskOp::Subscribe(self.subscription()?, Some(ordinal))
            }
            CHECKPOINT => DiskOp::Checkpoint {
                max_id: self.varint()?,
                next_ordinal: self.varint()?,
            },
            _ => return Err(Malformed),
        })
    }

    fn message(&mut self) -> Result<StoredMessage, Malformed> {
        let id = self.varint()?;
        let expires = self.varint()?;
        let deliveries = u32::try_from(self.varint()?).map_err(|_| Malformed)?;
        let queue = self.string()?;
        let headers = self.headers()?;
        let body = self.bytes()?;
        Ok(StoredMessage {
            id,
            queue,
            headers,
            body,
            expires,
            deliveries,
        })
    }

    fn headers(&mut self) -> Result<Headers, Malformed> {
        let count = self.varint()?;
        let mut headers = Headers::with_capacity(self.bounded(count).min(64));
        let mut text = 0usize;
        for _ in 0..count {
            let name = self.str()?;
            let value = self.str()?;
            text += name.len() + value.len() + 2;
            if text > MAX_HEADER_TEXT {
                return Err(Malformed);
            }
            headers.push(name, value);
        }
        Ok(headers)
    }

    fn subscription(&mut self) -> Result<StoredSubscription, Malformed> {
        let key = self.string()?;
        let destination = self.string()?;
        let selector = match self.u8()? {
            0 => None,
            1 => Some(self.string()?),
            _ => return Err(Malformed),
        };
        Ok(StoredSubscription {
            key,
            destination,
            selector,
        })
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        if self.pos >= self.end {
            return Err(Malformed);
        }
        let b = self.data[self.pos];
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(Malformed);
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed)
    }

    /// The range of the next length-prefixed field.
    fn field(&mut self) -> Result<std::ops::Range<usize>, Malformed> {
        let len = usize::try_from(self.varint()?).map_err(|_| Malformed)?;
        if len > self.end - self.pos {
            return Err(Malformed);
        }
        let start = self.pos;
        self.pos += len;
        Ok(start..self.pos)
    }

    fn str(&mut self) -> Result<&'a str, Malformed> {
        let range = self.field()?;
        let data: &'a Bytes = self.data;
        std::str::from_utf8(&data[range]).map_err(|_| Malformed)
    }

    fn string(&mut self) -> Result<String, Malformed> {
        self.str().map(str::to_owned)
    }

    fn bytes(&mut self) -> Result<Bytes, Malformed> {
        let range = self.field()?;
        Ok(self.data.slice(range))
    }
}
