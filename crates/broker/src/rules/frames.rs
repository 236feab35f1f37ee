//! The frames a session writes on its own behalf: ERROR (one builder for the
//! local and the relay session), the ERROR that refuses a CONNECT without a
//! common version, and the encoding of such frames with failures logged.
//!
//! Does not decide when to send them, nor where they go (the outbox, or through
//! the router after the session opened): the sessions do.

use super::ProtocolError;
use bytes::BytesMut;
use stompkit_frame::{Frame, names};
use stompkit_negotiate::NegotiateError;
use stompkit_wire::Encoder;

/// S4/V4: an ERROR frame with `message`, `receipt-id` when the offending frame
/// asked for a receipt, `version` (the supported versions, V4) when given, and a
/// short plain-text `body`.
pub(crate) fn error_frame(
    message: &str,
    receipt: Option<&str>,
    versions: Option<&str>,
    body: &str,
) -> Frame {
    let mut frame = Frame::error(message);
    if let Some(r) = receipt {
        frame = frame.header(names::RECEIPT_ID, r);
    }
    if let Some(v) = versions {
        frame = frame.header(names::VERSION, v);
    }
    frame
        .header(names::CONTENT_TYPE, "text/plain")
        .with_body(format!("{body}\n"))
}

/// An ERROR frame for refusing a connection before any session exists (max
/// connections, shutdown), encoded for an unknown version.
pub fn refusal(message: &str) -> Frame {
    error_frame(message, None, None, message)
}

/// V4: the ERROR answering a CONNECT whose `accept-version` allows no version
/// the server speaks here (with the `version` header listing them), or is
/// malformed.
pub(crate) fn version_refusal(error: &NegotiateError) -> Frame {
    let rule = match error {
        NegotiateError::NoCommonVersion { .. } => ProtocolError::NoCommonVersion,
        _ => ProtocolError::MalformedAcceptVersion,
    };
    let versions = error.supported_versions_header();
    error_frame(rule.message(), None, versions.as_deref(), rule.message())
}

/// Encodes a frame the session made itself (CONNECTED, ERROR, DISCONNECT) into
/// `buf`. A frame the version cannot carry is not written, and logged.
pub(crate) fn write_frame(encoder: &Encoder, frame: &Frame, buf: &mut BytesMut) {
    if let Err(error) = encoder.encode(frame, buf) {
        tracing::warn!(command = %frame.command, %error, "frame not encoded");
    }
}
