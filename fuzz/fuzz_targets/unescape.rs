//! Fuzz target `unescape`: any bytes through `unescape` for every escaping never
//! panic; any text that `escape` accepts comes back unchanged from `unescape`
//! (E1-E5), and `write_escaped` writes exactly what `escape` returns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompkit_escape::{Escaping, Part, escape, unescape, write_escaped};

const ESCAPINGS: [Escaping; 3] = [Escaping::None, Escaping::V1_1, Escaping::V1_2];

fuzz_target!(|data: &[u8]| {
    for escaping in ESCAPINGS {
        if let Ok(raw) = unescape(data, escaping) {
            if escaping == Escaping::None {
                assert_eq!(&raw[..], data, "no escaping must change nothing");
            } else {
                assert!(raw.len() <= data.len(), "unescaping never grows text");
            }
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for escaping in ESCAPINGS {
        for part in [Part::Name, Part::Value] {
            let escaped = escape(text, escaping, part);
            let mut written = Vec::new();
            let write = write_escaped(text.as_bytes(), escaping, part, &mut written);
            match escaped {
                Ok(escaped) => {
                    assert_eq!(write, Ok(()), "write_escaped refused what escape took");
                    assert_eq!(
                        written,
                        escaped.as_bytes(),
                        "write_escaped differs from escape"
                    );
                    let back = unescape(escaped.as_bytes(), escaping);
                    assert_eq!(
                        back.as_deref(),
                        Ok(text.as_bytes()),
                        "escape/unescape round-trip ({escaping:?}, {part:?})"
                    );
                }
                Err(error) => {
                    assert_eq!(write, Err(error), "write_escaped and escape disagree");
                    assert!(written.is_empty(), "write_escaped wrote on error");
                }
            }
        }
    }
});
