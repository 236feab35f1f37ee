//! Shared drivers for the wire integration tests: feed bytes in a given chunking
//! through either parser path and collect what comes out.
#![allow(dead_code)]

use bytes::BytesMut;
use stompkit_frame::{Command, Frame, Headers, Version};
use stompkit_wire::{Event, ParseError, Parser, ParserConfig};

/// Everything a parser produced for one input: the events in order, then the
/// error that ended the stream (if any).
pub type Outcome = (Vec<Event>, Option<ParseError>);

/// When the driver tells the parser the session's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versioning {
    /// Set once before the first byte (`None`: never set, pre-negotiation).
    Fixed(Option<Version>),
    /// Client side of a session: set this version once CONNECT or STOMP came out.
    AfterConnect(Version),
    /// Server side: set the version named by CONNECTED's `version` header.
    FromConnected,
}

impl Versioning {
    fn start(self, p: &mut Parser) {
        if let Versioning::Fixed(Some(v)) = self {
            p.set_version(v);
        }
    }

    fn after(self, p: &mut Parser, e: &Event) {
        let Event::Frame(f) = e else { return };
        match self {
            Versioning::AfterConnect(v) if f.command.is_connect() => p.set_version(v),
            Versioning::FromConnected if f.command == Command::Connected => {
                let v = f.version().and_then(|v| v.parse().ok());
                p.set_version(v.unwrap_or(Version::V1_0));
            }
            _ => {}
        }
    }
}

/// Feeds `chunks` through `push`/`next_event`, draining events after each chunk.
pub fn run_push<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    versioning: Versioning,
    config: &ParserConfig,
) -> Outcome {
    let mut p = Parser::with_config(config.clone());
    versioning.start(&mut p);
    let mut out = Vec::new();
    for c in chunks {
        p.push(c);
        loop {
            match p.next_event() {
                Ok(Some(e)) => {
                    versioning.after(&mut p, &e);
                    out.push(e);
                }
                Ok(None) => break,
                Err(e) => {
                    // The stream is done: the error sticks (after an Err the parser keeps returning it).
                    assert_eq!(p.next_event(), Err(e), "error is sticky");
                    p.push(b"\n");
                    assert_eq!(p.next_event(), Err(e), "error is sticky after more bytes");
                    return (out, Some(e));
                }
            }
        }
    }
    (out, None)
}

/// Feeds `chunks` by appending to a caller-owned `BytesMut` and calling `parse`.
pub fn run_parse<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    versioning: Versioning,
    config: &ParserConfig,
) -> Outcome {
    let mut p = Parser::with_config(config.clone());
    versioning.start(&mut p);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            match p.parse(&mut buf) {
                Ok(Some(e)) => {
                    versioning.after(&mut p, &e);
                    out.push(e);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(p.parse(&mut buf), Err(e), "error is sticky");
                    return (out, Some(e));
                }
            }
        }
    }
    (out, None)
}

/// The input cut at the given (sorted, in-range) positions.
pub fn cut<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for &c in cuts {
        out.push(&input[from..c]);
        from = c;
    }
    out.push(&input[from..]);
    out
}

/// Asserts that `input` gives `expected` whole, one byte at a time, through both
/// parser paths, and (for short inputs) split at every boundary (every pair of
/// boundaries for very short ones).
pub fn assert_any_chunking(
    label: &str,
    input: &[u8],
    versioning: Versioning,
    config: &ParserConfig,
    expected: &Outcome,
) {
    let whole = run_push([input], versioning, config);
    assert_eq!(&whole, expected, "{label}: whole input");
    assert_eq!(
        &run_parse([input], versioning, config),
        expected,
        "{label}: whole input, parse(&mut BytesMut)"
    );
    assert_eq!(
        &run_push(input.chunks(1), versioning, config),
        expected,
        "{label}: one byte at a time"
    );
    assert_eq!(
        &run_parse(input.chunks(1), versioning, config),
        expected,
        "{label}: one byte at a time, parse(&mut BytesMut)"
    );
    if input.len() <= 400 {
        for i in 1..input.len() {
            assert_eq!(
                &run_push(cut(input, &[i]), versioning, config),
                expected,
                "{label}: split at {i}"
            );
        }
    }
    if input.len() <= 48 {
        for i in 1..input.len() {
            for j in i + 1..input.len() {
                assert_eq!(
                    &run_parse(cut(input, &[i, j]), versioning, config),
                    expected,
                    "{label}: split at {i} and {j}"
                );
            }
        }
    }
}

/// A frame event with these headers, in this order, and this body.
pub fn frame(command: Command, headers: &[(&str, &str)], body: &[u8]) -> Event {
    Event::Frame(Frame::from_parts(
        command,
        headers.iter().copied().collect::<Headers>(),
        bytes::Bytes::copy_from_slice(body),
    ))
}
