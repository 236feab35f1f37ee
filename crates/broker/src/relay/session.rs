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

use super::RelayConfig;
use crate::auth::{AuthRequest, Principal, Verdict};
use crate::config::BrokerConfig;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::session::refusal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use stompkit_frame::{Command, Frame, Version, names};
use stompkit_negotiate::{
    HeartBeat, HeartBeatAction, HeartBeater, NegotiateError, negotiate_heartbeat,
    negotiate_version, parse_accept_version,
};
use stompkit_wire::{Encoder, Event, ParseError};

/// CONNECT headers the relay sets itself instead of copying the client's.
const REWRITTEN: [&str; 6] = [
    names::ACCEPT_VERSION,
    names::HOST,
    names::LOGIN,
    names::PASSCODE,
    names::HEART_BEAT,
    names::CONTENT_LENGTH,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the client's CONNECT since `since`.
    Login { since: Instant },
    /// With a configured upstream login: the client's own credentials are being
    /// checked by the relay's `[auth]`.
    Authenticating,
    /// CONNECT went upstream at `since`; waiting for CONNECTED.
    Connecting { since: Instant },
    /// Both sides open with this version.
    Open(Version),
    /// The client sent DISCONNECT at `since`; waiting for its receipt (if any).
    Disconnecting { version: Version, since: Instant },
    /// Over: input is ignored.
    Closed,
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
    /// The versions offered upstream (the client's, within `allowed`).
    offered: Vec<Version>,
    /// The client's `heart-beat` request, answered once CONNECTED arrives.
    client_heartbeat: HeartBeat,
    client_beats: Option<HeartBeater>,
    upstream_beats: Option<HeartBeater>,
    frame_started: Option<Instant>,
    /// The `receipt` of the client's DISCONNECT.
    disconnect_receipt: Option<String>,
    /// The upstream CONNECT waiting for the relay's own login check.
    pending_connect: Option<Frame>,
    /// The client's credentials for that check (taken once by the loop).
    auth_request: Option<AuthRequest>,
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
            offered: Vec::new(),
            client_heartbeat: HeartBeat::new(0, 0),
            client_beats: None,
            upstream_beats: None,
            frame_started: None,
            disconnect_receipt: None,
            pending_connect: None,
            auth_request: None,
            principal: None,
        }
    }

    fn relay(&self) -> &RelayConfig {
        &self.config.relay
    }

    /// The version both sides speak, once open.
    fn version(&self) -> Option<Version> {
        match self.state {
            State::Open(version) | State::Disconnecting { version, .. } => Some(version),
            _ => None,
        }
    }

    /// Whether the session is over.
    pub(crate) fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the client CONNECT has gone into the upstream outbox and the
    /// connection to the upstream is wanted now.
    pub(crate) fn wants_upstream(&self) -> bool {
        matches!(self.state, State::Connecting { .. })
    }

    /// The client's credentials, once, when the relay checks them itself (a
    /// configured upstream login): the loop asks the authenticator and hands
    /// the answer to [`handle_verdict`](RelaySession::handle_verdict).
    pub(crate) fn take_auth_request(&mut self) -> Option<AuthRequest> {
        self.auth_request.take()
    }

    /// The relay's own login check answered: the CONNECT goes upstream, or the
    /// client gets ERROR `access refused`.
    pub(crate) fn handle_verdict(&mut self, verdict: Verdict, now: Instant) {
        if self.state != State::Authenticating {
            return;
        }
        match (verdict, self.pending_connect.take()) {
            (Verdict::Accepted(principal), Some(connect)) => {
                self.principal = Some(principal);
                self.send_connect(&connect, now);
            }
            _ => self.fail("access refused", None),
        }
    }

    /// Whether frames from the client are read now. Not while its login is
    /// checked or the upstream has not answered CONNECT (the version, hence the
    /// parsing, is not known yet), and not after DISCONNECT.
    pub(crate) fn reads_client(&self) -> bool {
        matches!(self.state, State::Login { .. } | State::Open(_))
    }

    /// Bytes arrived from `side` (any bytes prove it alive). For the client,
    /// `in_frame` says whether a frame is now partly read (frame timer).
    pub(crate) fn on_bytes(&mut self, side: Side, now: Instant, in_frame: bool) {
        let beats = match side {
            Side::Client => {
                match (in_frame, self.frame_started) {
                    (true, None) => self.frame_started = Some(now),
                    (false, Some(_)) => self.frame_started = None,
                    _ => {}
                }
                &mut self.client_beats
            }
            Side::Upstream => &mut self.upstream_beats,
        };
        if let Some(beats) = beats {
            beats.on_received(now);
        }
    }

    /// The relay is not reading `side` for now (the other side's outbox is
    /// full): whatever `side` sends waits for us, so neither its heart-beat nor
    /// a partly read frame may time out meanwhile.
    pub(crate) fn not_reading(&mut self, side: Side, now: Instant) {
        let beats = match side {
            Side::Client => {
                self.frame_started = None;
                &mut self.client_beats
            }
            Side::Upstream => &mut self.upstream_beats,
        };
        if let Some(beats) = beats {
            beats.on_received(now);
        }
    }

    /// The next instant [`handle_timeout`](RelaySession::handle_timeout) is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let limits = &self.config.limits;
        let phase = match self.state {
            State::Closed => return None,
            State::Login { since } => Some(since + self.config.login_timeout()),
            State::Connecting { since } => Some(since + self.relay().connect_timeout()),
            State::Disconnecting { since, .. } => {
                Some(since + std::time::Duration::from_millis(self.config.server.close_linger_ms))
            }
            State::Open(_) | State::Authenticating => None,
        };
        [
            phase,
            self.frame_started
                .map(|t| t + std::time::Duration::from_millis(limits.frame_timeout_ms)),
            self.client_beats
                .as_ref()
                .and_then(HeartBeater::poll_timeout),
            self.upstream_beats
                .as_ref()
                .and_then(HeartBeater::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Timers: login, upstream connect, frame completion, DISCONNECT linger,
    /// and both sides' heart-beats.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Closed => return,
            State::Login { since } if now >= since + self.config.login_timeout() => {
                return self.fail("login timeout: no CONNECT frame received", None);
            }
            State::Connecting { since } if now >= since + self.relay().connect_timeout() => {
                return self.fail("upstream did not answer CONNECT in time", None);
            }
            State::Disconnecting { since, .. }
                if now
                    >= since
                        + std::time::Duration::from_millis(self.config.server.close_linger_ms) =>
            {
                return self.close_both();
            }
            _ => {}
        }
        if let Some(started) = self.frame_started
            && now >= started + self.config.frame_timeout()
        {
            return self.fail("frame not completed in time", None);
        }
        if let Some(beats) = &mut self.client_beats {
            match beats.handle_timeout(now) {
                Some(HeartBeatAction::SendBeat) => {
                    self.to_client.append(|buf| buf.extend_from_slice(b"\n"));
                    beats.on_sent(now);
                }
                Some(HeartBeatAction::PeerDead) => {
                    return self.fail("heart-beat timeout: no data from client", None);
                }
                None => {}
            }
        }
        if let Some(beats) = &mut self.upstream_beats {
            match beats.handle_timeout(now) {
                Some(HeartBeatAction::SendBeat) => {
                    self.to_upstream.append(|buf| buf.extend_from_slice(b"\n"));
                    beats.on_sent(now);
                }
                Some(HeartBeatAction::PeerDead) => {
                    self.fail("upstream heart-beat timeout: no data from upstream", None);
                }
                None => {}
            }
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
        if self.state == State::Closed {
            return None;
        }
        let frame = match (event, side) {
            (Ok(Event::HeartBeat), _) => return None,
            (Ok(Event::Frame(frame)), _) => frame,
            (Err(e), Side::Client) => {
                self.fail(e.message(), None);
                return None;
            }
            (Err(e), Side::Upstream) => {
                self.fail(
                    &format!("invalid frame from upstream: {}", e.message()),
                    None,
                );
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
        if self.state != State::Closed {
            self.fail("server shutting down", None);
        }
    }

    /// The connection to the upstream could not be opened.
    pub(crate) fn upstream_unavailable(&mut self, reason: &str) {
        tracing::warn!(peer = %self.peer, reason, "upstream unavailable");
        self.fail_body("upstream unavailable", reason);
    }

    /// The upstream connection ended (EOF, read or write error).
    pub(crate) fn upstream_closed(&mut self) {
        match self.state {
            State::Closed => {}
            State::Disconnecting { .. } => self.close_both(),
            State::Connecting { .. } => self.fail("upstream closed the connection", None),
            _ => self.fail("upstream connection lost", None),
        }
    }

    /// The client connection ended: the upstream session goes too.
    pub(crate) fn client_closed(&mut self) {
        if self.state != State::Closed {
            tracing::info!(peer = %self.peer, "client connection lost");
            self.disconnect_upstream();
            self.to_client.close();
            self.state = State::Closed;
        }
    }

    fn client_frame(&mut self, frame: Frame, now: Instant) {
        match self.state {
            State::Login { .. } => self.connect(frame, now),
            State::Open(version) => {
                let receipt = frame.receipt().map(str::to_owned);
                if let Err(message) = check_client_frame(version, &frame) {
                    return self.fail(message, receipt.as_deref());
                }
                if let Some(refusal) = self.forbidden(&frame) {
                    return self.send_error(error_frame("forbidden", receipt.as_deref(), &refusal));
                }
                let disconnect = frame.command == Command::Disconnect;
                if disconnect {
                    tracing::info!(peer = %self.peer, "DISCONNECT");
                    self.disconnect_receipt = receipt;
                    self.state = State::Disconnecting {
                        version,
                        since: now,
                    };
                }
                self.forward(Side::Upstream, &frame, now);
                // Without a receipt to wait for, DISCONNECT ends the session now.
                if disconnect && self.disconnect_receipt.is_none() {
                    self.close_both();
                }
            }
            _ => {}
        }
    }

    /// The client's CONNECT: check it, then queue the upstream CONNECT.
    fn connect(&mut self, frame: Frame, now: Instant) {
        if !frame.command.is_connect() {
            return self.fail("expected CONNECT or STOMP frame", frame.receipt());
        }
        if let Err(e) = negotiate_version(frame.accept_version(), &self.allowed) {
            let message = match e {
                NegotiateError::NoCommonVersion { .. } => "no supported protocol version",
                _ => "malformed accept-version header",
            };
            let versions = e.supported_versions_header();
            let mut error = error_frame(message, None, message);
            if let Some(versions) = versions {
                error = error.header(names::VERSION, &versions);
            }
            return self.send_error(error);
        }
        // V2: no accept-version means 1.0; otherwise the client's list within ours.
        self.offered = match frame.accept_version() {
            None => vec![Version::V1_0],
            Some(list) => parse_accept_version(list)
                .unwrap_or_default()
                .into_iter()
                .filter(|v| self.allowed.contains(v))
                .collect(),
        };
        self.client_heartbeat = match HeartBeat::from_header(frame.heart_beat()) {
            Ok(hb) => hb,
            Err(_) if frame.accept_version().is_none() => HeartBeat::new(0, 0),
            Err(_) => return self.fail("malformed heart-beat header", None),
        };
        let relay = self.relay();
        let mut upstream = Frame::new(Command::Connect);
        if frame.accept_version().is_some() {
            let list: Vec<&str> = self.offered.iter().map(|v| v.as_str()).collect();
            upstream = upstream.header(names::ACCEPT_VERSION, &list.join(","));
        }
        // No host from the client (1.0) and none configured: none upstream
        // either, so the upstream picks its default virtual host.
        let host = match relay.vhost.as_str() {
            "" => frame.host(),
            vhost => Some(vhost),
        };
        if let Some(host) = host {
            upstream = upstream.header(names::HOST, host);
        }
        let (login, passcode) = if relay.login.is_empty() {
            (frame.login(), frame.passcode())
        } else {
            (Some(relay.login.as_str()), Some(relay.passcode.as_str()))
        };
        if let Some(login) = login {
            upstream = upstream.header(names::LOGIN, login);
        }
        if let Some(passcode) = passcode {
            upstream = upstream.header(names::PASSCODE, passcode);
        }
        if frame.accept_version().is_some() {
            // Heart-beats are 1.1+; a 1.0 session gets none on either side.
            let hb = relay.heartbeat_ms;
            upstream = upstream.header(names::HEART_BEAT, &HeartBeat::new(hb, hb).to_string());
        }
        for (name, value) in frame.headers().iter() {
            if !REWRITTEN.contains(&name) {
                upstream = upstream.header(name, value);
            }
        }
        tracing::info!(peer = %self.peer, host = host.unwrap_or(""), "relaying CONNECT upstream");
        if relay.login.is_empty() {
            return self.send_connect(&upstream, now);
        }
        // One shared upstream login: the relay checks who the client is first.
        self.auth_request = Some(AuthRequest {
            login: frame.login().map(str::to_owned),
            passcode: frame.passcode().map(str::to_owned),
        });
        self.pending_connect = Some(upstream);
        self.state = State::Authenticating;
    }

    /// Queues the upstream CONNECT; the loop connects.
    fn send_connect(&mut self, connect: &Frame, now: Instant) {
        let encoder = Encoder::new(None);
        self.to_upstream.append(|buf| {
            let _ = encoder.encode(connect, buf);
        });
        self.state = State::Connecting { since: now };
    }

    /// Why a SEND or SUBSCRIBE is refused by the relay's own `[auth]` rules
    /// (only when the relay authenticated the client), as the broker words it.
    fn forbidden(&self, frame: &Frame) -> Option<String> {
        let principal = self.principal.as_ref()?;
        let destination = frame.destination()?;
        let (allowed, action) = match frame.command {
            Command::Send => (principal.permissions.may_send(destination), "send to"),
            Command::Subscribe => (
                principal.permissions.may_subscribe(destination),
                "subscribe to",
            ),
            _ => return None,
        };
        if allowed {
            return None;
        }
        let who = principal.login.as_deref().unwrap_or("anonymous clients");
        tracing::warn!(peer = %self.peer, login = who, command = %frame.command, destination, "forbidden");
        Some(format!("{who} may not {action} {destination}"))
    }

    fn upstream_frame(&mut self, frame: Frame, now: Instant) -> Option<Version> {
        if frame.command == Command::Error {
            // Forwarded as it came (e.g. a refused login), then both sides close.
            Metrics::add(&self.metrics.errors, 1);
            tracing::warn!(
                peer = %self.peer,
                message = frame.message().unwrap_or(""),
                "ERROR from upstream"
            );
            self.send_error(frame);
            return None;
        }
        match self.state {
            State::Connecting { .. } => self.connected(frame, now),
            State::Open(_) | State::Disconnecting { .. } => {
                if !matches!(frame.command, Command::Message | Command::Receipt) {
                    let message =
                        format!("unexpected {} frame from upstream", frame.command.as_str());
                    self.fail(&message, None);
                    return None;
                }
                let done = self.disconnect_receipt.is_some()
                    && frame.command == Command::Receipt
                    && frame.receipt_id() == self.disconnect_receipt.as_deref();
                self.forward(Side::Client, &frame, now);
                if done {
                    self.close_both();
                }
                None
            }
            _ => None,
        }
    }

    /// The upstream's CONNECTED: the session opens on both sides.
    fn connected(&mut self, frame: Frame, now: Instant) -> Option<Version> {
        if frame.command != Command::Connected {
            let message = format!(
                "upstream sent {} instead of CONNECTED",
                frame.command.as_str()
            );
            self.fail(&message, None);
            return None;
        }
        let version = match frame.version() {
            None => Some(Version::V1_0),
            Some(v) => v.parse::<Version>().ok(),
        };
        let Some(version) = version.filter(|v| self.offered.contains(v)) else {
            self.fail("upstream chose a version the client did not offer", None);
            return None;
        };
        let mut connected = Frame::connected(version);
        for (name, value) in frame.headers().iter() {
            if name != names::VERSION && name != names::HEART_BEAT {
                connected = connected.header(name, value);
            }
        }
        if version >= Version::V1_1 {
            let hb = self.relay().heartbeat_ms;
            let ours = HeartBeat::new(hb, hb);
            let Ok(theirs) = HeartBeat::from_header(frame.heart_beat()) else {
                self.fail("malformed heart-beat header from upstream", None);
                return None;
            };
            self.upstream_beats = beater(
                negotiate_heartbeat(ours, theirs),
                self.config.heartbeat.grace,
                now,
            );
            // Answer the client as the broker does: mirrored, clamped to [heartbeat].
            let bounds = &self.config.heartbeat;
            let theirs = self.client_heartbeat;
            let ours = HeartBeat::new(theirs.cy, theirs.cx).clamp(bounds.min_ms, bounds.max_ms);
            self.client_beats = beater(negotiate_heartbeat(ours, theirs), bounds.grace, now);
            connected = connected.header(names::HEART_BEAT, &ours.to_string());
        }
        let encoder = Encoder::new(Some(version));
        self.to_client.append(|buf| {
            let _ = encoder.encode(&connected, buf);
        });
        tracing::info!(peer = %self.peer, %version, "relayed session open");
        self.state = State::Open(version);
        Some(version)
    }

    /// Encodes `frame` toward `to` for the session's version.
    fn forward(&mut self, to: Side, frame: &Frame, now: Instant) {
        let encoder = Encoder::new(self.version());
        let (outbox, beats) = match to {
            Side::Client => (&self.to_client, &mut self.client_beats),
            Side::Upstream => (&self.to_upstream, &mut self.upstream_beats),
        };
        let mut failed = None;
        outbox.append(|buf| {
            if let Err(e) = encoder.encode(frame, buf) {
                failed = Some(e);
            }
        });
        if let Some(beats) = beats {
            beats.on_sent(now);
        }
        if let Some(e) = failed {
            self.fail_body("frame cannot be relayed", &e.to_string());
        }
    }

    /// A polite end of the upstream session (when it is open), then close it.
    fn disconnect_upstream(&self) {
        let version = self.version();
        self.to_upstream.close_with(|buf| {
            if version.is_some() {
                let _ = Encoder::new(version).encode(&Frame::disconnect(), buf);
            }
        });
    }

    /// Both sides close after what is queued (no ERROR).
    fn close_both(&mut self) {
        if self.state == State::Closed {
            return;
        }
        self.to_upstream.close();
        self.to_client.close();
        self.state = State::Closed;
    }

    fn fail(&mut self, message: &str, receipt: Option<&str>) {
        self.send_error(error_frame(message, receipt, message));
    }

    fn fail_body(&mut self, message: &str, body: &str) {
        self.send_error(error_frame(message, None, body));
    }

    /// ERROR to the client (last frame), the upstream session ends.
    fn send_error(&mut self, frame: Frame) {
        if self.state == State::Closed {
            return;
        }
        tracing::warn!(
            peer = %self.peer,
            message = frame.message().unwrap_or(""),
            "relay: ERROR to client"
        );
        Metrics::add(&self.metrics.errors, 1);
        let encoder = Encoder::new(self.version());
        self.to_client.close_with(|buf| {
            let _ = encoder.encode(&frame, buf);
        });
        self.disconnect_upstream();
        self.state = State::Closed;
    }
}

fn beater(
    intervals: stompkit_negotiate::HeartBeatIntervals,
    grace: f64,
    now: Instant,
) -> Option<HeartBeater> {
    (!intervals.is_off()).then(|| HeartBeater::new(intervals, grace, now))
}

/// An ERROR frame made by the relay (like the broker's, via [`refusal`]).
fn error_frame(message: &str, receipt: Option<&str>, body: &str) -> Frame {
    let mut frame = refusal(message).with_body(format!("{body}\n"));
    if let Some(receipt) = receipt {
        frame = frame.header(names::RECEIPT_ID, receipt);
    }
    frame
}

/// The checks a relay makes on a client frame after CONNECT: a client command
/// other than CONNECT, and the headers the version requires (the upstream
/// judges destinations, ids and permissions itself).
fn check_client_frame(version: Version, frame: &Frame) -> Result<(), &'static str> {
    let has = |name: &str| frame.get(name).is_some();
    let need = |ok: bool, message: &'static str| if ok { Ok(()) } else { Err(message) };
    match frame.command {
        Command::Send => need(has(names::DESTINATION), "missing destination header"),
        Command::Subscribe => {
            need(has(names::DESTINATION), "missing destination header")?;
            need(
                version == Version::V1_0 || has(names::ID),
                "missing id header",
            )?;
            need(frame.ack_mode().is_ok(), "invalid ack mode")
        }
        Command::Unsubscribe => need(
            has(names::ID) || (version == Version::V1_0 && has(names::DESTINATION)),
            "missing id header",
        ),
        Command::Ack | Command::Nack => {
            need(
                frame.command == Command::Ack || version >= Version::V1_1,
                "NACK is not supported in STOMP 1.0",
            )?;
            match version {
                Version::V1_2 => need(has(names::ID), "missing id header"),
                Version::V1_1 => {
                    need(has(names::MESSAGE_ID), "missing message-id header")?;
                    need(has(names::SUBSCRIPTION), "missing subscription header")
                }
                Version::V1_0 => need(has(names::MESSAGE_ID), "missing message-id header"),
            }
        }
        Command::Begin | Command::Commit | Command::Abort => {
            need(has(names::TRANSACTION), "missing transaction header")
        }
        Command::Disconnect => Ok(()),
        Command::Connect | Command::Stomp => Err("already connected"),
        Command::Connected | Command::Message | Command::Receipt | Command::Error => {
            Err("unexpected server frame from client")
        }
    }
}

#[cfg(test)]
mod tests;
