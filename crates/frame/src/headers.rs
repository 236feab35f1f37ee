//! The ordered header list of a frame.
//!
//! Owns header storage and lookup. Headers keep their order and their repeats
//! (F13: a relay re-encodes them all), and a lookup answers with the first entry
//! whose name matches. It does not escape or unescape anything: names and values
//! here are always the decoded text.
//!
//! Storage is built for the parser's zero-copy path: a parsed frame's headers are
//! byte ranges into one shared [`Bytes`] (the frame's bytes, which its body is a
//! range of too), so reading a frame costs no allocation per header, and for the usual few short headers no
//! allocation at all (see [`crate::storage`]). Text that is not in that block (a
//! header added by a builder) lives in one owned buffer beside it. Every stored
//! name and value is valid UTF-8 (F5), checked on entry.

use crate::storage::{Entry, MAX_OFFSET, OWNED, Span, Storage};
use bytes::{Bytes, BytesMut};
use std::fmt;
use std::ops::Range;

/// An ordered list of STOMP headers that keeps repeats; lookups return the first match.
///
/// ```
/// use stompkit_frame::Headers;
/// let mut h = Headers::new();
/// h.push("content-length", "5");
/// h.push("content-length", "7"); // a repeat: kept, but the first one wins (F13)
/// assert_eq!(h.get("content-length"), Some("5"));
/// assert_eq!(h.get_all("content-length").collect::<Vec<_>>(), ["5", "7"]);
/// assert_eq!(h.len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct Headers {
    backing: Bytes,
    storage: Storage,
}

impl Headers {
    /// An empty header list. Allocates nothing until the first header is added.
    pub const fn new() -> Headers {
        Headers {
            backing: Bytes::new(),
            storage: Storage::new(),
        }
    }

    /// An empty list with room for `n` headers.
    pub fn with_capacity(n: usize) -> Headers {
        Headers {
            backing: Bytes::new(),
            storage: Storage::with_capacity(n),
        }
    }

    /// Number of entries, repeats included.
    #[inline]
    pub fn len(&self) -> usize {
        self.storage.len()
    }

    /// Whether there are no headers.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a header at the end (after any existing entry of the same name).
    ///
    /// # Panics
    /// If the owned text of this list would exceed 2 GiB.
    pub fn push(&mut self, name: &str, value: &str) {
        if self.storage.push_plain(name.as_bytes(), value.as_bytes()) {
            return;
        }
        let (owned, entries) = self.storage.full();
        let name = store(owned, name.as_bytes());
        let value = store(owned, value.as_bytes());
        entries.push(Entry { name, value });
    }

    /// Sets `name` to `value`: the first entry of that name is replaced in place and
    /// later repeats are removed; without one, the header is appended.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.position(name) {
            Some(i) => {
                let backing = &self.backing;
                let (owned, entries) = self.storage.full();
                let stored = store(owned, value.as_bytes());
                entries[i].value = stored;
                let mut j = 0;
                entries.retain(|e| {
                    j += 1;
                    j <= i + 1 || text(backing, owned, e.name) != name.as_bytes()
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every entry named `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.len();
        if self.contains(name) {
            let backing = &self.backing;
            let (owned, entries) = self.storage.full();
            entries.retain(|e| text(backing, owned, e.name) != name.as_bytes());
        }
        before - self.len()
    }

    /// The headers as a frame carries them, `name:value` and LF each, in order,
    /// when that text is the same under every version's escaping: every header was
    /// added with [`push`](Headers::push) (none read off the wire, none changed by
    /// [`set`](Headers::set) or [`remove`](Headers::remove)), no name is empty and
    /// no name or value holds CR, LF, `:` or `\\`. An encoder copies these in one
    /// piece; `None` means it must write (and escape) header by header.
    ///
    /// ```
    /// use stompkit_frame::Headers;
    /// let mut h = Headers::new();
    /// h.push("destination", "/queue/a");
    /// h.push("receipt", "r-1");
    /// assert_eq!(h.plain_lines(), Some(&b"destination:/queue/a\nreceipt:r-1\n"[..]));
    /// h.push("x", "a:b"); // a value that 1.1 and 1.2 escape
    /// assert_eq!(h.plain_lines(), None);
    /// assert_eq!(h.get("x"), Some("a:b"));
    /// ```
    #[inline]
    pub fn plain_lines(&self) -> Option<&[u8]> {
        self.storage.plain_lines()
    }

    /// The value of the first header named `name` (F13), if any.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).map(|i| self.value_at(i))
    }

    /// Whether a header named `name` is present.
    #[inline]
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// The first value of each of `names`, in one pass over the headers
    /// (cheaper than a [`get`](Headers::get) per name when looking for several).
    ///
    /// ```
    /// use stompkit_frame::Headers;
    /// let mut h = Headers::new();
    /// h.push("a", "1");
    /// h.push("b", "2");
    /// h.push("a", "3");
    /// assert_eq!(h.first_values(["a", "c", "b"]), [Some("1"), None, Some("2")]);
    /// ```
    #[inline]
    pub fn first_values<const N: usize>(&self, names: [&str; N]) -> [Option<&str>; N] {
        let mut found = [None; N];
        let owned = self.storage.owned();
        for i in 0..self.len() {
            let Some(e) = self.storage.entry(i) else {
                continue;
            };
            let name = text(&self.backing, owned, e.name);
            for (wanted, slot) in names.iter().zip(found.iter_mut()) {
                if slot.is_none() && wanted.len() == name.len() && wanted.as_bytes() == name {
                    *slot = Some(as_str(text(&self.backing, owned, e.value)));
                }
            }
        }
        found
    }

    /// Every value of headers named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter().filter(move |(n, _)| *n == name).map(|(_, v)| v)
    }

    /// All headers in order, as `(name, value)` pairs, repeats included.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        (0..self.len()).map(move |i| (self.name_at(i), self.value_at(i)))
    }

    /// The bytes backed headers are ranges of (a parsed frame's bytes).
    #[inline]
    pub(crate) fn backing(&self) -> &Bytes {
        &self.backing
    }

    #[inline]
    fn position(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        let owned = self.storage.owned();
        self.storage
            .position(|e| text(&self.backing, owned, e.name) == name)
    }

    #[inline]
    fn name_at(&self, i: usize) -> &str {
        self.storage.entry(i).map_or("", |e| {
            as_str(text(&self.backing, self.storage.owned(), e.name))
        })
    }

    #[inline]
    fn value_at(&self, i: usize) -> &str {
        self.storage.entry(i).map_or("", |e| {
            as_str(text(&self.backing, self.storage.owned(), e.value))
        })
    }
}

/// Appends `bytes` to the owned text and returns where they lie.
fn store(owned: &mut Vec<u8>, bytes: &[u8]) -> Span {
    let start = owned.len();
    let end = start + bytes.len();
    assert!(end <= MAX_OFFSET, "header text exceeds 2 GiB");
    owned.extend_from_slice(bytes);
    Span {
        start: start as u32 | OWNED,
        end: end as u32 | OWNED,
    }
}

#[inline]
fn text<'a>(backing: &'a [u8], owned: &'a [u8], span: Span) -> &'a [u8] {
    if span.is_backed() {
        &backing[span.start as usize..span.end as usize]
    } else {
        &owned[(span.start & !OWNED) as usize..(span.end & !OWNED) as usize]
    }
}

/// Header text is checked to be UTF-8 when it enters the list (`push` takes `&str`,
/// [`RawHeaders`] validates decoded text on `push` and backed ranges in `finish`),
/// and entries are never edited in place, so every span holds valid UTF-8.
#[inline]
#[allow(unsafe_code)]
fn as_str(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: see above; this runs on every header lookup, so it must not re-validate.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Headers {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Headers {
        let mut h = Headers::new();
        for (n, v) in iter {
            h.push(n, v);
        }
        h
    }
}

/// A name or value of a header being read off the wire: either a range of the
/// frame's header block (the common, zero-copy case) or decoded text that differs
/// from the wire bytes (after unescaping).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawText<'a> {
    /// Bytes `range` of the backing block, taken as they are.
    Backed(Range<usize>),
    /// Decoded bytes, copied into the list's owned buffer.
    Decoded(&'a [u8]),
}

/// Headers being read before their backing bytes are frozen: a parser records
/// ranges while it scans, then hands over the frame's header block with
/// [`RawHeaders::finish`], which checks every range and that all text is UTF-8.
///
/// ```
/// use bytes::Bytes;
/// use stompkit_frame::{RawHeaders, RawText};
/// let block = Bytes::from_static(b"destination:/queue/a\nx:a\\cb\n");
/// let mut raw = RawHeaders::new();
/// raw.push(RawText::Backed(0..11), RawText::Backed(12..20)).unwrap();
/// raw.push(RawText::Backed(21..22), RawText::Decoded(b"a:b")).unwrap();
/// let headers = raw.finish(block).unwrap();
/// assert_eq!(headers.get("destination"), Some("/queue/a"));
/// assert_eq!(headers.get("x"), Some("a:b"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct RawHeaders {
    headers: Headers,
    /// End of the furthest backed range: `finish` checks `block[..backed_end]` once.
    backed_end: usize,
}

/// Why a [`RawHeaders`] could not become [`Headers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawHeadersError {
    /// A name or value is not valid UTF-8 (F5).
    InvalidUtf8,
    /// A range lies outside the backing block or beyond 2 GiB.
    OutOfBounds,
}

impl fmt::Display for RawHeadersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RawHeadersError::InvalidUtf8 => "header is not valid UTF-8",
            RawHeadersError::OutOfBounds => "header range outside its block",
        })
    }
}

impl std::error::Error for RawHeadersError {}

impl RawHeaders {
    /// An empty list.
    pub const fn new() -> RawHeaders {
        RawHeaders {
            headers: Headers::new(),
            backed_end: 0,
        }
    }

    /// An empty list with room for `n` headers.
    pub fn with_capacity(n: usize) -> RawHeaders {
        RawHeaders {
            headers: Headers::with_capacity(n),
            backed_end: 0,
        }
    }

    /// Number of headers recorded so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether nothing has been recorded.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Records one header. Decoded text is checked for UTF-8 now; backed ranges
    /// when the block arrives in [`finish`](RawHeaders::finish).
    pub fn push(&mut self, name: RawText<'_>, value: RawText<'_>) -> Result<(), RawHeadersError> {
        let name = self.span(name)?;
        let value = self.span(value)?;
        self.headers.storage.full().1.push(Entry { name, value });
        Ok(())
    }

    /// Records the header read from the line `name:value` at `start..end` of the
    /// block: name `start..colon`, value `colon + 1..end`. The parser's common
    /// case, cheaper than [`push`](RawHeaders::push): a frame's first few such
    /// headers are kept inside the list, with no allocation. Returns the number
    /// of headers recorded now (so a parser can enforce its limit for free).
    #[inline]
    pub fn push_line(
        &mut self,
        start: usize,
        colon: usize,
        end: usize,
    ) -> Result<usize, RawHeadersError> {
        if start > colon || colon >= end || end > MAX_OFFSET {
            return Err(RawHeadersError::OutOfBounds);
        }
        self.backed_end = self.backed_end.max(end);
        Ok(self.headers.storage.push_line(start, colon, end))
    }

    /// The value of the first recorded header named `name`, looked up in `block`
    /// (the bytes the backed ranges refer to, not yet frozen). `None` when absent,
    /// out of range or not UTF-8.
    pub fn get<'a>(&'a self, block: &'a [u8], name: &str) -> Option<&'a [u8]> {
        let storage = &self.headers.storage;
        storage.entries().find_map(|e| {
            let n = text_checked(block, storage.owned(), e.name)?;
            (n == name.as_bytes()).then(|| text_checked(block, storage.owned(), e.value))?
        })
    }

    /// Attaches the header block the backed ranges point into, checks every range
    /// and that every name and value is UTF-8, and returns the finished list.
    #[inline]
    pub fn finish(mut self, block: Bytes) -> Result<Headers, RawHeadersError> {
        self.take(block)
    }

    /// Like [`finish`](RawHeaders::finish), but leaves `self` empty for the next
    /// frame instead of consuming it (a parser keeps one `RawHeaders` for good).
    #[inline]
    pub fn take(&mut self, block: Bytes) -> Result<Headers, RawHeadersError> {
        self.check(&block)?;
        Ok(self.attach(block))
    }

    /// For a parser reading from a `BytesMut`: splits a finished frame off the
    /// front of `buf` as one [`Frame`](crate::Frame) holding one `Bytes`, the
    /// first `frame_len` bytes, of which `..block_len` are the command line and
    /// header lines these headers are ranges of, and `block_len..body_end` the
    /// body. Checks the headers against the block first (reading the bytes before
    /// they become shared is cheaper): on error nothing is split off.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use stompkit_frame::{Command, RawHeaders};
    /// let mut buf = BytesMut::from(&b"SEND\nx:1\n\nhi\0MORE"[..]);
    /// let mut raw = RawHeaders::new();
    /// raw.push_line(5, 6, 8).unwrap();
    /// let frame = raw.split_frame(&mut buf, Command::Send, 10, 12, 13).unwrap();
    /// assert_eq!(frame.get("x"), Some("1"));
    /// assert_eq!(frame.body(), b"hi");
    /// assert_eq!(&buf[..], b"MORE");
    /// ```
    #[inline]
    pub fn split_frame(
        &mut self,
        buf: &mut BytesMut,
        command: crate::Command,
        block_len: usize,
        body_end: usize,
        frame_len: usize,
    ) -> Result<crate::Frame, RawHeadersError> {
        let (Ok(start), Ok(end)) = (u32::try_from(block_len), u32::try_from(body_end)) else {
            return Err(RawHeadersError::OutOfBounds);
        };
        if block_len > body_end || body_end > frame_len || frame_len > buf.len() {
            return Err(RawHeadersError::OutOfBounds);
        }
        self.check(&buf[..block_len])?;
        let headers = self.attach(buf.split_to(frame_len).freeze());
        Ok(crate::Frame::parsed(command, headers, start, end))
    }

    /// Whether every backed range lies within `block` and all text is UTF-8.
    #[inline]
    fn check(&self, block: &[u8]) -> Result<(), RawHeadersError> {
        let covered = block
            .get(..self.backed_end)
            .ok_or(RawHeadersError::OutOfBounds)?;
        if all_ascii(covered) {
            return Ok(());
        }
        // Rare: check each backed range on its own (bytes between headers may be anything).
        for e in self.headers.storage.entries() {
            for span in [e.name, e.value] {
                if span.is_backed()
                    && std::str::from_utf8(&covered[span.start as usize..span.end as usize])
                        .is_err()
                {
                    return Err(RawHeadersError::InvalidUtf8);
                }
            }
        }
        Ok(())
    }

    /// The finished list on a checked `block`; `self` is left empty.
    #[inline]
    fn attach(&mut self, block: Bytes) -> Headers {
        self.backed_end = 0;
        Headers {
            backing: block,
            storage: self.headers.storage.take(),
        }
    }

    fn span(&mut self, text: RawText<'_>) -> Result<Span, RawHeadersError> {
        match text {
            RawText::Backed(r) if r.start <= r.end && r.end <= MAX_OFFSET => {
                self.backed_end = self.backed_end.max(r.end);
                Ok(Span {
                    start: r.start as u32,
                    end: r.end as u32,
                })
            }
            RawText::Backed(_) => Err(RawHeadersError::OutOfBounds),
            RawText::Decoded(bytes) => {
                let s = std::str::from_utf8(bytes).map_err(|_| RawHeadersError::InvalidUtf8)?;
                let owned = self.headers.storage.full().0;
                if owned.len() + s.len() > MAX_OFFSET {
                    return Err(RawHeadersError::OutOfBounds);
                }
                Ok(store(owned, s.as_bytes()))
            }
        }
    }
}

/// `[u8]::is_ascii`, as an OR over 8-byte words (header blocks are short, and
/// this runs once per parsed frame): the last word overlaps the one before
/// instead of a byte loop for the tail.
#[inline]
fn all_ascii(bytes: &[u8]) -> bool {
    let word = |w: &[u8]| u64::from_le_bytes(<[u8; 8]>::try_from(w).unwrap_or_default());
    let acc = match bytes.len().checked_sub(8) {
        None => bytes.iter().fold(0, |acc, &b| acc | u64::from(b)),
        Some(last) => {
            let mut acc = word(&bytes[last..]);
            let mut at = 0;
            while at < last {
                acc |= word(&bytes[at..at + 8]);
                at += 8;
            }
            acc
        }
    };
    acc & 0x8080_8080_8080_8080 == 0
}

fn text_checked<'a>(backing: &'a [u8], owned: &'a [u8], span: Span) -> Option<&'a [u8]> {
    if span.is_backed() {
        backing.get(span.start as usize..span.end as usize)
    } else {
        owned.get((span.start & !OWNED) as usize..(span.end & !OWNED) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f13_first_entry_wins_and_repeats_are_kept_in_order() {
        let h: Headers = [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect();
        assert_eq!(h.get("a"), Some("1"));
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [("a", "1"), ("b", "2"), ("a", "3")]
        );
    }

    #[test]
    fn f4_header_names_are_case_sensitive() {
        let h: Headers = [("Destination", "x")].into_iter().collect();
        assert_eq!(h.get("destination"), None);
    }

    #[test]
    fn set_replaces_first_and_drops_repeats() {
        let mut h: Headers = [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect();
        h.set("a", "9");
        assert_eq!(h.iter().collect::<Vec<_>>(), [("a", "9"), ("b", "2")]);
        h.set("c", "4");
        assert_eq!(h.get("c"), Some("4"));
        assert_eq!(h.remove("b"), 1);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn raw_headers_mix_backed_and_decoded_text() {
        let block = Bytes::from_static(b"k:v\nname:x\n");
        let mut raw = RawHeaders::new();
        raw.push(RawText::Backed(0..1), RawText::Backed(2..3))
            .unwrap();
        raw.push(RawText::Decoded(b"na:me"), RawText::Backed(9..10))
            .unwrap();
        assert_eq!(raw.get(&block, "na:me"), Some(&b"x"[..]));
        let h = raw.finish(block).unwrap();
        assert_eq!(h.iter().collect::<Vec<_>>(), [("k", "v"), ("na:me", "x")]);
        // a clone shares the block and compares equal to owned headers
        let owned: Headers = [("k", "v"), ("na:me", "x")].into_iter().collect();
        assert_eq!(h.clone(), owned);
    }

    #[test]
    fn all_ascii_agrees_with_is_ascii() {
        let mut bytes = [b'a'; 40];
        for len in 0..bytes.len() {
            assert!(all_ascii(&bytes[..len]));
        }
        for at in 0..bytes.len() {
            bytes[at] = 0x80;
            for len in 0..bytes.len() {
                assert_eq!(
                    all_ascii(&bytes[..len]),
                    bytes[..len].is_ascii(),
                    "{at} {len}"
                );
            }
            bytes[at] = b'a';
        }
    }

    #[test]
    fn take_leaves_raw_headers_empty_for_the_next_frame() {
        let mut raw = RawHeaders::new();
        raw.push(RawText::Backed(0..1), RawText::Backed(2..3))
            .unwrap();
        raw.push_line(0, 1, 3).unwrap();
        for (start, colon, end) in [(2, 1, 3), (0, 3, 3), (0, 1, usize::MAX)] {
            assert_eq!(
                raw.push_line(start, colon, end),
                Err(RawHeadersError::OutOfBounds)
            );
        }
        let h = raw.take(Bytes::from_static(b"k:v\n")).unwrap();
        assert_eq!(h.get_all("k").collect::<Vec<_>>(), ["v", "v"]);
        assert_eq!(h.get("k"), Some("v"));
        assert!(raw.is_empty());
        raw.push(RawText::Backed(0..1), RawText::Decoded(b"w"))
            .unwrap();
        let h = raw.take(Bytes::from_static(b"x")).unwrap();
        assert_eq!(h.iter().collect::<Vec<_>>(), [("x", "w")]);
    }

    #[test]
    fn f5_raw_headers_reject_invalid_utf8_and_bad_ranges() {
        let mut raw = RawHeaders::new();
        raw.push(RawText::Backed(0..2), RawText::Backed(0..1))
            .unwrap();
        assert_eq!(
            raw.finish(Bytes::from_static(b"\xff\xfe")).unwrap_err(),
            RawHeadersError::InvalidUtf8
        );
        let mut raw = RawHeaders::new();
        raw.push(RawText::Backed(0..9), RawText::Backed(0..1))
            .unwrap();
        assert_eq!(
            raw.finish(Bytes::from_static(b"ab")).unwrap_err(),
            RawHeadersError::OutOfBounds
        );
        let mut raw = RawHeaders::new();
        assert_eq!(
            raw.push(RawText::Decoded(b"\xc3"), RawText::Backed(0..0)),
            Err(RawHeadersError::InvalidUtf8)
        );
    }
}
