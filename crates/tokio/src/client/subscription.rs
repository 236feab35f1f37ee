//! Subscriptions and the messages they deliver.
//!
//! Owns [`Subscription`] (a `Stream` of [`Message`]s with a bounded buffer),
//! [`SubscribeOptions`], [`Message`] with its ACK/NACK frames per version (C4),
//! and the buffer itself ([`Queue`]), which the connection task fills without
//! ever waiting: an auto-ack subscription that falls behind drops its oldest
//! messages and reports [`SubscriptionError::Lagged`]; a client-ack one asks the
//! server for `prefetch-count` = its bound, so a well-behaved server never
//! overruns it (if one does anyway, the buffer grows rather than lose a message
//! the server waits an ACK for).

use crate::client::Client;
use crate::client::error::{ClientError, SubscriptionError};
use futures_util::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use stompkit_frame::{AckMode, Command, Frame, Headers, Version, names};

/// The header asking the server to keep at most this many unacknowledged
/// messages in flight for a subscription (RabbitMQ's and others' name).
pub const PREFETCH_COUNT: &str = "prefetch-count";

/// What to subscribe to and how.
///
/// ```
/// use stompkit_frame::AckMode;
/// use stompkit_tokio::SubscribeOptions;
/// let options = SubscribeOptions::new("/queue/work")
///     .ack(AckMode::ClientIndividual)
///     .buffer(16)
///     .header("selector", "priority > 3");
/// assert_eq!(options.destination(), "/queue/work");
/// ```
#[derive(Clone, Debug)]
pub struct SubscribeOptions {
    pub(crate) destination: String,
    pub(crate) ack: AckMode,
    pub(crate) buffer: Option<usize>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) prefetch: bool,
}

impl SubscribeOptions {
    /// Subscribe to `destination`, auto-ack, with the client's default buffer.
    pub fn new(destination: impl Into<String>) -> SubscribeOptions {
        SubscribeOptions {
            destination: destination.into(),
            ack: AckMode::Auto,
            buffer: None,
            headers: Vec::new(),
            prefetch: true,
        }
    }

    /// The destination.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The ack mode (C2, C3).
    pub fn ack(mut self, mode: AckMode) -> SubscribeOptions {
        self.ack = mode;
        self
    }

    /// The buffer bound, in messages (at least 1).
    pub fn buffer(mut self, messages: usize) -> SubscribeOptions {
        self.buffer = Some(messages.max(1));
        self
    }

    /// An extra SUBSCRIBE header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> SubscribeOptions {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Whether a client-ack subscription sends `prefetch-count` (default true;
    /// a `prefetch-count` given with [`header`](SubscribeOptions::header) wins).
    pub fn prefetch_count(mut self, send: bool) -> SubscribeOptions {
        self.prefetch = send;
        self
    }

    /// The SUBSCRIBE frame for subscription `id` with buffer bound `bound`.
    pub(crate) fn frame(&self, id: &str, bound: usize) -> Frame {
        let mut frame = Frame::subscribe(&self.destination, id, self.ack);
        let user_prefetch = self.headers.iter().any(|(n, _)| n == PREFETCH_COUNT);
        if self.ack != AckMode::Auto && self.prefetch && !user_prefetch {
            frame = frame.header(PREFETCH_COUNT, &bound.to_string());
        }
        for (n, v) in &self.headers {
            frame = frame.header(n, v);
        }
        frame
    }
}

/// A message delivered to a subscription (or the reply to a
/// [`Client::request`]): the MESSAGE frame, plus what is needed to acknowledge
/// it, including the connection it came on (after a reconnect it can no
/// longer be acknowledged: [`ClientError::StaleAck`]).
#[derive(Clone, Debug)]
pub struct Message {
    frame: Frame,
    version: Version,
    ack_mode: AckMode,
    subscription: Arc<str>,
    client: Option<Client>,
    /// The connection generation it arrived on.
    session: u64,
}

/// Where a message came from: its subscription, how it is acknowledged and on
/// which connection.
pub(crate) struct Delivery {
    pub(crate) version: Version,
    pub(crate) ack_mode: AckMode,
    pub(crate) subscription: Arc<str>,
    pub(crate) session: u64,
}

impl Message {
    pub(crate) fn new(frame: Frame, delivery: Delivery, client: Option<Client>) -> Message {
        Message {
            frame,
            version: delivery.version,
            ack_mode: delivery.ack_mode,
            subscription: delivery.subscription,
            client,
            session: delivery.session,
        }
    }

    /// The connection generation the message arrived on.
    pub(crate) fn session(&self) -> u64 {
        self.session
    }

    /// The MESSAGE frame.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// The MESSAGE frame, taken out.
    pub fn into_frame(self) -> Frame {
        self.frame
    }

    /// The body (a slice of what was read; [`Frame::body_bytes`] shares it
    /// without a copy).
    pub fn body(&self) -> &[u8] {
        self.frame.body()
    }

    /// The headers, in wire order.
    pub fn headers(&self) -> &Headers {
        self.frame.headers()
    }

    /// The first value of header `name` (F13).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.frame.get(name)
    }

    /// `destination` (S1).
    pub fn destination(&self) -> Option<&str> {
        self.frame.destination()
    }

    /// `message-id` (S1).
    pub fn message_id(&self) -> Option<&str> {
        self.frame.message_id()
    }

    /// `content-type` (F11).
    pub fn content_type(&self) -> Option<&str> {
        self.frame.content_type()
    }

    /// The id of the subscription it was delivered to.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    /// The ACK frame for this message in the session's version (C4): 1.2 `id` from
    /// the MESSAGE's `ack` header; 1.1 `message-id` and `subscription`; 1.0
    /// `message-id`.
    pub fn ack_frame(&self) -> Result<Frame, ClientError> {
        ack_frame(
            Command::Ack,
            self.version,
            self.ack_mode,
            &self.frame,
            &self.subscription,
        )
    }

    /// The NACK frame for this message (C4; 1.1+, NACK does not exist in 1.0).
    pub fn nack_frame(&self) -> Result<Frame, ClientError> {
        ack_frame(
            Command::Nack,
            self.version,
            self.ack_mode,
            &self.frame,
            &self.subscription,
        )
    }

    /// Acknowledges the message (client and client-individual subscriptions).
    /// [`ClientError::StaleAck`], sending nothing, when the client reconnected
    /// since the message arrived.
    pub async fn ack(&self) -> Result<(), ClientError> {
        self.client()?.ack(self).await
    }

    /// Refuses the message (1.1+); [`ClientError::StaleAck`] as for
    /// [`ack`](Message::ack).
    pub async fn nack(&self) -> Result<(), ClientError> {
        self.client()?.nack(self).await
    }

    fn client(&self) -> Result<&Client, ClientError> {
        self.client.as_ref().ok_or(ClientError::ConnectionClosed)
    }
}

/// Builds ACK or NACK for `message` (C4).
pub(crate) fn ack_frame(
    command: Command,
    version: Version,
    mode: AckMode,
    message: &Frame,
    subscription: &str,
) -> Result<Frame, ClientError> {
    if mode == AckMode::Auto {
        return Err(ClientError::CannotAck("the subscription is auto-ack"));
    }
    let frame = Frame::new(command);
    Ok(match version {
        Version::V1_2 => {
            let id = message
                .ack()
                .ok_or(ClientError::CannotAck("1.2 MESSAGE has no ack header (S2)"))?;
            frame.header(names::ID, id)
        }
        Version::V1_1 => {
            let id = message
                .message_id()
                .ok_or(ClientError::CannotAck("MESSAGE has no message-id"))?;
            let sub = message.subscription().unwrap_or(subscription);
            frame
                .header(names::MESSAGE_ID, id)
                .header(names::SUBSCRIPTION, sub)
        }
        Version::V1_0 => {
            if command == Command::Nack {
                return Err(ClientError::CannotAck("NACK does not exist in STOMP 1.0"));
            }
            let id = message
                .message_id()
                .ok_or(ClientError::CannotAck("MESSAGE has no message-id"))?;
            frame.header(names::MESSAGE_ID, id)
        }
    })
}

/// The buffer between the connection task and a [`Subscription`].
#[derive(Debug)]
pub(crate) struct Queue {
    state: Mutex<QueueState>,
}

#[derive(Debug)]
struct QueueState {
    items: VecDeque<Message>,
    bound: usize,
    /// Client-ack: never drop, grow past the bound instead.
    lossless: bool,
    lagged: u64,
    overrun_warned: bool,
    /// `Some(None)`: ended cleanly; `Some(Some(e))`: error still to report.
    end: Option<Option<ClientError>>,
    waker: Option<Waker>,
}

impl Queue {
    pub(crate) fn new(bound: usize, lossless: bool) -> Queue {
        Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::with_capacity(bound.min(64)),
                bound,
                lossless,
                lagged: 0,
                overrun_warned: false,
                end: None,
                waker: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding this lock cannot leave the queue inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a message without waiting; drops the oldest when an auto-ack
    /// subscription is full.
    pub(crate) fn push(&self, message: Message) {
        let mut s = self.lock();
        if s.end.is_some() {
            return;
        }
        if s.items.len() >= s.bound {
            if s.lossless {
                if !s.overrun_warned {
                    s.overrun_warned = true;
                    tracing::warn!(
                        subscription = message.subscription(),
                        bound = s.bound,
                        "server overran prefetch-count; buffering past the bound"
                    );
                }
            } else {
                s.items.pop_front();
                s.lagged += 1;
            }
        }
        s.items.push_back(message);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }

    /// Ends the stream after the buffered messages, with `error` if given.
    pub(crate) fn close(&self, error: Option<ClientError>) {
        let mut s = self.lock();
        if s.end.is_none() {
            s.end = Some(error);
        }
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }

    /// The consumer is gone: drop everything now.
    fn abandon(&self) {
        let mut s = self.lock();
        s.items.clear();
        s.end = Some(None);
        s.waker = None;
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, SubscriptionError>>> {
        let mut s = self.lock();
        if s.lagged > 0 {
            let n = std::mem::take(&mut s.lagged);
            return Poll::Ready(Some(Err(SubscriptionError::Lagged(n))));
        }
        if let Some(m) = s.items.pop_front() {
            return Poll::Ready(Some(Ok(m)));
        }
        match &mut s.end {
            Some(end) => match end.take() {
                Some(e) => Poll::Ready(Some(Err(SubscriptionError::Closed(e)))),
                None => Poll::Ready(None),
            },
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().items.len()
    }
}

/// A live subscription: a `Stream` of messages, ending with `None` after
/// [`unsubscribe`](Subscription::unsubscribe) or a graceful disconnect, or with a
/// [`SubscriptionError::Closed`] item when the session failed (ERROR frame, dead
/// peer, lost connection). Dropping it unsubscribes.
///
/// Each subscription has its own bounded buffer, so a slow consumer never stalls
/// the connection or other subscriptions.
#[derive(Debug)]
pub struct Subscription {
    id: Arc<str>,
    destination: String,
    ack: AckMode,
    queue: Arc<Queue>,
    client: Client,
    active: bool,
}

impl Subscription {
    pub(crate) fn new(
        id: Arc<str>,
        destination: String,
        ack: AckMode,
        queue: Arc<Queue>,
        client: Client,
    ) -> Subscription {
        Subscription {
            id,
            destination,
            ack,
            queue,
            client,
            active: true,
        }
    }

    /// The subscription id (the SUBSCRIBE `id` header).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The destination subscribed to.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The ack mode.
    pub fn ack_mode(&self) -> AckMode {
        self.ack
    }

    /// Sends UNSUBSCRIBE (C5); the stream ends after what is buffered.
    pub async fn unsubscribe(mut self) -> Result<(), ClientError> {
        self.active = false;
        self.client.unsubscribe_id(self.id.clone()).await
    }
}

impl Stream for Subscription {
    type Item = Result<Message, SubscriptionError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.queue.poll_next(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Messages hold client handles: clear them now so nothing keeps the
        // connection alive on the subscription's behalf.
        self.queue.abandon();
        if self.active {
            self.client.unsubscribe_on_drop(self.id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;

    fn msg(n: u32) -> Message {
        let delivery = Delivery {
            version: Version::V1_2,
            ack_mode: AckMode::Auto,
            subscription: Arc::from("0"),
            session: 0,
        };
        Message::new(
            Frame::new(Command::Message).header("message-id", &n.to_string()),
            delivery,
            None,
        )
    }

    fn next(q: &Queue) -> Poll<Option<Result<Message, SubscriptionError>>> {
        q.poll_next(&mut Context::from_waker(noop_waker_ref()))
    }

    #[test]
    fn auto_ack_queue_drops_oldest_and_reports_lagged() {
        let q = Queue::new(2, false);
        for n in 0..5 {
            q.push(msg(n));
        }
        assert_eq!(q.len(), 2);
        assert!(matches!(
            next(&q),
            Poll::Ready(Some(Err(SubscriptionError::Lagged(3))))
        ));
        let Poll::Ready(Some(Ok(m))) = next(&q) else {
            panic!()
        };
        assert_eq!(m.message_id(), Some("3"));
        let Poll::Ready(Some(Ok(m))) = next(&q) else {
            panic!()
        };
        assert_eq!(m.message_id(), Some("4"));
        assert!(next(&q).is_pending());
    }

    #[test]
    fn client_ack_queue_never_drops() {
        let q = Queue::new(2, true);
        for n in 0..5 {
            q.push(msg(n));
        }
        assert_eq!(q.len(), 5);
    }

    #[test]
    fn close_with_error_drains_first_then_reports_then_ends() {
        let q = Queue::new(4, false);
        q.push(msg(1));
        q.close(Some(ClientError::PeerDead));
        assert!(matches!(next(&q), Poll::Ready(Some(Ok(_)))));
        assert!(matches!(
            next(&q),
            Poll::Ready(Some(Err(SubscriptionError::Closed(ClientError::PeerDead))))
        ));
        assert!(matches!(next(&q), Poll::Ready(None)));
    }

    #[test]
    fn c4_ack_headers_per_version() {
        let m = Frame::new(Command::Message)
            .header("message-id", "m-1")
            .header("subscription", "7")
            .header("ack", "a-1");
        let ack = |v, c| ack_frame(c, v, AckMode::Client, &m, "7");
        let f = ack(Version::V1_2, Command::Ack).unwrap();
        assert_eq!(f.headers().iter().collect::<Vec<_>>(), [("id", "a-1")]);
        let f = ack(Version::V1_1, Command::Nack).unwrap();
        assert_eq!(f.command, Command::Nack);
        assert_eq!(
            f.headers().iter().collect::<Vec<_>>(),
            [("message-id", "m-1"), ("subscription", "7")]
        );
        let f = ack(Version::V1_0, Command::Ack).unwrap();
        assert_eq!(
            f.headers().iter().collect::<Vec<_>>(),
            [("message-id", "m-1")]
        );
        assert!(matches!(
            ack(Version::V1_0, Command::Nack),
            Err(ClientError::CannotAck(_))
        ));
        assert!(matches!(
            ack_frame(Command::Ack, Version::V1_2, AckMode::Auto, &m, "7"),
            Err(ClientError::CannotAck(_))
        ));
    }

    #[test]
    fn prefetch_count_only_for_client_ack() {
        let f = SubscribeOptions::new("/q")
            .ack(AckMode::Client)
            .frame("3", 16);
        assert_eq!(f.get(PREFETCH_COUNT), Some("16"));
        assert_eq!(f.id(), Some("3"));
        let f = SubscribeOptions::new("/q").frame("3", 16);
        assert_eq!(f.get(PREFETCH_COUNT), None);
        let f = SubscribeOptions::new("/q")
            .ack(AckMode::ClientIndividual)
            .header(PREFETCH_COUNT, "2")
            .frame("3", 16);
        assert_eq!(
            f.headers().get_all(PREFETCH_COUNT).collect::<Vec<_>>(),
            ["2"]
        );
    }
}
