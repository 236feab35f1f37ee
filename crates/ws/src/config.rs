//! Server-side settings: paths, Origin policy, STOMP limits and the WebSocket
//! buffer sizes derived from them.
//!
//! Owns [`WsServerConfig`] and [`OutgoingMode`], and the translation of STOMP
//! limits into tungstenite's [`WebSocketConfig`] ([`WsServerConfig::websocket_config`]).

use std::net::SocketAddr;
use std::time::Duration;
use stompkit_wire::ParserConfig;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Default accepted request paths.
pub const DEFAULT_PATHS: [&str; 2] = ["/ws", "/stomp"];

/// Bytes a WebSocket message may hold beyond the largest STOMP frame the parser
/// accepts (room for EOLs, a NUL and heart-beats around it).
pub const MESSAGE_SLACK: usize = 4 * 1024;

/// Default capacity of tungstenite's per-connection read buffer. Small, so an
/// idle connection holds little memory; larger messages grow it while they last.
pub const DEFAULT_READ_BUFFER: usize = 4 * 1024;

/// How outgoing STOMP bytes are framed as WebSocket messages.
///
/// Whatever the mode, bytes that are not valid UTF-8 (a binary body) always go
/// as a **binary** message: an invalid text message would make a browser fail
/// the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutgoingMode {
    /// Text when the bytes are valid UTF-8 and the peer's last data message was
    /// text (or it has sent none yet); binary otherwise. The default.
    #[default]
    Auto,
    /// Text whenever the bytes are valid UTF-8; binary otherwise.
    Text,
    /// Always binary.
    Binary,
}

/// Which `Origin` headers a server accepts (WebSocket has no same-origin policy:
/// a browser page from any site may open a connection, with the user's cookies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OriginPolicy {
    /// On a loopback listener, any Origin. On any other listener: a missing
    /// Origin (non-browser clients), the server's own host (the Origin's
    /// host:port equals the request's `Host`), and the configured origins.
    #[default]
    Auto,
    /// Like `Auto` on a non-loopback listener, even on loopback.
    Strict,
    /// Any Origin, anywhere.
    Any,
}

/// Settings of the server side of STOMP over WebSocket.
///
/// ```
/// use stompkit_ws::{OutgoingMode, WsServerConfig};
/// let config = WsServerConfig::new("0.0.0.0:61614".parse().unwrap())
///     .allow_origin("https://app.example.com")
///     .outgoing(OutgoingMode::Auto);
/// assert!(config.path_allowed("/ws") && config.path_allowed("/stomp?x=1"));
/// assert!(!config.path_allowed("/metrics"));
/// let ws = config.websocket_config();
/// assert!(ws.max_message_size.unwrap() > config.parser.max_body);
/// ```
#[derive(Clone, Debug)]
pub struct WsServerConfig {
    /// The listener's local address; decides whether the listener is loopback
    /// for [`OriginPolicy::Auto`]. `None` counts as not loopback.
    pub local_addr: Option<SocketAddr>,
    /// Accepted request paths (exact match, query ignored). Default `/ws`, `/stomp`.
    pub paths: Vec<String>,
    /// Origins accepted besides the policy's defaults, e.g.
    /// `https://app.example.com` (scheme, host and port if not the default;
    /// compared case-insensitively). `*` accepts any.
    pub allowed_origins: Vec<String>,
    /// How `Origin` is checked.
    pub origin_policy: OriginPolicy,
    /// STOMP parser limits (the same as over TCP); the WebSocket message and frame
    /// limits are derived from them.
    pub parser: ParserConfig,
    /// Text or binary outgoing messages.
    pub outgoing: OutgoingMode,
    /// Capacity of tungstenite's read buffer per connection
    /// (default [`DEFAULT_READ_BUFFER`]).
    pub read_buffer_size: usize,
    /// Time allowed for the opening handshake (default 10 s).
    pub handshake_timeout: Duration,
}

impl Default for WsServerConfig {
    fn default() -> WsServerConfig {
        WsServerConfig {
            local_addr: None,
            paths: DEFAULT_PATHS.iter().map(|p| p.to_string()).collect(),
            allowed_origins: Vec::new(),
            origin_policy: OriginPolicy::Auto,
            parser: ParserConfig::default(),
            outgoing: OutgoingMode::Auto,
            read_buffer_size: DEFAULT_READ_BUFFER,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl WsServerConfig {
    /// Defaults for a listener bound to `local_addr`.
    pub fn new(local_addr: SocketAddr) -> WsServerConfig {
        WsServerConfig {
            local_addr: Some(local_addr),
            ..WsServerConfig::default()
        }
    }

    /// Adds an accepted origin.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> WsServerConfig {
        self.allowed_origins.push(origin.into());
        self
    }

    /// Replaces the accepted paths.
    pub fn paths<I, P>(mut self, paths: I) -> WsServerConfig
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the Origin policy.
    pub fn origin_policy(mut self, policy: OriginPolicy) -> WsServerConfig {
        self.origin_policy = policy;
        self
    }

    /// Sets the STOMP parser limits.
    pub fn parser(mut self, parser: ParserConfig) -> WsServerConfig {
        self.parser = parser;
        self
    }

    /// Sets the outgoing message mode.
    pub fn outgoing(mut self, mode: OutgoingMode) -> WsServerConfig {
        self.outgoing = mode;
        self
    }

    /// Whether a request target (path, optionally with `?query`) is one we serve.
    /// The broker calls this while routing its own HTTP; [`server_accept`]
    /// enforces it too (404).
    ///
    /// [`server_accept`]: crate::server_accept
    pub fn path_allowed(&self, target: &str) -> bool {
        let path = target.split(['?', '#']).next().unwrap_or("");
        self.paths.iter().any(|p| p == path)
    }

    /// Whether the listener is on a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.local_addr.is_some_and(|a| a.ip().is_loopback())
    }

    /// The tungstenite settings for these STOMP limits: see [`websocket_config`].
    pub fn websocket_config(&self) -> WebSocketConfig {
        websocket_config(&self.parser, self.read_buffer_size)
    }
}

/// The largest STOMP frame `parser` accepts, in bytes: command and headers,
/// body, blank line and NUL.
pub fn max_stomp_frame(parser: &ParserConfig) -> usize {
    parser
        .max_header_bytes
        .saturating_add(parser.max_body)
        .saturating_add(8)
}

/// tungstenite settings derived from STOMP limits:
///
/// - `max_message_size` = `max_frame_size` = largest STOMP frame + [`MESSAGE_SLACK`]
///   (a message may carry a frame split over several messages or several frames;
///   the STOMP parser enforces its own limits on each frame either way);
/// - `read_buffer_size` = `read_buffer` (allocated up front per connection);
/// - `write_buffer_size` = 0: each message is written at once (callers already
///   batch STOMP frames into one message), so tungstenite holds no bytes of its own
///   between writes; `max_write_buffer_size` stays unlimited (a batch may be
///   larger than one frame; backpressure comes from awaiting the send).
pub fn websocket_config(parser: &ParserConfig, read_buffer: usize) -> WebSocketConfig {
    let max_message = max_stomp_frame(parser).saturating_add(MESSAGE_SLACK);
    WebSocketConfig::default()
        .read_buffer_size(read_buffer.max(64))
        .write_buffer_size(0)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}
