//! The lexer: selector text into tokens with their byte positions, with `nom`.
//!
//! Owns the lexical rules: whitespace, Java identifiers, the reserved words
//! (case-insensitive), string literals (`''` is a quote), exact numerics
//! (decimal, octal `017`, hex `0x1F`, optional `L`) and approximate ones
//! (`1.5`, `.5`, `1e3`, optional `F`/`D`), operators and punctuation. Does not
//! know the grammar (`parser.rs`).

use crate::error::SelectorError;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, digit1, one_of};
use nom::combinator::{opt, recognize};
use nom::sequence::pair;
use nom::{IResult, Parser};

/// A reserved word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Null,
    True,
    False,
    Not,
    And,
    Or,
    Between,
    Like,
    In,
    Is,
    Escape,
}

const KEYWORDS: [(&str, Keyword); 11] = [
    ("NULL", Keyword::Null),
    ("TRUE", Keyword::True),
    ("FALSE", Keyword::False),
    ("NOT", Keyword::Not),
    ("AND", Keyword::And),
    ("OR", Keyword::Or),
    ("BETWEEN", Keyword::Between),
    ("LIKE", Keyword::Like),
    ("IN", Keyword::In),
    ("IS", Keyword::Is),
    ("ESCAPE", Keyword::Escape),
];

/// An operator or punctuation mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Symbol {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    LParen,
    RParen,
    Comma,
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok<'a> {
    /// An identifier (not a reserved word).
    Ident(&'a str),
    /// A reserved word.
    Keyword(Keyword),
    /// A string literal, quotes removed and `''` made one quote.
    Str(String),
    /// An exact numeric literal's digits (any `L` suffix removed).
    Exact(&'a str),
    /// An approximate numeric literal (any `F`/`D` suffix removed).
    Approx(&'a str),
    /// An operator or punctuation.
    Symbol(Symbol),
}

/// A token and its byte offset in the selector.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'a> {
    pub(crate) tok: Tok<'a>,
    pub(crate) pos: usize,
}

/// The tokens of `text`, or where and why it is not a sequence of tokens.
pub(crate) fn tokens(text: &str) -> Result<Vec<Token<'_>>, SelectorError> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let pos = text.len() - rest.len();
        let (after, tok) = match token(rest) {
            Ok(ok) => ok,
            Err(_) => return Err(SelectorError::new(pos, unlexable(rest))),
        };
        if matches!(tok, Tok::Exact(_) | Tok::Approx(_)) && after.starts_with(is_ident_part) {
            return Err(SelectorError::new(pos, "invalid number"));
        }
        out.push(Token { tok, pos });
        rest = after.trim_start();
    }
    Ok(out)
}

/// Why the text at `rest` is no token.
fn unlexable(rest: &str) -> &'static str {
    if rest.starts_with('\'') {
        "unterminated string literal"
    } else if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        "invalid number"
    } else {
        "unexpected character"
    }
}

fn token(i: &str) -> IResult<&str, Tok<'_>> {
    alt((string, number, word, symbol)).parse(i)
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn is_ident_part(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// An identifier or a reserved word.
fn word(i: &str) -> IResult<&str, Tok<'_>> {
    let (rest, word) =
        recognize(pair(take_while1(is_ident_start), take_while(is_ident_part))).parse(i)?;
    let keyword = KEYWORDS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(word))
        .map(|&(_, k)| k);
    Ok((rest, keyword.map_or(Tok::Ident(word), Tok::Keyword)))
}

/// `'...'` with `''` for a quote.
fn string(i: &str) -> IResult<&str, Tok<'_>> {
    let (mut rest, _) = char('\'').parse(i)?;
    let mut value = String::new();
    loop {
        let (after, part) = take_while(|c| c != '\'').parse(rest)?;
        value.push_str(part);
        let (after, _) = char('\'').parse(after)?;
        match char::<_, nom::error::Error<&str>>('\'').parse(after) {
            Ok((after, _)) => {
                value.push('\'');
                rest = after;
            }
            Err(_) => return Ok((after, Tok::Str(value))),
        }
    }
}

/// A numeric literal: hex, approximate, then exact (octal or decimal).
fn number(i: &str) -> IResult<&str, Tok<'_>> {
    alt((hex, approximate, exact)).parse(i)
}

fn hex(i: &str) -> IResult<&str, Tok<'_>> {
    let (rest, digits) = recognize((
        alt((tag("0x"), tag("0X"))),
        take_while1(|c: char| c.is_ascii_hexdigit()),
    ))
    .parse(i)?;
    let (rest, _) = opt(one_of("lL")).parse(rest)?;
    Ok((rest, Tok::Exact(digits)))
}

fn exponent(i: &str) -> IResult<&str, &str> {
    recognize((one_of("eE"), opt(one_of("+-")), digit1)).parse(i)
}

/// `1.5`, `1.`, `.5`, `1e3`, `1.5e-3`, with an optional `F` or `D`.
fn approximate(i: &str) -> IResult<&str, Tok<'_>> {
    let (rest, text) = alt((
        recognize((
            digit1,
            char('.'),
            take_while(|c: char| c.is_ascii_digit()),
            opt(exponent),
        )),
        recognize((char('.'), digit1, opt(exponent))),
        recognize(pair(digit1, exponent)),
    ))
    .parse(i)?;
    let (rest, _) = opt(one_of("fFdD")).parse(rest)?;
    Ok((rest, Tok::Approx(text)))
}

/// Decimal or octal digits, with an optional `L`.
fn exact(i: &str) -> IResult<&str, Tok<'_>> {
    let (rest, digits) = digit1(i)?;
    let (rest, _) = opt(one_of("lL")).parse(rest)?;
    Ok((rest, Tok::Exact(digits)))
}

fn symbol(i: &str) -> IResult<&str, Tok<'_>> {
    let (rest, s) = alt((
        tag("<>"),
        tag("<="),
        tag(">="),
        recognize(one_of("=<>+-*/(),")),
    ))
    .parse(i)?;
    let symbol = match s {
        "<>" => Symbol::Ne,
        "<=" => Symbol::Le,
        ">=" => Symbol::Ge,
        "=" => Symbol::Eq,
        "<" => Symbol::Lt,
        ">" => Symbol::Gt,
        "+" => Symbol::Plus,
        "-" => Symbol::Minus,
        "*" => Symbol::Star,
        "/" => Symbol::Slash,
        "(" => Symbol::LParen,
        ")" => Symbol::RParen,
        _ => Symbol::Comma,
    };
    Ok((rest, Tok::Symbol(symbol)))
}
