//! STOMP over WebSocket, on `tokio-tungstenite`.
//!
//! - [`StompWebSocket`]: a WebSocket as a [`Stream`](futures_util::Stream) of
//!   [`Event`]s and a [`Sink`](futures_util::Sink) of [`Frame`]s (plus
//!   [`send`](StompWebSocket::send), [`send_batch`](StompWebSocket::send_batch),
//!   [`send_heartbeat`](StompWebSocket::send_heartbeat),
//!   [`set_version`](StompWebSocket::set_version), [`close`](StompWebSocket::close)),
//!   with the same [`Parser`](stompkit_wire::Parser) and limits as TCP. Every data
//!   message, text or binary, is pushed into **one** parser per connection: several
//!   frames in one message and one frame split over several messages both work (the
//!   partial frame is buffered only up to the parser's limits); a bare EOL message
//!   is a heart-beat ([`Event::HeartBeat`]).
//! - A WebSocket as a byte stream of STOMP, for callers with their own parser or
//!   codec (one adapter, which [`StompWebSocket`] uses too): [`byte_halves`]
//!   ([`WsByteReader`] appends each data message's payload to a parser buffer,
//!   [`WsByteWriter`] sends each buffer of encoded frames as one message, and the
//!   halves agree on the close code), and [`WsByteStream`], an
//!   `AsyncRead + AsyncWrite` stream sending one message per flush
//!   ([`StompWebSocket::into_byte_stream`]).
//! - Server side, transport-neutral pieces for a broker's own loop:
//!   [`server_accept`] → `(WebSocketStream<S>, `[`Negotiated`]`)`, [`incoming`]
//!   (message → STOMP bytes / control / close), [`outgoing_message`] (encoded
//!   STOMP bytes → one text or binary message), [`PeerFraming`], [`sniff`] and
//!   [`parse_request_head`] (tell HTTP from raw STOMP on one port),
//!   [`WsServerConfig::path_allowed`], [`origin_allowed`].
//! - Client side: [`connect`] for `ws://` and `wss://` URLs (TLS from a
//!   `rustls::ClientConfig` you pass, ring provider; with the `tls` cargo
//!   feature, on by default: without it rustls and ring are not compiled and
//!   `wss://` is refused with [`WsError::TlsUnavailable`]),
//!   [`connect_with_stream`] over any stream.
//! - For `stompkit-tokio`'s async [`Client`](stompkit_tokio::Client): [`connector`]
//!   makes a [`Connector`](stompkit_tokio::Connector) for a `ws://` or `wss://`
//!   URL (or `stomp://`, `stomp+ssl://`: one function for every URL), so the
//!   client runs over WebSocket with reconnect and failover as over TCP;
//!   [`connect_client`] opens a session with it.
//!
//! # Example
//!
//! A tiny server that answers CONNECT and echoes SENDs as MESSAGEs, and a client.
//!
//! ```
//! use futures_util::StreamExt;
//! use stompkit_frame::{Command, Frame, Version};
//! use stompkit_ws::{ClientOptions, Event, StompWebSocket, SubProtocol, WsServerConfig};
//! use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), stompkit_ws::WsError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = WsServerConfig::new(listener.local_addr()?);
//! let url = format!("ws://{}/ws", listener.local_addr()?);
//!
//! tokio::spawn(async move {
//!     let (tcp, _) = listener.accept().await?;
//!     let mut ws = StompWebSocket::accept(tcp, &config).await?;
//!     let allowed = ws.negotiated().unwrap().allowed_versions();
//!     while let Some(event) = ws.next().await {
//!         let Event::Frame(frame) = event? else { continue }; // heart-beat
//!         match frame.command {
//!             Command::Connect => {
//!                 let version = *allowed.last().unwrap(); // (use stompkit-negotiate)
//!                 ws.send(&Frame::connected(version)).await?;
//!                 ws.set_version(version);
//!             }
//!             Command::Send => {
//!                 let message = Frame::new(Command::Message)
//!                     .header("destination", frame.destination().unwrap_or(""))
//!                     .header("message-id", "1")
//!                     .header("subscription", "0")
//!                     .with_body(frame.body_bytes());
//!                 ws.send(&message).await?;
//!             }
//!             _ => {}
//!         }
//!     }
//!     Ok::<_, stompkit_ws::WsError>(())
//! });
//!
//! let mut client = stompkit_ws::connect(&url, ClientOptions::default()).await?;
//! assert_eq!(client.subprotocol(), Some(SubProtocol::V12));
//! client.send(&Frame::new(Command::Connect).header("accept-version", "1.2").header("host", "/")).await?;
//! let Some(Ok(Event::Frame(connected))) = client.next().await else { panic!() };
//! assert_eq!(connected.command, Command::Connected);
//! client.set_version(Version::V1_2);
//! client.send_heartbeat().await?;
//! client.send(&Frame::send("/topic/chat").with_body("hello")).await?;
//! let Some(Ok(Event::Frame(message))) = client.next().await else { panic!() };
//! assert_eq!(message.body(), b"hello");
//! client.close(CloseCode::Normal, "bye").await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Sub-protocols and versions
//!
//! The server offers `v12.stomp`, `v11.stomp`, `v10.stomp` and `stomp`, answers
//! with the best one the client offered, and accepts a client that offers none of
//! them (answering without `Sec-WebSocket-Protocol`). The sub-protocol caps the
//! versions CONNECT may negotiate: [`Negotiated::allowed_versions`] (`v10.stomp`
//! → 1.0; `v11.stomp` → 1.0, 1.1; `v12.stomp`, `stomp` or none → all).
//!
//! # Text and binary
//!
//! Incoming text and binary messages are both STOMP bytes. Outgoing bytes go as
//! text when they are valid UTF-8 and the peer's last data message was text, and
//! as binary otherwise ([`OutgoingMode::Auto`], the server default), so a binary
//! body never reaches a browser as an invalid text message. [`OutgoingMode::Text`]
//! still sends non-UTF-8 bytes as binary; [`OutgoingMode::Binary`] always binary.
//!
//! # Limits, ping and close
//!
//! tungstenite's `max_message_size` and `max_frame_size` are set to the largest
//! STOMP frame the parser accepts plus [`MESSAGE_SLACK`] ([`websocket_config`]).
//! A message over that is an error whose [`WsError::close_code`] is 1009; a STOMP
//! parse error maps to 1009 (size limits) or 1002, a text message that is not
//! UTF-8 to 1007. [`StompWebSocket::fail`] sends
//! that Close; [`StompWebSocket::close`] does the close handshake with any code
//! (1000 for a normal end). Pings are answered and a peer's Close is answered
//! while reading.
//!
//! # Origin and paths
//!
//! WebSocket has no same-origin policy, so [`server_accept`] checks `Origin`
//! ([`origin_allowed`], [`OriginPolicy`]): on a loopback listener any Origin; on
//! any other, a missing Origin, the server's own host (Origin host:port equal to
//! the `Host` header), or one of [`WsServerConfig::allowed_origins`]. A refusal is
//! `403`. Request paths outside [`WsServerConfig::paths`] (default `/ws`, `/stomp`)
//! get `404`.
//!
//! # One port for TCP and WebSocket
//!
//! A broker can tell the two apart without consuming bytes: `TcpStream::peek`
//! the first bytes and call [`sniff`]. On [`Sniff::Http`], peek more and
//! [`parse_request_head`] to route its own HTTP (`/`, `/metrics`); for a WebSocket
//! path hand the **untouched** `TcpStream` to [`server_accept`] (it reads the
//! request itself). If bytes were already read instead of peeked, pass them to
//! [`server_accept_with_prefix`]. Then, in its own loop: [`byte_halves`], reading
//! each message's bytes into its parser ([`WsByteReader::read`]) and sending each
//! batch of encoded frames from its outbox as one message
//! ([`WsByteWriter::write`]); or, lower still, [`incoming`] for each message
//! (push `Data` bytes into its parser, [`PeerFraming::observe`]) and
//! [`outgoing_message`] for each batch.
//!
//! # Memory
//!
//! tungstenite allocates its read buffer up front for every connection (128 KiB
//! by default). Here it is [`DEFAULT_READ_BUFFER`] (4 KiB,
//! [`WsServerConfig::read_buffer_size`]); the write buffer is written through
//! (`write_buffer_size` 0) and the parser's buffer is dropped whenever it is
//! empty. Measured with `tests/idle_memory.rs` (1,000 idle server-side
//! connections, each a task running [`StompWebSocket::accept`] and waiting on
//! `next()` after a CONNECT/CONNECTED exchange, the clients being bare sockets in
//! the same process): about **8.3 KiB of RSS per connection** (4 KiB of it the read
//! buffer, the rest the task, tungstenite's state and both sockets' registrations),
//! against about 136 KiB with tungstenite's default 128 KiB read buffer (it is
//! zero-filled on the first read, so it is all resident). A large message grows
//! the read buffer while it is being received.
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod byte_stream;
mod client;
mod config;
mod connector;
mod error;
mod handshake;
mod message;
mod origin;
mod stream;
mod subprotocol;

pub use byte_stream::{WsByteReader, WsByteStream, WsByteWriter, byte_halves};
pub use client::{ClientOptions, ClientTransport, connect, connect_with_stream};
pub use config::{
    DEFAULT_PATHS, DEFAULT_READ_BUFFER, MESSAGE_SLACK, OriginPolicy, OutgoingMode, WsServerConfig,
    max_stomp_frame, websocket_config,
};
pub use connector::{MAX_CLIENT_MESSAGE, connect_client, connector};
pub use error::WsError;
pub use handshake::{
    MAX_REQUEST_HEAD, RequestHead, Sniff, parse_request_head, server_accept,
    server_accept_with_prefix, sniff,
};
pub use message::{Incoming, PeerFraming, close_message, incoming, outgoing_message};
pub use origin::origin_allowed;
pub use stompkit_frame::{Frame, Version};
pub use stompkit_wire::{Event, ParserConfig};
pub use stream::{CLOSE_TIMEOUT, StompReader, StompWebSocket, StompWriter};
pub use subprotocol::{Negotiated, SubProtocol};
/// Re-exported: the WebSocket library this crate is built on (for `Message`,
/// `CloseCode`, `WebSocketStream`).
pub use tokio_tungstenite;

/// The README's examples, run as doctests (`cargo test --doc`).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
