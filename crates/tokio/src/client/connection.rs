//! The connection task: one per client, owning the socket.
//!
//! Owns the CONNECT handshake (version and heart-beat negotiation through
//! `stompkit-negotiate`), the subscription table, pending receipts, heart-beats
//! in both directions, graceful disconnect, the end of the session (every stream
//! and receipt gets the error), optional reconnect (with the connector's
//! failover and the policy's jittered backoff), the connection generation that
//! makes acknowledgements of earlier connections stale, routing replies to
//! waiting requests, and reporting connection events.
//!
//! A session runs a reader and a writer concurrently in the same task. The
//! reader never waits on anything but the socket and its heart-beat deadline, so
//! heart-beats and every subscription keep flowing while the writer is blocked
//! on a slow peer or while a consumer is slow (subscription buffers never block
//! it; see `subscription`).

use crate::client::config::ClientConfig;
use crate::client::connector::{Connector, Transport};
use crate::client::error::ClientError;
use crate::client::events::{ConnectionEvent, EventHub};
use crate::client::receipt::ReceiptResult;
use crate::client::request::Replies;
use crate::client::subscription::{Delivery, Message, Queue};
use crate::client::{Client, Inner, Shared};
use crate::codec::{Outgoing, StompCodec, shrink_buffer};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use stompkit_frame::{AckMode, Command, Frame, Version, names};
use stompkit_negotiate::{
    HeartBeat, HeartBeatAction, HeartBeatIntervals, HeartBeater, negotiate_heartbeat,
    negotiate_version,
};
use stompkit_wire::Event;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Framed, FramedRead, FramedWrite};

/// Most requests written before one flush.
const WRITE_BATCH: usize = 64;

/// What a handle asks the connection task to do.
pub(crate) enum Request {
    /// Write an encoded frame, registering its receipt first.
    Frame {
        bytes: Bytes,
        receipt: Option<(String, oneshot::Sender<ReceiptResult>)>,
        /// Only on this connection generation (an ACK, a transaction's frame):
        /// dropped unwritten when the connection changed in between.
        session: Option<u64>,
    },
    /// Register a subscription, then write its (encoded) SUBSCRIBE.
    Subscribe {
        id: Arc<str>,
        /// The SUBSCRIBE without receipt, re-sent on reconnect.
        frame: Frame,
        ack: AckMode,
        bytes: Bytes,
        queue: Arc<Queue>,
        receipt: Option<(String, oneshot::Sender<ReceiptResult>)>,
    },
    /// Forget a subscription and write UNSUBSCRIBE.
    Unsubscribe { id: Arc<str> },
    /// DISCONNECT with receipt, then close.
    Disconnect {
        done: oneshot::Sender<ReceiptResult>,
    },
}

/// What the handshake learnt.
#[derive(Clone, Debug)]
pub(crate) struct SessionInfo {
    pub(crate) version: Version,
    pub(crate) heart_beat: HeartBeatIntervals,
    pub(crate) connected: Frame,
}

type Conn = Framed<Box<dyn Transport>, StompCodec>;

/// Sends CONNECT (or STOMP) offering `versions`, waits for CONNECTED, negotiates.
pub(crate) async fn handshake(
    stream: Box<dyn Transport>,
    config: &ClientConfig,
    versions: &[Version],
) -> Result<(Conn, SessionInfo), ClientError> {
    let mut framed = Framed::new(stream, StompCodec::with_config(config.parser.clone()));
    let accept: Vec<&str> = versions.iter().map(|v| v.as_str()).collect();
    let command = if config.use_stomp_command {
        Command::Stomp
    } else {
        Command::Connect
    };
    let mut connect = Frame::new(command)
        .header(names::ACCEPT_VERSION, &accept.join(","))
        .header(names::HOST, &config.host);
    if let Some(login) = &config.login {
        connect = connect.header(names::LOGIN, login);
    }
    if let Some(passcode) = &config.passcode {
        connect = connect.header(names::PASSCODE, passcode);
    }
    let ours = HeartBeat {
        cx: millis(config.heart_beat_send),
        cy: millis(config.heart_beat_receive),
    };
    if versions.iter().any(|v| *v > Version::V1_0) {
        connect = connect.header(names::HEART_BEAT, &ours.to_string());
    }
    for (n, v) in &config.extra_headers {
        connect = connect.header(n, v);
    }
    let answer = tokio::time::timeout(config.connect_timeout, async {
        framed.send(connect).await?;
        loop {
            match framed.next().await {
                Some(Ok(Event::HeartBeat)) => continue,
                Some(Ok(Event::Frame(f))) => return Ok(f),
                Some(Err(e)) => return Err(ClientError::from(e)),
                None => return Err(ClientError::ConnectionClosed),
            }
        }
    })
    .await
    .map_err(|_| ClientError::Timeout)??;
    match answer.command {
        Command::Connected => {}
        Command::Error => return Err(ClientError::Server(Arc::new(answer))),
        other => return Err(ClientError::UnexpectedFrame(other)),
    }
    // A CONNECTED without `version` comes from a 1.0 server (V5, V2).
    let version = negotiate_version(answer.get(names::VERSION), versions)?;
    let heart_beat = if version >= Version::V1_1 {
        let theirs = HeartBeat::from_header(answer.get(names::HEART_BEAT))?;
        negotiate_heartbeat(ours, theirs)
    } else {
        HeartBeatIntervals {
            send: None,
            receive: None,
        }
    };
    framed.codec_mut().set_version(version);
    tracing::debug!(%version, ?heart_beat, "STOMP session open");
    Ok((
        framed,
        SessionInfo {
            version,
            heart_beat,
            connected: answer,
        },
    ))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Handshakes on `stream` (to `server`), spawns the connection task and
/// returns the handle.
pub(crate) async fn start(
    stream: Box<dyn Transport>,
    server: Arc<str>,
    connector: Option<Connector>,
    config: ClientConfig,
) -> Result<Client, ClientError> {
    let (conn, info) = handshake(stream, &config, &config.versions).await?;
    let (requests_tx, requests) = mpsc::channel(config.request_buffer);
    let (dropped_tx, dropped) = mpsc::unbounded_channel();
    let closed = Arc::new(Mutex::new(None));
    let shared = Shared {
        session: Arc::new(AtomicU64::new(0)),
        replies: Arc::new(Replies::default()),
        events: Arc::new(EventHub::new(ConnectionEvent::Connected {
            server: server.clone(),
        })),
    };
    let client = Client::from_parts(
        requests_tx,
        dropped_tx,
        closed.clone(),
        shared.clone(),
        info.clone(),
        config.subscription_buffer,
    );
    let driver = Driver {
        state: Mutex::new(State::default()),
        requests,
        dropped,
        client: client.downgrade(),
        closed,
        shared,
        server,
        info,
        config,
        connector,
    };
    tokio::spawn(driver.run(conn));
    Ok(client)
}

/// A live subscription as the task sees it.
struct SubEntry {
    seq: u64,
    frame: Frame,
    ack: AckMode,
    queue: Arc<Queue>,
}

#[derive(Default)]
struct State {
    subscriptions: HashMap<Arc<str>, SubEntry>,
    next_seq: u64,
    receipts: HashMap<String, oneshot::Sender<ReceiptResult>>,
    /// The DISCONNECT receipt id and who waits for it.
    disconnect: Option<(String, oneshot::Sender<ReceiptResult>)>,
}

/// How a session (one connection) ended.
enum SessionEnd {
    /// DISCONNECT acknowledged (or the server closed after it).
    Disconnected,
    /// DISCONNECT sent, no RECEIPT in time.
    DisconnectTimeout,
    /// Every handle is gone; DISCONNECT sent without waiting.
    Abandoned,
    /// The connection failed.
    Failed(ClientError),
}

struct Driver {
    state: Mutex<State>,
    requests: mpsc::Receiver<Request>,
    dropped: mpsc::UnboundedReceiver<Arc<str>>,
    client: Weak<Inner>,
    closed: Arc<Mutex<Option<ClientError>>>,
    shared: Shared,
    /// The server of the current (or last) connection.
    server: Arc<str>,
    info: SessionInfo,
    config: ClientConfig,
    connector: Option<Connector>,
}

impl Driver {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(mut self, mut conn: Conn) {
        loop {
            let end = self.session(conn).await;
            let error = match end {
                SessionEnd::Disconnected => {
                    self.finish(ClientError::Disconnected, true, Ok(()));
                    return;
                }
                SessionEnd::DisconnectTimeout => {
                    self.finish(ClientError::Disconnected, true, Err(ClientError::Timeout));
                    return;
                }
                SessionEnd::Abandoned => {
                    self.finish(ClientError::Disconnected, true, Ok(()));
                    return;
                }
                SessionEnd::Failed(e) => e,
            };
            tracing::debug!(%error, "STOMP connection ended");
            self.connection_lost(&error);
            match self.reconnect(&error).await {
                Some(next) => conn = next,
                None => {
                    let e = error.clone();
                    self.finish(error, false, Err(e));
                    return;
                }
            }
        }
    }

    /// A connection ended with `error`: what came on it is stale from now
    /// on, and the application hears of it.
    fn connection_lost(&self, error: &ClientError) {
        self.shared.session.fetch_add(1, Ordering::SeqCst);
        self.shared.events.emit(ConnectionEvent::Disconnected {
            server: self.server.clone(),
            reason: error.clone(),
        });
    }

    /// After a lost connection: connect again with backoff, re-subscribe, or
    /// give up (`None`).
    async fn reconnect(&mut self, error: &ClientError) -> Option<Conn> {
        let policy = self.config.reconnect.clone()?;
        let connector = self.connector.clone()?;
        let retried_error = policy.after_error && matches!(error, ClientError::Server(_));
        if !error.is_connection_loss() && !retried_error {
            return None;
        }
        // Requests in flight may or may not have been processed; replies to
        // requests will never come (the reply queue went with the connection).
        self.shared.replies.fail_all(&ClientError::ConnectionLost);
        {
            let mut state = self.state();
            for (_, tx) in state.receipts.drain() {
                let _ = tx.send(Err(ClientError::ConnectionLost));
            }
            if let Some((_, done)) = state.disconnect.take() {
                let _ = done.send(Ok(()));
                return None;
            }
        }
        let mut attempt = 0u32;
        loop {
            if policy.max_attempts.is_some_and(|max| attempt >= max) {
                return None;
            }
            let delay = policy.jittered_delay(attempt);
            attempt += 1;
            self.shared
                .events
                .emit(ConnectionEvent::Reconnecting { attempt, delay });
            tokio::time::sleep(delay).await;
            if self.client.strong_count() == 0 {
                return None;
            }
            match self.connect_again(&connector).await {
                Ok(Some((conn, server))) => {
                    tracing::info!(attempt, %server, "STOMP reconnected");
                    self.server = server.clone();
                    self.shared.events.emit(ConnectionEvent::Reconnected {
                        server,
                        attempts: attempt,
                    });
                    return Some(conn);
                }
                Ok(None) => {}
                Err(e) if e.is_connection_loss() => {
                    tracing::debug!(attempt, error = %e, "STOMP reconnect failed");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "STOMP reconnect refused");
                    return None;
                }
            }
        }
    }

    /// One reconnect attempt: a new connection, the handshake offering the
    /// negotiated version, every live SUBSCRIBE again. `Ok(None)` when the
    /// new connection failed while re-subscribing.
    async fn connect_again(
        &mut self,
        connector: &Connector,
    ) -> Result<Option<(Conn, Arc<str>)>, ClientError> {
        let (stream, server) = connector.open().await?;
        let (mut conn, info) = handshake(stream, &self.config, &[self.info.version]).await?;
        self.info.heart_beat = info.heart_beat;
        let frames: Vec<Frame> = {
            let state = self.state();
            let mut subs: Vec<&SubEntry> = state.subscriptions.values().collect();
            subs.sort_by_key(|s| s.seq);
            subs.iter().map(|s| s.frame.clone()).collect()
        };
        for frame in frames {
            if conn.feed(frame).await.is_err() {
                return Ok(None);
            }
        }
        if SinkExt::<Outgoing>::flush(&mut conn).await.is_err() {
            return Ok(None);
        }
        Ok(Some((conn, server)))
    }

    /// Ends the client for good: every stream, receipt and waiting request gets
    /// `error` (streams end cleanly when `clean`).
    fn finish(&mut self, error: ClientError, clean: bool, disconnect: ReceiptResult) {
        if let Ok(mut closed) = self.closed.lock() {
            *closed = Some(error.clone());
        }
        self.shared.replies.fail_all(&error);
        self.shared.events.emit(ConnectionEvent::Closed {
            reason: error.clone(),
        });
        self.requests.close();
        self.dropped.close();
        let stream_end = (!clean).then(|| error.clone());
        let mut state = self.state();
        for (_, sub) in state.subscriptions.drain() {
            sub.queue.close(stream_end.clone());
        }
        for (_, tx) in state.receipts.drain() {
            let _ = tx.send(Err(error.clone()));
        }
        if let Some((_, done)) = state.disconnect.take() {
            let _ = done.send(disconnect.clone());
        }
        drop(state);
        while let Ok(request) = self.requests.try_recv() {
            match request {
                Request::Frame { receipt, .. } => {
                    if let Some((_, tx)) = receipt {
                        let _ = tx.send(Err(error.clone()));
                    }
                }
                Request::Subscribe { queue, receipt, .. } => {
                    queue.close(stream_end.clone());
                    if let Some((_, tx)) = receipt {
                        let _ = tx.send(Err(error.clone()));
                    }
                }
                Request::Unsubscribe { .. } => {}
                Request::Disconnect { done } => {
                    let _ = done.send(disconnect.clone());
                }
            }
        }
    }

    /// Runs one connection until it ends.
    async fn session(&mut self, conn: Conn) -> SessionEnd {
        let parts = conn.into_parts();
        let version = parts.codec.version();
        let (read_half, write_half) = tokio::io::split(parts.io);
        // The read side keeps the codec (its parser state) and any bytes that
        // arrived right after CONNECTED.
        let mut reader = FramedRead::new(read_half, parts.codec);
        *reader.read_buffer_mut() = parts.read_buf;
        let mut write_codec = StompCodec::new();
        if let Some(v) = version {
            write_codec.set_version(v);
        }
        let mut writer = FramedWrite::new(write_half, write_codec);
        let now = tokio::time::Instant::now().into_std();
        let intervals = self.info.heart_beat;
        let grace = self.config.heart_beat_grace;
        let mut read_beats = HeartBeater::new(
            HeartBeatIntervals {
                send: None,
                receive: intervals.receive,
            },
            grace,
            now,
        );
        let mut write_beats = HeartBeater::new(
            HeartBeatIntervals {
                send: intervals.send,
                receive: None,
            },
            grace,
            now,
        );
        let session = self.shared.session();
        let end = {
            let route = Route {
                state: &self.state,
                client: &self.client,
                replies: &self.shared.replies,
                version: self.info.version,
                session,
            };
            let read = read_loop(&route, &mut reader, &mut read_beats);
            let write = write_loop(
                &self.state,
                &mut self.requests,
                &mut self.dropped,
                Writing {
                    writer: &mut writer,
                    beats: &mut write_beats,
                    disconnect_timeout: self.config.disconnect_timeout,
                    session,
                },
            );
            tokio::pin!(read, write);
            tokio::select! {
                end = &mut read => end,
                end = &mut write => end,
            }
        };
        if matches!(end, SessionEnd::Disconnected | SessionEnd::Abandoned) {
            // Flush what is left and shut the write side; a peer that stopped
            // reading does not get to hold the task.
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                SinkExt::<Outgoing>::close(&mut writer),
            )
            .await;
        }
        end
    }
}

type Reader = FramedRead<ReadHalf<Box<dyn Transport>>, StompCodec>;
type Writer = FramedWrite<WriteHalf<Box<dyn Transport>>, StompCodec>;

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The clock the heart-beaters run on: tokio's, so a paused test clock drives them.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

/// Where the frames of one connection go.
struct Route<'a> {
    state: &'a Mutex<State>,
    client: &'a Weak<Inner>,
    replies: &'a Replies,
    version: Version,
    /// The connection generation.
    session: u64,
}

/// Reads until the session ends: every event counts as liveness (H5); frames
/// go to subscriptions, waiting requests and receipts.
async fn read_loop(route: &Route<'_>, reader: &mut Reader, beats: &mut HeartBeater) -> SessionEnd {
    let state = route.state;
    loop {
        let deadline = beats.poll_timeout();
        tokio::select! {
            item = reader.next() => match item {
                Some(Ok(Event::HeartBeat)) => beats.on_received(now()),
                Some(Ok(Event::Frame(frame))) => {
                    beats.on_received(now());
                    if let Some(end) = dispatch(route, frame) {
                        return end;
                    }
                }
                Some(Err(e)) => {
                    let e = ClientError::from(e);
                    if e.is_connection_loss() && lock(state).disconnect.is_some() {
                        return SessionEnd::Disconnected;
                    }
                    return SessionEnd::Failed(e);
                }
                None => {
                    return if lock(state).disconnect.is_some() {
                        SessionEnd::Disconnected
                    } else {
                        SessionEnd::Failed(ClientError::ConnectionClosed)
                    };
                }
            },
            () = sleep_until(deadline) => {
                if let Some(HeartBeatAction::PeerDead) = beats.handle_timeout(now()) {
                    tracing::warn!("STOMP server silent past the heart-beat interval");
                    return SessionEnd::Failed(ClientError::PeerDead);
                }
            }
        }
    }
}

/// Routes one frame from the server.
fn dispatch(route: &Route<'_>, frame: Frame) -> Option<SessionEnd> {
    match frame.command {
        Command::Message => {
            deliver(route, frame);
            None
        }
        Command::Receipt => {
            let id = frame.receipt_id().unwrap_or_default();
            let mut state = lock(route.state);
            if state.disconnect.as_ref().is_some_and(|(d, _)| d == id) {
                return Some(SessionEnd::Disconnected);
            }
            match state.receipts.remove(id) {
                Some(tx) => {
                    let _ = tx.send(Ok(()));
                }
                None => tracing::debug!(receipt = id, "RECEIPT nobody waits for"),
            }
            None
        }
        Command::Error => Some(SessionEnd::Failed(ClientError::Server(Arc::new(frame)))),
        other => {
            tracing::warn!(command = %other, "unexpected frame from server ignored");
            None
        }
    }
}

/// Hands a MESSAGE to its subscription, or to the request it answers.
fn deliver(route: &Route<'_>, frame: Frame) {
    let delivery = |ack_mode, subscription| Delivery {
        version: route.version,
        ack_mode,
        subscription,
        session: route.session,
    };
    let target = {
        let state = lock(route.state);
        frame
            .subscription()
            .and_then(|id| state.subscriptions.get_key_value(id))
            .map(|(id, sub)| (id.clone(), sub.ack, sub.queue.clone()))
    };
    if let Some((id, ack, queue)) = target {
        let client = Client::upgrade(route.client);
        queue.push(Message::new(frame, delivery(ack, id), client));
        return;
    }
    match frame.subscription() {
        Some(id) if Replies::is_reply_subscription(id) => {
            let d = delivery(AckMode::Auto, Arc::from(id));
            let message = Message::new(frame, d, Client::upgrade(route.client));
            if !route.replies.deliver(message) {
                tracing::debug!("reply for no waiting request dropped");
            }
        }
        id => tracing::debug!(
            subscription = id,
            "MESSAGE for no live subscription dropped"
        ),
    }
}

/// The write side of one connection.
struct Writing<'a> {
    writer: &'a mut Writer,
    beats: &'a mut HeartBeater,
    disconnect_timeout: Duration,
    /// The connection generation.
    session: u64,
}

/// Writes requests, UNSUBSCRIBEs of dropped subscriptions and heart-beats.
async fn write_loop(
    state: &Mutex<State>,
    requests: &mut mpsc::Receiver<Request>,
    dropped: &mut mpsc::UnboundedReceiver<Arc<str>>,
    out: Writing<'_>,
) -> SessionEnd {
    let Writing {
        writer,
        beats,
        disconnect_timeout,
        session,
    } = out;
    let mut disconnect_deadline: Option<std::time::Instant> = None;
    loop {
        let deadline = beats.poll_timeout();
        let result = tokio::select! {
            request = requests.recv(), if disconnect_deadline.is_none() => {
                let Some(request) = request else {
                    // Every handle is gone: say goodbye without waiting.
                    if let Err(e) = writer.send(Frame::disconnect()).await {
                        tracing::debug!(error = %e, "DISCONNECT not sent");
                    }
                    return SessionEnd::Abandoned;
                };
                let mut next = Some(request);
                let mut written = 0;
                let mut result = Ok(());
                while let Some(request) = next.take() {
                    result = write_request(state, writer, request, session).await;
                    if result.is_err() {
                        break;
                    }
                    if lock(state).disconnect.is_some() {
                        disconnect_deadline = Some(now() + disconnect_timeout);
                        break;
                    }
                    written += 1;
                    if written < WRITE_BATCH {
                        next = requests.try_recv().ok();
                    }
                }
                match result {
                    Ok(()) => flush(writer).await,
                    Err(e) => Err(e),
                }
            }
            Some(id) = dropped.recv(), if disconnect_deadline.is_none() => {
                match unsubscribe(state, writer, id).await {
                    Ok(true) => flush(writer).await,
                    Ok(false) => continue,
                    Err(e) => Err(e),
                }
            }
            () = sleep_until(deadline) => {
                if let Some(HeartBeatAction::SendBeat) = beats.handle_timeout(now()) {
                    match writer.feed(Outgoing::HeartBeat).await {
                        Ok(()) => flush(writer).await,
                        Err(e) => Err(e.into()),
                    }
                } else {
                    // Woken early or nothing due: nothing was sent.
                    continue;
                }
            }
            () = sleep_until(disconnect_deadline) => return SessionEnd::DisconnectTimeout,
        };
        if let Err(e) = result {
            return SessionEnd::Failed(e);
        }
        beats.on_sent(now());
    }
}

/// Flushes, then lets go of a write buffer that a large frame made big.
async fn flush(writer: &mut Writer) -> Result<(), ClientError> {
    SinkExt::<Outgoing>::flush(writer).await?;
    shrink_buffer(writer.write_buffer_mut());
    Ok(())
}

async fn unsubscribe(
    state: &Mutex<State>,
    writer: &mut Writer,
    id: Arc<str>,
) -> Result<bool, ClientError> {
    let removed = lock(state).subscriptions.remove(&id);
    match removed {
        Some(sub) => {
            sub.queue.close(None);
            writer.feed(Frame::unsubscribe(&id)).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Registers what a request needs registered, then writes it; a frame of an
/// earlier connection generation than `session` is dropped unwritten (its receipt, if any, resolves with `StaleAck`).
async fn write_request(
    state: &Mutex<State>,
    writer: &mut Writer,
    request: Request,
    session: u64,
) -> Result<(), ClientError> {
    match request {
        Request::Frame {
            session: Some(of),
            receipt,
            ..
        } if of != session => {
            tracing::debug!(of, session, "frame of an earlier connection dropped");
            if let Some((_, tx)) = receipt {
                let _ = tx.send(Err(ClientError::StaleAck));
            }
            Ok(())
        }
        Request::Frame { bytes, receipt, .. } => {
            if let Some((id, tx)) = receipt {
                lock(state).receipts.insert(id, tx);
            }
            Ok(writer.feed(bytes).await?)
        }
        Request::Subscribe {
            id,
            frame,
            ack,
            bytes,
            queue,
            receipt,
        } => {
            {
                let mut state = lock(state);
                if let Some((rid, tx)) = receipt {
                    state.receipts.insert(rid, tx);
                }
                let seq = state.next_seq;
                state.next_seq += 1;
                state.subscriptions.insert(
                    id,
                    SubEntry {
                        seq,
                        frame,
                        ack,
                        queue,
                    },
                );
            }
            Ok(writer.feed(bytes).await?)
        }
        Request::Unsubscribe { id } => unsubscribe(state, writer, id).await.map(|_| ()),
        Request::Disconnect { done } => {
            let id = "disconnect".to_string();
            lock(state).disconnect = Some((id.clone(), done));
            Ok(writer.feed(Frame::disconnect().with_receipt(&id)).await?)
        }
    }
}
