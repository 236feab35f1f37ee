//! The `tokio_util` codec: [`StompCodec`] turns bytes into [`Event`]s and
//! [`Frame`]s (or heart-beats) into bytes.
//!
//! Owns the glue between `stompkit-wire` and `tokio_util::codec`: the parser's
//! limits, the negotiated version for both directions, the codec error type and
//! the buffer policy (an idle connection keeps no large buffer). It knows nothing
//! of sessions: whoever reads CONNECT/CONNECTED calls [`StompCodec::set_version`].
//!
//! # Buffers
//!
//! `tokio_util`'s `Framed` starts its read and write buffers at
//! [`INITIAL_BUFFER_SIZE`] (8 KiB). A frame larger than that grows the buffer as
//! needed (up to the parser's limits: by default a 4 MiB body). After such a frame,
//! once the buffer holds at most [`INITIAL_BUFFER_SIZE`] bytes and its capacity is
//! above [`SHRINK_ABOVE`] (64 KiB), the codec swaps it for a fresh 8 KiB one, so an
//! idle connection holds at most 8 KiB per direction. (A received frame's body is a
//! zero-copy slice of the read buffer: while the application keeps that `Bytes`
//! alive, the allocation it lives in stays alive too.)

use bytes::{Bytes, BytesMut};
use std::io;
use stompkit_frame::{Frame, Version};
use stompkit_wire::{ContentLength, EncodeError, Encoder, Event, ParseError, Parser, ParserConfig};

/// The capacity `tokio_util::codec::Framed` gives its read and write buffers, and
/// the capacity the codec shrinks them back to.
pub const INITIAL_BUFFER_SIZE: usize = 8 * 1024;

/// A read or write buffer whose capacity exceeds this is replaced by a fresh
/// [`INITIAL_BUFFER_SIZE`] one as soon as it holds little data.
pub const SHRINK_ABOVE: usize = 64 * 1024;

/// What the codec writes: a frame or a heart-beat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// A frame, encoded for the codec's version.
    Frame(Frame),
    /// A heart-beat: one LF (H4).
    HeartBeat,
}

impl From<Frame> for Outgoing {
    fn from(frame: Frame) -> Outgoing {
        Outgoing::Frame(frame)
    }
}

/// Why the codec failed: the transport, the peer's bytes, or a frame the
/// negotiated version cannot carry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The peer sent bytes that are not a valid STOMP frame (the stream is done).
    #[error("invalid frame from peer: {0}")]
    Parse(#[from] ParseError),
    /// A frame could not be encoded; nothing was written.
    #[error("cannot encode frame: {0}")]
    Encode(#[from] EncodeError),
}

/// A [`Decoder`](tokio_util::codec::Decoder) / [`Encoder`](tokio_util::codec::Encoder)
/// pair over `stompkit-wire`.
///
/// Decoding yields [`Event`]s: frames, and heart-beats (bare EOLs) as
/// [`Event::HeartBeat`] so a caller can count them as liveness (H5). Encoding takes
/// a [`Frame`], an [`Outgoing`] (frame or heart-beat) or already-encoded [`Bytes`].
///
/// ```
/// use bytes::BytesMut;
/// use stompkit_frame::{Frame, Version};
/// use stompkit_tokio::{Event, Outgoing, StompCodec};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = StompCodec::new();
/// codec.set_version(Version::V1_2);
/// let mut buf = BytesMut::new();
/// codec.encode(Frame::send("/queue/a").with_body("hi"), &mut buf)?;
/// codec.encode(Outgoing::HeartBeat, &mut buf)?;
/// let Some(Event::Frame(frame)) = codec.decode(&mut buf)? else { panic!() };
/// assert_eq!(frame.destination(), Some("/queue/a"));
/// assert_eq!(codec.decode(&mut buf)?, Some(Event::HeartBeat));
/// # Ok::<(), stompkit_tokio::CodecError>(())
/// ```
#[derive(Debug)]
pub struct StompCodec {
    parser: Parser,
    encoder: Encoder,
}

impl Default for StompCodec {
    fn default() -> StompCodec {
        StompCodec::new()
    }
}

impl StompCodec {
    /// A codec with the parser's default limits, before version negotiation.
    pub fn new() -> StompCodec {
        StompCodec::with_config(ParserConfig::default())
    }

    /// A codec with the given parser limits, before version negotiation.
    pub fn with_config(config: ParserConfig) -> StompCodec {
        StompCodec {
            parser: Parser::with_config(config),
            encoder: Encoder::new(None),
        }
    }

    /// Sets the encoder's `content-length` policy (builder style).
    pub fn with_content_length(mut self, policy: ContentLength) -> StompCodec {
        self.encoder = self.encoder.with_content_length(policy);
        self
    }

    /// The parser's limits.
    pub fn parser_config(&self) -> &ParserConfig {
        self.parser.config()
    }

    /// The negotiated version, `None` until [`set_version`](StompCodec::set_version).
    pub fn version(&self) -> Option<Version> {
        self.encoder.version()
    }

    /// Tells both directions the negotiated version (after CONNECT/CONNECTED).
    pub fn set_version(&mut self, version: Version) {
        self.parser.set_version(version);
        self.encoder.set_version(version);
    }

    /// Whether a frame has started arriving and not finished.
    pub fn in_frame(&self) -> bool {
        self.parser.in_frame()
    }
}

/// Replaces a mostly-empty, oversized buffer with a fresh [`INITIAL_BUFFER_SIZE`]
/// one, keeping its contents (at most [`INITIAL_BUFFER_SIZE`] bytes are copied).
/// `BytesMut::capacity` hides space already consumed at the front, so the real
/// size of the allocation is probed with `try_reclaim`.
pub fn shrink_buffer(buf: &mut BytesMut) {
    if buf.len() <= INITIAL_BUFFER_SIZE
        && (buf.capacity() > SHRINK_ABOVE || buf.try_reclaim(SHRINK_ABOVE))
    {
        release(buf);
    }
}

/// Moves the contents into a fresh buffer, letting go of the old allocation.
fn release(buf: &mut BytesMut) {
    let mut fresh = BytesMut::with_capacity(INITIAL_BUFFER_SIZE.max(buf.len()));
    fresh.extend_from_slice(buf);
    *buf = fresh;
}

impl tokio_util::codec::Decoder for StompCodec {
    type Item = Event;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, CodecError> {
        // The parser's scan offsets are relative to the buffer's start, and the
        // copy keeps the bytes in place, so shrinking mid-frame is safe.
        shrink_buffer(buf);
        let before = buf.len();
        let event = self.parser.parse(buf)?;
        if before - buf.len() > SHRINK_ABOVE && buf.len() <= SHRINK_ABOVE {
            // A large frame was split off: what is left still shares its
            // allocation, which would stay pinned while the connection idles.
            release(buf);
        }
        Ok(event)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, CodecError> {
        match self.decode(buf)? {
            Some(event) => Ok(Some(event)),
            None if buf.is_empty() => Ok(None),
            None => Err(CodecError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the middle of a frame",
            ))),
        }
    }
}

impl tokio_util::codec::Encoder<&Frame> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        shrink_buffer(dst);
        dst.reserve(frame.body().len() + 64);
        Ok(self.encoder.encode(frame, dst)?)
    }
}

impl tokio_util::codec::Encoder<Frame> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        tokio_util::codec::Encoder::<&Frame>::encode(self, &frame, dst)
    }
}

impl tokio_util::codec::Encoder<Outgoing> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<(), CodecError> {
        match item {
            Outgoing::Frame(frame) => {
                tokio_util::codec::Encoder::<&Frame>::encode(self, &frame, dst)
            }
            Outgoing::HeartBeat => {
                shrink_buffer(dst);
                self.encoder.encode_heartbeat(dst);
                Ok(())
            }
        }
    }
}

/// Writes bytes that are already an encoded frame (or heart-beat) as they are.
/// The caller vouches that they were encoded for the codec's version.
impl tokio_util::codec::Encoder<Bytes> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, bytes: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        shrink_buffer(dst);
        dst.extend_from_slice(&bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stompkit_frame::Command;
    use tokio_util::codec::{Decoder, Encoder as _};

    fn decode_all(codec: &mut StompCodec, buf: &mut BytesMut) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = codec.decode(buf).unwrap() {
            out.push(e);
        }
        out
    }

    const TWO_FRAMES: &[u8] = b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0\n\nMESSAGE\ndestination:/queue/a\nmessage-id:1\nsubscription:0\nx:a\\cb\ncontent-length:5\n\nhe\0lo\0\r\n";

    fn expected() -> Vec<Event> {
        vec![
            Event::Frame(
                Frame::new(Command::Connected)
                    .header("version", "1.2")
                    .header("heart-beat", "0,0"),
            ),
            Event::HeartBeat,
            Event::HeartBeat,
            Event::Frame(
                Frame::new(Command::Message)
                    .header("destination", "/queue/a")
                    .header("message-id", "1")
                    .header("subscription", "0")
                    .header("x", "a:b")
                    .header("content-length", "5")
                    .with_body(&b"he\0lo"[..]),
            ),
            Event::HeartBeat,
        ]
    }

    /// Sets the version once CONNECTED went by, as a client does.
    fn decode_with_version(codec: &mut StompCodec, buf: &mut BytesMut, out: &mut Vec<Event>) {
        while let Some(e) = codec.decode(buf).unwrap() {
            if let Event::Frame(f) = &e
                && f.command == Command::Connected
            {
                codec.set_version(Version::V1_2);
            }
            out.push(e);
        }
    }

    #[test]
    fn f2_coalesced_input_yields_frames_and_heartbeats_in_order() {
        let mut codec = StompCodec::new();
        let mut buf = BytesMut::from(TWO_FRAMES);
        let mut out = Vec::new();
        decode_with_version(&mut codec, &mut buf, &mut out);
        assert_eq!(out, expected());
        assert!(buf.is_empty());
    }

    #[test]
    fn split_input_at_every_boundary_parses_the_same() {
        for split in 0..=TWO_FRAMES.len() {
            let mut codec = StompCodec::new();
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            buf.extend_from_slice(&TWO_FRAMES[..split]);
            decode_with_version(&mut codec, &mut buf, &mut out);
            buf.extend_from_slice(&TWO_FRAMES[split..]);
            decode_with_version(&mut codec, &mut buf, &mut out);
            assert_eq!(out, expected(), "split at {split}");
        }
    }

    #[test]
    fn byte_at_a_time_input_parses_the_same() {
        let mut codec = StompCodec::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in TWO_FRAMES {
            buf.extend_from_slice(&[*b]);
            decode_with_version(&mut codec, &mut buf, &mut out);
        }
        assert_eq!(out, expected());
    }

    #[test]
    fn parse_errors_surface_and_stick() {
        let mut codec = StompCodec::new();
        let mut buf = BytesMut::from(&b"send\n\n\0"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Parse(ParseError::UnknownCommand))
        ));
        buf.extend_from_slice(b"SEND\ndestination:a\n\n\0");
        assert!(matches!(codec.decode(&mut buf), Err(CodecError::Parse(_))));
    }

    #[test]
    fn limits_come_from_the_parser_config() {
        let config = ParserConfig {
            max_body: 4,
            ..ParserConfig::default()
        };
        let mut codec = StompCodec::with_config(config);
        assert_eq!(codec.parser_config().max_body, 4);
        let mut buf = BytesMut::from(&b"SEND\ndestination:a\n\nhello\0"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Parse(ParseError::BodyTooLarge))
        ));
    }

    #[test]
    fn eof_mid_frame_is_an_error_and_clean_eof_is_not() {
        let mut codec = StompCodec::new();
        let mut buf = BytesMut::from(&b"SEND\ndesti"[..]);
        assert!(matches!(codec.decode_eof(&mut buf), Err(CodecError::Io(_))));
        let mut codec = StompCodec::new();
        let mut buf = BytesMut::new();
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());
    }

    #[test]
    fn e4_encoding_follows_the_version_for_both_directions() {
        let frame = Frame::send("/q").header("k", "a:b");
        let mut codec = StompCodec::new();
        let mut buf = BytesMut::new();
        codec.encode(&frame, &mut buf).unwrap();
        // Before negotiation nothing is escaped (like 1.0).
        assert_eq!(&buf[..], b"SEND\ndestination:/q\nk:a:b\n\n\0");
        codec.set_version(Version::V1_1);
        assert_eq!(codec.version(), Some(Version::V1_1));
        buf.clear();
        codec.encode(frame, &mut buf).unwrap();
        assert_eq!(&buf[..], b"SEND\ndestination:/q\nk:a\\cb\n\n\0");
        // and the decoder now unescapes
        let Some(Event::Frame(back)) = codec.decode(&mut buf).unwrap() else {
            panic!()
        };
        assert_eq!(back.get("k"), Some("a:b"));
    }

    #[test]
    fn h4_heartbeat_encodes_as_one_lf_and_decodes_as_heartbeat() {
        let mut codec = StompCodec::new();
        let mut buf = BytesMut::new();
        codec.encode(Outgoing::HeartBeat, &mut buf).unwrap();
        assert_eq!(&buf[..], b"\n");
        assert_eq!(decode_all(&mut codec, &mut buf), vec![Event::HeartBeat]);
    }

    #[test]
    fn f7_encode_errors_write_nothing() {
        let mut codec = StompCodec::new();
        let mut buf = BytesMut::new();
        let bad = Frame::new(Command::Subscribe).with_body("x");
        assert!(matches!(
            codec.encode(bad, &mut buf),
            Err(CodecError::Encode(EncodeError::BodyNotAllowed(_)))
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn read_buffer_shrinks_after_a_large_frame() {
        let mut codec = StompCodec::new();
        codec.set_version(Version::V1_2);
        let body = vec![b'x'; 1024 * 1024];
        let mut big = BytesMut::new();
        codec
            .encode(Frame::send("/q").with_body(body), &mut big)
            .unwrap();
        let mut buf = BytesMut::with_capacity(INITIAL_BUFFER_SIZE);
        buf.extend_from_slice(&big);
        let Some(Event::Frame(f)) = codec.decode(&mut buf).unwrap() else {
            panic!()
        };
        assert_eq!(f.body().len(), 1024 * 1024);
        drop(f);
        // The rest no longer shares the large allocation.
        assert!(buf.capacity() <= INITIAL_BUFFER_SIZE);
        assert!(!buf.try_reclaim(SHRINK_ABOVE));
        buf.extend_from_slice(b"\n");
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Event::HeartBeat));
    }

    #[test]
    fn write_buffer_is_reused_but_shrunk_when_big() {
        let mut codec = StompCodec::new();
        let mut buf = BytesMut::new();
        codec
            .encode(Frame::send("/q").with_body(vec![0u8; 512 * 1024]), &mut buf)
            .unwrap();
        assert!(buf.capacity() > SHRINK_ABOVE);
        buf.clear(); // flushed
        codec.encode(Outgoing::HeartBeat, &mut buf).unwrap();
        assert!(buf.capacity() <= INITIAL_BUFFER_SIZE);
        // a small buffer is reused as is
        let cap = buf.capacity();
        buf.clear();
        codec.encode(Frame::send("/q"), &mut buf).unwrap();
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn pre_encoded_bytes_pass_through() {
        let mut codec = StompCodec::new();
        let mut buf = BytesMut::new();
        codec
            .encode(Bytes::from_static(b"SEND\ndestination:a\n\n\0"), &mut buf)
            .unwrap();
        assert_eq!(&buf[..], b"SEND\ndestination:a\n\n\0");
    }
}
