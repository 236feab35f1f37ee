//! The one task that owns the [`Router`]: it drains the router's command
//! channel in batches, runs the questions of the admin API and the metrics
//! endpoint (`Shared::ask`) between commands, and links the router to the
//! store.
//!
//! Owns the channel's capacity (back-pressure on publishers beyond it), the
//! batch size (after which the router flushes its per-batch counters and its
//! store units go to the store's writer), the router's clock (set once per
//! batch) and handing the store's completions back to the router (RECEIPTs
//! that waited for the disk). What a command does is the router's (`router/`);
//! who sends them is the connections' (`connection.rs`) and the metrics
//! endpoint's; writing is the store's (`store/`), and in cluster mode what
//! the cluster does is the `cluster` module's: the router's cluster units go
//! to it after each batch (awaited: back-pressure on the router when NATS
//! is slow) and its completions come back as the store's do.

use crate::router::{ClusterUnit, Router};
use crate::shared::ToRouter;
use crate::store::{Completion, Store};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Commands per router batch.
const BATCH: usize = 512;
/// Router channel capacity (back-pressure on publishers beyond it).
const CHANNEL: usize = 16 * 1024;

/// The router's command channel.
pub(crate) fn channel() -> (mpsc::Sender<ToRouter>, mpsc::Receiver<ToRouter>) {
    mpsc::channel(CHANNEL)
}

/// An open store and its writer's completions.
pub(crate) struct StoreLink {
    /// The store (its writer stops when this is dropped, after a last sync).
    pub(crate) store: Store,
    /// What the writer reports.
    pub(crate) completions: mpsc::UnboundedReceiver<Completion>,
}

/// What the router task holds of the cluster (cluster mode).
pub(crate) struct ClusterLink {
    /// Where the router's cluster units go, a batch at a time.
    pub(crate) units: mpsc::Sender<Vec<ClusterUnit>>,
    /// Units done (or failed), in order.
    pub(crate) completions: mpsc::UnboundedReceiver<Completion>,
}

/// Runs `router` until every sender of its channel is gone.
pub(crate) async fn run(
    mut router: Router,
    mut rx: mpsc::Receiver<ToRouter>,
    mut store: Option<StoreLink>,
    mut cluster: Option<ClusterLink>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let completion = async {
            match store.as_mut() {
                Some(link) => link.completions.recv().await,
                None => std::future::pending().await,
            }
        };
        let clustered = async {
            match cluster.as_mut() {
                Some(link) => link.completions.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            Some(done) = completion => complete(&mut router, done),
            Some(done) = clustered => complete(&mut router, done),
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                handle_batch(&mut router, &mut batch);
                if let Some(link) = &store {
                    let units = router.take_units();
                    if !units.is_empty() {
                        link.store.submit(units);
                    }
                }
                if let Some(link) = &cluster {
                    let units = router.take_cluster_units();
                    if !units.is_empty() && link.units.send(units).await.is_err() {
                        tracing::error!("cluster writer gone");
                    }
                }
            }
        }
    }
}

/// One batch of commands and requests, in order.
fn handle_batch(router: &mut Router, batch: &mut Vec<ToRouter>) {
    router.set_now(now_ms());
    for item in batch.drain(..) {
        match item {
            ToRouter::Command(cmd) => router.handle(cmd),
            ToRouter::Admin(job) => job(router),
            ToRouter::Cluster(event) => router.cluster_event(event),
        }
    }
    router.flush_metrics();
}

/// The store's report: RECEIPTs that waited go, or their connections get ERROR.
fn complete(router: &mut Router, done: Completion) {
    match done {
        Completion::Durable(seq) => router.durable(seq),
        Completion::Failed { first, last, error } => router.write_failed(first, last, &error),
    }
}

/// Now, in ms since the Unix epoch (0 if the clock is before it).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
