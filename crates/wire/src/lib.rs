//! The sans-IO STOMP wire format: a resumable, zero-copy [`Parser`] and an [`Encoder`].
//!
//! No sockets, no async, no clock: bytes in, [`Event`]s out; [`Frame`]s in, bytes
//! out. The tokio codec, the WebSocket bridge and the broker all sit on this crate.
//!
//! ```
//! use stompkit_frame::{Frame, Version};
//! use stompkit_wire::{Encoder, Event, Parser};
//!
//! let mut bytes = Vec::new();
//! let encoder = Encoder::new(Some(Version::V1_2));
//! encoder.encode(&Frame::send("/topic/chat").with_body("hello"), &mut bytes)?;
//!
//! let mut parser = Parser::new();
//! parser.set_version(Version::V1_2);
//! parser.push(&bytes);
//! let Some(Event::Frame(frame)) = parser.next_event().unwrap() else { panic!() };
//! assert_eq!(frame.destination(), Some("/topic/chat"));
//! # Ok::<(), stompkit_wire::EncodeError>(())
//! ```
#![deny(missing_docs)]

mod encoder;
mod error;
mod parser;
mod specials;

pub use encoder::{ContentLength, Encoder, put_decimal};
pub use error::{EncodeError, ParseError};
pub use parser::{Event, Parser, ParserConfig};
pub use stompkit_frame::{Command, Frame, Headers, Version};

/// The README's examples, run as doctests (`cargo test --doc`).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
