//! The session: one connection's STOMP protocol, sans-IO.
//!
//! Owns everything a single connection's rules decide: CONNECT/STOMP and version
//! negotiation (V1–V8), waiting for the login verdict, the CONNECTED frame and heart-beat negotiation (H1–H5,
//! clamped to the server's bounds), validation of every client frame for the
//! session's version (required headers, ack modes, NACK not in 1.0, duplicate
//! subscription ids, subscription and transaction limits), the principal's right
//! to SEND to and SUBSCRIBE to each destination, transactions (buffered
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

use crate::auth::{AuthRequest, Principal, Verdict};
use crate::config::BrokerConfig;
use crate::message::{frame_size, owned_frame};

use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::router::{AckRef, ConnId, RouterCommand, TxOp, is_valid_destination};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use stompkit_frame::{Command, Frame, Version, names};
use stompkit_negotiate::{
    HeartBeat, HeartBeatAction, HeartBeatIntervals, HeartBeater, NegotiateError,
    negotiate_heartbeat, negotiate_version,
};
use stompkit_wire::{Encoder, Event, ParseError};

/// The `server` header value of CONNECTED.
pub const SERVER: &str = concat!("stompkit/", env!("CARGO_PKG_VERSION"));

/// The `prefetch-count` SUBSCRIBE header.
pub const PREFETCH_COUNT: &str = "prefetch-count";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for CONNECT since `since`.
    Login { since: Instant },
    /// CONNECT received (connection open since `since`), waiting for the verdict.
    Authenticating { since: Instant },
    /// Open with this version.
    Open(Version),
    /// An ERROR was sent or DISCONNECT received: input is ignored.
    Closed,
}

/// A CONNECT the protocol accepted, held until the login verdict.
#[derive(Debug)]
struct PendingConnect {
    version: Version,
    intervals: Option<HeartBeatIntervals>,
    connected: Frame,
    request: Option<AuthRequest>,
}

#[derive(Debug, Default)]
struct Transaction {
    ops: Vec<TxOp>,
    bytes: usize,
}

/// One connection's protocol state machine.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use stompkit_broker::{BrokerConfig, Metrics, Outbox, RouterCommand, Session};
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
    heartbeat: Option<HeartBeater>,
    frame_started: Option<Instant>,
    subscriptions: HashSet<String>,
    transactions: HashMap<String, Transaction>,
    versions: &'static [Version],
    pending: Option<Box<PendingConnect>>,
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
            state: State::Login { since: now },
            heartbeat: None,
            frame_started: None,
            subscriptions: HashSet::new(),
            transactions: HashMap::new(),
            versions: &Version::ALL,
            pending: None,
            principal: None,
        }
    }

    /// The credentials of the CONNECT waiting for its verdict (once).
    pub fn take_auth_request(&mut self) -> Option<AuthRequest> {
        self.pending.as_mut().and_then(|p| p.request.take())
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

    /// The login verdict for the pending CONNECT: CONNECTED (returns the version to
    /// set on the parser) or ERROR `access refused` and close. Ignored when no
    /// CONNECT is pending (the session timed out or shut down meanwhile).
    pub fn handle_verdict(
        &mut self,
        verdict: Verdict,
        now: Instant,
        out: &mut Vec<RouterCommand>,
    ) -> Option<Version> {
        if !self.awaiting_verdict() {
            return None;
        }
        let pending = self.pending.take()?;
        let principal = match verdict {
            Verdict::Accepted(principal) => principal,
            Verdict::Refused => {
                self.fail_with("access refused", None, None, out);
                return None;
            }
        };
        let PendingConnect {
            version,
            intervals,
            connected,
            ..
        } = *pending;
        if let Some(intervals) = intervals {
            self.heartbeat = Some(HeartBeater::new(
                intervals,
                self.config.heartbeat.grace,
                now,
            ));
        }
        let encoder = Encoder::new(Some(version));
        self.outbox.append(|buf| {
            let _ = encoder.encode(&connected, buf);
        });
        tracing::info!(
            peer = %self.peer,
            conn = self.conn,
            login = principal.login.as_deref().unwrap_or(""),
            %version,
            "session open"
        );
        self.principal = Some(principal);
        self.state = State::Open(version);
        out.push(RouterCommand::Connect {
            conn: self.conn,
            outbox: self.outbox.clone(),
            version,
        });
        Some(version)
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
            State::Login { since } => Some(since + self.config.login_timeout()),
            State::Authenticating { since } => {
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
        self.versions = versions;
    }

    /// The negotiated version, once connected.
    pub fn version(&self) -> Option<Version> {
        match self.state {
            State::Open(v) => Some(v),
            _ => None,
        }
    }

    /// Whether the session is over (ERROR sent or DISCONNECT received).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Bytes arrived from the peer (any bytes prove it alive, H5). `in_frame` is
    /// whether the parser is now inside a frame (starts the frame-completion timer).
    pub fn on_bytes(&mut self, now: Instant, in_frame: bool) {
        if let Some(hb) = &mut self.heartbeat {
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
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        match self.state {
            State::Closed => return None,
            State::Login { .. } | State::Authenticating { .. } => consider(self.login_deadline()),
            State::Open(_) => consider(self.heartbeat.as_ref().and_then(HeartBeater::poll_timeout)),
        }
        consider(self.frame_started.map(|t| t + self.config.frame_timeout()));
        next
    }

    /// Timers: login timeout, frame-completion timeout, heart-beats.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<RouterCommand>) {
        if let Some(deadline) = self.login_deadline()
            && now >= deadline
        {
            let message = match self.state {
                State::Login { .. } => "login timeout: no CONNECT frame received",
                _ => "login timeout: login not verified in time",
            };
            return self.fail(message, None, out);
        }
        if let Some(started) = self.frame_started
            && now >= started + self.config.frame_timeout()
        {
            return self.fail("frame not completed in time", None, out);
        }
        if let Some(hb) = &mut self.heartbeat {
            match hb.handle_timeout(now) {
                Some(HeartBeatAction::SendBeat) => {
                    self.outbox.append(|buf| buf.extend_from_slice(b"\n"));
                    hb.on_sent(now);
                }
                Some(HeartBeatAction::PeerDead) => {
                    self.fail("heart-beat timeout: no data from client", None, out);
                }
                None => {}
            }
        }
    }

    /// The server is shutting down: ERROR `server shutting down`, then close.
    pub fn shutdown(&mut self, out: &mut Vec<RouterCommand>) {
        if self.state != State::Closed {
            self.fail("server shutting down", None, out);
        }
    }

    /// The connection is gone (read error, EOF, write error): open transactions are
    /// aborted (C6) and the router forgets the connection.
    pub fn on_closed(&mut self, out: &mut Vec<RouterCommand>) {
        self.transactions.clear();
        if self.state != State::Closed {
            tracing::info!(peer = %self.peer, conn = self.conn, "connection lost");
        }
        self.state = State::Closed;
        out.push(RouterCommand::Closed { conn: self.conn });
    }

    /// Handles one parser event. A CONNECT does not open the session: it waits for
    /// [`handle_verdict`](Session::handle_verdict), which returns the version to
    /// set on the parser.
    pub fn handle_event(&mut self, event: Result<Event, ParseError>, out: &mut Vec<RouterCommand>) {
        if self.state == State::Closed {
            return;
        }
        let frame = match event {
            Ok(Event::HeartBeat) => return,
            Ok(Event::Frame(frame)) => frame,
            Err(e) => return self.fail(e.message(), None, out),
        };
        match self.state {
            State::Login { since } => self.connect(frame, since, out),
            State::Authenticating { .. } => self.fail(
                "frame received before login completed",
                frame.receipt(),
                out,
            ),
            State::Open(version) => self.frame(version, frame, out),
            State::Closed => {}
        }
    }

    /// Checks CONNECT and negotiates; the session opens on the login verdict.
    fn connect(&mut self, frame: Frame, since: Instant, out: &mut Vec<RouterCommand>) {
        if !frame.command.is_connect() {
            self.fail("expected CONNECT or STOMP frame", frame.receipt(), out);
            return;
        }
        // V2: no accept-version means 1.0.
        let version = match negotiate_version(frame.accept_version(), self.versions) {
            Ok(v) => v,
            Err(e) => {
                let header = e.supported_versions_header();
                let message = match e {
                    NegotiateError::NoCommonVersion { .. } => "no supported protocol version",
                    _ => "malformed accept-version header",
                };
                self.fail_with(message, None, header.as_deref(), out);
                return;
            }
        };
        let mut connected = Frame::connected(version)
            .header(names::SESSION, &format!("session-{}", self.conn))
            .header(names::SERVER, SERVER);
        let mut heartbeat = None;
        if version >= Version::V1_1 {
            let theirs = match HeartBeat::from_header(frame.heart_beat()) {
                Ok(hb) => hb,
                Err(_) => {
                    self.fail("malformed heart-beat header", None, out);
                    return;
                }
            };
            // Answer what the client asked for, clamped to our bounds (RabbitMQ's way):
            // we send as often as it wants to receive, and want what it offers to send.
            let hb = &self.config.heartbeat;
            let ours = HeartBeat {
                cx: theirs.cy,
                cy: theirs.cx,
            }
            .clamp(hb.min_ms, hb.max_ms);
            let intervals = negotiate_heartbeat(ours, theirs);
            if !intervals.is_off() {
                heartbeat = Some(intervals);
            }
            connected = connected.header(names::HEART_BEAT, &ours.to_string());
        }
        let request = AuthRequest {
            login: frame.login().map(str::to_owned),
            passcode: frame.passcode().map(str::to_owned),
        };
        self.pending = Some(Box::new(PendingConnect {
            version,
            intervals: heartbeat,
            connected,
            request: Some(request),
        }));
        self.state = State::Authenticating { since };
    }

    fn frame(&mut self, version: Version, frame: Frame, out: &mut Vec<RouterCommand>) {
        let conn = self.conn;
        let receipt = frame.receipt().map(str::to_owned);
        match frame.command {
            Command::Send => {
                let Some(destination) = frame.destination() else {
                    return self.fail("missing destination header", receipt.as_deref(), out);
                };
                if !is_valid_destination(destination) {
                    return self.fail_body(
                        "unsupported destination",
                        "destinations are /topic/<name> and /queue/<name>",
                        receipt.as_deref(),
                        out,
                    );
                }
                if !self.may(Command::Send, destination) {
                    return self.forbid(Command::Send, destination, receipt.as_deref(), out);
                }
                match frame.transaction().map(str::to_owned) {
                    Some(tx) => {
                        let bytes = frame_size(&frame);
                        // Held until COMMIT: keep only its own bytes, not the read buffer.
                        let frame = owned_frame(frame);
                        self.buffer(&tx, TxOp::Send(frame), bytes, receipt, out);
                    }
                    None => out.push(RouterCommand::Send { conn, frame }),
                }
            }
            Command::Subscribe => {
                let Some(destination) = frame.destination() else {
                    return self.fail("missing destination header", receipt.as_deref(), out);
                };
                if !is_valid_destination(destination) {
                    return self.fail_body(
                        "unsupported destination",
                        "destinations are /topic/<name> and /queue/<name>",
                        receipt.as_deref(),
                        out,
                    );
                }
                if !self.may(Command::Subscribe, destination) {
                    return self.forbid(Command::Subscribe, destination, receipt.as_deref(), out);
                }
                // C2: `id` is required from 1.1; a 1.0 subscription without one is
                // named by its destination.
                let id = match (frame.id(), version) {
                    (Some(id), _) => id,
                    (None, Version::V1_0) => destination,
                    (None, _) => return self.fail("missing id header", receipt.as_deref(), out),
                };
                let Ok(ack) = frame.ack_mode() else {
                    return self.fail("invalid ack mode", receipt.as_deref(), out);
                };
                if self.subscriptions.contains(id) {
                    return self.fail("duplicate subscription id", receipt.as_deref(), out);
                }
                if self.subscriptions.len() >= self.config.limits.max_subscriptions {
                    return self.fail("too many subscriptions", receipt.as_deref(), out);
                }
                let prefetch = match frame.get(PREFETCH_COUNT) {
                    None => 0,
                    Some(v) => match v.parse::<u32>() {
                        Ok(n) if n > 0 => n.min(self.config.destinations.max_prefetch),
                        _ => {
                            return self.fail(
                                "invalid prefetch-count header",
                                receipt.as_deref(),
                                out,
                            );
                        }
                    },
                };
                self.subscriptions.insert(id.to_owned());
                out.push(RouterCommand::Subscribe {
                    conn,
                    id: id.to_owned(),
                    destination: destination.to_owned(),
                    ack,
                    prefetch,
                    receipt,
                });
            }
            Command::Unsubscribe => {
                // C5: `id`; 1.0 may name the destination instead.
                let id = match (frame.id(), version) {
                    (Some(id), _) => id,
                    (None, Version::V1_0) => match frame.destination() {
                        Some(d) => d,
                        None => return self.fail("missing id header", receipt.as_deref(), out),
                    },
                    (None, _) => return self.fail("missing id header", receipt.as_deref(), out),
                };
                if !self.subscriptions.remove(id) {
                    return self.fail("unknown subscription id", receipt.as_deref(), out);
                }
                out.push(RouterCommand::Unsubscribe {
                    conn,
                    id: id.to_owned(),
                    receipt,
                });
            }
            Command::Ack | Command::Nack => {
                let nack = frame.command == Command::Nack;
                if nack && version == Version::V1_0 {
                    return self.fail(
                        "NACK is not supported in STOMP 1.0",
                        receipt.as_deref(),
                        out,
                    );
                }
                // C4: 1.2 names the MESSAGE's `ack` value in `id`; 1.1 `message-id` and
                // `subscription`; 1.0 `message-id`.
                let ack = match version {
                    Version::V1_2 => match frame.id() {
                        Some(id) => AckRef {
                            id: id.to_owned(),
                            subscription: None,
                        },
                        None => return self.fail("missing id header", receipt.as_deref(), out),
                    },
                    _ => {
                        let Some(id) = frame.message_id() else {
                            return self.fail("missing message-id header", receipt.as_deref(), out);
                        };
                        let subscription = frame.subscription().map(str::to_owned);
                        if subscription.is_none() && version == Version::V1_1 {
                            return self.fail(
                                "missing subscription header",
                                receipt.as_deref(),
                                out,
                            );
                        }
                        AckRef {
                            id: id.to_owned(),
                            subscription,
                        }
                    }
                };
                match frame.transaction() {
                    Some(tx) => {
                        let op = if nack {
                            TxOp::Nack(ack)
                        } else {
                            TxOp::Ack(ack)
                        };
                        let tx = tx.to_owned();
                        self.buffer(&tx, op, 0, receipt, out);
                    }
                    None if nack => out.push(RouterCommand::Nack { conn, ack, receipt }),
                    None => out.push(RouterCommand::Ack { conn, ack, receipt }),
                }
            }
            Command::Begin => {
                let Some(tx) = frame.transaction() else {
                    return self.fail("missing transaction header", receipt.as_deref(), out);
                };
                if self.transactions.contains_key(tx) {
                    return self.fail("transaction already open", receipt.as_deref(), out);
                }
                if self.transactions.len() >= self.config.limits.max_transactions {
                    return self.fail("too many open transactions", receipt.as_deref(), out);
                }
                self.transactions
                    .insert(tx.to_owned(), Transaction::default());
                self.receipt(receipt, out);
            }
            Command::Commit | Command::Abort => {
                let Some(tx) = frame.transaction() else {
                    return self.fail("missing transaction header", receipt.as_deref(), out);
                };
                let Some(t) = self.transactions.remove(tx) else {
                    return self.fail("unknown transaction", receipt.as_deref(), out);
                };
                if frame.command == Command::Commit {
                    out.push(RouterCommand::Commit {
                        conn,
                        ops: t.ops,
                        receipt,
                    });
                } else {
                    self.receipt(receipt, out);
                }
            }
            Command::Disconnect => {
                // C6: open transactions abort; C7: receipt answered, then close.
                self.transactions.clear();
                self.state = State::Closed;
                tracing::info!(peer = %self.peer, conn, "DISCONNECT");
                out.push(RouterCommand::Disconnect { conn, receipt });
            }
            Command::Connect | Command::Stomp => {
                self.fail("already connected", receipt.as_deref(), out);
            }
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                self.fail(
                    "unexpected server frame from client",
                    receipt.as_deref(),
                    out,
                );
            }
        }
    }

    /// Whether the principal may SEND to / SUBSCRIBE to `destination`.
    fn may(&self, command: Command, destination: &str) -> bool {
        let Some(principal) = &self.principal else {
            return false;
        };
        match command {
            Command::Send => principal.permissions.may_send(destination),
            _ => principal.permissions.may_subscribe(destination),
        }
    }

    /// A SEND or SUBSCRIBE the principal has no right to: logged, ERROR, close.
    fn forbid(
        &mut self,
        command: Command,
        destination: &str,
        receipt: Option<&str>,
        out: &mut Vec<RouterCommand>,
    ) {
        let action = if command == Command::Send {
            "send to"
        } else {
            "subscribe to"
        };
        let who = match self.login() {
            "" => "anonymous clients".to_owned(),
            login => login.to_owned(),
        };
        tracing::warn!(
            peer = %self.peer,
            conn = self.conn,
            login = self.login(),
            %command,
            destination,
            "forbidden"
        );
        let body = format!("{who} may not {action} {destination}");
        self.fail_body("forbidden", &body, receipt, out);
    }

    fn buffer(
        &mut self,
        tx: &str,
        op: TxOp,
        bytes: usize,
        receipt: Option<String>,
        out: &mut Vec<RouterCommand>,
    ) {
        let limits = &self.config.limits;
        let (max_frames, max_bytes) = (limits.max_transaction_frames, limits.max_transaction_bytes);
        let Some(t) = self.transactions.get_mut(tx) else {
            return self.fail("unknown transaction", receipt.as_deref(), out);
        };
        if t.ops.len() >= max_frames || t.bytes + bytes > max_bytes {
            return self.fail("transaction too large", receipt.as_deref(), out);
        }
        t.ops.push(op);
        t.bytes += bytes;
        self.receipt(receipt, out);
    }

    fn receipt(&self, receipt: Option<String>, out: &mut Vec<RouterCommand>) {
        if let Some(receipt) = receipt {
            out.push(RouterCommand::Receipt {
                conn: self.conn,
                receipt,
            });
        }
    }

    fn fail(&mut self, message: &str, receipt: Option<&str>, out: &mut Vec<RouterCommand>) {
        self.fail_with(message, receipt, None, out);
    }

    fn fail_body(
        &mut self,
        message: &str,
        body: &str,
        receipt: Option<&str>,
        out: &mut Vec<RouterCommand>,
    ) {
        let frame = error_frame(message, receipt, None, body);
        self.send_error(frame, out);
    }

    /// S4/V4: ERROR with `message`, `receipt-id` when the frame had a receipt, a
    /// short body (and `version` for V4), then close.
    fn fail_with(
        &mut self,
        message: &str,
        receipt: Option<&str>,
        versions: Option<&str>,
        out: &mut Vec<RouterCommand>,
    ) {
        let frame = error_frame(message, receipt, versions, message);
        self.send_error(frame, out);
    }

    fn send_error(&mut self, frame: Frame, out: &mut Vec<RouterCommand>) {
        tracing::warn!(
            peer = %self.peer,
            conn = self.conn,
            login = self.login(),
            message = frame.message().unwrap_or(""),
            "sending ERROR"
        );
        Metrics::add(&self.metrics.errors, 1);
        self.transactions.clear();
        self.pending = None;
        match self.state {
            State::Open(_) => out.push(RouterCommand::Error {
                conn: self.conn,
                frame,
            }),
            _ => {
                let encoder = Encoder::new(self.version());
                self.outbox.close_with(|buf| {
                    let _ = encoder.encode(&frame, buf);
                });
            }
        }
        self.state = State::Closed;
    }
}

fn error_frame(message: &str, receipt: Option<&str>, versions: Option<&str>, body: &str) -> Frame {
    let mut frame = Frame::error(message);
    if let Some(r) = receipt {
        frame = frame.header(names::RECEIPT_ID, r);
    }
    if let Some(v) = versions {
        frame = frame.header(names::VERSION, v);
    }
    frame
        .header(names::CONTENT_TYPE, "text/plain")
        .with_body(format!("{body}\n"))
}

/// An ERROR frame for refusing a connection before any session exists (max
/// connections, shutdown), encoded for an unknown version.
pub fn refusal(message: &str) -> Frame {
    error_frame(message, None, None, message)
}

#[cfg(test)]
mod tests;
