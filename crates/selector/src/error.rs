//! [`SelectorError`]: why a selector was refused, and where.
//!
//! Owns the error type and its wording; the lexer and the parser decide when
//! to raise it.

/// A selector that could not be parsed: the byte `position` in the selector
/// text where it went wrong, and why.
///
/// ```
/// let error = stompkit_selector::Selector::parse("(a = 1").unwrap_err();
/// assert_eq!(error.position(), 6);
/// assert_eq!(error.to_string(), "invalid selector at position 6: expected ')'");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector at position {position}: {reason}")]
pub struct SelectorError {
    position: usize,
    reason: &'static str,
}

impl SelectorError {
    /// An error at byte `position` for `reason`.
    pub(crate) fn new(position: usize, reason: &'static str) -> SelectorError {
        SelectorError { position, reason }
    }

    /// The byte offset in the selector text where it went wrong.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Why, e.g. `expected ')'`.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}
