//! One admin request: its head, headers and body, read from the connection,
//! and the percent-decoding of its path segments and query.
//!
//! Owns reading a request (the head through `http::read_head`, then at most
//! [`MAX_BODY`] bytes of body by `Content-Length`; chunked bodies are refused)
//! and decoding what its target carries. What the request asks for is
//! `routes.rs`'s.

use super::reply::Reply;
use crate::http;
use bytes::BytesMut;
use stompkit_ws::WsError;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest request body read (no endpoint takes one; a POST's is read
/// so that the answer is not lost to a reset).
pub(super) const MAX_BODY: usize = 64 * 1024;

/// A request, read whole.
#[derive(Debug)]
pub(super) struct Request {
    /// The method (`GET`, `DELETE`, ...).
    pub(super) method: String,
    /// The target's path, still percent-encoded.
    pub(super) path: String,
    /// The target's query (after `?`), still percent-encoded.
    pub(super) query: Option<String>,
    /// The header fields, in order (names as sent), as the head's parser
    /// read them.
    headers: Vec<(String, String)>,
    /// The body.
    pub(super) body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (any case), trimmed.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query parameter `name`, decoded; `Err` for bad percent-encoding.
    pub(super) fn param(&self, name: &str) -> Result<Option<String>, Reply> {
        let Some(query) = &self.query else {
            return Ok(None);
        };
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if decode(key)? == name {
                return decode(value).map(Some);
            }
        }
        Ok(None)
    }
}

/// Reads one request: `Ok(None)` when the peer closes first, `Err` with the
/// answer to give when it cannot be one (a malformed or too large head, a body
/// too large or chunked).
pub(super) async fn read<S>(stream: &mut S) -> Result<Option<Request>, Reply>
where
    S: AsyncRead + Unpin,
{
    let mut buf = BytesMut::new();
    let head = match http::read_head(stream, &mut buf).await {
        Ok(Some(head)) => head,
        Ok(None) => return Ok(None),
        Err(WsError::Refused { status, reason }) => return Err(Reply::error(status, reason)),
        Err(_) => return Err(Reply::error(400, "malformed HTTP request")),
    };
    for once in ["host", "content-length"] {
        let mut named = head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(once));
        if named.nth(1).is_some() {
            return Err(Reply::error(
                400,
                "a header that may appear once appears twice",
            ));
        }
    }
    let (path, query) = match head.target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (head.target.clone(), None),
    };
    let mut request = Request {
        method: head.method,
        path,
        query,
        headers: head.headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(Reply::error(411, "send the body with a Content-Length"));
    }
    let length = match request.header("content-length") {
        None => 0,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| Reply::error(400, "bad Content-Length"))?,
    };
    if length > MAX_BODY {
        return Err(Reply::error(413, "request body too large"));
    }
    let mut body = buf.split_off(head.len);
    while body.len() < length {
        body.reserve(length - body.len());
        match stream.read_buf(&mut body).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
    body.truncate(length);
    request.body = body.to_vec();
    Ok(Some(request))
}

/// Percent-decodes a path segment or query part (`+` stays `+`); `Err` (a
/// 400) for a `%` not followed by two hex digits or bytes that are not UTF-8.
pub(super) fn decode(text: &str) -> Result<String, Reply> {
    let bad = || Reply::error(400, "bad percent-encoding in the request target");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(decode("orders").unwrap(), "orders");
        assert_eq!(decode("a%2Fb%20c+d").unwrap(), "a/b c+d");
        assert_eq!(decode("%C3%A9").unwrap(), "é");
        for bad in ["%", "%2", "%zz", "%+1", "%C3", "a%2"] {
            assert_eq!(decode(bad).unwrap_err().status, 400, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_request_with_headers_query_and_body() {
        let raw = b"POST /api/x?count=5&name=a%2Fb HTTP/1.1\r\nHost: localhost:1\r\n\
Content-Type: application/json\r\nContent-Length: 4\r\n\r\n{}\r\n";
        let request = read(&mut &raw[..]).await.unwrap().unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/api/x");
        assert_eq!(request.header("HOST"), Some("localhost:1"));
        assert_eq!(request.param("count").unwrap().as_deref(), Some("5"));
        assert_eq!(request.param("name").unwrap().as_deref(), Some("a/b"));
        assert_eq!(request.param("other").unwrap(), None);
        assert_eq!(request.body, b"{}\r\n");
    }

    #[tokio::test]
    async fn header_lines_may_end_in_a_bare_line_feed() {
        let raw = b"GET / HTTP/1.1\nHost: localhost\nX: y\r\n\n";
        let request = read(&mut &raw[..]).await.unwrap().unwrap();
        assert_eq!(request.header("host"), Some("localhost"));
        assert_eq!(request.header("x"), Some("y"));
    }

    #[tokio::test]
    async fn the_headers_are_the_ones_the_head_parser_read() {
        // A blank line before the request line is skipped, not read as a header.
        let raw = b"\r\nGET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let request = read(&mut &raw[..]).await.unwrap().unwrap();
        assert_eq!(request.path, "/");
        assert_eq!(
            request.headers,
            [("Host".to_owned(), "localhost".to_owned())]
        );
    }

    #[tokio::test]
    async fn chunked_large_and_malformed_requests_are_refused() {
        let cases: [(&[u8], u16); 6] = [
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                411,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: evil.example\r\nHost: localhost\r\n\r\n",
                400,
            ),
            (
                b"GET / HTTP/1.1\nX: a\nHost: evil.example\r\nHost: localhost\r\n\r\n",
                400,
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", 413),
            (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        ];
        for (raw, status) in cases {
            let refused = read(&mut &raw[..]).await.unwrap_err();
            assert_eq!(refused.status, status, "{}", String::from_utf8_lossy(raw));
        }
    }
}
