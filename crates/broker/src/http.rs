//! The broker's own HTTP: reading a request head, writing a response, the demo
//! page, and short error answers.
//!
//! Owns reading one request head ([`read_head`], parsed by stompkit-ws's
//! `parse_request_head`), writing one response ([`Response`]: status line,
//! `Content-Type`, `Content-Length`, extra headers, `Connection: close`, body;
//! every response closes the connection), the static pages embedded in the
//! binary (`assets/`: `GET /` the chat page, `/chat.js`, `/chat.css`) and the
//! plain-text error responses (404, 405, and 400/431 for a malformed request
//! head). The metrics endpoint (`metrics_endpoint.rs`) and the admin listener
//! (`admin/`: 204, 401, 411, 413, 415 too) answer through it.
//! WebSocket upgrades never get here (`serve.rs` hands them to
//! `stompkit_ws::server_accept_with_prefix`).

use bytes::BytesMut;
use std::io;
use stompkit_ws::{RequestHead, WsError, parse_request_head};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes reserved before each read of a request head.
const HEAD_READ: usize = 1024;

/// The embedded pages: path, content type, body.
const PAGES: [(&str, &str, &str); 3] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../assets/index.html"),
    ),
    (
        "/chat.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/chat.js"),
    ),
    (
        "/chat.css",
        "text/css; charset=utf-8",
        include_str!("../assets/chat.css"),
    ),
];

/// The extra headers of every page: no caching, and security: scripts,
/// styles and connections only from the broker itself (the chat page opens its
/// WebSocket to the same host), no framing by other sites, no inline code.
pub(crate) const PAGE_HEADERS: &str = "Cache-Control: no-cache\r\n\
Content-Security-Policy: default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'\r\nX-Content-Type-Options: nosniff\r\n\
Referrer-Policy: no-referrer\r\n";

/// Answers a plain HTTP request (not an upgrade): a page, 404, 405, or 426 when
/// `ws_path` (the target is one of the WebSocket paths).
pub(crate) async fn respond<W>(stream: &mut W, head: &RequestHead, ws_path: bool) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let path = head.target.split(['?', '#']).next().unwrap_or("");
    let page = PAGES.iter().find(|(p, _, _)| *p == path);
    let body_wanted = head.method == "GET";
    match page {
        _ if !body_wanted && head.method != "HEAD" => {
            error(stream, 405, "method not allowed").await
        }
        None if ws_path => {
            error(
                stream,
                426,
                "this path speaks STOMP over WebSocket: send an upgrade",
            )
            .await
        }
        Some((_, content_type, body)) => {
            let page = Response {
                status: 200,
                content_type,
                extra: PAGE_HEADERS,
                body: body.as_bytes(),
                head_only: !body_wanted,
            };
            page.send(stream).await
        }
        None => error(stream, 404, "not found").await,
    }
}

/// Writes a plain-text error response and closes.
pub(crate) async fn error<W>(stream: &mut W, status: u16, reason: &str) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let body = format!("{reason}\n");
    let extra = match status {
        405 => "Allow: GET, HEAD\r\n",
        426 => "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
        503 => "Retry-After: 1\r\n",
        _ => "",
    };
    let response = Response {
        status,
        content_type: "text/plain; charset=utf-8",
        extra,
        body: body.as_bytes(),
        head_only: false,
    };
    response.send(stream).await
}

/// The reason phrase of a status code.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// One HTTP/1.1 response, written by [`Response::send`]: the status line,
/// `Content-Type`, `Content-Length`, the `extra` headers, `Connection: close`,
/// then the body (a `204 No Content` has neither body nor content headers).
pub(crate) struct Response<'a> {
    /// The status code (its reason phrase is ours).
    pub(crate) status: u16,
    /// The `Content-Type` value.
    pub(crate) content_type: &'a str,
    /// More header lines, each ending with CRLF (may be empty).
    pub(crate) extra: &'a str,
    /// The body (its length is `Content-Length`).
    pub(crate) body: &'a [u8],
    /// Answering `HEAD`: the headers only.
    pub(crate) head_only: bool,
}

impl Response<'_> {
    /// Writes the response and closes the stream's sending side.
    pub(crate) async fn send<W: AsyncWrite + Unpin>(&self, stream: &mut W) -> io::Result<()> {
        let content = match self.status {
            204 => String::new(),
            _ => format!(
                "Content-Type: {}\r\nContent-Length: {}\r\n",
                self.content_type,
                self.body.len()
            ),
        };
        let head = format!(
            "HTTP/1.1 {} {}\r\n{content}{}Connection: close\r\n\r\n",
            self.status,
            reason_phrase(self.status),
            self.extra,
        );
        stream.write_all(head.as_bytes()).await?;
        if !self.head_only && self.status != 204 {
            stream.write_all(self.body).await?;
        }
        stream.flush().await?;
        stream.shutdown().await
    }
}

/// Reads until `buf` holds a whole request head (bytes already in `buf` count).
/// `Ok(None)` when the peer closes or fails first; a head that cannot be one
/// (malformed, too large) is the [`WsError::Refused`] to answer with.
pub(crate) async fn read_head<S>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> Result<Option<RequestHead>, WsError>
where
    S: AsyncRead + Unpin,
{
    loop {
        if let Some(head) = parse_request_head(buf)? {
            return Ok(Some(head));
        }
        buf.reserve(HEAD_READ);
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}
