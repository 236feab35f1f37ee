//! The small grammars of the negotiation headers, written with `nom`.
//!
//! Owns the byte-level shape of an `accept-version` list and of a `heart-beat`
//! pair: what is well formed and what is not. It does not decide which versions
//! are known or what the numbers mean; [`crate::version`] and [`crate::heartbeat`]
//! do that with what these parsers return.
//!
//! Both grammars are strict: no spaces, no signs, no empty elements. Every parser
//! here is wrapped in `all_consuming`, so trailing bytes are an error.

use nom::bytes::complete::tag;
use nom::character::complete::{char, digit1};
use nom::combinator::{all_consuming, map_res, recognize};
use nom::multi::{many0, separated_list1};
use nom::{IResult, Parser};

/// One version number in an `accept-version` list: `1*DIGIT *("." 1*DIGIT)`,
/// such as `1.2`, `2.0` or `3`. Whether it is a version we know is decided later.
fn version_number(input: &str) -> IResult<&str, &str> {
    recognize((digit1, many0((char('.'), digit1)))).parse(input)
}

/// A whole `accept-version` value: one or more version numbers separated by
/// single commas. Returns the tokens in the order given.
pub(crate) fn version_list(input: &str) -> Option<Vec<&str>> {
    all_consuming(separated_list1(tag(","), version_number))
        .parse(input)
        .ok()
        .map(|(_, tokens)| tokens)
}

/// A non-negative decimal integer that fits in a `u64`: digits only (no sign,
/// no spaces). Leading zeros are allowed (`"007"` is 7).
fn millis(input: &str) -> IResult<&str, u64> {
    map_res(digit1, str::parse::<u64>).parse(input)
}

/// A whole `heart-beat` value: `millis "," millis`.
pub(crate) fn heart_beat_pair(input: &str) -> Option<(u64, u64)> {
    all_consuming((millis, char(','), millis))
        .parse(input)
        .ok()
        .map(|(_, (cx, _, cy))| (cx, cy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_list_shapes() {
        // V1: comma-separated list.
        assert_eq!(version_list("1.0,1.1,1.2"), Some(vec!["1.0", "1.1", "1.2"]));
        assert_eq!(version_list("2.0"), Some(vec!["2.0"]));
        assert_eq!(version_list("3"), Some(vec!["3"]));
        assert_eq!(version_list("1.2.3"), Some(vec!["1.2.3"]));
        for bad in [
            "", ",", "1.0,", ",1.0", "1.0,,1.1", "1.0, 1.1", " 1.0", "1.0 ", "v1.0", "1.", ".1",
            "1..0", "1.0;1.1",
        ] {
            assert_eq!(version_list(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn heart_beat_pair_shapes() {
        // H1: two non-negative integers.
        assert_eq!(heart_beat_pair("0,0"), Some((0, 0)));
        assert_eq!(heart_beat_pair("10000,250"), Some((10000, 250)));
        assert_eq!(heart_beat_pair("007,0"), Some((7, 0)));
        assert_eq!(
            heart_beat_pair(&format!("{},{}", u64::MAX, u64::MAX)),
            Some((u64::MAX, u64::MAX))
        );
        assert_eq!(heart_beat_pair("18446744073709551616,0"), None); // u64::MAX + 1
    }
}
