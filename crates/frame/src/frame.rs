//! The frame: a command, its headers and a body.
//!
//! Owns the [`Frame`] type, typed accessors for the standard headers and builders
//! for the frames a client or server writes. It does not read or write bytes
//! (`stompkit-wire` does) and does not enforce session rules (the broker does).

use crate::headers::Headers;
use crate::{Command, names};
use bytes::Bytes;
use std::fmt;

/// One STOMP frame. The body is a shared [`Bytes`], so handing one message to many
/// subscribers copies no payload.
///
/// ```
/// use stompkit_frame::{Command, Frame};
/// let frame = Frame::send("/queue/orders")
///     .header("content-type", "application/json")
///     .with_receipt("r-1")
///     .with_body(r#"{"id":7}"#);
/// assert_eq!(frame.command, Command::Send);
/// assert_eq!(frame.destination(), Some("/queue/orders"));
/// assert_eq!(frame.receipt(), Some("r-1"));
/// assert_eq!(frame.body(), br#"{"id":7}"#);
/// ```
///
/// A parsed frame keeps one [`Bytes`]: the bytes it was read from, which its
/// headers and its body are ranges of (one reference count per frame, not one
/// per part). [`body_bytes`](Frame::body_bytes) hands out the body as a
/// `Bytes` of its own when it must outlive the frame.
#[derive(Clone)]
pub struct Frame {
    /// The frame's command.
    pub command: Command,
    headers: Headers,
    body: Body,
}

/// Where a frame's body is.
#[derive(Clone)]
enum Body {
    /// A `Bytes` of its own (built frames, or after the headers were changed).
    Own(Bytes),
    /// `start..end` of the headers' backing bytes (parsed frames).
    Backing { start: u32, end: u32 },
}

/// The `ack` mode of a subscription (C2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AckMode {
    /// The server treats a message as acknowledged once sent (the default).
    #[default]
    Auto,
    /// Cumulative: an ACK covers the message and every earlier one of the subscription.
    Client,
    /// Each ACK or NACK covers only the message it names (1.1+).
    ClientIndividual,
}

impl AckMode {
    /// The header spelling: `auto`, `client`, `client-individual`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }

    /// Reads a header value; anything else is `None`.
    pub fn from_header(value: &str) -> Option<AckMode> {
        match value {
            "auto" => Some(AckMode::Auto),
            "client" => Some(AckMode::Client),
            "client-individual" => Some(AckMode::ClientIndividual),
            _ => None,
        }
    }
}

impl fmt::Display for AckMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `content-length` value that is not a plain decimal `u64` (F8): empty, signed
/// (`-1`, `+5`), padded (` 5`), trailing garbage (`5x`) or too large.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadContentLength;

impl fmt::Display for BadContentLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("content-length is not a non-negative decimal integer")
    }
}

impl std::error::Error for BadContentLength {}

/// Parses a `content-length` value strictly: ASCII digits only, at most `u64::MAX`.
///
/// ```
/// use stompkit_frame::parse_content_length;
/// assert_eq!(parse_content_length(b"42"), Ok(42));
/// assert!(parse_content_length(b"+5").is_err()); // u64::from_str would accept it
/// assert!(parse_content_length(b"18446744073709551616").is_err());
/// ```
#[inline]
pub fn parse_content_length(value: &[u8]) -> Result<u64, BadContentLength> {
    if value.is_empty() {
        return Err(BadContentLength);
    }
    let mut n: u64 = 0;
    for &b in value {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return Err(BadContentLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(digit)))
            .ok_or(BadContentLength)?;
    }
    Ok(n)
}

impl Frame {
    /// A frame with no headers and no body.
    pub const fn new(command: Command) -> Frame {
        Frame {
            command,
            headers: Headers::new(),
            body: Body::Own(Bytes::new()),
        }
    }

    /// A frame of these parts.
    pub fn from_parts(command: Command, headers: Headers, body: impl Into<Bytes>) -> Frame {
        Frame {
            command,
            headers,
            body: Body::Own(body.into()),
        }
    }

    /// A parsed frame: `headers` backed by the frame's bytes, whose
    /// `body_start..body_end` (within them, below 4 GiB: checked by the caller)
    /// is the body.
    #[inline]
    pub(crate) fn parsed(
        command: Command,
        headers: Headers,
        body_start: u32,
        body_end: u32,
    ) -> Frame {
        Frame {
            command,
            headers,
            body: Body::Backing {
                start: body_start,
                end: body_end,
            },
        }
    }

    /// Headers in wire order, repeats kept (F13), already unescaped.
    #[inline]
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The headers, to change. The body stays as it is (a parsed frame's body
    /// first becomes a `Bytes` of its own, sharing the bytes read).
    pub fn headers_mut(&mut self) -> &mut Headers {
        if let Body::Backing { .. } = self.body {
            self.body = Body::Own(self.body_bytes());
        }
        &mut self.headers
    }

    /// The body; empty for frames that carry none (F7).
    #[inline]
    pub fn body(&self) -> &[u8] {
        match &self.body {
            Body::Own(bytes) => bytes,
            Body::Backing { start, end } => self
                .headers
                .backing()
                .get(*start as usize..*end as usize)
                .unwrap_or_default(),
        }
    }

    /// The body as a `Bytes` of its own (no copy: it shares the frame's bytes).
    pub fn body_bytes(&self) -> Bytes {
        match &self.body {
            Body::Own(bytes) => bytes.clone(),
            Body::Backing { start, end } => {
                let backing = self.headers.backing();
                let range =
                    (*start as usize).min(backing.len())..(*end as usize).min(backing.len());
                backing.slice(range)
            }
        }
    }

    /// The command, the headers and the body (no copy of either).
    pub fn into_parts(self) -> (Command, Headers, Bytes) {
        let body = self.body_bytes();
        (self.command, self.headers, body)
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = Body::Own(body.into());
    }

    /// Adds a header at the end (builder style).
    pub fn header(mut self, name: &str, value: &str) -> Frame {
        self.headers_mut().push(name, value);
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Frame {
        self.set_body(body);
        self
    }

    /// Adds a `receipt` header (builder style).
    pub fn with_receipt(self, receipt: &str) -> Frame {
        self.header(names::RECEIPT, receipt)
    }

    /// Adds a `transaction` header (builder style).
    pub fn with_transaction(self, transaction: &str) -> Frame {
        self.header(names::TRANSACTION, transaction)
    }

    /// CONNECT for `host`, offering the given `accept-version` list (for example `"1.0,1.1,1.2"`).
    pub fn connect(host: &str, accept_version: &str) -> Frame {
        Frame::new(Command::Connect)
            .header(names::ACCEPT_VERSION, accept_version)
            .header(names::HOST, host)
    }

    /// CONNECTED for the negotiated `version`.
    pub fn connected(version: crate::Version) -> Frame {
        Frame::new(Command::Connected).header(names::VERSION, version.as_str())
    }

    /// SEND to `destination`.
    pub fn send(destination: &str) -> Frame {
        Frame::new(Command::Send).header(names::DESTINATION, destination)
    }

    /// SUBSCRIBE to `destination` with subscription `id` and an ack mode.
    pub fn subscribe(destination: &str, id: &str, ack: AckMode) -> Frame {
        let frame = Frame::new(Command::Subscribe)
            .header(names::ID, id)
            .header(names::DESTINATION, destination);
        match ack {
            AckMode::Auto => frame,
            _ => frame.header(names::ACK, ack.as_str()),
        }
    }

    /// UNSUBSCRIBE subscription `id`.
    pub fn unsubscribe(id: &str) -> Frame {
        Frame::new(Command::Unsubscribe).header(names::ID, id)
    }

    /// BEGIN transaction `id`.
    pub fn begin(transaction: &str) -> Frame {
        Frame::new(Command::Begin).with_transaction(transaction)
    }

    /// COMMIT transaction `id`.
    pub fn commit(transaction: &str) -> Frame {
        Frame::new(Command::Commit).with_transaction(transaction)
    }

    /// ABORT transaction `id`.
    pub fn abort(transaction: &str) -> Frame {
        Frame::new(Command::Abort).with_transaction(transaction)
    }

    /// DISCONNECT, without receipt (add one with [`with_receipt`](Frame::with_receipt)).
    pub fn disconnect() -> Frame {
        Frame::new(Command::Disconnect)
    }

    /// RECEIPT answering `receipt_id`.
    pub fn receipt_for(receipt_id: &str) -> Frame {
        Frame::new(Command::Receipt).header(names::RECEIPT_ID, receipt_id)
    }

    /// ERROR with a short `message` header.
    pub fn error(message: &str) -> Frame {
        Frame::new(Command::Error).header(names::MESSAGE, message)
    }

    /// First value of header `name` (F13).
    #[inline]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// `destination`.
    pub fn destination(&self) -> Option<&str> {
        self.get(names::DESTINATION)
    }
    /// `id` (SUBSCRIBE/UNSUBSCRIBE, 1.2 ACK/NACK).
    pub fn id(&self) -> Option<&str> {
        self.get(names::ID)
    }
    /// `ack`: on SUBSCRIBE the mode, on a 1.2 MESSAGE the id to acknowledge with.
    pub fn ack(&self) -> Option<&str> {
        self.get(names::ACK)
    }
    /// The SUBSCRIBE `ack` mode: `Ok(Auto)` when absent, `Err` for an unknown mode.
    pub fn ack_mode(&self) -> Result<AckMode, &str> {
        match self.ack() {
            None => Ok(AckMode::Auto),
            Some(v) => AckMode::from_header(v).ok_or(v),
        }
    }
    /// `receipt`.
    pub fn receipt(&self) -> Option<&str> {
        self.get(names::RECEIPT)
    }
    /// `receipt-id` (RECEIPT, ERROR).
    pub fn receipt_id(&self) -> Option<&str> {
        self.get(names::RECEIPT_ID)
    }
    /// `message-id` (MESSAGE, 1.0/1.1 ACK/NACK).
    pub fn message_id(&self) -> Option<&str> {
        self.get(names::MESSAGE_ID)
    }
    /// `subscription` (MESSAGE, 1.1 ACK/NACK).
    pub fn subscription(&self) -> Option<&str> {
        self.get(names::SUBSCRIPTION)
    }
    /// `transaction`.
    pub fn transaction(&self) -> Option<&str> {
        self.get(names::TRANSACTION)
    }
    /// `content-type`.
    pub fn content_type(&self) -> Option<&str> {
        self.get(names::CONTENT_TYPE)
    }
    /// `content-length`, strictly parsed: `Ok(None)` when absent.
    pub fn content_length(&self) -> Result<Option<u64>, BadContentLength> {
        self.get(names::CONTENT_LENGTH)
            .map(|v| parse_content_length(v.as_bytes()))
            .transpose()
    }
    /// `heart-beat`, unparsed (`stompkit-negotiate` parses it).
    pub fn heart_beat(&self) -> Option<&str> {
        self.get(names::HEART_BEAT)
    }
    /// `accept-version`, unparsed (`stompkit-negotiate` parses it).
    pub fn accept_version(&self) -> Option<&str> {
        self.get(names::ACCEPT_VERSION)
    }
    /// `version` (CONNECTED, ERROR).
    pub fn version(&self) -> Option<&str> {
        self.get(names::VERSION)
    }
    /// `host` (CONNECT).
    pub fn host(&self) -> Option<&str> {
        self.get(names::HOST)
    }
    /// `login` (CONNECT).
    pub fn login(&self) -> Option<&str> {
        self.get(names::LOGIN)
    }
    /// `passcode` (CONNECT).
    pub fn passcode(&self) -> Option<&str> {
        self.get(names::PASSCODE)
    }
    /// `session` (CONNECTED).
    pub fn session(&self) -> Option<&str> {
        self.get(names::SESSION)
    }
    /// `server` (CONNECTED).
    pub fn server(&self) -> Option<&str> {
        self.get(names::SERVER)
    }
    /// `message` (ERROR).
    pub fn message(&self) -> Option<&str> {
        self.get(names::MESSAGE)
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("command", &self.command)
            .field("headers", &self.headers)
            .field("body", &Bytes::copy_from_slice(self.body()))
            .finish()
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        self.command == other.command
            && self.headers == other.headers
            && self.body() == other.body()
    }
}

impl Eq for Frame {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f8_content_length_is_parsed_strictly() {
        assert_eq!(parse_content_length(b"0"), Ok(0));
        assert_eq!(parse_content_length(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [
            &b""[..],
            b"-1",
            b"+5",
            b" 5",
            b"5 ",
            b"5x",
            b"18446744073709551616",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_content_length(bad), Err(BadContentLength), "{bad:?}");
        }
    }

    #[test]
    fn typed_accessors_read_the_first_entry() {
        let f = Frame::subscribe("/topic/a", "s1", AckMode::ClientIndividual)
            .header("content-length", "3")
            .header("content-length", "9");
        assert_eq!(f.id(), Some("s1"));
        assert_eq!(f.ack_mode(), Ok(AckMode::ClientIndividual));
        assert_eq!(f.content_length(), Ok(Some(3)));
        assert_eq!(Frame::send("/q").ack_mode(), Ok(AckMode::Auto));
        assert_eq!(Frame::send("/q").header("ack", "x").ack_mode(), Err("x"));
        assert_eq!(
            Frame::send("/q")
                .header("content-length", "-1")
                .content_length(),
            Err(BadContentLength)
        );
    }

    #[test]
    fn a_frame_is_small_enough_to_move_cheaply() {
        // Parsers return frames by value and callers move them along (channels,
        // queues): up to 128 bytes the compiler copies them inline, past that it
        // calls memcpy on every move (measured: a 288-byte frame cost more in moves
        // than the header allocation it saved).
        assert!(
            std::mem::size_of::<Frame>() <= 128,
            "{}",
            std::mem::size_of::<Frame>()
        );
    }

    #[test]
    fn a_parsed_frame_keeps_one_bytes_and_its_body_survives_header_changes() {
        let mut buf = bytes::BytesMut::from(&b"SEND\nx:1\n\nhi\0"[..]);
        let mut raw = crate::RawHeaders::new();
        raw.push_line(5, 6, 8).unwrap();
        let mut parsed = raw
            .split_frame(&mut buf, Command::Send, 10, 12, 13)
            .unwrap();
        assert!(buf.is_empty());
        let built = Frame::new(Command::Send).header("x", "1").with_body("hi");
        assert_eq!(
            parsed, built,
            "a parsed and a built frame compare by content"
        );
        assert_eq!(parsed.body_bytes(), "hi");
        parsed.headers_mut().push("y", "2");
        *parsed.headers_mut() = Headers::new();
        assert_eq!(
            parsed.body(),
            b"hi",
            "the body does not depend on the headers"
        );
        assert_eq!(parsed.clone().into_parts().2, "hi");
        let mut raw = crate::RawHeaders::new();
        raw.push_line(5, 6, 8).unwrap();
        let mut buf = bytes::BytesMut::from(&b"SEND\nx:1\n\nhi\0"[..]);
        for (block, body_end, len) in [(11, 12, 14), (13, 12, 13), (10, 14, 13)] {
            assert!(
                raw.split_frame(&mut buf, Command::Send, block, body_end, len)
                    .is_err()
            );
            assert_eq!(buf.len(), 13, "nothing split off on error");
        }
    }

    #[test]
    fn builders_write_required_headers() {
        assert_eq!(Frame::connect("h", "1.2").accept_version(), Some("1.2"));
        assert_eq!(
            Frame::connected(crate::Version::V1_1).version(),
            Some("1.1")
        );
        assert_eq!(Frame::unsubscribe("s").id(), Some("s"));
        assert_eq!(Frame::begin("t").transaction(), Some("t"));
        assert_eq!(Frame::commit("t").command, Command::Commit);
        assert_eq!(Frame::abort("t").command, Command::Abort);
        assert_eq!(Frame::receipt_for("r").receipt_id(), Some("r"));
        assert_eq!(Frame::error("bad").message(), Some("bad"));
        assert_eq!(Frame::disconnect().with_receipt("r").receipt(), Some("r"));
    }
}
