//! Fuzz target `roundtrip`: a frame built from arbitrary data that the encoder
//! accepts for a version parses back, under that version, to the same command,
//! headers (names and values, in order, repeats kept) and body. The only header
//! allowed to differ is `content-length`, which the encoder adds, keeps or drops
//! per its policy (F8, F9).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use stompkit_frame::{Command, Frame, Headers, Version};
use stompkit_wire::{ContentLength, Encoder, Event, Parser, ParserConfig};

#[derive(Arbitrary, Debug)]
struct Input {
    /// 0: not negotiated; 1-3: 1.0, 1.1, 1.2.
    version: u8,
    /// Index into `Command::ALL`.
    command: u8,
    /// 0: AsGiven, 1: WhenNeeded, 2: Always.
    content_length: u8,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn without_content_length(headers: &Headers) -> Vec<(&str, &str)> {
    headers
        .iter()
        .filter(|(name, _)| *name != "content-length")
        .collect()
}

fuzz_target!(|input: Input| {
    let version = match input.version % 4 {
        0 => None,
        n => Some(Version::ALL[usize::from(n - 1)]),
    };
    let command = Command::ALL[usize::from(input.command) % Command::ALL.len()];
    let policy = match input.content_length % 3 {
        0 => ContentLength::AsGiven,
        1 => ContentLength::WhenNeeded,
        _ => ContentLength::Always,
    };
    let mut headers = Headers::new();
    for (name, value) in &input.headers {
        headers.push(name, value);
    }
    let frame = Frame::from_parts(command, headers, input.body);

    let encoder = Encoder::new(version).with_content_length(policy);
    let mut wire = Vec::new();
    if encoder.encode(&frame, &mut wire).is_err() {
        assert!(wire.is_empty(), "encoder wrote a refused frame");
        return;
    }

    // Limits generous enough for anything the encoder can be given here.
    let mut parser = Parser::with_config(ParserConfig {
        max_command_len: 1 << 20,
        max_header_line: 1 << 20,
        max_headers: 1 << 20,
        max_header_bytes: 1 << 24,
        max_body: 1 << 24,
        trim_headers: false,
    });
    if let Some(version) = version {
        parser.set_version(version);
    }
    parser.push(&wire);
    let parsed = match parser.next_event() {
        Ok(Some(Event::Frame(parsed))) => parsed,
        other => panic!(
            "encoded frame did not parse back: {other:?}\nwire: {:?}",
            String::from_utf8_lossy(&wire)
        ),
    };
    assert_eq!(parser.next_event(), Ok(None), "one frame in, one frame out");
    assert!(!parser.in_frame());
    assert_eq!(parsed.command, frame.command);
    assert_eq!(
        without_content_length(parsed.headers()),
        without_content_length(frame.headers()),
        "headers differ; wire: {:?}",
        String::from_utf8_lossy(&wire)
    );
    assert_eq!(parsed.body(), frame.body());
});
