//! The server: binding, starting and stopping a broker.
//!
//! Owns process-level plumbing: checking what must hold before anything is bound
//! (TLS keys, `[relay]`, `[auth]`, the listen entries; typed as [`StartError`]),
//! binding every `--listen` address (with what each serves: TCP STOMP,
//! WebSocket, or both) and the metrics address, starting the router task
//! (`router_task.rs`), one accept loop per listener (`accept.rs`) and the
//! metrics endpoint (`metrics_endpoint.rs`), raising `RLIMIT_NOFILE`, and
//! graceful shutdown (stop accepting, ERROR `server shutting down` to every
//! client, close within `shutdown_timeout_ms`). [`Broker::bind`] is what
//! `main.rs` and the integration tests call.

use crate::accept::accept_loop;
use crate::auth::{AuthSetupError, Authenticator};
use crate::config::{BrokerConfig, ConfigError, ListenSpec, StoreConfig};
use crate::metrics::Metrics;
use crate::metrics_endpoint::serve_metrics;
use crate::router::Router;
use crate::router_task::{self, StoreLink};
use crate::serve::Listener;
use crate::shared::Shared;
use crate::store::{Recovered, Store, StoreError, StoreOptions};
use crate::tls::{self, TlsSetupError};
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

/// Why a broker did not start. Each message is one line, the one
/// `stompkit-broker` prints before exiting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration does not check out: a listen entry, `[relay]`, or a
    /// TLS key in a build without TLS.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `[auth]` does not check out, or the safe defaults refuse a listener.
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    /// The certificate of the TLS listeners cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The task checking `[auth]` failed.
    #[error("{0}")]
    AuthTask(tokio::task::JoinError),
    /// Binding a listen or metrics address failed.
    #[error(transparent)]
    Bind(#[from] io::Error),
    /// The data directory cannot be used (locked by another broker, or unreadable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task opening the store failed.
    #[error("{0}")]
    StoreTask(tokio::task::JoinError),
}

impl StartError {
    /// The I/O error kind: a bind's own, else `InvalidInput`.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            StartError::Bind(e) => e.kind(),
            _ => io::ErrorKind::InvalidInput,
        }
    }
}

impl From<StartError> for io::Error {
    fn from(error: StartError) -> io::Error {
        match error {
            StartError::Bind(e) => e,
            other => io::Error::new(other.kind(), other),
        }
    }
}

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

/// A broker that is running; drop it or call [`shutdown`](RunningBroker::shutdown).
pub struct RunningBroker {
    addrs: Vec<SocketAddr>,
    listeners: Vec<BoundListener>,
    metrics_addr: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
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
    auth: Authenticator,
    specs: Vec<ListenSpec>,
    acceptor: Option<tls::Acceptor>,
}

impl Setup {
    /// Checks TLS keys, `[relay]`, `[auth]` (off the async threads: it hashes),
    /// the listen entries and the TLS certificate, in that order, then opens
    /// the store (not in relay mode nor `in_memory`; off the async threads:
    /// recovery reads the whole log).
    async fn check(config: BrokerConfig) -> Result<Setup, StartError> {
        tls::check_no_tls_keys(&config)?;
        let upstream = Upstream::from_config(&config.relay)?.map(Arc::new);
        if let Some(upstream) = &upstream {
            tracing::info!(%upstream, "relay mode: every client session goes upstream");
        }
        let config = Arc::new(config);
        let auth_config = config.auth.clone();
        let auth = tokio::task::spawn_blocking(move || Authenticator::new(&auth_config))
            .await
            .map_err(StartError::AuthTask)??;
        let specs = config.listen_specs()?;
        let acceptor = match specs.iter().any(|s| s.tls) {
            true => Some(config.tls.acceptor()?),
            false => None,
        };
        let store = match upstream.is_none() && !config.store.in_memory {
            true => Some(open_store(&config.store).await?),
            false => None,
        };
        Ok(Setup {
            config,
            upstream,
            store,
            auth,
            specs,
            acceptor,
        })
    }
}

/// The bound sockets.
struct Bound {
    listeners: Vec<TcpListener>,
    addrs: Vec<SocketAddr>,
    metrics: Option<TcpListener>,
    metrics_addr: Option<SocketAddr>,
}

impl Bound {
    /// Binds every listen address, then the metrics address.
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
        Ok(Bound {
            listeners,
            addrs,
            metrics,
            metrics_addr,
        })
    }
}

/// Starts the router task, one accept loop per listener and the metrics endpoint.
fn start(setup: Setup, bound: Bound) -> RunningBroker {
    let Setup {
        config,
        upstream,
        store,
        auth,
        specs,
        acceptor,
    } = setup;
    let metrics = Arc::new(Metrics::default());
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
    let shared = Arc::new(Shared::new(
        config.clone(),
        router_tx,
        metrics.clone(),
        Arc::new(auth),
        shutdown,
        upstream,
    ));
    let mut tasks = vec![tokio::spawn(router_task::run(router, router_rx, store))];
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
    RunningBroker {
        addrs: bound.addrs,
        listeners,
        metrics_addr: bound.metrics_addr,
        metrics,
        stop,
        tasks,
        shutdown_timeout: Duration::from_millis(config.server.shutdown_timeout_ms),
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

    /// The live counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Graceful shutdown: stop accepting, ERROR `server shutting down` to every
    /// client, wait for connections to close (at most `shutdown_timeout_ms`).
    pub async fn shutdown(self) {
        // Fails only when no task listens any more: nothing to stop then.
        let _ = self.stop.send(true);
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
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Locks the data directory and recovers what it holds (logged).
async fn open_store(config: &StoreConfig) -> Result<(StoreLink, Recovered), StartError> {
    let dir = PathBuf::from(&config.dir);
    let created = !dir.exists();
    let started = std::time::Instant::now();
    let opened = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || Store::open(&dir, StoreOptions::default()))
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
