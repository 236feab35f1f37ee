//! The golden corpus: byte-level frames, valid and invalid, one or more per rule of
//! `spec/RULES.md` (at the repository root) that a parser or encoder can honour
//! (F1–F14, E1–E5, and the parser side of V, H, C and S6), plus every vector of the
//! section "Vectors that implementations often get wrong" (W1–W11).
//!
//! Each parser case names its rule, its input bytes, the version state (not yet
//! negotiated, 1.0, 1.1 or 1.2) and the exact events and error expected, and is
//! checked whole, one byte at a time, through both parser paths and split at every
//! boundary (every pair of boundaries for short inputs): frames before an error
//! must come out intact whatever the chunking.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Outcome, Versioning, assert_any_chunking, frame};
use stompkit_escape::EscapeError;
use stompkit_frame::{Command, Frame, Version};
use stompkit_wire::{ContentLength, EncodeError, Encoder, Event, ParseError, Parser, ParserConfig};

use Command::*;
use Event::HeartBeat as HB;

const PRE: Option<Version> = None;
const V10: Option<Version> = Some(Version::V1_0);
const V11: Option<Version> = Some(Version::V1_1);
const V12: Option<Version> = Some(Version::V1_2);
const ALL: [Option<Version>; 4] = [PRE, V10, V11, V12];

/// One golden parser case.
struct Case {
    label: String,
    versioning: Versioning,
    config: ParserConfig,
    input: Vec<u8>,
    events: Vec<Event>,
    error: Option<ParseError>,
}

fn case(label: &str, version: Option<Version>, input: &[u8]) -> Case {
    Case {
        label: format!(
            "{label} [{}]",
            version.map_or("pre-negotiation".into(), |v| v.to_string())
        ),
        versioning: Versioning::Fixed(version),
        config: ParserConfig::default(),
        input: input.to_vec(),
        events: Vec::new(),
        error: None,
    }
}

impl Case {
    /// Expects this event next.
    fn ev(mut self, e: Event) -> Case {
        self.events.push(e);
        self
    }
    /// Expects `n` heart-beats next.
    fn hb(mut self, n: usize) -> Case {
        self.events.extend(std::iter::repeat_n(HB, n));
        self
    }
    /// Expects this frame next.
    fn f(self, command: Command, headers: &[(&str, &str)], body: &[u8]) -> Case {
        self.ev(frame(command, headers, body))
    }
    /// Expects the stream to end with this error.
    fn err(mut self, e: ParseError) -> Case {
        self.error = Some(e);
        self
    }
    fn cfg(mut self, config: &ParserConfig) -> Case {
        self.config = config.clone();
        self
    }
    fn versioning(mut self, v: Versioning) -> Case {
        self.versioning = v;
        self
    }
    fn check(self) {
        let expected: Outcome = (self.events, self.error);
        assert_any_chunking(
            &self.label,
            &self.input,
            self.versioning,
            &self.config,
            &expected,
        );
    }
}

// ---------------------------------------------------------------- F: framing

#[test]
fn f1_crlf_is_an_eol_in_every_version() {
    for v in ALL {
        case(
            "F1 CRLF line ends",
            v,
            b"SEND\r\ndestination:/q\r\nk:v\r\n\r\nhi\0\r\n",
        )
        .f(Send, &[("destination", "/q"), ("k", "v")], b"hi")
        .hb(1)
        .check();
        case(
            "F1 mixed LF and CRLF",
            v,
            b"MESSAGE\ndestination:/q\r\nk:v\n\r\n\0",
        )
        .f(Message, &[("destination", "/q"), ("k", "v")], b"")
        .check();
        case("F1 CRLF heart-beats", v, b"\r\n\r\n\n").hb(3).check();
    }
    case(
        "F1 CONNECT with CRLF before negotiation",
        PRE,
        b"CONNECT\r\naccept-version:1.2\r\nhost:h\r\n\r\n\0",
    )
    .f(Connect, &[("accept-version", "1.2"), ("host", "h")], b"")
    .check();
}

#[test]
fn f1_bare_cr_is_an_error_in_1_2_and_an_octet_before() {
    case(
        "F1 bare CR in a 1.2 value",
        V12,
        b"SEND\ndestination:/q\n\n\0SEND\nx:a\rb\n\n\0",
    )
    .f(Send, &[("destination", "/q")], b"")
    .err(ParseError::BareCr)
    .check();
    case("F1 CR CR LF in 1.2", V12, b"SEND\nx:a\r\r\n\n\0")
        .err(ParseError::BareCr)
        .check();
    case(
        "F1 bare CR in a 1.2 header name",
        V12,
        b"SEND\nx\ry:a\n\n\0",
    )
    .err(ParseError::BareCr)
    .check();
    case("F1 bare CR in a 1.2 command line", V12, b"SEND\rX\n\n\0")
        .err(ParseError::BareCr)
        .check();
    case(
        "F1 command line ending CR CR LF in 1.2",
        V12,
        b"SEND\r\r\n\n\0",
    )
    .err(ParseError::BareCr)
    .check();
    for v in [PRE, V10, V11] {
        case(
            "F1 lone CR in a value is an octet before 1.2",
            v,
            b"SEND\nx:a\rb\n\n\0",
        )
        .f(Send, &[("x", "a\rb")], b"")
        .check();
        case(
            "F1 CR CR LF leaves one CR in the value before 1.2",
            v,
            b"SEND\nx:a\r\r\n\n\0",
        )
        .f(Send, &[("x", "a\r")], b"")
        .check();
        case(
            "F1 CR then other byte in a command line",
            v,
            b"SEND\rX\n\n\0",
        )
        .err(ParseError::UnknownCommand)
        .check();
    }
    for v in ALL {
        case(
            "F1 CR not followed by LF between frames",
            v,
            b"\n\rSEND\n\n\0",
        )
        .hb(1)
        .err(ParseError::BareCr)
        .check();
        case("F1 a CR in the body is just a byte", v, b"SEND\n\na\rb\r\0")
            .f(Send, &[], b"a\rb\r")
            .check();
    }
}

#[test]
fn f1_bare_cr_found_far_from_where_the_search_started() {
    // A 1.2 parser may search ahead for CRs; a CR (legal) in a long body and a bare
    // CR in the next frame's header, far beyond the first search, are both judged right.
    let mut body = vec![b'x'; 3000];
    body[10] = b'\r';
    body[2500] = b'\r';
    let mut input = b"SEND\ncontent-length:3000\nk:v\n\n".to_vec();
    input.extend_from_slice(&body);
    input.extend_from_slice(b"\0\r\nSEND\nk:v\nk2:v\nx:a\rb\n\n\0");
    case("F1 bare CR after a long body", V12, &input)
        .f(Send, &[("content-length", "3000"), ("k", "v")], &body)
        .hb(1)
        .err(ParseError::BareCr)
        .check();
}

#[test]
fn f2_any_number_of_eols_after_nul() {
    for v in ALL {
        case(
            "F2 \\0\\n\\n between frames",
            v,
            b"RECEIPT\nreceipt-id:1\n\n\0\n\nRECEIPT\nreceipt-id:2\n\n\0",
        )
        .f(Receipt, &[("receipt-id", "1")], b"")
        .hb(2)
        .f(Receipt, &[("receipt-id", "2")], b"")
        .check();
        case(
            "F2 \\0\\r\\n between frames",
            v,
            b"RECEIPT\nreceipt-id:1\n\n\0\r\nRECEIPT\nreceipt-id:2\n\n\0\r\n",
        )
        .f(Receipt, &[("receipt-id", "1")], b"")
        .hb(1)
        .f(Receipt, &[("receipt-id", "2")], b"")
        .hb(1)
        .check();
        case(
            "F2 no EOL between frames",
            v,
            b"DISCONNECT\n\n\0DISCONNECT\n\n\0",
        )
        .f(Disconnect, &[], b"")
        .f(Disconnect, &[], b"")
        .check();
        case(
            "F2/H4 a stream of bare LFs between and before frames",
            v,
            b"\n\n\nERROR\n\n\0\n\n\n\n\r\n",
        )
        .hb(3)
        .f(Error, &[], b"")
        .hb(5)
        .check();
    }
}

#[test]
fn f3_blank_line_ends_the_headers() {
    for v in ALL {
        case("F3 no headers", v, b"DISCONNECT\n\n\0")
            .f(Disconnect, &[], b"")
            .check();
        case("F3 body starting with an EOL", v, b"SEND\nk:v\n\n\nx\n\0")
            .f(Send, &[("k", "v")], b"\nx\n")
            .check();
        case("F3 CRLF blank line", v, b"SEND\r\n\r\n\r\nbody\0")
            .f(Send, &[], b"\r\nbody")
            .check();
    }
}

#[test]
fn f4_commands_and_names_are_case_sensitive() {
    for c in Command::ALL {
        let input = format!("{}\n\n\0", c.as_str());
        case(&format!("F4 every command: {c}"), V12, input.as_bytes())
            .f(c, &[], b"")
            .check();
    }
    for v in ALL {
        for bad in [
            &b"send"[..],
            b"Send",
            b"SEND ",
            b" SEND",
            b"FOO",
            b"SENDX",
            b"SEND\0",
        ] {
            let mut input = b"RECEIPT\n\n\0".to_vec();
            input.extend_from_slice(bad);
            input.extend_from_slice(b"\n\n\0");
            case(
                &format!("F4/C8 unknown command {:?}", bad.escape_ascii().to_string()),
                v,
                &input,
            )
            .f(Receipt, &[], b"")
            .err(ParseError::UnknownCommand)
            .check();
        }
        case(
            "F4 header names keep their case",
            v,
            b"SEND\nDestination:/a\ndestination:/b\n\n\0",
        )
        .f(Send, &[("Destination", "/a"), ("destination", "/b")], b"")
        .check();
    }
    // a lookup is case-sensitive too
    let (ev, _) = common::run_push(
        [&b"SEND\nDestination:/a\n\n\0"[..]],
        Versioning::Fixed(V12),
        &ParserConfig::default(),
    );
    let Event::Frame(f) = &ev[0] else { panic!() };
    assert_eq!(f.destination(), None);
}

#[test]
fn f5_f12_headers_are_utf8() {
    for v in ALL {
        case(
            "F5 UTF-8 name and value",
            v,
            "SEND\nclé:välue ✓ 日本\n\n\0".as_bytes(),
        )
        .f(Send, &[("clé", "välue ✓ 日本")], b"")
        .check();
        case("F5 invalid UTF-8 in a value", v, b"SEND\nk:\xff\xfe\n\n\0")
            .err(ParseError::InvalidUtf8)
            .check();
        case("F5 invalid UTF-8 in a name", v, b"SEND\n\xc3:v\n\n\0")
            .err(ParseError::InvalidUtf8)
            .check();
        case(
            "F5 overlong encoding is not UTF-8",
            v,
            b"SEND\nk:\xc0\xaf\n\n\0",
        )
        .err(ParseError::InvalidUtf8)
        .check();
        case(
            "F5/F11 the body is bytes, not text",
            v,
            b"SEND\n\n\xff\xfe\0",
        )
        .f(Send, &[], b"\xff\xfe")
        .check();
    }
    case(
        "F5 invalid UTF-8 in an unescaped 1.2 value",
        V12,
        b"SEND\nk:\\c\xff\n\n\0",
    )
    .err(ParseError::InvalidUtf8)
    .check();
    case(
        "F5 frames before the bad one come out",
        V11,
        b"SEND\nk:ok\n\n\0SEND\nk:\xe2\x9c\n\n\0",
    )
    .f(Send, &[("k", "ok")], b"")
    .err(ParseError::InvalidUtf8)
    .check();
}

#[test]
fn f6_header_grammar() {
    for v in ALL {
        case("F6 empty value is legal", v, b"SEND\nk:\n\n\0")
            .f(Send, &[("k", "")], b"")
            .check();
        case("F6 empty name is illegal", v, b"SEND\n:v\n\n\0")
            .err(ParseError::InvalidHeader)
            .check();
        case(
            "F6 a line without a colon",
            v,
            b"SEND\nk:v\n\n\0SEND\nkv\n\n\0",
        )
        .f(Send, &[("k", "v")], b"")
        .err(ParseError::InvalidHeader)
        .check();
        case(
            "F6 first colon separates; raw colons kept in the value",
            v,
            b"MESSAGE\nmessage-id:ID:a:1:2\nsession::x:\n\n\0",
        )
        .f(
            Message,
            &[("message-id", "ID:a:1:2"), ("session", ":x:")],
            b"",
        )
        .check();
        case("F6 only a colon", v, b"SEND\n:\n\n\0")
            .err(ParseError::InvalidHeader)
            .check();
    }
    case(
        "F6/E2 escaped colon in a 1.2 name",
        V12,
        b"SEND\na\\cb:c\\cd\n\n\0",
    )
    .f(Send, &[("a:b", "c:d")], b"")
    .check();
    case(
        "F6/E2 escaped colon in a 1.1 name",
        V11,
        b"SEND\na\\cb:v\n\n\0",
    )
    .f(Send, &[("a:b", "v")], b"")
    .check();
}

#[test]
fn f7_only_send_message_error_have_bodies() {
    for c in Command::ALL {
        let input = format!("{c}\n\nx\0");
        let raw = case(&format!("F7 body on {c}"), V12, input.as_bytes());
        let with_len = format!("{c}\ncontent-length:1\n\nx\0");
        let counted = case(&format!("F7 counted body on {c}"), V12, with_len.as_bytes());
        let zero = format!("{c}\ncontent-length:0\n\n\0");
        case(&format!("F7 content-length:0 on {c}"), V12, zero.as_bytes())
            .f(c, &[("content-length", "0")], b"")
            .check();
        if c.allows_body() {
            raw.f(c, &[], b"x").check();
            counted.f(c, &[("content-length", "1")], b"x").check();
        } else {
            raw.err(ParseError::BodyNotAllowed).check();
            counted.err(ParseError::BodyNotAllowed).check();
        }
    }
    case(
        "F7/S3 RECEIPT with a body after a good frame",
        V11,
        b"RECEIPT\nreceipt-id:1\n\n\0\nRECEIPT\nreceipt-id:2\n\nno\0",
    )
    .f(Receipt, &[("receipt-id", "1")], b"")
    .hb(1)
    .err(ParseError::BodyNotAllowed)
    .check();
}

#[test]
fn f8_content_length_counts_the_body() {
    for v in ALL {
        case(
            "F8 NULs inside a counted body",
            v,
            b"SEND\ncontent-length:5\n\n\0a\0b\0\0\n",
        )
        .f(Send, &[("content-length", "5")], b"\0a\0b\0")
        .hb(1)
        .check();
        case("F8 content-length:0", v, b"MESSAGE\ncontent-length:0\n\n\0")
            .f(Message, &[("content-length", "0")], b"")
            .check();
        case(
            "F8 body followed by a byte other than NUL",
            v,
            b"SEND\ncontent-length:2\n\nabc\0",
        )
        .err(ParseError::MissingNul)
        .check();
        case(
            "F8 body followed by LF instead of NUL",
            v,
            b"SEND\ncontent-length:1\n\na\n\0",
        )
        .err(ParseError::MissingNul)
        .check();
        case(
            "F8 counted body of EOLs",
            v,
            b"ERROR\ncontent-length:3\n\n\n\r\n\0",
        )
        .f(Error, &[("content-length", "3")], b"\n\r\n")
        .check();
        case(
            "F8/F13 repeated content-length: the first wins",
            v,
            b"SEND\ncontent-length:3\ncontent-length:1\n\na\0b\0",
        )
        .f(
            Send,
            &[("content-length", "3"), ("content-length", "1")],
            b"a\0b",
        )
        .check();
        case(
            "F8/F13 a bad repeat is ignored",
            v,
            b"SEND\ncontent-length:1\ncontent-length:x\n\na\0",
        )
        .f(
            Send,
            &[("content-length", "1"), ("content-length", "x")],
            b"a",
        )
        .check();
        case(
            "F8 Content-Length is another header",
            v,
            b"SEND\nContent-Length:1\n\nab\0",
        )
        .f(Send, &[("Content-Length", "1")], b"ab")
        .check();
        case(
            "F8 5 bytes including a UTF-8 char",
            v,
            "SEND\ncontent-length:5\n\né\0é\0".as_bytes(),
        )
        .f(Send, &[("content-length", "5")], "é\0é".as_bytes())
        .check();
    }
}

#[test]
fn f8_content_length_values_are_strict() {
    for v in ALL {
        for bad in [
            "-1",
            "+5",
            " 5",
            "5 ",
            "5x",
            "",
            "0x5",
            "5.0",
            "18446744073709551616",
            "99999999999999999999999999",
        ] {
            let input = format!("SEND\ndestination:/q\n\n\0SEND\ncontent-length:{bad}\n\nhello\0");
            case(&format!("F8 content-length:{bad:?}"), v, input.as_bytes())
                .f(Send, &[("destination", "/q")], b"")
                .err(ParseError::BadContentLength)
                .check();
        }
        case(
            "F8 content-length:u64::MAX",
            v,
            b"SEND\ncontent-length:18446744073709551615\n\nx\0",
        )
        .err(ParseError::BodyTooLarge)
        .check();
        case(
            "F8 leading zeros are digits",
            v,
            b"SEND\ncontent-length:002\n\nab\0",
        )
        .f(Send, &[("content-length", "002")], b"ab")
        .check();
    }
    // Even with no body limit at all the largest value must not overflow.
    let unlimited = ParserConfig {
        max_body: usize::MAX,
        ..ParserConfig::default()
    };
    for len in [
        "18446744073709551615",
        "18446744073709551614",
        "18446744073709551600",
    ] {
        let input = format!("SEND\ncontent-length:{len}\n\nx\0");
        case(
            &format!("F8 content-length:{len} with max_body = usize::MAX"),
            V12,
            input.as_bytes(),
        )
        .cfg(&unlimited)
        .err(ParseError::BodyTooLarge)
        .check();
    }
    // escaped in 1.2, the name still is content-length
    case(
        "F8 content-length value escaped in 1.2",
        V12,
        b"SEND\ncontent-length:\\c1\n\nx\0",
    )
    .err(ParseError::BadContentLength)
    .check();
}

#[test]
fn f10_without_content_length_the_first_nul_ends_the_frame() {
    for v in ALL {
        case(
            "F10 NUL inside a body without content-length ends it early",
            v,
            b"SEND\n\nhello\0world\0\n",
        )
        .f(Send, &[], b"hello")
        .err(ParseError::UnknownCommand)
        .check();
        case(
            "F10 rest is parsed as the next frame",
            v,
            b"SEND\n\nab\0RECEIPT\n\n\0",
        )
        .f(Send, &[], b"ab")
        .f(Receipt, &[], b"")
        .check();
    }
}

#[test]
fn f11_content_type_passes_through() {
    case(
        "F11 content-type kept verbatim",
        V12,
        b"SEND\ncontent-type:text/plain;charset=utf-16\n\n\xff\xfe\0",
    )
    .f(
        Send,
        &[("content-type", "text/plain;charset=utf-16")],
        b"\xff\xfe",
    )
    .check();
}

#[test]
fn f13_repeated_headers_kept_in_order_first_wins() {
    for v in ALL {
        case(
            "F13 repeats kept",
            v,
            b"MESSAGE\nfoo:1\nbar:x\nfoo:2\nfoo:3\n\n\0",
        )
        .f(
            Message,
            &[("foo", "1"), ("bar", "x"), ("foo", "2"), ("foo", "3")],
            b"",
        )
        .check();
    }
    let (ev, _) = common::run_push(
        [&b"MESSAGE\nfoo:1\nfoo:2\n\n\0"[..]],
        Versioning::Fixed(V12),
        &ParserConfig::default(),
    );
    let Event::Frame(f) = &ev[0] else { panic!() };
    assert_eq!(f.get("foo"), Some("1"));
    assert_eq!(f.headers().get_all("foo").collect::<Vec<_>>(), ["1", "2"]);
}

#[test]
fn f14_no_trimming_by_default() {
    for v in ALL {
        case(
            "F14 value keeps its leading space",
            v,
            b"SEND\nkey: value\n\n\0",
        )
        .f(Send, &[("key", " value")], b"")
        .check();
        case(
            "F14 value keeps trailing space and tab",
            v,
            b"SEND\nkey:value \t\n\n\0",
        )
        .f(Send, &[("key", "value \t")], b"")
        .check();
        case("F14 name keeps its padding", v, b"SEND\n key :v\n\n\0")
            .f(Send, &[(" key ", "v")], b"")
            .check();
        case(
            "F14 a padded content-length is malformed",
            v,
            b"SEND\ncontent-length: 1\n\nx\0",
        )
        .err(ParseError::BadContentLength)
        .check();
    }
}

#[test]
fn f14_trimming_is_an_opt_in() {
    let trim = ParserConfig {
        trim_headers: true,
        ..ParserConfig::default()
    };
    for v in ALL {
        case("F14 opt-in trim", v, b"SEND\n key\t: value \n\n\0")
            .cfg(&trim)
            .f(Send, &[("key", "value")], b"")
            .check();
        case(
            "F14 opt-in trim applies to content-length",
            v,
            b"SEND\ncontent-length: 1 \n\nx\0",
        )
        .cfg(&trim)
        .f(Send, &[("content-length", "1")], b"x")
        .check();
        case(
            "F14 opt-in trim: a name of spaces is empty",
            v,
            b"SEND\n  :v\n\n\0",
        )
        .cfg(&trim)
        .err(ParseError::InvalidHeader)
        .check();
    }
}

// --------------------------------------------------------------- E: escaping

#[test]
fn e1_connect_stomp_connected_are_never_escaped() {
    for v in ALL {
        for c in [Connect, Stomp, Connected] {
            let input = format!("{c}\nx:a\\cb\nlogin:u\\tv\\\nk\\n:\\\\\n\n\0");
            case(&format!("E1 {c} headers stay raw"), v, input.as_bytes())
                .f(
                    c,
                    &[("x", "a\\cb"), ("login", "u\\tv\\"), ("k\\n", "\\\\")],
                    b"",
                )
                .check();
        }
    }
    case(
        "E1 every other frame is escaped in 1.2",
        V12,
        b"SEND\nx:a\\cb\n\n\0",
    )
    .f(Send, &[("x", "a:b")], b"")
    .check();
    case(
        "E1 before negotiation nothing is unescaped",
        PRE,
        b"SEND\nx:a\\cb\\t\n\n\0",
    )
    .f(Send, &[("x", "a\\cb\\t")], b"")
    .check();
}

#[test]
fn e2_decoding() {
    case(
        "E2 1.2 decodes \\r \\n \\c \\\\",
        V12,
        b"MESSAGE\nk\\r\\n\\c\\\\:\\r\\n\\c\\\\\n\n\0",
    )
    .f(Message, &[("k\r\n:\\", "\r\n:\\")], b"")
    .check();
    case(
        "E2 1.1 decodes \\n \\c \\\\",
        V11,
        b"MESSAGE\nk\\n\\c\\\\:\\n\\c\\\\\n\n\0",
    )
    .f(Message, &[("k\n:\\", "\n:\\")], b"")
    .check();
    for v in [V11, V12] {
        case(
            "E2 escaped backslash then n is not a newline",
            v,
            b"SEND\nx:a\\\\nb\n\n\0",
        )
        .f(Send, &[("x", "a\\nb")], b"")
        .check();
        case(
            "E2 sequences back to back",
            v,
            b"SEND\nx:\\\\\\\\\\c\\n\n\n\0",
        )
        .f(Send, &[("x", "\\\\:\n")], b"")
        .check();
        case(
            "E2 x-escapes as stomp.py sends it",
            v,
            b"SEND\nx-escapes:a\\cb\\nc\\\\d\n\n\0",
        )
        .f(Send, &[("x-escapes", "a:b\nc\\d")], b"")
        .check();
        case(
            "E2 UTF-8 around escapes",
            v,
            "SEND\nk:é\\cü\n\n\0".as_bytes(),
        )
        .f(Send, &[("k", "é:ü")], b"")
        .check();
    }
}

#[test]
fn e3_undefined_escapes_are_fatal() {
    use EscapeError::{TrailingBackslash, Undefined};
    for v in [V11, V12] {
        case("E3 \\t", v, b"SEND\nk:v\n\n\0SEND\nx:a\\tb\n\n\0")
            .f(Send, &[("k", "v")], b"")
            .err(ParseError::InvalidEscape(Undefined { byte: b't' }))
            .check();
        case("E3 trailing backslash", v, b"SEND\nx:ab\\\n\n\0")
            .err(ParseError::InvalidEscape(TrailingBackslash))
            .check();
        case("E3 undefined escape in a name", v, b"SEND\n\\x:v\n\n\0")
            .err(ParseError::InvalidEscape(Undefined { byte: b'x' }))
            .check();
        case("E3 backslash before a colon", v, b"SEND\nx:\\:\n\n\0")
            .err(ParseError::InvalidEscape(Undefined { byte: b':' }))
            .check();
        case("E3 upper-case \\C", v, b"SEND\nx:\\C\n\n\0")
            .err(ParseError::InvalidEscape(Undefined { byte: b'C' }))
            .check();
    }
    case("E3 \\r is fatal in 1.1", V11, b"SEND\nx:a\\rb\n\n\0")
        .err(ParseError::InvalidEscape(Undefined { byte: b'r' }))
        .check();
    case("E3 \\r is CR in 1.2", V12, b"SEND\nx:a\\rb\n\n\0")
        .f(Send, &[("x", "a\rb")], b"")
        .check();
}

#[test]
fn e5_1_0_has_no_escaping() {
    for v in [PRE, V10] {
        case(
            "E5 backslashes are plain octets",
            v,
            b"SEND\nx:a\\cb\\n\\t\\\nk\\:v\n\n\0",
        )
        .f(Send, &[("x", "a\\cb\\n\\t\\"), ("k\\", "v")], b"")
        .check();
    }
}

// ---------------------------------------------------- V, H, C: parser's share

#[test]
fn v_version_applies_from_the_next_frame() {
    // V3/V5: the client side learns the version from CONNECTED; escaping applies after it.
    case(
        "V5 CONNECTED then escaped frames",
        PRE,
        b"CONNECTED\nversion:1.2\nx:a\\cb\n\n\0\nMESSAGE\nx:a\\cb\\r\n\n\0\r\n",
    )
    .versioning(Versioning::FromConnected)
    .f(Connected, &[("version", "1.2"), ("x", "a\\cb")], b"")
    .hb(1)
    .f(Message, &[("x", "a:b\r")], b"")
    .hb(1)
    .check();
    case(
        "V7 STOMP opens a session like CONNECT",
        PRE,
        b"STOMP\naccept-version:1.1\nhost:h\n\n\0SEND\nx:\\n\n\n\0",
    )
    .versioning(Versioning::AfterConnect(Version::V1_1))
    .f(Stomp, &[("accept-version", "1.1"), ("host", "h")], b"")
    .f(Send, &[("x", "\n")], b"")
    .check();
    case(
        "V2 a 1.0 session keeps backslashes",
        PRE,
        b"CONNECT\nlogin:a\n\n\0SEND\nx:\\n\n\n\0",
    )
    .versioning(Versioning::AfterConnect(Version::V1_0))
    .f(Connect, &[("login", "a")], b"")
    .f(Send, &[("x", "\\n")], b"")
    .check();
    case(
        "V 1.2 strictness starts after CONNECTED",
        PRE,
        b"CONNECTED\nversion:1.2\nx:a\rb\n\n\0SEND\nx:a\rb\n\n\0",
    )
    .versioning(Versioning::FromConnected)
    .f(Connected, &[("version", "1.2"), ("x", "a\rb")], b"")
    .err(ParseError::BareCr)
    .check();

    let mut p = Parser::new();
    assert_eq!(p.version(), None);
    p.set_version(Version::V1_1);
    assert_eq!(p.version(), Some(Version::V1_1));
}

#[test]
fn h4_heartbeats_are_bare_eols() {
    for v in ALL {
        case(
            "H4 LF and CRLF beats, between and after frames",
            v,
            b"\n\r\n\nSEND\n\n\0\n\r\n",
        )
        .hb(3)
        .f(Send, &[], b"")
        .hb(2)
        .check();
    }
    let mut p = Parser::new();
    p.push(b"\n\r");
    assert_eq!(p.next_event(), Ok(Some(HB)));
    assert_eq!(p.next_event(), Ok(None), "half a CRLF waits");
    assert!(!p.in_frame(), "a half heart-beat is not a frame");
    p.push(b"\nSEN");
    assert_eq!(p.next_event(), Ok(Some(HB)));
    assert_eq!(p.next_event(), Ok(None));
    assert!(p.in_frame());
    p.push(b"D\n\n\0");
    assert!(matches!(p.next_event(), Ok(Some(Event::Frame(_)))));
    assert!(!p.in_frame());

    let mut out = Vec::new();
    Encoder::new(Some(Version::V1_2)).encode_heartbeat(&mut out);
    Encoder::new(None).encode_heartbeat(&mut out);
    assert_eq!(
        out, b"\n\n",
        "H4: a heart-beat is one LF, valid in every version"
    );
}

#[test]
fn c_session_rules_are_not_the_parsers_business() {
    // C1/C2/C4: required headers are checked by the session, not the parser.
    case("C1 SEND without destination parses", V12, b"SEND\n\nx\0")
        .f(Send, &[], b"x")
        .check();
    case(
        "C2 SUBSCRIBE without id parses",
        V12,
        b"SUBSCRIBE\ndestination:/q\n\n\0",
    )
    .f(Subscribe, &[("destination", "/q")], b"")
    .check();
    case(
        "C4 NACK in a 1.0 session parses",
        V10,
        b"NACK\nmessage-id:1\n\n\0",
    )
    .f(Nack, &[("message-id", "1")], b"")
    .check();
}

// ---------------------------------------------------------------- S6: limits

fn small() -> ParserConfig {
    ParserConfig {
        max_command_len: 7,
        max_header_line: 16,
        max_headers: 3,
        max_header_bytes: 64,
        max_body: 8,
        trim_headers: false,
    }
}

#[test]
fn s6_limits_at_their_boundaries() {
    let c = small();
    let ok = |label: &str, input: &[u8], ev: Event| case(label, V12, input).cfg(&c).ev(ev).check();
    let bad =
        |label: &str, input: &[u8], e: ParseError| case(label, V12, input).cfg(&c).err(e).check();

    ok(
        "S6 command of max_command_len",
        b"MESSAGE\n\n\0",
        frame(Message, &[], b""),
    );
    ok(
        "S6 command of max_command_len with CRLF",
        b"MESSAGE\r\n\r\n\0",
        frame(Message, &[], b""),
    );
    bad(
        "S6 command over max_command_len",
        b"CONNECTED\n\n\0",
        ParseError::CommandTooLong,
    );
    bad(
        "S6 command line of garbage",
        b"ABCDEFGHIJKLMNOP\n\n\0",
        ParseError::CommandTooLong,
    );

    ok(
        "S6 header line of max_header_line",
        b"SEND\nkkkkkkkk:vvvvvvv\n\n\0",
        frame(Send, &[("kkkkkkkk", "vvvvvvv")], b""),
    );
    ok(
        "S6 header line of max_header_line with CRLF",
        b"SEND\r\nkkkkkkkk:vvvvvvv\r\n\r\n\0",
        frame(Send, &[("kkkkkkkk", "vvvvvvv")], b""),
    );
    bad(
        "S6 header line over max_header_line",
        b"SEND\nkkkkkkkk:vvvvvvvv\n\n\0",
        ParseError::HeaderTooLong,
    );

    ok(
        "S6 max_headers headers",
        b"SEND\na:1\nb:2\nc:3\n\n\0",
        frame(Send, &[("a", "1"), ("b", "2"), ("c", "3")], b""),
    );
    bad(
        "S6 one header too many",
        b"SEND\na:1\nb:2\nc:3\nd:4\n\n\0",
        ParseError::TooManyHeaders,
    );

    ok(
        "S6 body of max_body",
        b"SEND\n\n12345678\0",
        frame(Send, &[], b"12345678"),
    );
    bad(
        "S6 body over max_body without content-length",
        b"SEND\n\n123456789\0",
        ParseError::BodyTooLarge,
    );
    ok(
        "S6 counted body of max_body",
        b"SEND\ncontent-length:8\n\n123\x005678\0",
        frame(Send, &[("content-length", "8")], b"123\x005678"),
    );
    bad(
        "S6 content-length over max_body",
        b"SEND\ncontent-length:9\n\n123456789\0",
        ParseError::BodyTooLarge,
    );
    bad(
        "S6 oversized body on a frame that allows none",
        b"ACK\n\n123456789\0",
        ParseError::BodyTooLarge,
    );

    // max_header_bytes counts command line and header lines together.
    let hb = ParserConfig {
        max_header_line: 32,
        max_headers: 100,
        max_header_bytes: 40,
        ..small()
    };
    let at = b"SEND\naaaaaaaaaaaaaaa:\nbbbbbbbbbbbbbbbbb:\n\n\0"; // second line ends at byte 40
    case("S6 headers up to max_header_bytes", V12, at)
        .cfg(&hb)
        .f(
            Send,
            &[("aaaaaaaaaaaaaaa", ""), ("bbbbbbbbbbbbbbbbb", "")],
            b"",
        )
        .check();
    case(
        "S6 headers up to max_header_bytes, CRLF",
        V12,
        b"SEND\naaaaaaaaaaaaaaa:\nbbbbbbbbbbbbbbbbb:\r\n\r\n\0",
    )
    .cfg(&hb)
    .f(
        Send,
        &[("aaaaaaaaaaaaaaa", ""), ("bbbbbbbbbbbbbbbbb", "")],
        b"",
    )
    .check();
    case(
        "S6 headers over max_header_bytes",
        V12,
        b"SEND\naaaaaaaaaaaaaaa:\nbbbbbbbbbbbbbbbbb:\nc:\n\n\0",
    )
    .cfg(&hb)
    .err(ParseError::HeadersTooLarge)
    .check();
    case(
        "S6 headers over max_header_bytes by one byte",
        V12,
        b"SEND\naaaaaaaaaaaaaaa:\nbbbbbbbbbbbbbbbbbb:\n\n\0",
    )
    .cfg(&hb)
    .err(ParseError::HeadersTooLarge)
    .check();

    // When one line crosses both limits, the one crossed first (in byte order) is
    // reported, whatever the chunking.
    let both = ParserConfig {
        max_header_line: 16,
        max_header_bytes: 12,
        max_headers: 100,
        ..small()
    };
    case(
        "S6 header bytes crossed before line length",
        V12,
        b"SEND\naaaaaaaaaaaaaaaaaaaaaaaaaaaa:\n\n\0",
    )
    .cfg(&both)
    .err(ParseError::HeadersTooLarge)
    .check();
    let both = ParserConfig {
        max_header_line: 8,
        max_header_bytes: 24,
        max_headers: 100,
        ..small()
    };
    case(
        "S6 line length crossed before header bytes",
        V12,
        b"SEND\naaaaaaaaaaaaaaaaaaaaaaaaaaaa:\n\n\0",
    )
    .cfg(&both)
    .err(ParseError::HeaderTooLong)
    .check();
}

/// Pushes `prefix` (never the rest of the frame) and expects `e` at once.
fn refused_early(label: &str, config: &ParserConfig, prefix: &[u8], e: ParseError) {
    for chunking in [prefix.len(), 1] {
        let mut p = Parser::with_config(config.clone());
        p.set_version(Version::V1_2);
        let mut got = Ok(None);
        for c in prefix.chunks(chunking) {
            p.push(c);
            got = p.next_event();
            if got.is_err() {
                break;
            }
        }
        assert_eq!(got, Err(e), "{label} (chunks of {chunking})");
    }
}

#[test]
fn s6_limits_refused_as_early_as_possible() {
    let c = small();
    refused_early(
        "S6 content-length over max_body, before any body byte",
        &c,
        b"SEND\ncontent-length:9\n",
        ParseError::BodyTooLarge,
    );
    refused_early(
        "S6 content-length of u64::MAX, before any body byte",
        &ParserConfig::default(),
        b"SEND\ncontent-length:18446744073709551615\n",
        ParseError::BodyTooLarge,
    );
    refused_early(
        "S6 header line over the limit, before its LF",
        &c,
        b"SEND\nkkkkkkkk:vvvvvvvv",
        ParseError::HeaderTooLong,
    );
    refused_early(
        "S6 header line of garbage, before any LF",
        &c,
        b"SEND\n\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0b\x0c\x0e\x0f\x10\x11\x12\x13",
        ParseError::HeaderTooLong,
    );
    refused_early(
        "S6 too many headers, before the blank line",
        &c,
        b"SEND\na:1\nb:2\nc:3\nd:4\n",
        ParseError::TooManyHeaders,
    );
    refused_early(
        "S6 command too long, before its LF",
        &c,
        b"CONNECTE",
        ParseError::CommandTooLong,
    );
    refused_early(
        "S6 body without content-length over the limit, without a NUL",
        &c,
        b"SEND\n\n123456789",
        ParseError::BodyTooLarge,
    );
    let hb = ParserConfig {
        max_header_line: 32,
        max_headers: 100,
        max_header_bytes: 40,
        ..small()
    };
    refused_early(
        "S6 header bytes over the limit, before the LF",
        &hb,
        b"SEND\naaaaaaaaaaaaaaa:\nbbbbbbbbbbbbbbbbbbb",
        ParseError::HeadersTooLarge,
    );

    // and nothing is refused that is still within limits
    let mut p = Parser::with_config(c.clone());
    p.push(b"MESSAGE\r\nkkkkkkkk:vvvvvvv\r\na:1\r\nb:2\r\n\r\n12345678");
    assert_eq!(p.next_event(), Ok(None));
    assert!(p.in_frame());
    p.push(b"\0");
    assert!(matches!(p.next_event(), Ok(Some(Event::Frame(_)))));

    // default limits are the documented ones
    let d = ParserConfig::default();
    assert_eq!(
        (d.max_command_len, d.max_header_line, d.max_headers),
        (1024, 64 * 1024, 1000)
    );
    assert_eq!(
        (d.max_header_bytes, d.max_body, d.trim_headers),
        (256 * 1024, 4 * 1024 * 1024, false)
    );
    assert_eq!(Parser::new().config(), &d);
}

// -------------------------------------------- vectors implementations get wrong

#[test]
fn vectors_that_implementations_often_get_wrong() {
    // `a\\nb` in a 1.2 value is a, backslash, n, b.
    case("vector a\\\\nb", V12, b"SEND\nx:a\\\\nb\n\n\0")
        .f(Send, &[("x", "a\\nb")], b"")
        .check();
    // `\r` in a value: fatal in 1.1, CR in 1.2.
    case("vector \\r in 1.1", V11, b"SEND\nx:\\r\n\n\0")
        .err(ParseError::InvalidEscape(EscapeError::Undefined {
            byte: b'r',
        }))
        .check();
    case("vector \\r in 1.2", V12, b"SEND\nx:\\r\n\n\0")
        .f(Send, &[("x", "\r")], b"")
        .check();
    // `\c` in a CONNECT header stays the two characters.
    case(
        "vector \\c in CONNECT",
        V12,
        b"CONNECT\npasscode:a\\cb\n\n\0",
    )
    .f(Connect, &[("passcode", "a\\cb")], b"")
    .check();
    // A content-length body followed by a byte other than NUL.
    case("vector missing NUL", V12, b"SEND\ncontent-length:1\n\nab\0")
        .err(ParseError::MissingNul)
        .check();
    // A CR not followed by LF.
    case("vector bare CR", V12, b"SEND\nx:a\rb\n\n\0")
        .err(ParseError::BareCr)
        .check();
    // `\0\n\n` and `\0\r\n` between frames; bare LFs.
    case(
        "vector EOLs between frames",
        V12,
        b"SEND\n\n\0\n\nSEND\n\n\0\r\n\n\n\nSEND\n\n\0",
    )
    .f(Send, &[], b"")
    .hb(2)
    .f(Send, &[], b"")
    .hb(4)
    .f(Send, &[], b"")
    .check();
    // content-length twice: the first wins.
    case(
        "vector content-length twice",
        V12,
        b"SEND\ncontent-length:2\ncontent-length:0\n\n\0\0\0",
    )
    .f(
        Send,
        &[("content-length", "2"), ("content-length", "0")],
        b"\0\0",
    )
    .check();
    // NUL inside a body with and without content-length.
    case(
        "vector NUL with content-length",
        V12,
        b"SEND\ncontent-length:3\n\na\0b\0",
    )
    .f(Send, &[("content-length", "3")], b"a\0b")
    .check();
    case("vector NUL without content-length", V12, b"SEND\n\na\0b\0")
        .f(Send, &[], b"a")
        .check();
    // content-length values.
    case(
        "vector content-length u64::MAX",
        V12,
        b"SEND\ncontent-length:18446744073709551615\n\n\0",
    )
    .err(ParseError::BodyTooLarge)
    .check();
    for bad in ["-1", "+5", " 5", "5x"] {
        let input = format!("SEND\ncontent-length:{bad}\n\nhello\0");
        case(
            &format!("vector content-length:{bad}"),
            V12,
            input.as_bytes(),
        )
        .err(ParseError::BadContentLength)
        .check();
    }
    // A 1.0 value with a raw LF leaves a line without a colon.
    case(
        "vector 1.0 raw LF in a value",
        V10,
        b"SEND\ndestination:/q\n\nok\0SEND\ndestination:/q\nx-escapes:a:b\nc\\d\n\nhello\0",
    )
    .f(Send, &[("destination", "/q")], b"ok")
    .err(ParseError::InvalidHeader)
    .check();
    // Split at every boundary: every `check` above does it.
}

#[test]
fn parse_errors_have_short_messages() {
    for (e, m) in [
        (ParseError::UnknownCommand, "unknown command"),
        (ParseError::BodyTooLarge, "body too large"),
        (
            ParseError::InvalidEscape(EscapeError::TrailingBackslash),
            "invalid header escape",
        ),
    ] {
        assert_eq!(e.message(), m);
        assert!(!e.to_string().is_empty());
    }
}

// --------------------------------------------------------------- the encoder

fn encode(
    version: Option<Version>,
    policy: ContentLength,
    frame: &Frame,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = b"prefix".to_vec();
    let r = Encoder::new(version)
        .with_content_length(policy)
        .encode(frame, &mut out);
    match r {
        Ok(()) => Ok(out.split_off(6)),
        Err(e) => {
            assert_eq!(out, b"prefix", "nothing written on error ({e:?})");
            Err(e)
        }
    }
}

/// Encodes, compares with the exact bytes, and parses them back in the same version.
fn encodes_to(version: Option<Version>, policy: ContentLength, frame: &Frame, wire: &[u8]) {
    let out = encode(version, policy, frame).unwrap();
    assert_eq!(
        out.escape_ascii().to_string(),
        wire.escape_ascii().to_string(),
        "{frame:?}"
    );
    let (ev, err) = common::run_push(
        [&out[..]],
        Versioning::Fixed(version),
        &ParserConfig::default(),
    );
    assert_eq!(err, None);
    assert_eq!(ev.len(), 1);
}

const GIVEN: ContentLength = ContentLength::AsGiven;

#[test]
fn e4_encoder_escapes_1_2() {
    let f = Frame::send("/q").header("a:b\\c", "x\r\n:\\y");
    encodes_to(
        V12,
        GIVEN,
        &f,
        b"SEND\ndestination:/q\na\\cb\\\\c:x\\r\\n\\c\\\\y\n\n\0",
    );
    let f = Frame::new(Message).header("k", "a\\nb");
    encodes_to(V12, GIVEN, &f, b"MESSAGE\nk:a\\\\nb\n\n\0");
    for c in Command::ALL.into_iter().filter(|c| c.escapes_headers()) {
        let out = encode(V12, GIVEN, &Frame::new(c).header("k", ":")).unwrap();
        assert_eq!(
            out,
            format!("{c}\nk:\\c\n\n\0").as_bytes(),
            "E1/E4 {c} is escaped"
        );
    }
}

#[test]
fn e4_encoder_escapes_1_1_and_refuses_cr() {
    let f = Frame::send("/q").header("a:b", "x\n:\\y");
    encodes_to(
        V11,
        GIVEN,
        &f,
        b"SEND\ndestination:/q\na\\cb:x\\n\\c\\\\y\n\n\0",
    );
    for f in [
        Frame::send("/q").header("k", "a\rb"),
        Frame::send("/q").header("k\r", "v"),
    ] {
        assert_eq!(
            encode(V11, GIVEN, &f),
            Err(EncodeError::Unrepresentable { byte: b'\r' })
        );
    }
}

#[test]
fn e5_encoder_1_0_writes_raw_and_refuses_lf() {
    for v in [V10, PRE] {
        let f = Frame::send("/q").header("k\\", "a:b\\c");
        encodes_to(v, GIVEN, &f, b"SEND\ndestination:/q\nk\\:a:b\\c\n\n\0");
        assert_eq!(
            encode(v, GIVEN, &Frame::send("/q").header("k", "a\nb")),
            Err(EncodeError::Unrepresentable { byte: b'\n' })
        );
        assert_eq!(
            encode(v, GIVEN, &Frame::send("/q").header("k", "a\rb")),
            Err(EncodeError::Unrepresentable { byte: b'\r' })
        );
        assert_eq!(
            encode(v, GIVEN, &Frame::send("/q").header("a:b", "v")),
            Err(EncodeError::Unrepresentable { byte: b':' })
        );
    }
}

#[test]
fn e1_encoder_never_escapes_connect_frames() {
    for v in ALL {
        for c in [Connect, Stomp, Connected] {
            let f = Frame::new(c).header("passcode", "a\\cb:c\\");
            let wire = format!("{c}\npasscode:a\\cb:c\\\n\n\0");
            encodes_to(v, GIVEN, &f, wire.as_bytes());
            assert_eq!(
                encode(v, GIVEN, &Frame::new(c).header("k", "a\nb")),
                Err(EncodeError::Unrepresentable { byte: b'\n' }),
                "E1 {c}"
            );
            assert_eq!(
                encode(v, GIVEN, &Frame::new(c).header("a:b", "v")),
                Err(EncodeError::Unrepresentable { byte: b':' }),
                "E1 {c}"
            );
        }
    }
}

#[test]
fn f7_encoder_refuses_bodies_where_none_is_allowed() {
    for v in ALL {
        for c in Command::ALL {
            let f = Frame::new(c).with_body("x");
            if c.allows_body() {
                assert!(encode(v, GIVEN, &f).is_ok());
            } else {
                for policy in [ContentLength::Always, ContentLength::WhenNeeded, GIVEN] {
                    assert_eq!(encode(v, policy, &f), Err(EncodeError::BodyNotAllowed(c)));
                }
            }
        }
    }
    assert_eq!(
        encode(
            V12,
            GIVEN,
            &Frame::subscribe("/q", "0", stompkit_frame::AckMode::Auto).with_body("x")
        ),
        Err(EncodeError::BodyNotAllowed(Subscribe))
    );
}

#[test]
fn f6_encoder_refuses_an_empty_header_name() {
    for v in ALL {
        for c in [Send, Connect, Subscribe] {
            assert_eq!(
                encode(v, GIVEN, &Frame::new(c).header("", "v")),
                Err(EncodeError::EmptyHeaderName)
            );
        }
    }
    // an empty value is fine
    encodes_to(
        V12,
        GIVEN,
        &Frame::new(Ack).header("id", ""),
        b"ACK\nid:\n\n\0",
    );
}

#[test]
fn f8_f9_content_length_always() {
    let p = ContentLength::Always;
    encodes_to(
        V12,
        p,
        &Frame::send("/q").with_body("hi"),
        b"SEND\ndestination:/q\ncontent-length:2\n\nhi\0",
    );
    encodes_to(
        V12,
        p,
        &Frame::send("/q"),
        b"SEND\ndestination:/q\ncontent-length:0\n\n\0",
    );
    // the frame's own value is replaced, even a wrong one
    let own = Frame::send("/q")
        .header("content-length", "99")
        .header("k", "v")
        .with_body(&b"a\0b"[..]);
    encodes_to(
        V11,
        p,
        &own,
        b"SEND\ndestination:/q\nk:v\ncontent-length:3\n\na\0b\0",
    );
    // frames without a body keep what they have
    encodes_to(
        V12,
        p,
        &Frame::new(Receipt).header("receipt-id", "1"),
        b"RECEIPT\nreceipt-id:1\n\n\0",
    );
}

#[test]
fn f8_f9_content_length_when_needed() {
    let p = ContentLength::WhenNeeded;
    encodes_to(
        V12,
        p,
        &Frame::send("/q").with_body("hi"),
        b"SEND\ndestination:/q\n\nhi\0",
    );
    encodes_to(
        V12,
        p,
        &Frame::send("/q")
            .header("content-length", "2")
            .with_body("hi"),
        b"SEND\ndestination:/q\n\nhi\0",
    );
    encodes_to(
        V10,
        p,
        &Frame::new(Message).with_body(&b"\0"[..]),
        b"MESSAGE\ncontent-length:1\n\n\0\0",
    );
    encodes_to(
        PRE,
        p,
        &Frame::error("x").with_body(&b"a\0"[..]),
        b"ERROR\nmessage:x\ncontent-length:2\n\na\0\0",
    );
}

#[test]
fn f8_f9_content_length_as_given() {
    assert_eq!(ContentLength::default(), GIVEN);
    // kept where it stands
    let f = Frame::send("/q")
        .header("content-length", "2")
        .header("k", "v")
        .with_body("hi");
    encodes_to(
        V12,
        GIVEN,
        &f,
        b"SEND\ndestination:/q\ncontent-length:2\nk:v\n\nhi\0",
    );
    // none given, none needed
    encodes_to(
        V12,
        GIVEN,
        &Frame::send("/q").with_body("hi"),
        b"SEND\ndestination:/q\n\nhi\0",
    );
    // none given but the body has a NUL: one is added (F9)
    encodes_to(
        V12,
        GIVEN,
        &Frame::send("/q").with_body(&b"h\0i"[..]),
        b"SEND\ndestination:/q\ncontent-length:3\n\nh\0i\0",
    );
    // a mismatch or a malformed value is the caller's error
    for bad in ["3", "1", "-2", "+2", " 2", "x", ""] {
        let f = Frame::send("/q")
            .header("content-length", bad)
            .with_body("hi");
        assert_eq!(
            encode(V12, GIVEN, &f),
            Err(EncodeError::ContentLengthMismatch),
            "{bad:?}"
        );
    }
    // F13: only the first entry is checked; the repeat passes through
    let f = Frame::new(Message)
        .header("content-length", "1")
        .header("content-length", "5")
        .with_body("x");
    encodes_to(
        V12,
        GIVEN,
        &f,
        b"MESSAGE\ncontent-length:1\ncontent-length:5\n\nx\0",
    );
}

#[test]
fn f7_f8_encoder_content_length_on_frames_without_a_body() {
    // A content-length that does not match the (empty) body would make the peer
    // read the following bytes as this frame's body.
    let sub = Frame::new(Subscribe)
        .header("id", "0")
        .header("content-length", "1");
    assert_eq!(
        encode(V12, GIVEN, &sub),
        Err(EncodeError::ContentLengthMismatch)
    );
    for p in [ContentLength::Always, ContentLength::WhenNeeded] {
        encodes_to(V12, p, &sub, b"SUBSCRIBE\nid:0\n\n\0");
    }
    let zero = Frame::new(Subscribe).header("content-length", "0");
    encodes_to(V12, GIVEN, &zero, b"SUBSCRIBE\ncontent-length:0\n\n\0");
}

#[test]
fn encoder_version_can_be_switched() {
    let mut e = Encoder::new(None);
    assert_eq!(e.version(), None);
    e.set_version(Version::V1_2);
    assert_eq!(e.version(), Some(Version::V1_2));
    let mut out = Vec::new();
    e.encode(&Frame::send("/q").header("k", "a:b"), &mut out)
        .unwrap();
    assert_eq!(out, b"SEND\ndestination:/q\nk:a\\cb\n\n\0");
}
