//! What can end a client session or fail a request.
//!
//! Owns [`ClientError`] (cheap to clone: the one error that ends a session is
//! handed to every open subscription, pending receipt and later call) and
//! [`SubscriptionError`], the error items of a subscription stream. It does not
//! decide when a session ends; the connection task does.

use crate::codec::CodecError;
use std::io;
use std::sync::Arc;
use stompkit_frame::{Command, Frame};
use stompkit_negotiate::NegotiateError;
use stompkit_wire::{EncodeError, ParseError};

/// Why a client call failed or a session ended.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),
    /// The server sent bytes that are not a valid STOMP frame.
    #[error("invalid frame from server: {0}")]
    Parse(ParseError),
    /// A frame could not be encoded for the negotiated version; nothing was sent.
    #[error("cannot encode frame: {0}")]
    Encode(EncodeError),
    /// Version or heart-beat negotiation failed (V3, H1).
    #[error("negotiation failed: {0}")]
    Negotiate(Arc<NegotiateError>),
    /// The server sent an ERROR frame; the session is over (S4). The frame is kept.
    #[error("server sent ERROR: {}", .0.get("message").unwrap_or("(no message)"))]
    Server(Arc<Frame>),
    /// Nothing arrived from the server within the negotiated heart-beat interval
    /// and its grace margin (H5).
    #[error("server stopped sending data (heart-beat timeout)")]
    PeerDead,
    /// The server closed the connection.
    #[error("connection closed by server")]
    ConnectionClosed,
    /// The connection was lost while this request was in flight (it may or may not
    /// have been processed); with reconnect on, the session continues on a new one.
    #[error("connection lost; the request may not have been processed")]
    ConnectionLost,
    /// While connecting, the server answered with a frame other than CONNECTED or ERROR.
    #[error("unexpected {0} frame while connecting")]
    UnexpectedFrame(Command),
    /// The server did not answer in time (CONNECT, DISCONNECT, or no reply to
    /// [`Client::request`](crate::Client::request) within its timeout).
    #[error("timed out waiting for the server")]
    Timeout,
    /// The session was closed by [`Client::disconnect`](crate::Client::disconnect).
    #[error("client disconnected")]
    Disconnected,
    /// The message cannot be acknowledged as asked (no `ack` header in 1.2, NACK in 1.0,
    /// an auto-ack subscription).
    #[error("cannot acknowledge message: {0}")]
    CannotAck(&'static str),
    /// The message was received on an earlier connection of this session: the
    /// connection was lost and the client reconnected since, and the server
    /// knows nothing of that delivery any more (it will deliver the message
    /// again if it was not acknowledged). Nothing was sent. Also for a
    /// [`Transaction`](crate::Transaction) begun on an earlier connection.
    #[error(
        "stale acknowledgement: the message came on an earlier connection (the client reconnected since)"
    )]
    StaleAck,
    /// TLS setup or handshake failed.
    #[cfg(feature = "tls")]
    #[error("TLS: {0}")]
    Tls(Arc<crate::tls::TlsError>),
    /// The address asks for TLS (`stomp+ssl://`, ...) but this build has no TLS
    /// support (the `tls` feature is off). Holds the address.
    #[error("{0}: this build of stompkit has no TLS support (built without the \"tls\" feature)")]
    TlsUnavailable(String),
    /// The address is not `stomp://host:port` or `stomp+ssl://host:port`.
    #[error("invalid address: {0}")]
    InvalidAddress(String),
}

impl ClientError {
    /// The ERROR frame the server sent, when that is what ended the session.
    pub fn server_frame(&self) -> Option<&Frame> {
        match self {
            ClientError::Server(frame) => Some(frame),
            _ => None,
        }
    }

    /// Whether a new connection might succeed: transport failures and heart-beat
    /// timeouts, not ERROR frames or negotiation failures.
    pub fn is_connection_loss(&self) -> bool {
        matches!(
            self,
            ClientError::Io(_)
                | ClientError::PeerDead
                | ClientError::ConnectionClosed
                | ClientError::ConnectionLost
                | ClientError::Timeout
        )
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> ClientError {
        ClientError::Io(Arc::new(e))
    }
}

impl From<CodecError> for ClientError {
    fn from(e: CodecError) -> ClientError {
        match e {
            CodecError::Io(e) => ClientError::from(e),
            CodecError::Parse(e) => ClientError::Parse(e),
            CodecError::Encode(e) => ClientError::Encode(e),
        }
    }
}

impl From<EncodeError> for ClientError {
    fn from(e: EncodeError) -> ClientError {
        ClientError::Encode(e)
    }
}

impl From<NegotiateError> for ClientError {
    fn from(e: NegotiateError) -> ClientError {
        ClientError::Negotiate(Arc::new(e))
    }
}

#[cfg(feature = "tls")]
impl From<crate::tls::TlsError> for ClientError {
    fn from(e: crate::tls::TlsError) -> ClientError {
        ClientError::Tls(Arc::new(e))
    }
}

/// An error item of a [`Subscription`](crate::Subscription) stream.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// An auto-ack subscription fell behind its buffer bound: this many of the
    /// oldest buffered messages were dropped. The stream goes on (as
    /// `tokio::sync::broadcast` reports `Lagged`).
    #[error("subscription lagged: {0} messages dropped")]
    Lagged(u64),
    /// The session ended with this error; the stream ends after it.
    #[error(transparent)]
    Closed(ClientError),
}
