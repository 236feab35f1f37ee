//! The heart-beat timer of one connection, without a clock (H4, H5).
//!
//! Owns [`HeartBeater`]: given the negotiated [`HeartBeatIntervals`], it tracks
//! when this side last sent and last received anything and says when a beat is
//! due or the peer has gone silent for too long. Time comes in as `now`, in the
//! style of quinn-proto: the caller asks [`HeartBeater::poll_timeout`] when to
//! wake up, and calls [`HeartBeater::handle_timeout`] then. It does no I/O and
//! never reads the clock; writing the EOL and closing the connection are the
//! caller's job.

use crate::HeartBeatIntervals;
use std::time::{Duration, Instant};

/// What [`HeartBeater::handle_timeout`] asks the caller to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartBeatAction {
    /// Nothing has been sent for a whole send interval: write an EOL (H4), then
    /// call [`HeartBeater::on_sent`].
    SendBeat,
    /// Nothing has been received for `grace` × the receive interval (H5): the
    /// peer is considered dead; close the connection.
    PeerDead,
}

/// The heart-beat timer of one connection; sans-IO, driven by `now`.
///
/// Both the send deadline and the receive deadline start counting at the
/// `now` given to [`HeartBeater::new`] (normally when CONNECTED was sent or
/// received). Any bytes from the peer, frames or beats, push the receive deadline
/// back (H5); anything this side writes pushes the send deadline back, so no
/// beat is sent while real frames flow.
///
/// Intervals too long to add to an [`Instant`] (a peer may ask for `u64::MAX` ms)
/// mean that deadline never comes.
///
/// ```
/// use std::time::{Duration, Instant};
/// use stompkit_negotiate::{HeartBeatAction, HeartBeatIntervals, HeartBeater};
///
/// let start = Instant::now();
/// let second = Duration::from_secs(1);
/// let intervals = HeartBeatIntervals { send: Some(second), receive: Some(second) };
/// let mut beater = HeartBeater::new(intervals, 2.0, start);
///
/// assert_eq!(beater.poll_timeout(), Some(start + second));
/// assert_eq!(beater.handle_timeout(start + second), Some(HeartBeatAction::SendBeat));
/// beater.on_sent(start + second); // after writing "\n"
/// assert_eq!(beater.handle_timeout(start + second), None);
/// // The peer said nothing for 2 × 1 s.
/// assert_eq!(beater.handle_timeout(start + 2 * second), Some(HeartBeatAction::PeerDead));
/// ```
#[derive(Clone, Debug)]
pub struct HeartBeater {
    intervals: HeartBeatIntervals,
    grace: f64,
    /// `grace` × the receive interval; `None` when not receiving or too long.
    silence_allowed: Option<Duration>,
    last_sent: Instant,
    last_received: Instant,
}

impl HeartBeater {
    /// A timer for `intervals`, starting at `now`.
    ///
    /// `grace` is the error margin of H5: the peer is dead after `grace` × the
    /// receive interval without a byte from it (common practice: 1.5 to 2.0).
    /// A `grace` below 1.0, or NaN, is taken as 1.0 (never stricter than the
    /// negotiated interval); an infinite one means the peer is never declared
    /// dead.
    pub fn new(intervals: HeartBeatIntervals, grace: f64, now: Instant) -> HeartBeater {
        // `!(grace >= 1.0)` also catches NaN.
        let grace = if grace >= 1.0 { grace } else { 1.0 };
        let silence_allowed = intervals
            .receive
            .and_then(|r| Duration::try_from_secs_f64(r.as_secs_f64() * grace).ok());
        HeartBeater {
            intervals,
            grace,
            silence_allowed,
            last_sent: now,
            last_received: now,
        }
    }

    /// The intervals this timer was made with.
    pub fn intervals(&self) -> HeartBeatIntervals {
        self.intervals
    }

    /// The error margin in use (after the adjustment described in [`HeartBeater::new`]).
    pub fn grace(&self) -> f64 {
        self.grace
    }

    /// Bytes arrived from the peer (a frame, part of one, or a beat): it is alive
    /// (H5). A `now` earlier than one already seen is ignored.
    pub fn on_received(&mut self, now: Instant) {
        self.last_received = self.last_received.max(now);
    }

    /// This side wrote something (a frame or a beat). A `now` earlier than one
    /// already seen is ignored.
    pub fn on_sent(&mut self, now: Instant) {
        self.last_sent = self.last_sent.max(now);
    }

    /// When a beat is due if nothing is written before; `None` when this side
    /// does not send beats.
    pub fn next_beat_at(&self) -> Option<Instant> {
        self.intervals
            .send
            .and_then(|s| self.last_sent.checked_add(s))
    }

    /// When the peer will be considered dead if nothing arrives before; `None`
    /// when the peer does not send beats.
    pub fn peer_dead_at(&self) -> Option<Instant> {
        self.silence_allowed
            .and_then(|d| self.last_received.checked_add(d))
    }

    /// The earliest instant at which [`HeartBeater::handle_timeout`] has
    /// something to do: the earlier of [`HeartBeater::next_beat_at`] and
    /// [`HeartBeater::peer_dead_at`]. `None` when neither direction is active.
    /// It may lie in the past when a beat is overdue.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_beat_at(), self.peer_dead_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What to do at `now`, if anything. [`HeartBeatAction::PeerDead`] wins over
    /// [`HeartBeatAction::SendBeat`] when both are due.
    ///
    /// The timer does not assume the beat was written: after `SendBeat` the
    /// caller writes an EOL and calls [`HeartBeater::on_sent`]; until then every
    /// call answers `SendBeat` again. `PeerDead` likewise repeats until
    /// [`HeartBeater::on_received`].
    pub fn handle_timeout(&mut self, now: Instant) -> Option<HeartBeatAction> {
        if self.peer_dead_at().is_some_and(|t| now >= t) {
            Some(HeartBeatAction::PeerDead)
        } else if self.next_beat_at().is_some_and(|t| now >= t) {
            Some(HeartBeatAction::SendBeat)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HeartBeat, negotiate_heartbeat};

    const MS: Duration = Duration::from_millis(1);

    fn both(send_ms: u32, receive_ms: u32) -> HeartBeatIntervals {
        HeartBeatIntervals {
            send: Some(send_ms * MS),
            receive: Some(receive_ms * MS),
        }
    }

    #[test]
    fn h4_beats_at_the_send_interval() {
        let t0 = Instant::now();
        let mut b = HeartBeater::new(
            HeartBeatIntervals {
                send: Some(1000 * MS),
                receive: None,
            },
            1.5,
            t0,
        );
        assert_eq!(b.poll_timeout(), Some(t0 + 1000 * MS));
        assert_eq!(b.handle_timeout(t0 + 999 * MS), None);
        for k in 1..=5u32 {
            let t = t0 + k * 1000 * MS;
            assert_eq!(b.poll_timeout(), Some(t));
            assert_eq!(
                b.handle_timeout(t),
                Some(HeartBeatAction::SendBeat),
                "beat {k}"
            );
            b.on_sent(t);
            assert_eq!(b.handle_timeout(t), None);
        }
    }

    #[test]
    fn h4_overdue_beat_repeats_until_sent() {
        let t0 = Instant::now();
        let mut b = HeartBeater::new(
            HeartBeatIntervals {
                send: Some(100 * MS),
                receive: None,
            },
            1.5,
            t0,
        );
        assert_eq!(
            b.handle_timeout(t0 + 350 * MS),
            Some(HeartBeatAction::SendBeat)
        );
        assert_eq!(
            b.handle_timeout(t0 + 351 * MS),
            Some(HeartBeatAction::SendBeat)
        );
        assert!(b.poll_timeout().is_some_and(|t| t < t0 + 351 * MS)); // in the past
        b.on_sent(t0 + 351 * MS);
        assert_eq!(b.poll_timeout(), Some(t0 + 451 * MS));
    }

    #[test]
    fn h4_no_beat_when_something_was_sent_recently() {
        let t0 = Instant::now();
        let mut b = HeartBeater::new(
            HeartBeatIntervals {
                send: Some(1000 * MS),
                receive: None,
            },
            1.5,
            t0,
        );
        b.on_sent(t0 + 600 * MS); // a SEND frame went out
        assert_eq!(b.handle_timeout(t0 + 1000 * MS), None);
        assert_eq!(b.handle_timeout(t0 + 1599 * MS), None);
        assert_eq!(b.poll_timeout(), Some(t0 + 1600 * MS));
        assert_eq!(
            b.handle_timeout(t0 + 1600 * MS),
            Some(HeartBeatAction::SendBeat)
        );
        // An out-of-order older `now` does not pull the deadline back.
        b.on_sent(t0 + 100 * MS);
        assert_eq!(b.next_beat_at(), Some(t0 + 1600 * MS));
    }

    #[test]
    fn h5_peer_dead_after_grace_times_interval_and_not_before() {
        for (grace, dead_ms) in [(1.5, 1500), (2.0, 2000), (1.0, 1000)] {
            let t0 = Instant::now();
            let mut b = HeartBeater::new(
                HeartBeatIntervals {
                    send: None,
                    receive: Some(1000 * MS),
                },
                grace,
                t0,
            );
            assert_eq!(b.peer_dead_at(), Some(t0 + dead_ms * MS));
            if grace > 1.0 {
                assert_eq!(
                    b.handle_timeout(t0 + 1000 * MS),
                    None,
                    "grace {grace}: one interval is not enough"
                );
            }
            assert_eq!(
                b.handle_timeout(t0 + (dead_ms - 1) * MS),
                None,
                "grace {grace}"
            );
            assert_eq!(
                b.handle_timeout(t0 + dead_ms * MS),
                Some(HeartBeatAction::PeerDead),
                "grace {grace}"
            );
            assert_eq!(
                b.handle_timeout(t0 + (dead_ms + 5000) * MS),
                Some(HeartBeatAction::PeerDead)
            );
        }
    }

    #[test]
    fn h5_any_received_bytes_reset_the_deadline() {
        let t0 = Instant::now();
        let mut b = HeartBeater::new(
            HeartBeatIntervals {
                send: None,
                receive: Some(1000 * MS),
            },
            2.0,
            t0,
        );
        b.on_received(t0 + 1900 * MS);
        assert_eq!(b.handle_timeout(t0 + 2000 * MS), None);
        assert_eq!(b.handle_timeout(t0 + 3899 * MS), None);
        assert_eq!(b.poll_timeout(), Some(t0 + 3900 * MS));
        assert_eq!(
            b.handle_timeout(t0 + 3900 * MS),
            Some(HeartBeatAction::PeerDead)
        );
        b.on_received(t0 + 3950 * MS); // late, but it did speak
        assert_eq!(b.handle_timeout(t0 + 3950 * MS), None);
        b.on_received(t0); // older than seen: ignored
        assert_eq!(b.peer_dead_at(), Some(t0 + 5950 * MS));
    }

    #[test]
    fn h5_receiving_does_not_count_as_sending() {
        let t0 = Instant::now();
        let mut b = HeartBeater::new(both(1000, 1000), 2.0, t0);
        b.on_received(t0 + 900 * MS);
        assert_eq!(
            b.handle_timeout(t0 + 1000 * MS),
            Some(HeartBeatAction::SendBeat)
        );
        b.on_sent(t0 + 1000 * MS);
        // And sending does not keep the peer alive.
        for k in 2..=3u32 {
            b.on_sent(t0 + k * 1000 * MS);
        }
        assert_eq!(
            b.handle_timeout(t0 + 2900 * MS),
            Some(HeartBeatAction::PeerDead)
        );
    }

    #[test]
    fn peer_dead_has_priority_over_send_beat() {
        let t0 = Instant::now();
        let mut b = HeartBeater::new(both(1000, 500), 2.0, t0);
        // At t0+1000 both are due: the beat (1000) and death (2 × 500).
        assert_eq!(
            b.handle_timeout(t0 + 1000 * MS),
            Some(HeartBeatAction::PeerDead)
        );
        b.on_received(t0 + 1000 * MS);
        assert_eq!(
            b.handle_timeout(t0 + 1000 * MS),
            Some(HeartBeatAction::SendBeat)
        );
    }

    #[test]
    fn poll_timeout_is_the_earlier_deadline() {
        let t0 = Instant::now();
        // Send every 1000, dead after 2 × 300 = 600: death first.
        let b = HeartBeater::new(both(1000, 300), 2.0, t0);
        assert_eq!(b.poll_timeout(), Some(t0 + 600 * MS));
        // Send every 400, dead after 1.5 × 1000 = 1500: beat first.
        let mut b = HeartBeater::new(both(400, 1000), 1.5, t0);
        assert_eq!(b.poll_timeout(), Some(t0 + 400 * MS));
        b.on_sent(t0 + 1400 * MS);
        assert_eq!(b.poll_timeout(), Some(t0 + 1500 * MS));
        // Only one direction on.
        let b = HeartBeater::new(
            HeartBeatIntervals {
                send: None,
                receive: Some(100 * MS),
            },
            1.5,
            t0,
        );
        assert_eq!(b.poll_timeout(), Some(t0 + 150 * MS));
        assert_eq!(b.next_beat_at(), None);
    }

    #[test]
    fn both_directions_off_never_times_out() {
        let t0 = Instant::now();
        let mut b = HeartBeater::new(HeartBeatIntervals::OFF, 2.0, t0);
        assert_eq!(b.poll_timeout(), None);
        assert_eq!(
            b.handle_timeout(t0 + Duration::from_secs(86_400 * 365)),
            None
        );
        // H2 + H3: a peer without a heart-beat header turns everything off.
        let intervals = negotiate_heartbeat(
            HeartBeat::new(1000, 1000),
            HeartBeat::from_header(None).unwrap(),
        );
        assert_eq!(HeartBeater::new(intervals, 1.5, t0).poll_timeout(), None);
    }

    #[test]
    fn huge_intervals_and_odd_grace_do_not_panic() {
        let t0 = Instant::now();
        let huge = negotiate_heartbeat(
            HeartBeat::new(u64::MAX, u64::MAX),
            HeartBeat::new(u64::MAX, u64::MAX),
        );
        let mut b = HeartBeater::new(huge, f64::MAX, t0);
        let _ = b.poll_timeout();
        assert_eq!(b.handle_timeout(t0 + Duration::from_secs(3600)), None);
        let b = HeartBeater::new(both(100, 100), f64::NAN, t0);
        assert_eq!(b.grace(), 1.0);
        assert_eq!(b.peer_dead_at(), Some(t0 + 100 * MS));
        let b = HeartBeater::new(both(100, 100), 0.1, t0);
        assert_eq!(b.peer_dead_at(), Some(t0 + 100 * MS));
        let b = HeartBeater::new(both(100, 100), f64::INFINITY, t0);
        assert_eq!(b.peer_dead_at(), None);
        assert_eq!(b.poll_timeout(), Some(t0 + 100 * MS));
    }

    #[test]
    fn two_sides_in_simulated_time_agree() {
        // Client: can send every 1 s, wants every 1 s. Server: can send every 1.5 s, wants every 0.5 s.
        let client = HeartBeat::new(1000, 1000);
        let server = HeartBeat::new(1500, 500);
        let t0 = Instant::now();
        let mut c = HeartBeater::new(negotiate_heartbeat(client, server), 1.5, t0);
        let mut s = HeartBeater::new(negotiate_heartbeat(server, client), 1.5, t0);
        // Run 60 simulated seconds in 10 ms steps with zero-latency delivery: nobody dies.
        let mut now = t0;
        let (mut c_beats, mut s_beats) = (0, 0);
        while now < t0 + Duration::from_secs(60) {
            now += 10 * MS;
            if c.handle_timeout(now) == Some(HeartBeatAction::SendBeat) {
                c.on_sent(now);
                s.on_received(now);
                c_beats += 1;
            }
            if s.handle_timeout(now) == Some(HeartBeatAction::SendBeat) {
                s.on_sent(now);
                c.on_received(now);
                s_beats += 1;
            }
            assert_ne!(c.handle_timeout(now), Some(HeartBeatAction::PeerDead));
            assert_ne!(s.handle_timeout(now), Some(HeartBeatAction::PeerDead));
        }
        assert_eq!(c_beats, 60); // every max(1000, 500) ms
        assert_eq!(s_beats, 40); // every max(1500, 1000) ms
        // Then the client goes silent: the server gives up after 1.5 × 1 s.
        let silent_from = now;
        let mut dead_at = None;
        while dead_at.is_none() {
            now += 10 * MS;
            if s.handle_timeout(now) == Some(HeartBeatAction::PeerDead) {
                dead_at = Some(now);
            } else if s.handle_timeout(now) == Some(HeartBeatAction::SendBeat) {
                s.on_sent(now);
            }
        }
        assert_eq!(dead_at, Some(silent_from + 1500 * MS));
    }
}
