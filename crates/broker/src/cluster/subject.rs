//! STOMP destinations as NATS subjects and JetStream names, both ways.
//!
//! Owns the naming of everything the cluster puts on NATS:
//! - a topic `/topic/a.b` is published on `stompkit.t.a.b`: each `.`-separated
//!   segment one NATS token, escaped ([`escape_token`]) when it is not a valid
//!   token (empty, or holding a space, `.`, `*`, `>`, `/`, `~`, a control or
//!   non-ASCII character), so every name maps to one subject and back;
//! - a subscription's pattern maps onto NATS wildcards (`*` → `*`, a last `>`
//!   → `>`); a `#` (zero or more segments, anywhere) has no NATS spelling, so
//!   the pattern is widened to the nearest subject that covers it (the
//!   segments before the `#`, less one when only `#`s follow it, then `>`) and
//!   the node filters what arrives with the STOMP pattern itself;
//! - a queue `/queue/q` is the JetStream stream `STOMPKIT_Q_<token>` on the
//!   subject `stompkit.q.<token>`, a durable subscription the stream
//!   `STOMPKIT_D_<token>` on `stompkit.d.<token>`, a reply destination the
//!   subject `stompkit.r.<token>` (whole names, escaped as one token).
//!
//! It does not decide what is subscribed or published (the cluster task does)
//! nor match patterns (`wildcard.rs`).

use crate::wildcard::{Segment, TOPIC_PREFIX, TopicPattern};

/// The first token of every subject the cluster uses.
const ROOT: &str = "stompkit";
/// The escape character: `~` and two upper-case hex digits stand for a byte;
/// `~~` alone is the empty segment.
const ESCAPE: u8 = b'~';
/// The spelling of an empty segment.
const EMPTY: &str = "~~";

/// Whether `b` may stand for itself in a token.
fn plain(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>' | b'/' | b'\\' | b'~')
}

/// Appends `segment` as one valid NATS token (also a valid JetStream stream
/// or consumer name part): the reversible escaping of the module docs.
pub(crate) fn escape_token(segment: &str, out: &mut String) {
    if segment.is_empty() {
        out.push_str(EMPTY);
        return;
    }
    for &b in segment.as_bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push(char::from(ESCAPE));
            out.push(char::from(hex_digit(b >> 4)));
            out.push(char::from(hex_digit(b & 0xf)));
        }
    }
}

/// The segment a token escaped by [`escape_token`] stands for; `None` for a
/// token it could not have made.
pub(crate) fn unescape_token(token: &str) -> Option<String> {
    if token == EMPTY {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == ESCAPE {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else if plain(b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_digit(n: u8) -> u8 {
    b"0123456789ABCDEF"[usize::from(n & 0xf)]
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The subject a message published to the topic `destination` (a
/// `/topic/…` name without wildcards) goes to; `None` for another kind.
pub(crate) fn topic_subject(destination: &str) -> Option<String> {
    let name = destination.strip_prefix(TOPIC_PREFIX)?;
    let mut subject = format!("{ROOT}.t");
    for segment in name.split('.') {
        subject.push('.');
        escape_token(segment, &mut subject);
    }
    Some(subject)
}

/// The topic destination a subject made by [`topic_subject`] names.
pub(crate) fn topic_destination(subject: &str) -> Option<String> {
    let rest = subject.strip_prefix(ROOT)?.strip_prefix(".t.")?;
    let mut name = String::from(TOPIC_PREFIX);
    for (i, token) in rest.split('.').enumerate() {
        if i > 0 {
            name.push('.');
        }
        name.push_str(&unescape_token(token)?);
    }
    Some(name)
}

/// The subject a node subscribes to for a topic subscription on
/// `destination` (a topic or a pattern): every topic it matches is
/// published on a subject this one matches (wider for a `#`; see the module
/// docs). `None` for a destination that is not a topic.
pub(crate) fn interest_subject(destination: &str) -> Option<String> {
    let pattern = match TopicPattern::parse(destination) {
        Ok(Some(pattern)) => pattern,
        Ok(None) => return topic_subject(destination),
        Err(_) => return None,
    };
    let segments = pattern.segments();
    let widened = segments.iter().position(|s| *s == Segment::ZeroOrMore);
    // What follows the first `#` may match zero segments when it is all
    // `#`s: then the segment before it may be the topic's last one.
    let kept = match widened {
        Some(at) if segments[at..].iter().all(|s| *s == Segment::ZeroOrMore) => {
            at.saturating_sub(1)
        }
        Some(at) => at,
        None => segments.len(),
    };
    let mut subject = format!("{ROOT}.t");
    for segment in &segments[..kept] {
        subject.push('.');
        match segment {
            Segment::Literal(name) => escape_token(name, &mut subject),
            Segment::One => subject.push('*'),
            Segment::OneOrMore | Segment::ZeroOrMore => subject.push('>'),
        }
    }
    if widened.is_some() {
        subject.push_str(".>");
    }
    Some(subject)
}

/// A queue's (or dead-letter queue's) JetStream stream and subject.
pub(crate) fn queue_stream(destination: &str) -> (String, String) {
    named("Q", "q", destination)
}

/// A durable subscription's JetStream stream and subject, by its key.
pub(crate) fn durable_stream(key: &str) -> (String, String) {
    named("D", "d", key)
}

/// The subject a reply destination (`/reply-queue/…`, `/reply-topic/…`)
/// is reached on from any node.
pub(crate) fn reply_subject(destination: &str) -> String {
    let mut subject = format!("{ROOT}.r.");
    escape_token(destination, &mut subject);
    subject
}

/// `STOMPKIT_<kind>_<token>` and `stompkit.<letter>.<token>` for `name`.
fn named(kind: &str, letter: &str, name: &str) -> (String, String) {
    let mut token = String::new();
    escape_token(name, &mut token);
    (
        format!("STOMPKIT_{kind}_{token}"),
        format!("{ROOT}.{letter}.{token}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(
            topic_subject("/topic/news.sport").as_deref(),
            Some("stompkit.t.news.sport")
        );
        assert_eq!(
            queue_stream("/queue/orders"),
            (
                "STOMPKIT_Q_~2Fqueue~2Forders".to_owned(),
                "stompkit.q.~2Fqueue~2Forders".to_owned()
            )
        );
        assert_eq!(topic_subject("/queue/a"), None);
    }

    #[test]
    fn invalid_tokens_are_escaped_and_come_back() {
        let subject = topic_subject("/topic/a b..c*d.>.x~y/z").unwrap();
        assert_eq!(subject, "stompkit.t.a~20b.~~.c~2Ad.~3E.x~7Ey~2Fz");
        assert_eq!(
            topic_destination(&subject).as_deref(),
            Some("/topic/a b..c*d.>.x~y/z")
        );
        assert_eq!(topic_destination("stompkit.t.a~2"), None);
        assert_eq!(topic_destination("stompkit.t.a b"), None);
    }

    #[test]
    fn patterns_map_onto_nats_wildcards() {
        let cases = [
            ("/topic/a.*.c", "stompkit.t.a.*.c"),
            ("/topic/a.>", "stompkit.t.a.>"),
            ("/topic/a.#.c", "stompkit.t.a.>"),
            ("/topic/a.b.#", "stompkit.t.a.>"),
            ("/topic/a.#", "stompkit.t.>"),
            ("/topic/*.*.#.#", "stompkit.t.*.>"),
            ("/topic/#", "stompkit.t.>"),
            ("/topic/*.#.x.#", "stompkit.t.*.>"),
            ("/topic/a.b", "stompkit.t.a.b"),
            ("/topic/a b.*", "stompkit.t.a~20b.*"),
        ];
        for (pattern, subject) in cases {
            assert_eq!(
                interest_subject(pattern).as_deref(),
                Some(subject),
                "{pattern}"
            );
        }
        assert_eq!(interest_subject("/topic/a.>.b"), None);
    }

    /// Whether the NATS subject pattern `filter` matches `subject`.
    fn nats_matches(filter: &str, subject: &str) -> bool {
        let (f, s): (Vec<&str>, Vec<&str>) =
            (filter.split('.').collect(), subject.split('.').collect());
        for (i, token) in f.iter().enumerate() {
            match *token {
                ">" => return s.len() > i,
                "*" if i < s.len() => {}
                t if s.get(i) == Some(&t) => {}
                _ => return false,
            }
        }
        f.len() == s.len()
    }

    /// Whether STOMP pattern segments match a topic's segments (test oracle).
    fn stomp_matches(pattern: &[Segment<'_>], topic: &[&str]) -> bool {
        match (pattern.first(), topic.first()) {
            (None, None) => true,
            (Some(Segment::ZeroOrMore), _) => {
                stomp_matches(&pattern[1..], topic)
                    || (!topic.is_empty() && stomp_matches(pattern, &topic[1..]))
            }
            (Some(Segment::OneOrMore), Some(_)) => pattern.len() == 1,
            (Some(Segment::One), Some(_)) => stomp_matches(&pattern[1..], &topic[1..]),
            (Some(Segment::Literal(l)), Some(t)) if l == t => {
                stomp_matches(&pattern[1..], &topic[1..])
            }
            _ => false,
        }
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-c]{1,2}",
            Just(String::new()),
            Just("*".to_owned()),
            Just("#".to_owned()),
            Just(">".to_owned()),
            "[ a.~/>*é\u{1}]{1,3}",
        ]
    }

    proptest! {
        #[test]
        fn every_segment_round_trips(s in any::<String>()) {
            let mut token = String::new();
            escape_token(&s, &mut token);
            prop_assert!(!token.is_empty());
            prop_assert!(token.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>')));
            prop_assert_eq!(unescape_token(&token), Some(s));
        }

        /// Every topic a pattern matches is published on a subject its
        /// interest subject matches (nothing is missed; the node filters).
        #[test]
        fn interest_covers_every_match(
            pattern in prop::collection::vec(segment(), 1..5),
            topic in prop::collection::vec("[a-c]{1,2}", 1..6),
        ) {
            let pattern = format!("/topic/{}", pattern.join("."));
            let topic = format!("/topic/{}", topic.join("."));
            if let (Ok(Some(p)), Some(interest)) = (TopicPattern::parse(&pattern), interest_subject(&pattern))
                && stomp_matches(p.segments(), &topic["/topic/".len()..].split('.').collect::<Vec<_>>())
            {
                let subject = topic_subject(&topic).unwrap();
                prop_assert!(nats_matches(&interest, &subject), "{} !~ {}", interest, subject);
            }
        }
    }
}
