//! One relayed client session, sans-IO: client frames in, upstream frames in,
//! time in; encoded bytes out into two [`Outbox`]es (toward the client, toward
//! the upstream).
//!
//! Owns the relay's protocol rules: the client's CONNECT (checked for the
//! transport's versions, then rewritten for the upstream: own credentials or the
//! configured ones, `host`, the relay's own heart-beat), the upstream's CONNECTED
//! (version checked against what the client offered, heart-beat rewritten to the
//! client-side negotiation), validation of every frame in each direction
//! (commands allowed that way, required headers for the version), the two
//! independent heart-beat timers, the login/connect/frame timers, DISCONNECT
//! with its receipt, and turning every failure into one ERROR to the client
//! followed by closing both sides. It owns no socket and reads no clock.
//!
//! The client-frame rules, their wording, the ERROR builder, the heart-beat
//! answer and the permission check are the rules layer's (`rules.rs`), shared
//! with the local session; the upstream's failures are [`RelayError`]s
//! (`session/error.rs`); the handshake on both sides is in `session/connect.rs`.

mod connect;
mod error;

use crate::auth::{AuthRequest, Authenticator, Principal};
use crate::config::BrokerConfig;
use crate::config::RelayConfig;
use crate::metrics::{ErrorReason, Metrics};
use crate::outbox::Outbox;
use crate::rules::{self, ProtocolError, Request, error_frame, write_frame};
use connect::Handshake;
use error::RelayError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stompkit_frame::{Command, Frame, Version};
use stompkit_negotiate::HeartBeater;
use stompkit_wire::{Encoder, Event, ParseError};

/// Where the relayed session is, with what each state needs.
#[derive(Debug)]
enum State {
    /// Waiting for the client's CONNECT since `since`.
    Login { since: Instant },
    /// With a configured upstream login: the client's own credentials are being
    /// checked by the relay's `[auth]`; `connect` waits to go upstream.
    Authenticating {
        handshake: Handshake,
        connect: Box<Frame>,
        /// The client's credentials for that check (taken once by the loop).
        request: Option<AuthRequest>,
    },
    /// CONNECT went upstream at `since`; waiting for CONNECTED.
    Connecting {
        since: Instant,
        handshake: Handshake,
    },
    /// Both sides open.
    Open(Open),
    /// The client sent DISCONNECT at `since`; waiting for its `receipt` (if any).
    Disconnecting {
        open: Open,
        since: Instant,
        receipt: Option<String>,
    },
    /// Over: input is ignored.
    Closed,
}

/// Both sides open: the version they speak and each side's heart-beat timer.
#[derive(Debug)]
struct Open {
    version: Version,
    client_beats: Option<HeartBeater>,
    upstream_beats: Option<HeartBeater>,
}

impl State {
    /// The open session's data, while open or disconnecting.
    fn open(&self) -> Option<&Open> {
        match self {
            State::Open(open) | State::Disconnecting { open, .. } => Some(open),
            _ => None,
        }
    }

    /// The open session's data, mutably.
    fn open_mut(&mut self) -> Option<&mut Open> {
        match self {
            State::Open(open) | State::Disconnecting { open, .. } => Some(open),
            _ => None,
        }
    }
}

/// Which peer an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The relayed client.
    Client,
    /// The upstream broker.
    Upstream,
}

/// One client's relayed session.
pub(crate) struct RelaySession {
    config: Arc<BrokerConfig>,
    peer: SocketAddr,
    /// Versions the client's transport allows (a WebSocket sub-protocol caps them).
    allowed: Vec<Version>,
    to_client: Arc<Outbox>,
    to_upstream: Arc<Outbox>,
    metrics: Arc<Metrics>,
    state: State,
    /// When the client frame being read started (frame timer).
    frame_started: Option<Instant>,
    /// Who the relay authenticated (with a configured upstream login): its
    /// `[auth]` permissions apply to SEND and SUBSCRIBE. `None` when each
    /// client's credentials go upstream, where they are judged.
    principal: Option<Principal>,
}

impl RelaySession {
    /// A session waiting for the client's CONNECT; `now` starts the login timeout.
    pub(crate) fn new(
        config: Arc<BrokerConfig>,
        peer: SocketAddr,
        allowed: Vec<Version>,
        to_client: Arc<Outbox>,
        to_upstream: Arc<Outbox>,
        metrics: Arc<Metrics>,
        now: Instant,
    ) -> RelaySession {
        RelaySession {
            config,
            peer,
            allowed,
            to_client,
            to_upstream,
            metrics,
            state: State::Login { since: now },
            frame_started: None,
            principal: None,
        }
    }

    fn relay(&self) -> &RelayConfig {
        &self.config.relay
    }

    /// The version both sides speak, once open.
    fn version(&self) -> Option<Version> {
        self.state.open().map(|open| open.version)
    }

    /// Whether the session is over.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether the client CONNECT has gone into the upstream outbox and the
    /// connection to the upstream is wanted now.
    pub(crate) fn wants_upstream(&self) -> bool {
        matches!(self.state, State::Connecting { .. })
    }

    /// Whether frames from the client are read now. Not while its login is
    /// checked or the upstream has not answered CONNECT (the version, hence the
    /// parsing, is not known yet), and not after DISCONNECT.
    pub(crate) fn reads_client(&self) -> bool {
        matches!(self.state, State::Login { .. } | State::Open(_))
    }

    /// The heart-beat timer of `side`, once open.
    fn beats(&mut self, side: Side) -> Option<&mut HeartBeater> {
        let open = self.state.open_mut()?;
        match side {
            Side::Client => open.client_beats.as_mut(),
            Side::Upstream => open.upstream_beats.as_mut(),
        }
    }

    /// Bytes arrived from `side` (any bytes prove it alive). For the client,
    /// `in_frame` says whether a frame is now partly read (frame timer).
    pub(crate) fn on_bytes(&mut self, side: Side, now: Instant, in_frame: bool) {
        if side == Side::Client {
            match (in_frame, self.frame_started) {
                (true, None) => self.frame_started = Some(now),
                (false, Some(_)) => self.frame_started = None,
                _ => {}
            }
        }
        if let Some(beats) = self.beats(side) {
            beats.on_received(now);
        }
    }

    /// The relay is not reading `side` for now (the other side's outbox is
    /// full): whatever `side` sends waits for us, so neither its heart-beat nor
    /// a partly read frame may time out meanwhile.
    pub(crate) fn not_reading(&mut self, side: Side, now: Instant) {
        if side == Side::Client {
            self.frame_started = None;
        }
        if let Some(beats) = self.beats(side) {
            beats.on_received(now);
        }
    }

    /// How long a DISCONNECT waits for its receipt.
    fn linger(&self) -> Duration {
        Duration::from_millis(self.config.server.close_linger_ms)
    }

    /// The next instant [`handle_timeout`](RelaySession::handle_timeout) is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let phase = match &self.state {
            State::Closed => return None,
            State::Login { since } => Some(*since + self.config.login_timeout()),
            State::Connecting { since, .. } => Some(*since + self.relay().connect_timeout()),
            State::Disconnecting { since, .. } => Some(*since + self.linger()),
            State::Open(_) | State::Authenticating { .. } => None,
        };
        let open = self.state.open();
        [
            phase,
            self.frame_started.map(|t| t + self.config.frame_timeout()),
            open.and_then(|o| o.client_beats.as_ref())
                .and_then(HeartBeater::poll_timeout),
            open.and_then(|o| o.upstream_beats.as_ref())
                .and_then(HeartBeater::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Timers: login, upstream connect, frame completion, DISCONNECT linger,
    /// and both sides' heart-beats.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
            State::Closed => return,
            State::Login { since } if now >= *since + self.config.login_timeout() => {
                return self.fail(ProtocolError::LoginTimeout, None);
            }
            State::Connecting { since, .. } if now >= *since + self.relay().connect_timeout() => {
                return self.fail(RelayError::ConnectTimeout, None);
            }
            State::Disconnecting { since, .. } if now >= *since + self.linger() => {
                return self.close_both();
            }
            _ => {}
        }
        if let Some(started) = self.frame_started
            && now >= started + self.config.frame_timeout()
        {
            return self.fail(ProtocolError::FrameTimeout, None);
        }
        let Some(open) = self.state.open_mut() else {
            return;
        };
        if let Some(beats) = &mut open.client_beats
            && !rules::beat(beats, &self.to_client, now)
        {
            return self.fail(ProtocolError::HeartBeatTimeout, None);
        }
        if let Some(beats) = &mut open.upstream_beats
            && !rules::beat(beats, &self.to_upstream, now)
        {
            self.fail(RelayError::HeartBeatTimeout, None);
        }
    }

    /// One parser event from `side`. Returns the version both parsers switch to
    /// when this event opened the session.
    pub(crate) fn handle_event(
        &mut self,
        side: Side,
        event: Result<Event, ParseError>,
        now: Instant,
    ) -> Option<Version> {
        let frame = match (event, side) {
            _ if self.is_closed() => return None,
            (Ok(Event::HeartBeat), _) => return None,
            (Ok(Event::Frame(frame)), _) => frame,
            (Err(e), Side::Client) => {
                self.fail(ProtocolError::Parse(e), None);
                return None;
            }
            (Err(e), Side::Upstream) => {
                self.fail(RelayError::InvalidFrame(e), None);
                return None;
            }
        };
        match side {
            Side::Client => self.client_frame(frame, now),
            Side::Upstream => return self.upstream_frame(frame, now),
        }
        None
    }

    /// The server is shutting down.
    pub(crate) fn shutdown(&mut self) {
        if !self.is_closed() {
            self.fail(ProtocolError::ShuttingDown, None);
        }
    }

    /// A configuration reload, when the relay authenticated the client: its
    /// permissions as `auth` (the new authenticator) sees them, or ERROR and
    /// close when its user (or anonymous access) was removed.
    pub(crate) fn reauthorize(&mut self, auth: &Authenticator) {
        let Some(principal) = &mut self.principal else {
            return;
        };
        if let Err(error) = rules::reauthorize(auth, principal) {
            self.fail(error, None);
        }
    }

    /// The connection to the upstream could not be opened.
    pub(crate) fn upstream_unavailable(&mut self, reason: &str) {
        tracing::warn!(peer = %self.peer, reason, "upstream unavailable");
        self.fail_body(RelayError::Unavailable, reason);
    }

    /// The upstream connection ended (EOF, read or write error).
    pub(crate) fn upstream_closed(&mut self) {
        match self.state {
            State::Closed => {}
            State::Disconnecting { .. } => self.close_both(),
            State::Connecting { .. } => self.fail(RelayError::Closed, None),
            _ => self.fail(RelayError::Lost, None),
        }
    }

    /// The client connection ended: the upstream session goes too.
    pub(crate) fn client_closed(&mut self) {
        if !self.is_closed() {
            tracing::info!(peer = %self.peer, "client connection lost");
            self.disconnect_upstream();
            self.to_client.close();
            self.state = State::Closed;
        }
    }

    fn client_frame(&mut self, frame: Frame, now: Instant) {
        match &self.state {
            State::Login { .. } => self.connect(frame, now),
            State::Open(open) => {
                let version = open.version;
                self.request(version, frame, now);
            }
            _ => {}
        }
    }

    /// A client frame on the open session: the rules' checks (the upstream
    /// judges destinations, ids and permissions itself), the relay's own
    /// permissions when it authenticated the client, then upstream.
    fn request(&mut self, version: Version, frame: Frame, now: Instant) {
        let request = match rules::check(version, &frame, |_, _| Ok(())) {
            Ok(request) => request,
            Err(error) => return self.fail(error, frame.receipt()),
        };
        if let Request::Send { destination, .. } | Request::Subscribe { destination, .. } = request
            && let Some(body) = self.forbidden(frame.command, destination)
        {
            let message = ProtocolError::Forbidden.message();
            return self.send_error(error_frame(message, frame.receipt(), None, &body));
        }
        if request == Request::Disconnect {
            return self.disconnect(&frame, now);
        }
        self.forward(Side::Upstream, &frame, now);
    }

    /// DISCONNECT goes upstream; the session waits for its receipt, if any.
    fn disconnect(&mut self, frame: &Frame, now: Instant) {
        tracing::info!(peer = %self.peer, "DISCONNECT");
        let State::Open(open) = std::mem::replace(&mut self.state, State::Closed) else {
            return;
        };
        let receipt = frame.receipt().map(str::to_owned);
        self.state = State::Disconnecting {
            open,
            since: now,
            receipt,
        };
        self.forward(Side::Upstream, frame, now);
        // Without a receipt to wait for, DISCONNECT ends the session now.
        if let State::Disconnecting { receipt: None, .. } = self.state {
            self.close_both();
        }
    }

    /// Why a SEND or SUBSCRIBE is refused by the relay's own `[auth]` rules
    /// (only when the relay authenticated the client), as the broker words it.
    fn forbidden(&self, command: Command, destination: &str) -> Option<String> {
        let principal = self.principal.as_ref()?;
        if rules::may(principal, command, destination) {
            return None;
        }
        let who = rules::who(Some(principal));
        tracing::warn!(peer = %self.peer, login = who, command = %command, destination, "forbidden");
        Some(rules::forbidden_body(Some(principal), command, destination))
    }

    fn upstream_frame(&mut self, frame: Frame, now: Instant) -> Option<Version> {
        if frame.command == Command::Error {
            // Forwarded as it came (e.g. a refused login), then both sides close
            // (counted once, by `send_error`).
            tracing::warn!(
                peer = %self.peer,
                message = frame.message().unwrap_or(""),
                "ERROR from upstream"
            );
            self.send_error(frame);
            return None;
        }
        let done = match &self.state {
            State::Connecting { .. } => return self.connected(frame, now),
            State::Open(_) => false,
            State::Disconnecting { receipt, .. } => {
                frame.command == Command::Receipt
                    && receipt.is_some()
                    && frame.receipt_id() == receipt.as_deref()
            }
            _ => return None,
        };
        if !matches!(frame.command, Command::Message | Command::Receipt) {
            self.fail(RelayError::UnexpectedFrame(frame.command), None);
            return None;
        }
        self.forward(Side::Client, &frame, now);
        if done {
            self.close_both();
        }
        None
    }

    /// Encodes `frame` toward `to` for the session's version.
    fn forward(&mut self, to: Side, frame: &Frame, now: Instant) {
        let encoder = Encoder::new(self.version());
        let outbox = match to {
            Side::Client => &self.to_client,
            Side::Upstream => &self.to_upstream,
        };
        let mut failed = None;
        outbox.append(|buf| {
            if let Err(e) = encoder.encode(frame, buf) {
                failed = Some(e);
            }
        });
        if let Some(beats) = self.beats(to) {
            beats.on_sent(now);
        }
        if let Some(e) = failed {
            self.fail_body(RelayError::NotRelayable, &e.to_string());
        }
    }

    /// A polite end of the upstream session (when it is open), then close it.
    fn disconnect_upstream(&self) {
        let version = self.version();
        self.to_upstream.close_with(|buf| {
            if version.is_some() {
                write_frame(&Encoder::new(version), &Frame::disconnect(), buf);
            }
        });
    }

    /// Both sides close after what is queued (no ERROR).
    fn close_both(&mut self) {
        if self.is_closed() {
            return;
        }
        self.to_upstream.close();
        self.to_client.close();
        self.state = State::Closed;
    }

    /// ERROR for `error` (with `receipt-id` when the frame had a receipt).
    fn fail(&mut self, error: impl Into<RelayError>, receipt: Option<&str>) {
        let frame = match error.into() {
            RelayError::Client(error) => {
                let body = error.body().unwrap_or(error.message());
                error_frame(error.message(), receipt, None, body)
            }
            error => {
                let message = error.to_string();
                error_frame(&message, receipt, None, &message)
            }
        };
        self.send_error(frame);
    }

    /// ERROR for `error`, its body saying why.
    fn fail_body(&mut self, error: RelayError, body: &str) {
        self.send_error(error_frame(&error.to_string(), None, None, body));
    }

    /// ERROR to the client (last frame), the upstream session ends.
    fn send_error(&mut self, frame: Frame) {
        if self.is_closed() {
            return;
        }
        tracing::warn!(
            peer = %self.peer,
            message = frame.message().unwrap_or(""),
            "relay: ERROR to client"
        );
        self.metrics.count_error(ErrorReason::Relay);
        let encoder = Encoder::new(self.version());
        self.to_client
            .close_with(|buf| write_frame(&encoder, &frame, buf));
        self.disconnect_upstream();
        self.state = State::Closed;
    }
}

#[cfg(test)]
mod tests;
