//! The network loop of one relayed client: client transport ↔ [`RelaySession`]
//! ↔ upstream byte stream.
//!
//! Owns one task per client that reads both peers, feeds both parsers (the
//! broker's parser and `[limits]`, both ways) and the session, and drives its
//! timers, and (with a configured upstream login) the relay's own login check;
//! plus one writer task per peer (the broker's `write_loop`) that drains that
//! peer's [`Outbox`] a whole buffer per write. The client side is any
//! [`Inbound`]/[`Outbound`] pair (TCP, WebSocket), the upstream side a TCP or
//! TLS stream. Back-pressure: the loop reads a peer only while the outbox
//! toward the other peer is below `max_outbox_bytes` (then waits for
//! [`Outbox::room`]), so at most that plus one frame is held per direction. It
//! decides nothing about STOMP.

use super::Upstream;
use super::session::{RelaySession, Side};
use crate::connection::{PendingVerdict, StompTransport, close_reason, wait, write_loop};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::server::Shared;
use crate::transport::{CloseReason, Inbound, Outbound, StreamIn, StreamOut};
use bytes::BytesMut;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use stompkit_frame::Version;
use stompkit_wire::Parser;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One peer's read side: its buffer and parser.
struct Reading {
    buf: BytesMut,
    parser: Parser,
}

impl Reading {
    fn new(shared: &Shared, buf: BytesMut) -> Reading {
        Reading {
            buf,
            parser: Parser::with_config(shared.config.parser_config()),
        }
    }

    /// Feeds every complete event to the session while it takes input from
    /// `side`. Returns the version when the session opened, and the client's
    /// parse error (which decides a WebSocket's close code).
    fn feed(
        &mut self,
        session: &mut RelaySession,
        side: Side,
        now: Instant,
    ) -> (Option<Version>, Option<CloseReason>) {
        let (mut opened, mut reason) = (None, None);
        while side == Side::Upstream || session.reads_client() {
            let event = match self.parser.parse(&mut self.buf) {
                Ok(None) => break,
                Ok(Some(event)) => Ok(event),
                Err(e) => {
                    reason = Some(close_reason(&e));
                    Err(e)
                }
            };
            let failed = event.is_err();
            if let Some(version) = session.handle_event(side, event, now.into_std()) {
                self.parser.set_version(version);
                opened = Some(version);
            }
            if failed || session.is_closed() {
                break;
            }
        }
        if self.buf.is_empty() {
            // Frames keep their own references; an idle peer holds no buffer.
            self.buf = BytesMut::new();
        }
        (opened, reason)
    }
}

/// The upstream connection once open: its reading half.
type UpstreamIn = StreamIn<tokio::io::ReadHalf<Box<dyn stompkit_tokio::Transport>>>;

/// Relays one client session over `transport` until both sides are closed.
pub(crate) async fn serve<I: Inbound, O: Outbound>(
    transport: StompTransport<I, O>,
    upstream: Arc<Upstream>,
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
    let bound = config.limits.max_outbox_bytes;
    let (to_client, to_upstream) = (Arc::new(Outbox::new(bound)), Arc::new(Outbox::new(bound)));
    let client_task = tokio::spawn(write_loop(
        outbound,
        to_client.clone(),
        None,
        Some(shared.metrics.clone()),
    ));
    let mut upstream_task: Option<JoinHandle<()>> = None;
    let mut upstream_in: Option<UpstreamIn> = None;
    let mut session = RelaySession::new(
        config.clone(),
        peer,
        versions.to_vec(),
        to_client.clone(),
        to_upstream.clone(),
        shared.metrics.clone(),
        accepted.into_std(),
    );
    let mut from_client = Reading::new(&shared, prefix);
    let mut from_upstream = Reading::new(&shared, BytesMut::new());
    let mut shutdown = shared.shutdown.clone();
    let mut verdict: PendingVerdict = None;
    tracing::info!(%peer, %upstream, "relay: connection accepted");
    if !from_client.buf.is_empty() {
        // The bytes read while telling TCP STOMP from HTTP.
        Metrics::add(&shared.metrics.bytes_in, from_client.buf.len() as u64);
        client_bytes(&mut session, &mut from_client, &mut inbound);
    }
    while !session.is_closed() {
        if verdict.is_none()
            && let Some(request) = session.take_auth_request()
        {
            verdict = Some(Box::pin(shared.auth.authenticate(peer, request)));
        }
        if session.wants_upstream() && upstream_in.is_none() {
            tokio::select! {
                connected = upstream.connect() => match connected {
                    Ok(stream) => {
                        let (reader, writer) = tokio::io::split(stream);
                        upstream_in = Some(StreamIn::new(reader));
                        upstream_task = Some(tokio::spawn(write_loop(
                            StreamOut(writer),
                            to_upstream.clone(),
                            None,
                            None,
                        )));
                    }
                    Err(reason) => session.upstream_unavailable(&reason),
                },
                _ = shutdown.changed() => {
                    inbound.set_close_reason(CloseReason::GoingAway);
                    session.shutdown();
                }
            }
            continue;
        }
        // Back-pressure: a side is not read while the outbox toward the other is full.
        let paused = [
            (
                Side::Client,
                session.reads_client() && to_upstream.is_full(),
            ),
            (Side::Upstream, upstream_in.is_some() && to_client.is_full()),
        ];
        let read_client = session.reads_client() && !paused[0].1;
        let read_upstream = upstream_in.is_some() && !paused[1].1;
        let not_reading = |session: &mut RelaySession| {
            let now = Instant::now().into_std();
            for (side, _) in paused.iter().filter(|(_, paused)| *paused) {
                session.not_reading(*side, now);
            }
        };
        not_reading(&mut session);
        let deadline = session.poll_timeout();
        let timer = async move {
            match deadline {
                Some(t) => tokio::time::sleep_until(Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = inbound.read(&mut from_client.buf), if read_client => match read {
                Ok(0) | Err(_) => session.client_closed(),
                Ok(n) => {
                    Metrics::add(&shared.metrics.bytes_in, n as u64);
                    client_bytes(&mut session, &mut from_client, &mut inbound);
                }
            },
            read = read_upstream_once(upstream_in.as_mut(), &mut from_upstream.buf), if read_upstream => match read {
                Ok(0) | Err(_) => session.upstream_closed(),
                Ok(_) => {
                    let now = Instant::now();
                    session.on_bytes(Side::Upstream, now.into_std(), false);
                    if let (Some(version), _) = from_upstream.feed(&mut session, Side::Upstream, now) {
                        // Open: the client's frames after its CONNECT can be parsed now.
                        from_client.parser.set_version(version);
                        client_bytes(&mut session, &mut from_client, &mut inbound);
                    }
                }
            },
            _ = timer => {
                not_reading(&mut session);
                session.handle_timeout(Instant::now().into_std());
                if session.is_closed() {
                    inbound.set_close_reason(CloseReason::Policy);
                }
            }
            _ = shutdown.changed() => {
                inbound.set_close_reason(CloseReason::GoingAway);
                session.shutdown();
            }
            _ = to_upstream.room(), if paused[0].1 => {}
            _ = to_client.room(), if paused[1].1 => {}
            v = wait(&mut verdict) => {
                verdict = None;
                session.handle_verdict(v, Instant::now().into_std());
            }
            _ = to_client.closed() => session.client_closed(),
            _ = to_upstream.closed(), if upstream_in.is_some() => session.upstream_closed(),
        }
    }
    // Give both writers a bounded time to flush their last frames (ERROR,
    // RECEIPT, DISCONNECT), then the client's transport its closing handshake.
    let until = Instant::now() + Duration::from_millis(config.server.close_linger_ms);
    let mut flushed = true;
    for task in [Some(client_task), upstream_task].into_iter().flatten() {
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
    tracing::info!(%peer, "relay: connection closed");
}

/// Hands what the client's buffer holds to the session (also when the
/// session has just opened and bytes after CONNECT were waiting).
fn client_bytes<I: Inbound>(
    session: &mut RelaySession,
    from_client: &mut Reading,
    inbound: &mut I,
) {
    let now = Instant::now();
    let (_, reason) = from_client.feed(session, Side::Client, now);
    if let Some(reason) = reason {
        inbound.set_close_reason(reason);
    }
    session.on_bytes(Side::Client, now.into_std(), from_client.parser.in_frame());
}

/// Reads from the upstream once it is connected (pending until then).
async fn read_upstream_once(
    reader: Option<&mut UpstreamIn>,
    buf: &mut BytesMut,
) -> io::Result<usize> {
    match reader {
        Some(reader) => reader.read(buf).await,
        None => std::future::pending().await,
    }
}
