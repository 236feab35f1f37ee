//! Failed logins per client address, in bounded memory.
//!
//! Owns the count of recent failures per IP address (forgotten after a quiet
//! window) and of logins in progress per address, and turns them into delays: a
//! failed login waits `base × 2^(failures − 1)` (capped) before its ERROR, and a
//! login from an address with recent failures waits as long before it is even
//! checked, so guessing from one address slows down exponentially, whether the
//! attempts come one after another or in parallel. An address with no failures
//! is never delayed. At most `capacity` addresses are tracked: when full, expired
//! entries go first, then the least recently failed. Time is passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Addresses tracked at most (about 50 bytes each).
pub const CAPACITY: usize = 10_000;

/// Failures are forgotten after this long without a new one.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    in_progress: u32,
    last: Instant,
}

/// The failure table. See the module docs.
#[derive(Debug)]
pub struct Failures {
    entries: HashMap<IpAddr, Entry>,
    capacity: usize,
    window: Duration,
    base: Duration,
    max: Duration,
}

impl Failures {
    /// A table of at most `capacity` addresses; delays start at `base` and stop
    /// growing at `max`.
    pub fn new(capacity: usize, window: Duration, base: Duration, max: Duration) -> Failures {
        Failures {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            window,
            base,
            max: max.max(base),
        }
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Recent failures from `addr`.
    pub fn failures(&self, addr: IpAddr, now: Instant) -> u32 {
        self.live(addr, now).map_or(0, |e| e.failures)
    }

    /// A login from `addr` starts: how long it must wait before it is checked
    /// (zero unless the address has recent failures). Pair with [`finish`](Self::finish).
    pub fn begin(&mut self, addr: IpAddr, now: Instant) -> Duration {
        let window = self.window;
        let Some(entry) = self.entries.get_mut(&addr) else {
            return Duration::ZERO;
        };
        if now.saturating_duration_since(entry.last) >= window {
            entry.failures = 0;
        }
        entry.in_progress += 1;
        if entry.failures == 0 {
            return Duration::ZERO;
        }
        let n = entry.failures + entry.in_progress - 1;
        self.delay(n)
    }

    /// The login from `addr` ended. A failure is counted and returns the delay
    /// before its ERROR; a success forgets the address's failures.
    pub fn finish(&mut self, addr: IpAddr, failed: bool, now: Instant) -> Duration {
        if let Some(entry) = self.entries.get_mut(&addr) {
            entry.in_progress = entry.in_progress.saturating_sub(1);
        }
        if !failed {
            if self.entries.get(&addr).is_some_and(|e| e.in_progress == 0) {
                self.entries.remove(&addr);
            } else if let Some(entry) = self.entries.get_mut(&addr) {
                entry.failures = 0;
            }
            return Duration::ZERO;
        }
        if !self.entries.contains_key(&addr) && self.entries.len() >= self.capacity {
            self.make_room(now);
        }
        let window = self.window;
        let entry = self.entries.entry(addr).or_insert(Entry {
            failures: 0,
            in_progress: 0,
            last: now,
        });
        if now.saturating_duration_since(entry.last) >= window {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        let n = entry.failures;
        self.delay(n)
    }

    /// A login from `addr` was abandoned before its outcome (no failure counted).
    pub fn cancel(&mut self, addr: IpAddr) {
        if let Some(entry) = self.entries.get_mut(&addr) {
            entry.in_progress = entry.in_progress.saturating_sub(1);
        }
    }

    /// `base × 2^(n − 1)`, capped at `max`; zero for `n = 0`.
    fn delay(&self, n: u32) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (n - 1).min(20);
        self.base.saturating_mul(factor).min(self.max)
    }

    fn live(&self, addr: IpAddr, now: Instant) -> Option<&Entry> {
        self.entries
            .get(&addr)
            .filter(|e| now.saturating_duration_since(e.last) < self.window)
    }

    /// Drops expired entries; if none expired, the least recently failed one.
    fn make_room(&mut self, now: Instant) {
        let window = self.window;
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last) < window);
        if self.entries.len() >= self.capacity
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last)
                .map(|(addr, _)| *addr)
        {
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_millis(1600);

    fn table(capacity: usize) -> Failures {
        Failures::new(capacity, Duration::from_secs(60), BASE, MAX)
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn clean_address_is_never_delayed() {
        let mut t = table(10);
        let now = Instant::now();
        assert_eq!(t.begin(ip(1), now), Duration::ZERO);
        assert_eq!(t.finish(ip(1), false, now), Duration::ZERO);
        assert!(t.is_empty());
    }

    #[test]
    fn failures_double_the_delay_up_to_the_cap() {
        let mut t = table(10);
        let now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..7 {
            let before = t.begin(ip(1), now);
            let after = t.finish(ip(1), true, now);
            delays.push((before.as_millis(), after.as_millis()));
        }
        assert_eq!(
            delays,
            [
                (0, 100),
                (100, 200),
                (200, 400),
                (400, 800),
                (800, 1600),
                (1600, 1600),
                (1600, 1600)
            ]
        );
        assert_eq!(t.failures(ip(1), now), 7);
        assert_eq!(t.failures(ip(2), now), 0, "other addresses are unaffected");
        assert_eq!(t.begin(ip(2), now), Duration::ZERO);
    }

    #[test]
    fn parallel_attempts_from_a_failing_address_queue_up() {
        let mut t = table(10);
        let now = Instant::now();
        t.begin(ip(1), now);
        t.finish(ip(1), true, now);
        // Three logins at once from the same address: each waits longer.
        let waits: Vec<_> = (0..3).map(|_| t.begin(ip(1), now).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400]);
        // Abandoned ones stop counting.
        t.cancel(ip(1));
        t.cancel(ip(1));
        assert_eq!(t.begin(ip(1), now).as_millis(), 200);
    }

    #[test]
    fn success_forgets_and_window_expires() {
        let mut t = table(10);
        let now = Instant::now();
        t.begin(ip(1), now);
        t.finish(ip(1), true, now);
        t.begin(ip(1), now);
        assert_eq!(t.finish(ip(1), false, now), Duration::ZERO);
        assert_eq!(t.failures(ip(1), now), 0);
        assert!(t.is_empty());

        t.begin(ip(2), now);
        t.finish(ip(2), true, now);
        let later = now + Duration::from_secs(61);
        assert_eq!(t.failures(ip(2), later), 0);
        assert_eq!(t.begin(ip(2), later), Duration::ZERO);
        assert_eq!(
            t.finish(ip(2), true, later),
            BASE,
            "count restarted after the window"
        );
    }

    #[test]
    fn memory_is_bounded_by_capacity() {
        let mut t = table(100);
        let start = Instant::now();
        for n in 0..10_000u32 {
            let now = start + Duration::from_millis(u64::from(n));
            t.begin(ip(n), now);
            t.finish(ip(n), true, now);
            assert!(t.len() <= 100);
        }
        // The most recent failures survive eviction.
        let end = start + Duration::from_millis(9_999);
        assert_eq!(t.failures(ip(9_999), end), 1);
        assert_eq!(t.failures(ip(0), end), 0);
    }
}
