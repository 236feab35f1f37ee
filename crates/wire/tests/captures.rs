//! Real traffic (stomp.py against RabbitMQ 3.10 and ActiveMQ 5.17, byte for byte,
//! in `tests/captures/` of this crate, described by its README) parses as that
//! README says: every server, 1.1, 1.2 and error file without error; the two 1.0
//! client files up to the SEND whose header value holds a raw LF, then
//! `InvalidHeader` (vector: 1.0 raw LF, `spec/RULES.md`). Each file gives the same
//! events whole and one byte at a time, through both paths, and exactly the events
//! listed in its `.expected` file (worked out independently of this parser).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Outcome, Versioning, run_parse, run_push};
use std::collections::BTreeMap;
use std::path::PathBuf;
use stompkit_frame::{Command, Frame, Version};
use stompkit_wire::{Event, ParseError, Parser, ParserConfig};

/// The captures directory inside this crate; panics (never skips) when it is missing.
fn captures_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/captures"));
    assert!(
        dir.is_dir(),
        "captures directory {} is missing: it is part of the stompkit-wire crate",
        dir.display()
    );
    dir
}

fn read(name: &str) -> Vec<u8> {
    let path = captures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// How the version is learnt for a capture: client files name it, server files get
/// it from CONNECTED (the `no-common-version` ERROR comes before any negotiation).
fn versioning(name: &str) -> Versioning {
    if name.ends_with("-client.bin") {
        let v = ["1.0", "1.1", "1.2"]
            .into_iter()
            .find(|v| name.contains(&format!("-{v}-")))
            .unwrap_or_else(|| panic!("{name}: no version in the file name"));
        Versioning::AfterConnect(v.parse().unwrap())
    } else {
        Versioning::FromConnected
    }
}

/// Parses a capture whole, one byte at a time and in 7-byte chunks through both
/// parser paths; all must agree. Returns the outcome.
fn parse_capture(name: &str) -> Outcome {
    let bytes = read(name);
    let v = versioning(name);
    let cfg = ParserConfig::default();
    let whole = run_push([&bytes[..]], v, &cfg);
    assert_eq!(
        run_push(bytes.chunks(1), v, &cfg),
        whole,
        "{name}: one byte at a time"
    );
    assert_eq!(
        run_parse(bytes.chunks(1), v, &cfg),
        whole,
        "{name}: one byte at a time, parse path"
    );
    assert_eq!(
        run_parse(bytes.chunks(7), v, &cfg),
        whole,
        "{name}: 7-byte chunks, parse path"
    );
    assert_eq!(
        run_parse([&bytes[..]], v, &cfg),
        whole,
        "{name}: whole, parse path"
    );
    whole
}

fn frames(events: &[Event]) -> Vec<&Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(f) => Some(f),
            Event::HeartBeat => None,
        })
        .collect()
}

/// `{command: count}` plus the number of heart-beats.
fn census(events: &[Event]) -> (BTreeMap<&'static str, usize>, usize) {
    let mut counts = BTreeMap::new();
    for f in frames(events) {
        *counts.entry(f.command.as_str()).or_default() += 1;
    }
    let beats = events.iter().filter(|e| **e == Event::HeartBeat).count();
    (counts, beats)
}

fn counts(list: &[(&'static str, usize)]) -> BTreeMap<&'static str, usize> {
    list.iter().copied().collect()
}

/// The 264-byte binary body stomp.py sent: `bin\0ary\0` then every byte value.
fn binary_body() -> Vec<u8> {
    let mut b = b"bin\0ary\0".to_vec();
    b.extend(0..=255u8);
    b
}

const JSON: &str = r#"{"type":"TEXT","body":"Hello world! é✓"}"#;

#[test]
fn every_capture_parses_as_the_readme_says() {
    let mut names: Vec<String> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        20,
        "the README describes 20 capture files: {names:?}"
    );
    for name in &names {
        let (events, error) = parse_capture(name);
        assert!(!frames(&events).is_empty(), "{name}: no frames");
        if name.ends_with("-1.0-client.bin") {
            assert_eq!(error, Some(ParseError::InvalidHeader), "{name}");
        } else {
            assert_eq!(error, None, "{name}");
        }
    }
}

#[test]
fn frame_counts_per_capture() {
    let client_1x = counts(&[
        ("STOMP", 1),
        ("SUBSCRIBE", 2),
        ("SEND", 4),
        ("ACK", 2),
        ("BEGIN", 1),
        ("COMMIT", 1),
    ]);
    let mut rabbit_client_1x = client_1x.clone();
    rabbit_client_1x.insert("UNSUBSCRIBE", 1);
    rabbit_client_1x.insert("DISCONNECT", 1);
    let table: Vec<(&str, BTreeMap<&str, usize>, usize)> = vec![
        (
            "activemq-5.17-1.0-client.bin",
            counts(&[("CONNECT", 1), ("SUBSCRIBE", 2)]),
            0,
        ),
        (
            "activemq-5.17-1.0-server.bin",
            counts(&[
                ("CONNECTED", 1),
                ("RECEIPT", 4),
                ("MESSAGE", 4),
                ("ERROR", 1),
            ]),
            10,
        ),
        ("activemq-5.17-1.1-client.bin", client_1x.clone(), 1),
        (
            "activemq-5.17-1.1-server.bin",
            counts(&[("CONNECTED", 1), ("RECEIPT", 3), ("MESSAGE", 4)]),
            9,
        ),
        ("activemq-5.17-1.2-client.bin", client_1x.clone(), 1),
        (
            "activemq-5.17-1.2-server.bin",
            counts(&[("CONNECTED", 1), ("RECEIPT", 3), ("MESSAGE", 4)]),
            9,
        ),
        (
            "activemq-5.17-error-bad-escape.bin",
            counts(&[("CONNECTED", 1)]),
            1,
        ),
        (
            "activemq-5.17-error-no-common-version.bin",
            counts(&[("ERROR", 1)]),
            1,
        ),
        (
            "activemq-5.17-error-send-without-destination.bin",
            counts(&[("CONNECTED", 1), ("ERROR", 1)]),
            2,
        ),
        (
            "activemq-5.17-error-unknown-command.bin",
            counts(&[("CONNECTED", 1), ("ERROR", 1)]),
            2,
        ),
        (
            "rabbitmq-3.10-1.0-client.bin",
            counts(&[("CONNECT", 1), ("SUBSCRIBE", 2)]),
            0,
        ),
        (
            "rabbitmq-3.10-1.0-server.bin",
            counts(&[("CONNECTED", 1), ("RECEIPT", 2)]),
            3,
        ),
        ("rabbitmq-3.10-1.1-client.bin", rabbit_client_1x.clone(), 2),
        (
            "rabbitmq-3.10-1.1-server.bin",
            counts(&[("CONNECTED", 1), ("RECEIPT", 4), ("MESSAGE", 4)]),
            16,
        ),
        ("rabbitmq-3.10-1.2-client.bin", rabbit_client_1x, 2),
        (
            "rabbitmq-3.10-1.2-server.bin",
            counts(&[("CONNECTED", 1), ("RECEIPT", 4), ("MESSAGE", 4)]),
            16,
        ),
        (
            "rabbitmq-3.10-error-bad-escape.bin",
            counts(&[("CONNECTED", 1)]),
            1,
        ),
        (
            "rabbitmq-3.10-error-no-common-version.bin",
            counts(&[("ERROR", 1)]),
            1,
        ),
        (
            "rabbitmq-3.10-error-send-without-destination.bin",
            counts(&[("CONNECTED", 1), ("ERROR", 1)]),
            2,
        ),
        (
            "rabbitmq-3.10-error-unknown-command.bin",
            counts(&[("CONNECTED", 1), ("ERROR", 1)]),
            2,
        ),
    ];
    for (name, want, beats) in table {
        let (events, _) = parse_capture(name);
        assert_eq!(census(&events), (want, beats), "{name}");
    }
}

#[test]
fn client_1_1_and_1_2_sends_decode() {
    for broker in ["activemq-5.17", "rabbitmq-3.10"] {
        for v in ["1.1", "1.2"] {
            let name = format!("{broker}-{v}-client.bin");
            let (events, _) = parse_capture(&name);
            let fs = frames(&events);
            assert_eq!(
                fs[0].command,
                Command::Stomp,
                "{name}: V7 STOMP opens the session"
            );
            assert_eq!(fs[0].accept_version(), Some(v));
            assert_eq!(fs[0].heart_beat(), Some("1000,1000"));
            let sends: Vec<_> = fs.iter().filter(|f| f.command == Command::Send).collect();
            // E2: `a\cb\nc\\d` on the wire
            assert_eq!(sends[0].get("x-escapes"), Some("a:b\nc\\d"), "{name}");
            assert_eq!(sends[0].body(), b"hello topic");
            assert_eq!(sends[0].content_length(), Ok(Some(11)));
            // F8: a binary body with NULs, exact through content-length
            assert_eq!(sends[1].body(), &binary_body()[..], "{name}");
            assert_eq!(sends[1].content_type(), Some("application/octet-stream"));
            // F12: UTF-8 JSON body
            assert_eq!(
                std::str::from_utf8(sends[2].body()).unwrap(),
                JSON,
                "{name}"
            );
            assert_eq!(sends[3].body(), b"in tx");
            assert!(sends[3].transaction().is_some());
            let subs: Vec<_> = fs
                .iter()
                .filter(|f| f.command == Command::Subscribe)
                .collect();
            assert_eq!(subs[1].ack(), Some("client-individual"));
        }
    }
    // C4 ACK forms, with ActiveMQ's escaped colons decoded (E2)
    let (events, _) = parse_capture("activemq-5.17-1.1-client.bin");
    let acks: Vec<_> = frames(&events)
        .into_iter()
        .filter(|f| f.command == Command::Ack)
        .collect();
    assert_eq!(
        acks[0].message_id(),
        Some("ID:vm-37437-1795460210633-3:5474:-1:1:2")
    );
    assert_eq!(acks[0].subscription(), Some("sub-queue"));
    let (events, _) = parse_capture("activemq-5.17-1.2-client.bin");
    let acks: Vec<_> = frames(&events)
        .into_iter()
        .filter(|f| f.command == Command::Ack)
        .collect();
    assert_eq!(acks[1].id(), Some("ID:vm-37437-1795460210633-4:23"));
    let (events, _) = parse_capture("rabbitmq-3.10-1.2-client.bin");
    let fs = frames(&events);
    assert_eq!(fs.last().unwrap().command, Command::Disconnect);
    assert_eq!(fs.last().unwrap().receipt(), Some("r-bye"));
}

#[test]
fn client_1_0_stops_at_the_raw_lf() {
    for (name, connect_headers) in [
        (
            "activemq-5.17-1.0-client.bin",
            vec![("accept-version", "1.0")],
        ),
        (
            "rabbitmq-3.10-1.0-client.bin",
            vec![
                ("accept-version", "1.0"),
                ("login", "guest"),
                ("passcode", "guest"),
            ],
        ),
    ] {
        let (events, error) = parse_capture(name);
        assert_eq!(error, Some(ParseError::InvalidHeader), "{name}");
        let fs = frames(&events);
        assert_eq!(
            fs.len(),
            3,
            "{name}: frames before the bad SEND come out intact"
        );
        assert_eq!(fs[0].command, Command::Connect);
        assert_eq!(fs[0].headers().iter().collect::<Vec<_>>(), connect_headers);
        let sub = |f: &Frame| {
            f.headers()
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(fs[1].command, Command::Subscribe);
        assert_eq!(sub(fs[1])[0], ("ack".into(), "auto".into()));
        assert_eq!(fs[1].id(), Some("sub-topic"));
        assert_eq!(fs[2].ack(), Some("client"));
        assert_eq!(fs[2].receipt(), Some("r-sub-queue"));
    }
}

#[test]
fn server_messages_decode() {
    // RabbitMQ: header order as sent, `redelivered`, escaped x-escapes.
    for v in ["1.1", "1.2"] {
        let name = format!("rabbitmq-3.10-{v}-server.bin");
        let (events, _) = parse_capture(&name);
        let fs = frames(&events);
        assert_eq!(fs[0].command, Command::Connected);
        assert_eq!(fs[0].version(), Some(v));
        assert_eq!(fs[0].server(), Some("RabbitMQ/3.10.8"));
        let msgs: Vec<_> = fs
            .iter()
            .filter(|f| f.command == Command::Message)
            .collect();
        let session = fs[0].session().unwrap();
        let id1 = format!("T_sub-topic@@{session}@@1");
        assert_eq!(
            msgs[0].headers().iter().collect::<Vec<_>>(),
            [
                ("subscription", "sub-topic"),
                ("destination", msgs[0].destination().unwrap()),
                ("message-id", id1.as_str()),
                ("redelivered", "false"),
                ("x-escapes", "a:b\nc\\d"),
                ("receipt", "r-send-1"),
                ("content-type", "text/plain"),
                ("content-length", "11"),
            ],
            "{name}"
        );
        assert_eq!(msgs[1].body(), &binary_body()[..], "{name}");
        assert_eq!(std::str::from_utf8(msgs[2].body()).unwrap(), JSON);
        assert_eq!(msgs[3].body(), b"in tx");
        if v == "1.2" {
            // S2: the `ack` header of a client-individual subscription
            assert_eq!(msgs[1].ack(), msgs[1].message_id());
        }
        assert_eq!(fs.last().unwrap().receipt_id(), Some("r-bye"));
    }
    // ActiveMQ: escaped colons in message-id and ack decode (E2, F6).
    for v in ["1.1", "1.2"] {
        let name = format!("activemq-5.17-{v}-server.bin");
        let (events, _) = parse_capture(&name);
        let fs = frames(&events);
        assert_eq!(fs[0].version(), Some(v));
        // CONNECTED is never escaped (E1): its session id has raw colons
        assert_eq!(fs[0].session().map(|s| s.matches(':').count()), Some(2));
        let msgs: Vec<_> = fs
            .iter()
            .filter(|f| f.command == Command::Message)
            .collect();
        let session = if v == "1.1" { "5474" } else { "5475" };
        for (i, m) in msgs.iter().enumerate() {
            let id = format!("ID:vm-37437-1795460210633-3:{session}:-1:1:{}", i + 1);
            assert_eq!(m.message_id(), Some(id.as_str()), "{name}");
        }
        assert_eq!(msgs[0].get("x-escapes"), Some("a:b\nc\\d"));
        assert_eq!(
            msgs[0].headers().iter().next(),
            Some(("x-escapes", "a:b\nc\\d"))
        );
        assert_eq!(msgs[1].body(), &binary_body()[..], "{name}");
        assert_eq!(msgs[1].content_length(), Ok(Some(264)));
        assert_eq!(std::str::from_utf8(msgs[2].body()).unwrap(), JSON);
        if v == "1.2" {
            assert_eq!(msgs[1].ack(), Some("ID:vm-37437-1795460210633-4:22"));
            assert_eq!(msgs[3].ack(), Some("ID:vm-37437-1795460210633-4:24"));
        }
    }
}

#[test]
fn server_1_0_is_not_unescaped() {
    // E5: in 1.0 ActiveMQ relayed the raw LF of x-escapes as a line break, so the
    // MESSAGE has a header `a:b` and a header `c\d` with an empty value.
    let (events, _) = parse_capture("activemq-5.17-1.0-server.bin");
    let fs = frames(&events);
    assert_eq!(fs[0].version(), Some("1.0"));
    let msgs: Vec<_> = fs
        .iter()
        .filter(|f| f.command == Command::Message)
        .collect();
    assert_eq!(msgs[0].get("x-escapes"), Some("a:b"));
    assert_eq!(msgs[0].get("c\\d"), Some(""));
    assert_eq!(
        msgs[0].message_id(),
        Some("ID:vm-37437-1795460210633-3:5473:-1:1:1")
    );
    assert_eq!(msgs[0].body(), b"hello topic");
    assert_eq!(msgs[1].body(), &binary_body()[..]);
    let error = fs.iter().find(|f| f.command == Command::Error).unwrap();
    assert_eq!(error.message(), Some("No subscription matched."));
    assert!(
        error
            .body()
            .starts_with(b"org.apache.activemq.transport.stomp.ProtocolException")
    );
    assert!(error.body().ends_with(b"(Thread.java:840)\n"));
    assert_eq!(fs.last().unwrap().receipt_id(), Some("r-bye"));

    let (events, _) = parse_capture("rabbitmq-3.10-1.0-server.bin");
    let fs = frames(&events);
    assert_eq!(fs[0].heart_beat(), Some("0,0"));
    assert_eq!(fs[2].receipt_id(), Some("r-sub-queue"));
}

#[test]
fn error_captures() {
    // ActiveMQ escapes the colon of its 1.2 ERROR message.
    let (events, _) = parse_capture("activemq-5.17-error-unknown-command.bin");
    let fs = frames(&events);
    assert_eq!(fs[0].version(), Some("1.2"));
    assert_eq!(fs[1].message(), Some("Unknown STOMP action: FOO"));
    assert_eq!(fs[1].content_type(), Some("text/plain"));

    let (events, _) = parse_capture("activemq-5.17-error-send-without-destination.bin");
    let fs = frames(&events);
    assert_eq!(fs[1].receipt_id(), Some("r1"));
    assert_eq!(
        fs[1].message(),
        Some("SEND received without a Destination specified!")
    );

    // before negotiation nothing is unescaped; the body has no content-length (F10)
    let (events, _) = parse_capture("activemq-5.17-error-no-common-version.bin");
    let fs = frames(&events);
    assert_eq!(
        fs[0].message(),
        Some("Invalid Protocol version[2.0], supported versions are: [1.2, 1.1, 1.0]")
    );
    assert_eq!(fs[0].content_length(), Ok(None));

    // RabbitMQ: V4 ERROR with `version`, body counted by content-length (F8)
    let (events, _) = parse_capture("rabbitmq-3.10-error-no-common-version.bin");
    let fs = frames(&events);
    assert_eq!(fs[0].message(), Some("Version mismatch"));
    assert_eq!(fs[0].version(), Some("1.0,1.1,1.2"));
    assert_eq!(fs[0].body(), b"Supported versions are 1.0,1.1,1.2\n");
    for (name, message, body) in [
        (
            "rabbitmq-3.10-error-unknown-command.bin",
            "Bad command",
            &b"Could not interpret command \"FOO\"\n"[..],
        ),
        (
            "rabbitmq-3.10-error-send-without-destination.bin",
            "Missing destination",
            b"\"SEND\" must include a 'destination' header\n",
        ),
    ] {
        let (events, _) = parse_capture(name);
        let fs = frames(&events);
        assert_eq!(fs[1].message(), Some(message), "{name}");
        assert_eq!(fs[1].body(), body, "{name}");
        assert_eq!(fs[1].content_length(), Ok(Some(body.len() as u64)));
    }
    for name in [
        "activemq-5.17-error-bad-escape.bin",
        "rabbitmq-3.10-error-bad-escape.bin",
    ] {
        let (events, _) = parse_capture(name);
        assert_eq!(frames(&events)[0].version(), Some("1.2"), "{name}");
    }
}

/// The events of a capture in the line format of `tests/captures/README.md`: one
/// `frame COMMAND headers=N body=M` or `heartbeat` per event, then either
/// `error at frame N: ERROR` (N counts from 1, the frame that failed included) or
/// `end clean` / `end partial N bytes` (bytes of an unfinished frame left over).
fn describe(name: &str) -> Vec<String> {
    let bytes = read(name);
    let versioning = versioning(name);
    let mut p = Parser::new();
    p.push(&bytes);
    let mut lines = Vec::new();
    let mut frames = 0;
    loop {
        match p.next_event() {
            Ok(Some(Event::Frame(f))) => {
                frames += 1;
                lines.push(format!(
                    "frame {} headers={} body={}",
                    f.command,
                    f.headers().len(),
                    f.body().len()
                ));
                match versioning {
                    Versioning::AfterConnect(v) if f.command.is_connect() => p.set_version(v),
                    Versioning::FromConnected if f.command == Command::Connected => {
                        let v = f.version().and_then(|v| v.parse().ok());
                        p.set_version(v.unwrap_or(Version::V1_0));
                    }
                    _ => {}
                }
            }
            Ok(Some(Event::HeartBeat)) => lines.push("heartbeat".to_owned()),
            Ok(None) if p.buffered() == 0 => {
                lines.push("end clean".to_owned());
                break;
            }
            Ok(None) => {
                lines.push(format!("end partial {} bytes", p.buffered()));
                break;
            }
            Err(e) => {
                lines.push(format!("error at frame {}: {e:?}", frames + 1));
                break;
            }
        }
    }
    lines
}

#[test]
fn every_capture_yields_its_expected_events() {
    let dir = captures_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 20, "{names:?}");
    for name in &names {
        let path = dir.join(name.replace(".bin", ".expected"));
        // A missing expectation fails: every capture must have one.
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{name}: cannot read {}: {e}", path.display()));
        let want: Vec<&str> = text.lines().collect();
        let got = describe(name);
        assert_eq!(got, want, "{name}: events differ from {}", path.display());
        // The same events as the chunked drivers of the other tests.
        let (events, error) = parse_capture(name);
        let beats = events.iter().filter(|e| **e == Event::HeartBeat).count();
        assert_eq!(frames(&events).len() + beats + 1, got.len(), "{name}");
        assert_eq!(error.is_some(), got.last().unwrap().starts_with("error"));
    }
    // No stray expectation without its capture.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let n = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = n.strip_suffix(".expected") {
            assert!(names.contains(&format!("{stem}.bin")), "{n} has no capture");
        }
    }
}

#[test]
fn versions_in_file_names_are_the_negotiated_ones() {
    // guards the driver: a 1.2 client capture really is parsed as 1.2 after STOMP
    assert_eq!(
        versioning("x-1.2-client.bin"),
        Versioning::AfterConnect(Version::V1_2)
    );
    assert_eq!(versioning("x-1.0-server.bin"), Versioning::FromConnected);
}
