//! What can go wrong on a STOMP-over-WebSocket connection.
//!
//! Owns [`WsError`] and the mapping from an error to the WebSocket close code we
//! send for it ([`WsError::close_code`]): 1009 for anything too big, 1007 for a
//! text message that is not UTF-8, 1002 for any other protocol violation
//! (WebSocket or STOMP), 1011 for our own failures.

use std::io;
use stompkit_wire::{EncodeError, ParseError};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// An error of the WebSocket transport, of the STOMP bytes carried over it, or of
/// the handshake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The underlying stream failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The WebSocket layer failed: bad framing, a message over the size limit, a
    /// failed client handshake, a write after close.
    #[error("WebSocket error: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// The peer sent bytes that are not valid STOMP, or exceed a limit (the
    /// stream is done; a server answers with an ERROR frame and closes).
    #[error("invalid STOMP frame from peer: {0}")]
    Parse(#[from] ParseError),
    /// A frame could not be encoded for the negotiated version; nothing was sent.
    #[error("cannot encode frame: {0}")]
    Encode(#[from] EncodeError),
    /// We refused the opening handshake with this HTTP status (403 for a foreign
    /// Origin, 404 for a path we do not serve, 400 for a request that is not a
    /// WebSocket upgrade).
    #[error("WebSocket handshake refused: {status} {reason}")]
    Refused {
        /// The HTTP status sent.
        status: u16,
        /// Why.
        reason: &'static str,
    },
    /// The opening handshake did not finish within the configured time.
    #[error("WebSocket handshake timed out")]
    HandshakeTimeout,
    /// The URL given to [`connect`](crate::connect) is not a usable `ws://` or
    /// `wss://` URL.
    #[error("invalid WebSocket URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `wss://` URL, but this build has no TLS support (the `tls` feature is
    /// off).
    #[error("{url}: this build of stompkit has no TLS support (built without the \"tls\" feature)")]
    TlsUnavailable {
        /// The URL.
        url: String,
    },
}

impl WsError {
    /// The close code to send the peer for this error: 1009 (message too big)
    /// for size limits, 1007 (invalid payload data) for a text message that is
    /// not UTF-8 (RFC 6455, 7.4.1), 1002 (protocol error) for other bad
    /// WebSocket or STOMP bytes, 1011 (internal error) otherwise. `None` when no close frame can or should
    /// be sent (the transport is gone, or the handshake never completed).
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            WsError::Parse(e) => Some(match e {
                ParseError::CommandTooLong
                | ParseError::HeaderTooLong
                | ParseError::TooManyHeaders
                | ParseError::HeadersTooLarge
                | ParseError::BodyTooLarge => CloseCode::Size,
                _ => CloseCode::Protocol,
            }),
            WsError::WebSocket(e) => match e {
                tungstenite::Error::Capacity(CapacityError::MessageTooLong { .. }) => {
                    Some(CloseCode::Size)
                }
                tungstenite::Error::Capacity(_) => Some(CloseCode::Size),
                tungstenite::Error::Protocol(
                    ProtocolError::ResetWithoutClosingHandshake
                    | ProtocolError::SendAfterClosing
                    | ProtocolError::ReceivedAfterClosing,
                ) => None,
                tungstenite::Error::Utf8(_) => Some(CloseCode::Invalid),
                tungstenite::Error::Protocol(_) => Some(CloseCode::Protocol),
                _ => None,
            },
            WsError::Encode(_) => Some(CloseCode::Error),
            WsError::Io(_)
            | WsError::Refused { .. }
            | WsError::HandshakeTimeout
            | WsError::Url { .. }
            | WsError::TlsUnavailable { .. } => None,
        }
    }

    /// Whether the error means the peer exceeded a size limit (STOMP frame or
    /// WebSocket message).
    pub fn is_too_large(&self) -> bool {
        self.close_code() == Some(CloseCode::Size)
    }
}
