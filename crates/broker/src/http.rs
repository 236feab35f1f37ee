//! The broker's own HTTP on a listen port: the demo page, and short error answers.
//!
//! Owns the static pages embedded in the binary (`assets/`: `GET /` the chat
//! page, `/chat.js`, `/chat.css`) and the plain-text error responses (404, 405,
//! and 400/431 for a malformed request head). Every response closes the
//! connection. WebSocket upgrades never get here (`listener.rs` hands them to
//! `stompkit_ws::server_accept_with_prefix`).

use std::io;
use stompkit_ws::RequestHead;
use tokio::io::{AsyncWrite, AsyncWriteExt};

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

/// Security headers of every page: scripts, styles and connections only from the
/// broker itself (the chat page opens its WebSocket to the same host), no
/// framing by other sites, no inline code.
const PAGE_POLICY: &str = "Content-Security-Policy: default-src 'none'; script-src 'self'; \
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
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n{PAGE_POLICY}Connection: close\r\n\r\n",
                body.len()
            );
            let body = if body_wanted { body.as_bytes() } else { b"" };
            send(stream, head.as_bytes(), body).await
        }
        None => error(stream, 404, "not found").await,
    }
}

/// Writes a plain-text error response and closes.
pub(crate) async fn error<W>(stream: &mut W, status: u16, reason: &str) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let text = match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let body = format!("{reason}\n");
    let extra = match status {
        405 => "Allow: GET, HEAD\r\n",
        426 => "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
        503 => "Retry-After: 1\r\n",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    send(stream, head.as_bytes(), body.as_bytes()).await
}

async fn send<W: AsyncWrite + Unpin>(stream: &mut W, head: &[u8], body: &[u8]) -> io::Result<()> {
    stream.write_all(head).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    stream.shutdown().await
}
