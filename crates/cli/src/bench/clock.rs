//! The run's clock: one [`Instant`] base shared by publishers (who stamp bodies)
//! and subscribers (who read the stamps), so a latency is a difference of two
//! readings of the same monotonic clock in one process.

use std::sync::OnceLock;
use std::time::Instant;

static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds from the clock base to `at` (0 for instants before the base).
#[inline]
pub fn nanos_at(at: Instant) -> u64 {
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(base).as_nanos()).unwrap_or(u64::MAX)
}

/// Fixes the base (call once at start, before any stamp).
pub fn init() {
    let _ = BASE.get_or_init(Instant::now);
}
