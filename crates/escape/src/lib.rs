//! Header escaping and unescaping, per STOMP version and per command.
//!
//! Owns rules E1–E5: which frames escape their headers and which sequences exist.
//! 1.2 escapes CR, LF, `:` and `\` as `\r \n \c \\`; 1.1 the same without `\r`;
//! 1.0 and the CONNECT, STOMP and CONNECTED frames are never escaped. Anything else
//! after a backslash (`\t`, a trailing `\`) is a fatal error (E3).
//!
//! Both directions return [`Cow`]: text with nothing to escape (the common case)
//! is borrowed, not copied. The next special byte is found with `memchr` (short
//! text, the usual case, with a table walk or eight bytes at a time instead).
//! [`unescape_in_place`] decodes inside the caller's buffer instead (the parser's
//! way: decoded text is never longer than the raw).
//!
//! ```
//! use stompkit_escape::{Escaping, Part, escape, unescape};
//! use stompkit_frame::{Command, Version};
//!
//! let esc = Escaping::for_frame(Some(Version::V1_2), Command::Send);
//! assert_eq!(unescape(b"a\\cb\\nc", esc).unwrap(), &b"a:b\nc"[..]);
//! assert_eq!(escape("a:b\nc", esc, Part::Value).unwrap(), "a\\cb\\nc");
//! // CONNECT is never escaped (E1): the two characters `\c` stay as they are.
//! let connect = Escaping::for_frame(Some(Version::V1_2), Command::Connect);
//! assert_eq!(unescape(b"a\\cb", connect).unwrap(), &b"a\\cb"[..]);
//! ```
#![deny(missing_docs)]

use bytes::BufMut;
use std::borrow::Cow;
use std::fmt;
use stompkit_frame::{Command, Version};

/// The README's examples, run as doctests (`cargo test --doc`).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Which escape sequences apply to a frame's headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Escaping {
    /// No escaping: STOMP 1.0, and CONNECT/STOMP/CONNECTED in every version (E1, E5).
    None,
    /// STOMP 1.1: `\n`, `\c`, `\\`.
    V1_1,
    /// STOMP 1.2: `\r`, `\n`, `\c`, `\\`.
    V1_2,
}

impl Escaping {
    /// The escaping of a frame with `command` in a session of `version`. `None` for
    /// the version means "not negotiated yet", which reads like 1.0 (no escaping).
    #[inline]
    pub fn for_frame(version: Option<Version>, command: Command) -> Escaping {
        if !command.escapes_headers() {
            return Escaping::None;
        }
        match version {
            Some(Version::V1_2) => Escaping::V1_2,
            Some(Version::V1_1) => Escaping::V1_1,
            Some(Version::V1_0) | None => Escaping::None,
        }
    }
}

/// Whether text is a header name or a header value: a raw `:` can never be carried
/// in an unescaped name, but can in an unescaped value (F6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// A header name.
    Name,
    /// A header value.
    Value,
}

/// Why header text could not be escaped or unescaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EscapeError {
    /// A backslash followed by a byte that is no escape in this version (E3),
    /// such as `\t`, or `\r` in 1.1.
    Undefined {
        /// The byte after the backslash.
        byte: u8,
    },
    /// A backslash at the very end of the text (E3).
    TrailingBackslash,
    /// The text holds a byte that this escaping cannot carry: CR or LF without
    /// escaping, CR in 1.1, `:` in an unescaped name.
    Unrepresentable {
        /// The byte that cannot be written.
        byte: u8,
    },
}

impl fmt::Display for EscapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EscapeError::Undefined { byte } => {
                write!(f, "undefined escape sequence \\{}", byte.escape_ascii())
            }
            EscapeError::TrailingBackslash => f.write_str("header ends with a lone backslash"),
            EscapeError::Unrepresentable { byte } => write!(
                f,
                "header holds byte 0x{byte:02x} that this STOMP version cannot carry"
            ),
        }
    }
}

impl std::error::Error for EscapeError {}

/// Decodes escape sequences in raw header bytes (E2, E3).
///
/// Borrowed when there is no backslash; with [`Escaping::None`] always borrowed.
/// CR handling is the parser's job (F1): this function never sees line ends.
#[inline]
pub fn unescape(raw: &[u8], escaping: Escaping) -> Result<Cow<'_, [u8]>, EscapeError> {
    if escaping == Escaping::None || find_backslash(raw, 0).is_none() {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = raw.to_vec();
    let len = unescape_in_place(&mut out, escaping)?;
    out.truncate(len);
    Ok(Cow::Owned(out))
}

/// Decodes escape sequences where they stand (E2, E3): the decoded text, never
/// longer than the raw, is written to the front of `raw` and its length returned.
/// Bytes after that length are left over from the raw text. The parser uses this
/// to decode headers inside the frame's own buffer, without allocating.
///
/// ```
/// use stompkit_escape::{Escaping, unescape_in_place};
/// let mut raw = *b"ID\\c7\\c1";
/// let len = unescape_in_place(&mut raw, Escaping::V1_2).unwrap();
/// assert_eq!(&raw[..len], b"ID:7:1");
/// ```
pub fn unescape_in_place(raw: &mut [u8], escaping: Escaping) -> Result<usize, EscapeError> {
    if escaping == Escaping::None {
        return Ok(raw.len());
    }
    let Some(first) = find_backslash(raw, 0) else {
        return Ok(raw.len());
    };
    // Everything before `read` has been decoded into `raw[..write]`; write < read.
    let (mut read, mut write) = (first, first);
    loop {
        // raw[read] is a backslash
        let byte = *raw.get(read + 1).ok_or(EscapeError::TrailingBackslash)?;
        raw[write] = match byte {
            b'n' => b'\n',
            b'c' => b':',
            b'\\' => b'\\',
            b'r' if escaping == Escaping::V1_2 => b'\r',
            _ => return Err(EscapeError::Undefined { byte }),
        };
        read += 2;
        write += 1;
        // Move the run up to the next backslash down, eight bytes at a time (header
        // text is short: a memchr and a memmove per escape cost more).
        loop {
            let Some(chunk) = raw.get(read..read + 8) else {
                // The last few bytes, one at a time.
                while let Some(&b) = raw.get(read) {
                    if b == b'\\' {
                        break;
                    }
                    raw[write] = b;
                    read += 1;
                    write += 1;
                }
                if read == raw.len() {
                    return Ok(write);
                }
                break;
            };
            let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
            let backslashes = first_byte_equal(word, b'\\');
            if backslashes == 0 {
                // write + 8 <= read + 8: only bytes already read are overwritten.
                raw[write..write + 8].copy_from_slice(&word.to_le_bytes());
                read += 8;
                write += 8;
                continue;
            }
            let run = (backslashes.trailing_zeros() / 8) as usize;
            for k in 0..run {
                raw[write + k] = raw[read + k];
            }
            read += run;
            write += run;
            break;
        }
    }
}

/// Position of the first backslash in `raw[from..]`: `memchr` for long text,
/// eight bytes at a time for short text (where starting a SIMD search costs more
/// than the search, like [`next_special`]'s table walk).
#[inline]
fn find_backslash(raw: &[u8], mut from: usize) -> Option<usize> {
    let rest = raw.get(from..)?;
    if rest.len() > 64 {
        return memchr::memchr(b'\\', rest).map(|i| from + i);
    }
    while let Some(chunk) = raw.get(from..from + 8) {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        let backslashes = first_byte_equal(word, b'\\');
        if backslashes != 0 {
            return Some(from + (backslashes.trailing_zeros() / 8) as usize);
        }
        from += 8;
    }
    raw.get(from..)?
        .iter()
        .position(|&b| b == b'\\')
        .map(|i| from + i)
}

/// High bit set in the first byte of `word` (little-endian) equal to `needle`
/// (and maybe in later bytes); zero when none is.
#[inline]
fn first_byte_equal(word: u64, needle: u8) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    let x = word ^ (LO * u64::from(needle));
    x.wrapping_sub(LO) & !x & (LO << 7)
}

/// Encodes header text for the wire (E4). Borrowed when nothing needs escaping.
///
/// Errors with [`EscapeError::Unrepresentable`] when the escaping cannot carry a
/// byte (an LF in a 1.0 value, say): such a header is never silently written.
pub fn escape(text: &str, escaping: Escaping, part: Part) -> Result<Cow<'_, str>, EscapeError> {
    let bytes = text.as_bytes();
    let Some(first) = next_special(bytes, 0) else {
        return Ok(Cow::Borrowed(text));
    };
    check_representable(bytes, first, escaping, part)?;
    if escaping == Escaping::None {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = Vec::with_capacity(bytes.len() + 8);
    write_from(bytes, first, &mut out);
    // Escaping replaces ASCII bytes with ASCII sequences, so UTF-8 stays UTF-8.
    Ok(Cow::Owned(String::from_utf8(out).unwrap_or_default()))
}

/// Writes header text to `dst` escaped (E4), without an intermediate buffer.
/// Checks everything before writing, so on error nothing has been written.
#[inline]
pub fn write_escaped<B: BufMut>(
    text: &[u8],
    escaping: Escaping,
    part: Part,
    dst: &mut B,
) -> Result<(), EscapeError> {
    match next_special(text, 0) {
        None => dst.put_slice(text),
        Some(first) => {
            check_representable(text, first, escaping, part)?;
            if escaping == Escaping::None {
                dst.put_slice(text);
            } else {
                write_from(text, first, dst);
            }
        }
    }
    Ok(())
}

/// Bytes that may need escaping: CR, LF, `:` and `\\`.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\r' as usize] = true;
    t[b'\n' as usize] = true;
    t[b':' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Position of the first byte at or after `from` that may need escaping. Header
/// text is usually short, where a table walk beats starting two SIMD searches.
#[inline]
fn next_special(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    if rest.len() <= 64 {
        return rest
            .iter()
            .position(|&b| SPECIAL[b as usize])
            .map(|i| i + from);
    }
    let lf_colon_bs = memchr::memchr3(b'\n', b':', b'\\', rest);
    let cr = memchr::memchr(
        b'\r',
        match lf_colon_bs {
            Some(end) => &rest[..end],
            None => rest,
        },
    );
    cr.or(lf_colon_bs).map(|i| i + from)
}

fn check_representable(
    bytes: &[u8],
    first: usize,
    escaping: Escaping,
    part: Part,
) -> Result<(), EscapeError> {
    let mut at = Some(first);
    while let Some(i) = at {
        let byte = bytes[i];
        let ok = match (escaping, byte) {
            (Escaping::V1_2, _) => true,
            (Escaping::V1_1, b'\r') => false,
            (Escaping::V1_1, _) => true,
            (Escaping::None, b'\r' | b'\n') => false,
            (Escaping::None, b':') => part == Part::Value,
            (Escaping::None, _) => true,
        };
        if !ok {
            return Err(EscapeError::Unrepresentable { byte });
        }
        if escaping == Escaping::V1_2 {
            return Ok(());
        }
        at = next_special(bytes, i + 1);
    }
    Ok(())
}

/// Writes `bytes` escaped, given the first special byte is at `first`.
fn write_from<B: BufMut>(bytes: &[u8], first: usize, dst: &mut B) {
    let mut done = 0;
    let mut at = Some(first);
    while let Some(i) = at {
        dst.put_slice(&bytes[done..i]);
        dst.put_slice(match bytes[i] {
            b'\r' => b"\\r",
            b'\n' => b"\\n",
            b':' => b"\\c",
            _ => b"\\\\",
        });
        done = i + 1;
        at = next_special(bytes, done);
    }
    dst.put_slice(&bytes[done..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const V12: Escaping = Escaping::V1_2;
    const V11: Escaping = Escaping::V1_1;

    #[test]
    fn e2_decodes_each_sequence() {
        assert_eq!(unescape(b"\\r\\n\\c\\\\", V12).unwrap(), &b"\r\n:\\"[..]);
        assert_eq!(unescape(b"\\n\\c\\\\", V11).unwrap(), &b"\n:\\"[..]);
    }

    #[test]
    fn vector_escaped_backslash_then_n_is_not_a_newline() {
        // `a\\nb` is a, backslash, n, b (spec/RULES.md, vector W1)
        assert_eq!(unescape(b"a\\\\nb", V12).unwrap(), &b"a\\nb"[..]);
    }

    #[test]
    fn e3_undefined_escapes_are_errors() {
        assert_eq!(
            unescape(b"a\\tb", V12),
            Err(EscapeError::Undefined { byte: b't' })
        );
        assert_eq!(unescape(b"a\\", V12), Err(EscapeError::TrailingBackslash));
        assert_eq!(unescape(b"\\", V11), Err(EscapeError::TrailingBackslash));
        // \r is fatal in 1.1 and valid in 1.2
        assert_eq!(
            unescape(b"\\r", V11),
            Err(EscapeError::Undefined { byte: b'r' })
        );
        assert_eq!(unescape(b"\\r", V12).unwrap(), &b"\r"[..]);
    }

    #[test]
    fn e1_e5_no_escaping_for_connect_frames_and_1_0() {
        for (v, c) in [
            (Some(Version::V1_2), Command::Connect),
            (Some(Version::V1_2), Command::Stomp),
            (Some(Version::V1_1), Command::Connected),
            (Some(Version::V1_0), Command::Send),
            (None, Command::Message),
        ] {
            let esc = Escaping::for_frame(v, c);
            assert_eq!(esc, Escaping::None);
            // `\c` in a CONNECT header stays the two characters (spec/RULES.md, vector W3)
            assert_eq!(unescape(b"a\\cb\\t", esc).unwrap(), &b"a\\cb\\t"[..]);
        }
        assert_eq!(Escaping::for_frame(Some(Version::V1_1), Command::Ack), V11);
    }

    #[test]
    fn nothing_to_do_borrows() {
        assert!(matches!(unescape(b"plain", V12).unwrap(), Cow::Borrowed(_)));
        assert!(matches!(
            escape("plain", V12, Part::Value).unwrap(),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            escape("a:b", Escaping::None, Part::Value).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn e4_escapes_each_special_byte() {
        assert_eq!(
            escape("\r\n:\\", V12, Part::Value).unwrap(),
            "\\r\\n\\c\\\\"
        );
        assert_eq!(escape("x\n:\\y", V11, Part::Name).unwrap(), "x\\n\\c\\\\y");
    }

    #[test]
    fn unrepresentable_text_is_an_error_not_silently_written() {
        use EscapeError::Unrepresentable;
        assert_eq!(
            escape("a\nb", Escaping::None, Part::Value),
            Err(Unrepresentable { byte: b'\n' })
        );
        assert_eq!(
            escape("a:b", Escaping::None, Part::Name),
            Err(Unrepresentable { byte: b':' })
        );
        assert_eq!(
            escape("a\rb", V11, Part::Value),
            Err(Unrepresentable { byte: b'\r' })
        );
        let mut out = Vec::new();
        assert!(write_escaped(b"ok:\\then\r", V11, Part::Value, &mut out).is_err());
        assert!(out.is_empty(), "nothing written on error");
    }

    proptest! {
        #[test]
        fn unescape_inverts_escape(s in "\\PC*|[\\\\:\r\na-c]*") {
            for esc in [V11, V12] {
                match escape(&s, esc, Part::Value) {
                    Ok(e) => {
                        prop_assert_eq!(unescape(e.as_bytes(), esc).unwrap(), s.as_bytes());
                        let mut w = Vec::new();
                        write_escaped(s.as_bytes(), esc, Part::Value, &mut w).unwrap();
                        prop_assert_eq!(w, e.as_bytes());
                    }
                    Err(_) => prop_assert!(esc == V11 && s.contains('\r')),
                }
            }
        }

        #[test]
        fn unescape_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            for esc in [Escaping::None, V11, V12] {
                let _ = unescape(&raw, esc);
            }
        }

        #[test]
        fn unescape_in_place_agrees_with_unescape(
            raw in proptest::collection::vec(prop_oneof![
                Just(b'\\'), Just(b'c'), Just(b'n'), Just(b'r'), Just(b't'), any::<u8>()
            ], 0..64)
        ) {
            for esc in [Escaping::None, V11, V12] {
                let mut buf = raw.clone();
                let in_place = unescape_in_place(&mut buf, esc).map(|n| buf[..n].to_vec());
                prop_assert_eq!(in_place, unescape(&raw, esc).map(|c| c.into_owned()));
            }
        }
    }
}
