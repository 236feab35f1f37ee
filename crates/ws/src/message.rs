//! Between WebSocket messages and STOMP bytes, for callers with their own loop.
//!
//! Owns the transport-neutral pieces: what an incoming [`Message`] means for the
//! STOMP parser ([`incoming`]), and which kind of message carries outgoing STOMP
//! bytes ([`outgoing_message`], text or binary, never invalid text). The byte
//! stream adapter (`byte_stream`: [`byte_halves`](crate::byte_halves),
//! [`WsByteStream`](crate::WsByteStream)) and through it
//! [`StompWebSocket`](crate::StompWebSocket) are built on them; callers with a
//! loop of their own may use them directly.
//!
//! Control messages need nothing from the caller: tungstenite queues the answer
//! to a Ping (a Pong) and to a Close (a Close) itself and writes it on the next
//! read, write or flush of the WebSocket, so keep reading.

use crate::config::OutgoingMode;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// What an incoming WebSocket message means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// STOMP bytes, from a text (`text: true`) or binary message: push them into
    /// the connection's one parser. They may hold several frames, part of one,
    /// or a heart-beat EOL.
    Data {
        /// The payload.
        bytes: Bytes,
        /// Whether it came as a text message.
        text: bool,
    },
    /// A Ping or Pong: nothing to do (tungstenite answers pings itself).
    Control,
    /// The peer started the close handshake (tungstenite has queued our Close
    /// reply: keep reading until the stream ends, which flushes it).
    Close(Option<CloseFrame>),
}

/// Classifies an incoming message.
///
/// ```
/// use stompkit_ws::{Incoming, incoming};
/// use tokio_tungstenite::tungstenite::Message;
/// assert_eq!(incoming(Message::text("\n")), Incoming::Data { bytes: "\n".into(), text: true });
/// assert_eq!(incoming(Message::Ping("x".into())), Incoming::Control);
/// ```
pub fn incoming(message: Message) -> Incoming {
    match message {
        Message::Text(text) => Incoming::Data {
            bytes: Bytes::from(text),
            text: true,
        },
        Message::Binary(bytes) => Incoming::Data { bytes, text: false },
        Message::Close(frame) => Incoming::Close(frame),
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Incoming::Control,
    }
}

/// Wraps already-encoded STOMP bytes (one frame, a batch of frames, or a
/// heart-beat) into one message: text when `mode` allows it and the bytes are
/// valid UTF-8, binary otherwise (see [`OutgoingMode`]); `peer_sends_text` is
/// whether the peer's last data message was text (see [`PeerFraming`]).
///
/// ```
/// use stompkit_ws::{OutgoingMode, outgoing_message};
/// let text = outgoing_message("MESSAGE\n\nhi\0".into(), OutgoingMode::Auto, true);
/// assert!(text.is_text());
/// let nul_body = outgoing_message(b"MESSAGE\n\n\xff\0".to_vec().into(), OutgoingMode::Text, true);
/// assert!(nul_body.is_binary()); // never invalid text
/// assert!(outgoing_message("\n".into(), OutgoingMode::Auto, false).is_binary());
/// ```
pub fn outgoing_message(bytes: Bytes, mode: OutgoingMode, peer_sends_text: bool) -> Message {
    let want_text = match mode {
        OutgoingMode::Auto => peer_sends_text,
        OutgoingMode::Text => true,
        OutgoingMode::Binary => false,
    };
    if want_text {
        // A `Bytes` clone is a reference count, not a copy.
        match Utf8Bytes::try_from(bytes.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(bytes),
        }
    } else {
        Message::Binary(bytes)
    }
}

/// Remembers whether the peer's last data message was text, shared between a
/// connection's reader and writer (cheap to clone). Starts as text.
#[derive(Clone, Debug)]
pub struct PeerFraming(Arc<AtomicBool>);

impl Default for PeerFraming {
    fn default() -> PeerFraming {
        PeerFraming(Arc::new(AtomicBool::new(true)))
    }
}

impl PeerFraming {
    /// A tracker that assumes text until told otherwise.
    pub fn new() -> PeerFraming {
        PeerFraming::default()
    }

    /// Records the kind of an incoming message (ignores control messages).
    pub fn observe(&self, incoming: &Incoming) {
        if let Incoming::Data { text, .. } = incoming {
            self.0.store(*text, Ordering::Relaxed);
        }
    }

    /// Whether the peer's last data message was text (true before any).
    pub fn sends_text(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A Close message with `code` and a short `reason` (at most 123 bytes are sent).
pub fn close_message(code: CloseCode, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }))
}
