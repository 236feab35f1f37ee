//! Evaluation: an [`Expr`] against one message's headers, in JMS's
//! three-valued logic.
//!
//! Owns the value rules. A missing header is NULL; anything compared with
//! NULL is unknown, and unknown is not a match. Header values are strings: a
//! string compared with (or computed with) a number counts as that number
//! when it parses as one (`n > 3` matches `n:5`), else the result is unknown;
//! compared with `TRUE`/`FALSE`, or used as a condition, `true`/`false` (any
//! case) count as booleans. Two strings compare lexicographically (ActiveMQ);
//! booleans only compare for (in)equality. Exact arithmetic stays exact until
//! it overflows (then approximate); an exact division by zero is unknown.

use crate::ast::{ArithOp, CmpOp, Expr, Ident, Literal, Source};
use std::cmp::Ordering;

/// A value during evaluation; `Null` is SQL's NULL (unknown).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value<'a> {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(&'a str),
}

/// A number.
#[derive(Debug, Clone, Copy)]
enum Num {
    Long(i64),
    Double(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            #[expect(clippy::cast_precision_loss, reason = "JMS widens long to double")]
            Num::Long(n) => n as f64,
            Num::Double(x) => x,
        }
    }

    fn value<'a>(self) -> Value<'a> {
        match self {
            Num::Long(n) => Value::Long(n),
            Num::Double(x) => Value::Double(x),
        }
    }
}

/// A string's number, if it spells one (`5`, `-2`, `1.5`, `1e3`; not `NaN`).
fn parse_number(s: &str) -> Option<Num> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(Num::Long(n));
    }
    let numeric = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !numeric {
        return None;
    }
    s.parse::<f64>().ok().map(Num::Double)
}

/// A string's boolean: `true` or `false` in any case.
fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl<'a> Value<'a> {
    fn number(self) -> Option<Num> {
        match self {
            Value::Long(n) => Some(Num::Long(n)),
            Value::Double(x) => Some(Num::Double(x)),
            Value::Str(s) => parse_number(s),
            Value::Null | Value::Bool(_) => None,
        }
    }

    fn is_number(self) -> bool {
        matches!(self, Value::Long(_) | Value::Double(_))
    }

    /// As a condition: `Some(true)`, `Some(false)` or unknown.
    fn truth(self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(b),
            Value::Str(s) => parse_bool(s),
            _ => None,
        }
    }
}

fn truth_value<'a>(t: Option<bool>) -> Value<'a> {
    t.map_or(Value::Null, Value::Bool)
}

/// Evaluates `expr`; `headers` gives a header's value by name.
pub(crate) fn matches<'h>(expr: &Expr, headers: &dyn Fn(&str) -> Option<&'h str>) -> bool {
    Eval { headers }.value(expr).truth() == Some(true)
}

struct Eval<'f, 'h> {
    headers: &'f dyn Fn(&str) -> Option<&'h str>,
}

impl<'h> Eval<'_, 'h> {
    fn value<'e>(&self, expr: &'e Expr) -> Value<'e>
    where
        'h: 'e,
    {
        match expr {
            Expr::Literal(l) => literal(l),
            Expr::Ident(i) => self.ident(i),
            Expr::Neg(e) => match self.value(e).number() {
                Some(Num::Long(n)) => n
                    .checked_neg()
                    .map_or(Value::Double(-(n as f64)), Value::Long),
                Some(Num::Double(x)) => Value::Double(-x),
                None => Value::Null,
            },
            Expr::Arith(op, l, r) => arith(*op, self.value(l), self.value(r)),
            Expr::Cmp(op, l, r) => truth_value(compare(*op, self.value(l), self.value(r))),
            Expr::And(operands) => truth_value(self.and(operands)),
            Expr::Or(operands) => truth_value(self.or(operands)),
            Expr::Not(e) => truth_value(self.value(e).truth().map(|b| !b)),
            Expr::Between {
                value,
                low,
                high,
                negated,
            } => {
                let v = self.value(value);
                let ge = compare(CmpOp::Ge, v, self.value(low));
                let le = compare(CmpOp::Le, v, self.value(high));
                truth_value(and3(ge, le).map(|b| b != *negated))
            }
            Expr::In {
                value,
                list,
                negated,
            } => match self.value(value) {
                Value::Str(s) => Value::Bool(list.iter().any(|x| **x == *s) != *negated),
                _ => Value::Null,
            },
            Expr::Like {
                value,
                pattern,
                negated,
            } => match self.value(value) {
                Value::Str(s) => Value::Bool(pattern.matches(s) != *negated),
                _ => Value::Null,
            },
            Expr::IsNull { value, negated } => {
                Value::Bool((self.value(value) == Value::Null) != *negated)
            }
        }
    }

    fn ident<'e>(&self, ident: &'e Ident) -> Value<'e>
    where
        'h: 'e,
    {
        match &ident.source {
            Source::Header(name) => (self.headers)(name).map_or(Value::Null, Value::Str),
            Source::DeliveryMode => Value::Str(match (self.headers)("persistent") {
                Some("true") => "PERSISTENT",
                _ => "NON_PERSISTENT",
            }),
        }
    }

    /// False if any is false, else unknown if any is unknown, else true.
    fn and(&self, operands: &[Expr]) -> Option<bool> {
        let mut result = Some(true);
        for e in operands {
            match self.value(e).truth() {
                Some(false) => return Some(false),
                None => result = None,
                Some(true) => {}
            }
        }
        result
    }

    /// True if any is true, else unknown if any is unknown, else false.
    fn or(&self, operands: &[Expr]) -> Option<bool> {
        let mut result = Some(false);
        for e in operands {
            match self.value(e).truth() {
                Some(true) => return Some(true),
                None => result = None,
                Some(false) => {}
            }
        }
        result
    }
}

fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn literal(l: &Literal) -> Value<'_> {
    match l {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Long(n) => Value::Long(*n),
        Literal::Double(x) => Value::Double(*x),
        Literal::Str(s) => Value::Str(s),
    }
}

/// `l op r`: unknown if either is not a number (strings that spell one count).
fn arith<'a>(op: ArithOp, l: Value<'_>, r: Value<'_>) -> Value<'a> {
    let (Some(a), Some(b)) = (l.number(), r.number()) else {
        return Value::Null;
    };
    if let (Num::Long(a), Num::Long(b)) = (a, b) {
        let exact = match op {
            ArithOp::Add => a.checked_add(b),
            ArithOp::Sub => a.checked_sub(b),
            ArithOp::Mul => a.checked_mul(b),
            ArithOp::Div if b == 0 => return Value::Null,
            ArithOp::Div => a.checked_div(b),
        };
        if let Some(n) = exact {
            return Value::Long(n);
        }
    }
    let (a, b) = (a.as_f64(), b.as_f64());
    Num::Double(match op {
        ArithOp::Add => a + b,
        ArithOp::Sub => a - b,
        ArithOp::Mul => a * b,
        ArithOp::Div => a / b,
    })
    .value()
}

/// `l op r` in three-valued logic (`None`: unknown).
fn compare(op: CmpOp, l: Value<'_>, r: Value<'_>) -> Option<bool> {
    let ordering = match (l, r) {
        (Value::Null, _) | (_, Value::Null) => return None,
        (Value::Str(a), Value::Str(b)) => a.cmp(b),
        (Value::Bool(a), b) | (b, Value::Bool(a)) => {
            let b = b.truth()?;
            return match op {
                CmpOp::Eq => Some(a == b),
                CmpOp::Ne => Some(a != b),
                _ => None,
            };
        }
        _ if l.is_number() || r.is_number() => numeric_order(l.number()?, r.number()?)?,
        _ => return None,
    };
    Some(match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
    })
}

fn numeric_order(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Long(a), Num::Long(b)) => Some(a.cmp(&b)),
        _ => a.as_f64().partial_cmp(&b.as_f64()),
    }
}
