//! The one task that owns the [`Router`]: it drains the router's command
//! channel in batches and answers the metrics endpoint's queue-depth requests.
//!
//! Owns the channel's capacity (back-pressure on publishers beyond it) and the
//! batch size, after which the router flushes its per-batch counters. What a
//! command does is the router's (`router/`); who sends them is the
//! connections' (`connection.rs`) and the metrics endpoint's.

use crate::router::Router;
use crate::shared::ToRouter;
use tokio::sync::mpsc;

/// Commands per router batch.
const BATCH: usize = 512;
/// Router channel capacity (back-pressure on publishers beyond it).
const CHANNEL: usize = 16 * 1024;

/// The router's command channel.
pub(crate) fn channel() -> (mpsc::Sender<ToRouter>, mpsc::Receiver<ToRouter>) {
    mpsc::channel(CHANNEL)
}

/// Runs `router` until every sender of its channel is gone.
pub(crate) async fn run(mut router: Router, mut rx: mpsc::Receiver<ToRouter>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        for item in batch.drain(..) {
            match item {
                ToRouter::Command(cmd) => router.handle(cmd),
                ToRouter::Stats(reply) => {
                    // The metrics request gave up (its timeout): nobody to answer.
                    let _ = reply.send(router.queue_stats());
                }
            }
        }
        router.flush_metrics();
    }
}
