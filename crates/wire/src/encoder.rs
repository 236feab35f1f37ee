//! The frame encoder: [`Frame`] → bytes, for a given version.
//!
//! Owns the writing side of the grammar: LF line ends, escaping per version and
//! command (E1–E5), `content-length` per a [`ContentLength`] policy (F8, F9), no
//! body on frames that must not have one (F7). A header the target version cannot
//! carry is an [`EncodeError`], and nothing is written for that frame.
//! [`put_decimal`] (a number's digits, without allocating) is public for other
//! encoders of STOMP bytes (the broker's pre-encoded MESSAGE heads).

use crate::error::EncodeError;
use bytes::BufMut;
use stompkit_escape::{Escaping, Part, write_escaped};
use stompkit_frame::{Frame, Version, names, parse_content_length};

/// When the encoder writes a `content-length` header (on SEND, MESSAGE and ERROR).
///
/// The choice matters to some brokers: ActiveMQ reads the presence of
/// `content-length` as "binary message". Frames that carry no body (F7) never get
/// one added; their own is dropped, or under `AsGiven` must be 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ContentLength {
    /// Always write one with the body's length, replacing the frame's own.
    Always,
    /// Only when the body holds a NUL (F9); the frame's own is dropped.
    WhenNeeded,
    /// Keep the frame's own header (it must match the body) and add one when the
    /// body holds a NUL and the frame has none.
    #[default]
    AsGiven,
}

/// Writes frames for one session's version.
///
/// ```
/// use stompkit_frame::{Frame, Version};
/// use stompkit_wire::Encoder;
///
/// let encoder = Encoder::new(Some(Version::V1_2));
/// let mut out = Vec::new();
/// encoder.encode(&Frame::send("/queue/a").header("x", "a:b").with_body("hi"), &mut out)?;
/// assert_eq!(out, b"SEND\ndestination:/queue/a\nx:a\\cb\n\nhi\0");
/// # Ok::<(), stompkit_wire::EncodeError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Encoder {
    version: Option<Version>,
    content_length: ContentLength,
}

impl Encoder {
    /// An encoder for `version`; `None` before negotiation (escapes like 1.0, so
    /// only CONNECT, CONNECTED and ERROR make sense then).
    pub fn new(version: Option<Version>) -> Encoder {
        Encoder {
            version,
            content_length: ContentLength::default(),
        }
    }

    /// Sets the `content-length` policy.
    pub fn with_content_length(mut self, policy: ContentLength) -> Encoder {
        self.content_length = policy;
        self
    }

    /// The version frames are written for.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Switches to the negotiated version.
    pub fn set_version(&mut self, version: Version) {
        self.version = Some(version);
    }

    /// Writes a heart-beat: a single LF, valid in every version (H4).
    #[inline]
    pub fn encode_heartbeat<B: BufMut>(&self, dst: &mut B) {
        dst.put_u8(b'\n');
    }

    /// Writes `frame` to `dst`. On error nothing has been written.
    pub fn encode<B: BufMut>(&self, frame: &Frame, dst: &mut B) -> Result<(), EncodeError> {
        let command = frame.command;
        let body = frame.body();
        if !command.allows_body() && !body.is_empty() {
            return Err(EncodeError::BodyNotAllowed(command));
        }
        let (keep_own_length, add_length) = self.length_plan(frame)?;
        match frame.headers().plain_lines() {
            // Text no version escapes: the lines go out as they are, in one piece.
            Some(lines) if keep_own_length || !frame.headers().contains(names::CONTENT_LENGTH) => {
                dst.put_slice(command.as_str().as_bytes());
                dst.put_u8(b'\n');
                dst.put_slice(lines);
            }
            _ => self.put_head(frame, keep_own_length, dst)?,
        }
        if add_length {
            dst.put_slice(b"content-length:");
            put_decimal(body.len() as u64, dst);
            dst.put_u8(b'\n');
        }
        dst.put_u8(b'\n');
        dst.put_slice(body);
        dst.put_u8(0);
        Ok(())
    }

    /// Writes the command line and the headers one by one, escaped for this
    /// version, leaving out the frame's own `content-length` unless
    /// `keep_own_length`. Checks every header first: on error nothing is written.
    #[inline]
    fn put_head<B: BufMut>(
        &self,
        frame: &Frame,
        keep_own_length: bool,
        dst: &mut B,
    ) -> Result<(), EncodeError> {
        let escaping = Escaping::for_frame(self.version, frame.command);
        // Only 1.0/1.1 and CONNECT-like frames have bytes they cannot carry, so
        // 1.2 frames are checked only for empty names.
        for (name, value) in frame.headers().iter() {
            if name.is_empty() {
                return Err(EncodeError::EmptyHeaderName);
            }
            if escaping != Escaping::V1_2 {
                for (text, part) in [(name, Part::Name), (value, Part::Value)] {
                    stompkit_escape::escape(text, escaping, part).map_err(unrepresentable)?;
                }
            }
        }
        dst.put_slice(frame.command.as_str().as_bytes());
        dst.put_u8(b'\n');
        for (name, value) in frame.headers().iter() {
            if !keep_own_length && name == names::CONTENT_LENGTH {
                continue;
            }
            // Checked above: these cannot fail.
            let _ = write_escaped(name.as_bytes(), escaping, Part::Name, dst);
            dst.put_u8(b':');
            let _ = write_escaped(value.as_bytes(), escaping, Part::Value, dst);
            dst.put_u8(b'\n');
        }
        Ok(())
    }

    /// Whether to keep the frame's own `content-length` headers and whether to add one.
    ///
    /// A frame without a body (F7; its body is empty by now) gets none added: under
    /// `Always`/`WhenNeeded` its own is dropped, under `AsGiven` it must say 0, since
    /// any other value would make the peer read the next bytes as a body.
    fn length_plan(&self, frame: &Frame) -> Result<(bool, bool), EncodeError> {
        let has_nul = || memchr::memchr(0, frame.body()).is_some();
        Ok(match self.content_length {
            ContentLength::Always => (false, frame.command.allows_body()),
            ContentLength::WhenNeeded => (false, has_nul()),
            ContentLength::AsGiven => match frame.headers().get(names::CONTENT_LENGTH) {
                Some(given) => {
                    let len = parse_content_length(given.as_bytes())
                        .map_err(|_| EncodeError::ContentLengthMismatch)?;
                    if len != frame.body().len() as u64 {
                        return Err(EncodeError::ContentLengthMismatch);
                    }
                    (true, false)
                }
                None => (true, has_nul()),
            },
        })
    }
}

fn unrepresentable(e: stompkit_escape::EscapeError) -> EncodeError {
    match e {
        stompkit_escape::EscapeError::Unrepresentable { byte } => {
            EncodeError::Unrepresentable { byte }
        }
        _ => EncodeError::Unrepresentable { byte: 0 },
    }
}

/// Writes `n` in decimal (ASCII digits, no sign, no leading zeros) without
/// allocating: what a `content-length` value, a message id or an ack id needs.
///
/// ```
/// let mut buf = Vec::new();
/// stompkit_wire::put_decimal(0, &mut buf);
/// buf.push(b' ');
/// stompkit_wire::put_decimal(u64::MAX, &mut buf);
/// assert_eq!(buf, b"0 18446744073709551615");
/// ```
#[inline]
pub fn put_decimal(mut n: u64, dst: &mut impl BufMut) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&digits[i..]);
}
