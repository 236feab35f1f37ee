//! Authorization: which destinations a client may send to and subscribe to.
//!
//! Owns [`Glob`] (destination patterns from the config: `*` matches any run of
//! characters except `/`, `**` any run including `/`, everything else is literal)
//! and [`Permissions`] (one list of patterns for SEND, one for SUBSCRIBE). The
//! session asks [`Permissions::may_send`] / [`Permissions::may_subscribe`] before a
//! frame reaches the router; where the lists come from (user, token login,
//! anonymous) is `auth`'s business.
//!
//! Matching runs the pattern as a small NFA over the destination's bytes: time is
//! O(destination × pattern), memory O(pattern), whatever a client sends.

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
    tokens: Vec<Token>,
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
        Glob {
            text: pattern.to_owned(),
            tokens,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `destination` matches the whole pattern.
    pub fn matches(&self, destination: &str) -> bool {
        let n = self.tokens.len();
        // active[i]: the pattern prefix of i tokens matches the input read so far.
        let mut active = vec![false; n + 1];
        let mut next = vec![false; n + 1];
        active[0] = true;
        self.close(&mut active);
        for &c in destination.as_bytes() {
            next.fill(false);
            let mut any = false;
            for (i, token) in self.tokens.iter().enumerate() {
                if !active[i] {
                    continue;
                }
                match *token {
                    Token::Byte(b) if b == c => next[i + 1] = true,
                    Token::Byte(_) => continue,
                    Token::Star if c == b'/' => continue,
                    Token::Star | Token::Any => next[i] = true,
                }
                any = true;
            }
            if !any {
                return false;
            }
            self.close(&mut next);
            std::mem::swap(&mut active, &mut next);
        }
        active[n]
    }

    /// Epsilon moves: a star may match nothing.
    fn close(&self, states: &mut [bool]) {
        for (i, token) in self.tokens.iter().enumerate() {
            if states[i] && matches!(token, Token::Star | Token::Any) {
                states[i + 1] = true;
            }
        }
    }
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
    send: Vec<Glob>,
    subscribe: Vec<Glob>,
}

impl Permissions {
    /// Permissions from pattern lists as written in the config.
    pub fn new<S: AsRef<str>>(send: &[S], subscribe: &[S]) -> Permissions {
        let compile = |list: &[S]| list.iter().map(|p| Glob::new(p.as_ref())).collect();
        Permissions {
            send: compile(send),
            subscribe: compile(subscribe),
        }
    }

    /// Everything allowed (the zero-setup broker).
    pub fn all() -> Permissions {
        Permissions::new(&["**"], &["**"])
    }

    /// Whether a SEND to `destination` is allowed.
    pub fn may_send(&self, destination: &str) -> bool {
        self.send.iter().any(|g| g.matches(destination))
    }

    /// Whether a SUBSCRIBE to `destination` is allowed.
    pub fn may_subscribe(&self, destination: &str) -> bool {
        self.subscribe.iter().any(|g| g.matches(destination))
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
