//! Request/reply over a temporary reply queue (RabbitMQ's `/temp-queue/`).
//!
//! Owns [`Client::request`] and the table of requests waiting for their reply.
//! Every request of a client goes out with the same
//! `reply-to:/temp-queue/stompkit-replies` and a `correlation-id` of its own;
//! the server delivers replies to that name on subscription id
//! `/temp-queue/stompkit-replies` without any SUBSCRIBE, and the connection task
//! hands each one to the request whose `correlation-id` it carries
//! ([`Replies::deliver`]). One name per connection keeps within a server's
//! limit of temporary queues per connection however many requests are in
//! flight. A reply that comes after its request gave up is dropped.

use crate::client::Client;
use crate::client::connection::Request;
use crate::client::error::ClientError;
use crate::client::subscription::Message;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use stompkit_frame::{Command, Frame};
use tokio::sync::oneshot;

/// The temporary queue every request names in `reply-to`, and the subscription
/// id its replies arrive on.
pub const REPLY_QUEUE: &str = "/temp-queue/stompkit-replies";

/// The header that pairs a reply with its request (RabbitMQ's and JMS's name).
pub(crate) const CORRELATION_ID: &str = "correlation-id";

/// The header naming where a reply goes.
pub(crate) const REPLY_TO: &str = "reply-to";

type Waiter = oneshot::Sender<Result<Message, ClientError>>;

/// Requests waiting for a reply, by `correlation-id`.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    waiting: Mutex<HashMap<String, Waiter>>,
}

impl Replies {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Waiter>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a MESSAGE on subscription `id` is a reply.
    pub(crate) fn is_reply_subscription(id: &str) -> bool {
        id == REPLY_QUEUE
    }

    /// Hands a reply to its request; `false` when none waits for it (late,
    /// unknown or without `correlation-id`).
    pub(crate) fn deliver(&self, message: Message) -> bool {
        let waiter = message
            .header(CORRELATION_ID)
            .and_then(|id| self.lock().remove(id));
        match waiter {
            Some(tx) => tx.send(Ok(message)).is_ok(),
            None => false,
        }
    }

    /// Fails every waiting request with `error` (the connection is gone, and
    /// its temporary queue with it).
    pub(crate) fn fail_all(&self, error: &ClientError) {
        for (_, tx) in self.lock().drain() {
            let _ = tx.send(Err(error.clone()));
        }
    }
}

/// Takes a request out of the table when its caller stops waiting.
struct Registration<'a> {
    replies: &'a Replies,
    id: String,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.replies.lock().remove(&self.id);
    }
}

impl Client {
    /// Sends `frame` (a SEND, e.g. [`Frame::send`]) as a request and waits up
    /// to `timeout` for the reply: the frame goes out with
    /// `reply-to:/temp-queue/stompkit-replies` ([`REPLY_QUEUE`]) and a fresh
    /// `correlation-id` (both replacing any given); the server turns the
    /// `reply-to` into a private reply destination of this connection, and the
    /// first MESSAGE that arrives there with the same `correlation-id` is the
    /// answer. The responder sends its reply to the `reply-to` it received and
    /// copies `correlation-id` ([`Message::reply_frame`] builds that frame).
    ///
    /// Needs a server with RabbitMQ's temporary reply queues (stompkit-broker,
    /// RabbitMQ). Fails with [`ClientError::Timeout`] when no reply came in
    /// time (a later one is dropped), [`ClientError::ConnectionLost`] when the
    /// connection was lost meanwhile (the reply queue went with it), and with
    /// the error that ended the session.
    ///
    /// ```no_run
    /// # async fn f(client: stompkit_tokio::Client) -> Result<(), stompkit_tokio::ClientError> {
    /// use std::time::Duration;
    /// use stompkit_tokio::Frame;
    /// let question = Frame::send("/queue/prices").with_body("ACME");
    /// let answer = client.request(question, Duration::from_secs(5)).await?;
    /// println!("{}", String::from_utf8_lossy(answer.body()));
    /// # Ok(()) }
    /// ```
    pub async fn request(&self, frame: Frame, timeout: Duration) -> Result<Message, ClientError> {
        if frame.command != Command::Send {
            return Err(ClientError::UnexpectedFrame(frame.command));
        }
        let id = format!("req-{}", self.next_id());
        let mut frame = frame;
        frame.headers_mut().set(REPLY_TO, REPLY_QUEUE);
        frame.headers_mut().set(CORRELATION_ID, &id);
        let bytes = self.encode(&frame)?;
        let replies = &self.inner.shared.replies;
        let (tx, rx) = oneshot::channel();
        replies.lock().insert(id.clone(), tx);
        let _registration = Registration { replies, id };
        self.submit(Request::Frame {
            bytes,
            receipt: None,
            session: None,
        })
        .await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(self.closed_or_lost()),
            Err(_) => Err(ClientError::Timeout),
        }
    }
}

impl Message {
    /// The SEND answering this message when it is a request: to its `reply-to`,
    /// with its `correlation-id` copied (what [`Client::request`] waits for).
    /// `None` when the message has no `reply-to`.
    pub fn reply_frame(&self) -> Option<Frame> {
        let reply_to = self.header(REPLY_TO)?;
        let mut frame = Frame::send(reply_to);
        if let Some(id) = self.header(CORRELATION_ID) {
            frame = frame.header(CORRELATION_ID, id);
        }
        Some(frame)
    }
}
