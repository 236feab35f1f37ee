//! What can go wrong reading or writing frames.
//!
//! Owns the two error enums. [`ParseError`] is the peer's fault (a server answers
//! it with an ERROR frame, and [`ParseError::message`] is that frame's `message`
//! header); [`EncodeError`] is the caller's (a frame that the target version
//! cannot carry). Both are small, `Copy` and cheap to match.

use stompkit_escape::EscapeError;
use stompkit_frame::Command;

/// The peer sent bytes that are not a valid STOMP frame, or that exceed a limit.
///
/// After a parser has returned one, it keeps returning it: the stream is done,
/// and a server sends ERROR and closes (S4, S6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The command line is not one of STOMP's commands; they are case-sensitive (F4, C8).
    #[error("unknown command")]
    UnknownCommand,
    /// The command line is longer than `max_command_len`.
    #[error("command line too long")]
    CommandTooLong,
    /// A header line is longer than `max_header_line` (S6).
    #[error("header line too long")]
    HeaderTooLong,
    /// More than `max_headers` headers (S6).
    #[error("too many headers")]
    TooManyHeaders,
    /// Command and headers together exceed `max_header_bytes` (S6).
    #[error("headers too large")]
    HeadersTooLarge,
    /// The body exceeds `max_body`, or `content-length` announces more (S6).
    #[error("body too large")]
    BodyTooLarge,
    /// The byte after a `content-length` body is not NUL (F8).
    #[error("frame not terminated by NUL after content-length body")]
    MissingNul,
    /// `content-length` is not a plain non-negative decimal that fits in 64 bits (F8).
    #[error("invalid content-length")]
    BadContentLength,
    /// An undefined escape sequence in a header (E3).
    #[error("invalid header escape: {0}")]
    InvalidEscape(EscapeError),
    /// A header line without `:` or with an empty name (F6).
    #[error("malformed header line")]
    InvalidHeader,
    /// A CR not followed by LF where that is not allowed (F1).
    #[error("bare CR not followed by LF")]
    BareCr,
    /// The command or a header is not valid UTF-8 (F5).
    #[error("header is not valid UTF-8")]
    InvalidUtf8,
    /// A body on a frame that must not have one (F7).
    #[error("frame must not have a body")]
    BodyNotAllowed,
}

impl ParseError {
    /// A short, stable description for an ERROR frame's `message` header.
    pub fn message(&self) -> &'static str {
        match self {
            ParseError::UnknownCommand => "unknown command",
            ParseError::CommandTooLong => "command line too long",
            ParseError::HeaderTooLong => "header line too long",
            ParseError::TooManyHeaders => "too many headers",
            ParseError::HeadersTooLarge => "headers too large",
            ParseError::BodyTooLarge => "body too large",
            ParseError::MissingNul => "frame not terminated by NUL",
            ParseError::BadContentLength => "invalid content-length",
            ParseError::InvalidEscape(_) => "invalid header escape",
            ParseError::InvalidHeader => "malformed header line",
            ParseError::BareCr => "bare CR not followed by LF",
            ParseError::InvalidUtf8 => "invalid UTF-8",
            ParseError::BodyNotAllowed => "frame must not have a body",
        }
    }
}

/// A frame that cannot be written as asked. Nothing has been written when this is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The command must not carry a body (F7) but the frame has one.
    #[error("{0} frames must not have a body")]
    BodyNotAllowed(Command),
    /// A header with an empty name (F6).
    #[error("empty header name")]
    EmptyHeaderName,
    /// A header holds a byte the target version cannot carry (an LF in 1.0, a CR in 1.1).
    #[error("header holds byte 0x{byte:02x} that the target STOMP version cannot carry")]
    Unrepresentable {
        /// The byte.
        byte: u8,
    },
    /// The frame's own `content-length` does not match its body.
    #[error("content-length header does not match the body")]
    ContentLengthMismatch,
}
