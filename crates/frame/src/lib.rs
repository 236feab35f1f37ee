//! The STOMP vocabulary: [`Command`], [`Version`], ordered [`Headers`] and [`Frame`].
//!
//! This is the lowest layer of stompkit. It has no I/O and knows nothing of the
//! wire format: escaping lives in `stompkit-escape`, reading and writing bytes in
//! `stompkit-wire`. Header text here is always decoded and always UTF-8.
//!
//! ```
//! use stompkit_frame::{AckMode, Command, Frame};
//! let sub = Frame::subscribe("/topic/chat", "0", AckMode::Client);
//! assert_eq!(sub.command, Command::Subscribe);
//! assert_eq!(sub.ack_mode(), Ok(AckMode::Client));
//! ```
#![deny(missing_docs)]

mod command;
mod frame;
mod headers;
mod storage;
mod version;

pub use command::{Command, UnknownCommand};
pub use frame::{AckMode, BadContentLength, Frame, parse_content_length};
pub use headers::{Headers, RawHeaders, RawHeadersError, RawText};
pub use version::{UnknownVersion, Version};

/// Names of the standard STOMP headers, spelled as on the wire.
pub mod names {
    /// `accept-version` (CONNECT).
    pub const ACCEPT_VERSION: &str = "accept-version";
    /// `ack` (SUBSCRIBE mode; 1.2 MESSAGE ack id).
    pub const ACK: &str = "ack";
    /// `content-length`.
    pub const CONTENT_LENGTH: &str = "content-length";
    /// `content-type`.
    pub const CONTENT_TYPE: &str = "content-type";
    /// `destination`.
    pub const DESTINATION: &str = "destination";
    /// `heart-beat`.
    pub const HEART_BEAT: &str = "heart-beat";
    /// `host`.
    pub const HOST: &str = "host";
    /// `id`.
    pub const ID: &str = "id";
    /// `login`.
    pub const LOGIN: &str = "login";
    /// `message` (ERROR).
    pub const MESSAGE: &str = "message";
    /// `message-id`.
    pub const MESSAGE_ID: &str = "message-id";
    /// `passcode`.
    pub const PASSCODE: &str = "passcode";
    /// `receipt`.
    pub const RECEIPT: &str = "receipt";
    /// `receipt-id`.
    pub const RECEIPT_ID: &str = "receipt-id";
    /// `server`.
    pub const SERVER: &str = "server";
    /// `session`.
    pub const SESSION: &str = "session";
    /// `subscription`.
    pub const SUBSCRIPTION: &str = "subscription";
    /// `transaction`.
    pub const TRANSACTION: &str = "transaction";
    /// `version`.
    pub const VERSION: &str = "version";
}

/// The README's examples, run as doctests (`cargo test --doc`).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
