//! The connection task: one per client, owning the socket.
//!
//! Owns the CONNECT handshake (version and heart-beat negotiation through
//! `stompkit-negotiate`), the subscription table, pending receipts, heart-beats
//! in both directions, graceful disconnect, the end of the session (every stream
//! and receipt gets the error) and optional reconnect.
//!
//! A session runs a reader and a writer concurrently in the same task. The
//! reader never waits on anything but the socket and its heart-beat deadline, so
//! heart-beats and every subscription keep flowing while the writer is blocked
//! on a slow peer or while a consumer is slow (subscription buffers never block
//! it; see `subscription`).

use crate::client::Client;
use crate::client::Inner;
use crate::client::config::ClientConfig;
use crate::client::connector::{Connector, Transport};
use crate::client::error::ClientError;
use crate::client::receipt::ReceiptResult;
use crate::client::subscription::{Message, Queue};
use crate::codec::{Outgoing, StompCodec, shrink_buffer};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
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

/// Handshakes on `stream`, spawns the connection task and returns the handle.
pub(crate) async fn start(
    stream: Box<dyn Transport>,
    connector: Option<Connector>,
    config: ClientConfig,
) -> Result<Client, ClientError> {
    let (conn, info) = handshake(stream, &config, &config.versions).await?;
    let (requests_tx, requests) = mpsc::channel(config.request_buffer);
    let (dropped_tx, dropped) = mpsc::unbounded_channel();
    let closed = Arc::new(Mutex::new(None));
    let client = Client::from_parts(
        requests_tx,
        dropped_tx,
        closed.clone(),
        info.clone(),
        config.subscription_buffer,
    );
    let driver = Driver {
        state: Mutex::new(State::default()),
        requests,
        dropped,
        client: client.downgrade(),
        closed,
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

    /// After a lost connection: connect again with backoff, re-subscribe, or
    /// give up (`None`).
    async fn reconnect(&mut self, error: &ClientError) -> Option<Conn> {
        let policy = self.config.reconnect.clone()?;
        let connector = self.connector.clone()?;
        if !error.is_connection_loss() {
            return None;
        }
        // Requests in flight may or may not have been processed.
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
            tokio::time::sleep(policy.delay(attempt)).await;
            attempt += 1;
            if self.client.strong_count() == 0 {
                return None;
            }
            let result = async {
                let stream = connector.connect().await?;
                handshake(stream, &self.config, &[self.info.version]).await
            }
            .await;
            match result {
                Ok((mut conn, info)) => {
                    tracing::info!(attempt, "STOMP reconnected");
                    self.info.heart_beat = info.heart_beat;
                    let frames: Vec<Frame> = {
                        let state = self.state();
                        let mut subs: Vec<&SubEntry> = state.subscriptions.values().collect();
                        subs.sort_by_key(|s| s.seq);
                        subs.iter().map(|s| s.frame.clone()).collect()
                    };
                    let mut ok = true;
                    for frame in frames {
                        if conn.feed(frame).await.is_err() {
                            ok = false;
                            break;
                        }
                    }
                    if ok && SinkExt::<Outgoing>::flush(&mut conn).await.is_ok() {
                        return Some(conn);
                    }
                }
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

    /// Ends the client for good: every stream, receipt and waiting request gets
    /// `error` (streams end cleanly when `clean`).
    fn finish(&mut self, error: ClientError, clean: bool, disconnect: ReceiptResult) {
        if let Ok(mut closed) = self.closed.lock() {
            *closed = Some(error.clone());
        }
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
        let end = {
            let read = read_loop(
                &self.state,
                &self.client,
                self.info.version,
                &mut reader,
                &mut read_beats,
            );
            let write = write_loop(
                &self.state,
                &mut self.requests,
                &mut self.dropped,
                &mut writer,
                &mut write_beats,
                self.config.disconnect_timeout,
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

/// Reads until the session ends: every event counts as liveness (H5); frames
/// go to subscriptions and receipts.
async fn read_loop(
    state: &Mutex<State>,
    client: &Weak<Inner>,
    version: Version,
    reader: &mut Reader,
    beats: &mut HeartBeater,
) -> SessionEnd {
    loop {
        let deadline = beats.poll_timeout();
        tokio::select! {
            item = reader.next() => match item {
                Some(Ok(Event::HeartBeat)) => beats.on_received(now()),
                Some(Ok(Event::Frame(frame))) => {
                    beats.on_received(now());
                    if let Some(end) = dispatch(state, client, version, frame) {
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
fn dispatch(
    state: &Mutex<State>,
    client: &Weak<Inner>,
    version: Version,
    frame: Frame,
) -> Option<SessionEnd> {
    match frame.command {
        Command::Message => {
            let target = {
                let state = lock(state);
                frame
                    .subscription()
                    .and_then(|id| state.subscriptions.get_key_value(id))
                    .map(|(id, sub)| (id.clone(), sub.ack, sub.queue.clone()))
            };
            match target {
                Some((id, ack, queue)) => {
                    let message = Message::new(frame, version, ack, id, Client::upgrade(client));
                    queue.push(message);
                }
                None => tracing::debug!(
                    subscription = frame.subscription(),
                    "MESSAGE for no live subscription dropped"
                ),
            }
            None
        }
        Command::Receipt => {
            let id = frame.receipt_id().unwrap_or_default();
            let mut state = lock(state);
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

/// Writes requests, UNSUBSCRIBEs of dropped subscriptions and heart-beats.
async fn write_loop(
    state: &Mutex<State>,
    requests: &mut mpsc::Receiver<Request>,
    dropped: &mut mpsc::UnboundedReceiver<Arc<str>>,
    writer: &mut Writer,
    beats: &mut HeartBeater,
    disconnect_timeout: Duration,
) -> SessionEnd {
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
                    result = write_request(state, writer, request).await;
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

/// Registers what a request needs registered, then writes it.
async fn write_request(
    state: &Mutex<State>,
    writer: &mut Writer,
    request: Request,
) -> Result<(), ClientError> {
    match request {
        Request::Frame { bytes, receipt } => {
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
