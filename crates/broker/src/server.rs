//! The server: listeners, the router task, the metrics endpoint and shutdown.
//!
//! Owns process-level plumbing: binding every `--listen` address (with what each
//! serves: TCP STOMP, WebSocket, or both), accepting connections (refusing beyond
//! `max_connections` with an ERROR) and handing each to `listener.rs`, the one task
//! that owns the [`Router`] and drains its command channel in batches, the
//! `GET /metrics` listener, raising `RLIMIT_NOFILE`, and graceful shutdown
//! (stop accepting, ERROR `server shutting down` to every client, close within
//! `shutdown_timeout_ms`). [`Broker::bind`] is what `main.rs` and the integration
//! tests call.

use crate::auth::Authenticator;
use crate::config::BrokerConfig;
use crate::listener::{self, Listener};
use crate::metrics::{Metrics, QueueStat, render};
use crate::relay::Upstream;
use crate::router::{ConnId, Router, RouterCommand};
use crate::tls;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use stompkit_ws::WsServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Commands per router batch.
const BATCH: usize = 512;
/// Router channel capacity (back-pressure on publishers beyond it).
const CHANNEL: usize = 16 * 1024;

/// What goes to the router task.
pub(crate) enum ToRouter {
    /// A session's command.
    Command(RouterCommand),
    /// The metrics endpoint asks for queue depths.
    Stats(oneshot::Sender<Vec<QueueStat>>),
}

/// State every connection task shares.
pub(crate) struct Shared {
    pub(crate) config: Arc<BrokerConfig>,
    pub(crate) router: mpsc::Sender<ToRouter>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Relay mode: the upstream every client session is relayed to.
    pub(crate) upstream: Option<Arc<Upstream>>,
    next_conn: AtomicU64,
}

/// Entry point: bind and run a broker.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
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
    /// non-loopback address without `allow_anonymous` (safe defaults) is an
    /// `InvalidInput` error whose text is one line.
    pub async fn bind(config: BrokerConfig) -> io::Result<RunningBroker> {
        tls::check_no_tls_keys(&config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let upstream = Upstream::from_config(&config.relay)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
            .map(Arc::new);
        if let Some(upstream) = &upstream {
            tracing::info!(%upstream, "relay mode: every client session goes upstream");
        }
        let config = Arc::new(config);
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let auth_config = config.auth.clone();
        let auth = tokio::task::spawn_blocking(move || Authenticator::new(&auth_config))
            .await
            .map_err(|e| invalid(e.to_string()))?
            .map_err(invalid)?;
        let metrics = Arc::new(Metrics::default());
        let (stop, shutdown) = watch::channel(false);
        let (router_tx, router_rx) = mpsc::channel(CHANNEL);
        let specs = config
            .listen_specs()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let acceptor = match specs.iter().any(|s| s.tls) {
            true => Some(config.tls.acceptor().map_err(invalid)?),
            false => None,
        };
        let mut listeners = Vec::new();
        for spec in &specs {
            listeners.push(TcpListener::bind(&spec.addr).await?);
        }
        let metrics_listener = match config.server.metrics.as_str() {
            "" => None,
            addr => Some(TcpListener::bind(addr).await?),
        };
        let addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        // A relay forwarding each client's own credentials is no open broker:
        // the upstream authenticates. With one shared upstream login it is one,
        // unless the relay authenticates clients itself ([auth]).
        if !config.relay.forwards_credentials() {
            auth.check_listeners(&config.auth, &addrs)
                .map_err(invalid)?;
        }
        let metrics_addr = metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let router = Router::new(config.destinations.clone(), metrics.clone());
        let shared = Arc::new(Shared {
            config: config.clone(),
            router: router_tx.clone(),
            metrics: metrics.clone(),
            auth: Arc::new(auth),
            shutdown: shutdown.clone(),
            upstream,
            next_conn: AtomicU64::new(1),
        });
        let mut tasks = vec![tokio::spawn(run_router(router, router_rx))];
        let mut bound = Vec::new();
        for ((tcp, spec), addr) in listeners.into_iter().zip(&specs).zip(&addrs) {
            let websocket = spec.websocket.then(|| ws_server_config(&config, *addr));
            bound.push(BoundListener {
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
        if let Some(listener) = metrics_listener {
            tasks.push(tokio::spawn(metrics_loop(listener, shared.clone())));
        }
        Ok(RunningBroker {
            addrs,
            listeners: bound,
            metrics_addr,
            metrics,
            stop,
            tasks,
            shutdown_timeout: Duration::from_millis(config.server.shutdown_timeout_ms),
        })
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
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn run_router(mut router: Router, mut rx: mpsc::Receiver<ToRouter>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        for item in batch.drain(..) {
            match item {
                ToRouter::Command(cmd) => router.handle(cmd),
                ToRouter::Stats(reply) => {
                    let _ = reply.send(router.queue_stats());
                }
            }
        }
        router.flush_metrics();
    }
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

async fn accept_loop(
    tcp: TcpListener,
    listener: Arc<Listener>,
    tls: Option<tls::Acceptor>,
    shared: Arc<Shared>,
) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = tcp.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let open = shared.metrics.connections.fetch_add(1, Ordering::Relaxed);
        if open >= shared.config.limits.max_connections as u64 {
            shared.metrics.connections.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(%peer, "too many connections: refusing");
            Metrics::add(&shared.metrics.errors, 1);
            if tls.is_none() {
                tokio::spawn(listener::refuse_busy(stream, listener.clone()));
            } // A TLS peer could not read a plain answer: it is just closed.
            continue;
        }
        Metrics::add(&shared.metrics.connections_total, 1);
        let conn: ConnId = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let listener = listener.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => listener::serve_tcp(stream, peer, conn, shared.clone(), listener).await,
                // Boxed: the TLS state is large, and an unboxed await would make
                // every plain connection's task that large too.
                Some(acceptor) => {
                    Box::pin(async {
                        let _ = stream.set_nodelay(true);
                        let timeout = shared.config.login_timeout();
                        match tls::handshake(&acceptor, stream, timeout).await {
                            Ok(stream) => {
                                listener::serve_stream(stream, peer, conn, shared.clone(), listener)
                                    .await
                            }
                            Err(e) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                        }
                    })
                    .await
                }
            }
            shared.metrics.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn metrics_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(5), serve_metrics(stream, shared)).await;
        });
    }
}

/// A minimal HTTP/1.1 responder: `GET /metrics` → Prometheus text, else 404.
async fn serve_metrics(mut stream: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let (status, body) =
        if request.starts_with(b"GET /metrics ") || request.starts_with(b"GET /metrics?") {
            let (tx, rx) = oneshot::channel();
            let queues = match shared.router.send(ToRouter::Stats(tx)).await {
                Ok(()) => rx.await.unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            ("200 OK", render(&shared.metrics, &queues))
        } else {
            ("404 Not Found", "not found\n".to_owned())
        };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
