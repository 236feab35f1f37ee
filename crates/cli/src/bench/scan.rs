//! The load generator's receive path: finds whole frames in a read buffer without
//! building a [`Frame`](stompkit_frame::Frame).
//!
//! A subscriber of `stompkit bench` only needs three things from a MESSAGE: that it
//! is one, where its body is, and (in the client ack modes) the header that names
//! it in an ACK. So instead of the general parser it walks the header lines once
//! with `memchr`, reads `content-length` when present and otherwise finds the
//! terminating NUL with `memchr`. Header values are handed out still escaped: an
//! ACK written back in the same version carries them verbatim, which is exactly
//! right. Heart-beat EOLs between frames are skipped.
//!
//! It owns no buffer and does no I/O; [`Scanner`] only remembers how far it
//! already looked for the NUL of a large body, so a big frame arriving in many
//! reads is scanned once.

use std::ops::Range;

/// A complete frame found at the start of the buffer. Ranges index the buffer
/// passed to [`Scanner::next`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scanned {
    /// The command line, e.g. `MESSAGE`.
    pub command: Range<usize>,
    /// The body, without the terminating NUL.
    pub body: Range<usize>,
    /// The raw (escaped) value of the `ack` header, if any (1.2 ACK id).
    pub ack: Option<Range<usize>>,
    /// The raw value of the `message-id` header, if any (1.0/1.1 ACK).
    pub message_id: Option<Range<usize>>,
    /// The raw value of the `message` header, if any (ERROR).
    pub message: Option<Range<usize>>,
    /// Bytes to drop from the buffer to get past this frame (leading EOLs included).
    pub consumed: usize,
}

/// The peer sent something that is not a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// `content-length` was not a decimal number.
    #[error("bad content-length header from the broker")]
    BadContentLength,
    /// The byte after a `content-length` body was not NUL.
    #[error("frame from the broker not terminated by NUL")]
    MissingNul,
}

/// Resumable frame finder (see the module docs).
#[derive(Debug, Default)]
pub struct Scanner {
    /// For the frame in progress with no `content-length`: offset up to which the
    /// body holds no NUL.
    nul_free_until: usize,
}

impl Scanner {
    /// The first complete frame in `buf`, `Ok(None)` when more bytes are needed.
    /// After `Some`, drop `consumed` bytes before the next call; after `None`, the
    /// caller must only append to `buf`.
    pub fn next(&mut self, buf: &[u8]) -> Result<Option<Scanned>, ScanError> {
        // Heart-beats (H4) and the optional EOL after a NUL (F2).
        let mut start = 0;
        while start < buf.len() && (buf[start] == b'\n' || buf[start] == b'\r') {
            start += 1;
        }
        let Some(eol) = memchr::memchr(b'\n', &buf[start..]) else {
            return Ok(None);
        };
        let command = start..trim_cr(buf, start, start + eol);
        let mut line = start + eol + 1;
        let mut frame = Scanned {
            command,
            body: 0..0,
            ack: None,
            message_id: None,
            message: None,
            consumed: 0,
        };
        let mut content_length = None;
        loop {
            let Some(eol) = memchr::memchr(b'\n', &buf[line..]) else {
                return Ok(None);
            };
            let end = trim_cr(buf, line, line + eol);
            let next = line + eol + 1;
            if end == line {
                line = next;
                break;
            }
            let header = &buf[line..end];
            // First occurrence wins (F13): only set what is still unset.
            if let Some(value) = header.strip_prefix(b"content-length:") {
                if content_length.is_none() {
                    content_length = Some(parse_decimal(value).ok_or(ScanError::BadContentLength)?);
                }
            } else if header.starts_with(b"ack:") {
                frame.ack.get_or_insert(line + 4..end);
            } else if header.starts_with(b"message-id:") {
                frame.message_id.get_or_insert(line + 11..end);
            } else if header.starts_with(b"message:") {
                frame.message.get_or_insert(line + 8..end);
            }
            line = next;
        }
        let body_start = line;
        let body_end = match content_length {
            Some(len) => {
                let end = body_start.saturating_add(len);
                if buf.len() <= end {
                    return Ok(None);
                }
                if buf[end] != 0 {
                    return Err(ScanError::MissingNul);
                }
                end
            }
            None => {
                let from = self.nul_free_until.max(body_start);
                match memchr::memchr(0, &buf[from..]) {
                    Some(at) => from + at,
                    None => {
                        self.nul_free_until = buf.len();
                        return Ok(None);
                    }
                }
            }
        };
        self.nul_free_until = 0;
        frame.body = body_start..body_end;
        frame.consumed = body_end + 1;
        Ok(Some(frame))
    }
}

fn trim_cr(buf: &[u8], start: usize, end: usize) -> usize {
    if end > start && buf[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

fn parse_decimal(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &b| {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(usize::from(d))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(buf: &[u8], r: &Option<Range<usize>>) -> Option<String> {
        r.clone()
            .map(|r| String::from_utf8_lossy(&buf[r]).into_owned())
    }

    #[test]
    fn finds_a_message_without_content_length() {
        let buf = b"\n\nMESSAGE\ndestination:/topic/a\nmessage-id:7\nack:a\\c1\n\nhello\0MESSAGE";
        let mut s = Scanner::default();
        let f = s.next(buf).unwrap().unwrap();
        assert_eq!(&buf[f.command.clone()], b"MESSAGE");
        assert_eq!(&buf[f.body.clone()], b"hello");
        assert_eq!(text(buf, &f.message_id).as_deref(), Some("7"));
        // Escaped values stay escaped: written back verbatim in the ACK.
        assert_eq!(text(buf, &f.ack).as_deref(), Some("a\\c1"));
        assert_eq!(&buf[f.consumed..], b"MESSAGE");
        assert_eq!(s.next(&buf[f.consumed..]).unwrap(), None);
    }

    #[test]
    fn content_length_bodies_may_hold_nul_f9() {
        let buf = b"MESSAGE\r\ncontent-length:3\r\n\r\na\0b\0";
        let f = Scanner::default().next(buf).unwrap().unwrap();
        assert_eq!(&buf[f.body], b"a\0b");
        assert_eq!(f.consumed, buf.len());
        assert_eq!(
            Scanner::default().next(b"MESSAGE\ncontent-length:1\n\nab\0"),
            Err(ScanError::MissingNul)
        );
        assert_eq!(
            Scanner::default().next(b"MESSAGE\ncontent-length:x\n\na\0"),
            Err(ScanError::BadContentLength)
        );
    }

    #[test]
    fn incomplete_frames_resume_in_any_chunking() {
        let whole = b"ERROR\nmessage:boom\n\nbody text\0";
        for cut in 0..whole.len() {
            let mut s = Scanner::default();
            assert_eq!(s.next(&whole[..cut]).unwrap(), None, "cut {cut}");
            let f = s.next(whole).unwrap().unwrap();
            assert_eq!(text(whole, &f.message).as_deref(), Some("boom"));
            assert_eq!(&whole[f.body], b"body text");
        }
    }
}
