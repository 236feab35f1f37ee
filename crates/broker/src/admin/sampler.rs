//! Message rates: one sample per second of messages published and delivered,
//! the last five minutes kept.
//!
//! Owns the [`History`] `/api/overview` shows (its `rates` and `history`) and
//! the sampler task that fills it from the broker's counters
//! (`messages_in`, `messages_out`) while the admin listener runs.

use crate::metrics::Metrics;
use crate::registry::unix_ms;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Samples kept: five minutes, one per second.
pub(super) const KEEP: usize = 300;

/// Samples averaged into the current rates.
const RATE_WINDOW: usize = 5;

/// The time between two samples.
const PERIOD: Duration = Duration::from_secs(1);

/// One second's rates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Sample {
    /// When it was taken, in Unix milliseconds.
    pub(crate) t: u64,
    /// Messages published per second.
    pub(crate) published_per_s: f64,
    /// Messages delivered per second.
    pub(crate) delivered_per_s: f64,
}

/// The current rates: the last few samples' average.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Rates {
    /// Messages published per second.
    pub(crate) published_per_s: f64,
    /// Messages delivered per second.
    pub(crate) delivered_per_s: f64,
}

/// The last [`KEEP`] samples, oldest first.
#[derive(Debug, Default)]
pub(crate) struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    /// Adds a sample, dropping the oldest beyond [`KEEP`].
    pub(crate) fn push(&self, sample: Sample) {
        let mut samples = self.lock();
        if samples.len() == KEEP {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Every sample kept, oldest first.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        self.lock().iter().copied().collect()
    }

    /// The average of the last [`RATE_WINDOW`] samples (zero before the first).
    pub(crate) fn rates(&self) -> Rates {
        let samples = self.lock();
        let recent: Vec<&Sample> = samples.iter().rev().take(RATE_WINDOW).collect();
        if recent.is_empty() {
            return Rates::default();
        }
        let n = recent.len() as f64;
        Rates {
            published_per_s: recent.iter().map(|s| s.published_per_s).sum::<f64>() / n,
            delivered_per_s: recent.iter().map(|s| s.delivered_per_s).sum::<f64>() / n,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Sample>> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The counters at one instant.
#[derive(Clone, Copy, Debug)]
struct Reading {
    at: Instant,
    published: u64,
    delivered: u64,
}

impl Reading {
    fn now(metrics: &Metrics) -> Reading {
        Reading {
            at: Instant::now(),
            published: Metrics::get(&metrics.messages_in),
            delivered: Metrics::get(&metrics.messages_out),
        }
    }

    /// The rates from `before` to this reading, taken at `t` (Unix ms).
    fn since(&self, before: &Reading, t: u64) -> Sample {
        let secs = self.at.duration_since(before.at).as_secs_f64().max(1e-3);
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
        Sample {
            t,
            published_per_s: rate(self.published, before.published),
            delivered_per_s: rate(self.delivered, before.delivered),
        }
    }
}

/// Samples the counters into `history` once a second, forever (the broker
/// aborts the task when it stops). The first reading is taken now, not when
/// the task first runs, so every message counted after this call shows in a
/// sample.
pub(crate) fn run(
    history: Arc<History>,
    metrics: Arc<Metrics>,
) -> impl std::future::Future<Output = ()> + Send {
    let mut last = Reading::now(&metrics);
    let mut ticks = tokio::time::interval_at(last.at + PERIOD, PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    async move {
        loop {
            ticks.tick().await;
            let now = Reading::now(&metrics);
            history.push(now.since(&last, unix_ms()));
            last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64, published: f64) -> Sample {
        Sample {
            t,
            published_per_s: published,
            delivered_per_s: published * 2.0,
        }
    }

    #[test]
    fn five_minutes_are_kept_oldest_first() {
        let history = History::default();
        assert_eq!(history.rates(), Rates::default());
        for t in 0..KEEP as u64 + 10 {
            history.push(sample(t, t as f64));
        }
        let samples = history.samples();
        assert_eq!(samples.len(), KEEP);
        assert_eq!(samples[0].t, 10, "the oldest were dropped");
        assert_eq!(samples[KEEP - 1].t, KEEP as u64 + 9);
    }

    #[test]
    fn rates_are_the_last_five_samples_average() {
        let history = History::default();
        history.push(sample(0, 100.0));
        history.push(sample(1, 4.0));
        assert_eq!(history.rates().published_per_s, 52.0);
        for t in 2..7 {
            history.push(sample(t, 10.0));
        }
        assert_eq!(history.rates().published_per_s, 10.0);
        assert_eq!(history.rates().delivered_per_s, 20.0);
    }

    #[test]
    fn a_sample_is_the_counters_change_per_second() {
        let at = Instant::now();
        let before = Reading {
            at,
            published: 10,
            delivered: 0,
        };
        let after = Reading {
            at: at + Duration::from_secs(2),
            published: 30,
            delivered: 5,
        };
        let s = after.since(&before, 7);
        assert_eq!((s.t, s.published_per_s, s.delivered_per_s), (7, 10.0, 2.5));
    }

    #[tokio::test(start_paused = true)]
    async fn the_sampler_takes_one_sample_per_second() {
        let (history, metrics) = (Arc::new(History::default()), Arc::new(Metrics::default()));
        let task = tokio::spawn(run(history.clone(), metrics.clone()));
        tokio::time::sleep(Duration::from_millis(500)).await;
        Metrics::add(&metrics.messages_in, 3);
        tokio::time::sleep(Duration::from_secs(3)).await;
        task.abort();
        let samples = history.samples();
        assert_eq!(samples.len(), 3, "{samples:?}");
        assert_eq!(samples[0].published_per_s, 3.0, "{samples:?}");
        assert_eq!(samples[1].published_per_s, 0.0);
    }
}
