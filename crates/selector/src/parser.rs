//! The grammar: tokens into an [`Expr`], with positions in every error.
//!
//! Owns precedence (`OR` < `AND` < `NOT` < comparisons, `BETWEEN`, `IN`,
//! `LIKE`, `IS NULL` < `+ -` < `* /` < unary `-`), literal values, and the
//! nesting bound: parentheses, `NOT` and unary minus count as they are
//! entered and every node's depth as it is built, so no input recurses
//! deeper than [`MAX_DEPTH`] (checked while parsing, never after).
//!
//! ```text
//! or      := and (OR and)*
//! and     := not (AND not)*
//! not     := NOT not | compare
//! compare := sum [ cmp-op sum | [NOT] BETWEEN sum AND sum
//!                | [NOT] IN '(' string (',' string)* ')'
//!                | [NOT] LIKE string [ESCAPE string] | IS [NOT] NULL ]
//! sum     := product (('+' | '-') product)*
//! product := unary (('*' | '/') unary)*
//! unary   := ('-' | '+') unary | primary
//! primary := literal | identifier | '(' or ')'
//! ```

use crate::ast::{ArithOp, CmpOp, Expr, Ident, Literal};
use crate::error::SelectorError;
use crate::lexer::{Keyword, Symbol, Tok, Token};
use crate::like::Like;

/// Deepest nesting a selector may have.
pub const MAX_DEPTH: usize = 64;

/// An expression and the depth of its tree.
type Node = (Expr, usize);

type Parsed<T> = Result<T, SelectorError>;

/// The parser's state: the tokens, where it is, and how deep.
pub(crate) struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    at: usize,
    /// Byte length of the selector (the position of "end of selector").
    end: usize,
    /// Parentheses, `NOT`s and unary minuses entered and not yet left.
    nesting: usize,
}

impl<'t, 'a> Parser<'t, 'a> {
    /// A parser over `tokens` of a selector `end` bytes long.
    pub(crate) fn new(tokens: &'t [Token<'a>], end: usize) -> Parser<'t, 'a> {
        Parser {
            tokens,
            at: 0,
            end,
            nesting: 0,
        }
    }

    /// The whole selector: one expression, then nothing.
    pub(crate) fn selector(mut self) -> Parsed<Expr> {
        if self.tokens.is_empty() {
            return Err(SelectorError::new(0, "empty selector"));
        }
        let (expr, _) = self.or()?;
        match self.peek() {
            None => Ok(expr),
            Some(Tok::Symbol(Symbol::RParen)) => Err(self.error("unbalanced ')'")),
            Some(_) => Err(self.error("expected AND, OR or the end of the selector")),
        }
    }

    fn peek(&self) -> Option<&Tok<'a>> {
        self.tokens.get(self.at).map(|t| &t.tok)
    }

    fn pos(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |t| t.pos)
    }

    fn error(&self, reason: &'static str) -> SelectorError {
        SelectorError::new(self.pos(), reason)
    }

    fn eat_keyword(&mut self, keyword: Keyword) -> bool {
        let found = self.peek() == Some(&Tok::Keyword(keyword));
        self.at += usize::from(found);
        found
    }

    fn eat_symbol(&mut self, symbol: Symbol) -> bool {
        let found = self.peek() == Some(&Tok::Symbol(symbol));
        self.at += usize::from(found);
        found
    }

    fn expect_symbol(&mut self, symbol: Symbol, reason: &'static str) -> Parsed<()> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            Err(self.error(reason))
        }
    }

    /// Enters a nested construct at `pos`: refused past [`MAX_DEPTH`].
    fn enter(&mut self, pos: usize) -> Parsed<()> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(SelectorError::new(pos, "nested too deeply"));
        }
        Ok(())
    }

    /// A node of depth `depth` built at `pos`: refused past [`MAX_DEPTH`].
    fn node(expr: Expr, depth: usize, pos: usize) -> Parsed<Node> {
        if depth > MAX_DEPTH {
            return Err(SelectorError::new(pos, "nested too deeply"));
        }
        Ok((expr, depth))
    }

    fn or(&mut self) -> Parsed<Node> {
        self.chain(Keyword::Or, Parser::and, Expr::Or)
    }

    fn and(&mut self) -> Parsed<Node> {
        self.chain(Keyword::And, Parser::not, Expr::And)
    }

    /// `operand (keyword operand)*`, two or more as one n-ary node.
    fn chain(
        &mut self,
        keyword: Keyword,
        operand: fn(&mut Self) -> Parsed<Node>,
        make: fn(Vec<Expr>) -> Expr,
    ) -> Parsed<Node> {
        let pos = self.pos();
        let (first, mut depth) = operand(self)?;
        if self.peek() != Some(&Tok::Keyword(keyword)) {
            return Ok((first, depth));
        }
        let mut operands = vec![first];
        while self.eat_keyword(keyword) {
            let (next, d) = operand(self)?;
            depth = depth.max(d);
            operands.push(next);
        }
        Parser::node(make(operands), depth + 1, pos)
    }

    fn not(&mut self) -> Parsed<Node> {
        let pos = self.pos();
        if !self.eat_keyword(Keyword::Not) {
            return self.compare();
        }
        self.enter(pos)?;
        let (operand, depth) = self.not()?;
        self.nesting -= 1;
        Parser::node(Expr::Not(Box::new(operand)), depth + 1, pos)
    }

    fn compare(&mut self) -> Parsed<Node> {
        let pos = self.pos();
        let left = self.sum()?;
        let op = match self.peek() {
            Some(Tok::Symbol(s)) => cmp_op(*s),
            Some(Tok::Keyword(Keyword::Is)) => return self.is_null(left, pos),
            Some(Tok::Keyword(Keyword::Not | Keyword::Between | Keyword::In | Keyword::Like)) => {
                return self.predicate(left, pos);
            }
            _ => None,
        };
        let Some(op) = op else {
            return Ok(left);
        };
        self.at += 1;
        let right = self.sum()?;
        let depth = left.1.max(right.1) + 1;
        Parser::node(
            Expr::Cmp(op, Box::new(left.0), Box::new(right.0)),
            depth,
            pos,
        )
    }

    /// `IS [NOT] NULL` after `value`.
    fn is_null(&mut self, (value, depth): Node, pos: usize) -> Parsed<Node> {
        self.at += 1;
        let negated = self.eat_keyword(Keyword::Not);
        if !self.eat_keyword(Keyword::Null) {
            return Err(self.error("expected NULL"));
        }
        let expr = Expr::IsNull {
            value: Box::new(value),
            negated,
        };
        Parser::node(expr, depth + 1, pos)
    }

    /// `[NOT] BETWEEN`, `[NOT] IN`, `[NOT] LIKE` after `value`.
    fn predicate(&mut self, (value, depth): Node, pos: usize) -> Parsed<Node> {
        let negated = self.eat_keyword(Keyword::Not);
        let value = Box::new(value);
        let (expr, depth) = if self.eat_keyword(Keyword::Between) {
            let (low, dl) = self.sum()?;
            if !self.eat_keyword(Keyword::And) {
                return Err(self.error("expected AND"));
            }
            let (high, dh) = self.sum()?;
            let (low, high) = (Box::new(low), Box::new(high));
            let expr = Expr::Between {
                value,
                low,
                high,
                negated,
            };
            (expr, depth.max(dl).max(dh))
        } else if self.eat_keyword(Keyword::In) {
            let list = self.in_list()?;
            let expr = Expr::In {
                value,
                list,
                negated,
            };
            (expr, depth)
        } else if self.eat_keyword(Keyword::Like) {
            let pattern = self.like_pattern()?;
            let expr = Expr::Like {
                value,
                pattern,
                negated,
            };
            (expr, depth)
        } else {
            return Err(self.error("expected BETWEEN, IN or LIKE"));
        };
        Parser::node(expr, depth + 1, pos)
    }

    /// `'(' string (',' string)* ')'`.
    fn in_list(&mut self) -> Parsed<Vec<Box<str>>> {
        self.expect_symbol(Symbol::LParen, "expected '('")?;
        let mut list = Vec::new();
        loop {
            list.push(self.string("expected a string literal")?.into());
            if !self.eat_symbol(Symbol::Comma) {
                break;
            }
        }
        self.expect_symbol(Symbol::RParen, "expected ')'")?;
        Ok(list)
    }

    /// `string [ESCAPE string]`, compiled.
    fn like_pattern(&mut self) -> Parsed<Like> {
        let pattern_pos = self.pos();
        let pattern = self.string("expected a string literal")?;
        let escape = if self.eat_keyword(Keyword::Escape) {
            let pos = self.pos();
            let text = self.string("expected a string literal")?;
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => return Err(SelectorError::new(pos, "ESCAPE must be one character")),
            }
        } else {
            None
        };
        Like::new(&pattern, escape)
            .map_err(|_| SelectorError::new(pattern_pos, "escape character ends the pattern"))
    }

    fn string(&mut self, reason: &'static str) -> Parsed<String> {
        match self.peek() {
            Some(Tok::Str(s)) => {
                let s = s.clone();
                self.at += 1;
                Ok(s)
            }
            _ => Err(self.error(reason)),
        }
    }

    fn sum(&mut self) -> Parsed<Node> {
        self.arithmetic(Parser::product, |s| match s {
            Symbol::Plus => Some(ArithOp::Add),
            Symbol::Minus => Some(ArithOp::Sub),
            _ => None,
        })
    }

    fn product(&mut self) -> Parsed<Node> {
        self.arithmetic(Parser::unary, |s| match s {
            Symbol::Star => Some(ArithOp::Mul),
            Symbol::Slash => Some(ArithOp::Div),
            _ => None,
        })
    }

    /// `operand (op operand)*`, left-associative.
    fn arithmetic(
        &mut self,
        operand: fn(&mut Self) -> Parsed<Node>,
        op: fn(Symbol) -> Option<ArithOp>,
    ) -> Parsed<Node> {
        let (mut left, mut depth) = operand(self)?;
        while let Some(Tok::Symbol(s)) = self.peek()
            && let Some(op) = op(*s)
        {
            let pos = self.pos();
            self.at += 1;
            let (right, d) = operand(self)?;
            left = Expr::Arith(op, Box::new(left), Box::new(right));
            depth = depth.max(d) + 1;
            if depth > MAX_DEPTH {
                return Err(SelectorError::new(pos, "nested too deeply"));
            }
        }
        Ok((left, depth))
    }

    fn unary(&mut self) -> Parsed<Node> {
        let pos = self.pos();
        let minus = match self.peek() {
            Some(Tok::Symbol(Symbol::Minus)) => true,
            Some(Tok::Symbol(Symbol::Plus)) => false,
            _ => return self.primary(),
        };
        self.at += 1;
        if minus && let Some(Tok::Exact(_) | Tok::Approx(_)) = self.peek() {
            return self.number(true);
        }
        self.enter(pos)?;
        let (operand, depth) = self.unary()?;
        self.nesting -= 1;
        if !minus {
            return Ok((operand, depth));
        }
        Parser::node(Expr::Neg(Box::new(operand)), depth + 1, pos)
    }

    fn primary(&mut self) -> Parsed<Node> {
        let pos = self.pos();
        let literal = match self.peek() {
            None => return Err(self.error("expected an expression")),
            Some(Tok::Exact(_) | Tok::Approx(_)) => return self.number(false),
            Some(Tok::Symbol(Symbol::LParen)) => return self.parenthesized(pos),
            Some(Tok::Ident(name)) => Expr::Ident(Ident::new(name)),
            Some(Tok::Str(s)) => Expr::Literal(Literal::Str(s.as_str().into())),
            Some(Tok::Keyword(Keyword::True)) => Expr::Literal(Literal::Bool(true)),
            Some(Tok::Keyword(Keyword::False)) => Expr::Literal(Literal::Bool(false)),
            Some(Tok::Keyword(Keyword::Null)) => Expr::Literal(Literal::Null),
            Some(Tok::Keyword(_)) => return Err(self.error("unexpected reserved word")),
            Some(Tok::Symbol(_)) => return Err(self.error("expected an expression")),
        };
        self.at += 1;
        Ok((literal, 0))
    }

    fn parenthesized(&mut self, pos: usize) -> Parsed<Node> {
        self.at += 1;
        self.enter(pos)?;
        let inner = self.or()?;
        self.expect_symbol(Symbol::RParen, "expected ')'")?;
        self.nesting -= 1;
        Ok(inner)
    }

    /// The numeric literal here, negated after a unary minus.
    fn number(&mut self, negative: bool) -> Parsed<Node> {
        let pos = self.pos();
        let sign = if negative { "-" } else { "" };
        let literal = match self.peek() {
            Some(Tok::Exact(digits)) => exact(sign, digits),
            Some(Tok::Approx(text)) => format!("{sign}{text}").parse().ok().map(Literal::Double),
            _ => None,
        };
        let literal = literal.ok_or_else(|| SelectorError::new(pos, "number out of range"))?;
        self.at += 1;
        Ok((Expr::Literal(literal), 0))
    }
}

/// An exact literal: hex (`0x`), octal (leading `0`) or decimal.
fn exact(sign: &str, digits: &str) -> Option<Literal> {
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X"))
    {
        (16, hex)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    i64::from_str_radix(&format!("{sign}{digits}"), radix)
        .ok()
        .map(Literal::Long)
}

fn cmp_op(symbol: Symbol) -> Option<CmpOp> {
    Some(match symbol {
        Symbol::Eq => CmpOp::Eq,
        Symbol::Ne => CmpOp::Ne,
        Symbol::Lt => CmpOp::Lt,
        Symbol::Le => CmpOp::Le,
        Symbol::Gt => CmpOp::Gt,
        Symbol::Ge => CmpOp::Ge,
        _ => return None,
    })
}
