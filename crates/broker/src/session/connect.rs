//! CONNECT/STOMP and the login verdict: the part of the session before it opens.
//!
//! Owns checking the first frame, negotiating the version (V1–V8) and the
//! heart-beats (H1–H5, answered by the rules layer), preparing CONNECTED, and
//! the verdict that sends it (or ERROR `access refused`). Does not judge the
//! credentials (the `Authenticator` does, off the state machine) nor handle
//! frames after CONNECT (the sibling modules do).

use super::{Open, SERVER, Session, State};
use crate::auth::{AuthRequest, Verdict};
use crate::metrics::Metrics;
use crate::router::RouterCommand;
use crate::rules::{self, ProtocolError, version_refusal, write_frame};
use std::time::Instant;
use stompkit_frame::{Frame, Version, names};
use stompkit_negotiate::{HeartBeat, HeartBeatIntervals, HeartBeater, negotiate_version};
use stompkit_wire::Encoder;

/// A CONNECT the protocol accepted, held until the login verdict.
#[derive(Debug)]
pub(super) struct PendingConnect {
    version: Version,
    intervals: Option<HeartBeatIntervals>,
    connected: Frame,
    request: Option<AuthRequest>,
    /// CONNECT's `client-id`.
    client_id: Option<Box<str>>,
}

impl Session {
    /// The credentials of the CONNECT waiting for its verdict (once).
    pub fn take_auth_request(&mut self) -> Option<AuthRequest> {
        match &mut self.state {
            State::Authenticating { pending, .. } => pending.request.take(),
            _ => None,
        }
    }

    /// Checks CONNECT and negotiates; the session opens on the login verdict.
    pub(super) fn connect(
        &mut self,
        frame: Frame,
        since: Instant,
        versions: &'static [Version],
        out: &mut Vec<RouterCommand>,
    ) {
        if !frame.command.is_connect() {
            return self.fail(ProtocolError::ExpectedConnect, frame.receipt(), out);
        }
        // V2: no accept-version means 1.0.
        let version = match negotiate_version(frame.accept_version(), versions) {
            Ok(v) => v,
            Err(e) => return self.send_error(version_refusal(&e), out),
        };
        let mut connected = Frame::connected(version)
            .header(names::SESSION, &format!("session-{}", self.conn))
            .header(names::SERVER, SERVER);
        let mut intervals = None;
        if version >= Version::V1_1 {
            let Ok(theirs) = HeartBeat::from_header(frame.heart_beat()) else {
                return self.fail(ProtocolError::MalformedHeartBeat, None, out);
            };
            let (ours, negotiated) = rules::answer_heartbeat(theirs, &self.config.heartbeat);
            if !negotiated.is_off() {
                intervals = Some(negotiated);
            }
            connected = connected.header(names::HEART_BEAT, &ours.to_string());
        }
        let request = AuthRequest {
            login: frame.login().map(str::to_owned),
            passcode: frame.passcode().map(str::to_owned),
        };
        let pending = Box::new(PendingConnect {
            version,
            intervals,
            connected,
            request: Some(request),
            client_id: frame.get("client-id").map(Box::from),
        });
        self.state = State::Authenticating { since, pending };
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
        let principal = match verdict {
            Verdict::Accepted(principal) => principal,
            Verdict::Refused => {
                Metrics::add(&self.metrics.auth_failures, 1);
                self.fail(ProtocolError::AccessRefused, None, out);
                return None;
            }
        };
        let pending = match std::mem::replace(&mut self.state, State::Closed) {
            State::Authenticating { pending, .. } => pending,
            other => {
                self.state = other;
                return None;
            }
        };
        let PendingConnect {
            version,
            intervals,
            connected,
            client_id,
            ..
        } = *pending;
        let grace = self.config.heartbeat.grace;
        let heartbeat = intervals.map(|intervals| HeartBeater::new(intervals, grace, now));
        let encoder = Encoder::new(Some(version));
        self.outbox
            .append(|buf| write_frame(&encoder, &connected, buf));
        tracing::info!(
            peer = %self.peer,
            conn = self.conn,
            login = principal.login.as_deref().unwrap_or(""),
            %version,
            "session open"
        );
        self.principal = Some(principal);
        self.state = State::Open(Open::new(version, heartbeat, client_id));
        out.push(RouterCommand::Connect {
            conn: self.conn,
            outbox: self.outbox.clone(),
            version,
        });
        Some(version)
    }
}
