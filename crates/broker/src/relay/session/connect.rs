//! The relayed session's handshake: the client's CONNECT rewritten for the
//! upstream, the relay's own login check when it has one upstream login, and
//! the upstream's CONNECTED rewritten for the client.
//!
//! Owns what the two sides agree on before the session opens: the versions the
//! client offered within its transport's, the client's heart-beat request and
//! the answer to it, the relay's own heart-beat toward the upstream. Does not
//! handle frames after CONNECTED (the session does).

use super::{Open, RelayError, RelaySession, State};
use crate::auth::{AuthRequest, Verdict};
use crate::metrics::Metrics;
use crate::rules::{self, ProtocolError, version_refusal, write_frame};
use std::time::Instant;
use stompkit_frame::{Command, Frame, Version, names};
use stompkit_negotiate::{
    HeartBeat, HeartBeatIntervals, HeartBeater, negotiate_heartbeat, negotiate_version,
    parse_accept_version,
};
use stompkit_wire::Encoder;

/// CONNECT headers the relay sets itself instead of copying the client's.
const REWRITTEN: [&str; 6] = [
    names::ACCEPT_VERSION,
    names::HOST,
    names::LOGIN,
    names::PASSCODE,
    names::HEART_BEAT,
    names::CONTENT_LENGTH,
];

/// What the client asked for in CONNECT, answered once CONNECTED arrives.
#[derive(Debug)]
pub(super) struct Handshake {
    /// The versions offered upstream (the client's, within the allowed ones).
    offered: Vec<Version>,
    /// The client's `heart-beat` request.
    client_heartbeat: HeartBeat,
}

impl RelaySession {
    /// The client's credentials, once, when the relay checks them itself (a
    /// configured upstream login): the loop asks the authenticator and hands
    /// the answer to [`handle_verdict`](RelaySession::handle_verdict).
    pub(crate) fn take_auth_request(&mut self) -> Option<AuthRequest> {
        match &mut self.state {
            State::Authenticating { request, .. } => request.take(),
            _ => None,
        }
    }

    /// The relay's own login check answered: the CONNECT goes upstream, or the
    /// client gets ERROR `access refused`.
    pub(crate) fn handle_verdict(&mut self, verdict: Verdict, now: Instant) {
        if !matches!(self.state, State::Authenticating { .. }) {
            return;
        }
        let Verdict::Accepted(principal) = verdict else {
            Metrics::add(&self.metrics.auth_failures, 1);
            return self.fail(ProtocolError::AccessRefused, None);
        };
        if let State::Authenticating {
            handshake, connect, ..
        } = std::mem::replace(&mut self.state, State::Closed)
        {
            self.principal = Some(principal);
            self.send_connect(&connect, handshake, now);
        }
    }

    /// The client's CONNECT: check it, then queue the upstream CONNECT.
    pub(super) fn connect(&mut self, frame: Frame, now: Instant) {
        if !frame.command.is_connect() {
            return self.fail(ProtocolError::ExpectedConnect, frame.receipt());
        }
        if let Err(e) = negotiate_version(frame.accept_version(), &self.allowed) {
            return self.send_error(version_refusal(&e));
        }
        // V2: no accept-version means 1.0; otherwise the client's list within ours.
        let offered: Vec<Version> = match frame.accept_version() {
            None => vec![Version::V1_0],
            Some(list) => parse_accept_version(list)
                .unwrap_or_default()
                .into_iter()
                .filter(|v| self.allowed.contains(v))
                .collect(),
        };
        let client_heartbeat = match HeartBeat::from_header(frame.heart_beat()) {
            Ok(hb) => hb,
            Err(_) if frame.accept_version().is_none() => HeartBeat::new(0, 0),
            Err(_) => return self.fail(ProtocolError::MalformedHeartBeat, None),
        };
        let upstream = self.upstream_connect(&frame, &offered);
        let handshake = Handshake {
            offered,
            client_heartbeat,
        };
        if self.relay().login.is_empty() {
            return self.send_connect(&upstream, handshake, now);
        }
        // One shared upstream login: the relay checks who the client is first.
        self.state = State::Authenticating {
            handshake,
            connect: Box::new(upstream),
            request: Some(AuthRequest {
                login: frame.login().map(str::to_owned),
                passcode: frame.passcode().map(str::to_owned),
            }),
        };
    }

    /// The CONNECT the upstream gets for the client's `frame`.
    fn upstream_connect(&self, frame: &Frame, offered: &[Version]) -> Frame {
        let relay = self.relay();
        let mut upstream = Frame::new(Command::Connect);
        if frame.accept_version().is_some() {
            let list: Vec<&str> = offered.iter().map(|v| v.as_str()).collect();
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
        upstream
    }

    /// Queues the upstream CONNECT; the loop connects.
    fn send_connect(&mut self, connect: &Frame, handshake: Handshake, now: Instant) {
        let encoder = Encoder::new(None);
        self.to_upstream
            .append(|buf| write_frame(&encoder, connect, buf));
        self.state = State::Connecting {
            since: now,
            handshake,
        };
    }

    /// The upstream's CONNECTED: the session opens on both sides.
    pub(super) fn connected(&mut self, frame: Frame, now: Instant) -> Option<Version> {
        let State::Connecting { handshake, .. } = &self.state else {
            return None;
        };
        if frame.command != Command::Connected {
            self.fail(RelayError::NotConnected(frame.command), None);
            return None;
        }
        let version = match frame.version() {
            None => Some(Version::V1_0),
            Some(v) => v.parse::<Version>().ok(),
        };
        let Some(version) = version.filter(|v| handshake.offered.contains(v)) else {
            self.fail(RelayError::VersionNotOffered, None);
            return None;
        };
        let client_heartbeat = handshake.client_heartbeat;
        let mut connected = Frame::connected(version);
        for (name, value) in frame.headers().iter() {
            if name != names::VERSION && name != names::HEART_BEAT {
                connected = connected.header(name, value);
            }
        }
        let mut open = Open {
            version,
            client_beats: None,
            upstream_beats: None,
        };
        if version >= Version::V1_1 {
            let hb = self.relay().heartbeat_ms;
            let ours = HeartBeat::new(hb, hb);
            let Ok(theirs) = HeartBeat::from_header(frame.heart_beat()) else {
                self.fail(RelayError::MalformedHeartBeat, None);
                return None;
            };
            let bounds = &self.config.heartbeat;
            open.upstream_beats = beater(negotiate_heartbeat(ours, theirs), bounds.grace, now);
            // Answer the client as the broker does: mirrored, clamped to [heartbeat].
            let (ours, intervals) = rules::answer_heartbeat(client_heartbeat, bounds);
            open.client_beats = beater(intervals, bounds.grace, now);
            connected = connected.header(names::HEART_BEAT, &ours.to_string());
        }
        let encoder = Encoder::new(Some(version));
        self.to_client
            .append(|buf| write_frame(&encoder, &connected, buf));
        tracing::info!(peer = %self.peer, %version, "relayed session open");
        self.state = State::Open(open);
        Some(version)
    }
}

/// A heart-beat timer for `intervals`, unless both sides are off.
fn beater(intervals: HeartBeatIntervals, grace: f64, now: Instant) -> Option<HeartBeater> {
    (!intervals.is_off()).then(|| HeartBeater::new(intervals, grace, now))
}
