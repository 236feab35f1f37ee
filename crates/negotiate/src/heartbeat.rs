//! The `heart-beat` header and the negotiated beat intervals (H1–H3).
//!
//! Owns the header value [`HeartBeat`] (`cx,cy` in milliseconds), its strict
//! parsing and its spelling, the server-side [`HeartBeat::clamp`], and the
//! negotiation formula [`negotiate_heartbeat`]. Keeping time is
//! [`crate::HeartBeater`]'s job, not this module's.

use crate::{NegotiateError, grammar};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A `heart-beat` header value: `cx,cy` in milliseconds (H1).
///
/// `cx` is the smallest interval at which the frame's sender can send beats
/// (0 = it cannot), `cy` the interval at which it would like to receive them
/// (0 = it does not want any). The default, `0,0`, is also what a missing header
/// means (H2).
///
/// Parsing is strict: two non-negative decimal integers separated by one comma,
/// nothing else — no spaces, no sign, no third value. Any value that fits in a
/// `u64` is accepted (leading zeros too); larger ones are an error. Values above
/// `u32::MAX` (about 49.7 days) are *not* rejected: the spec sets no bound, and
/// [`crate::HeartBeater`] treats an interval too long to represent as "never".
/// A server that wants sane bounds uses [`HeartBeat::clamp`].
///
/// ```
/// use stompkit_negotiate::HeartBeat;
///
/// let hb: HeartBeat = "10000,0".parse().unwrap();
/// assert_eq!(hb, HeartBeat { cx: 10000, cy: 0 });
/// assert_eq!(hb.to_string(), "10000,0");
/// assert!(HeartBeat::parse("10000, 0").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct HeartBeat {
    /// The sender of the frame can send a beat at least every `cx` ms; 0 = never.
    pub cx: u64,
    /// The sender of the frame wants a beat at least every `cy` ms; 0 = never.
    pub cy: u64,
}

impl HeartBeat {
    /// `0,0`: no beats either way, the meaning of a missing header (H2).
    pub const OFF: HeartBeat = HeartBeat { cx: 0, cy: 0 };

    /// A header value from its two numbers in milliseconds.
    pub const fn new(cx: u64, cy: u64) -> HeartBeat {
        HeartBeat { cx, cy }
    }

    /// Reads a `heart-beat` header value strictly (H1); see the type's docs.
    ///
    /// # Errors
    /// [`NegotiateError::BadHeartBeat`] for anything but `digits,digits` that fit in
    /// a `u64`.
    pub fn parse(value: &str) -> Result<HeartBeat, NegotiateError> {
        grammar::heart_beat_pair(value)
            .map(|(cx, cy)| HeartBeat { cx, cy })
            .ok_or(NegotiateError::BadHeartBeat)
    }

    /// Reads the header as found in a frame: `None` (no header) is `0,0` (H2).
    ///
    /// # Errors
    /// [`NegotiateError::BadHeartBeat`] when the header is present but malformed.
    ///
    /// ```
    /// use stompkit_negotiate::HeartBeat;
    /// assert_eq!(HeartBeat::from_header(None).unwrap(), HeartBeat::OFF);
    /// assert_eq!(HeartBeat::from_header(Some("5,7")).unwrap(), HeartBeat::new(5, 7));
    /// ```
    pub fn from_header(value: Option<&str>) -> Result<HeartBeat, NegotiateError> {
        value.map_or(Ok(HeartBeat::OFF), HeartBeat::parse)
    }

    /// Bounds both numbers to `[min, max]` milliseconds, leaving 0 ("never") as 0.
    ///
    /// Meant for a server, in the manner of RabbitMQ and ActiveMQ which bound what
    /// clients ask for: clamp the client's `heart-beat` before negotiating so that
    /// a client can neither make the server beat every millisecond (`cy` too
    /// small) nor stay silent for a month (`cx` too large), nor ask the server to
    /// wait that long. A client that turns a direction off keeps it off.
    ///
    /// If `min > max`, `max` wins. A `max` of 0 therefore turns every direction
    /// off.
    ///
    /// ```
    /// use stompkit_negotiate::HeartBeat;
    /// let asked = HeartBeat::new(1, 0);
    /// assert_eq!(asked.clamp(1_000, 60_000), HeartBeat::new(1_000, 0));
    /// assert_eq!(HeartBeat::new(u64::MAX, 500).clamp(1_000, 60_000), HeartBeat::new(60_000, 1_000));
    /// ```
    #[must_use]
    pub fn clamp(self, min: u64, max: u64) -> HeartBeat {
        let bound = |ms: u64| if ms == 0 { 0 } else { ms.max(min).min(max) };
        HeartBeat {
            cx: bound(self.cx),
            cy: bound(self.cy),
        }
    }

    /// `0,0`: this side neither sends nor wants beats.
    pub const fn is_off(self) -> bool {
        self.cx == 0 && self.cy == 0
    }
}

impl fmt::Display for HeartBeat {
    /// Writes the header value, `cx,cy`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.cx, self.cy)
    }
}

impl FromStr for HeartBeat {
    type Err = NegotiateError;
    /// Same as [`HeartBeat::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HeartBeat::parse(s)
    }
}

/// The two negotiated beat directions, from one side's point of view (H3).
///
/// `None` means no beats in that direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct HeartBeatIntervals {
    /// This side must send something (a frame or an EOL) at least this often (H4).
    pub send: Option<Duration>,
    /// The peer must send something at least this often; silence for longer (plus
    /// a margin, H5) means the peer is dead.
    pub receive: Option<Duration>,
}

impl HeartBeatIntervals {
    /// No beats in either direction.
    pub const OFF: HeartBeatIntervals = HeartBeatIntervals {
        send: None,
        receive: None,
    };

    /// Neither direction is active.
    pub const fn is_off(&self) -> bool {
        self.send.is_none() && self.receive.is_none()
    }
}

/// Negotiates the beat intervals from one side's point of view (H3).
///
/// `ours` is the `heart-beat` this side put in its frame (CONNECT for a client,
/// CONNECTED for a server), `theirs` the one the peer put in its frame. The
/// formula is symmetric, so the same call serves client and server:
///
/// - send every `max(ours.cx, theirs.cy)` ms, unless either is 0;
/// - receive every `max(ours.cy, theirs.cx)` ms, unless either is 0.
///
/// Hence one side's `send` is always the other side's `receive`.
///
/// ```
/// use std::time::Duration;
/// use stompkit_negotiate::{HeartBeat, negotiate_heartbeat};
///
/// let client = HeartBeat::new(4000, 0);    // can send every 4 s, wants nothing
/// let server = HeartBeat::new(10000, 6000); // can send every 10 s, wants every 6 s
/// let c = negotiate_heartbeat(client, server);
/// assert_eq!(c.send, Some(Duration::from_millis(6000)));
/// assert_eq!(c.receive, None);
/// assert_eq!(negotiate_heartbeat(server, client).receive, c.send);
/// ```
pub fn negotiate_heartbeat(ours: HeartBeat, theirs: HeartBeat) -> HeartBeatIntervals {
    HeartBeatIntervals {
        send: interval(ours.cx, theirs.cy),
        receive: interval(ours.cy, theirs.cx),
    }
}

/// `max(a, b)` ms, or `None` when either side said 0.
fn interval(a: u64, b: u64) -> Option<Duration> {
    (a != 0 && b != 0).then(|| Duration::from_millis(a.max(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn h1_accepts_two_non_negative_integers() {
        assert_eq!(HeartBeat::parse("0,0"), Ok(HeartBeat::new(0, 0)));
        assert_eq!(
            HeartBeat::parse("1000,1000"),
            Ok(HeartBeat::new(1000, 1000))
        );
        assert_eq!(
            HeartBeat::parse("10000,250"),
            Ok(HeartBeat::new(10000, 250))
        );
        assert_eq!(HeartBeat::parse("0010,0"), Ok(HeartBeat::new(10, 0)));
        assert_eq!(
            HeartBeat::parse("4294967296,0"),
            Ok(HeartBeat::new(1 << 32, 0))
        ); // above u32::MAX: kept
        assert_eq!(
            HeartBeat::parse("18446744073709551615,1"),
            Ok(HeartBeat::new(u64::MAX, 1))
        );
        assert_eq!("5,6".parse::<HeartBeat>(), Ok(HeartBeat::new(5, 6)));
    }

    #[test]
    fn h1_rejects_everything_else() {
        let bad = [
            "",
            ",",
            "1,",
            ",1",
            "1",
            "a,b",
            "1,b",
            "-1,0",
            "0,-1",
            "+1,0",
            "0,+1",
            " 1,0",
            "1 ,0",
            "1, 0",
            "1,0 ",
            "1,2,3",
            "1;2",
            "1.5,0",
            "0x10,0",
            "1,0\n",
            "１,0",
            "18446744073709551616,0", // u64::MAX + 1
            "0,99999999999999999999999",
        ];
        for value in bad {
            assert_eq!(
                HeartBeat::parse(value),
                Err(NegotiateError::BadHeartBeat),
                "{value:?}"
            );
            assert_eq!(
                HeartBeat::from_header(Some(value)),
                Err(NegotiateError::BadHeartBeat),
                "{value:?}"
            );
            assert!(value.parse::<HeartBeat>().is_err(), "{value:?}");
        }
    }

    #[test]
    fn h1_display_writes_cx_comma_cy() {
        assert_eq!(HeartBeat::new(10000, 0).to_string(), "10000,0");
        assert_eq!(HeartBeat::default().to_string(), "0,0");
    }

    #[test]
    fn h2_missing_header_is_0_0() {
        assert_eq!(HeartBeat::from_header(None), Ok(HeartBeat::new(0, 0)));
        assert_eq!(HeartBeat::from_header(Some("0,0")), Ok(HeartBeat::OFF));
        assert!(HeartBeat::from_header(None).unwrap().is_off());
        assert_eq!(
            negotiate_heartbeat(
                HeartBeat::new(1000, 1000),
                HeartBeat::from_header(None).unwrap()
            ),
            HeartBeatIntervals::OFF
        );
    }

    #[test]
    fn h3_formula_table() {
        // (client cx,cy), (server sx,sy) -> client send (= server receive), client receive (= server send)
        type Row = ((u64, u64), (u64, u64), Option<Duration>, Option<Duration>);
        let table: [Row; 11] = [
            ((0, 0), (0, 0), None, None),
            ((1000, 1000), (0, 0), None, None),
            ((0, 0), (1000, 1000), None, None),
            ((1000, 1000), (1000, 1000), ms(1000), ms(1000)),
            ((1000, 5000), (2000, 3000), ms(3000), ms(5000)), // send max(cx=1000, sy=3000); recv max(cy=5000, sx=2000)
            ((4000, 500), (2000, 3000), ms(4000), ms(2000)),
            ((1000, 0), (2000, 3000), ms(3000), None), // client wants no beats
            ((0, 1000), (2000, 3000), None, ms(2000)), // client cannot send
            ((1000, 1000), (0, 3000), ms(3000), None), // server cannot send
            ((1000, 1000), (2000, 0), None, ms(2000)), // server wants no beats
            ((u64::MAX, 1), (1, u64::MAX), ms(u64::MAX), ms(1)),
        ];
        for ((cx, cy), (sx, sy), send, receive) in table {
            let client = HeartBeat::new(cx, cy);
            let server = HeartBeat::new(sx, sy);
            let c = negotiate_heartbeat(client, server);
            let s = negotiate_heartbeat(server, client);
            assert_eq!(
                c,
                HeartBeatIntervals { send, receive },
                "client view of {client} / {server}"
            );
            assert_eq!(
                s,
                HeartBeatIntervals {
                    send: receive,
                    receive: send
                },
                "server view of {client} / {server}"
            );
        }
    }

    #[test]
    fn clamp_bounds_non_zero_values_only() {
        assert_eq!(
            HeartBeat::new(0, 0).clamp(1000, 60000),
            HeartBeat::new(0, 0)
        );
        assert_eq!(
            HeartBeat::new(1, 0).clamp(1000, 60000),
            HeartBeat::new(1000, 0)
        );
        assert_eq!(
            HeartBeat::new(0, 999_999).clamp(1000, 60000),
            HeartBeat::new(0, 60000)
        );
        assert_eq!(
            HeartBeat::new(5000, 7000).clamp(1000, 60000),
            HeartBeat::new(5000, 7000)
        );
        assert_eq!(
            HeartBeat::new(1000, 60000).clamp(1000, 60000),
            HeartBeat::new(1000, 60000)
        );
        // min > max: max wins, no panic.
        assert_eq!(
            HeartBeat::new(5, 50_000).clamp(2000, 1000),
            HeartBeat::new(1000, 1000)
        );
        // max 0 turns everything off.
        assert_eq!(HeartBeat::new(5, 50_000).clamp(0, 0), HeartBeat::OFF);
    }

    proptest! {
        #[test]
        fn h1_parse_display_round_trip(cx in any::<u64>(), cy in any::<u64>()) {
            let hb = HeartBeat::new(cx, cy);
            prop_assert_eq!(HeartBeat::parse(&hb.to_string()), Ok(hb));
        }

        #[test]
        fn h1_parse_never_panics_and_accepts_only_the_grammar(s in "\\PC{0,24}") {
            if let Ok(hb) = HeartBeat::parse(&s) {
                // Whatever parses is digits,digits; it re-prints the same up to leading zeros.
                prop_assert!(s.bytes().all(|b| b.is_ascii_digit() || b == b','));
                prop_assert_eq!(s.bytes().filter(|&b| b == b',').count(), 1);
                prop_assert_eq!(HeartBeat::parse(&hb.to_string()), Ok(hb));
            }
        }

        #[test]
        fn h3_client_send_is_server_receive(cx in 0u64..100_000, cy in 0u64..100_000, sx in 0u64..100_000, sy in 0u64..100_000) {
            let client = HeartBeat::new(cx, cy);
            let server = HeartBeat::new(sx, sy);
            let c = negotiate_heartbeat(client, server);
            let s = negotiate_heartbeat(server, client);
            prop_assert_eq!(c.send, s.receive);
            prop_assert_eq!(c.receive, s.send);
            if let Some(send) = c.send {
                prop_assert!(send >= Duration::from_millis(cx) && send >= Duration::from_millis(sy));
            }
        }

        #[test]
        fn clamp_keeps_zero_and_stays_in_bounds(cx in any::<u64>(), cy in any::<u64>(), min in 0u64..10_000, span in 0u64..100_000) {
            let max = min + span;
            let c = HeartBeat::new(cx, cy).clamp(min, max);
            for (before, after) in [(cx, c.cx), (cy, c.cy)] {
                if before == 0 { prop_assert_eq!(after, 0); } else { prop_assert!(after >= min && after <= max); }
            }
        }
    }
}
