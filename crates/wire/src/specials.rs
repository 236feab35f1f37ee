//! Finding the bytes that give a header block its structure: LF, `:` and `\`.
//!
//! Header lines are short (10–60 bytes), so between two hits there are only a few
//! bytes: restarting a SIMD search at every hit costs more than it saves. This scans
//! eight bytes at a time in a `u64` (SWAR), keeps the word's mask of candidate
//! positions, and hands them out one by one. The classic zero-byte trick may flag a
//! byte right after a real match; every candidate is checked against the real byte.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `word` that may equal `needle` (never misses one).
#[inline(always)]
fn may_equal(word: u64, needle: u8) -> u64 {
    let x = word ^ (LO * u64::from(needle));
    x.wrapping_sub(LO) & !x & HI
}

#[inline(always)]
fn is_special(b: u8) -> bool {
    matches!(b, b'\n' | b':' | b'\\')
}

/// Positions of LF, `:` and `\` in `hay`, in order.
pub(crate) struct Specials<'a> {
    hay: &'a [u8],
    /// Offset of the word `mask` belongs to.
    base: usize,
    /// Candidates left in the current word.
    mask: u64,
}

impl<'a> Specials<'a> {
    pub(crate) fn new(hay: &'a [u8]) -> Specials<'a> {
        let mut s = Specials {
            hay,
            base: 0,
            mask: 0,
        };
        s.mask = s.word_mask(0);
        s
    }

    #[inline(always)]
    fn word_mask(&self, base: usize) -> u64 {
        let word = match self.hay.get(base..base + 8) {
            Some(bytes) => {
                let mut w = [0u8; 8];
                w.copy_from_slice(bytes);
                u64::from_le_bytes(w)
            }
            None => {
                // The tail, zero-padded: NUL is none of the three bytes.
                let mut w = [0u8; 8];
                let tail = self.hay.get(base..).unwrap_or_default();
                w[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(w)
            }
        };
        // LF (0x0A) and ':' (0x3A) differ only in bits 0x30, so one test on
        // `word | 0x30..` finds both (and '*', 0x1A, which the caller rejects).
        may_equal(word | (LO * 0x30), b':') | may_equal(word, b'\\')
    }
}

impl Iterator for Specials<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        loop {
            while self.mask != 0 {
                let at = self.base + (self.mask.trailing_zeros() / 8) as usize;
                self.mask &= self.mask - 1;
                match self.hay.get(at) {
                    Some(&b) if is_special(b) => return Some(at),
                    Some(_) => {}
                    None => return None,
                }
            }
            self.base += 8;
            if self.base >= self.hay.len() {
                return None;
            }
            self.mask = self.word_mask(self.base);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn finds_exactly_the_special_bytes(hay in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b':'), Just(b'\\'), Just(0x0b), Just(b';'), Just(b']'), any::<u8>()], 0..80)) {
            let expected: Vec<usize> = hay.iter().enumerate().filter(|(_, b)| is_special(**b)).map(|(i, _)| i).collect();
            prop_assert_eq!(Specials::new(&hay).collect::<Vec<_>>(), expected);
        }
    }
}
