//! Receipts as futures.
//!
//! Owns [`Receipt`]: a future that resolves when the server's RECEIPT for a frame
//! arrives (S3), or fails with the error that ended the session. The connection
//! task keeps the sending half in its table of pending receipts.

use crate::client::error::ClientError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// The result a pending receipt resolves to.
pub(crate) type ReceiptResult = Result<(), ClientError>;

/// Resolves when the server confirms it processed a frame (and all before it, S3).
///
/// ```no_run
/// # async fn f(client: stompkit_tokio::Client) -> Result<(), stompkit_tokio::ClientError> {
/// use stompkit_frame::Frame;
/// let receipt = client.send_with_receipt(Frame::send("/queue/a").with_body("x")).await?;
/// receipt.await?; // the server has the message
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a receipt does nothing unless awaited"]
pub struct Receipt {
    id: String,
    rx: oneshot::Receiver<ReceiptResult>,
    closed: Arc<Mutex<Option<ClientError>>>,
}

impl Receipt {
    pub(crate) fn new(
        id: String,
        rx: oneshot::Receiver<ReceiptResult>,
        closed: Arc<Mutex<Option<ClientError>>>,
    ) -> Receipt {
        Receipt { id, rx, closed }
    }

    /// The `receipt` header value sent with the frame.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Future for Receipt {
    type Output = Result<(), ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            // The connection task is gone without answering: report why.
            Poll::Ready(Err(_)) => Poll::Ready(Err(self
                .closed
                .lock()
                .ok()
                .and_then(|c| c.clone())
                .unwrap_or(ClientError::ConnectionLost))),
        }
    }
}
