//! What every connection task shares: the broker's configuration, the router's
//! command channel, the counters, the authenticator, the shutdown signal, the
//! registry of open sessions and, in relay mode, the upstream.
//!
//! Owns [`Shared`] (built once by `server.rs`, handed to the accept loops and
//! every connection) and [`ToRouter`], what goes down the router's channel. It
//! does not own the router itself (`router_task.rs` runs it) nor any socket.

use crate::auth::Authenticator;
use crate::config::BrokerConfig;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::reload::{Live, Signals};
use crate::router::{ConnId, Router, RouterCommand};
use crate::tls::Certificates;
use crate::upstream::Upstream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot, watch};

/// What goes to the router task.
pub(crate) enum ToRouter {
    /// A session's command.
    Command(RouterCommand),
    /// The admin API's or the metrics endpoint's question or change, run on
    /// the router task ([`Shared::ask`]).
    Admin(Box<dyn FnOnce(&mut Router) + Send>),
    /// What the cluster hands the router (cluster mode).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Cluster(crate::router::ClusterEvent),
}

/// State every connection task shares.
pub(crate) struct Shared {
    /// The broker's configuration.
    pub(crate) config: Arc<BrokerConfig>,
    /// The router task's command channel.
    pub(crate) router: mpsc::Sender<ToRouter>,
    /// The live counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Decides logins, and what a configuration reload replaces.
    pub(crate) live: Live,
    /// Becomes `true` when the broker shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Relay mode: the upstream every client session is relayed to.
    pub(crate) upstream: Option<Arc<Upstream>>,
    /// The open sessions, for the admin API.
    pub(crate) registry: Arc<Registry>,
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
            live: Live::new(&config, auth, None),
            config,
            router,
            metrics,
            shutdown,
            upstream,
            registry: Arc::default(),
            next_conn: AtomicU64::new(1),
        }
    }

    /// Runs `question` on the router task, between two command batches, and
    /// returns its answer; `None` once the router is gone (shutting down).
    pub(crate) async fn ask<T: Send + 'static>(
        &self,
        question: impl FnOnce(&mut Router) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job = Box::new(move |router: &mut Router| {
            // The asker gave up (its timeout): nobody to answer.
            let _ = tx.send(question(router));
        });
        self.router.send(ToRouter::Admin(job)).await.ok()?;
        rx.await.ok()
    }

    /// The authenticator deciding logins now (a reload may replace it).
    pub(crate) fn authenticator(&self) -> Arc<Authenticator> {
        self.live.authenticator()
    }

    /// A receiver that changes at each configuration reload and when the
    /// broker shuts down (what connections wait on).
    pub(crate) fn signals(&self) -> watch::Receiver<Signals> {
        self.live.subscribe()
    }

    /// TLS listeners present `certificates`, which reloads replace.
    pub(crate) fn with_certificates(mut self, certificates: Option<Arc<Certificates>>) -> Shared {
        self.live = Live::new(&self.config, self.live.authenticator(), certificates);
        self
    }

    /// A fresh connection id.
    pub(crate) fn next_conn(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}
