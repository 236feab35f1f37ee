//! The connection driver: the one loop that runs a STOMP session over a
//! transport, in local and in relay mode.
//!
//! Owns the reader side (transport → read buffer → parser → the session's
//! frames, plus the session's timers and the shutdown signal), the writer task
//! (outbox → transport, whole buffer per write: coalescing) and the end of a
//! connection (linger, then close). It decides nothing about STOMP and knows no
//! transport: [`drive`] takes any [`Inbound`]/[`Outbound`] pair (TCP, TLS,
//! WebSocket) with the bytes already read while telling them apart, and any
//! [`Wiring`]: what differs between the broker's own session
//! (`connection/local.rs`: commands to the router) and a relayed one
//! (`relay/connection.rs`: an upstream connection, read here too). The wiring
//! is a type parameter, so every frame's path is statically dispatched.
//!
//! Login: when the session asks for a verdict, the reader stops reading and
//! parsing (pipelined frames wait in the buffer, the transport pushes back) and
//! awaits the authenticator next to the timers; the verdict goes back to the
//! session, then parsing resumes where it stopped.
//!
//! Back-pressure: the reader reads nothing while the outbox its frames fill is
//! full ([`Wiring::pushback`]: the connection's own outbox, or in relay mode
//! the one toward the upstream), so what one read's frames can add to it is
//! bounded, and a client that never reads stalls instead of growing the broker.
//! The frame-completion timer does not run while reading is paused.
//!
//! Flow control: the reader also pauses while the router has parked this
//! connection as a publisher on a congested receiver (see `flow.rs`), for at
//! most [`MAX_PAUSE`](crate::flow::MAX_PAUSE); after a pause that long it is exempt from pausing
//! for [`EXEMPT`](crate::flow::EXEMPT) ([`Exemption`]), so a receiver that stopped reading soon
//! meets the slow-consumer bound. Heart-beats from the client are not expected
//! while paused.
//!
//! Reload: a configuration reload (SIGHUP, `reload.rs`) bumps a generation
//! carried by the same watch as the shutdown signal, so each round's wait
//! registers one waker for both (one lock, as for the shutdown signal alone);
//! a read from the client costs one atomic load to see a reload the wait has
//! not. The session's principal is then checked again with the new
//! authenticator ([`Wiring::reauthorize`]), once any login in progress has its
//! verdict.
//!
//! Memory: the read buffer grows to the frame being read and is dropped whenever
//! everything read has been parsed; the outbox gives back large buffers once
//! drained.

mod local;

pub(crate) use local::serve_local;

use crate::auth::{AuthRequest, Authenticator, Verdict};
use crate::flow::Exemption;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Take};
use crate::registry::TransportKind;
use crate::reload::Signals;
use crate::router::{ConnId, RouterCommand};
use crate::shared::{Shared, ToRouter};
use crate::transport::{CloseReason, Inbound, Outbound};
use bytes::BytesMut;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use stompkit_frame::Version;
use stompkit_wire::{Event, ParseError, Parser};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The authenticator's answer in the making (one per login, not per frame).
type PendingVerdict = Option<Pin<Box<dyn Future<Output = Verdict> + Send>>>;

/// The clock the sessions take (they are sans-IO and read none).
type Now = std::time::Instant;

/// A connection whose transport is settled, ready for a STOMP session.
pub(crate) struct StompTransport<I, O> {
    /// Peer → STOMP bytes.
    pub(crate) inbound: I,
    /// STOMP bytes → peer.
    pub(crate) outbound: O,
    /// Bytes already read from the peer (while sniffing): the start of its STOMP.
    pub(crate) prefix: BytesMut,
    /// Versions CONNECT may negotiate, oldest first (a WebSocket sub-protocol caps them).
    pub(crate) versions: &'static [Version],
    /// The peer's address.
    pub(crate) peer: SocketAddr,
    /// When the connection was accepted (starts the login timeout).
    pub(crate) accepted: Instant,
    /// What carries it (the admin API shows it).
    pub(crate) kind: TransportKind,
}

/// Why the client is not read this round, as the wiring's timers see it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Hold {
    /// The outbox the client's frames fill ([`Wiring::pushback`]) is full.
    pub(crate) full: bool,
    /// The connection is a publisher paused by flow control.
    pub(crate) paused: bool,
}

/// What [`Wiring::prepare`] did before this round's wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prepared {
    /// Nothing: wait for the next event.
    Ready,
    /// It waited for something of its own: start the round again.
    Again,
    /// The broker is shutting down (seen while the wiring waited).
    ShuttingDown,
}

/// What differs between a local session and a relayed one: the steps of the
/// driver that touch the session, each named for when the driver takes it.
/// Methods that take `now` get the instant the driver read once per event.
pub(crate) trait Wiring: Send {
    /// What [`next`](Wiring::next) yields (the wiring's own peer, if any).
    type Event: Send;
    /// How the client's transport closes after a login refused by the
    /// verdict ([`on_verdict`](Wiring::on_verdict)); `None`: normally.
    const REFUSAL_CLOSE: Option<CloseReason>;

    /// The outbox toward the client, which the driver's writer task drains.
    fn outbox(&self) -> &Arc<Outbox>;
    /// The outbox the client's frames fill: reading stops while it is full.
    fn pushback(&self) -> &Arc<Outbox>;
    /// Where the writer says that the client's outbox drained after the
    /// router held messages back from it (local mode only).
    fn drained_to(&self) -> Option<(mpsc::Sender<ToRouter>, ConnId)>;
    /// Logs the accepted connection.
    fn log_accepted(&self, peer: SocketAddr);
    /// Logs the closed connection.
    fn log_closed(&self, peer: SocketAddr);
    /// Whether the loop ends.
    fn is_over(&self) -> bool;
    /// Whether the session is over (a timer or a rule closed it).
    fn is_closed(&self) -> bool;
    /// Whether the session reads the client now (a login being checked and
    /// back-pressure aside).
    fn reads_client(&self) -> bool;
    /// Whether the parser may hand the session the client's next frame.
    fn takes_frames(&self) -> bool;
    /// Bytes were read from the client (before they are parsed).
    fn bytes_read(&mut self, now: Now);
    /// One parser event from the client; the version the parser switches to.
    fn client_event(&mut self, event: Result<Event, ParseError>, now: Now) -> Option<Version>;
    /// Parsing stopped; `in_frame` says whether a frame is partly read.
    fn parsed(&mut self, now: Now, in_frame: bool);
    /// The client is not read this round: nothing it sends may time out.
    fn not_reading(&mut self, now: Now);
    /// A flow-control pause ended: what the client sent meanwhile is unread,
    /// but it counts as heard from.
    fn heard(&mut self, now: Now, in_frame: bool);
    /// The full outbox has room again: reading resumes.
    fn room(&mut self, now: Now, in_frame: bool);
    /// The session's credentials, once, when it has just asked for a verdict.
    fn take_auth_request(&mut self) -> Option<AuthRequest>;
    /// The login verdict; the version the parser switches to.
    fn on_verdict(&mut self, verdict: Verdict, now: Now) -> Option<Version>;
    /// The next instant [`on_timer`](Wiring::on_timer) is due.
    fn poll_timeout(&self) -> Option<Now>;
    /// The session's timer fired; `hold` is why the client was not read.
    fn on_timer(&mut self, now: Now, hold: Hold);
    /// The broker is shutting down.
    fn shutdown(&mut self);
    /// The configuration was reloaded: the session's principal as `auth` (the
    /// new authenticator) sees it (new permissions, or ERROR and close).
    fn reauthorize(&mut self, auth: &Authenticator);
    /// The client's transport ended (EOF or a read error).
    fn client_gone(&mut self);
    /// The outbox toward the client closed.
    fn client_outbox_closed(&mut self);
    /// Runs before each round's wait; may wait itself (but for `shutdown`).
    fn prepare(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> impl Future<Output = Prepared> + Send;
    /// The wiring's own next event (never, when it has none).
    fn next(&mut self) -> impl Future<Output = Self::Event> + Send;
    /// Handles [`next`](Wiring::next)'s event; a version when the session has
    /// just opened: the client's parser switches to it and parses what waits.
    fn on_event(&mut self, event: Self::Event) -> Option<Version>;
    /// After each round: hands on what the session produced.
    fn flush(&mut self) -> impl Future<Output = ()> + Send;
    /// The loop ended: last words; returns another writer task to linger for.
    fn finish(&mut self) -> impl Future<Output = Option<JoinHandle<()>>> + Send;
}

/// The client's read side: its buffer and parser.
struct Reading {
    buf: BytesMut,
    parser: Parser,
}

/// The driver's state for one connection.
struct Client<I> {
    inbound: I,
    reading: Reading,
    outbox: Arc<Outbox>,
    pushback: Arc<Outbox>,
    verdict: PendingVerdict,
    exemption: Exemption<Instant>,
    /// The shutdown signal, for [`Wiring::prepare`] (the round's wait
    /// watches `signals`).
    shutdown: watch::Receiver<bool>,
    /// Changes when the configuration is reloaded or the broker shuts down.
    signals: watch::Receiver<Signals>,
    /// The reload generation the session's principal was last checked at.
    checked: u64,
    shared: Arc<Shared>,
    peer: SocketAddr,
}

/// Runs one session over `transport` with `wiring` until it ends, then
/// lingers for the writers and closes.
///
/// Not an `async fn`: everything is set up before the returned future is
/// built, and the future only captures what the session needs while it runs.
/// An `async fn` would keep its moved-from arguments beside the state built
/// from them in every connection's task (about 1 KiB per idle connection).
pub(crate) fn drive<W: Wiring, I: Inbound, O: Outbound>(
    mut wiring: W,
    transport: StompTransport<I, O>,
    shared: Arc<Shared>,
) -> impl Future<Output = ()> + Send {
    let StompTransport {
        inbound,
        outbound,
        prefix,
        peer,
        ..
    } = transport;
    let outbox = wiring.outbox().clone();
    let writer = tokio::spawn(write_loop(
        outbound,
        outbox.clone(),
        wiring.drained_to(),
        Some(shared.metrics.clone()),
    ));
    let mut signals = shared.signals();
    let Signals {
        shutting_down,
        generation: checked,
    } = *signals.borrow();
    if shutting_down {
        // Accepted as the shutdown began: the first wait sees it.
        signals.mark_changed();
    }
    let mut client = Client {
        inbound,
        reading: Reading {
            buf: prefix,
            parser: Parser::with_config(shared.config.parser_config()),
        },
        pushback: wiring.pushback().clone(),
        outbox,
        verdict: None,
        exemption: Exemption::default(),
        shutdown: shared.shutdown.clone(),
        signals,
        checked,
        shared,
        peer,
    };
    async move {
        wiring.log_accepted(peer);
        if !client.reading.buf.is_empty() {
            // The bytes read while telling TCP STOMP from HTTP.
            Metrics::add(
                &client.shared.metrics.bytes_in,
                client.reading.buf.len() as u64,
            );
            client.bytes_read(&mut wiring);
            wiring.flush().await;
        }
        while !wiring.is_over() {
            client.ask(&mut wiring);
            match wiring.prepare(&mut client.shutdown).await {
                Prepared::Ready => {}
                Prepared::Again => continue,
                Prepared::ShuttingDown => {
                    client.shut_down(&mut wiring);
                    continue;
                }
            }
            client.step(&mut wiring).await;
            wiring.flush().await;
        }
        // An unfinished login check is abandoned with the connection.
        client.verdict = None;
        let other = wiring.finish().await;
        let linger = Duration::from_millis(client.shared.config.server.close_linger_ms);
        close(
            client.inbound,
            [Some(writer), other].into_iter().flatten(),
            linger,
        )
        .await;
        wiring.log_closed(peer);
    }
}

impl<I: Inbound> Client<I> {
    /// Starts the login check when the session has just asked for one.
    fn ask<W: Wiring>(&mut self, wiring: &mut W) {
        if self.verdict.is_none()
            && let Some(request) = wiring.take_auth_request()
        {
            let (auth, peer) = (self.shared.authenticator(), self.peer);
            self.verdict = Some(Box::pin(
                async move { auth.authenticate(peer, request).await },
            ));
        }
    }

    /// One round: waits for the first of the client's bytes, room in a full
    /// outbox, the login verdict, the end of a pause, the session's timer, the
    /// shutdown signal, the client's outbox closing and the wiring's own event.
    async fn step<W: Wiring>(&mut self, wiring: &mut W) {
        let open = wiring.reads_client();
        let full = self.pushback.is_full();
        let login = self.verdict.is_some();
        let paused = !full && self.outbox.is_paused();
        let hold = Hold {
            full: open && full,
            paused,
        };
        if hold.full || login || paused {
            // Not reading: a partly read frame waits for us, not for the client.
            wiring.not_reading(Instant::now().into_std());
        }
        // The clock is read only while an exemption runs (not per round).
        if self.exemption.exempt_until().is_some() && self.exemption.expire(Instant::now()) {
            self.outbox.set_exempt(false);
        }
        let deadline = wiring.poll_timeout();
        let timer = async move {
            match deadline {
                Some(t) => tokio::time::sleep_until(Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        let read = open && !full && !login && !paused;
        tokio::select! {
            read = self.inbound.read(&mut self.reading.buf), if read => self.on_read(wiring, read),
            _ = self.pushback.room(), if hold.full && !login => {
                // Reading again: a partly read frame gets a fresh frame timeout.
                wiring.room(Instant::now().into_std(), self.reading.parser.in_frame());
            }
            verdict = wait(&mut self.verdict) => self.on_verdict(wiring, verdict),
            resumed = tokio::time::timeout_at(
                Exemption::pause_deadline(Instant::now()),
                self.outbox.resumed(),
            ), if paused => {
                self.on_resumed(wiring, resumed.is_err());
            }
            _ = timer => {
                wiring.on_timer(Instant::now().into_std(), hold);
                if wiring.is_closed() {
                    self.inbound.set_close_reason(CloseReason::Policy);
                }
            }
            Ok(()) = self.signals.changed() => self.on_signals(wiring, login),
            _ = self.outbox.closed() => wiring.client_outbox_closed(),
            event = wiring.next() => {
                if let Some(version) = wiring.on_event(event) {
                    // Open: the client's frames after its CONNECT can be parsed now.
                    self.reading.parser.set_version(version);
                    self.parse(wiring, Instant::now().into_std());
                }
            }
        }
    }

    /// What a read from the client gave.
    fn on_read<W: Wiring>(&mut self, wiring: &mut W, read: io::Result<usize>) {
        match read {
            Ok(0) | Err(_) => wiring.client_gone(),
            Ok(n) => {
                Metrics::add(&self.shared.metrics.bytes_in, n as u64);
                // Frames read after a reload obey it, even when this round's
                // wait took the read before the reload's signal.
                self.recheck_if_reloaded(wiring);
                self.bytes_read(wiring);
            }
        }
    }

    /// The shutdown signal or a reload: shut down, or check the principal
    /// again (not while a login is checked: its verdict is rechecked after).
    fn on_signals<W: Wiring>(&mut self, wiring: &mut W, login: bool) {
        let signals = *self.signals.borrow_and_update();
        if signals.shutting_down {
            // Again at a reload during the shutdown: the session ignores it.
            self.shut_down(wiring);
        } else if !login {
            self.reauthorize(wiring, signals.generation);
        }
    }

    /// [`reauthorize`](Client::reauthorize) when a reload came since the
    /// last check: one atomic load while the watch is unchanged (it is left
    /// unseen: the next round's wait handles what changed).
    fn recheck_if_reloaded<W: Wiring>(&mut self, wiring: &mut W) {
        if self.signals.has_changed().unwrap_or(false) {
            let generation = self.signals.borrow().generation;
            self.reauthorize(wiring, generation);
        }
    }

    /// The configuration was reloaded (`generation`): unless already done
    /// for it, the session's principal is checked again (a removed user's
    /// connection closes as a policy violation).
    fn reauthorize<W: Wiring>(&mut self, wiring: &mut W, generation: u64) {
        if generation == self.checked {
            return;
        }
        self.checked = generation;
        wiring.reauthorize(&self.shared.authenticator());
        if wiring.is_closed() {
            self.inbound.set_close_reason(CloseReason::Policy);
        }
    }

    /// Hands the session what the buffer holds, after a read.
    fn bytes_read<W: Wiring>(&mut self, wiring: &mut W) {
        let now = Instant::now().into_std();
        wiring.bytes_read(now);
        self.parse(wiring, now);
    }

    /// Hands the session every complete frame in the buffer while it takes
    /// frames (not while a login verdict is pending, not once it is over).
    fn parse<W: Wiring>(&mut self, wiring: &mut W, now: Now) {
        while wiring.takes_frames() {
            let event = match self.reading.parser.parse(&mut self.reading.buf) {
                Ok(None) => break,
                Ok(Some(event)) => Ok(event),
                Err(e) => {
                    self.inbound.set_close_reason(close_reason(&e));
                    Err(e)
                }
            };
            let failed = event.is_err();
            if let Some(version) = wiring.client_event(event, now) {
                self.reading.parser.set_version(version);
            }
            if failed {
                break;
            }
        }
        wiring.parsed(now, self.reading.parser.in_frame());
        if self.reading.buf.is_empty() {
            // Frames keep their own references; an idle connection holds no buffer.
            self.reading.buf = BytesMut::new();
        }
    }

    /// The login verdict: back to the session, then the frames pipelined after
    /// CONNECT (a partly read one gets a fresh frame timeout).
    fn on_verdict<W: Wiring>(&mut self, wiring: &mut W, verdict: Verdict) {
        self.verdict = None;
        let now = Instant::now().into_std();
        if let Some(version) = wiring.on_verdict(verdict, now) {
            self.reading.parser.set_version(version);
        }
        if wiring.is_closed()
            && let Some(reason) = W::REFUSAL_CLOSE
        {
            self.inbound.set_close_reason(reason);
        }
        // A reload while the login was checked (seen by the wait or not):
        // the frames pipelined after CONNECT obey it.
        let generation = self.signals.borrow().generation;
        self.reauthorize(wiring, generation);
        self.parse(wiring, now);
    }

    /// A flow-control pause ended, released or timed out (`flow.rs`'s table:
    /// `PauseTimedOut` starts an exemption).
    fn on_resumed<W: Wiring>(&mut self, wiring: &mut W, timed_out: bool) {
        if timed_out {
            self.outbox.set_exempt(true);
            self.outbox.resume_reading();
            self.exemption.start(Instant::now());
        }
        // What the client sent meanwhile is unread: count it as heard from.
        wiring.heard(Instant::now().into_std(), self.reading.parser.in_frame());
    }

    /// The broker is shutting down: the session says so, and a WebSocket
    /// closes with 1001.
    fn shut_down<W: Wiring>(&mut self, wiring: &mut W) {
        self.inbound.set_close_reason(CloseReason::GoingAway);
        wiring.shutdown();
    }
}

/// Gives the writers a bounded time to flush their last frames (ERROR,
/// RECEIPT, DISCONNECT), then the client's transport its closing handshake.
async fn close<I: Inbound>(
    inbound: I,
    writers: impl Iterator<Item = JoinHandle<()>>,
    linger: Duration,
) {
    let until = Instant::now() + linger;
    let mut flushed = true;
    for task in writers {
        let abort = task.abort_handle();
        if tokio::time::timeout_at(until, task).await.is_err() {
            abort.abort();
            flushed = false;
        }
    }
    if flushed {
        inbound
            .finish(until.saturating_duration_since(Instant::now()))
            .await;
    }
}

/// The pending verdict, or never.
async fn wait(verdict: &mut PendingVerdict) -> Verdict {
    match verdict {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// How a parse error ends the connection.
pub(crate) fn close_reason(error: &ParseError) -> CloseReason {
    match error {
        ParseError::CommandTooLong
        | ParseError::HeaderTooLong
        | ParseError::TooManyHeaders
        | ParseError::HeadersTooLarge
        | ParseError::BodyTooLarge => CloseReason::TooBig,
        _ => CloseReason::Protocol,
    }
}

/// Drains the outbox into the transport, a whole buffer per write. The router,
/// when given, hears when a connection it held messages back from has drained
/// (relay mode has none: its loop waits on [`Outbox::room`]); `metrics`, when
/// given, count the bytes written (to clients).
pub(crate) async fn write_loop<O: Outbound>(
    mut writer: O,
    outbox: Arc<Outbox>,
    router: Option<(mpsc::Sender<ToRouter>, ConnId)>,
    metrics: Option<Arc<Metrics>>,
) {
    let mut spare = BytesMut::new();
    loop {
        match outbox.take(&mut spare) {
            Take::Data => {
                let len = spare.len();
                if writer.write(&mut spare).await.is_err() {
                    outbox.close();
                    return;
                }
                if let Some(metrics) = &metrics {
                    Metrics::add(&metrics.bytes_out, len as u64);
                }
                spare.clear();
                if spare.capacity() > 256 * 1024 {
                    spare = BytesMut::new();
                }
                outbox.written();
                if let Some((router, conn)) = &router
                    && outbox.take_drained()
                {
                    // Fails only once the router task is gone: the broker is stopping.
                    let _ = router
                        .send(ToRouter::Command(RouterCommand::Drained { conn: *conn }))
                        .await;
                }
            }
            Take::Empty => outbox.wait().await,
            Take::Closed => {
                writer.close().await;
                return;
            }
        }
    }
}
