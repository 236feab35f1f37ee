//! The server side of the opening handshake.
//!
//! Owns reading the HTTP request head, the checks (method and upgrade headers,
//! path, Origin), choosing the sub-protocol, and writing either `101 Switching
//! Protocols` or a short error response (400, 403, 404, 405, 426, 431). It also
//! owns [`sniff`], which tells an HTTP request from raw STOMP by its first bytes,
//! so one listener can serve both.
//!
//! The handshake is done here rather than by tungstenite's `accept_hdr_async` so
//! that every refusal gets a proper HTTP answer (tungstenite answers nothing to a
//! request that is not an upgrade) and so that bytes a caller already read can be
//! handed in ([`server_accept_with_prefix`]). Once accepted, the stream is wrapped
//! by tungstenite's [`WebSocketStream::from_partially_read`] with the limits of
//! [`WsServerConfig::websocket_config`].

use crate::config::WsServerConfig;
use crate::error::WsError;
use crate::origin::origin_allowed;
use crate::subprotocol::{Negotiated, SubProtocol};
use std::fmt::Write as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Largest request head accepted (request line and headers), in bytes.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Most request headers accepted.
const MAX_HEADERS: usize = 48;

/// What the first bytes of a connection are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// An HTTP request (a method token then a space): hand the stream to
    /// [`server_accept`] or serve it as plain HTTP.
    Http,
    /// Not HTTP: raw STOMP (a command line, or heart-beat EOLs).
    Stomp,
    /// Too few bytes to tell; peek again when more arrived.
    NeedMore,
}

/// Tells an HTTP request from raw STOMP by the first bytes of a connection.
///
/// HTTP starts with an upper-case method token followed by a space (`GET /ws`);
/// STOMP starts with a command followed by an EOL (`CONNECT\n`), or with EOLs.
/// Note that the HTTP method `CONNECT` and the STOMP command `CONNECT` differ only
/// in the byte after them, so up to 8 bytes may be needed.
///
/// The intended use is with `TcpStream::peek`, which leaves the bytes in the
/// socket: after [`Sniff::Http`], pass the *untouched* stream to
/// [`server_accept`], which reads the request itself. If the caller has instead
/// consumed bytes, pass them to [`server_accept_with_prefix`].
///
/// ```
/// use stompkit_ws::{Sniff, sniff};
/// assert_eq!(sniff(b"GET /ws HTTP/1.1\r\n"), Sniff::Http);
/// assert_eq!(sniff(b"CONNECT\naccept-version:1.2\n"), Sniff::Stomp);
/// assert_eq!(sniff(b"\n"), Sniff::Stomp);
/// assert_eq!(sniff(b"CONN"), Sniff::NeedMore);
/// assert_eq!(sniff(b"get /"), Sniff::Stomp);
/// ```
pub fn sniff(prefix: &[u8]) -> Sniff {
    for (i, &b) in prefix.iter().enumerate() {
        match b {
            b'A'..=b'Z' | b'-' | b'_' if i < 16 => continue,
            b' ' if i > 0 => return Sniff::Http,
            _ => return Sniff::Stomp,
        }
    }
    if prefix.len() >= 16 {
        Sniff::Stomp
    } else {
        Sniff::NeedMore
    }
}

/// The parts of a request head the broker routes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The method (`GET`).
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Whether it asks for a WebSocket upgrade (`Upgrade: websocket`).
    pub websocket: bool,
    /// The header fields in order: names as sent, values trimmed (bytes that
    /// are not UTF-8 replaced by U+FFFD).
    pub headers: Vec<(String, String)>,
    /// Length of the head in bytes, including the blank line.
    pub len: usize,
}

impl RequestHead {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a request head from the start of `bytes` (e.g. bytes peeked from a
/// socket): `Ok(None)` when incomplete, `Err` when it is not valid HTTP or longer
/// than [`MAX_REQUEST_HEAD`].
///
/// ```
/// let head = stompkit_ws::parse_request_head(
///     b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap().unwrap();
/// assert_eq!((head.method.as_str(), head.target.as_str(), head.websocket), ("GET", "/metrics", false));
/// assert_eq!(stompkit_ws::parse_request_head(b"GET /ws HTTP/1.1\r\n").unwrap(), None);
/// ```
pub fn parse_request_head(bytes: &[u8]) -> Result<Option<RequestHead>, WsError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => Ok(Some(RequestHead {
            method: req.method.unwrap_or("").to_string(),
            target: req.path.unwrap_or("").to_string(),
            websocket: header(req.headers, "upgrade")
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
            headers: req
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value);
                    (h.name.to_owned(), value.trim().to_owned())
                })
                .collect(),
            len,
        })),
        Ok(httparse::Status::Partial) if bytes.len() < MAX_REQUEST_HEAD => Ok(None),
        Ok(httparse::Status::Partial) => Err(refused(431, "request header too large")),
        Err(httparse::Error::TooManyHeaders) => Err(refused(431, "too many request headers")),
        Err(_) => Err(refused(400, "malformed HTTP request")),
    }
}

fn refused(status: u16, reason: &'static str) -> WsError {
    WsError::Refused { status, reason }
}

fn header<'h>(headers: &'h [httparse::Header<'_>], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
}

/// Accepts a WebSocket on `stream`, which must still hold the whole HTTP request
/// (a stream only peeked at is fine): reads the request, checks it, answers, and
/// returns the WebSocket with what was negotiated.
///
/// Checks, in order, each refused with an HTTP error response and
/// [`WsError::Refused`]: a well-formed head within [`MAX_REQUEST_HEAD`] (400,
/// 431); method `GET` (405); a path in [`WsServerConfig::paths`] (404); the
/// [`Origin` policy](crate::origin_allowed) (403); the upgrade headers (400, or
/// 426 for a `Sec-WebSocket-Version` other than 13). The sub-protocol answered is
/// the best of ours the client offered ([`SubProtocol::choose`]); a client that
/// offers none of ours is still accepted, without a `Sec-WebSocket-Protocol`
/// header (a browser that asked for sub-protocols then fails the connection on
/// its side). The whole handshake must finish within
/// [`WsServerConfig::handshake_timeout`].
pub async fn server_accept<S>(
    stream: S,
    config: &WsServerConfig,
) -> Result<(WebSocketStream<S>, Negotiated), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    server_accept_with_prefix(stream, Vec::new(), config).await
}

/// Like [`server_accept`] when the caller already consumed the first bytes of
/// the request from `stream`: `prefix` holds them (all of the head or part of it;
/// bytes after the head are kept as the start of the WebSocket stream).
pub async fn server_accept_with_prefix<S>(
    mut stream: S,
    prefix: Vec<u8>,
    config: &WsServerConfig,
) -> Result<(WebSocketStream<S>, Negotiated), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = async {
        let mut buf = prefix;
        let head = loop {
            match parse_request_head(&buf) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(e) => {
                    if let WsError::Refused { status, reason } = &e {
                        let response = error_response(*status, reason);
                        stream.write_all(response.as_bytes()).await?;
                        stream.flush().await?;
                    }
                    return Err(e);
                }
            }
            let mut chunk = [0u8; 1024];
            let want = (MAX_REQUEST_HEAD + 1 - buf.len().min(MAX_REQUEST_HEAD)).min(chunk.len());
            let n = stream.read(&mut chunk[..want]).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let answer = check_request(&buf[..head.len], config);
        let (response, result) = match answer {
            Ok((response, negotiated)) => (response, Ok(negotiated)),
            Err((status, reason)) => (error_response(status, reason), Err(refused(status, reason))),
        };
        stream.write_all(response.as_bytes()).await?;
        stream.flush().await?;
        let negotiated = result?;
        buf.drain(..head.len);
        Ok((buf, negotiated))
    };
    let (tail, negotiated) = match tokio::time::timeout(config.handshake_timeout, handshake).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            if let WsError::Refused { status, reason } = &e {
                tracing::debug!(status, reason, "WebSocket handshake refused");
            }
            return Err(e);
        }
        Err(_) => return Err(WsError::HandshakeTimeout),
    };
    let ws = WebSocketStream::from_partially_read(
        stream,
        tail,
        Role::Server,
        Some(config.websocket_config()),
    )
    .await;
    tracing::debug!(
        path = %negotiated.path,
        subprotocol = ?negotiated.subprotocol,
        origin = ?negotiated.origin,
        "WebSocket accepted"
    );
    Ok((ws, negotiated))
}

type Refusal = (u16, &'static str);

/// Checks a complete request head; on success the 101 response and what was settled.
fn check_request(head: &[u8], config: &WsServerConfig) -> Result<(String, Negotiated), Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err((400, "malformed HTTP request")),
    }
    if req.method != Some("GET") {
        return Err((405, "method not allowed"));
    }
    let target = req.path.unwrap_or("");
    if !config.path_allowed(target) {
        return Err((404, "not found"));
    }
    let hs = req.headers;
    let origin = header(hs, "origin");
    let host = header(hs, "host");
    if !origin_allowed(config, origin, host) {
        return Err((403, "origin not allowed"));
    }
    let has_token = |name: &str, token: &str| {
        hs.iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if req.version != Some(1)
        || !has_token("connection", "upgrade")
        || !has_token("upgrade", "websocket")
    {
        return Err((400, "not a WebSocket upgrade request"));
    }
    if header(hs, "sec-websocket-version") != Some("13") {
        return Err((426, "unsupported WebSocket version"));
    }
    let Some(key) = header(hs, "sec-websocket-key").filter(|k| !k.is_empty()) else {
        return Err((400, "missing Sec-WebSocket-Key"));
    };
    let subprotocol = SubProtocol::choose(
        hs.iter()
            .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-protocol"))
            .filter_map(|h| std::str::from_utf8(h.value).ok()),
    );
    let mut response = String::with_capacity(160);
    response.push_str(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n",
    );
    let _ = write!(
        response,
        "Sec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(p) = subprotocol {
        let _ = write!(response, "Sec-WebSocket-Protocol: {p}\r\n");
    }
    response.push_str("\r\n");
    let path = target.split(['?', '#']).next().unwrap_or("").to_string();
    Ok((
        response,
        Negotiated {
            subprotocol,
            path,
            origin: origin.map(str::to_string),
            host: host.map(str::to_string),
        },
    ))
}

fn error_response(status: u16, reason: &str) -> String {
    let text = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
        reason.len() + 1
    );
    if status == 426 {
        // RFC 9110 15.5.22: a 426 names the protocol to upgrade to.
        response.push_str("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    }
    if status == 405 {
        response.push_str("Allow: GET\r\n");
    }
    response.push_str("\r\n");
    response.push_str(reason);
    response.push('\n');
    response
}
