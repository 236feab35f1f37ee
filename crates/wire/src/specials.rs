//! Finding the bytes that give a frame's head its structure: LF, `:` and `\`.
//!
//! Header names and values are short (5–60 bytes), so a search restarted for each
//! of them spends more on setup than on searching (measured: `memchr3` per hit
//! made the parser slower). Instead the parser asks for a bit mask of all three
//! bytes in a block of 16 ([`block_mask`]) and walks its bits. On x86-64 the mask
//! takes a handful of SSE2 instructions (through `safe_arch`, so no `unsafe`
//! here); elsewhere it is computed eight bytes at a time in a `u64` (SWAR).

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `word` that may equal `needle`: set for every
/// byte that does, and possibly for a byte above one that does (a borrow), never
/// below the first one that does.
#[inline(always)]
fn may_equal(word: u64, needle: u8) -> u64 {
    let x = word ^ (LO * u64::from(needle));
    x.wrapping_sub(LO) & !x & HI
}

/// Bytes looked at by one [`block_mask`]: four lanes of 16. A header block is
/// one or two of these, so the parser's walk over a mask's bits ends (a branch
/// the CPU cannot predict) once or twice a frame rather than once per 16 bytes.
pub(crate) const BLOCK: usize = 64;

/// Bytes compared at once: one SSE2 register.
const LANE: usize = 16;

/// Bit `k` set exactly when `block[k]` is LF, `:` or `\`.
#[inline(always)]
pub(crate) fn block_mask(block: &[u8; BLOCK]) -> u64 {
    let mut mask = 0;
    for (n, lane) in block.chunks_exact(LANE).enumerate() {
        let lane = <&[u8; LANE]>::try_from(lane).unwrap_or(&[0; LANE]);
        mask |= u64::from(lane_mask(lane)) << (n * LANE);
    }
    mask
}

/// Bit `k` set exactly when `lane[k]` is LF, `:` or `\`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lane_mask(lane: &[u8; LANE]) -> u32 {
    use safe_arch::{cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i};
    use safe_arch::{m128i, set_splat_i8_m128i};
    let bytes = load_unaligned_m128i(lane);
    let is = |b: u8| -> m128i { cmp_eq_mask_i8_m128i(bytes, set_splat_i8_m128i(b as i8)) };
    move_mask_i8_m128i(is(b'\n') | is(b':') | is(b'\\')) as u32
}

/// Bit `k` set exactly when `lane[k]` is LF, `:` or `\`.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn lane_mask(lane: &[u8; LANE]) -> u32 {
    swar_lane_mask(lane)
}

/// [`lane_mask`] without SIMD: two words, each byte tested exactly, the eight
/// high bits of each word gathered into a byte by one multiplication.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn swar_lane_mask(block: &[u8; LANE]) -> u32 {
    let half = |bytes: &[u8]| {
        let w = word(bytes);
        let m = is_byte(w, b'\n') | is_byte(w, b':') | is_byte(w, b'\\');
        ((m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
    };
    half(&block[..8]) | half(&block[8..]) << 8
}

/// High bit set in exactly the bytes of `word` equal to `needle`.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn is_byte(word: u64, needle: u8) -> u64 {
    let x = word ^ (LO * u64::from(needle));
    !(((x & !HI).wrapping_add(!HI)) | x) & HI
}

/// [`block_mask`] of the (up to 64) bytes of `hay` from `at`, zero-padded past
/// the end (NUL is none of the bytes looked for).
#[inline(always)]
pub(crate) fn block_mask_at(hay: &[u8], at: usize) -> u64 {
    match hay.get(at..at.saturating_add(BLOCK)) {
        Some(bytes) => <&[u8; BLOCK]>::try_from(bytes).map_or(0, block_mask),
        None => {
            let tail = hay.get(at..).unwrap_or_default();
            let mut padded = [0u8; BLOCK];
            padded[..tail.len()].copy_from_slice(tail);
            block_mask(&padded)
        }
    }
}

/// Eight bytes as a little-endian word.
#[inline(always)]
pub(crate) fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(<[u8; 8]>::try_from(bytes).unwrap_or_default())
}

/// The eight bytes of `hay` at `at` as a word, zero-padded past the end (NUL is
/// none of the bytes looked for).
#[inline(always)]
pub(crate) fn word_at(hay: &[u8], at: usize) -> u64 {
    match hay.get(at..at.saturating_add(8)) {
        Some(bytes) => word(bytes),
        None => {
            let tail = hay.get(at..).unwrap_or_default();
            let mut padded = [0u8; 8];
            padded[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(padded)
        }
    }
}

/// Position of the first LF in `hay[from..]`: the first two words by SWAR (a
/// command line is short), the rest with `memchr`.
#[inline]
pub(crate) fn find_lf(hay: &[u8], from: usize) -> Option<usize> {
    for at in [from, from.saturating_add(8)] {
        // The lowest flagged byte is always a real LF (false ones only follow one).
        let mask = may_equal(word_at(hay, at), b'\n');
        if mask != 0 {
            return Some(at + (mask.trailing_zeros() / 8) as usize);
        }
    }
    let rest = from.saturating_add(16);
    memchr::memchr(b'\n', hay.get(rest..)?).map(|i| rest + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b'\n'),
                Just(b':'),
                Just(b'\\'),
                Just(b'*'),
                Just(0x0b),
                Just(b';'),
                Just(0),
                any::<u8>()
            ],
            0..160,
        )
    }

    proptest! {
        #[test]
        fn block_masks_are_exact(hay in bytes(), at in 0usize..100) {
            let expected = (0..BLOCK)
                .filter(|k| matches!(hay.get(at + k), Some(b'\n' | b':' | b'\\')))
                .fold(0u64, |m, k| m | 1 << k);
            prop_assert_eq!(block_mask_at(&hay, at), expected);
            for lane in 0..BLOCK / LANE {
                let mut padded = [0u8; LANE];
                for (k, b) in padded.iter_mut().enumerate() {
                    *b = hay.get(at + lane * LANE + k).copied().unwrap_or(0);
                }
                let bits = u64::from(swar_lane_mask(&padded)) << (lane * LANE);
                prop_assert_eq!(bits, expected & 0xffff << (lane * LANE));
            }
        }

        #[test]
        fn find_lf_agrees_with_memchr(hay in bytes(), from in 0usize..100) {
            let expected = hay.get(from..).and_then(|r| memchr::memchr(b'\n', r)).map(|i| from + i);
            prop_assert_eq!(find_lf(&hay, from), expected);
        }
    }
}
