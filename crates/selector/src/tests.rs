//! Unit tests: grammar, errors with positions, limits, three-valued logic,
//! coercion, JMS names; proptest: generated trees round-trip through their
//! text, and evaluation agrees with a reference model; no input panics.
#![allow(clippy::unwrap_used)]

use crate::ast::{ArithOp, CmpOp, Expr, Ident, Literal};
use crate::{MAX_DEPTH, MAX_LEN, Selector};
use proptest::prelude::*;

fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// Whether `selector` matches a message with `pairs`.
fn sel(selector: &str, pairs: &[(&str, &str)]) -> bool {
    Selector::parse(selector).unwrap().matches(headers(pairs))
}

fn error(selector: &str) -> (usize, &'static str) {
    let e = Selector::parse(selector).unwrap_err();
    (e.position(), e.reason())
}

#[test]
fn comparisons_of_strings_numbers_and_booleans() {
    assert!(sel("color = 'red'", &[("color", "red")]));
    assert!(!sel("color = 'red'", &[("color", "blue")]));
    assert!(sel("color <> 'red'", &[("color", "blue")]));
    assert!(sel("n > 3", &[("n", "5")]));
    assert!(!sel("n > 3", &[("n", "2")]));
    assert!(sel("n >= 5 AND n <= 5 AND n < 6", &[("n", "5")]));
    assert!(sel("n = 5.0", &[("n", "5")]));
    assert!(sel("n > 1e0", &[("n", "1.5")]));
    assert!(sel("flag = TRUE", &[("flag", "true")]));
    assert!(sel("flag = false", &[("flag", "FALSE")]));
    assert!(sel("flag", &[("flag", "true")]));
    assert!(!sel("flag", &[("flag", "yes")]));
    assert!(sel("a < b", &[("a", "apple"), ("b", "banana")]));
    assert!(sel("'5' = 5", &[]));
}

#[test]
fn non_numeric_value_against_a_number_is_unknown() {
    assert!(!sel("n > 3", &[("n", "abc")]));
    assert!(!sel("NOT (n > 3)", &[("n", "abc")]));
    assert!(!sel("n = 3", &[("n", "NaN")]));
    assert!(sel("n > 3 OR TRUE", &[("n", "abc")]));
}

#[test]
fn three_valued_logic() {
    // missing header: NULL
    assert!(!sel("x = 1", &[]));
    assert!(!sel("NOT (x = 1)", &[]));
    assert!(!sel("x = 1 OR x <> 1", &[]));
    assert!(sel("x = 1 OR TRUE", &[]));
    assert!(!sel("x = 1 AND TRUE", &[]));
    assert!(sel("NOT (x = 1 AND FALSE)", &[]));
    assert!(!sel("NOT (x = 1 OR FALSE)", &[]));
    assert!(sel("x IS NULL", &[]));
    assert!(!sel("x IS NOT NULL", &[]));
    assert!(sel("x IS NOT NULL", &[("x", "")]));
    assert!(!sel("x IN ('a')", &[]));
    assert!(!sel("x NOT IN ('a')", &[]));
    assert!(!sel("x LIKE '%'", &[]));
    assert!(!sel("x NOT LIKE 'a'", &[]));
    assert!(!sel("x BETWEEN 1 AND 2", &[]));
    assert!(!sel("x NOT BETWEEN 1 AND 2", &[]));
    // false AND unknown is false, so NOT of it is true
    assert!(sel("NOT (x BETWEEN 1 AND 2)", &[("x", "0")]));
    assert!(sel("x NOT BETWEEN 5 AND y", &[("x", "1")]));
}

#[test]
fn in_like_between() {
    let m = [("c", "blue"), ("n", "7"), ("t", "order.created")];
    assert!(sel("c IN ('red', 'blue')", &m));
    assert!(!sel("c NOT IN ('red', 'blue')", &m));
    assert!(sel("c NOT IN ('red')", &m));
    assert!(sel("t LIKE 'order.%'", &m));
    assert!(sel("t LIKE '%created'", &m));
    assert!(sel("t LIKE 'order_created'", &m));
    assert!(!sel("t LIKE 'order'", &m));
    assert!(sel("t NOT LIKE 'x%'", &m));
    assert!(sel("t LIKE '%.%e%'", &m));
    assert!(!sel("t LIKE 'order\\_created' ESCAPE '\\'", &m));
    assert!(sel("u LIKE '50\\%' ESCAPE '\\'", &[("u", "50%")]));
    assert!(!sel("u LIKE '50\\%' ESCAPE '\\'", &[("u", "500")]));
    assert!(sel("u LIKE '_'", &[("u", "é")]));
    assert!(sel("n BETWEEN 5 AND 10", &m));
    assert!(sel("n BETWEEN 7 AND 7", &m));
    assert!(!sel("n BETWEEN 8 AND 10", &m));
    assert!(sel("n NOT BETWEEN 8 AND 10", &m));
    assert!(sel("n IN ('7')", &m));
}

#[test]
fn like_is_not_exponential() {
    let text = "a".repeat(3000);
    let pattern = format!("x LIKE '{}b'", "%a".repeat(40));
    let start = std::time::Instant::now();
    assert!(!sel(&pattern, &[("x", &text)]));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn arithmetic() {
    let m = [("a", "6"), ("b", "4"), ("s", "x")];
    assert!(sel("a + b = 10", &m));
    assert!(sel("a - b * 2 = -2", &m));
    assert!(sel("(a - b) * 2 = 4", &m));
    assert!(sel("a / b = 1", &m));
    assert!(sel("a / 4.0 = 1.5", &m));
    assert!(sel("-a = -6", &m));
    assert!(sel("- -a = 6", &m));
    assert!(sel("+a = 6", &m));
    assert!(!sel("a / 0 = 0", &m));
    assert!(!sel("a / 0 <> 0", &m));
    assert!(!sel("s + 1 = 1", &m));
    assert!(sel("9223372036854775807 + 1 > 0", &[])); // widened, not wrapped
    assert!(sel("-9223372036854775808 < 0", &[]));
}

#[test]
fn literals() {
    assert!(sel("'it''s' = v", &[("v", "it's")]));
    assert!(sel("v = 10L", &[("v", "10")]));
    assert!(sel("v = 0x1F", &[("v", "31")]));
    assert!(sel("v = 017", &[("v", "15")]));
    assert!(sel("v = .5", &[("v", "0.5")]));
    assert!(sel("v = 2.5F AND v = 2.5d", &[("v", "2.5")]));
    assert!(sel("v = 1e3", &[("v", "1000")]));
    assert!(sel("v = 1.5E-1", &[("v", "0.15")]));
    assert!(!sel("NULL = NULL", &[]));
    assert!(sel("TRUE", &[]));
    assert!(!sel("FALSE", &[]));
    assert!(!sel("'true' = 5", &[]));
}

#[test]
fn keywords_are_case_insensitive_and_identifiers_are_not() {
    assert!(sel(
        "a = 1 and not b is null or false",
        &[("a", "1"), ("b", "x")]
    ));
    assert!(!sel("A = 1", &[("a", "1")]));
    assert!(sel(
        "$x_1 = 'y' AND _z = 'w'",
        &[("$x_1", "y"), ("_z", "w")]
    ));
    assert!(sel("héllo = 'y'", &[("héllo", "y")]));
}

#[test]
fn jms_names_read_stomp_headers() {
    let m = [
        ("message-id", "42"),
        ("priority", "9"),
        ("type", "t"),
        ("correlation-id", "c"),
        ("timestamp", "1000"),
        ("expires", "0"),
        ("reply-to", "/queue/r"),
        ("persistent", "true"),
    ];
    assert!(sel("JMSMessageID = '42'", &m));
    assert!(sel("JMSPriority > 4", &m));
    assert!(sel("JMSType = 't' AND JMSCorrelationID = 'c'", &m));
    assert!(sel("JMSTimestamp = 1000 AND JMSExpiration = 0", &m));
    assert!(sel("JMSReplyTo = '/queue/r'", &m));
    assert!(sel("JMSDeliveryMode = 'PERSISTENT'", &m));
    assert!(sel("JMSDeliveryMode = 'NON_PERSISTENT'", &[]));
    assert!(!sel("JMSPriority > 4", &[]));
}

#[test]
fn errors_name_the_position() {
    assert_eq!(error("(a = 1"), (6, "expected ')'"));
    assert_eq!(error("a = "), (4, "expected an expression"));
    assert_eq!(
        error("a = 1 b"),
        (6, "expected AND, OR or the end of the selector")
    );
    assert_eq!(error("a = 'x"), (4, "unterminated string literal"));
    assert_eq!(error("a = 1)"), (5, "unbalanced ')'"));
    assert_eq!(error("a # 1"), (2, "unexpected character"));
    assert_eq!(error("a IS 1"), (5, "expected NULL"));
    assert_eq!(error("a NOT 1"), (6, "expected BETWEEN, IN or LIKE"));
    assert_eq!(error("a BETWEEN 1 OR 2"), (12, "expected AND"));
    assert_eq!(error("a IN (1)"), (6, "expected a string literal"));
    assert_eq!(error("a IN 'x'"), (5, "expected '('"));
    assert_eq!(
        error("a LIKE 'x' ESCAPE 'ab'"),
        (18, "ESCAPE must be one character")
    );
    assert_eq!(
        error("a LIKE 'x!' ESCAPE '!'"),
        (7, "escape character ends the pattern")
    );
    assert_eq!(
        error("a = 99999999999999999999"),
        (4, "number out of range")
    );
    assert_eq!(error("a = 12abc"), (4, "invalid number"));
    assert_eq!(error("AND = 1"), (0, "unexpected reserved word"));
    assert_eq!(error(""), (0, "empty selector"));
    assert_eq!(error("   "), (0, "empty selector"));
    let e = Selector::parse("(a = 1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid selector at position 6: expected ')'"
    );
}

#[test]
fn too_long_is_refused() {
    let ok = format!("a = '{}'", "x".repeat(MAX_LEN - 6));
    assert_eq!(ok.len(), MAX_LEN);
    assert!(Selector::parse(&ok).is_ok());
    let long = format!("a = '{}'", "x".repeat(MAX_LEN - 5));
    assert_eq!(error(&long), (MAX_LEN, "selector longer than 4096 bytes"));
}

#[test]
fn nesting_is_bounded() {
    let at =
        |n: usize, open: &str, close: &str| format!("{}a = 1{}", open.repeat(n), close.repeat(n));
    assert!(Selector::parse(&at(MAX_DEPTH, "(", ")")).is_ok());
    assert_eq!(
        error(&at(MAX_DEPTH + 1, "(", ")")),
        (MAX_DEPTH, "nested too deeply")
    );
    assert!(Selector::parse(&at(MAX_DEPTH - 1, "NOT ", "")).is_ok());
    assert_eq!(error(&at(MAX_DEPTH + 1, "NOT ", "")).1, "nested too deeply");
    assert_eq!(
        error(&format!("{}a = 1", "- ".repeat(100))).1,
        "nested too deeply"
    );
    // an arithmetic chain is an operator depth
    let chain = format!("a{} = 1", " + a".repeat(MAX_DEPTH + 1));
    assert_eq!(error(&chain).1, "nested too deeply");
    // AND/OR chains are flat: many operands are fine
    let wide = vec!["a = 1"; 300].join(" OR ");
    assert!(sel(&wide, &[("a", "1")]));
    // the deepest inputs within 4 KiB neither overflow nor panic
    for deep in [
        "(".repeat(MAX_LEN),
        "NOT ".repeat(1000),
        "-".repeat(MAX_LEN),
    ] {
        assert_eq!(error(&deep).1, "nested too deeply");
    }
}

#[test]
fn selector_text_debug_and_equality() {
    let s = Selector::parse("a = 1").unwrap();
    assert_eq!(s.as_str(), "a = 1");
    assert_eq!(format!("{s:?}"), "Selector(\"a = 1\")");
    assert_eq!(s, s.clone());
    assert_ne!(s, Selector::parse("a = 2").unwrap());
}

// ---- property tests -------------------------------------------------------

const NAMES: [&str; 3] = ["a", "b", "c"];

fn value_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (-20i64..20).prop_map(|n| Expr::Literal(Literal::Long(n))),
        (-20i32..20).prop_map(|n| Expr::Literal(Literal::Double(f64::from(n) / 4.0))),
        "[a-c']{0,2}".prop_map(|s| Expr::Literal(Literal::Str(s.into()))),
        prop::sample::select(&NAMES[..]).prop_map(|n| Expr::Ident(Ident::new(n))),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (arith_op(), inner.clone(), inner.clone()).prop_map(|(op, l, r)| Expr::Arith(
                op,
                Box::new(l),
                Box::new(r)
            )),
            inner.prop_map(|e| Expr::Neg(Box::new(e))),
        ]
    })
}

fn arith_op() -> impl Strategy<Value = ArithOp> {
    prop::sample::select(&[ArithOp::Add, ArithOp::Sub, ArithOp::Mul, ArithOp::Div][..])
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(
        &[
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ][..],
    )
}

fn condition() -> impl Strategy<Value = Expr> {
    let atom = prop_oneof![
        (cmp_op(), value_expr(), value_expr()).prop_map(|(op, l, r)| Expr::Cmp(
            op,
            Box::new(l),
            Box::new(r)
        )),
        (value_expr(), any::<bool>()).prop_map(|(v, negated)| Expr::IsNull {
            value: Box::new(v),
            negated
        }),
        (
            value_expr(),
            prop::collection::vec("[ab]{0,2}", 1..3),
            any::<bool>()
        )
            .prop_map(|(v, list, negated)| Expr::In {
                value: Box::new(v),
                list: list.into_iter().map(Into::into).collect(),
                negated,
            }),
        (value_expr(), "[ab%_]{0,3}", any::<bool>()).prop_map(|(v, p, negated)| Expr::Like {
            value: Box::new(v),
            pattern: crate::like::Like::new(&p, None).unwrap(),
            negated,
        }),
        (value_expr(), value_expr(), value_expr(), any::<bool>()).prop_map(|(v, l, h, negated)| {
            Expr::Between {
                value: Box::new(v),
                low: Box::new(l),
                high: Box::new(h),
                negated,
            }
        }),
        any::<bool>().prop_map(|b| Expr::Literal(Literal::Bool(b))),
    ];
    atom.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

fn message() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    prop::collection::vec(
        (
            prop::sample::select(&NAMES[..]),
            prop_oneof![
                (-5i32..5).prop_map(|n| n.to_string()),
                Just("1.5".to_owned()),
                Just("true".to_owned()),
                "[ab]{0,2}",
            ],
        ),
        0..3,
    )
}

proptest! {
    #[test]
    fn generated_selectors_round_trip_through_their_text(expr in condition()) {
        let text = expr.to_string();
        let parsed = Selector::parse(&text);
        prop_assert!(parsed.is_ok(), "{text}: {parsed:?}");
        prop_assert_eq!(&parsed.unwrap().inner.expr, &expr, "{}", text);
    }

    #[test]
    fn evaluation_agrees_with_the_reference(expr in condition(), m in message()) {
        let lookup = |name: &str| m.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str());
        let selector = Selector::parse(&expr.to_string()).unwrap();
        prop_assert_eq!(selector.matches(lookup), reference::eval(&expr, &lookup) == reference::V::B(true));
    }

    #[test]
    fn no_input_panics(text in "[ a-c0-9'()=<>+*/%_.,-]{0,60}|(NOT |AND |OR |IN |LIKE |BETWEEN |IS |NULL |ESCAPE |a |1 |'x' |\\( |\\) |= |- ){0,30}") {
        if let Ok(s) = Selector::parse(&text) {
            let _ = s.matches(|n| (n == "a").then_some("1"));
        }
    }
}

/// A second, plainer evaluator (JMS's truth tables written out) to check
/// `eval.rs` against.
mod reference {
    use crate::ast::{ArithOp, CmpOp, Expr, Literal, Source};

    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum V {
        Null,
        B(bool),
        N(f64, bool), // value, exact
        S(String),
    }

    fn num(v: &V) -> Option<(f64, bool)> {
        match v {
            V::N(x, e) => Some((*x, *e)),
            V::S(s) => s.parse::<i64>().map(|n| (n as f64, true)).ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map(|x| (x, false))
            }),
            _ => None,
        }
    }

    fn truth(v: &V) -> Option<bool> {
        match v {
            V::B(b) => Some(*b),
            V::S(s) if s.eq_ignore_ascii_case("true") => Some(true),
            V::S(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    fn tv(t: Option<bool>) -> V {
        t.map_or(V::Null, V::B)
    }

    fn cmp(op: CmpOp, l: &V, r: &V) -> Option<bool> {
        use std::cmp::Ordering;
        let o: Ordering = match (l, r) {
            (V::Null, _) | (_, V::Null) => return None,
            (V::S(a), V::S(b)) => a.cmp(b),
            (V::B(a), other) | (other, V::B(a)) => {
                let b = truth(other)?;
                return match op {
                    CmpOp::Eq => Some(*a == b),
                    CmpOp::Ne => Some(*a != b),
                    _ => None,
                };
            }
            _ => num(l)?.0.partial_cmp(&num(r)?.0)?,
        };
        Some(match op {
            CmpOp::Eq => o.is_eq(),
            CmpOp::Ne => o.is_ne(),
            CmpOp::Lt => o.is_lt(),
            CmpOp::Le => o.is_le(),
            CmpOp::Gt => o.is_gt(),
            CmpOp::Ge => o.is_ge(),
        })
    }

    pub(super) fn eval<'h>(e: &Expr, h: &dyn Fn(&str) -> Option<&'h str>) -> V {
        match e {
            Expr::Literal(Literal::Null) => V::Null,
            Expr::Literal(Literal::Bool(b)) => V::B(*b),
            Expr::Literal(Literal::Long(n)) => V::N(*n as f64, true),
            Expr::Literal(Literal::Double(x)) => V::N(*x, false),
            Expr::Literal(Literal::Str(s)) => V::S(s.to_string()),
            Expr::Ident(i) => match &i.source {
                Source::Header(n) => h(n).map_or(V::Null, |v| V::S(v.to_owned())),
                Source::DeliveryMode => unreachable!(),
            },
            Expr::Neg(x) => num(&eval(x, h)).map_or(V::Null, |(x, e)| V::N(-x, e)),
            Expr::Arith(op, l, r) => {
                let (Some((a, ea)), Some((b, eb))) = (num(&eval(l, h)), num(&eval(r, h))) else {
                    return V::Null;
                };
                let exact = ea && eb;
                match op {
                    ArithOp::Add => V::N(a + b, exact),
                    ArithOp::Sub => V::N(a - b, exact),
                    ArithOp::Mul => V::N(a * b, exact),
                    ArithOp::Div if exact && b == 0.0 => V::Null,
                    ArithOp::Div if exact => V::N((a / b).trunc(), true),
                    ArithOp::Div => V::N(a / b, false),
                }
            }
            Expr::Cmp(op, l, r) => tv(cmp(*op, &eval(l, h), &eval(r, h))),
            Expr::And(xs) => {
                let ts: Vec<_> = xs.iter().map(|x| truth(&eval(x, h))).collect();
                tv(if ts.contains(&Some(false)) {
                    Some(false)
                } else if ts.contains(&None) {
                    None
                } else {
                    Some(true)
                })
            }
            Expr::Or(xs) => {
                let ts: Vec<_> = xs.iter().map(|x| truth(&eval(x, h))).collect();
                tv(if ts.contains(&Some(true)) {
                    Some(true)
                } else if ts.contains(&None) {
                    None
                } else {
                    Some(false)
                })
            }
            Expr::Not(x) => tv(truth(&eval(x, h)).map(|b| !b)),
            Expr::Between {
                value,
                low,
                high,
                negated,
            } => {
                let v = eval(value, h);
                let ge = cmp(CmpOp::Ge, &v, &eval(low, h));
                let le = cmp(CmpOp::Le, &v, &eval(high, h));
                let both = match (ge, le) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                tv(both.map(|b| b != *negated))
            }
            Expr::In {
                value,
                list,
                negated,
            } => match eval(value, h) {
                V::S(s) => V::B(list.iter().any(|x| **x == *s) != *negated),
                _ => V::Null,
            },
            Expr::Like {
                value,
                pattern,
                negated,
            } => match eval(value, h) {
                V::S(s) => V::B(pattern.matches(&s) != *negated),
                _ => V::Null,
            },
            Expr::IsNull { value, negated } => V::B((eval(value, h) == V::Null) != *negated),
        }
    }
}
