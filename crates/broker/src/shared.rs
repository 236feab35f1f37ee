//! What every connection task shares: the broker's configuration, the router's
//! command channel, the counters, the authenticator, the shutdown signal and, in
//! relay mode, the upstream.
//!
//! Owns [`Shared`] (built once by `server.rs`, handed to the accept loops and
//! every connection) and [`ToRouter`], what goes down the router's channel. It
//! does not own the router itself (`router_task.rs` runs it) nor any socket.

use crate::auth::Authenticator;
use crate::config::BrokerConfig;
use crate::metrics::{Metrics, QueueStat};
use crate::router::{ConnId, RouterCommand};
use crate::upstream::Upstream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot, watch};

/// What goes to the router task.
pub(crate) enum ToRouter {
    /// A session's command.
    Command(RouterCommand),
    /// The metrics endpoint asks for queue depths.
    Stats(oneshot::Sender<Vec<QueueStat>>),
}

/// State every connection task shares.
pub(crate) struct Shared {
    /// The broker's configuration.
    pub(crate) config: Arc<BrokerConfig>,
    /// The router task's command channel.
    pub(crate) router: mpsc::Sender<ToRouter>,
    /// The live counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Decides logins.
    pub(crate) auth: Arc<Authenticator>,
    /// Becomes `true` when the broker shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Relay mode: the upstream every client session is relayed to.
    pub(crate) upstream: Option<Arc<Upstream>>,
    next_conn: AtomicU64,
}

impl Shared {
    /// The shared state; connection ids start at 1.
    pub(crate) fn new(
        config: Arc<BrokerConfig>,
        router: mpsc::Sender<ToRouter>,
        metrics: Arc<Metrics>,
        auth: Arc<Authenticator>,
        shutdown: watch::Receiver<bool>,
        upstream: Option<Arc<Upstream>>,
    ) -> Shared {
        Shared {
            config,
            router,
            metrics,
            auth,
            shutdown,
            upstream,
            next_conn: AtomicU64::new(1),
        }
    }

    /// A fresh connection id.
    pub(crate) fn next_conn(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}
