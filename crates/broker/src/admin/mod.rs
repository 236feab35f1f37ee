//! The admin listener: the JSON API, the dashboard, `/metrics` and `/healthz`
//! on `[admin] listen` (`--admin ADDR`).
//!
//! Owns the listener's accept loop (over TLS on a non-loopback address when
//! `[tls]` is configured), one request and one answer per connection (within
//! [`ANSWER_TIMEOUT`]; at most [`MAX_OPEN`] connections at once and
//! [`MAX_OPEN_PER_PEER`] from one address, more are closed at once), and the
//! sampler task of the message rates. Its parts:
//! - `request.rs` reads a request, `reply.rs` writes an answer (JSON, errors,
//!   the security headers);
//! - `security.rs` decides who may ask (loopback `Host`, or an admin user's
//!   Basic login);
//! - `routes.rs` maps paths and methods to `api.rs`'s endpoints (JSON shapes
//!   in `json.rs`) and `pages.rs`'s (dashboard files, metrics, health);
//! - `sampler.rs` keeps the last five minutes of message rates.
//!
//! It changes the broker only through the router's channel (`Shared::ask`, the
//! ERROR command of a kick); the sessions it lists are the connection
//! registry's (`registry.rs`). Binding is `server.rs`'s.

mod api;
mod json;
mod pages;
mod reply;
mod request;
mod routes;
mod sampler;
mod security;

use crate::metrics::Metrics;
use crate::shared::Shared;
use crate::tls;
use security::{Gate, Guard};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// How long one connection may take: TLS handshake, request, answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the request (head and body) may take to arrive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Admin connections served at once; more are closed unanswered.
const MAX_OPEN: usize = 32;

/// Admin connections from one IP address served at once, so that one peer
/// holding connections open cannot lock everyone else out.
const MAX_OPEN_PER_PEER: usize = 8;

/// What every admin request reads.
pub(crate) struct Admin {
    shared: Arc<Shared>,
    guard: Guard,
    gate: Gate,
    history: Arc<sampler::History>,
    started: Instant,
}

/// Starts serving `listener` (bound to `addr`; speaking TLS with `tls`) and the
/// rates sampler; returns their tasks, which the broker aborts when it stops.
/// `started` is when the broker started (its uptime).
pub(crate) fn start(
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<tls::Acceptor>,
    shared: Arc<Shared>,
    started: Instant,
) -> Vec<JoinHandle<()>> {
    let guard = Guard::for_addr(addr, tls.is_some());
    if let Guard::Login { tls } = guard {
        let auth = shared.authenticator();
        if !auth.has_admins() {
            tracing::warn!(%addr, "admin listener on a non-loopback address and no user with \
                admin = true: every request is refused (401)");
        } else if !tls {
            tracing::info!(%addr, "admin listener without TLS: only token logins are accepted");
        }
    }
    let history = Arc::new(sampler::History::default());
    let sampler = tokio::spawn(sampler::run(history.clone(), shared.metrics.clone()));
    let admin = Arc::new(Admin {
        shared,
        guard,
        gate: Gate::default(),
        history,
        started,
    });
    let serve = tokio::spawn(accept_loop(listener, admin, tls));
    vec![sampler, serve]
}

/// Accepts admin connections until the task is aborted (it outlives the
/// shutdown signal: `/healthz` says 503 meanwhile).
async fn accept_loop(listener: TcpListener, admin: Arc<Admin>, tls: Option<tls::Acceptor>) {
    let open = Arc::new(Semaphore::new(MAX_OPEN));
    let peers = Arc::new(PeerSlots::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "admin listener busy: connection closed");
            continue;
        };
        let Some(slot) = PeerSlots::take(&peers, peer.ip()) else {
            tracing::debug!(%peer, "too many admin connections from this address: closed");
            continue;
        };
        let (admin, tls) = (admin.clone(), tls.clone());
        tokio::spawn(async move {
            let _held = (permit, slot);
            let served = tokio::time::timeout(ANSWER_TIMEOUT, serve(stream, peer, &admin, tls));
            if served.await.is_err() {
                tracing::debug!(%peer, "admin request timed out");
            }
        });
    }
}

/// Admin connections open per peer address.
#[derive(Debug, Default)]
struct PeerSlots(std::sync::Mutex<HashMap<IpAddr, usize>>);

/// One of a peer's [`PeerSlots`], given back when dropped.
struct PeerSlot {
    slots: Arc<PeerSlots>,
    ip: IpAddr,
}

impl PeerSlots {
    /// A slot for `ip`, unless it holds [`MAX_OPEN_PER_PEER`] already.
    fn take(slots: &Arc<PeerSlots>, ip: IpAddr) -> Option<PeerSlot> {
        let mut open = slots.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= MAX_OPEN_PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            slots: slots.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.slots.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// One connection: the TLS handshake when `tls`, then one request.
async fn serve(stream: TcpStream, peer: SocketAddr, admin: &Admin, tls: Option<tls::Acceptor>) {
    match tls {
        None => answer(stream, peer, admin).await,
        Some(acceptor) => match tls::handshake(&acceptor, stream, REQUEST_TIMEOUT).await {
            Ok(stream) => answer(stream, peer, admin).await,
            Err(e) => tracing::debug!(%peer, error = %e, "admin TLS handshake failed"),
        },
    }
}

/// Reads one request and answers it: refused (401) unless the guard lets it
/// through, else routed.
async fn answer<S>(mut stream: S, peer: SocketAddr, admin: &Admin)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (reply, head_only) =
        match tokio::time::timeout(REQUEST_TIMEOUT, request::read(&mut stream)).await {
            Err(_) | Ok(Ok(None)) => return,
            Ok(Err(refusal)) => (refusal, false),
            Ok(Ok(Some(request))) => {
                let auth = admin.shared.authenticator();
                let reply = match admin.gate.check(admin.guard, &auth, peer, &request).await {
                    Ok(()) => routes::route(admin, &request).await,
                    Err(refusal) => {
                        if request.header("authorization").is_some() {
                            // Credentials refused (not a request without any).
                            Metrics::add(&admin.shared.metrics.auth_failures, 1);
                        }
                        refusal
                    }
                };
                tracing::debug!(%peer, method = %request.method, path = %request.path,
                status = reply.status, "admin request");
                (reply, request.method == "HEAD")
            }
        };
    if let Err(e) = reply.send(&mut stream, head_only).await {
        tracing::trace!(%peer, error = %e, "admin answer not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Authenticator;
    use crate::config::BrokerConfig;
    use crate::metrics::Metrics;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{mpsc, watch};

    /// An admin listener's state on a loopback address, with no router
    /// behind it (questions to the router get 503), and its shutdown switch.
    fn admin() -> (Admin, watch::Sender<bool>) {
        let config = Arc::new(BrokerConfig::default());
        let auth = Arc::new(Authenticator::new(&config.auth).unwrap());
        let (router, _) = mpsc::channel(1);
        let (stop, shutdown) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let shared = Arc::new(Shared::new(config, router, metrics, auth, shutdown, None));
        let admin = Admin {
            shared,
            guard: Guard::for_addr(SocketAddr::from(([127, 0, 0, 1], 0)), false),
            gate: Gate::default(),
            history: Arc::default(),
            started: Instant::now(),
        };
        (admin, stop)
    }

    /// The status line and body of `admin`'s answer to `request`.
    async fn exchange(admin: &Admin, request: &str) -> (String, String) {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        client.write_all(request.as_bytes()).await.unwrap();
        answer(server, SocketAddr::from(([127, 0, 0, 1], 9)), admin).await;
        let mut got = String::new();
        client.read_to_string(&mut got).await.unwrap();
        let status = got.lines().next().unwrap_or("").to_owned();
        let body = got
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn health_is_503_once_the_broker_shuts_down() {
        let (admin, stop) = admin();
        let request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let (status, body) = exchange(&admin, request).await;
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 200 OK", "ok\n")
        );
        stop.send(true).unwrap();
        let (status, body) = exchange(&admin, request).await;
        assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
        assert_eq!(body, "shutting down\n");
    }

    #[tokio::test]
    async fn a_router_gone_is_a_503_and_a_refusal_comes_first() {
        let (admin, _stop) = admin();
        let (status, body) = exchange(
            &admin,
            "GET /api/queues HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        )
        .await;
        assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
        assert!(body.contains("shutting down"), "{body}");
        let (status, _) = exchange(&admin, "GET /api/queues HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    }
}
