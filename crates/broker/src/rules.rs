//! The rules layer: what a STOMP server demands of its client, shared by the
//! local session (`session.rs`) and the relay session (`relay/session.rs`).
//!
//! Owns the protocol's stateless rules and their wording: turning a client frame
//! into a typed, checked [`Request`] for the session's version ([`check`]), the
//! [`ProtocolError`] for every rule a frame or a session can break (each ERROR
//! `message` the broker sends to its own clients is written once, there), the
//! ERROR frame builder and the refusal of a CONNECT without a common version
//! (`frames`), the CONNECTED heart-beat answer and the heart-beat timer's beat
//! (`heartbeat`), and who may SEND to and SUBSCRIBE to what (`permission`).
//!
//! Does not own per-connection state: duplicate subscription ids, open
//! transactions and the limits on them are the sessions' to check (they raise
//! the [`ProtocolError`] variants named for them). Sockets, clocks and the
//! router are not seen here.

mod error;
mod frames;
mod heartbeat;
mod permission;
mod request;

pub(crate) use error::ProtocolError;
pub use frames::refusal;
pub(crate) use frames::{error_frame, version_refusal, write_frame};
pub(crate) use heartbeat::{answer_heartbeat, beat};
pub(crate) use permission::{forbidden_body, may, reauthorize, who};
pub use request::PREFETCH_COUNT;
pub(crate) use request::{AckTarget, Durable, Request, check, prefetch};

#[cfg(test)]
mod tests;
