//! A published message and how it is written as MESSAGE frames.
//!
//! Owns [`Message`] (one SEND's body as one shared `Bytes`, its user headers, its
//! number) and the per-delivery encoder. Writing a delivery is a handful of
//! `extend_from_slice` calls into the receiving connection's outbox: the user-header
//! block is escaped once per message and receiver version (lazily), the
//! `destination:` line once per destination and version, the `subscription:` line
//! once per subscription. Nothing on this path allocates except the outbox growing.
//!
//! Header rules (C1, S1, S2, F9): user-defined headers pass through unchanged and
//! in order; `destination`, `message-id`, `subscription`, `ack`, `receipt`,
//! `transaction` and `content-length` from the SEND are set by the broker, not
//! copied; `content-length` is written when the SEND had one or the body holds a
//! NUL. A header the receiver's version cannot carry (an LF in a 1.0 value, a CR in
//! 1.1) is dropped from that receiver's copy and counted.

use crate::store::StoredMessage;
use bytes::{BufMut, Bytes, BytesMut};
use stompkit_escape::{Escaping, Part, write_escaped};
use stompkit_frame::{Command, Frame, Headers, Version, names};
use stompkit_wire::put_decimal;

/// Headers the broker sets itself; a SEND's own values are not copied.
pub(crate) const RESERVED: [&str; 7] = [
    names::DESTINATION,
    names::MESSAGE_ID,
    names::SUBSCRIPTION,
    names::ACK,
    names::RECEIPT,
    names::TRANSACTION,
    names::CONTENT_LENGTH,
];

/// The SEND header that makes a queue message durable.
pub const PERSISTENT: &str = "persistent";
/// RabbitMQ's time to live: ms from the SEND.
const EXPIRATION: &str = "expiration";
/// ActiveMQ's expiry: ms since the Unix epoch (0 = never).
const EXPIRES: &str = "expires";
/// What a SEND's own headers say about its message; for each, the first
/// occurrence counts (an unparsable number counts as absent).
#[derive(Default)]
struct Marks {
    content_length: bool,
    persistent: bool,
    expiration: Option<u64>,
    expires: Option<u64>,
}

impl Marks {
    /// Reads `headers`, in one pass.
    #[inline]
    fn read(headers: &Headers) -> Marks {
        let [content_length, persistent, expiration, expires] =
            headers.first_values([names::CONTENT_LENGTH, PERSISTENT, EXPIRATION, EXPIRES]);
        let number = |v: Option<&str>| v.and_then(|v| v.parse().ok());
        Marks {
            content_length: content_length.is_some(),
            persistent: persistent == Some("true"),
            expiration: number(expiration),
            expires: number(expires),
        }
    }
}

/// What a dead letter carries: where it was, how often it was delivered, why.
const DEAD_LETTER_HEADERS: [&str; 3] = [
    "original-destination",
    "delivery-count",
    "dead-letter-reason",
];

/// A message held or being dispatched by the router.
#[derive(Debug)]
pub struct Message {
    /// Broker-wide message number; `message-id` is its decimal spelling.
    pub num: u64,
    headers: Headers,
    /// The body, shared by every copy.
    pub body: Bytes,
    content_length: bool,
    /// Header and body bytes, for queue accounting (measured on first use, so
    /// topic deliveries never pay for it).
    size: std::cell::OnceCell<usize>,
    /// Set when the message goes back to a queue.
    pub redelivered: bool,
    /// `persistent:true` on its SEND: kept on disk while in a queue.
    pub persistent: bool,
    /// When it expires, in ms since the Unix epoch; 0 = never.
    pub expires: u64,
    /// Deliveries so far (queues; counts toward `max_deliveries`).
    pub deliveries: u32,
    /// Headers and body are in allocations of their own ([`Message::compact`]).
    compact: bool,
    blocks: [Option<Block>; 3],
    /// Cluster mode: the JetStream token of a message pulled from a queue's
    /// stream, to settle it (`router/cluster.rs`); `None` otherwise.
    pub(crate) token: Option<std::sync::Arc<str>>,
    /// A queue's subscriber generation at which no subscriber selected it
    /// (0: never looked at); the router's queue dispatch skips it until a
    /// subscription joins.
    pub(crate) unwanted_at: u64,
}

#[derive(Debug)]
struct Block {
    bytes: Box<[u8]>,
    dropped: u32,
}

impl Message {
    /// Takes a SEND frame's headers and body (no copy of either). It expires
    /// by its `expiration` (ms from `now`, RabbitMQ) or `expires` (ms since the
    /// epoch, ActiveMQ; 0 = never) header, else `default_ttl` ms from `now`
    /// (0 = never); an unparsable value counts as absent.
    pub fn from_send(num: u64, frame: Frame, now: u64, default_ttl: u64) -> Message {
        let (_, headers, body) = frame.into_parts();
        let (mut message, marks) = Message::new(num, headers, body);
        message.expires = match (marks.expiration, marks.expires) {
            (Some(ttl), _) => now.saturating_add(ttl),
            (_, Some(at)) => at,
            _ if default_ttl > 0 => now.saturating_add(default_ttl),
            _ => 0,
        };
        message
    }

    /// A message of `headers` and `body` (its `persistent`, never expiring).
    pub(crate) fn of_headers(num: u64, headers: Headers, body: Bytes) -> Message {
        Message::new(num, headers, body).0
    }

    /// A message of `headers` and `body`, and what its headers say (one pass).
    fn new(num: u64, headers: Headers, body: Bytes) -> (Message, Marks) {
        let marks = Marks::read(&headers);
        let content_length = marks.content_length || memchr::memchr(0, &body).is_some();
        let message = Message::of_parts(num, headers, body, content_length, marks.persistent);
        (message, marks)
    }

    /// A fresh (undelivered, never expiring) message of these parts.
    fn of_parts(
        num: u64,
        headers: Headers,
        body: Bytes,
        content_length: bool,
        persistent: bool,
    ) -> Message {
        Message {
            num,
            size: std::cell::OnceCell::new(),
            headers,
            body,
            content_length,
            redelivered: false,
            persistent,
            expires: 0,
            deliveries: 0,
            blocks: [None, None, None],
            compact: false,
            token: None,
            unwanted_at: 0,
        }
    }

    /// A message recovered from the store: `redelivered` when it was delivered
    /// before.
    pub fn from_stored(stored: StoredMessage) -> Message {
        let (mut message, _) = Message::new(stored.id, stored.headers, stored.body);
        message.persistent = true;
        message.expires = stored.expires;
        message.deliveries = stored.deliveries;
        message.redelivered = stored.deliveries > 0;
        message.compact = true;
        message
    }

    /// A copy numbered `num` sharing this one's body (a durable
    /// subscription's own copy of a topic message).
    pub fn copy(&self, num: u64) -> Message {
        let headers = self.headers.clone();
        let body = self.body.clone();
        let mut message =
            Message::of_parts(num, headers, body, self.content_length, self.persistent);
        message.expires = self.expires;
        message
    }

    /// This message as a dead letter numbered `num`: its headers plus
    /// `original-destination`, `delivery-count` and `dead-letter-reason`.
    pub fn dead_letter(&self, num: u64, original: &str, reason: &str) -> Message {
        let mut headers = self.headers.clone();
        for name in DEAD_LETTER_HEADERS {
            headers.remove(name);
        }
        headers.push(DEAD_LETTER_HEADERS[0], original);
        headers.push(DEAD_LETTER_HEADERS[1], &self.deliveries.to_string());
        headers.push(DEAD_LETTER_HEADERS[2], reason);
        let (mut message, _) = Message::new(num, headers, self.body.clone());
        message.persistent = self.persistent;
        message.expires = self.expires;
        message
    }

    /// The SEND's headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Whether it has expired at `now` (ms since the Unix epoch).
    #[inline]
    pub fn expired(&self, now: u64) -> bool {
        self.expires != 0 && self.expires <= now
    }

    /// Bytes held: headers and body, for queue accounting (a bodiless message
    /// with large headers is not free).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        *self
            .size
            .get_or_init(|| header_bytes(&self.headers) + self.body.len())
    }

    /// Copies headers and body out of the read buffer they were parsed from
    /// (frames share it, zero-copy), once: a message held for long (queued,
    /// unacked) must not pin a read buffer many times its size.
    pub fn compact(&mut self) {
        if !self.compact {
            own_frame_bytes(&mut self.headers, &mut self.body);
            self.compact = true;
        }
    }

    /// The escaped user-header block for `version`, built on first use. Returns it
    /// and how many headers it had to drop; `new` is true when it was just built.
    fn block(&mut self, version: Version) -> (&[u8], u32, bool) {
        let slot = &mut self.blocks[version as usize];
        let mut new = false;
        if slot.is_none() {
            new = true;
            *slot = Some(build_block(&self.headers, version));
        }
        match slot {
            Some(b) => (&b.bytes, b.dropped, new),
            None => (&[], 0, false),
        }
    }
}

/// A frame's header text and body in bytes (`name:value\n` per header), what a
/// queue or a transaction holding it is charged.
pub fn frame_size(frame: &Frame) -> usize {
    header_bytes(frame.headers()) + frame.body().len()
}

/// `frame` holding only its own bytes, not the read buffer it was parsed from
/// (a frame held until COMMIT; see [`own_frame_bytes`]).
pub fn owned_frame(frame: Frame) -> Frame {
    let (command, mut headers, mut body) = frame.into_parts();
    own_frame_bytes(&mut headers, &mut body);
    Frame::from_parts(command, headers, body)
}

/// Copies a frame's headers and body out of the read buffer they share, so
/// holding the frame holds only its own bytes (see [`Message::compact`]).
pub fn own_frame_bytes(headers: &mut Headers, body: &mut Bytes) {
    *headers = headers.iter().collect();
    *body = Bytes::copy_from_slice(body);
}

fn header_bytes(headers: &Headers) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 2)
        .sum()
}

fn build_block(headers: &Headers, version: Version) -> Block {
    let escaping = Escaping::for_frame(Some(version), Command::Message);
    let mut out = Vec::new();
    let mut dropped = 0;
    for (name, value) in headers.iter() {
        if RESERVED.contains(&name) {
            continue;
        }
        // `write_escaped` checks before it writes: on error nothing was added.
        let start = out.len();
        let ok = !name.is_empty()
            && write_escaped(name.as_bytes(), escaping, Part::Name, &mut out).is_ok()
            && {
                out.push(b':');
                write_escaped(value.as_bytes(), escaping, Part::Value, &mut out).is_ok()
            };
        if ok {
            out.push(b'\n');
        } else {
            out.truncate(start);
            dropped += 1;
        }
    }
    Block {
        bytes: out.into_boxed_slice(),
        dropped,
    }
}

/// A `name:value\n` line with the value escaped for `version` (MESSAGE rules);
/// text the version cannot carry is written unescaped minus CR/LF.
pub fn header_line(name: &str, value: &str, version: Version) -> Box<[u8]> {
    let escaping = Escaping::for_frame(Some(version), Command::Message);
    let mut out = Vec::with_capacity(name.len() + value.len() + 2);
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    if write_escaped(value.as_bytes(), escaping, Part::Value, &mut out).is_err() {
        out.extend(value.bytes().filter(|b| !matches!(b, b'\r' | b'\n')));
    }
    out.push(b'\n');
    out.into_boxed_slice()
}

/// What one delivery needs to know about its subscription.
pub struct Delivery<'a> {
    /// `destination:...\n` for the receiver's version.
    pub destination_line: &'a [u8],
    /// `subscription:...\n` for the receiver's version.
    pub subscription_line: &'a [u8],
    /// The receiver's version.
    pub version: Version,
    /// `Some((delivery tag, sub key))` when a 1.2 `ack` header is due (client
    /// ack modes).
    pub ack: Option<(u64, usize)>,
}

/// Writes one MESSAGE frame for `message` into `buf`. Returns the number of user
/// headers dropped for this receiver and whether the block was built now.
#[inline]
pub fn encode_delivery(buf: &mut BytesMut, message: &mut Message, d: &Delivery<'_>) -> (u32, bool) {
    let num = message.num;
    let redelivered = message.redelivered;
    let content_length = message.content_length;
    let body_len = message.body.len();
    let (block, dropped, new) = message.block(d.version);
    let size = 8
        + d.destination_line.len()
        + 32
        + d.subscription_line.len()
        + 48
        + block.len()
        + 40
        + body_len
        + 2;
    buf.reserve(size);
    buf.put_slice(b"MESSAGE\n");
    buf.put_slice(d.destination_line);
    buf.put_slice(b"message-id:");
    put_decimal(num, buf);
    buf.put_u8(b'\n');
    buf.put_slice(d.subscription_line);
    if let Some((tag, sub)) = d.ack {
        buf.put_slice(b"ack:");
        put_decimal(tag, buf);
        buf.put_u8(b'.');
        put_decimal(sub as u64, buf);
        buf.put_u8(b'\n');
    }
    if redelivered {
        buf.put_slice(b"redelivered:true\n");
    }
    buf.put_slice(block);
    if content_length {
        buf.put_slice(b"content-length:");
        put_decimal(body_len as u64, buf);
        buf.put_u8(b'\n');
    }
    buf.put_u8(b'\n');
    buf.put_slice(&message.body);
    buf.put_u8(0);
    (dropped, new)
}

/// Parses the broker's 1.2 `ack` value `<delivery tag>.<subscription key>`.
pub fn parse_ack_id(id: &str) -> Option<(u64, usize)> {
    let (num, sub) = id.split_once('.')?;
    Some((num.parse().ok()?, sub.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver(frame: Frame, version: Version, ack: Option<(u64, usize)>) -> (Vec<u8>, u32) {
        let mut m = Message::from_send(7, frame, 0, 0);
        let dest = header_line("destination", "/topic/a", version);
        let sub = header_line("subscription", "s:1", version);
        let mut buf = BytesMut::new();
        let (dropped, _) = encode_delivery(
            &mut buf,
            &mut m,
            &Delivery {
                destination_line: &dest,
                subscription_line: &sub,
                version,
                ack,
            },
        );
        (buf.to_vec(), dropped)
    }

    #[test]
    fn c1_s1_user_headers_pass_through_and_reserved_ones_are_set_by_the_broker() {
        let f = Frame::send("/topic/a")
            .header("x-k", "a:b")
            .header("content-type", "text/plain")
            .header("receipt", "r")
            .header("x-k", "second")
            .with_body("hi");
        let (bytes, dropped) = deliver(f, Version::V1_2, Some((41, 3)));
        assert_eq!(dropped, 0);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "MESSAGE\ndestination:/topic/a\nmessage-id:7\nsubscription:s\\c1\nack:41.3\nx-k:a\\cb\ncontent-type:text/plain\nx-k:second\n\nhi\0"
        );
    }

    #[test]
    fn f9_content_length_as_given_or_when_the_body_holds_a_nul() {
        let (bytes, _) = deliver(
            Frame::send("/q").with_body(&b"a\0b"[..]),
            Version::V1_1,
            None,
        );
        assert!(bytes.windows(17).any(|w| w == b"content-length:3\n"));
        let given = Frame::send("/q")
            .header("content-length", "2")
            .with_body("ab");
        let (bytes, _) = deliver(given, Version::V1_1, None);
        assert!(bytes.windows(17).any(|w| w == b"content-length:2\n"));
        let (bytes, _) = deliver(Frame::send("/q").with_body("ab"), Version::V1_1, None);
        assert!(!bytes.windows(15).any(|w| w == b"content-length:"));
    }

    #[test]
    fn e5_a_header_a_1_0_receiver_cannot_carry_is_dropped_and_counted() {
        let f = Frame::send("/q")
            .header("multi", "a\nb")
            .header("ok", "c:d");
        let (bytes, dropped) = deliver(f.clone(), Version::V1_0, None);
        assert_eq!(dropped, 1);
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("multi"));
        assert!(
            text.contains("\nok:c:d\n"),
            "1.0 values carry raw colons: {text}"
        );
        let (bytes, dropped) = deliver(f, Version::V1_2, None);
        assert_eq!(dropped, 0);
        assert!(String::from_utf8(bytes).unwrap().contains("multi:a\\nb\n"));
    }

    #[test]
    fn compact_copies_headers_and_body_out_of_the_read_buffer() {
        let mut wire = bytes::BytesMut::with_capacity(64 * 1024);
        wire.extend_from_slice(b"SEND\ndestination:/queue/q\nx-k:v\n\nsmall\0");
        let range = wire.as_ptr_range();
        let mut parser = stompkit_wire::Parser::new();
        let Ok(Some(stompkit_wire::Event::Frame(frame))) = parser.parse(&mut wire) else {
            panic!("no frame");
        };
        let inside = |p: *const u8| range.contains(&p);
        assert!(inside(frame.body().as_ptr()), "parsing is zero-copy");
        let mut m = Message::from_send(1, frame, 0, 0);
        m.compact();
        assert!(!inside(m.body.as_ptr()));
        assert_eq!(&m.body[..], b"small");
        for (name, value) in m.headers.iter() {
            assert!(!inside(name.as_ptr()) && !inside(value.as_ptr()), "{name}");
        }
        assert_eq!(m.headers.get("x-k"), Some("v"));
    }

    #[test]
    fn ack_ids_round_trip() {
        assert_eq!(parse_ack_id("12.3"), Some((12, 3)));
        assert_eq!(parse_ack_id("12"), None);
        assert_eq!(parse_ack_id("x.3"), None);
    }
}
