//! Fuzz target `parser`: any bytes, in any chunking, never panic the parser, and
//! the events do not depend on the chunking.
//!
//! Input layout: byte 0 picks the setup (bits 0-1: version none/1.0/1.1/1.2;
//! bit 2: `trim_headers`; bit 3: tiny limits, so limit errors are reached; bit 4:
//! set the version after the first frame, as a session does after CONNECT, instead
//! of before any byte). Byte 1 gives how many chunk-size bytes follow (0-15); the
//! chunk sizes cycle over the stream that makes up the rest of the input.
//!
//! The reference run pushes the whole stream at once. Two chunked runs, one through
//! `push`/`next_event` and one through `parse` on a caller-owned `BytesMut`, must
//! give the same events and the same error (after which the stream is done).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use stompkit_wire::{Event, ParseError, Parser, ParserConfig, Version};

/// How the parser is set up for one input.
#[derive(Clone, Copy)]
struct Setup {
    version: Option<Version>,
    trim_headers: bool,
    tiny_limits: bool,
    version_after_first_frame: bool,
}

impl Setup {
    fn from_byte(byte: u8) -> Setup {
        Setup {
            version: match byte & 3 {
                0 => None,
                1 => Some(Version::V1_0),
                2 => Some(Version::V1_1),
                _ => Some(Version::V1_2),
            },
            trim_headers: byte & 4 != 0,
            tiny_limits: byte & 8 != 0,
            version_after_first_frame: byte & 16 != 0,
        }
    }

    fn parser(self) -> Parser {
        let mut config = ParserConfig {
            trim_headers: self.trim_headers,
            ..ParserConfig::default()
        };
        if self.tiny_limits {
            config.max_command_len = 12;
            config.max_header_line = 40;
            config.max_headers = 4;
            config.max_header_bytes = 96;
            config.max_body = 64;
        }
        let mut parser = Parser::with_config(config);
        if let (Some(version), false) = (self.version, self.version_after_first_frame) {
            parser.set_version(version);
        }
        parser
    }

    /// Called after each event: sets the version after the first frame if asked to.
    fn after_event(self, parser: &mut Parser, event: &Event) {
        if let (Some(version), true, Event::Frame(_), None) = (
            self.version,
            self.version_after_first_frame,
            event,
            parser.version(),
        ) {
            parser.set_version(version);
        }
    }
}

/// What a run produced: the events, then the error if one ended the stream.
type Outcome = (Vec<Event>, Option<ParseError>);

/// Pulls events until the parser needs more bytes (`true`) or fails (`false`).
fn drain(
    setup: Setup,
    parser: &mut Parser,
    outcome: &mut Outcome,
    mut next: impl FnMut(&mut Parser) -> Result<Option<Event>, ParseError>,
) -> bool {
    loop {
        match next(parser) {
            Ok(Some(event)) => {
                setup.after_event(parser, &event);
                outcome.0.push(event);
            }
            Ok(None) => return true,
            Err(error) => {
                // The stream is done: the parser keeps returning that error.
                assert_eq!(next(parser), Err(error), "error not sticky");
                outcome.1 = Some(error);
                return false;
            }
        }
    }
}

fn whole(setup: Setup, stream: &[u8]) -> Outcome {
    let mut parser = setup.parser();
    let mut outcome = Outcome::default();
    parser.push(stream);
    drain(setup, &mut parser, &mut outcome, Parser::next_event);
    outcome
}

fn chunked_push(setup: Setup, chunks: &[&[u8]]) -> Outcome {
    let mut parser = setup.parser();
    let mut outcome = Outcome::default();
    for chunk in chunks {
        parser.push(chunk);
        if !drain(setup, &mut parser, &mut outcome, Parser::next_event) {
            break;
        }
    }
    outcome
}

fn chunked_parse(setup: Setup, chunks: &[&[u8]]) -> Outcome {
    let mut parser = setup.parser();
    let mut outcome = Outcome::default();
    let mut buf = BytesMut::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        if !drain(setup, &mut parser, &mut outcome, |p| p.parse(&mut buf)) {
            break;
        }
    }
    outcome
}

fuzz_target!(|data: &[u8]| {
    let [setup, count, rest @ ..] = data else {
        return;
    };
    let setup = Setup::from_byte(*setup);
    let count = usize::from(count % 16).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    let mut chunks = Vec::new();
    let mut at = 0;
    let mut size = sizes.iter().cycle();
    while at < stream.len() {
        let n = size.next().map_or(stream.len(), |&s| usize::from(s).max(1));
        let end = stream.len().min(at + n);
        chunks.push(&stream[at..end]);
        at = end;
    }

    let reference = whole(setup, stream);
    assert_eq!(
        chunked_push(setup, &chunks),
        reference,
        "push/next_event depends on chunking"
    );
    assert_eq!(
        chunked_parse(setup, &chunks),
        reference,
        "parse(BytesMut) differs"
    );
});
