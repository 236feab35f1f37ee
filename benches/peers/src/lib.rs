//! Each published Rust STOMP parser behind one shape: parse a whole workload
//! buffer frame by frame with the peer's own decoder, and count the frames.
//!
//! The workloads and stompkit's own rows come from `stompkit-benches`, so the
//! peers see exactly the bytes stompkit sees. Every peer is checked once per
//! workload ([`Peer::check`]) before it is measured: a peer that errors, panics
//! or silently returns the wrong number of frames is reported and left out of
//! that workload instead of being timed on a partial job.
//!
//! Peers in the comparison (all build on stable 1.95):
//! - `iridium-stomp` 0.6: `StompCodec` (a `tokio_util` decoder).
//! - `async-stomp` 0.7: `client::ClientCodec` (winnow).
//! - `tokio-stomp` 0.4, `tokio-stomp-2` 0.3, `tokio-stomp-rs` 0.1:
//!   `client::ClientCodec` (nom 7, nom 4, nom 7).
//! - `stomp-rs` 0.0.8: `protocol::FrameParser` (push bytes, get frames). Ignores
//!   `content-length` and requires UTF-8 bodies (it panics otherwise).
//! - `stomp-parser` 0.8: `ServerFrame::try_from(Vec<u8>)` parses exactly one
//!   frame and has no stream framing, so it is handed the buffer pre-split into
//!   one `Vec` per frame, made outside the measurement. That favours it: it
//!   skips finding where frames end.
//!
//! Left out: `stomp` 0.11 (does not build: its mio 0.3 fails on current Rust).

#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use tokio_util::codec::Decoder;

/// How a peer takes its input.
#[derive(Clone, Copy)]
pub enum Parse {
    /// Decodes frame by frame from a `BytesMut` holding the whole workload,
    /// consuming it (a fresh copy each iteration, made outside the timing).
    Buffer(fn(&mut BytesMut) -> Result<usize, String>),
    /// Reads from a byte slice (copies into its own buffer as it goes).
    Slice(fn(&[u8]) -> Result<usize, String>),
    /// Parses one frame per `Vec` (the buffer pre-split outside the timing).
    Split(fn(&mut Vec<Vec<u8>>) -> Result<usize, String>),
}

/// One parser in the comparison.
#[derive(Clone, Copy)]
pub struct Peer {
    /// Crate name and version, as shown in reports (and as the benchmark id).
    pub name: &'static str,
    /// How to run it.
    pub parse: Parse,
}

impl Peer {
    /// Runs the peer once on `bytes` and checks it saw `frames` frames.
    pub fn check(&self, bytes: &[u8], frames: usize) -> Result<(), String> {
        let run = || match self.parse {
            Parse::Buffer(f) => f(&mut BytesMut::from(bytes)),
            Parse::Slice(f) => f(bytes),
            Parse::Split(f) => f(&mut split_frames(bytes)),
        };
        // A peer's panic is a finding, not noise: keep its message, not a backtrace.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let outcome = catch_unwind(AssertUnwindSafe(run));
        std::panic::set_hook(hook);
        match outcome {
            Ok(Ok(n)) if n == frames => Ok(()),
            Ok(Ok(n)) => Err(format!("returned {n} frames, expected {frames}")),
            Ok(Err(e)) => Err(e),
            Err(panic) => Err(format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("?")
                    .split(" { ")
                    .next()
                    .unwrap_or("?")
            )),
        }
    }
}

/// Every peer, stompkit's own `Parser::parse` path first.
pub fn peers() -> Vec<Peer> {
    vec![
        Peer {
            name: "stompkit",
            parse: Parse::Buffer(|buf| {
                stompkit_benches::stompkit_parse(buf).map_err(|e| e.to_string())
            }),
        },
        Peer {
            name: "iridium-stomp",
            parse: Parse::Buffer(|buf| decode_all(&mut iridium_stomp::StompCodec::new(), buf)),
        },
        Peer {
            name: "async-stomp",
            parse: Parse::Buffer(|buf| {
                decode_all(&mut async_stomp::client::ClientCodec::new(), buf)
            }),
        },
        Peer {
            name: "tokio-stomp",
            parse: Parse::Buffer(|buf| decode_all(&mut tokio_stomp::client::ClientCodec, buf)),
        },
        Peer {
            name: "tokio-stomp-2",
            parse: Parse::Buffer(|buf| decode_all(&mut tokio_stomp_2::client::ClientCodec, buf)),
        },
        Peer {
            name: "tokio-stomp-rs",
            parse: Parse::Buffer(|buf| decode_all(&mut tokio_stomp_rs::client::ClientCodec, buf)),
        },
        Peer {
            name: "stomp-rs",
            parse: Parse::Slice(stomp_rs_parse),
        },
        Peer {
            name: "stomp-parser",
            parse: Parse::Split(stomp_parser_parse),
        },
    ]
}

/// Runs a `tokio_util` decoder over the whole buffer, counting frames (the
/// iridium codec also yields heart-beats, which are not counted).
fn decode_all<D>(codec: &mut D, buf: &mut BytesMut) -> Result<usize, String>
where
    D: Decoder,
    D::Item: IsFrame,
    D::Error: std::fmt::Debug,
{
    let mut frames = 0;
    while let Some(item) = codec.decode(buf).map_err(|e| format!("{e:?}"))? {
        if item.is_frame() {
            frames += 1;
        }
        black_box(&item);
    }
    if buf.is_empty() {
        Ok(frames)
    } else {
        Err(format!(
            "stopped after {frames} frames with {} bytes left",
            buf.len()
        ))
    }
}

/// Whether a decoded item is a frame (not a heart-beat).
trait IsFrame {
    fn is_frame(&self) -> bool;
}

impl IsFrame for iridium_stomp::StompItem {
    fn is_frame(&self) -> bool {
        matches!(self, iridium_stomp::StompItem::Frame(_))
    }
}

impl<T> IsFrame for async_stomp::Message<T> {
    fn is_frame(&self) -> bool {
        true
    }
}

impl<T> IsFrame for tokio_stomp::Message<T> {
    fn is_frame(&self) -> bool {
        true
    }
}

impl<T> IsFrame for tokio_stomp_2::Message<T> {
    fn is_frame(&self) -> bool {
        true
    }
}

impl<T> IsFrame for tokio_stomp_rs::Message<T> {
    fn is_frame(&self) -> bool {
        true
    }
}

fn stomp_rs_parse(bytes: &[u8]) -> Result<usize, String> {
    use stomp_rs::protocol::{FrameParser, ServerCommand, StompMessage};
    let mut parser: FrameParser<ServerCommand> = FrameParser::new();
    let messages = parser.parse(bytes).map_err(|e| format!("{e:?}"))?;
    let frames = messages
        .iter()
        .filter(|m| matches!(m, StompMessage::Frame(_)))
        .count();
    black_box(&messages);
    Ok(frames)
}

fn stomp_parser_parse(frames: &mut Vec<Vec<u8>>) -> Result<usize, String> {
    use stomp_parser::server::ServerFrame;
    let mut n = 0;
    for frame in frames.drain(..) {
        let frame = ServerFrame::try_from(frame).map_err(|e| format!("{e:?}"))?;
        black_box(&frame);
        n += 1;
    }
    Ok(n)
}

/// The workload cut into one `Vec` per frame (boundaries found with stompkit).
pub fn split_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut parser = stompkit_wire::Parser::new();
    parser.set_version(stompkit_frame::Version::V1_2);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    let mut start = 0;
    while let Ok(Some(_)) = parser.parse(&mut buf) {
        let end = bytes.len() - buf.len();
        out.push(bytes[start..end].to_vec());
        start = end;
    }
    out
}
