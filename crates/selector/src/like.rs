//! `LIKE` patterns: `%` any run of characters, `_` exactly one, an `ESCAPE`
//! character making the next `%`, `_` or itself literal.
//!
//! Owns compiling a pattern once (at parse time) and matching text against it
//! in O(text × pattern) at worst (greedy with one backtrack point, never
//! exponential). Characters are Unicode scalar values, as in Java.

use std::fmt;

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    /// This character.
    Char(char),
    /// `_`: any one character.
    One,
    /// `%`: any run of characters, maybe empty.
    Any,
}

/// A compiled `LIKE` pattern, with the text it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Like {
    parts: Vec<Part>,
    pattern: Box<str>,
    escape: Option<char>,
}

/// Why a pattern cannot be compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LikeError {
    /// The escape character ends the pattern.
    DanglingEscape,
}

impl Like {
    /// Compiles `pattern` with the escape character `escape`.
    pub(crate) fn new(pattern: &str, escape: Option<char>) -> Result<Like, LikeError> {
        let mut parts = Vec::with_capacity(pattern.len());
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let part = match c {
                _ if Some(c) == escape => {
                    Part::Char(chars.next().ok_or(LikeError::DanglingEscape)?)
                }
                '%' => Part::Any,
                '_' => Part::One,
                _ => Part::Char(c),
            };
            // `%%` is `%`: one backtrack point is enough.
            if !(part == Part::Any && parts.last() == Some(&Part::Any)) {
                parts.push(part);
            }
        }
        Ok(Like {
            parts,
            pattern: pattern.into(),
            escape,
        })
    }

    /// Whether `text` matches the whole pattern.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let parts = &self.parts;
        let (mut p, mut t) = (0, 0);
        // The last `%` seen: the part after it and the text position it was tried at.
        let mut star: Option<(usize, usize)> = None;
        loop {
            let next = text[t..].chars().next();
            match (parts.get(p), next) {
                (Some(Part::Any), _) => {
                    star = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                (Some(Part::One), Some(c)) => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                (Some(Part::Char(want)), Some(c)) if *want == c => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                (None, None) => return true,
                _ => {}
            }
            // Mismatch: let the last `%` take one more character.
            let Some((after_star, tried)) = star else {
                return false;
            };
            let Some(c) = text[tried..].chars().next() else {
                return false;
            };
            let tried = tried + c.len_utf8();
            star = Some((after_star, tried));
            p = after_star;
            t = tried;
        }
    }
}

impl fmt::Display for Like {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::ast::quoted(f, &self.pattern)?;
        if let Some(e) = self.escape {
            f.write_str(" ESCAPE ")?;
            crate::ast::quoted(f, e.encode_utf8(&mut [0; 4]))?;
        }
        Ok(())
    }
}
