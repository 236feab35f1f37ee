//! The server: binding, starting and stopping a broker.
//!
//! Owns process-level plumbing: checking what must hold before anything is bound
//! (TLS keys, `[relay]`, `[auth]`, the listen entries: `check.rs`),
//! binding every `--listen` address (with what each serves: TCP STOMP,
//! WebSocket, or both), the metrics address and the admin address, starting
//! the router task (`router_task.rs`), one accept loop per listener
//! (`accept.rs`), the metrics endpoint (`metrics_endpoint.rs`) and the admin
//! listener (`admin/`), raising `RLIMIT_NOFILE`, and
//! graceful shutdown (stop accepting, ERROR `server shutting down` to every
//! client, close within `shutdown_timeout_ms`). [`Broker::bind`] is what
//! `main.rs` and the integration tests call.

use crate::accept::accept_loop;
use crate::admin;
use crate::auth::Authenticator;
use crate::check::{self, StartError};
use crate::config::{BrokerConfig, ListenSpec, StoreConfig};
use crate::metrics::Metrics;
use crate::metrics_endpoint::serve_metrics;
use crate::reload::{self, ReloadError, Reloaded};
use crate::router::Router;
use crate::router_task::{self, StoreLink};
use crate::serve::Listener;
use crate::shared::Shared;
use crate::store::{Recovered, Store, StoreOptions};
use crate::tls;
use crate::upstream::Upstream;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stompkit_ws::WsServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Entry point: bind and run a broker.
///
/// ```no_run
/// # async fn run() -> Result<(), stompkit_broker::StartError> {
/// use stompkit_broker::{Broker, BrokerConfig};
/// let mut config = BrokerConfig::default();
/// config.server.listen = vec!["127.0.0.1:0".into()];
/// let broker = Broker::bind(config).await?;
/// println!("on {}", broker.local_addrs()[0]);
/// broker.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Broker;

/// One bound listener and what it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundListener {
    /// The bound address (the real port when configured with port 0).
    pub addr: SocketAddr,
    /// Serves STOMP over TCP (`stomp://addr`).
    pub stomp: bool,
    /// Serves STOMP over WebSocket and the demo page (`ws://addr/ws`).
    pub websocket: bool,
    /// Speaks TLS first (`stomp+ssl://addr`, `wss://addr/ws`).
    pub tls: bool,
}

/// The bound admin listener.
#[derive(Clone, Copy, Debug)]
struct AdminListener {
    addr: SocketAddr,
    /// It speaks HTTPS.
    tls: bool,
}

/// A broker that is running; drop it or call [`shutdown`](RunningBroker::shutdown).
pub struct RunningBroker {
    addrs: Vec<SocketAddr>,
    listeners: Vec<BoundListener>,
    metrics_addr: Option<SocketAddr>,
    admin: Option<AdminListener>,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
    shared: Arc<Shared>,
}

impl Broker {
    /// Binds every listen address (and the metrics address when configured) and
    /// starts serving on the current tokio runtime. A malformed listen entry, an
    /// `[auth]` section that does not check out, or anonymous access on a
    /// non-loopback address without `allow_anonymous` (safe defaults) is a
    /// [`StartError`] of kind `InvalidInput` whose text is one line.
    pub async fn bind(config: BrokerConfig) -> Result<RunningBroker, StartError> {
        let setup = Setup::check(config).await?;
        let bound = Bound::bind(&setup).await?;
        // A relay forwarding each client's own credentials is no open broker:
        // the upstream authenticates. With one shared upstream login it is one,
        // unless the relay authenticates clients itself ([auth]).
        if !setup.config.relay.forwards_credentials() {
            setup
                .auth
                .check_listeners(&setup.config.auth, &bound.addrs)?;
        }
        Ok(start(setup, bound))
    }
}

/// What is checked before anything is bound.
struct Setup {
    config: Arc<BrokerConfig>,
    upstream: Option<Arc<Upstream>>,
    store: Option<(StoreLink, Recovered)>,
    /// Cluster mode: the NATS connection made at start.
    cluster: Option<ClusterConnection>,
    metrics: Arc<Metrics>,
    auth: Authenticator,
    specs: Vec<ListenSpec>,
    acceptor: Option<tls::Acceptor>,
    certificates: Option<Arc<tls::Certificates>>,
    /// The admin listener's TLS, when `[tls]` is configured (used on a
    /// non-loopback admin address only).
    admin_tls: Option<tls::Acceptor>,
}

impl Setup {
    /// Checks what [`check::before_binding`] checks (off the async threads:
    /// it hashes and reads files), then opens the store (not in relay mode
    /// nor `in_memory`; off the async threads: recovery reads the whole log).
    async fn check(config: BrokerConfig) -> Result<Setup, StartError> {
        let config = Arc::new(config);
        let checking = config.clone();
        let check::Checked {
            upstream,
            auth,
            specs,
            tls,
        } = tokio::task::spawn_blocking(move || check::before_binding(&checking))
            .await
            .map_err(StartError::AuthTask)??;
        let upstream = upstream.map(Arc::new);
        if let Some(upstream) = &upstream {
            tracing::info!(%upstream, "relay mode: every client session goes upstream");
        }
        let (acceptor, certificates) = tls.unzip();
        // The admin listener speaks HTTPS with [tls] (off loopback; see `start`).
        let admin_tls = acceptor
            .clone()
            .filter(|_| config.tls.is_configured() && !config.admin.listen.is_empty());
        let metrics = Arc::new(Metrics::default());
        let mut config = config;
        let cluster = connect_cluster(Arc::make_mut(&mut config)).await?;
        // In cluster mode JetStream keeps what the store would.
        let store = match upstream.is_none() && !config.store.in_memory && cluster.is_none() {
            true => Some(open_store(&config.store, metrics.clone()).await?),
            false => None,
        };
        Ok(Setup {
            config,
            upstream,
            store,
            cluster,
            metrics,
            auth,
            specs,
            acceptor,
            certificates,
            admin_tls,
        })
    }
}

/// The bound sockets.
struct Bound {
    listeners: Vec<TcpListener>,
    addrs: Vec<SocketAddr>,
    metrics: Option<TcpListener>,
    metrics_addr: Option<SocketAddr>,
    admin: Option<(TcpListener, SocketAddr)>,
}

impl Bound {
    /// Binds every listen address, then the metrics and admin addresses.
    async fn bind(setup: &Setup) -> io::Result<Bound> {
        let mut listeners = Vec::new();
        for spec in &setup.specs {
            listeners.push(TcpListener::bind(&spec.addr).await?);
        }
        let metrics = match setup.config.server.metrics.as_str() {
            "" => None,
            addr => Some(TcpListener::bind(addr).await?),
        };
        let addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        let metrics_addr = metrics.as_ref().map(TcpListener::local_addr).transpose()?;
        let admin = match setup.config.admin.listen.as_str() {
            "" => None,
            addr => {
                let listener = TcpListener::bind(addr).await?;
                let addr = listener.local_addr()?;
                Some((listener, addr))
            }
        };
        Ok(Bound {
            listeners,
            addrs,
            metrics,
            metrics_addr,
            admin,
        })
    }
}

/// The NATS connection of cluster mode (none in a build without it).
#[cfg(feature = "cluster")]
type ClusterConnection = crate::cluster::Connection;
/// The NATS connection of cluster mode (none in a build without it).
#[cfg(not(feature = "cluster"))]
type ClusterConnection = std::convert::Infallible;

/// Cluster mode: connects to NATS (fitting `config`'s frame limits to it).
#[cfg(feature = "cluster")]
async fn connect_cluster(
    config: &mut BrokerConfig,
) -> Result<Option<ClusterConnection>, StartError> {
    match config.cluster.is_enabled() {
        true => crate::cluster::connect(config).await.map(Some),
        false => Ok(None),
    }
}

/// Cluster mode: refused earlier in a build without it (`check.rs`).
#[cfg(not(feature = "cluster"))]
async fn connect_cluster(_: &mut BrokerConfig) -> Result<Option<ClusterConnection>, StartError> {
    Ok(None)
}

/// Cluster mode: the router goes through the cluster, whose tasks start.
fn start_cluster(
    router: Router,
    cluster: Option<ClusterConnection>,
    config: &BrokerConfig,
    router_tx: &tokio::sync::mpsc::Sender<crate::shared::ToRouter>,
    metrics: &Arc<Metrics>,
) -> (
    Router,
    Option<router_task::ClusterLink>,
    Vec<JoinHandle<()>>,
) {
    let Some(connection) = cluster else {
        return (router, None, Vec::new());
    };
    #[cfg(feature = "cluster")]
    {
        let (link, tasks) = crate::cluster::start(
            connection,
            &config.cluster,
            router_tx.clone(),
            metrics.clone(),
        );
        (router.with_cluster(), Some(link), tasks)
    }
    #[cfg(not(feature = "cluster"))]
    {
        let _ = (config, router_tx, metrics);
        match connection {}
    }
}

/// Starts the router task, one accept loop per listener, the metrics endpoint
/// and the admin listener.
fn start(setup: Setup, bound: Bound) -> RunningBroker {
    let started = std::time::Instant::now();
    let Setup {
        config,
        upstream,
        store,
        cluster,
        metrics,
        auth,
        specs,
        acceptor,
        certificates,
        admin_tls,
    } = setup;
    let (stop, shutdown) = watch::channel(false);
    let (router_tx, router_rx) = router_task::channel();
    let destinations = config.destinations.clone();
    let (router, store) = match store {
        Some((link, recovered)) => (
            Router::with_store(destinations, metrics.clone(), recovered),
            Some(link),
        ),
        None => (Router::new(destinations, metrics.clone()), None),
    };
    let (router, cluster, mut tasks) =
        start_cluster(router, cluster, &config, &router_tx, &metrics);
    let shared = Arc::new(
        Shared::new(
            config.clone(),
            router_tx,
            metrics.clone(),
            Arc::new(auth),
            shutdown,
            upstream,
        )
        .with_certificates(certificates),
    );
    tasks.push(tokio::spawn(router_task::run(
        router, router_rx, store, cluster,
    )));
    let mut listeners = Vec::new();
    for ((tcp, spec), addr) in bound.listeners.into_iter().zip(&specs).zip(&bound.addrs) {
        let websocket = spec.websocket.then(|| ws_server_config(&config, *addr));
        listeners.push(BoundListener {
            addr: *addr,
            stomp: spec.stomp,
            websocket: spec.websocket,
            tls: spec.tls,
        });
        let listener = Arc::new(Listener::new(spec.stomp, websocket));
        let tls = acceptor.clone().filter(|_| spec.tls);
        tasks.push(tokio::spawn(accept_loop(
            tcp,
            listener,
            tls,
            shared.clone(),
        )));
    }
    if let Some(listener) = bound.metrics {
        tasks.push(tokio::spawn(serve_metrics(listener, shared.clone())));
    }
    let admin = bound.admin.map(|(listener, addr)| {
        // HTTPS only where logins are asked: on a loopback address nobody logs in.
        let tls = admin_tls.filter(|_| !addr.ip().is_loopback());
        let listening = AdminListener {
            addr,
            tls: tls.is_some(),
        };
        tasks.extend(admin::start(listener, addr, tls, shared.clone(), started));
        listening
    });
    RunningBroker {
        addrs: bound.addrs,
        listeners,
        metrics_addr: bound.metrics_addr,
        admin,
        metrics,
        stop,
        tasks,
        shutdown_timeout: Duration::from_millis(config.server.shutdown_timeout_ms),
        shared,
    }
}

impl RunningBroker {
    /// The bound listen addresses, in configuration order (real ports when
    /// configured with port 0), whatever each serves.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The bound listeners with what each serves, in configuration order.
    pub fn listeners(&self) -> &[BoundListener] {
        &self.listeners
    }

    /// The bound metrics address, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The bound admin address, when enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.map(|a| a.addr)
    }

    /// The admin listener's URL (`http://IP:PORT/`, or `https://` when it
    /// speaks TLS: on a non-loopback address with `[tls]`), when enabled.
    pub fn admin_url(&self) -> Option<String> {
        self.admin.map(|a| {
            let scheme = if a.tls { "https" } else { "http" };
            format!("{scheme}://{}/", a.addr)
        })
    }

    /// The live counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Reloads users, permissions and TLS certificates from `config` (see
    /// `reload.rs`): open sessions get the new permissions for their next frame,
    /// those of removed users ERROR. A configuration that does not check out
    /// changes nothing.
    pub async fn reload(&self, config: BrokerConfig) -> Result<Reloaded, ReloadError> {
        reload::reload(&self.shared.live, &self.addrs, config).await
    }

    /// Graceful shutdown: stop accepting, ERROR `server shutting down` to every
    /// client, wait for connections to close (at most `shutdown_timeout_ms`).
    pub async fn shutdown(self) {
        // Fails only when no task listens any more: nothing to stop then.
        let _ = self.stop.send(true);
        self.shared.live.shut_down();
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        while Metrics::get(&self.metrics.connections) > 0 && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for RunningBroker {
    fn drop(&mut self) {
        // Fails only when no task listens any more: nothing to stop then.
        let _ = self.stop.send(true);
        self.shared.live.shut_down();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Locks the data directory and recovers what it holds (logged).
async fn open_store(
    config: &StoreConfig,
    metrics: Arc<Metrics>,
) -> Result<(StoreLink, Recovered), StartError> {
    let dir = PathBuf::from(&config.dir);
    let created = !dir.exists();
    let started = std::time::Instant::now();
    let opened = {
        let dir = dir.clone();
        let options = StoreOptions {
            metrics: Some(metrics),
            ..StoreOptions::default()
        };
        tokio::task::spawn_blocking(move || Store::open(&dir, options))
            .await
            .map_err(StartError::StoreTask)??
    };
    let (store, recovered, completions) = opened;
    let messages: usize = recovered.queues.iter().map(|(_, m)| m.len()).sum();
    tracing::info!(
        dir = %dir.display(),
        created,
        messages,
        queues = recovered.queues.len(),
        durable_subscriptions = recovered.subscriptions.len(),
        ms = started.elapsed().as_millis() as u64,
        "store open"
    );
    Ok((StoreLink { store, completions }, recovered))
}

/// The WebSocket settings of a listener bound to `addr`.
fn ws_server_config(config: &BrokerConfig, addr: SocketAddr) -> WsServerConfig {
    let ws = &config.websocket;
    let mut server = WsServerConfig::new(addr)
        .paths(ws.paths.iter().cloned())
        .origin_policy(ws.origin_check.into())
        .parser(config.parser_config())
        .outgoing(ws.outgoing.into());
    server.allowed_origins = ws.allowed_origins.clone();
    server.handshake_timeout = config.login_timeout();
    server
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
