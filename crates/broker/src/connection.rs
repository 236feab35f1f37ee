//! One client session: the thin loop between a transport and a [`Session`].
//!
//! Owns the reader side (transport → parser → session → router channel, plus the
//! session's timers and the shutdown signal) and the writer task (outbox →
//! transport, whole buffer per write: coalescing). It decides nothing about STOMP
//! and knows no transport: [`serve_stomp`] takes any [`Inbound`]/[`Outbound`] pair
//! (TCP, TLS, WebSocket) with the bytes already read while telling them apart.
//!
//! Login: when the session asks for a verdict, the reader stops reading and
//! parsing (pipelined frames wait in the buffer, the transport pushes back) and
//! awaits the authenticator next to the timers; the verdict goes back to the
//! session, then parsing resumes where it stopped.
//!
//! Back-pressure: the reader reads nothing while the connection's outbox is full,
//! so what one read's frames can add to it (RECEIPTs, deliveries to itself) is
//! bounded, and a client that never reads stalls instead of growing the broker.
//! The frame-completion timer does not run while reading is paused.
//!
//! Flow control: the reader also pauses while the router has parked this
//! connection as a publisher on a congested receiver (see `outbox.rs`), for at
//! most [`MAX_PAUSE`]; after a pause that long it is exempt from pausing for
//! [`EXEMPT`], so a receiver that stopped reading soon meets the slow-consumer
//! bound. Heart-beats from the client are not expected while paused.
//!
//! Memory: the read buffer grows to the frame being read and is dropped whenever
//! everything read has been parsed; the outbox gives back large buffers once
//! drained.

use crate::auth::Verdict;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Take};
use crate::router::{ConnId, RouterCommand};
use crate::server::{Shared, ToRouter};
use crate::session::Session;
use crate::transport::{CloseReason, Inbound, Outbound};
use bytes::BytesMut;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use stompkit_frame::Version;
use stompkit_wire::{ParseError, Parser};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The authenticator's answer in the making.
pub(crate) type PendingVerdict<'a> = Option<Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>>;

/// Longest a publisher's reading is paused for a congested receiver.
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(2);
/// How long a publisher whose pause timed out is not paused again.
pub(crate) const EXEMPT: Duration = Duration::from_secs(5);

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
}

/// Serves one STOMP session over `transport` until it ends.
pub(crate) async fn serve_stomp<I: Inbound, O: Outbound>(
    transport: StompTransport<I, O>,
    conn: ConnId,
    shared: Arc<Shared>,
) {
    let StompTransport {
        mut inbound,
        outbound,
        prefix,
        versions,
        peer,
        accepted,
    } = transport;
    let config = shared.config.clone();
    let outbox = Arc::new(Outbox::new(config.limits.max_outbox_bytes));
    let mut write_task = tokio::spawn(write_loop(
        outbound,
        outbox.clone(),
        Some((shared.router.clone(), conn)),
        Some(shared.metrics.clone()),
    ));
    let mut session = Session::new(
        config.clone(),
        conn,
        peer,
        outbox.clone(),
        shared.metrics.clone(),
        accepted.into_std(),
    );
    session.limit_versions(versions);
    let mut parser = Parser::with_config(config.parser_config());
    let mut buf = prefix;
    let mut out: Vec<RouterCommand> = Vec::new();
    let mut shutdown = shared.shutdown.clone();
    tracing::info!(%peer, conn, "connection accepted");
    let mut lost = false;
    let mut verdict: PendingVerdict<'_> = None;
    let mut exempt_until: Option<Instant> = None;
    if !buf.is_empty() {
        Metrics::add(&shared.metrics.bytes_in, buf.len() as u64);
        on_bytes(&mut session, &mut parser, &mut buf, &mut out, &mut inbound);
        verdict = ask(&shared, &mut session, peer);
        lost = !forward(&shared.router, &mut out).await;
    }
    while !lost && !session.is_closed() && !outbox.is_closing() {
        let deadline = session.poll_timeout();
        let timer = async move {
            match deadline {
                Some(t) => tokio::time::sleep_until(Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        let full = outbox.is_full();
        let authenticating = verdict.is_some();
        let paused = !full && outbox.is_paused();
        if full || authenticating || paused {
            // Not reading: a partly read frame waits for us, not for the client.
            session.set_in_frame(Instant::now().into_std(), false);
        }
        if exempt_until.is_some_and(|t| t <= Instant::now()) {
            exempt_until = None;
            outbox.set_exempt(false);
        }
        tokio::select! {
            read = inbound.read(&mut buf), if !full && !authenticating && !paused => {
                let n = match read {
                    Ok(0) | Err(_) => {
                        lost = true;
                        break;
                    }
                    Ok(n) => n,
                };
                Metrics::add(&shared.metrics.bytes_in, n as u64);
                on_bytes(&mut session, &mut parser, &mut buf, &mut out, &mut inbound);
            }
            _ = outbox.room(), if full && !authenticating => {
                // Reading again: a partly read frame gets a fresh frame timeout.
                session.set_in_frame(Instant::now().into_std(), parser.in_frame());
            }
            v = wait(&mut verdict) => {
                verdict = None;
                let now = Instant::now().into_std();
                if let Some(version) = session.handle_verdict(v, now, &mut out) {
                    parser.set_version(version);
                }
                if session.is_closed() {
                    inbound.set_close_reason(CloseReason::Policy);
                }
                // Frames pipelined after CONNECT (a partly read one gets a fresh
                // frame timeout).
                parse(&mut session, &mut parser, &mut buf, &mut out, &mut inbound, now);
            }
            resumed = tokio::time::timeout(MAX_PAUSE, outbox.resumed()), if paused => {
                if resumed.is_err() {
                    outbox.set_exempt(true);
                    outbox.resume_reading();
                    exempt_until = Some(Instant::now() + EXEMPT);
                }
                // What the client sent meanwhile is unread: count it as heard from.
                session.on_bytes(Instant::now().into_std(), parser.in_frame());
            }
            _ = timer => {
                if paused {
                    session.on_bytes(Instant::now().into_std(), false);
                }
                session.handle_timeout(Instant::now().into_std(), &mut out);
                if session.is_closed() {
                    inbound.set_close_reason(CloseReason::Policy);
                }
            }
            _ = shutdown.changed() => {
                inbound.set_close_reason(CloseReason::GoingAway);
                session.shutdown(&mut out);
            }
            _ = outbox.closed() => {}
        }
        if verdict.is_none() {
            verdict = ask(&shared, &mut session, peer);
        }
        lost = !forward(&shared.router, &mut out).await;
    }
    // An unfinished login check is abandoned with the connection.
    drop(verdict);
    session.on_closed(&mut out);
    forward(&shared.router, &mut out).await;
    if lost {
        outbox.close();
    }
    // Give the writer a bounded time to flush the last frames (ERROR, RECEIPT).
    let linger = Duration::from_millis(config.server.close_linger_ms);
    let until = Instant::now() + linger;
    let closed_in_time = tokio::time::timeout_at(until, async {
        outbox.closed().await;
        let _ = (&mut write_task).await;
    })
    .await;
    if closed_in_time.is_err() {
        write_task.abort();
    } else {
        inbound
            .finish(until.saturating_duration_since(Instant::now()))
            .await;
    }
    tracing::info!(%peer, conn, "connection closed");
}

/// Parses what `buf` holds and hands every event to the session.
fn on_bytes<I: Inbound>(
    session: &mut Session,
    parser: &mut Parser,
    buf: &mut BytesMut,
    out: &mut Vec<RouterCommand>,
    inbound: &mut I,
) {
    let now = Instant::now().into_std();
    session.on_bytes(now, true);
    parse(session, parser, buf, out, inbound, now);
}

/// Hands the session every complete frame in `buf`, stopping while a login
/// verdict is pending or once the session is over.
fn parse<I: Inbound>(
    session: &mut Session,
    parser: &mut Parser,
    buf: &mut BytesMut,
    out: &mut Vec<RouterCommand>,
    inbound: &mut I,
    now: std::time::Instant,
) {
    while !session.awaiting_verdict() && !session.is_closed() {
        let event = match parser.parse(buf) {
            Ok(None) => break,
            Ok(Some(event)) => Ok(event),
            Err(e) => {
                inbound.set_close_reason(close_reason(&e));
                Err(e)
            }
        };
        let failed = event.is_err();
        session.handle_event(event, out);
        if failed {
            break;
        }
    }
    session.set_in_frame(now, parser.in_frame());
    if buf.is_empty() {
        // Frames keep their own references; an idle connection holds no buffer.
        *buf = BytesMut::new();
    }
}

/// Starts the login check when the session has just asked for one.
fn ask<'a>(shared: &'a Shared, session: &mut Session, peer: SocketAddr) -> PendingVerdict<'a> {
    let request = session.take_auth_request()?;
    Some(Box::pin(shared.auth.authenticate(peer, request)))
}

/// The pending verdict, or never.
pub(crate) async fn wait(verdict: &mut PendingVerdict<'_>) -> Verdict {
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

async fn forward(router: &mpsc::Sender<ToRouter>, out: &mut Vec<RouterCommand>) -> bool {
    for cmd in out.drain(..) {
        if router.send(ToRouter::Command(cmd)).await.is_err() {
            return false;
        }
    }
    true
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
                    && !outbox.is_full()
                    && outbox.take_blocked()
                {
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
