//! Wildcard topic destinations: which destination names are patterns, and
//! whether a pattern may be used where it is.
//!
//! Owns the pattern language: a `/topic/…` name is segments separated by `.`;
//! a segment that is exactly `*` matches one segment, `#` zero or more, `>`
//! (last only) one or more. A segment that merely contains one of them (`a*b`)
//! is a literal name. A wildcard matches only segments without `/` (as a `*`
//! in a configured permission does not cross `/`), so a pattern never reaches
//! further than a permission that covers it. Owns [`TopicPattern`] (a parsed
//! pattern) and [`check`] (a wildcard where it may not be: in a SEND, on a
//! queue, a `>` not last, too many segments). Matching many patterns at once
//! is the router's (`router/wildcards.rs`); whether a principal may subscribe
//! to a pattern is `authz.rs`'s.

use stompkit_frame::Command;

/// Where topic names start.
pub(crate) const TOPIC_PREFIX: &str = "/topic/";

/// Most segments a pattern may have (its matching and authorization cost
/// grow with it).
pub(crate) const MAX_PATTERN_SEGMENTS: usize = 64;

/// One segment of a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    /// A name: matches exactly this segment.
    Literal(&'a str),
    /// `*`: exactly one segment.
    One,
    /// `#`: zero or more segments.
    ZeroOrMore,
    /// `>`: one or more segments (last only).
    OneOrMore,
}

impl<'a> Segment<'a> {
    /// The segment spelled `text`.
    fn parse(text: &'a str) -> Segment<'a> {
        match text {
            "*" => Segment::One,
            "#" => Segment::ZeroOrMore,
            ">" => Segment::OneOrMore,
            name => Segment::Literal(name),
        }
    }

    /// Whether it is a wildcard.
    fn is_wildcard(self) -> bool {
        !matches!(self, Segment::Literal(_))
    }
}

/// Whether a segment of a destination may be matched by a wildcard: one with
/// no `/` in it.
#[inline]
pub(crate) fn wildcard_may_match(segment: &str) -> bool {
    !segment.contains('/')
}

/// A wildcard where it may not be (the ERROR `message` is [`message`](Self::message)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatternError {
    /// A wildcard in a SEND destination.
    InSend,
    /// A wildcard on `/queue/…`.
    OnQueue,
    /// A `>` segment that is not the last one.
    MisplacedOneOrMore,
    /// More than [`MAX_PATTERN_SEGMENTS`] segments.
    TooManySegments,
}

impl PatternError {
    /// The ERROR frame's `message` header.
    pub(crate) fn message(self) -> &'static str {
        match self {
            PatternError::InSend => "wildcards are not allowed in a SEND destination",
            PatternError::OnQueue => "wildcards are allowed on /topic/ destinations only",
            PatternError::MisplacedOneOrMore => "wildcard '>' may only be the last segment",
            PatternError::TooManySegments => "too many segments in a wildcard destination",
        }
    }
}

/// A parsed wildcard topic destination, e.g. `/topic/chat.*.#`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TopicPattern<'a> {
    segments: Vec<Segment<'a>>,
}

impl<'a> TopicPattern<'a> {
    /// The pattern `destination` is, if it is a topic with a wildcard segment
    /// (`None` for a literal name or any other destination). A misplaced `>`
    /// or too many segments is an error.
    pub(crate) fn parse(destination: &'a str) -> Result<Option<TopicPattern<'a>>, PatternError> {
        let Some(name) = destination.strip_prefix(TOPIC_PREFIX) else {
            return Ok(None);
        };
        if !has_wildcard(name) {
            return Ok(None);
        }
        let count = name.split('.').count();
        if count > MAX_PATTERN_SEGMENTS {
            return Err(PatternError::TooManySegments);
        }
        let segments: Vec<Segment<'a>> = name.split('.').map(Segment::parse).collect();
        let last = segments.len() - 1;
        if segments[..last].contains(&Segment::OneOrMore) {
            return Err(PatternError::MisplacedOneOrMore);
        }
        Ok(Some(TopicPattern { segments }))
    }

    /// Its segments, in order.
    pub(crate) fn segments(&self) -> &[Segment<'a>] {
        &self.segments
    }
}

/// Whether `destination` is a topic pattern (it has a wildcard segment).
#[inline]
pub(crate) fn is_pattern(destination: &str) -> bool {
    destination
        .strip_prefix(TOPIC_PREFIX)
        .is_some_and(has_wildcard)
}

/// Whether a topic name has a segment that is exactly `*`, `#` or `>`.
#[inline]
fn has_wildcard(name: &str) -> bool {
    // Cheap first: most names hold none of the three bytes.
    name.bytes().any(|b| matches!(b, b'*' | b'#' | b'>'))
        && name.split('.').any(|s| Segment::parse(s).is_wildcard())
}

/// Whether `destination` may be used by `command` as far as wildcards go: a
/// SEND names no pattern, a queue is never a pattern (its segments spelled
/// `*`, `#`, `>` are refused), a topic pattern is well formed.
pub(crate) fn check(command: Command, destination: &str) -> Result<(), PatternError> {
    if let Some(name) = destination.strip_prefix("/queue/")
        && has_wildcard(name)
    {
        return Err(PatternError::OnQueue);
    }
    match TopicPattern::parse(destination)? {
        Some(_) if command == Command::Send => Err(PatternError::InSend),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_segments_are_wildcards() {
        assert!(is_pattern("/topic/a.*"));
        assert!(is_pattern("/topic/#"));
        assert!(is_pattern("/topic/a.>"));
        assert!(is_pattern("/topic/*.b"));
        assert!(!is_pattern("/topic/a*b"));
        assert!(!is_pattern("/topic/a.b#"));
        assert!(!is_pattern("/topic/a.>b"));
        assert!(!is_pattern("/topic/a.b"));
        assert!(!is_pattern("/queue/a.*"), "only topics are patterns");
    }

    #[test]
    fn segments_parse_in_order() {
        let p = TopicPattern::parse("/topic/a.*.#.b*.>").unwrap().unwrap();
        assert_eq!(
            p.segments(),
            [
                Segment::Literal("a"),
                Segment::One,
                Segment::ZeroOrMore,
                Segment::Literal("b*"),
                Segment::OneOrMore
            ]
        );
        assert_eq!(TopicPattern::parse("/topic/a.b").unwrap(), None);
    }

    #[test]
    fn misplaced_wildcards_are_errors() {
        assert_eq!(
            check(Command::Subscribe, "/topic/a.>.b"),
            Err(PatternError::MisplacedOneOrMore)
        );
        assert_eq!(
            check(Command::Subscribe, "/topic/>.>"),
            Err(PatternError::MisplacedOneOrMore)
        );
        assert_eq!(
            check(Command::Send, "/topic/a.*"),
            Err(PatternError::InSend)
        );
        assert_eq!(
            check(Command::Subscribe, "/queue/a.*"),
            Err(PatternError::OnQueue)
        );
        assert_eq!(check(Command::Send, "/queue/#"), Err(PatternError::OnQueue));
        assert_eq!(check(Command::Send, "/queue/a*b"), Ok(()));
        assert_eq!(check(Command::Send, "/topic/a*b.c#"), Ok(()));
        assert_eq!(check(Command::Subscribe, "/topic/a.#.>"), Ok(()));
    }

    #[test]
    fn pattern_length_is_limited() {
        let ok = format!("/topic/{}", vec!["#"; MAX_PATTERN_SEGMENTS].join("."));
        assert_eq!(check(Command::Subscribe, &ok), Ok(()));
        let long = format!("/topic/{}", vec!["#"; MAX_PATTERN_SEGMENTS + 1].join("."));
        assert_eq!(
            check(Command::Subscribe, &long),
            Err(PatternError::TooManySegments)
        );
        // A literal name is not a pattern: no segment limit.
        let literal = format!("/topic/{}", vec!["a"; 1000].join("."));
        assert_eq!(check(Command::Send, &literal), Ok(()));
    }
}
