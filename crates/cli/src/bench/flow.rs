//! The publishers' window: how far publishing may run ahead of delivery.
//!
//! A load generator that writes as fast as TCP takes its SENDs measures the
//! broker's buffers as much as its speed: a broker that reads faster than it
//! delivers piles up a backlog (its latency grows, a topic's slow-consumer
//! limit trips, the drain at the end takes minutes). So publishers keep at most
//! `window` deliveries outstanding: every message sent adds its fan-out, every
//! MESSAGE a subscriber reads (warm-up and measured alike) takes one off, and a
//! publisher whose next batch would overflow the window waits for subscribers to
//! catch up. The offered load is then exactly what the broker delivers, for
//! every broker alike. A broker that loses messages would hold the window shut
//! forever, so a wait gives up after `patience` and the run goes on (the report
//! shows the loss).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Shared by the publishers and subscribers of one run.
#[derive(Debug)]
pub struct Window {
    /// Most deliveries outstanding (0: no window).
    limit: u64,
    /// Deliveries the messages sent so far are expected to make.
    sent: AtomicU64,
    /// MESSAGE frames received so far.
    received: AtomicU64,
    /// A publisher is waiting for room.
    waiting: AtomicBool,
    room: Notify,
    patience: Duration,
}

impl Window {
    /// A window of `limit` deliveries (0: unlimited); a publisher waits at most
    /// `patience` for room.
    pub fn new(limit: u64, patience: Duration) -> Window {
        Window {
            limit,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
            room: Notify::new(),
            patience,
        }
    }

    /// The limit (0: none).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn outstanding(&self) -> u64 {
        let sent = self.sent.load(Ordering::SeqCst);
        sent.saturating_sub(self.received.load(Ordering::SeqCst))
    }

    /// Waits until `deliveries` more fit (at once when the window is empty, so
    /// a batch larger than the window still goes), then counts them as sent.
    pub async fn acquire(&self, deliveries: u64) {
        if self.limit > 0 && deliveries > 0 {
            let give_up = tokio::time::Instant::now() + self.patience;
            loop {
                let outstanding = self.outstanding();
                if outstanding == 0 || outstanding + deliveries <= self.limit {
                    break;
                }
                let notified = self.room.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                self.waiting.store(true, Ordering::SeqCst);
                // Re-check after announcing: a subscriber may have just read.
                let outstanding = self.outstanding();
                if outstanding == 0 || outstanding + deliveries <= self.limit {
                    break;
                }
                if tokio::time::timeout_at(give_up, notified).await.is_err() {
                    break;
                }
            }
        }
        self.sent.fetch_add(deliveries, Ordering::SeqCst);
    }

    /// A subscriber read `n` MESSAGE frames.
    pub fn received(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.received.fetch_add(n, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) && self.waiting.swap(false, Ordering::SeqCst) {
            self.room.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_publisher_waits_for_deliveries_and_gives_up_after_its_patience() {
        let w = Arc::new(Window::new(10, Duration::from_secs(30)));
        w.acquire(8).await;
        let blocked = tokio::spawn({
            let w = w.clone();
            async move { w.acquire(5).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!blocked.is_finished(), "8 + 5 > 10");
        w.received(3);
        tokio::time::timeout(Duration::from_secs(5), blocked)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(w.outstanding(), 10);
        // Nothing arrives: the wait ends after the patience.
        let impatient = Window::new(10, Duration::from_millis(100));
        impatient.acquire(10).await;
        let started = std::time::Instant::now();
        impatient.acquire(1).await;
        assert!(started.elapsed() >= Duration::from_millis(90));
        // No window: never waits.
        let open = Window::new(0, Duration::from_secs(30));
        open.acquire(1 << 40).await;
        open.acquire(1).await;
    }
}
