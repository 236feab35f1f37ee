//! A relayed session on the connection driver: client transport ↔
//! [`RelaySession`] ↔ upstream byte stream.
//!
//! Owns the [`Wiring`] of relay mode: the client side is the driver's (reading,
//! parsing, timers, login, linger); this wiring adds the upstream peer: it
//! connects when the session wants it (the broker's shutdown still heard), reads
//! and parses the upstream's bytes (the broker's parser and `[limits]`), runs its
//! writer task (the driver's `write_loop`, draining the [`Outbox`] toward the
//! upstream a whole buffer per write), and hands the driver that task to linger
//! for at the end. Back-pressure both ways: the client is not read while the
//! outbox toward the upstream is full ([`Wiring::pushback`]), the upstream not
//! while the one toward the client is, so at most `max_outbox_bytes` plus one
//! frame is held per direction. It decides nothing about STOMP.

use super::session::{RelaySession, Side};
use crate::auth::{AuthRequest, Authenticator, Verdict};
use crate::connection::{Hold, Prepared, StompTransport, Wiring, drive, write_loop};
use crate::outbox::Outbox;
use crate::router::ConnId;
use crate::shared::{Shared, ToRouter};
use crate::transport::{CloseReason, Inbound, Outbound, StreamIn, StreamOut};
use crate::upstream::Upstream;
use bytes::BytesMut;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use stompkit_frame::Version;
use stompkit_wire::{Event, ParseError, Parser};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The upstream connection once open: its reading half.
type UpstreamIn = StreamIn<tokio::io::ReadHalf<Box<dyn stompkit_tokio::Transport>>>;

/// Relays one client session over `transport` until both sides are closed.
pub(crate) fn serve<I: Inbound, O: Outbound>(
    transport: StompTransport<I, O>,
    upstream: Arc<Upstream>,
    shared: Arc<Shared>,
) -> impl Future<Output = ()> + Send {
    let config = shared.config.clone();
    let bound = config.limits.max_outbox_bytes;
    let (to_client, to_upstream) = (Arc::new(Outbox::new(bound)), Arc::new(Outbox::new(bound)));
    let session = RelaySession::new(
        config.clone(),
        transport.peer,
        transport.versions.to_vec(),
        to_client.clone(),
        to_upstream.clone(),
        shared.metrics.clone(),
        transport.accepted.into_std(),
    );
    let wiring = Relay {
        session,
        upstream,
        to_client,
        to_upstream,
        reader: None,
        writer: None,
        buf: BytesMut::new(),
        parser: Parser::with_config(config.parser_config()),
        held: false,
    };
    drive(wiring, transport, shared)
}

/// A relayed session and its upstream peer.
struct Relay {
    session: RelaySession,
    upstream: Arc<Upstream>,
    to_client: Arc<Outbox>,
    to_upstream: Arc<Outbox>,
    /// The upstream's reading half, once connected.
    reader: Option<UpstreamIn>,
    /// The upstream's writer task, once connected.
    writer: Option<JoinHandle<()>>,
    /// Bytes read from the upstream, not yet parsed.
    buf: BytesMut,
    /// The upstream's parser.
    parser: Parser,
    /// This round, the upstream is not read: the outbox toward the client is full.
    held: bool,
}

/// What happened on the upstream side.
pub(crate) enum UpstreamEvent {
    /// A read from the upstream.
    Read(io::Result<usize>),
    /// The outbox toward the client has room again.
    Room,
    /// The outbox toward the upstream closed (its writer failed).
    Closed,
}

impl Relay {
    /// Connects to the upstream (the broker's shutdown is still heard meanwhile).
    async fn connect(&mut self, shutdown: &mut watch::Receiver<bool>) -> Prepared {
        tokio::select! {
            connected = self.upstream.connect() => match connected {
                Ok(stream) => {
                    let (reader, writer) = tokio::io::split(stream);
                    self.reader = Some(StreamIn::new(reader));
                    self.writer = Some(tokio::spawn(write_loop(
                        StreamOut(writer),
                        self.to_upstream.clone(),
                        None,
                        None,
                    )));
                    Prepared::Again
                }
                Err(reason) => {
                    self.session.upstream_unavailable(&reason);
                    Prepared::Again
                }
            },
            _ = shutdown.changed() => Prepared::ShuttingDown,
        }
    }

    /// Bytes arrived from the upstream: every complete frame goes to the
    /// session. Returns the version when the session opened.
    fn upstream_bytes(&mut self) -> Option<Version> {
        let now = Instant::now();
        self.session.on_bytes(Side::Upstream, now, false);
        let mut opened = None;
        loop {
            let event = match self.parser.parse(&mut self.buf) {
                Ok(None) => break,
                Ok(Some(event)) => Ok(event),
                Err(e) => Err(e),
            };
            let failed = event.is_err();
            if let Some(version) = self.session.handle_event(Side::Upstream, event, now) {
                self.parser.set_version(version);
                opened = Some(version);
            }
            if failed || self.session.is_closed() {
                break;
            }
        }
        if self.buf.is_empty() {
            // Frames keep their own references; an idle peer holds no buffer.
            self.buf = BytesMut::new();
        }
        opened
    }
}

impl Wiring for Relay {
    type Event = UpstreamEvent;
    /// A login refused at the relay ends the client's transport normally.
    const REFUSAL_CLOSE: Option<CloseReason> = None;

    fn outbox(&self) -> &Arc<Outbox> {
        &self.to_client
    }

    fn pushback(&self) -> &Arc<Outbox> {
        &self.to_upstream
    }

    fn drained_to(&self) -> Option<(mpsc::Sender<ToRouter>, ConnId)> {
        None
    }

    fn log_accepted(&self, peer: SocketAddr) {
        let upstream = &self.upstream;
        tracing::info!(%peer, %upstream, "relay: connection accepted");
    }

    fn log_closed(&self, peer: SocketAddr) {
        tracing::info!(%peer, "relay: connection closed");
    }

    #[inline]
    fn is_over(&self) -> bool {
        self.session.is_closed()
    }

    #[inline]
    fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    #[inline]
    fn reads_client(&self) -> bool {
        self.session.reads_client()
    }

    #[inline]
    fn takes_frames(&self) -> bool {
        self.session.reads_client()
    }

    #[inline]
    fn bytes_read(&mut self, _now: Instant) {}

    #[inline]
    fn client_event(&mut self, event: Result<Event, ParseError>, now: Instant) -> Option<Version> {
        self.session.handle_event(Side::Client, event, now)
    }

    #[inline]
    fn parsed(&mut self, now: Instant, in_frame: bool) {
        self.session.on_bytes(Side::Client, now, in_frame);
    }

    fn not_reading(&mut self, now: Instant) {
        self.session.not_reading(Side::Client, now);
    }

    fn heard(&mut self, now: Instant, in_frame: bool) {
        self.session.on_bytes(Side::Client, now, in_frame);
    }

    fn room(&mut self, _now: Instant, _in_frame: bool) {
        // The next read restarts the frame timer as needed.
    }

    fn take_auth_request(&mut self) -> Option<AuthRequest> {
        self.session.take_auth_request()
    }

    fn on_verdict(&mut self, verdict: Verdict, now: Instant) -> Option<Version> {
        self.session.handle_verdict(verdict, now);
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    fn on_timer(&mut self, now: Instant, hold: Hold) {
        if hold.full {
            self.session.not_reading(Side::Client, now);
        }
        if self.held {
            self.session.not_reading(Side::Upstream, now);
        }
        self.session.handle_timeout(now);
    }

    fn shutdown(&mut self) {
        self.session.shutdown();
    }

    fn reauthorize(&mut self, auth: &Authenticator) {
        self.session.reauthorize(auth);
    }

    fn client_gone(&mut self) {
        self.session.client_closed();
    }

    fn client_outbox_closed(&mut self) {
        self.session.client_closed();
    }

    async fn prepare(&mut self, shutdown: &mut watch::Receiver<bool>) -> Prepared {
        if self.session.wants_upstream() && self.reader.is_none() {
            return self.connect(shutdown).await;
        }
        // Back-pressure: the upstream is not read while the outbox toward the client is full.
        self.held = self.reader.is_some() && self.to_client.is_full();
        if self.held {
            self.session.not_reading(Side::Upstream, Instant::now());
        }
        Prepared::Ready
    }

    async fn next(&mut self) -> UpstreamEvent {
        let connected = self.reader.is_some();
        let read = connected && !self.held;
        tokio::select! {
            read = read_upstream(self.reader.as_mut(), &mut self.buf), if read => UpstreamEvent::Read(read),
            _ = self.to_client.room(), if self.held => UpstreamEvent::Room,
            _ = self.to_upstream.closed(), if connected => UpstreamEvent::Closed,
            else => std::future::pending().await,
        }
    }

    fn on_event(&mut self, event: UpstreamEvent) -> Option<Version> {
        match event {
            UpstreamEvent::Read(Ok(0) | Err(_)) | UpstreamEvent::Closed => {
                self.session.upstream_closed();
                None
            }
            UpstreamEvent::Read(Ok(_)) => self.upstream_bytes(),
            UpstreamEvent::Room => None,
        }
    }

    async fn flush(&mut self) {}

    async fn finish(&mut self) -> Option<JoinHandle<()>> {
        self.writer.take()
    }
}

/// Reads from the upstream once it is connected (pending until then).
async fn read_upstream(reader: Option<&mut UpstreamIn>, buf: &mut BytesMut) -> io::Result<usize> {
    match reader {
        Some(reader) => reader.read(buf).await,
        None => std::future::pending().await,
    }
}
