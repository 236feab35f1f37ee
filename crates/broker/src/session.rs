//! The session: one connection's STOMP protocol, sans-IO.
//!
//! Owns everything a single connection's rules decide: CONNECT/STOMP and version
//! negotiation (V1–V8), waiting for the login verdict, the CONNECTED frame and heart-beat negotiation (H1–H5,
//! clamped to the server's bounds), validation of every client frame for the
//! session's version (required headers, ack modes, NACK not in 1.0, duplicate
//! subscription ids, subscription and transaction limits), the principal's right
//! to SEND to and SUBSCRIBE to each destination (anyone may SEND to a reply
//! destination, nobody SUBSCRIBE to it or use `/temp-queue/…` but in
//! `reply-to`), transactions (buffered
//! until COMMIT, which goes to the router as one command), receipts, DISCONNECT,
//! and the login, frame-completion and heart-beat timers.
//!
//! Login: a valid CONNECT does not open the session. It yields an [`AuthRequest`]
//! ([`Session::take_auth_request`]); the caller gets a [`Verdict`] (from the
//! `Authenticator`, off this state machine) and passes it to
//! [`Session::handle_verdict`], which sends CONNECTED or ERROR `access refused`.
//! Until then the caller feeds no further events: frames pipelined after CONNECT
//! wait in the parser's buffer, so nothing is accepted before the verdict (an
//! event fed anyway is an ERROR).
//!
//! Input: parser events (or the parse error) and `now`. Output: [`RouterCommand`]s
//! for the router and frames written to the connection's [`Outbox`] (CONNECTED,
//! ERRORs before the router knows the connection, heart-beat EOLs). After CONNECT
//! an ERROR goes through the router ([`RouterCommand::Error`]) so it lands after
//! the effects and receipts of every earlier frame. After an ERROR or DISCONNECT
//! the session ignores all input. It owns no socket and reads no clock.
//!
//! The rules themselves (required headers, their wording, the ERROR builder, the
//! heart-beat answer, permissions) live in `rules.rs`, shared with the relay; this
//! module keeps the per-connection state they need and sends the failures as
//! ERROR. Frame handling is split by command family: `connect.rs` (CONNECT/STOMP
//! and the login verdict), `subscriptions.rs`, `acks.rs`, `transactions.rs`;
//! here are the session, its states, the timers and the dispatch.

mod acks;
mod connect;
mod subscriptions;
mod transactions;
use subscriptions::SubscribeRequest;

use crate::auth::{Authenticator, Principal};
use crate::config::BrokerConfig;
use crate::message::{frame_size, owned_frame};
use crate::metrics::{ErrorReason, Metrics};
use crate::outbox::Outbox;
use crate::router::{
    ConnId, PrivateAccess, RouterCommand, TxOp, is_valid_destination, private_destination,
};
use crate::rules::{self, ProtocolError, Request, error_frame, write_frame};
use crate::wildcard;
use connect::PendingConnect;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stompkit_frame::{Command, Frame, Version};
use stompkit_negotiate::HeartBeater;
use stompkit_wire::{Encoder, Event, ParseError};
use transactions::Transaction;

pub use crate::rules::{PREFETCH_COUNT, refusal};

/// The `server` header value of CONNECTED.
pub const SERVER: &str = concat!("stompkit/", env!("CARGO_PKG_VERSION"));

/// Where the session is, with what each state needs.
#[derive(Debug)]
enum State {
    /// Waiting for CONNECT since `since`; CONNECT may negotiate `versions`.
    Login {
        since: Instant,
        versions: &'static [Version],
    },
    /// CONNECT received (connection open since `since`), waiting for the verdict.
    Authenticating {
        since: Instant,
        pending: Box<PendingConnect>,
    },
    /// Open.
    Open(Open),
    /// An ERROR was sent or DISCONNECT received: input is ignored.
    Closed,
}

/// An open session's state.
#[derive(Debug)]
struct Open {
    /// The negotiated version.
    version: Version,
    /// The heart-beat timers, when either side beats.
    heartbeat: Option<HeartBeater>,
    /// The connection's subscription ids.
    subscriptions: HashSet<String>,
    /// The open transactions, by name (C6: aborted when the session ends).
    transactions: HashMap<String, Transaction>,
    /// CONNECT's `client-id` (names ActiveMQ-style durable subscriptions).
    client_id: Option<Box<str>>,
}

/// Where one client frame's effects go: its connection, its `receipt` (taken
/// once answered; what is left goes on the ERROR's `receipt-id`), the router.
struct Effects<'a> {
    conn: ConnId,
    receipt: Option<String>,
    out: &'a mut Vec<RouterCommand>,
}

impl Effects<'_> {
    /// The frame's receipt goes to the router, after the effects pushed so far.
    fn receipt(&mut self) {
        if let Some(receipt) = self.receipt.take() {
            self.out.push(RouterCommand::Receipt {
                conn: self.conn,
                receipt,
            });
        }
    }
}

/// One connection's protocol state machine.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use stompkit_broker::internals::{Outbox, RouterCommand, Session};
/// use stompkit_broker::{BrokerConfig, Metrics};
/// use stompkit_frame::{Frame, Version};
/// use stompkit_wire::Event;
///
/// use stompkit_broker::{Principal, Verdict};
///
/// let outbox = Arc::new(Outbox::new(1 << 20));
/// let now = Instant::now();
/// let mut session = Session::new(Arc::new(BrokerConfig::default()), 1,
///     "127.0.0.1:5000".parse().unwrap(), outbox.clone(), Arc::new(Metrics::default()), now);
/// let mut out = Vec::new();
/// let connect = Frame::connect("h", "1.1,1.2").header("login", "alice");
/// session.handle_event(Ok(Event::Frame(connect)), &mut out);
/// let request = session.take_auth_request().unwrap();
/// assert_eq!(request.login.as_deref(), Some("alice"));
/// // An Authenticator decides; here everyone is welcome.
/// let version = session.handle_verdict(Verdict::Accepted(Principal::anonymous()), now, &mut out);
/// assert_eq!(version, Some(Version::V1_2));
/// assert!(matches!(out[0], RouterCommand::Connect { conn: 1, .. }));
/// assert!(outbox.drain().starts_with(b"CONNECTED\nversion:1.2\n"));
/// ```
pub struct Session {
    config: Arc<BrokerConfig>,
    conn: ConnId,
    peer: SocketAddr,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
    state: State,
    /// When the frame being read started (frame-completion timer).
    frame_started: Option<Instant>,
    /// Who the session is: set by the verdict that opens it, kept to the end.
    principal: Option<Principal>,
}

impl Session {
    /// A session waiting for CONNECT; `now` starts the login timeout.
    pub fn new(
        config: Arc<BrokerConfig>,
        conn: ConnId,
        peer: SocketAddr,
        outbox: Arc<Outbox>,
        metrics: Arc<Metrics>,
        now: Instant,
    ) -> Session {
        Session {
            config,
            conn,
            peer,
            outbox,
            metrics,
            state: State::Login {
                since: now,
                versions: &Version::ALL,
            },
            frame_started: None,
            principal: None,
        }
    }

    /// Whether a CONNECT waits for its login verdict: feed no events until
    /// [`handle_verdict`](Session::handle_verdict).
    pub fn awaiting_verdict(&self) -> bool {
        matches!(self.state, State::Authenticating { .. })
    }

    /// Who the session is, once open.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// The login for logs ("" when anonymous or not yet known).
    fn login(&self) -> &str {
        self.principal
            .as_ref()
            .and_then(|p| p.login.as_deref())
            .unwrap_or("")
    }

    /// The login deadline: the login timeout, plus room for the authenticator's
    /// delays once a CONNECT waits for its verdict (so a refused login gets its
    /// `access refused`, not a timeout).
    fn login_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Login { since, .. } => Some(since + self.config.login_timeout()),
            State::Authenticating { since, .. } => {
                let delays = Duration::from_millis(self.config.auth.max_failure_delay_ms);
                Some(since + self.config.login_timeout() + delays * 2)
            }
            _ => None,
        }
    }

    /// Restricts the versions CONNECT may negotiate (oldest first; default all):
    /// a WebSocket sub-protocol caps them (`v10.stomp` → 1.0 only). A CONNECT
    /// that accepts none of them gets ERROR with the `version` header.
    pub fn limit_versions(&mut self, versions: &'static [Version]) {
        if let State::Login { versions: v, .. } = &mut self.state {
            *v = versions;
        }
    }

    /// The negotiated version, once connected.
    pub fn version(&self) -> Option<Version> {
        match &self.state {
            State::Open(open) => Some(open.version),
            _ => None,
        }
    }

    /// Whether the session is over (ERROR sent or DISCONNECT received).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Bytes arrived from the peer (any bytes prove it alive, H5). `in_frame` is
    /// whether the parser is now inside a frame (starts the frame-completion timer).
    pub fn on_bytes(&mut self, now: Instant, in_frame: bool) {
        if let State::Open(open) = &mut self.state
            && let Some(hb) = &mut open.heartbeat
        {
            hb.on_received(now);
        }
        self.set_in_frame(now, in_frame);
    }

    /// Tells the session whether a frame is partly read.
    pub fn set_in_frame(&mut self, now: Instant, in_frame: bool) {
        match (in_frame, self.frame_started) {
            (true, None) => self.frame_started = Some(now),
            (false, Some(_)) => self.frame_started = None,
            _ => {}
        }
    }

    /// The next instant [`handle_timeout`](Session::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match &self.state {
            State::Closed => return None,
            State::Login { .. } | State::Authenticating { .. } => self.login_deadline(),
            State::Open(open) => open.heartbeat.as_ref().and_then(HeartBeater::poll_timeout),
        };
        let frame = self.frame_started.map(|t| t + self.config.frame_timeout());
        state.into_iter().chain(frame).min()
    }

    /// Timers: login timeout, frame-completion timeout, heart-beats.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<RouterCommand>) {
        if let Some(deadline) = self.login_deadline()
            && now >= deadline
        {
            let error = match self.state {
                State::Login { .. } => ProtocolError::LoginTimeout,
                _ => ProtocolError::LoginNotVerified,
            };
            return self.fail(error, None, out);
        }
        if let Some(started) = self.frame_started
            && now >= started + self.config.frame_timeout()
        {
            return self.fail(ProtocolError::FrameTimeout, None, out);
        }
        if let State::Open(open) = &mut self.state
            && let Some(hb) = &mut open.heartbeat
            && !rules::beat(hb, &self.outbox, now)
        {
            self.fail(ProtocolError::HeartBeatTimeout, None, out);
        }
    }

    /// The server is shutting down: ERROR `server shutting down`, then close.
    pub fn shutdown(&mut self, out: &mut Vec<RouterCommand>) {
        if !self.is_closed() {
            self.fail(ProtocolError::ShuttingDown, None, out);
        }
    }

    /// A configuration reload: an open session's principal as `auth` (the new
    /// authenticator) sees it. Changed permissions apply from the next frame;
    /// a removed user (or anonymous client, anonymous access off) gets ERROR
    /// and the connection closes.
    pub fn reauthorize(&mut self, auth: &Authenticator, out: &mut Vec<RouterCommand>) {
        let (State::Open(_), Some(principal)) = (&self.state, &mut self.principal) else {
            return;
        };
        if let Err(error) = rules::reauthorize(auth, principal) {
            self.fail(error, None, out);
        }
    }

    /// The connection is gone (read error, EOF, write error): open transactions are
    /// aborted (C6) and the router forgets the connection.
    pub fn on_closed(&mut self, out: &mut Vec<RouterCommand>) {
        if !self.is_closed() {
            tracing::info!(peer = %self.peer, conn = self.conn, "connection lost");
        }
        self.state = State::Closed;
        out.push(RouterCommand::Closed { conn: self.conn });
    }

    /// Handles one parser event. A CONNECT does not open the session: it waits for
    /// [`handle_verdict`](Session::handle_verdict), which returns the version to
    /// set on the parser.
    pub fn handle_event(&mut self, event: Result<Event, ParseError>, out: &mut Vec<RouterCommand>) {
        let frame = match event {
            _ if self.is_closed() => return,
            Ok(Event::HeartBeat) => return,
            Ok(Event::Frame(frame)) => frame,
            Err(e) => return self.fail(ProtocolError::Parse(e), None, out),
        };
        match &self.state {
            State::Login { since, versions } => {
                let (since, versions) = (*since, *versions);
                self.connect(frame, since, versions, out);
            }
            State::Authenticating { .. } => {
                self.fail(ProtocolError::FrameBeforeLogin, frame.receipt(), out);
            }
            State::Open(_) => self.frame(frame, out),
            State::Closed => {}
        }
    }

    /// A frame on the open session: the rules' checks, then its command's handler.
    fn frame(&mut self, frame: Frame, out: &mut Vec<RouterCommand>) {
        let State::Open(open) = &mut self.state else {
            return;
        };
        let principal = self.principal.as_ref();
        let checked = rules::check(open.version, &frame, |command, destination| {
            admit(principal, command, destination)
        });
        let request = match checked {
            Ok(request) => request,
            Err(error) => return self.refuse(error, &frame, out),
        };
        let mut fx = Effects {
            conn: self.conn,
            receipt: frame.receipt().map(str::to_owned),
            out,
        };
        let limits = &self.config.limits;
        let done = match request {
            Request::Send { transaction, .. } => {
                let transaction = transaction.map(str::to_owned);
                open.send(frame, transaction, limits, &mut fx)
            }
            Request::Subscribe {
                id,
                destination,
                ack,
                prefetch,
                durable,
            } => {
                let request = SubscribeRequest {
                    id,
                    destination,
                    ack,
                    prefetch,
                    durable,
                    selector: frame.get(subscriptions::SELECTOR),
                };
                let scope = principal.and_then(|p| p.login.as_deref()).unwrap_or("");
                open.subscribe(&self.config, request, scope, &mut fx)
            }
            Request::Unsubscribe { id, durable } => open.unsubscribe(id, durable, &mut fx),
            Request::Ack {
                target,
                transaction,
            } => open.ack(target, transaction, None, limits, &mut fx),
            Request::Nack {
                target,
                transaction,
                requeue,
            } => open.ack(target, transaction, Some(requeue), limits, &mut fx),
            Request::Begin { transaction } => open.begin(transaction, limits, &mut fx),
            Request::Commit { transaction } => open.commit(transaction, &mut fx),
            Request::Abort { transaction } => open.abort(transaction, &mut fx),
            Request::Disconnect => return self.disconnect(fx.receipt, out),
        };
        if let Err(error) = done {
            let receipt = fx.receipt;
            self.fail(error, receipt.as_deref(), out);
        }
    }

    /// DISCONNECT: open transactions abort (C6); the receipt is answered, then
    /// the connection closes (C7).
    fn disconnect(&mut self, receipt: Option<String>, out: &mut Vec<RouterCommand>) {
        self.state = State::Closed;
        tracing::info!(peer = %self.peer, conn = self.conn, "DISCONNECT");
        out.push(RouterCommand::Disconnect {
            conn: self.conn,
            receipt,
        });
    }

    /// A frame the rules refused: ERROR for `error`; a `forbidden` one is
    /// logged and says who may not do what.
    fn refuse(&mut self, error: ProtocolError, frame: &Frame, out: &mut Vec<RouterCommand>) {
        let receipt = frame.receipt();
        let destination = frame.destination().unwrap_or("");
        if error != ProtocolError::Forbidden {
            return self.fail(error, receipt, out);
        }
        let command = frame.command;
        tracing::warn!(
            peer = %self.peer,
            conn = self.conn,
            login = self.login(),
            %command,
            destination,
            "forbidden"
        );
        let body = rules::forbidden_body(self.principal.as_ref(), command, destination);
        let frame = error_frame(error.message(), receipt, None, &body);
        self.send_error(frame, out);
    }

    /// S4: ERROR for `error`, with `receipt-id` when the frame had a receipt,
    /// then close.
    fn fail(&mut self, error: ProtocolError, receipt: Option<&str>, out: &mut Vec<RouterCommand>) {
        let detail = error.detail();
        let body = detail
            .as_deref()
            .or(error.body())
            .unwrap_or(error.message());
        let frame = error_frame(error.message(), receipt, None, body);
        self.send_error(frame, out);
    }

    /// Sends an ERROR and closes: through the router once open (after the
    /// effects of every earlier frame), else straight into the outbox.
    fn send_error(&mut self, frame: Frame, out: &mut Vec<RouterCommand>) {
        tracing::warn!(
            peer = %self.peer,
            conn = self.conn,
            login = self.login(),
            message = frame.message().unwrap_or(""),
            "sending ERROR"
        );
        self.metrics.count_error(ErrorReason::Protocol);
        match self.state {
            State::Open(_) => out.push(RouterCommand::Error {
                conn: self.conn,
                frame,
            }),
            _ => {
                let encoder = Encoder::new(None);
                self.outbox
                    .close_with(|buf| write_frame(&encoder, &frame, buf));
            }
        }
        self.state = State::Closed;
    }
}

/// The local broker's judgement of a destination: one it serves (`/topic/…`,
/// `/queue/…`, a wildcard only where allowed), that the principal may SEND to
/// / SUBSCRIBE to; anyone may SEND to a reply destination (its name is the
/// capability), nobody SUBSCRIBE to it (see the router's `reply_queues.rs`).
fn admit(
    principal: Option<&Principal>,
    command: Command,
    destination: &str,
) -> Result<(), ProtocolError> {
    match private_destination(command, destination) {
        PrivateAccess::Public => {}
        PrivateAccess::Capability => return Ok(()),
        PrivateAccess::ReplySubscribe => return Err(ProtocolError::ReplySubscribe),
        PrivateAccess::Temporary => return Err(ProtocolError::TemporaryDestination),
    }
    wildcard::check(command, destination).map_err(ProtocolError::Wildcard)?;
    if !is_valid_destination(destination) {
        return Err(ProtocolError::UnsupportedDestination);
    }
    match principal {
        Some(p) if rules::may(p, command, destination) => Ok(()),
        _ => Err(ProtocolError::Forbidden),
    }
}

impl Open {
    /// An open session of `version`, with its heart-beat timers and
    /// CONNECT's `client-id`.
    fn new(version: Version, heartbeat: Option<HeartBeater>, client_id: Option<Box<str>>) -> Open {
        Open {
            version,
            heartbeat,
            subscriptions: HashSet::new(),
            transactions: HashMap::new(),
            client_id,
        }
    }

    /// SEND: to the router, or held in its transaction until COMMIT.
    fn send(
        &mut self,
        frame: Frame,
        transaction: Option<String>,
        limits: &crate::config::LimitsConfig,
        fx: &mut Effects<'_>,
    ) -> Result<(), ProtocolError> {
        match transaction {
            Some(tx) => {
                let bytes = frame_size(&frame);
                // Held until COMMIT: keep only its own bytes, not the read buffer.
                let frame = owned_frame(frame);
                self.buffer(&tx, TxOp::Send(frame), bytes, limits, fx)
            }
            None => {
                fx.out.push(RouterCommand::Send {
                    conn: fx.conn,
                    frame,
                });
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
