//! Fuzz target `negotiate`: arbitrary header values through the accept-version
//! and heart-beat parsers never panic (V1-V4, H1); a parsed heart-beat displays
//! as text that parses back to itself, and a negotiated version is one both
//! sides support and the highest such (V3).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompkit_frame::Version;
use stompkit_negotiate::{HeartBeat, negotiate_version, parse_accept_version};

fuzz_target!(|data: &[u8]| {
    // Byte 0: which versions this side supports (bit set per version).
    let [mask, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let supported: Vec<Version> = Version::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, v)| v)
        .collect();

    let offered = parse_accept_version(text);
    match negotiate_version(Some(text), &supported) {
        Ok(version) => {
            let offered = offered.as_deref().unwrap_or_default();
            assert!(supported.contains(&version) && offered.contains(&version));
            assert!(
                offered
                    .iter()
                    .filter(|v| supported.contains(v))
                    .all(|v| *v <= version),
                "not the highest common version"
            );
        }
        Err(_) => {
            if let Ok(offered) = &offered {
                assert!(
                    !offered.iter().any(|v| supported.contains(v)),
                    "a common version exists but negotiation failed"
                );
            }
        }
    }

    if let Ok(heart_beat) = HeartBeat::parse(text) {
        let shown = heart_beat.to_string();
        match HeartBeat::parse(&shown) {
            Ok(again) => assert!(again == heart_beat, "{shown:?} re-parses differently"),
            Err(error) => panic!("displayed heart-beat {shown:?} does not parse: {error}"),
        }
    }
});
