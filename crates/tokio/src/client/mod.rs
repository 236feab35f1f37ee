//! The async STOMP client: a cloneable [`Client`] handle over one connection task.
//!
//! Owns the handle's API (send, subscribe, ack, receipts, transactions,
//! connection events, disconnect; request/reply is in `request`). Every call encodes its frame on the caller's task (so an
//! unencodable frame fails right there) and hands it to the connection task
//! through a bounded channel; the task (in `connection`) owns the socket, the
//! subscription table, pending receipts and heart-beats.

pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod connector;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod receipt;
pub(crate) mod request;
pub(crate) mod subscription;
pub(crate) mod url;

use crate::client::config::ClientConfig;
use crate::client::connection::{Request, SessionInfo};
use crate::client::connector::{Connector, TlsClientConfig, Transport};
use crate::client::error::ClientError;
use crate::client::events::{ConnectionEvents, EventHub};
use crate::client::receipt::Receipt;
use crate::client::request::Replies;
use crate::client::subscription::{Message, Queue, SubscribeOptions, Subscription};
use bytes::{Bytes, BytesMut};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use stompkit_frame::{AckMode, Command, Frame, Version};
use stompkit_negotiate::HeartBeatIntervals;
use stompkit_wire::Encoder;
use tokio::sync::{mpsc, oneshot};

/// A handle on one STOMP session. Cheap to clone; the session ends when
/// [`disconnect`](Client::disconnect) is called, the server fails it, or every
/// handle, subscription and message is dropped (then a DISCONNECT is sent).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    requests: mpsc::Sender<Request>,
    dropped: mpsc::UnboundedSender<Arc<str>>,
    closed: Arc<Mutex<Option<ClientError>>>,
    shared: Shared,
    encoder: Encoder,
    info: SessionInfo,
    next_id: AtomicU64,
    subscription_buffer: usize,
}

/// What the handles and the connection task both hold.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    /// The connection generation: 0 for the first connection, one more each
    /// time a connection is lost. Messages and transactions remember theirs.
    pub(crate) session: Arc<AtomicU64>,
    /// Requests waiting for their reply.
    pub(crate) replies: Arc<Replies>,
    /// Connection events.
    pub(crate) events: Arc<EventHub>,
}

impl Shared {
    /// The current connection generation.
    pub(crate) fn session(&self) -> u64 {
        self.session.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("version", &self.inner.info.version)
            .field("closed", &self.closed_error())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Opens a session over an established stream (TCP, TLS, in-memory...): sends
    /// CONNECT, waits for CONNECTED, negotiates version and heart-beats, and
    /// spawns the connection task on the current tokio runtime. Reconnect is not
    /// possible with a single stream; use [`connect_with`](Client::connect_with).
    pub async fn connect<S: Transport>(
        stream: S,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let server = Arc::from("(stream)");
        connection::start(Box::new(stream), server, None, config).await
    }

    /// Opens a session over a connection made by `connector`, which is used again
    /// to reconnect when [`ClientConfig::reconnect`] is set.
    pub async fn connect_with(
        connector: Connector,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let (stream, server) = connector.open().await?;
        connection::start(stream, server, Some(connector), config).await
    }

    /// Opens a session over TCP to `addr` (`host:port`).
    pub async fn connect_tcp(
        addr: impl Into<String>,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        Client::connect_with(Connector::tcp(addr), config).await
    }

    /// Opens a session to `stomp://host:port` (TCP) or `stomp+ssl://host:port`
    /// (TLS with the given rustls config, or the system's root certificates when
    /// `None`; see [`Connector::from_url`]).
    pub async fn connect_url(
        url: &str,
        config: ClientConfig,
        tls: Option<TlsClientConfig>,
    ) -> Result<Client, ClientError> {
        Client::connect_with(Connector::from_url(url, tls)?, config).await
    }

    pub(crate) fn from_parts(
        requests: mpsc::Sender<Request>,
        dropped: mpsc::UnboundedSender<Arc<str>>,
        closed: Arc<Mutex<Option<ClientError>>>,
        shared: Shared,
        info: SessionInfo,
        subscription_buffer: usize,
    ) -> Client {
        Client {
            inner: Arc::new(Inner {
                requests,
                dropped,
                closed,
                shared,
                encoder: Encoder::new(Some(info.version)),
                info,
                next_id: AtomicU64::new(0),
                subscription_buffer,
            }),
        }
    }

    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<Client> {
        weak.upgrade().map(|inner| Client { inner })
    }

    /// The negotiated version (V3).
    pub fn version(&self) -> Version {
        self.inner.info.version
    }

    /// The negotiated heart-beat intervals (H3): how often this client sends, how
    /// often it expects data.
    pub fn heart_beat(&self) -> HeartBeatIntervals {
        self.inner.info.heart_beat
    }

    /// The CONNECTED frame the server answered with (`server`, `session`, ...).
    pub fn connected(&self) -> &Frame {
        &self.inner.info.connected
    }

    /// Why the session ended, once it has.
    pub fn closed_error(&self) -> Option<ClientError> {
        self.inner.closed.lock().ok().and_then(|c| c.clone())
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.requests.is_closed()
    }

    /// A stream of [`ConnectionEvent`](crate::ConnectionEvent)s for this
    /// session: first the current state (for a client just connected,
    /// `Connected`), then every change (`Disconnected` with the reason,
    /// `Reconnecting`, `Reconnected`, and `Closed` last), in order. Each call
    /// opens a stream of its own.
    ///
    /// ```no_run
    /// # async fn f(client: stompkit_tokio::Client) {
    /// use futures_util::StreamExt;
    /// use stompkit_tokio::ConnectionEvent;
    /// let mut events = client.events();
    /// while let Some(event) = events.next().await {
    ///     match event {
    ///         ConnectionEvent::Disconnected { reason, .. } => eprintln!("offline: {reason}"),
    ///         ConnectionEvent::Reconnected { server, .. } => eprintln!("back on {server}"),
    ///         _ => {}
    ///     }
    /// }
    /// # }
    /// ```
    pub fn events(&self) -> ConnectionEvents {
        self.inner.shared.events.subscribe()
    }

    fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn encode(&self, frame: &Frame) -> Result<Bytes, ClientError> {
        let mut buf = BytesMut::with_capacity(frame.body().len() + 128);
        self.inner.encoder.encode(frame, &mut buf)?;
        Ok(buf.freeze())
    }

    fn closed_or_lost(&self) -> ClientError {
        self.closed_error().unwrap_or(ClientError::ConnectionClosed)
    }

    async fn submit(&self, request: Request) -> Result<(), ClientError> {
        self.inner
            .requests
            .send(request)
            .await
            .map_err(|_| self.closed_or_lost())
    }

    fn receipt_pair(&self) -> (String, oneshot::Sender<Result<(), ClientError>>, Receipt) {
        let id = format!("rcpt-{}", self.next_id());
        let (tx, rx) = oneshot::channel();
        let receipt = Receipt::new(id.clone(), rx, self.inner.closed.clone());
        (id, tx, receipt)
    }

    /// Sends a client frame (usually SEND, built with [`Frame::send`]). Returns
    /// once the frame is queued for the connection; the frame is encoded first,
    /// so an unrepresentable header fails here (nothing is sent).
    pub async fn send(&self, frame: Frame) -> Result<(), ClientError> {
        check_client_frame(&frame)?;
        let bytes = self.encode(&frame)?;
        self.submit(Request::Frame {
            bytes,
            receipt: None,
            session: None,
        })
        .await
    }

    /// Sends a client frame with a fresh `receipt` header (V9); the returned
    /// [`Receipt`] resolves when the server's RECEIPT arrives (S3).
    pub async fn send_with_receipt(&self, frame: Frame) -> Result<Receipt, ClientError> {
        self.send_with_receipt_in(frame, None).await
    }

    /// [`send_with_receipt`](Client::send_with_receipt), only on connection
    /// generation `session` when given ([`ClientError::StaleAck`] otherwise,
    /// also when the connection is lost before it is written).
    async fn send_with_receipt_in(
        &self,
        frame: Frame,
        session: Option<u64>,
    ) -> Result<Receipt, ClientError> {
        check_client_frame(&frame)?;
        let (id, tx, receipt) = self.receipt_pair();
        let mut frame = frame;
        frame.headers_mut().set(stompkit_frame::names::RECEIPT, &id);
        let bytes = self.encode(&frame)?;
        if session.is_some_and(|s| s != self.inner.shared.session()) {
            return Err(ClientError::StaleAck);
        }
        self.submit(Request::Frame {
            bytes,
            receipt: Some((id, tx)),
            session,
        })
        .await?;
        Ok(receipt)
    }

    /// Subscribes to `destination` with the given ack mode and the default buffer.
    pub async fn subscribe(
        &self,
        destination: &str,
        ack: AckMode,
    ) -> Result<Subscription, ClientError> {
        self.subscribe_with(SubscribeOptions::new(destination).ack(ack))
            .await
    }

    /// Subscribes with options (buffer bound, extra headers, ...).
    pub async fn subscribe_with(
        &self,
        options: SubscribeOptions,
    ) -> Result<Subscription, ClientError> {
        Ok(self.subscribe_inner(options, false).await?.0)
    }

    /// Subscribes with a `receipt`: the [`Receipt`] resolves once the server has
    /// registered the subscription.
    pub async fn subscribe_with_receipt(
        &self,
        options: SubscribeOptions,
    ) -> Result<(Subscription, Receipt), ClientError> {
        let (sub, receipt) = self.subscribe_inner(options, true).await?;
        match receipt {
            Some(r) => Ok((sub, r)),
            None => Err(ClientError::ConnectionClosed),
        }
    }

    async fn subscribe_inner(
        &self,
        options: SubscribeOptions,
        with_receipt: bool,
    ) -> Result<(Subscription, Option<Receipt>), ClientError> {
        let bound = options.buffer.unwrap_or(self.inner.subscription_buffer);
        let id: Arc<str> = Arc::from(format!("sub-{}", self.next_id()));
        let frame = options.frame(&id, bound);
        let (wire_frame, receipt) = if with_receipt {
            let (rid, tx, receipt) = self.receipt_pair();
            (frame.clone().with_receipt(&rid), Some((rid, tx, receipt)))
        } else {
            (frame.clone(), None)
        };
        let bytes = self.encode(&wire_frame)?;
        let queue = Arc::new(Queue::new(bound, options.ack != AckMode::Auto));
        let (receipt_tx, receipt) = match receipt {
            Some((rid, tx, r)) => (Some((rid, tx)), Some(r)),
            None => (None, None),
        };
        self.submit(Request::Subscribe {
            id: id.clone(),
            frame,
            ack: options.ack,
            bytes,
            queue: queue.clone(),
            receipt: receipt_tx,
        })
        .await?;
        let sub = Subscription::new(id, options.destination, options.ack, queue, self.clone());
        Ok((sub, receipt))
    }

    pub(crate) async fn unsubscribe_id(&self, id: Arc<str>) -> Result<(), ClientError> {
        self.submit(Request::Unsubscribe { id }).await
    }

    pub(crate) fn unsubscribe_on_drop(&self, id: Arc<str>) {
        let _ = self.inner.dropped.send(id);
    }

    /// Acknowledges `message` (same as [`Message::ack`]). A message received
    /// before the client reconnected cannot be: [`ClientError::StaleAck`], and
    /// nothing is sent.
    pub async fn ack(&self, message: &Message) -> Result<(), ClientError> {
        self.send_in_session(message.ack_frame()?, message.session())
            .await
    }

    /// Refuses `message` (same as [`Message::nack`]; 1.1+);
    /// [`ClientError::StaleAck`] as for [`ack`](Client::ack).
    pub async fn nack(&self, message: &Message) -> Result<(), ClientError> {
        self.send_in_session(message.nack_frame()?, message.session())
            .await
    }

    /// Sends a frame that only means something on connection `session` (an
    /// ACK, a frame of a transaction): refused with [`ClientError::StaleAck`]
    /// when the connection has changed, and dropped by the connection task if
    /// it changes before the frame is written.
    async fn send_in_session(&self, frame: Frame, session: u64) -> Result<(), ClientError> {
        check_client_frame(&frame)?;
        let bytes = self.encode(&frame)?;
        if self.inner.shared.session() != session {
            return Err(ClientError::StaleAck);
        }
        self.submit(Request::Frame {
            bytes,
            receipt: None,
            session: Some(session),
        })
        .await
    }

    /// Starts a transaction (BEGIN, C6) with a fresh id. The transaction
    /// belongs to the current connection: after a reconnect the server has
    /// aborted it, and its calls fail with [`ClientError::StaleAck`].
    pub async fn begin(&self) -> Result<Transaction, ClientError> {
        let id = format!("tx-{}", self.next_id());
        let session = self.inner.shared.session();
        self.send_in_session(Frame::begin(&id), session).await?;
        Ok(Transaction {
            id,
            client: self.clone(),
            open: true,
            session,
        })
    }

    /// Ends the session gracefully (C7): DISCONNECT with a `receipt`, wait for the
    /// RECEIPT (at most the configured disconnect timeout), close the connection.
    /// Every subscription stream then ends; later calls fail with
    /// [`ClientError::Disconnected`].
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Request::Disconnect { done: tx }).await?;
        match rx.await {
            Ok(result) => result,
            Err(_) => match self.closed_error() {
                Some(ClientError::Disconnected) | None => Ok(()),
                Some(e) => Err(e),
            },
        }
    }

    fn abort_on_drop(&self, id: &str, session: u64) {
        if self.inner.shared.session() != session {
            // The server aborted it with the connection it belonged to.
            return;
        }
        let bytes = match self.encode(&Frame::abort(id)) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(transaction = id, error = %e, "cannot encode ABORT");
                return;
            }
        };
        // A full or closed queue: the server aborts the transaction when the
        // session ends.
        if let Err(e) = self.inner.requests.try_send(Request::Frame {
            bytes,
            receipt: None,
            session: Some(session),
        }) {
            tracing::debug!(transaction = id, error = %e, "ABORT not queued");
        }
    }
}

/// Refuses frames a client must not send through [`Client::send`].
fn check_client_frame(frame: &Frame) -> Result<(), ClientError> {
    match frame.command {
        c if !c.is_client_command() => Err(ClientError::UnexpectedFrame(c)),
        Command::Connect | Command::Stomp | Command::Disconnect => {
            Err(ClientError::UnexpectedFrame(frame.command))
        }
        _ => Ok(()),
    }
}

/// An open transaction (C6). Frames sent through it carry its `transaction`
/// header. Dropping it without [`commit`](Transaction::commit) sends ABORT.
///
/// ```no_run
/// # async fn f(client: stompkit_tokio::Client) -> Result<(), stompkit_tokio::ClientError> {
/// use stompkit_frame::Frame;
/// let tx = client.begin().await?;
/// tx.send(Frame::send("/queue/a").with_body("1")).await?;
/// tx.send(Frame::send("/queue/a").with_body("2")).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Transaction {
    id: String,
    client: Client,
    open: bool,
    /// The connection generation it was begun on.
    session: u64,
}

impl Transaction {
    /// The transaction id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sends `frame` inside the transaction ([`ClientError::StaleAck`] after a
    /// reconnect).
    pub async fn send(&self, frame: Frame) -> Result<(), ClientError> {
        self.client
            .send_in_session(frame.with_transaction(&self.id), self.session)
            .await
    }

    /// Acknowledges `message` inside the transaction; [`ClientError::StaleAck`]
    /// when the message or the transaction came before a reconnect.
    pub async fn ack(&self, message: &Message) -> Result<(), ClientError> {
        self.ack_or_nack(message.ack_frame()?, message).await
    }

    /// Refuses `message` inside the transaction (1.1+); [`ClientError::StaleAck`]
    /// as for [`ack`](Transaction::ack).
    pub async fn nack(&self, message: &Message) -> Result<(), ClientError> {
        self.ack_or_nack(message.nack_frame()?, message).await
    }

    async fn ack_or_nack(&self, frame: Frame, message: &Message) -> Result<(), ClientError> {
        if message.session() != self.session {
            return Err(ClientError::StaleAck);
        }
        self.send(frame).await
    }

    /// COMMIT ([`ClientError::StaleAck`] after a reconnect: the server aborted
    /// the transaction when the connection was lost).
    pub async fn commit(mut self) -> Result<(), ClientError> {
        self.open = false;
        self.client
            .send_in_session(Frame::commit(&self.id), self.session)
            .await
    }

    /// COMMIT with a receipt: resolves when the server has committed.
    pub async fn commit_with_receipt(mut self) -> Result<Receipt, ClientError> {
        self.open = false;
        self.client
            .send_with_receipt_in(Frame::commit(&self.id), Some(self.session))
            .await
    }

    /// ABORT ([`ClientError::StaleAck`] after a reconnect).
    pub async fn abort(mut self) -> Result<(), ClientError> {
        self.open = false;
        self.client
            .send_in_session(Frame::abort(&self.id), self.session)
            .await
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.open {
            self.client.abort_on_drop(&self.id, self.session);
        }
    }
}
