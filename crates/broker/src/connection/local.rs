//! The broker's own session on the connection driver: a [`Session`] whose
//! router commands go to the router task.
//!
//! Owns the [`Wiring`] of local mode: each driver step is the session's
//! matching call, and after each round the commands the session produced are
//! sent to the router (a router gone means the connection is lost). Once the
//! router has the session's CONNECT, the session is listed in the connection
//! registry (`registry.rs`) until the connection task ends. It owns no
//! protocol rule (the session's) and no loop (the driver's).

use super::{Hold, Now, Prepared, StompTransport, Wiring, drive};
use crate::auth::{AuthRequest, Authenticator, Verdict};
use crate::outbox::Outbox;
use crate::registry::{self, Registration, Registry, TransportKind};
use crate::router::{ConnId, RouterCommand};
use crate::session::Session;
use crate::shared::{Shared, ToRouter};
use crate::transport::{CloseReason, Inbound, Outbound};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use stompkit_frame::Version;
use stompkit_wire::{Event, ParseError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The log target of the connection's lines, as it was before the driver
/// was shared (log filters and lines stay as they were).
const LOG_TARGET: &str = "stompkit_broker::connection";

/// Serves one STOMP session of the broker's own over `transport` until it ends.
pub(crate) fn serve_local<I: Inbound, O: Outbound>(
    transport: StompTransport<I, O>,
    conn: ConnId,
    shared: Arc<Shared>,
) -> impl Future<Output = ()> + Send {
    let config = shared.config.clone();
    let outbox = Arc::new(Outbox::new(config.limits.max_outbox_bytes));
    let mut session = Session::new(
        config,
        conn,
        transport.peer,
        outbox.clone(),
        shared.metrics.clone(),
        transport.accepted.into_std(),
    );
    session.limit_versions(transport.versions);
    let wiring = Local {
        session,
        out: Vec::new(),
        router: shared.router.clone(),
        outbox,
        conn,
        lost: false,
        listing: Listing {
            registry: shared.registry.clone(),
            peer: transport.peer,
            kind: transport.kind,
            opened: None,
            registration: None,
        },
    };
    drive(wiring, transport, shared)
}

/// A local session and where its router commands go.
struct Local {
    session: Session,
    /// Commands produced this round, sent by [`Wiring::flush`].
    out: Vec<RouterCommand>,
    router: mpsc::Sender<ToRouter>,
    outbox: Arc<Outbox>,
    conn: ConnId,
    /// The client's transport or the router went away.
    lost: bool,
    /// Its entry in the connection registry.
    listing: Listing,
}

/// A session's entry in the connection registry, from the round its CONNECT
/// was accepted to the end of the connection task.
struct Listing {
    registry: Arc<Registry>,
    peer: SocketAddr,
    kind: TransportKind,
    /// Accepted this round (login, version): listed once the router has the
    /// CONNECT, so that an admin's kick never reaches the router first.
    opened: Option<(Option<String>, Version)>,
    /// Listed; dropping it unlists the session.
    registration: Option<Registration>,
}

impl Listing {
    /// Lists the session accepted this round, if any.
    fn register(&mut self, conn: ConnId, outbox: &Arc<Outbox>) {
        if let Some((login, version)) = self.opened.take() {
            self.registration = Some(self.registry.register(registry::Session {
                id: conn,
                peer: self.peer,
                login,
                version,
                transport: self.kind,
                connected_at: registry::unix_ms(),
                outbox: outbox.clone(),
            }));
        }
    }
}

impl Wiring for Local {
    type Event = Infallible;
    const REFUSAL_CLOSE: Option<CloseReason> = Some(CloseReason::Policy);

    fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    fn pushback(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    fn drained_to(&self) -> Option<(mpsc::Sender<ToRouter>, ConnId)> {
        Some((self.router.clone(), self.conn))
    }

    fn log_accepted(&self, peer: SocketAddr) {
        tracing::info!(target: LOG_TARGET, %peer, conn = self.conn, "connection accepted");
    }

    fn log_closed(&self, peer: SocketAddr) {
        tracing::info!(target: LOG_TARGET, %peer, conn = self.conn, "connection closed");
    }

    #[inline]
    fn is_over(&self) -> bool {
        self.lost || self.session.is_closed() || self.outbox.is_closing()
    }

    #[inline]
    fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    #[inline]
    fn reads_client(&self) -> bool {
        true
    }

    #[inline]
    fn takes_frames(&self) -> bool {
        !self.session.awaiting_verdict() && !self.session.is_closed()
    }

    #[inline]
    fn bytes_read(&mut self, now: Now) {
        self.session.on_bytes(now, true);
    }

    #[inline]
    fn client_event(&mut self, event: Result<Event, ParseError>, _now: Now) -> Option<Version> {
        self.session.handle_event(event, &mut self.out);
        None
    }

    #[inline]
    fn parsed(&mut self, now: Now, in_frame: bool) {
        self.session.set_in_frame(now, in_frame);
    }

    fn not_reading(&mut self, now: Now) {
        self.session.set_in_frame(now, false);
    }

    fn heard(&mut self, now: Now, in_frame: bool) {
        self.session.on_bytes(now, in_frame);
    }

    fn room(&mut self, now: Now, in_frame: bool) {
        self.session.set_in_frame(now, in_frame);
    }

    fn take_auth_request(&mut self) -> Option<AuthRequest> {
        self.session.take_auth_request()
    }

    fn on_verdict(&mut self, verdict: Verdict, now: Now) -> Option<Version> {
        let login = match &verdict {
            Verdict::Accepted(principal) => principal.login.clone(),
            Verdict::Refused => None,
        };
        let version = self.session.handle_verdict(verdict, now, &mut self.out);
        if let Some(version) = version {
            self.listing.opened = Some((login, version));
        }
        version
    }

    fn poll_timeout(&self) -> Option<Now> {
        self.session.poll_timeout()
    }

    fn on_timer(&mut self, now: Now, hold: Hold) {
        if hold.paused {
            self.session.on_bytes(now, false);
        }
        self.session.handle_timeout(now, &mut self.out);
    }

    fn shutdown(&mut self) {
        self.session.shutdown(&mut self.out);
    }

    fn reauthorize(&mut self, auth: &Authenticator) {
        self.session.reauthorize(auth, &mut self.out);
    }

    fn client_gone(&mut self) {
        self.lost = true;
    }

    fn client_outbox_closed(&mut self) {
        // The loop ends: `is_over` sees the outbox closing.
    }

    async fn prepare(&mut self, _shutdown: &mut watch::Receiver<bool>) -> Prepared {
        Prepared::Ready
    }

    fn next(&mut self) -> impl Future<Output = Infallible> + Send {
        std::future::pending()
    }

    fn on_event(&mut self, event: Infallible) -> Option<Version> {
        match event {}
    }

    async fn flush(&mut self) {
        if !forward(&self.router, &mut self.out).await {
            self.lost = true;
        }
        if self.listing.opened.is_some() && !self.lost {
            self.listing.register(self.conn, &self.outbox);
        }
    }

    async fn finish(&mut self) -> Option<JoinHandle<()>> {
        self.listing.registration = None;
        self.session.on_closed(&mut self.out);
        forward(&self.router, &mut self.out).await;
        if self.lost {
            self.outbox.close();
        }
        None
    }
}

/// Sends the session's router commands; `false` once the router is gone.
async fn forward(router: &mpsc::Sender<ToRouter>, out: &mut Vec<RouterCommand>) -> bool {
    for cmd in out.drain(..) {
        if router.send(ToRouter::Command(cmd)).await.is_err() {
            return false;
        }
    }
    true
}
