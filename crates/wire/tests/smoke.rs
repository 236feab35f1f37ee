//! Quick checks of the parser and encoder; the full rule corpus is in `golden.rs`.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use stompkit_frame::{Command, Frame, Version};
use stompkit_wire::{Encoder, Event, ParseError, Parser, ParserConfig};

fn events(
    input: &[u8],
    version: Option<Version>,
    chunk: usize,
) -> (Vec<Event>, Option<ParseError>) {
    let mut p = Parser::new();
    if let Some(v) = version {
        p.set_version(v);
    }
    let mut out = Vec::new();
    for c in input.chunks(chunk.max(1)) {
        p.push(c);
        loop {
            match p.next_event() {
                Ok(Some(e)) => out.push(e),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

#[test]
fn f1_f2_frames_and_heartbeats_in_any_chunking() {
    let input = b"\n\r\nSEND\r\ndestination:/q\r\ncontent-length:3\r\n\r\na\0b\0\n\nMESSAGE\ndestination:/q\nmessage-id:1\nsubscription:0\n\nhi\0\r\n";
    let (whole, err) = events(input, Some(Version::V1_2), input.len());
    assert_eq!(err, None);
    assert_eq!(whole.len(), 7, "{whole:?}");
    for n in 1..input.len() {
        assert_eq!(
            events(input, Some(Version::V1_2), n),
            (whole.clone(), None),
            "chunk {n}"
        );
    }
    let Event::Frame(send) = &whole[2] else {
        panic!()
    };
    assert_eq!(send.body(), b"a\0b");
}

#[test]
fn parse_from_callers_buffer() {
    let mut p = Parser::new();
    let mut buf = BytesMut::from(&b"CONNECTED\nversion:1.2\n\n\0RECEIPT\nreceipt-id:7\n\n"[..]);
    let Some(Event::Frame(f)) = p.parse(&mut buf).unwrap() else {
        panic!()
    };
    assert_eq!(f.command, Command::Connected);
    assert_eq!(p.parse(&mut buf).unwrap(), None);
    assert!(p.in_frame());
    buf.extend_from_slice(b"\0");
    let Some(Event::Frame(f)) = p.parse(&mut buf).unwrap() else {
        panic!()
    };
    assert_eq!(f.receipt_id(), Some("7"));
    assert!(buf.is_empty());
}

#[test]
fn limits_refuse_early() {
    let cfg = ParserConfig {
        max_body: 10,
        max_header_line: 8,
        ..ParserConfig::default()
    };
    let mut p = Parser::with_config(ParserConfig {
        max_header_line: 32,
        ..cfg.clone()
    });
    p.push(b"SEND\ncontent-length:11\n");
    assert_eq!(p.next_event(), Err(ParseError::BodyTooLarge));
    assert_eq!(
        p.next_event(),
        Err(ParseError::BodyTooLarge),
        "stays failed"
    );
    let mut p = Parser::with_config(cfg);
    p.push(b"SEND\nabcdefghi");
    assert_eq!(p.next_event(), Err(ParseError::HeaderTooLong));
}

#[test]
fn encode_then_parse_round_trips() {
    for v in Version::ALL {
        let frame = Frame::send("/queue/a")
            .header("k", "v")
            .with_body(&b"x\0y"[..]);
        let mut out = Vec::new();
        Encoder::new(Some(v)).encode(&frame, &mut out).unwrap();
        let (ev, err) = events(&out, Some(v), 1);
        assert_eq!(err, None);
        let Event::Frame(back) = &ev[0] else { panic!() };
        assert_eq!(back.body(), frame.body());
        assert_eq!(back.headers().get("k"), Some("v"));
        assert_eq!(back.content_length(), Ok(Some(3)));
    }
}
