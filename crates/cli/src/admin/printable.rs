//! Text from the broker made safe for the operator's terminal.
//!
//! Queue names, logins, selectors, headers and bodies are chosen by STOMP
//! clients, and STOMP 1.2's header escapes let a client put a line feed in
//! a destination or header (ESC and the other control characters need no
//! escape at all). Printed as they are, they could forge table rows or
//! send the terminal escape sequences. Everything `stompkit admin` prints
//! without `--json` goes through here: control characters (C0, DEL, C1)
//! and the bidirectional-text controls are shown as escapes (`\n`, `\r`,
//! `\t`, `\x1b`, `\u{9b}`, `\u{202e}` ...).

/// `text` for one line (a table cell, a header, a name): every control
/// character escaped, and `\` shown as `\\` so that an escape cannot be
/// mistaken for the characters it is made of.
pub fn line(text: &str) -> String {
    escape(text, Keep::Nothing)
}

/// A message body: as [`line()`], but line feeds and tabs are kept (they lay
/// a body out without changing what the terminal does) and `\` stays as it
/// is (a body's backslashes are its own: JSON, paths).
pub fn body(text: &str) -> String {
    escape(text, Keep::Layout)
}

/// An error line: control characters escaped, `\` as it is.
pub fn message(text: &str) -> String {
    escape(text, Keep::Backslash)
}

/// What [`escape`] leaves as it is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Escape every control character and `\`.
    Nothing,
    /// Keep `\`.
    Backslash,
    /// Keep `\`, line feeds and tabs.
    Layout,
}

/// `text` with its unsafe characters escaped, but those `keep` says.
fn escape(text: &str, keep: Keep) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' if keep == Keep::Nothing => out.push_str("\\\\"),
            '\n' | '\t' if keep == Keep::Layout => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether `c` changes the direction of the text around it (and so could
/// make a line read other than it is): the marks, embeddings, overrides
/// and isolates of Unicode's bidirectional algorithm.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_escapes_every_control_character_and_backslash() {
        assert_eq!(line("orders"), "orders");
        assert_eq!(line("prix-é.日本"), "prix-é.日本");
        assert_eq!(
            line("a\nb\rc\td\u{1b}[2J\u{7f}\u{0}"),
            "a\\nb\\rc\\td\\x1b[2J\\x7f\\x00"
        );
        assert_eq!(line("\u{9b}31m\u{85}"), "\\u{9b}31m\\u{85}");
        assert_eq!(line("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(
            line("\u{2066}x\u{2069}\u{200f}"),
            "\\u{2066}x\\u{2069}\\u{200f}"
        );
        assert_eq!(line("a\\nb"), "a\\\\nb");
    }

    #[test]
    fn a_body_keeps_line_feeds_tabs_and_backslashes() {
        assert_eq!(
            body("{\"p\": \"C:\\\\x\"}\n\tnext\r\n\u{1b}]0;owned\u{7}"),
            "{\"p\": \"C:\\\\x\"}\n\tnext\\r\n\\x1b]0;owned\\x07"
        );
    }

    #[test]
    fn a_message_keeps_backslashes() {
        assert_eq!(message("no queue a\\b\u{1b}[1m"), "no queue a\\b\\x1b[1m");
    }
}
