//! Flow control: when a publisher pauses, when a slow subscriber is dropped or
//! closed, and when a held-back queue resumes, as pure functions and one small
//! state machine, with no I/O, no clock and no runtime.
//!
//! Owns the rules and their constants: the congestion level of an outbox, the
//! publisher's pause state ([`Publisher`]) and its transitions, the reader's
//! pause timeout and exemption ([`MAX_PAUSE`], [`EXEMPT`], [`Exemption`]), what
//! a topic does with a full subscriber ([`slow_topic_subscriber`]) and when a
//! write regains room. It does not own the bytes, the atomics or the wake-ups:
//! the [`Outbox`](crate::outbox::Outbox) stores a [`Publisher`] in an atomic and
//! applies [`Publisher::next`] to it, the router calls these functions per
//! delivery, and the connection's reader and writer act on the outcome.
//!
//! # Levels of a subscriber's outbox
//!
//! Bytes queued plus bytes being written, against the outbox's bound
//! (`max_outbox_bytes`) and its congestion level ([`congestion_level`]: an
//! eighth of the bound, at least 64 KiB, at most the bound):
//!
//! | level        | topic message                         | queue message                          | publisher of the message |
//! |--------------|---------------------------------------|----------------------------------------|--------------------------|
//! | below congestion | delivered                         | delivered                              | keeps reading            |
//! | congested (at or above the level, below the bound) | delivered | delivered                    | [`Event::Park`]ed on this outbox |
//! | full (at or above the bound) | missed (counted as dropped); with `slow_consumer = disconnect` the subscriber's connection is closed with ERROR `slow consumer` | held by the queue; the outbox is marked blocked, and its writer sends the router `Drained` once a write takes it below the bound | — |
//!
//! When a write takes the outbox from full to below the bound, its reader gets
//! room again ([`regained_room`]); when it takes it below the congestion level,
//! or the outbox closes, every publisher parked on it gets [`Event::Release`].
//!
//! # The publisher's state
//!
//! One per connection (its outbox, as a publisher). States × events → next
//! state and action (`—`: no change, nothing done):
//!
//! | state \ event | `Park` (router delivered its message into a congested outbox) | `Release` (that outbox drained or closed) | `PauseTimedOut` (reader waited [`MAX_PAUSE`]) | `ExemptionEnded` ([`EXEMPT`] after the timeout) |
//! |---------------|-----------------------------------------|-------------------------------|---------------------------------|----------------------|
//! | `Reading`     | `Paused`: reader stops reading; registered with that outbox | —               | `Exempt`                        | —                    |
//! | `Paused`      | — (registered once)                     | `Reading`: reader woken       | `Exempt`: reader reads again    | —                    |
//! | `Exempt`      | — (never paused)                        | —                             | —                               | `Reading`            |
//!
//! So a publisher faster than its subscribers is slowed to their pace by TCP
//! back-pressure instead of filling their outboxes to the slow-consumer bound,
//! and a subscriber that stopped reading stalls a publisher for at most
//! [`MAX_PAUSE`] at a time: the publisher is then exempt for [`EXEMPT`], the
//! subscriber's outbox reaches the bound, and the slow-consumer policy applies.
//!
//! # The reader's side
//!
//! The connection's reader reads nothing while its state is `Paused`, waits at
//! most [`MAX_PAUSE`] for the wake-up ([`Exemption::pause_deadline`]), then
//! feeds `PauseTimedOut` and starts an [`Exemption`] (ending [`EXEMPT`] later); once [`Exemption::expire`] says it
//! ended it feeds `ExemptionEnded`. Time is passed in (any `Instant`-like type),
//! so all of this is testable without a runtime.

use crate::config::SlowConsumer;
use std::ops::Add;
use std::time::Duration;

/// Longest a publisher's reader waits, paused, for a congested receiver to drain.
pub const MAX_PAUSE: Duration = Duration::from_secs(2);
/// How long a publisher whose pause timed out is not paused again.
pub const EXEMPT: Duration = Duration::from_secs(5);
/// The congestion level is the bound divided by this...
pub const CONGESTION_DIVISOR: usize = 8;
/// ...but at least this many bytes (and at most the bound).
pub const MIN_CONGESTION: usize = 64 * 1024;

/// Queued bytes from which publishers delivering to an outbox bounded at
/// `bound` bytes are paused.
pub fn congestion_level(bound: usize) -> usize {
    (bound / CONGESTION_DIVISOR).max(MIN_CONGESTION).min(bound)
}

/// Whether a write of `written` bytes, out of `before` queued, took an outbox
/// bounded at `bound` from full to below its bound (its reader may read again).
#[inline]
pub fn regained_room(before: usize, written: usize, bound: usize) -> bool {
    before >= bound && before - written < bound
}

/// A publisher's pause state (see the module docs' table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Publisher {
    /// Reading normally.
    Reading = 0,
    /// Reading paused until released (or the pause times out).
    Paused = 1,
    /// Its last pause timed out: not paused again until the exemption ends.
    Exempt = 2,
}

/// What happens to a publisher (see the module docs' table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The router delivered its message into a congested outbox.
    Park,
    /// The outbox it was parked on drained below congestion, or closed.
    Release,
    /// Its reader waited [`MAX_PAUSE`] without a release.
    PauseTimedOut,
    /// [`EXEMPT`] passed since the pause timed out.
    ExemptionEnded,
}

impl Publisher {
    /// The state after `event`, or `None` when the event changes nothing.
    /// `Reading` → `Paused` means: register with the congested outbox;
    /// `Paused` → `Reading`: wake the reader.
    #[inline]
    pub fn next(self, event: Event) -> Option<Publisher> {
        match (self, event) {
            (Publisher::Reading, Event::Park) => Some(Publisher::Paused),
            (Publisher::Paused, Event::Release) => Some(Publisher::Reading),
            (Publisher::Reading | Publisher::Paused, Event::PauseTimedOut) => {
                Some(Publisher::Exempt)
            }
            (Publisher::Exempt, Event::ExemptionEnded) => Some(Publisher::Reading),
            _ => None,
        }
    }

    /// The state stored as `byte` (by [`Publisher::as_byte`]).
    #[inline]
    pub fn from_byte(byte: u8) -> Publisher {
        match byte {
            1 => Publisher::Paused,
            2 => Publisher::Exempt,
            _ => Publisher::Reading,
        }
    }

    /// The state as a byte, for an atomic.
    #[inline]
    pub fn as_byte(self) -> u8 {
        self as u8
    }
}

/// What a topic does with a message for a subscriber whose outbox is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowAction {
    /// The subscriber misses it (counted as dropped).
    Miss,
    /// It misses it and its connection is closed with ERROR `slow consumer`.
    Close,
}

/// The slow-consumer policy for a topic subscriber whose outbox is full.
#[inline]
pub fn slow_topic_subscriber(policy: SlowConsumer) -> SlowAction {
    match policy {
        SlowConsumer::Drop => SlowAction::Miss,
        SlowConsumer::Disconnect => SlowAction::Close,
    }
}

/// The reader's side of publisher pausing: when a pause wait gives up and
/// when the exemption that follows ends. `T` is an instant (`std` or tokio).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exemption<T> {
    until: Option<T>,
}

impl<T> Default for Exemption<T> {
    fn default() -> Self {
        Exemption { until: None }
    }
}

impl<T: Copy + Ord + Add<Duration, Output = T>> Exemption<T> {
    /// When a pause wait that began at `waiting_since` gives up.
    pub fn pause_deadline(waiting_since: T) -> T {
        waiting_since + MAX_PAUSE
    }

    /// Starts the exemption after a pause timed out at `now` (feed
    /// [`Event::PauseTimedOut`]); returns when it ends.
    pub fn start(&mut self, now: T) -> T {
        let until = now + EXEMPT;
        self.until = Some(until);
        until
    }

    /// When the running exemption ends, if one runs.
    pub fn exempt_until(&self) -> Option<T> {
        self.until
    }

    /// `true` once, at the first `now` at or after the exemption's end: feed
    /// [`Event::ExemptionEnded`] then.
    pub fn expire(&mut self, now: T) -> bool {
        if self.until.is_some_and(|t| t <= now) {
            self.until = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_state_table_holds() {
        use Event::*;
        use Publisher::*;
        let table = [
            (Reading, Park, Some(Paused)),
            (Reading, Release, None),
            (Reading, PauseTimedOut, Some(Exempt)),
            (Reading, ExemptionEnded, None),
            (Paused, Park, None),
            (Paused, Release, Some(Reading)),
            (Paused, PauseTimedOut, Some(Exempt)),
            (Paused, ExemptionEnded, None),
            (Exempt, Park, None),
            (Exempt, Release, None),
            (Exempt, PauseTimedOut, None),
            (Exempt, ExemptionEnded, Some(Reading)),
        ];
        for (state, event, next) in table {
            assert_eq!(state.next(event), next, "{state:?} × {event:?}");
            assert_eq!(Publisher::from_byte(state.as_byte()), state);
        }
    }

    #[test]
    fn congestion_is_an_eighth_of_the_bound_at_least_64_kib_at_most_the_bound() {
        assert_eq!(congestion_level(1 << 20), 128 * 1024);
        assert_eq!(congestion_level(256 * 1024), 64 * 1024);
        assert_eq!(congestion_level(1000), 1000);
    }

    #[test]
    fn room_is_regained_only_when_a_write_crosses_the_bound() {
        assert!(regained_room(10, 1, 10));
        assert!(!regained_room(9, 1, 10), "was not full");
        assert!(!regained_room(20, 5, 10), "still full");
    }

    #[test]
    fn slow_topic_subscribers_miss_messages_or_are_closed() {
        assert_eq!(slow_topic_subscriber(SlowConsumer::Drop), SlowAction::Miss);
        assert_eq!(
            slow_topic_subscriber(SlowConsumer::Disconnect),
            SlowAction::Close
        );
    }

    #[test]
    fn a_pause_gives_up_after_max_pause_and_the_exemption_ends_after_exempt() {
        let t0 = Instant::now();
        assert_eq!(Exemption::pause_deadline(t0), t0 + MAX_PAUSE);
        let mut exemption = Exemption::default();
        assert!(!exemption.expire(t0), "none running");
        let until = exemption.start(t0);
        assert_eq!(exemption.exempt_until(), Some(t0 + EXEMPT));
        assert!(!exemption.expire(until - Duration::from_millis(1)));
        assert!(exemption.expire(until));
        assert!(!exemption.expire(until), "once");
        assert_eq!(exemption.exempt_until(), None);
    }
}
