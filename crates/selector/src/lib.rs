//! JMS/SQL-92 message selectors over STOMP headers, with ActiveMQ's semantics.
//!
//! A STOMP `SUBSCRIBE` may carry a `selector` header: a condition over the
//! headers of each message, in the syntax of JMS message selectors (a subset
//! of SQL-92's conditional expressions). [`Selector::parse`] parses one once
//! (with `nom`) into an expression tree; [`Selector::matches`] evaluates it
//! against one message's headers.
//!
//! - Identifiers follow Java's rules and name headers; the reserved words
//!   `NULL TRUE FALSE NOT AND OR BETWEEN LIKE IN IS ESCAPE` are
//!   case-insensitive. JMS names read the STOMP headers ActiveMQ maps them
//!   to: `JMSMessageID` `message-id`, `JMSPriority` `priority`, `JMSType`
//!   `type`, `JMSCorrelationID` `correlation-id`, `JMSTimestamp` `timestamp`,
//!   `JMSExpiration` `expires`, `JMSReplyTo` `reply-to`, and
//!   `JMSDeliveryMode` is `'PERSISTENT'` with `persistent:true`, else
//!   `'NON_PERSISTENT'`.
//! - Literals: strings (`'it''s'`), exact numbers (`42`, `42L`, `017`,
//!   `0x1F`), approximate numbers (`1.5`, `.5`, `1e3`, `2.5F`, `2.5D`),
//!   `TRUE`, `FALSE`, `NULL`.
//! - Operators, loosest first: `OR`; `AND`; `NOT`; `= <> < <= > >=`,
//!   `[NOT] BETWEEN a AND b`, `[NOT] IN ('a', 'b')`,
//!   `[NOT] LIKE 'pat' [ESCAPE 'c']` (`%` any run, `_` one character),
//!   `IS [NOT] NULL`; `+ -`; `* /`; unary `-`.
//! - Three-valued logic: a missing header is NULL, a comparison with NULL is
//!   unknown, `NOT` unknown is unknown, and only a true selector matches.
//! - Header values are strings on the wire. Compared with a number (or in
//!   arithmetic), a value counts as a number when it parses as one (`n > 3`
//!   matches `n:5`; with `n:abc` it is unknown); compared with `TRUE` or
//!   `FALSE`, `true`/`false` in any case count as booleans. Two strings compare
//!   lexicographically, as in ActiveMQ.
//!
//! Limits: a selector longer than [`MAX_LEN`] bytes, or nesting (parentheses,
//! `NOT`, unary minus, operators) deeper than [`MAX_DEPTH`], is refused with a
//! [`SelectorError`] naming the byte position, and is checked while parsing,
//! so no input overflows the stack.
//!
//! ```
//! use stompkit_selector::Selector;
//!
//! let selector = Selector::parse("n > 3 AND color IN ('red', 'blue')").unwrap();
//! let headers = [("n", "5"), ("color", "red")];
//! let lookup = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
//! assert!(selector.matches(lookup));
//! assert!(!selector.matches(|_| None)); // NULL > 3 is unknown: no match
//!
//! let error = Selector::parse("n > ").unwrap_err();
//! assert_eq!(error.to_string(), "invalid selector at position 4: expected an expression");
//! ```
#![deny(missing_docs)]

mod ast;
mod error;
mod eval;
mod lexer;
mod like;
mod parser;
#[cfg(test)]
mod tests;

pub use error::SelectorError;
pub use parser::MAX_DEPTH;

use std::fmt;
use std::sync::Arc;

/// Longest selector accepted, in bytes.
pub const MAX_LEN: usize = 4096;

/// A parsed selector: its text and its expression tree. Cloning is cheap
/// (shared).
#[derive(Clone)]
pub struct Selector {
    inner: Arc<Inner>,
}

struct Inner {
    text: Box<str>,
    expr: ast::Expr,
}

impl Selector {
    /// Parses `text`. Refused (with the byte position and why) when it is not
    /// a selector, is longer than [`MAX_LEN`] bytes or nests deeper than
    /// [`MAX_DEPTH`].
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        if text.len() > MAX_LEN {
            return Err(SelectorError::new(
                MAX_LEN,
                "selector longer than 4096 bytes",
            ));
        }
        let tokens = lexer::tokens(text)?;
        let expr = parser::Parser::new(&tokens, text.len()).selector()?;
        Ok(Selector {
            inner: Arc::new(Inner {
                text: text.into(),
                expr,
            }),
        })
    }

    /// Whether a message whose header values `headers` gives by name (`None`:
    /// absent) matches: the selector is true for it (false and unknown do not
    /// match).
    pub fn matches<'h>(&self, headers: impl Fn(&str) -> Option<&'h str>) -> bool {
        eval::matches(&self.inner.expr, &headers)
    }

    /// The selector's text, as given to [`parse`](Selector::parse).
    pub fn as_str(&self) -> &str {
        &self.inner.text
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Selector").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Selector {
    /// Selectors are equal when their texts are.
    fn eq(&self, other: &Selector) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Selector {}
