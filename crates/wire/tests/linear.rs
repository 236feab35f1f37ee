//! The parser's cost is linear in the input however it is chunked: a 4 MiB body
//! (the default `max_body`), with and without `content-length`, fed one byte at a
//! time, completes. A parser that rescans its buffer on every push would take
//! hours here (4 Mi pushes × up to 4 MiB rescanned); a linear one takes about a
//! second in a debug build. No wall-clock assertion: the test completing is the
//! check (numbers belong in the benches).
#![allow(clippy::unwrap_used)]

use stompkit_frame::{Command, Version};
use stompkit_wire::{Event, Parser, ParserConfig};

const MIB4: usize = 4 * 1024 * 1024;

fn feed_one_byte_at_a_time(input: &[u8]) -> Vec<Event> {
    let mut p = Parser::new();
    p.set_version(Version::V1_2);
    let mut out = Vec::new();
    for b in input.chunks(1) {
        p.push(b);
        while let Some(e) = p.next_event().unwrap() {
            out.push(e);
        }
    }
    assert!(!p.in_frame());
    out
}

fn body() -> Vec<u8> {
    // no NUL (so it also works without content-length), but every other byte value
    (0..MIB4).map(|i| (i % 255) as u8 + 1).collect()
}

#[test]
fn f8_four_mib_counted_body_one_byte_at_a_time() {
    let mut body = body();
    body[12345] = 0; // content-length carries NULs (F8)
    let mut input = format!("SEND\ndestination:/q\ncontent-length:{MIB4}\n\n").into_bytes();
    input.extend_from_slice(&body);
    input.extend_from_slice(b"\0\n");
    assert_eq!(ParserConfig::default().max_body, MIB4);
    let events = feed_one_byte_at_a_time(&input);
    assert_eq!(events.len(), 2);
    let Event::Frame(f) = &events[0] else {
        panic!()
    };
    assert_eq!(f.command, Command::Send);
    assert_eq!(f.body().len(), MIB4);
    assert!(f.body()[..] == body[..]);
    assert_eq!(events[1], Event::HeartBeat);
}

#[test]
fn f10_four_mib_body_without_content_length_one_byte_at_a_time() {
    let body = body();
    let mut input = b"MESSAGE\ndestination:/q\nmessage-id:1\nsubscription:0\n\n".to_vec();
    input.extend_from_slice(&body);
    input.extend_from_slice(b"\0");
    let events = feed_one_byte_at_a_time(&input);
    assert_eq!(events.len(), 1);
    let Event::Frame(f) = &events[0] else {
        panic!()
    };
    assert!(f.body()[..] == body[..]);
}

#[test]
fn s6_many_headers_one_byte_at_a_time() {
    // 1000 headers (the default max_headers), each escaped, in a 1.2 session
    let mut input = b"MESSAGE\r\n".to_vec();
    for i in 0..1000 {
        input.extend_from_slice(format!("header-{i}:value\\c{i}\r\n").as_bytes());
    }
    input.extend_from_slice(b"\r\n\0");
    let events = feed_one_byte_at_a_time(&input);
    let Event::Frame(f) = &events[0] else {
        panic!()
    };
    assert_eq!(f.headers().len(), 1000);
    assert_eq!(f.get("header-999"), Some("value:999"));
}
