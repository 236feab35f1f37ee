//! Properties of the wire crate, checked with proptest:
//! (a) encode → parse gives back any frame in every version, or the encoder
//!     refuses it for exactly one of the documented reasons (E4, E5, F6, F7, F8);
//! (b) any chunking of a byte stream — encoded frames with heart-beats, or
//!     arbitrary bytes — gives the same events and error as the whole (F1, F2);
//! (c) the `parse(&mut BytesMut)` path and the `push`/`next_event` path agree;
//! (d) headers copied in one piece ([`Headers::plain_lines`]) encode to the same
//!     bytes as headers written and escaped one by one.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Outcome, Versioning, cut, run_parse, run_push};
use proptest::prelude::*;
use stompkit_escape::Escaping;
use stompkit_frame::{Command, Frame, Headers, Version};
use stompkit_wire::{ContentLength, EncodeError, Encoder, Event, ParserConfig};

fn version() -> impl Strategy<Value = Option<Version>> {
    prop_oneof![
        Just(None),
        Just(Some(Version::V1_0)),
        Just(Some(Version::V1_1)),
        Just(Some(Version::V1_2)),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    proptest::sample::select(Command::ALL.to_vec())
}

fn policy() -> impl Strategy<Value = ContentLength> {
    prop_oneof![
        Just(ContentLength::Always),
        Just(ContentLength::WhenNeeded),
        Just(ContentLength::AsGiven)
    ]
}

/// Header text rich in the bytes that escaping and framing care about.
fn text(min: usize) -> impl Strategy<Value = String> {
    let special = format!("[a-z:\\\\\r\n \t\u{0}é✓日-]{{{min},8}}");
    prop_oneof![
        3 => proptest::string::string_regex(&special).unwrap(),
        1 => proptest::string::string_regex(&format!("\\PC{{{min},6}}")).unwrap(),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(
            prop_oneof![Just(0u8), Just(b'\n'), Just(b'\r'), any::<u8>()],
            0..48
        ),
    ]
}

/// What the frame's own `content-length` is, for the AsGiven policy.
#[derive(Clone, Copy, Debug)]
enum OwnLength {
    None,
    Right,
    Wrong,
}

fn frame() -> impl Strategy<Value = (Frame, OwnLength)> {
    let headers = proptest::collection::vec((text(0), text(0)), 0..5);
    let own = prop_oneof![
        Just(OwnLength::None),
        Just(OwnLength::Right),
        Just(OwnLength::Wrong)
    ];
    (command(), headers, body(), own, any::<bool>()).prop_map(
        |(command, headers, body, own, body_anyway)| {
            // mostly bodies only where allowed, sometimes elsewhere to see the refusal
            let body = if command.allows_body() || body_anyway {
                body
            } else {
                Vec::new()
            };
            let mut h: Headers = headers
                .iter()
                .filter(|(n, _)| n != "content-length")
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            match own {
                OwnLength::None => {}
                OwnLength::Right => h.push("content-length", &body.len().to_string()),
                OwnLength::Wrong => h.push("content-length", &(body.len() + 1).to_string()),
            }
            (Frame::from_parts(command, h, body), own)
        },
    )
}

/// Every reason the encoder may give for refusing `frame` (empty: it must not refuse).
fn refusals(frame: &Frame, version: Option<Version>, policy: ContentLength) -> Vec<EncodeError> {
    let mut why = Vec::new();
    if !frame.command.allows_body() && !frame.body().is_empty() {
        why.push(EncodeError::BodyNotAllowed(frame.command));
    }
    let escaping = Escaping::for_frame(version, frame.command);
    for (name, value) in frame.headers().iter() {
        if name.is_empty() {
            why.push(EncodeError::EmptyHeaderName);
        }
        for (t, is_name) in [(name, true), (value, false)] {
            for b in t.bytes() {
                let bad = match escaping {
                    Escaping::V1_2 => false,
                    Escaping::V1_1 => b == b'\r',
                    Escaping::None => b == b'\r' || b == b'\n' || (is_name && b == b':'),
                };
                if bad {
                    why.push(EncodeError::Unrepresentable { byte: b });
                }
            }
        }
    }
    if policy == ContentLength::AsGiven
        && let Some(given) = frame.get("content-length")
        && given != frame.body().len().to_string()
    {
        why.push(EncodeError::ContentLengthMismatch);
    }
    why
}

/// The frame the parser must give back: the original, with `content-length` as the policy writes it.
fn expected(frame: &Frame, policy: ContentLength) -> Frame {
    let mut f = frame.clone();
    let has_nul = f.body().contains(&0);
    let len = f.body().len().to_string();
    match policy {
        ContentLength::Always => {
            f.headers_mut().remove("content-length");
            if f.command.allows_body() {
                f.headers_mut().push("content-length", &len);
            }
        }
        ContentLength::WhenNeeded => {
            f.headers_mut().remove("content-length");
            if has_nul {
                f.headers_mut().push("content-length", &len);
            }
        }
        ContentLength::AsGiven => {
            if has_nul && !f.headers().contains("content-length") {
                f.headers_mut().push("content-length", &len);
            }
        }
    }
    f
}

/// Small limits, so that arbitrary input reaches them.
fn small_limits() -> ParserConfig {
    ParserConfig {
        max_command_len: 12,
        max_header_line: 24,
        max_headers: 4,
        max_header_bytes: 72,
        max_body: 32,
        trim_headers: false,
    }
}

/// Cut points for `len` bytes from arbitrary numbers.
fn cuts_for(len: usize, raw: &[usize]) -> Vec<usize> {
    let mut c: Vec<usize> = raw
        .iter()
        .filter(|_| len > 1)
        .map(|r| 1 + r % (len - 1))
        .collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// Whole vs. chunked, through both paths: all must agree.
fn agree(
    input: &[u8],
    v: Versioning,
    cfg: &ParserConfig,
    raw_cuts: &[usize],
) -> Result<Outcome, TestCaseError> {
    let whole = run_push([input], v, cfg);
    let cuts = cuts_for(input.len(), raw_cuts);
    prop_assert_eq!(
        &run_push(cut(input, &cuts), v, cfg),
        &whole,
        "push, cuts {:?}",
        cuts
    );
    prop_assert_eq!(
        &run_parse(cut(input, &cuts), v, cfg),
        &whole,
        "parse, cuts {:?}",
        cuts
    );
    prop_assert_eq!(&run_parse([input], v, cfg), &whole, "parse, whole");
    Ok(whole)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (a) E4/E5/F6–F9: encode → parse round-trips, or the refusal is documented.
    #[test]
    fn encode_then_parse_round_trips((frame, _own) in frame(), v in version(), policy in policy()) {
        let mut out = b"keep".to_vec();
        let result = Encoder::new(v).with_content_length(policy).encode(&frame, &mut out);
        let allowed = refusals(&frame, v, policy);
        match result {
            Err(e) => {
                prop_assert!(allowed.contains(&e), "refused with {:?}, allowed {:?}", e, allowed);
                prop_assert_eq!(&out[..], b"keep", "nothing written on error");
            }
            Ok(()) => {
                prop_assert!(allowed.is_empty(), "encoded although it should refuse: {:?}", allowed);
                let wire = &out[4..];
                let (events, error) = run_push([wire], Versioning::Fixed(v), &ParserConfig::default());
                prop_assert_eq!(error, None, "wire {:?}", wire.escape_ascii().to_string());
                prop_assert_eq!(events, vec![Event::Frame(expected(&frame, policy))], "wire {:?}", wire.escape_ascii().to_string());
            }
        }
    }

    /// (d) E1–E5/F8: the encoder's one-piece path for plain headers writes what
    /// the header-by-header path writes, for every version and policy.
    #[test]
    fn plain_lines_encode_like_escaped_headers(
        command in command(),
        headers in proptest::collection::vec(
            ("[a-z:\\\\ é-]{0,6}", "[a-z0-9:\\\\ é/-]{0,8}"), 0..5),
        length in proptest::option::of(0usize..3),
        body in body(),
        v in version(),
        policy in policy(),
    ) {
        let mut plain: Headers = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        if let Some(extra) = length {
            plain.push("content-length", &(body.len() + extra / 2).to_string());
        }
        let clean = |t: &str| !t.contains([':', '\\']);
        let expect_plain = plain.iter().all(|(n, v)| !n.is_empty() && clean(n) && clean(v));
        prop_assert_eq!(plain.plain_lines().is_some(), expect_plain);
        // The same headers, changed once through `remove` (of a header added for
        // it), which leaves them header by header for good.
        let mut by_one = plain.clone();
        by_one.push("\u{1}", "");
        prop_assert_eq!(by_one.remove("\u{1}"), 1);
        prop_assert_eq!(by_one.plain_lines(), None);
        let body = if command.allows_body() { body } else { Vec::new() };
        let encode = |headers: Headers| {
            let frame = Frame::from_parts(command, headers, body.clone());
            let mut out = Vec::new();
            let result = Encoder::new(v).with_content_length(policy).encode(&frame, &mut out);
            (result, out)
        };
        prop_assert_eq!(&by_one, &plain);
        prop_assert_eq!(encode(plain), encode(by_one));
    }

    /// (b)+(c) F1/F2/H4: a stream of encoded frames and heart-beats parses the
    /// same in any chunking and through both paths, and gives the frames back.
    #[test]
    fn encoded_streams_parse_the_same_in_any_chunking(
        items in proptest::collection::vec(
            prop_oneof![
                3 => frame().prop_map(|(f, _)| Some(f)),
                1 => Just(None),
            ],
            0..6,
        ),
        crlf in any::<bool>(),
        v in version(),
        raw_cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let encoder = Encoder::new(v).with_content_length(ContentLength::WhenNeeded);
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for item in items {
            match item {
                Some(f) => {
                    if encoder.encode(&f, &mut wire).is_ok() {
                        want.push(Event::Frame(expected(&f, ContentLength::WhenNeeded)));
                    }
                }
                None => {
                    if crlf { wire.extend_from_slice(b"\r\n") } else { encoder.encode_heartbeat(&mut wire) }
                    want.push(Event::HeartBeat);
                }
            }
        }
        let whole = agree(&wire, Versioning::Fixed(v), &ParserConfig::default(), &raw_cuts)?;
        prop_assert_eq!(whole, (want, None));
    }

    /// (b)+(c) on arbitrary bytes near the grammar, with small limits: chunking
    /// never changes the events or the error, and nothing panics.
    #[test]
    fn arbitrary_bytes_parse_the_same_in_any_chunking(
        tokens in proptest::collection::vec(
            proptest::sample::select(vec![
                &b"SEND"[..], b"MESSAGE", b"ACK", b"CONNECT", b"send", b"\n", b"\n", b"\r\n", b"\r", b"\0", b"\0",
                b":", b":", b"\\", b"\\c", b"\\n", b"\\r", b"\\t", b"content-length:", b"0", b"3", b"12",
                b"-1", b"x", b"abcdefgh", b" ", b"\xc3\xa9", b"\xff", b"destination:/q\n",
            ]),
            0..40,
        ),
        v in version(),
        trim in any::<bool>(),
        raw_cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let input: Vec<u8> = tokens.concat();
        let cfg = ParserConfig { trim_headers: trim, ..small_limits() };
        agree(&input, Versioning::Fixed(v), &cfg, &raw_cuts)?;
        // one byte at a time too
        let whole = run_push([&input[..]], Versioning::Fixed(v), &cfg);
        prop_assert_eq!(run_parse(input.chunks(1), Versioning::Fixed(v), &cfg), whole);
    }

    /// (b) on fully arbitrary bytes.
    #[test]
    fn random_bytes_parse_the_same_in_any_chunking(
        input in proptest::collection::vec(any::<u8>(), 0..96),
        v in version(),
        raw_cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        agree(&input, Versioning::Fixed(v), &small_limits(), &raw_cuts)?;
    }
}
