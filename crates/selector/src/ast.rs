//! The parsed selector: an expression tree, and its canonical text.
//!
//! Owns [`Expr`] and what each node means before evaluation: literals,
//! identifiers resolved to the STOMP header they read (JMS names mapped), and
//! the operators. `Display` writes a fully parenthesized selector that parses
//! back to the same tree. Evaluation is `eval.rs`'s.

use crate::like::Like;
use std::fmt;

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(Box<str>),
}

/// Where an identifier's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    /// A STOMP header of this name.
    Header(Box<str>),
    /// `JMSDeliveryMode`: `persistent:true` is `'PERSISTENT'`, anything else
    /// `'NON_PERSISTENT'`.
    DeliveryMode,
}

/// An identifier: as written, and what it reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ident {
    pub(crate) name: Box<str>,
    pub(crate) source: Source,
}

/// JMS header names and the STOMP headers they read.
const JMS_HEADERS: [(&str, &str); 7] = [
    ("JMSMessageID", "message-id"),
    ("JMSPriority", "priority"),
    ("JMSType", "type"),
    ("JMSCorrelationID", "correlation-id"),
    ("JMSTimestamp", "timestamp"),
    ("JMSExpiration", "expires"),
    ("JMSReplyTo", "reply-to"),
];

impl Ident {
    /// The identifier `name`, JMS names mapped onto STOMP headers.
    pub(crate) fn new(name: &str) -> Ident {
        let source = if name == "JMSDeliveryMode" {
            Source::DeliveryMode
        } else {
            let header = JMS_HEADERS
                .iter()
                .find(|(jms, _)| *jms == name)
                .map_or(name, |&(_, header)| header);
            Source::Header(header.into())
        };
        Ident {
            name: name.into(),
            source,
        }
    }
}

/// `=`, `<>`, `<`, `<=`, `>`, `>=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// `+`, `-`, `*`, `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// A selector expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Literal(Literal),
    Ident(Ident),
    /// Unary minus.
    Neg(Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// Two or more operands.
    And(Vec<Expr>),
    /// Two or more operands.
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Between {
        value: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    In {
        value: Box<Expr>,
        list: Vec<Box<str>>,
        negated: bool,
    },
    Like {
        value: Box<Expr>,
        pattern: Like,
        negated: bool,
    },
    IsNull {
        value: Box<Expr>,
        negated: bool,
    },
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

impl ArithOp {
    fn as_str(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

/// Writes `s` as a string literal.
pub(crate) fn quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    write!(f, "'{}'", s.replace('\'', "''"))
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("NULL"),
            Literal::Bool(true) => f.write_str("TRUE"),
            Literal::Bool(false) => f.write_str("FALSE"),
            Literal::Long(n) => write!(f, "{n}"),
            Literal::Double(x) => write!(f, "{x:?}"),
            Literal::Str(s) => quoted(f, s),
        }
    }
}

fn not(negated: bool) -> &'static str {
    if negated { " NOT" } else { "" }
}

fn joined(f: &mut fmt::Formatter<'_>, operands: &[Expr], op: &str) -> fmt::Result {
    f.write_str("(")?;
    for (i, e) in operands.iter().enumerate() {
        if i > 0 {
            write!(f, " {op} ")?;
        }
        write!(f, "{e}")?;
    }
    f.write_str(")")
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(l) => write!(f, "{l}"),
            Expr::Ident(i) => f.write_str(&i.name),
            Expr::Neg(e) => write!(f, "-({e})"),
            Expr::Arith(op, l, r) => write!(f, "({l} {} {r})", op.as_str()),
            Expr::Cmp(op, l, r) => write!(f, "({l} {} {r})", op.as_str()),
            Expr::And(operands) => joined(f, operands, "AND"),
            Expr::Or(operands) => joined(f, operands, "OR"),
            Expr::Not(e) => write!(f, "NOT ({e})"),
            Expr::Between {
                value,
                low,
                high,
                negated,
            } => write!(f, "({value}{} BETWEEN {low} AND {high})", not(*negated)),
            Expr::In {
                value,
                list,
                negated,
            } => {
                write!(f, "({value}{} IN (", not(*negated))?;
                for (i, s) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    quoted(f, s)?;
                }
                f.write_str("))")
            }
            Expr::Like {
                value,
                pattern,
                negated,
            } => write!(f, "({value}{} LIKE {pattern})", not(*negated)),
            Expr::IsNull { value, negated } => write!(f, "({value} IS{} NULL)", not(*negated)),
        }
    }
}
