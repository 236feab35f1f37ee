//! Fuzz target `selector`: any text through `Selector::parse` never panics (nor
//! overflows the stack: nesting is bounded while parsing); a refusal names a
//! position within the text (or the 4 KiB limit); a selector that parses
//! evaluates against arbitrary headers without panicking, and the same
//! headers always give the same answer.
//!
//! Input: the selector text (lossy UTF-8), then optionally a NUL byte and the
//! message's headers as `name:value` lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompkit_selector::{MAX_LEN, Selector};

fuzz_target!(|data: &[u8]| {
    let (text, rest) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    let selector = match Selector::parse(&text) {
        Ok(selector) => selector,
        Err(error) => {
            assert!(
                error.position() <= text.len().min(MAX_LEN),
                "{error} beyond the text"
            );
            return;
        }
    };
    assert_eq!(selector.as_str(), text);
    let rest = String::from_utf8_lossy(rest);
    let headers: Vec<(&str, &str)> = rest
        .lines()
        .map(|line| line.split_once(':').unwrap_or((line, "")))
        .collect();
    let lookup = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let first = selector.matches(lookup);
    assert_eq!(
        first,
        selector.matches(lookup),
        "evaluation is deterministic"
    );
    let _ = selector.matches(|_| None);
});
