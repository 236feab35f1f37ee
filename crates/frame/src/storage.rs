//! Where a header list keeps its entries: packed inside the list, or on the heap.
//!
//! A parsed frame's headers are ranges of its header block. Most frames carry a
//! handful of headers (a broker's MESSAGE: destination, message-id, subscription,
//! content-type, content-length and a few more), each a line `name:value` in the
//! first few hundred bytes of the block. Those are kept packed, three `u16`
//! offsets a header, inside the list itself: reading such a frame allocates
//! nothing for its header table, and a [`Frame`](crate::Frame) stays small enough
//! to move cheaply. Anything else (more headers, text that is not in the block,
//! offsets past 64 KiB, a value not right after its name's colon) switches the
//! list to the general form: spans into the block or into an owned buffer.
//!
//! Headers added one by one to an empty list ([`Storage::push_plain`]) are laid
//! out in the owned buffer exactly as a frame carries them, `name:value` and LF,
//! as long as none needs escaping: an encoder then writes them with one copy
//! ([`Storage::plain_lines`]) instead of escaping each name and value.

/// Offsets are stored as `u32`; the top bit says "owned buffer" rather than "backing".
pub(crate) const OWNED: u32 = 1 << 31;
/// Largest offset a header list can address (2 GiB, far above any header limit).
pub(crate) const MAX_OFFSET: usize = (OWNED - 1) as usize;

/// Headers kept packed at most; a frame with more uses the general form.
const PACKED: usize = 9;

/// Whether `text` holds none of the bytes any version escapes: CR, LF, `:`, `\\`.
#[inline]
fn is_plain(text: &[u8]) -> bool {
    !text
        .iter()
        .any(|&b| matches!(b, b'\r' | b'\n' | b':' | b'\\'))
}

/// Where a name or value lies: in the backing block, or (top bit set) in the owned buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    /// Whether the text lies in the backing block.
    #[inline]
    pub(crate) fn is_backed(self) -> bool {
        self.start & OWNED == 0
    }
}

/// One header: where its name and its value lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// A packed header: name `block[start..colon]`, value `block[colon + 1..end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    start: u16,
    colon: u16,
    end: u16,
}

impl Line {
    const EMPTY: Line = Line {
        start: 0,
        colon: 0,
        end: 0,
    };

    #[inline]
    fn entry(self) -> Entry {
        Line::entry_of(self.start.into(), self.colon.into(), self.end.into())
    }

    /// The entry of the line `start..end` with its colon at `colon`.
    #[inline]
    fn entry_of(start: u32, colon: u32, end: u32) -> Entry {
        Entry {
            name: Span { start, end: colon },
            value: Span {
                start: colon + 1,
                end,
            },
        }
    }
}

/// The entries of a header list, in order.
#[derive(Clone, Debug)]
pub(crate) enum Storage {
    /// Up to [`PACKED`] headers, all in the block's first 64 KiB, each value right
    /// after its name's colon.
    Packed { len: u8, lines: [Line; PACKED] },
    /// Any entries, and the owned text that spans with [`OWNED`] point into.
    /// `plain` holds while `owned` is exactly the lines `name:value\n` of the
    /// entries, in order, none with a byte that any version escapes.
    Full {
        owned: Vec<u8>,
        entries: Vec<Entry>,
        plain: bool,
    },
}

impl Default for Storage {
    fn default() -> Storage {
        Storage::new()
    }
}

impl Storage {
    pub(crate) const fn new() -> Storage {
        Storage::Packed {
            len: 0,
            lines: [Line::EMPTY; PACKED],
        }
    }

    /// Empty, with room for `n` entries.
    pub(crate) fn with_capacity(n: usize) -> Storage {
        if n <= PACKED {
            Storage::new()
        } else {
            Storage::Full {
                owned: Vec::new(),
                entries: Vec::with_capacity(n),
                plain: true,
            }
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Storage::Packed { len, .. } => usize::from(*len),
            Storage::Full { entries, .. } => entries.len(),
        }
    }

    /// The owned text (empty while packed).
    #[inline]
    pub(crate) fn owned(&self) -> &[u8] {
        match self {
            Storage::Packed { .. } => &[],
            Storage::Full { owned, .. } => owned,
        }
    }

    #[inline]
    pub(crate) fn entry(&self, i: usize) -> Option<Entry> {
        match self {
            Storage::Packed { len, lines } => lines[..usize::from(*len)].get(i).map(|l| l.entry()),
            Storage::Full { entries, .. } => entries.get(i).copied(),
        }
    }

    /// Index of the first entry for which `f` holds.
    #[inline]
    pub(crate) fn position(&self, mut f: impl FnMut(Entry) -> bool) -> Option<usize> {
        match self {
            Storage::Packed { len, lines } => {
                lines[..usize::from(*len)].iter().position(|l| f(l.entry()))
            }
            Storage::Full { entries, .. } => entries.iter().position(|e| f(*e)),
        }
    }

    /// All entries in order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        (0..self.len()).filter_map(|i| self.entry(i))
    }

    /// Appends the header read from the line `block[start..end]`: name
    /// `start..colon`, value `colon + 1..end`, with `start <= colon < end <=
    /// MAX_OFFSET` (checked by the caller). Returns the number of entries now.
    #[inline]
    pub(crate) fn push_line(&mut self, start: usize, colon: usize, end: usize) -> usize {
        if let Storage::Packed { len, lines } = self
            && let (true, Some(slot)) = (
                end <= usize::from(u16::MAX),
                lines.get_mut(usize::from(*len)),
            )
        {
            *slot = Line {
                start: start as u16,
                colon: colon as u16,
                end: end as u16,
            };
            *len += 1;
            return usize::from(*len);
        }
        let entry = Line::entry_of(start as u32, colon as u32, end as u32);
        let entries = self.full().1;
        entries.push(entry);
        entries.len()
    }

    /// The general form, converted to first if packed: owned text and entries,
    /// which the caller may change in any way (so they are no longer plain lines).
    pub(crate) fn full(&mut self) -> (&mut Vec<u8>, &mut Vec<Entry>) {
        self.make_full();
        match self {
            Storage::Full {
                owned,
                entries,
                plain,
            } => {
                *plain = false;
                (owned, entries)
            }
            Storage::Packed { .. } => unreachable!("converted by make_full"),
        }
    }

    /// Converts a packed list to the general form (still plain if it was empty).
    fn make_full(&mut self) {
        if let Storage::Packed { len, lines } = self {
            let entries: Vec<Entry> = lines[..usize::from(*len)]
                .iter()
                .map(|l| l.entry())
                .collect();
            *self = Storage::Full {
                owned: Vec::new(),
                plain: entries.is_empty(),
                entries,
            };
        }
    }

    /// Appends `name:value\n` as a plain line if the list is plain so far (see
    /// [`plain_lines`](Storage::plain_lines)) and neither needs escaping; returns
    /// whether it did (if not, nothing changed).
    pub(crate) fn push_plain(&mut self, name: &[u8], value: &[u8]) -> bool {
        if name.is_empty() || !is_plain(name) || !is_plain(value) || self.plain_lines().is_none() {
            return false;
        }
        self.make_full();
        let Storage::Full { owned, entries, .. } = self else {
            return false;
        };
        let start = owned.len();
        let colon = start + name.len();
        let end = colon + 1 + value.len();
        if end >= MAX_OFFSET {
            return false;
        }
        owned.reserve(end + 1 - start);
        owned.extend_from_slice(name);
        owned.push(b':');
        owned.extend_from_slice(value);
        owned.push(b'\n');
        let at = |offset: usize| offset as u32 | OWNED;
        entries.push(Entry {
            name: Span {
                start: at(start),
                end: at(colon),
            },
            value: Span {
                start: at(colon + 1),
                end: at(end),
            },
        });
        true
    }

    /// All headers as the lines a frame carries (`name:value` and LF each, in
    /// order), when every one was added by [`push_plain`](Storage::push_plain):
    /// no name is empty and no text holds CR, LF, `:` or `\\`, so the lines are the
    /// same under every version's escaping. `None` otherwise.
    #[inline]
    pub(crate) fn plain_lines(&self) -> Option<&[u8]> {
        match self {
            Storage::Packed { len: 0, .. } => Some(&[]),
            Storage::Full {
                owned, plain: true, ..
            } => Some(owned),
            _ => None,
        }
    }

    /// Moves the entries out, leaving this empty and packed.
    #[inline]
    pub(crate) fn take(&mut self) -> Storage {
        match self {
            Storage::Packed { len, lines } => {
                let taken = Storage::Packed {
                    len: *len,
                    lines: *lines,
                };
                *len = 0;
                taken
            }
            Storage::Full { .. } => std::mem::take(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(s: &Storage) -> Vec<(u32, u32, u32, u32)> {
        s.entries()
            .map(|e| (e.name.start, e.name.end, e.value.start, e.value.end))
            .collect()
    }

    #[test]
    fn lines_stay_packed_until_one_does_not_fit() {
        let mut s = Storage::new();
        for n in 0..PACKED {
            let at = n * 10;
            s.push_line(at, at + 3, at + 9);
        }
        assert!(matches!(s, Storage::Packed { len: 9, .. }));
        assert_eq!(s.position(|e| e.name.start == 30), Some(3));
        assert_eq!(
            s.entry(8).map(|e| e.value),
            Some(Span { start: 84, end: 89 })
        );
        let before = spans(&s);
        s.push_line(90, 93, 99); // a tenth header
        assert!(matches!(s, Storage::Full { .. }));
        assert_eq!(spans(&s)[..9], before[..]);
        assert_eq!(s.len(), 10);
        assert_eq!(
            s.entry(9).map(|e| e.value),
            Some(Span { start: 94, end: 99 })
        );
    }

    #[test]
    fn lines_past_64_kib_are_not_packed() {
        let mut s = Storage::new();
        s.push_line(0, 1, 3);
        s.push_line(4, 7, 70_000);
        assert!(matches!(s, Storage::Full { .. }));
        assert_eq!(spans(&s), [(0, 1, 2, 3), (4, 7, 8, 70_000)]);
    }

    #[test]
    fn plain_lines_hold_until_a_header_needs_escaping_or_is_changed() {
        let mut s = Storage::new();
        assert_eq!(s.plain_lines(), Some(&b""[..]));
        assert!(s.push_plain(b"destination", b"/queue/a"));
        assert!(s.push_plain(b"receipt", b""));
        assert_eq!(
            s.plain_lines(),
            Some(&b"destination:/queue/a\nreceipt:\n"[..])
        );
        assert_eq!(
            s.entry(1).map(|e| e.name),
            Some(Span {
                start: 21 | OWNED,
                end: 28 | OWNED
            })
        );
        for (name, value) in [
            (&b""[..], &b"v"[..]),
            (b"a:b", b"v"),
            (b"n", b"a\\b"),
            (b"n", b"\r"),
        ] {
            let mut t = s.clone();
            assert!(!t.push_plain(name, value), "{name:?} {value:?}");
            assert_eq!(
                t.plain_lines(),
                s.plain_lines(),
                "unchanged by a refused line"
            );
        }
        // Changed through the general form: no longer lines, and never again.
        s.full();
        assert_eq!(s.plain_lines(), None);
        assert!(!s.push_plain(b"x", b"y"));
        // Read off the wire: ranges of a block, not lines of their own.
        let mut parsed = Storage::new();
        parsed.push_line(0, 1, 3);
        assert_eq!(parsed.plain_lines(), None);
        assert!(!parsed.push_plain(b"x", b"y"));
        assert_eq!(Storage::with_capacity(20).plain_lines(), Some(&b""[..]));
    }

    #[test]
    fn take_leaves_an_empty_packed_list() {
        let mut s = Storage::with_capacity(20);
        s.push_line(0, 1, 3);
        let taken = s.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(s.len(), 0);
        s.push_line(0, 1, 3);
        let taken = s.take();
        assert!(matches!(taken, Storage::Packed { len: 1, .. }));
        assert_eq!(s.len(), 0);
        assert_eq!(s.owned(), b"");
    }
}
