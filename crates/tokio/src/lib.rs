//! Tokio support for STOMP 1.0–1.2: a `tokio_util` codec and an async client.
//!
//! - [`StompCodec`]: `Decoder<Item = Event>` and `Encoder<Frame | Outgoing | Bytes>`
//!   over `stompkit-wire`, for `Framed<TcpStream, StompCodec>` and friends.
//! - [`Client`]: connect (CONNECT or STOMP, version and heart-beat negotiation),
//!   then a cloneable handle to send, subscribe (each [`Subscription`] is a
//!   `Stream` of [`Message`]s), ack/nack with the right headers for the version,
//!   transactions, receipts as futures, graceful disconnect. Heart-beats are sent
//!   and checked automatically; a dead server or an ERROR frame ends every stream
//!   with the error. Optional reconnect ([`Reconnect`], jittered backoff)
//!   re-subscribes live subscriptions, over several servers with
//!   [`Connector::failover`]; [`Client::events`] streams [`ConnectionEvent`]s
//!   for users; a message from before a reconnect is refused with
//!   [`ClientError::StaleAck`] instead of an ACK the server does not know.
//! - [`Client::request`]: request/reply through a temporary reply queue
//!   (`reply-to:/temp-queue/…`, RabbitMQ's semantics) and `correlation-id`.
//! - Any byte stream as a transport ([`Transport`], [`Connector::new`]);
//!   `stompkit-ws` provides WebSocket (`stompkit_ws::connector`).
//! - [`StompUrl`]: the one reader of broker addresses (`stomp://`,
//!   `stomp+ssl://`, `ws://`, `wss://`): [`Scheme`], host, port, path, TLS or
//!   not, with one-line [`UrlError`]s.
//! - `tls` (with the `tls` cargo feature, on by default): `stomp+ssl://` with
//!   `tokio-rustls` (ring), trusting a CA file or the system's root
//!   certificates. Without the feature, rustls and ring are not compiled and
//!   TLS addresses are refused with [`ClientError::TlsUnavailable`].
//!
//! # Example
//!
//! Connect, subscribe, send, receive. (The hidden lines run a tiny scripted
//! server in-process, so this example really runs.)
//!
//! ```
//! use futures_util::StreamExt;
//! use stompkit_tokio::{AckMode, Client, ClientConfig, Frame};
//! # use futures_util::SinkExt;
//! # use stompkit_tokio::{Command, Event, StompCodec, Version};
//! # use tokio_util::codec::Framed;
//! # async fn server(io: tokio::io::DuplexStream) {
//! #     let mut framed = Framed::new(io, StompCodec::new());
//! #     let mut subscription = String::new();
//! #     while let Some(Ok(event)) = framed.next().await {
//! #         let Event::Frame(frame) = event else { continue };
//! #         let reply = match frame.command {
//! #             Command::Connect => Frame::connected(Version::V1_2).header("heart-beat", "0,0"),
//! #             Command::Subscribe => { subscription = frame.id().unwrap_or("").to_string(); continue }
//! #             Command::Send => Frame::new(Command::Message)
//! #                 .header("destination", frame.destination().unwrap_or(""))
//! #                 .header("message-id", "1")
//! #                 .header("subscription", &subscription)
//! #                 .with_body(frame.body_bytes()),
//! #             Command::Disconnect => Frame::receipt_for(frame.receipt().unwrap_or("")),
//! #             _ => continue,
//! #         };
//! #         if framed.send(reply).await.is_err() { break }
//! #         framed.codec_mut().set_version(Version::V1_2);
//! #     }
//! # }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), stompkit_tokio::ClientError> {
//!     // Any AsyncRead + AsyncWrite stream works; over TCP use
//!     // `Client::connect_tcp("127.0.0.1:61613", config)`.
//!     let (stream, server_side) = tokio::io::duplex(64 * 1024);
//! #   tokio::spawn(server(server_side));
//!     let config = ClientConfig::new("localhost").login("guest", "guest");
//!     let client = Client::connect(stream, config).await?;
//!
//!     let mut chat = client.subscribe("/topic/chat", AckMode::Auto).await?;
//!     client.send(Frame::send("/topic/chat").with_body("hello")).await?;
//!
//!     let message = chat.next().await.expect("a message").expect("no error");
//!     assert_eq!(message.body(), b"hello");
//!     assert_eq!(message.destination(), Some("/topic/chat"));
//!
//!     client.disconnect().await?;
//!     Ok(())
//! }
//! ```
//!
//! # Buffers and backpressure
//!
//! - Read and write buffers start at [`codec::INITIAL_BUFFER_SIZE`] (8 KiB) per
//!   connection and grow only for frames larger than that (up to the parser's
//!   limits, [`ParserConfig`]: by default 4 MiB bodies). After a frame larger
//!   than [`codec::SHRINK_ABOVE`] (64 KiB), the codec lets go of the large
//!   allocation (the read buffer right after the frame, the write buffer after
//!   the flush), so an idle connection holds 8 KiB each way.
//! - The connection task never stops reading: it does not wait on consumers.
//!   Each subscription has a bounded buffer ([`ClientConfig::subscription_buffer`],
//!   default 256 messages, or [`SubscribeOptions::buffer`]). Client-ack
//!   subscriptions send `prefetch-count` equal to that bound; an auto-ack
//!   subscription that falls behind drops its oldest messages and yields
//!   [`SubscriptionError::Lagged`]`(n)`.
//! - Requests from handles go through a bounded channel
//!   ([`ClientConfig::request_buffer`], default 128): when the server reads
//!   slowly, `send` waits, while reading (and heart-beats) go on.
#![deny(missing_docs)]

mod client;
pub mod codec;
#[cfg(feature = "tls")]
pub mod tls;

pub use client::Client;
pub use client::Transaction;
pub use client::config::{ClientConfig, Jitter, Reconnect};
pub use client::connector::{Address, Connector, TlsClientConfig, Transport};
pub use client::error::{ClientError, SubscriptionError};
pub use client::events::{ConnectionEvent, ConnectionEvents};
pub use client::receipt::Receipt;
pub use client::request::REPLY_QUEUE;
pub use client::subscription::{Message, PREFETCH_COUNT, SubscribeOptions, Subscription};
pub use client::url::{Scheme, StompUrl, UrlError};
pub use codec::{CodecError, Outgoing, StompCodec};
pub use stompkit_frame::{AckMode, Command, Frame, Headers, Version};
pub use stompkit_negotiate::HeartBeatIntervals;
pub use stompkit_wire::{ContentLength, Event, ParserConfig};

/// The README's examples, run as doctests (`cargo test --doc`).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
