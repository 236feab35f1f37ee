//! The async STOMP client: a cloneable [`Client`] handle over one connection task.
//!
//! Owns the handle's API (send, subscribe, ack, receipts, transactions,
//! disconnect). Every call encodes its frame on the caller's task (so an
//! unencodable frame fails right there) and hands it to the connection task
//! through a bounded channel; the task (in `connection`) owns the socket, the
//! subscription table, pending receipts and heart-beats.

pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod connector;
pub(crate) mod error;
pub(crate) mod receipt;
pub(crate) mod subscription;
pub(crate) mod url;

use crate::client::config::ClientConfig;
use crate::client::connection::{Request, SessionInfo};
use crate::client::connector::{Connector, TlsClientConfig, Transport};
use crate::client::error::ClientError;
use crate::client::receipt::Receipt;
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
    encoder: Encoder,
    info: SessionInfo,
    next_id: AtomicU64,
    subscription_buffer: usize,
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
        connection::start(Box::new(stream), None, config).await
    }

    /// Opens a session over a connection made by `connector`, which is used again
    /// to reconnect when [`ClientConfig::reconnect`] is set.
    pub async fn connect_with(
        connector: Connector,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let stream = connector.connect().await?;
        connection::start(stream, Some(connector), config).await
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
        info: SessionInfo,
        subscription_buffer: usize,
    ) -> Client {
        Client {
            inner: Arc::new(Inner {
                requests,
                dropped,
                closed,
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

    async fn request(&self, request: Request) -> Result<(), ClientError> {
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
        self.request(Request::Frame {
            bytes,
            receipt: None,
        })
        .await
    }

    /// Sends a client frame with a fresh `receipt` header (V9); the returned
    /// [`Receipt`] resolves when the server's RECEIPT arrives (S3).
    pub async fn send_with_receipt(&self, frame: Frame) -> Result<Receipt, ClientError> {
        check_client_frame(&frame)?;
        let (id, tx, receipt) = self.receipt_pair();
        let mut frame = frame;
        frame.headers_mut().set(stompkit_frame::names::RECEIPT, &id);
        let bytes = self.encode(&frame)?;
        self.request(Request::Frame {
            bytes,
            receipt: Some((id, tx)),
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
        self.request(Request::Subscribe {
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
        self.request(Request::Unsubscribe { id }).await
    }

    pub(crate) fn unsubscribe_on_drop(&self, id: Arc<str>) {
        let _ = self.inner.dropped.send(id);
    }

    /// Acknowledges `message` (same as [`Message::ack`]).
    pub async fn ack(&self, message: &Message) -> Result<(), ClientError> {
        self.send(message.ack_frame()?).await
    }

    /// Refuses `message` (same as [`Message::nack`]; 1.1+).
    pub async fn nack(&self, message: &Message) -> Result<(), ClientError> {
        self.send(message.nack_frame()?).await
    }

    /// Starts a transaction (BEGIN, C6) with a fresh id.
    pub async fn begin(&self) -> Result<Transaction, ClientError> {
        let id = format!("tx-{}", self.next_id());
        self.send(Frame::begin(&id)).await?;
        Ok(Transaction {
            id,
            client: self.clone(),
            open: true,
        })
    }

    /// Ends the session gracefully (C7): DISCONNECT with a `receipt`, wait for the
    /// RECEIPT (at most the configured disconnect timeout), close the connection.
    /// Every subscription stream then ends; later calls fail with
    /// [`ClientError::Disconnected`].
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.request(Request::Disconnect { done: tx }).await?;
        match rx.await {
            Ok(result) => result,
            Err(_) => match self.closed_error() {
                Some(ClientError::Disconnected) | None => Ok(()),
                Some(e) => Err(e),
            },
        }
    }

    fn abort_on_drop(&self, id: &str) {
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
}

impl Transaction {
    /// The transaction id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sends `frame` inside the transaction.
    pub async fn send(&self, frame: Frame) -> Result<(), ClientError> {
        self.client.send(frame.with_transaction(&self.id)).await
    }

    /// Acknowledges `message` inside the transaction.
    pub async fn ack(&self, message: &Message) -> Result<(), ClientError> {
        self.send(message.ack_frame()?).await
    }

    /// Refuses `message` inside the transaction (1.1+).
    pub async fn nack(&self, message: &Message) -> Result<(), ClientError> {
        self.send(message.nack_frame()?).await
    }

    /// COMMIT.
    pub async fn commit(mut self) -> Result<(), ClientError> {
        self.open = false;
        self.client.send(Frame::commit(&self.id)).await
    }

    /// COMMIT with a receipt: resolves when the server has committed.
    pub async fn commit_with_receipt(mut self) -> Result<Receipt, ClientError> {
        self.open = false;
        self.client.send_with_receipt(Frame::commit(&self.id)).await
    }

    /// ABORT.
    pub async fn abort(mut self) -> Result<(), ClientError> {
        self.open = false;
        self.client.send(Frame::abort(&self.id)).await
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.open {
            self.client.abort_on_drop(&self.id);
        }
    }
}
