//! Authorization: which destinations a client may send to and subscribe to.
//!
//! Owns [`Glob`] (destination patterns from the config: `*` matches any run of
//! characters except `/`, `**` any run including `/`, everything else is literal)
//! and [`Permissions`] (one list of patterns for SEND, one for SUBSCRIBE). The
//! session asks [`Permissions::may_send`] / [`Permissions::may_subscribe`] before a
//! frame reaches the router; where the lists come from (user, token login,
//! anonymous) is `auth`'s business.
//!
//! Matching compares the pattern's leading literal bytes at once, settles the
//! common tails (nothing, `*`, `**`) directly, and runs what is left as a small
//! NFA over the destination's bytes (a bit set of states, no allocation for
//! patterns under 128 tokens): time O(destination × pattern), whatever a client
//! sends.
//!
//! A wildcard topic SUBSCRIBE (`/topic/chat.*`, see `wildcard.rs`) is allowed
//! only if every destination it can match is: `inclusion.rs` decides that
//! exactly, over the pattern's and the globs' automata.

mod inclusion;

use crate::wildcard::TopicPattern;
use std::fmt;

/// One destination pattern, e.g. `/topic/chat.*` or `/queue/orders/**`.
///
/// ```
/// use stompkit_broker::Glob;
/// let chat = Glob::new("/topic/chat.*");
/// assert!(chat.matches("/topic/chat.room1"));
/// assert!(!chat.matches("/topic/chat.room1/private"));
/// assert!(!chat.matches("/topic/news"));
/// assert!(Glob::new("/queue/**").matches("/queue/a/b/c"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    /// Leading literal bytes.
    prefix: Vec<u8>,
    /// The tokens after the prefix (starting with a star, or empty).
    rest: Vec<Token>,
    /// How the tail after the prefix is matched.
    tail: Tail,
}

/// How a [`Glob`] matches what follows its literal prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    /// Nothing may follow (a literal pattern).
    Empty,
    /// `**`: anything.
    Anything,
    /// `*`: anything without `/`.
    Segment,
    /// The NFA as a bit set; bit `i` set when `rest[i]` is a star.
    Bits(u128),
    /// The NFA with a state vector (128 tokens or more).
    Long,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// This byte.
    Byte(u8),
    /// `*`: any run of bytes other than `/`.
    Star,
    /// `**`: any run of bytes.
    Any,
}

impl Token {
    fn is_star(self) -> bool {
        matches!(self, Token::Star | Token::Any)
    }
}

impl Glob {
    /// Compiles a pattern (every string is a valid pattern).
    pub fn new(pattern: &str) -> Glob {
        let bytes = pattern.as_bytes();
        let mut tokens = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'*' if bytes.get(i + 1) == Some(&b'*') => {
                    // Runs of three or more stars mean the same as two.
                    while bytes.get(i) == Some(&b'*') {
                        i += 1;
                    }
                    tokens.push(Token::Any);
                    continue;
                }
                b'*' => tokens.push(Token::Star),
                b => tokens.push(Token::Byte(b)),
            }
            i += 1;
        }
        let literal = tokens.iter().take_while(|t| !t.is_star()).count();
        let rest = tokens.split_off(literal);
        let tail = match rest[..] {
            [] => Tail::Empty,
            [Token::Any] => Tail::Anything,
            [Token::Star] => Tail::Segment,
            _ if rest.len() < 128 => Tail::Bits(
                rest.iter()
                    .enumerate()
                    .filter(|(_, t)| t.is_star())
                    .fold(0, |m, (i, _)| m | 1 << i),
            ),
            _ => Tail::Long,
        };
        Glob {
            text: pattern.to_owned(),
            prefix: bytes[..literal].to_vec(),
            rest,
            tail,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `destination` matches the whole pattern.
    pub fn matches(&self, destination: &str) -> bool {
        let Some(tail) = destination.as_bytes().strip_prefix(&self.prefix[..]) else {
            return false;
        };
        match self.tail {
            Tail::Empty => tail.is_empty(),
            Tail::Anything => true,
            Tail::Segment => !tail.contains(&b'/'),
            Tail::Bits(stars) => nfa(&self.rest, stars, tail),
            Tail::Long => nfa_long(&self.rest, tail),
        }
    }
}

/// One input byte: the states reachable from `active` (bit `i`: the first `i`
/// tokens match what was read), before epsilon moves.
fn step(tokens: &[Token], active: u128, c: u8) -> u128 {
    let mut next = 0;
    let mut bits = active & !(1u128 << tokens.len());
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        match tokens[i] {
            Token::Byte(b) if b == c => next |= 1 << (i + 1),
            Token::Byte(_) => {}
            Token::Star if c == b'/' => {}
            Token::Star | Token::Any => next |= 1 << i,
        }
    }
    next
}

/// Epsilon moves: a star may match nothing. (Stars are never adjacent: a run
/// of them is one token.)
fn close(states: u128, stars: u128) -> u128 {
    states | (states & stars) << 1
}

/// The NFA as a bit set, for fewer than 128 tokens.
fn nfa(tokens: &[Token], stars: u128, input: &[u8]) -> bool {
    let mut active = close(1, stars);
    for &c in input {
        active = close(step(tokens, active, c), stars);
        if active == 0 {
            return false;
        }
    }
    active & (1 << tokens.len()) != 0
}

/// The NFA with a state vector, for longer patterns.
fn nfa_long(tokens: &[Token], input: &[u8]) -> bool {
    let n = tokens.len();
    let close = |states: &mut [bool]| {
        for (i, token) in tokens.iter().enumerate() {
            if states[i] && token.is_star() {
                states[i + 1] = true;
            }
        }
    };
    let mut active = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    active[0] = true;
    close(&mut active);
    for &c in input {
        next.fill(false);
        for (i, token) in tokens.iter().enumerate() {
            match *token {
                _ if !active[i] => {}
                Token::Byte(b) if b == c => next[i + 1] = true,
                Token::Byte(_) => {}
                Token::Star if c == b'/' => {}
                Token::Star | Token::Any => next[i] = true,
            }
        }
        close(&mut next);
        std::mem::swap(&mut active, &mut next);
    }
    active[n]
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

/// What one client may do: destination patterns for SEND and for SUBSCRIBE.
/// An empty list allows nothing; `["**"]` allows everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permissions {
    send: Rules,
    subscribe: Rules,
}

/// One list of patterns, with the everything-allowed case settled up front.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rules {
    globs: Vec<Glob>,
    everything: bool,
}

impl Rules {
    fn new<S: AsRef<str>>(list: &[S]) -> Rules {
        let globs: Vec<Glob> = list.iter().map(|p| Glob::new(p.as_ref())).collect();
        let everything = globs
            .iter()
            .any(|g| g.prefix.is_empty() && g.tail == Tail::Anything);
        Rules { globs, everything }
    }

    fn allow(&self, destination: &str) -> bool {
        self.everything || self.globs.iter().any(|g| g.matches(destination))
    }
}

impl Permissions {
    /// Permissions from pattern lists as written in the config.
    pub fn new<S: AsRef<str>>(send: &[S], subscribe: &[S]) -> Permissions {
        Permissions {
            send: Rules::new(send),
            subscribe: Rules::new(subscribe),
        }
    }

    /// Everything allowed (the zero-setup broker).
    pub fn all() -> Permissions {
        Permissions::new(&["**"], &["**"])
    }

    /// Whether a SEND to `destination` is allowed.
    pub fn may_send(&self, destination: &str) -> bool {
        self.send.allow(destination)
    }

    /// Whether a SUBSCRIBE to `destination` is allowed. A wildcard topic
    /// pattern is allowed only if every destination it matches is.
    pub fn may_subscribe(&self, destination: &str) -> bool {
        match TopicPattern::parse(destination) {
            Ok(None) => self.subscribe.allow(destination),
            Ok(Some(pattern)) => {
                self.subscribe.everything || inclusion::covered(&pattern, &self.subscribe.globs)
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_within_one_path_segment() {
        let g = Glob::new("/topic/chat.*");
        assert!(g.matches("/topic/chat."));
        assert!(g.matches("/topic/chat.room1"));
        assert!(g.matches("/topic/chat.a.b"));
        assert!(!g.matches("/topic/chat.a/b"));
        assert!(!g.matches("/topic/chat"));
        assert!(!g.matches("/topic/chatroom"));
        assert!(!g.matches("/queue/chat.room1"));
    }

    #[test]
    fn double_star_crosses_segments() {
        let g = Glob::new("/queue/**");
        assert!(g.matches("/queue/"));
        assert!(g.matches("/queue/a"));
        assert!(g.matches("/queue/a/b/c"));
        assert!(!g.matches("/topic/a"));
        assert!(Glob::new("**").matches("/anything/at/all"));
        assert!(Glob::new("**").matches(""));
        assert!(Glob::new("***").matches("/a/b"), "three stars mean two");
        let mid = Glob::new("/topic/**.log");
        assert!(mid.matches("/topic/a/b.log"));
        assert!(!mid.matches("/topic/a/b.txt"));
    }

    #[test]
    fn literal_patterns_match_exactly() {
        let g = Glob::new("/topic/news");
        assert!(g.matches("/topic/news"));
        assert!(!g.matches("/topic/news2"));
        assert!(!g.matches("/topic/new"));
        assert!(Glob::new("").matches(""));
        assert!(!Glob::new("").matches("/"));
    }

    #[test]
    fn several_stars_backtrack_correctly() {
        let g = Glob::new("/topic/*.*.end");
        assert!(g.matches("/topic/a.b.end"));
        assert!(g.matches("/topic/a.b.c.end"));
        assert!(!g.matches("/topic/a.end"));
        assert!(!g.matches("/topic/a.b/c.end"));
        let g = Glob::new("/t/*x*");
        assert!(g.matches("/t/aaxbb"));
        assert!(g.matches("/t/x"));
        assert!(!g.matches("/t/aab"));
    }

    #[test]
    fn non_ascii_destinations_are_compared_bytewise() {
        let g = Glob::new("/topic/café.*");
        assert!(g.matches("/topic/café.ü"));
        assert!(!g.matches("/topic/cafe.u"));
    }

    #[test]
    fn long_hostile_destination_is_linear() {
        // A classic exponential case for backtracking matchers.
        let g = Glob::new("/topic/*a*a*a*a*a*a*a*a*b");
        let dest = format!("/topic/{}", "a".repeat(60_000));
        let start = std::time::Instant::now();
        assert!(!g.matches(&dest));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    /// The definition, by recursion (exponential, for tiny cases only). `*`
    /// consumes bytes other than `/`, `**` any bytes.
    fn reference(p: &[u8], d: &[u8]) -> bool {
        match p {
            [] => d.is_empty(),
            // Callers pass no run of three stars.
            [b'*', b'*', rest @ ..] => (0..=d.len()).any(|k| reference(rest, &d[k..])),
            [b'*', rest @ ..] => (0..=d.len())
                .take_while(|&k| k == 0 || d[k - 1] != b'/')
                .any(|k| reference(rest, &d[k..])),
            [c, rest @ ..] => d.first() == Some(c) && reference(rest, &d[1..]),
        }
    }

    #[test]
    fn agrees_with_the_definition_on_every_small_case() {
        fn all(alphabet: &[&str], max: usize) -> Vec<String> {
            let mut out = vec![String::new()];
            let mut layer = vec![String::new()];
            for _ in 0..max {
                layer = layer
                    .iter()
                    .flat_map(|s| alphabet.iter().map(move |a| format!("{s}{a}")))
                    .collect();
                out.extend(layer.iter().cloned());
            }
            out
        }
        let patterns = all(&["a", "/", "*", "**"], 4);
        let inputs = all(&["a", "b", "/"], 5);
        let mut checked = 0;
        for p in &patterns {
            // Three or more stars in a row mean `**`; the reference reads them so.
            let mut canonical = p.clone();
            while canonical.contains("***") {
                canonical = canonical.replace("***", "**");
            }
            let g = Glob::new(p);
            let mut tokens = g.prefix.iter().map(|&b| Token::Byte(b)).collect::<Vec<_>>();
            tokens.extend(&g.rest);
            for d in &inputs {
                let want = reference(canonical.as_bytes(), d.as_bytes());
                assert_eq!(g.matches(d), want, "{p:?} on {d:?}");
                assert_eq!(
                    nfa_long(&tokens, d.as_bytes()),
                    want,
                    "long: {p:?} on {d:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 50_000);
    }

    #[test]
    fn long_patterns_take_the_vector_path_and_agree() {
        // 200 tokens: over the bit set's 127.
        let pattern = format!("/t/*{}", "a*".repeat(100));
        let g = Glob::new(&pattern);
        assert_eq!(g.tail, Tail::Long);
        let hit = format!("/t/x{}", "ab".repeat(100));
        assert!(g.matches(&hit));
        assert!(!g.matches(&format!("/t/x{}", "ab".repeat(99))));
        assert!(!g.matches(&format!("/t/x{}/", "ab".repeat(100))));
        // The same pattern shape below the limit, on the bit set path.
        let short = Glob::new(&format!("/t/*{}", "a*".repeat(60)));
        assert!(matches!(short.tail, Tail::Bits(_)));
        assert!(short.matches(&format!("/t/x{}", "ab".repeat(60))));
        assert!(!short.matches(&format!("/t/x{}", "ab".repeat(59))));
    }

    #[test]
    fn permissions_check_send_and_subscribe_separately() {
        let p = Permissions::new(&["/topic/chat.*"], &["/topic/chat.*", "/queue/inbox.alice"]);
        assert!(p.may_send("/topic/chat.lobby"));
        assert!(!p.may_send("/queue/inbox.alice"));
        assert!(p.may_subscribe("/queue/inbox.alice"));
        assert!(!p.may_subscribe("/queue/inbox.bob"));
        let none = Permissions::new::<&str>(&[], &[]);
        assert!(!none.may_send("/topic/a") && !none.may_subscribe("/topic/a"));
        let all = Permissions::all();
        assert!(all.may_send("/queue/x/y") && all.may_subscribe("/topic/z"));
    }
}
