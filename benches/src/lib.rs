//! Shared pieces of stompkit's benchmarks: the workloads (see [`workloads`]) and
//! the measured operations, so the criterion benches in `benches/wire.rs` and the
//! peer comparison in `benches/peers/` run exactly the same code on exactly the
//! same bytes.
//!
//! Run them with `cargo xtask bench [--quick] [--peers]`, which also prints a
//! summary and writes `target/bench-table.md`.

#![deny(missing_docs)]

pub mod workloads;

use bytes::BytesMut;
use std::hint::black_box;
use stompkit_frame::{Frame, Version};
use stompkit_wire::{EncodeError, Encoder, Event, ParseError, Parser};

/// Parses every frame in `buf` the way the tokio codec does
/// ([`Parser::parse`] on the caller's `BytesMut`), at version 1.2, and returns
/// how many frames came out. Consumes `buf`. Never inlined, so instruction
/// counts (`examples/parse_loop.rs`) can be read off this one function.
#[inline(never)]
pub fn stompkit_parse(buf: &mut BytesMut) -> Result<usize, ParseError> {
    let mut parser = Parser::new();
    parser.set_version(Version::V1_2);
    let mut frames = 0;
    while let Some(event) = parser.parse(buf)? {
        if let Event::Frame(frame) = event {
            black_box(&frame);
            frames += 1;
        }
    }
    Ok(frames)
}

/// Parses every frame in `bytes` through the parser's own buffer
/// ([`Parser::push`] then [`Parser::next_event`]), at version 1.2, and returns
/// how many frames came out. Includes copying `bytes` into that buffer.
pub fn stompkit_push(bytes: &[u8]) -> Result<usize, ParseError> {
    let mut parser = Parser::new();
    parser.set_version(Version::V1_2);
    parser.push(bytes);
    let mut frames = 0;
    while let Some(event) = parser.next_event()? {
        if let Event::Frame(frame) = event {
            black_box(&frame);
            frames += 1;
        }
    }
    Ok(frames)
}

/// The physical reference: one pass counting NULs and one counting LFs, the
/// least any STOMP parser must look at.
pub fn reference_scan(bytes: &[u8]) -> usize {
    memchr::memchr_iter(b'\0', bytes).count() + memchr::memchr_iter(b'\n', bytes).count()
}

/// The frames of a workload, as values to encode (parsed with stompkit).
pub fn frames_of(bytes: &[u8]) -> Result<Vec<Frame>, ParseError> {
    let mut parser = Parser::new();
    parser.set_version(Version::V1_2);
    parser.push(bytes);
    let mut frames = Vec::new();
    while let Some(event) = parser.next_event()? {
        if let Event::Frame(frame) = event {
            frames.push(frame);
        }
    }
    Ok(frames)
}

/// The 1.2 encoder used by the encode benchmarks.
pub fn encoder() -> Encoder {
    Encoder::new(Some(Version::V1_2))
}

/// Encodes `frames` one after another into `dst`.
pub fn encode_all(
    encoder: &Encoder,
    frames: &[Frame],
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    for frame in frames {
        encoder.encode(frame, dst)?;
    }
    Ok(())
}

/// The SEND of the "encode a 3-header SEND" benchmark: `destination`,
/// `content-type` and `receipt`, with a small JSON body.
pub fn send_frame() -> Frame {
    Frame::send("/queue/orders")
        .header("content-type", "application/json")
        .with_receipt("r-42")
        .with_body(workloads::SEND_BODY)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stompkit_parses_every_workload_whole() {
        for w in workloads::all() {
            let mut buf = BytesMut::from(&w.bytes[..]);
            assert_eq!(stompkit_parse(&mut buf).unwrap(), w.frames, "{}", w.name);
            assert!(buf.is_empty(), "{}", w.name);
            assert_eq!(stompkit_push(&w.bytes).unwrap(), w.frames, "{}", w.name);
        }
    }

    #[test]
    fn chat_message_id_is_unescaped() {
        let frames = frames_of(&workloads::chat().bytes).unwrap();
        assert_eq!(
            frames[3].message_id(),
            Some("ID:broker-7f3a2-41231-1795460210633-3:5475:-1:1:3")
        );
    }

    #[test]
    fn encoding_the_parsed_frames_gives_back_the_same_bytes() {
        let encoder = encoder();
        for w in workloads::all() {
            let frames = frames_of(&w.bytes).unwrap();
            let mut out = BytesMut::new();
            encode_all(&encoder, &frames, &mut out).unwrap();
            assert!(out[..] == w.bytes[..], "{}", w.name);
        }
    }

    #[test]
    fn reference_scan_counts_nuls_and_lfs() {
        assert_eq!(reference_scan(b"A\nb:c\n\n\0\n"), 5);
    }
}
