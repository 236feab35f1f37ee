//! The admin listener's answers: JSON, errors as `{"error": "…"}`, pages, and
//! the headers every answer carries.
//!
//! Owns [`Reply`] and its sending: the security headers of every answer (no
//! caching of API answers, no sniffing, no framing, no referrer; pages get the
//! chat page's Content-Security-Policy), `Allow` on a 405,
//! `WWW-Authenticate` on a 401, and never any `Access-Control-*` header: no
//! other site's page may read an answer or send a state change.

use crate::http::{PAGE_HEADERS, Response};
use serde::Serialize;
use std::io;
use tokio::io::AsyncWrite;

/// The headers of every answer that is not a page.
const API_HEADERS: &str = "Cache-Control: no-store\r\n\
Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n\
X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n";

/// The JSON content type.
const JSON: &str = "application/json";

/// One answer, before it is sent.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The `Content-Type`.
    content_type: &'static str,
    /// The body.
    pub(crate) body: Vec<u8>,
    /// Headers of its own (each line ending with CRLF), after the common ones.
    extra: String,
    /// A page (the pages' headers instead of the API's).
    page: bool,
}

impl Reply {
    /// `status` with `value` as JSON.
    pub(crate) fn json(status: u16, value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::new(status, JSON, body),
            Err(e) => {
                tracing::warn!(error = %e, "admin answer not serialized");
                Reply::error(500, "answer not serialized")
            }
        }
    }

    /// `status` with `{"error": message}`.
    pub(crate) fn error(status: u16, message: &str) -> Reply {
        let body = serde_json::json!({ "error": message }).to_string();
        Reply::new(status, JSON, body.into_bytes())
    }

    /// `401` with `{"error": message}` and the Basic challenge.
    pub(crate) fn unauthorized(message: &str) -> Reply {
        let mut reply = Reply::error(401, message);
        reply.extra = "WWW-Authenticate: Basic realm=\"stompkit\"\r\n".into();
        reply
    }

    /// `405` naming the methods the path takes.
    pub(crate) fn method_not_allowed(allow: &str) -> Reply {
        let mut reply = Reply::error(405, "method not allowed");
        reply.extra = format!("Allow: {allow}\r\n");
        reply
    }

    /// `204 No Content`.
    pub(crate) fn no_content() -> Reply {
        Reply::new(204, JSON, Vec::new())
    }

    /// Plain text.
    pub(crate) fn text(status: u16, content_type: &'static str, body: String) -> Reply {
        Reply::new(status, content_type, body.into_bytes())
    }

    /// One of the dashboard's files.
    pub(crate) fn page(content_type: &'static str, body: &'static str) -> Reply {
        let mut reply = Reply::new(200, content_type, body.as_bytes().to_vec());
        reply.page = true;
        reply
    }

    fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            body,
            extra: String::new(),
            page: false,
        }
    }

    /// Writes it (headers only when `head_only`) and closes the sending side.
    pub(crate) async fn send<W>(&self, stream: &mut W, head_only: bool) -> io::Result<()>
    where
        W: AsyncWrite + Unpin,
    {
        let common = if self.page { PAGE_HEADERS } else { API_HEADERS };
        let extra = format!("{common}{}", self.extra);
        let response = Response {
            status: self.status,
            content_type: self.content_type,
            extra: &extra,
            body: &self.body,
            head_only,
        };
        response.send(stream).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sent(reply: Reply) -> String {
        let mut out = Vec::new();
        reply.send(&mut out, false).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn errors_are_json_with_their_headers() {
        let text = sent(Reply::unauthorized("login needed")).await;
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
        assert!(text.contains("WWW-Authenticate: Basic realm=\"stompkit\""));
        assert!(
            text.ends_with("\r\n\r\n{\"error\":\"login needed\"}"),
            "{text}"
        );
        let text = sent(Reply::method_not_allowed("GET, HEAD")).await;
        assert!(text.contains("\r\nAllow: GET, HEAD\r\n"), "{text}");
        assert!(!text.to_ascii_lowercase().contains("access-control"));
    }

    #[tokio::test]
    async fn no_content_has_no_body() {
        let text = sent(Reply::no_content()).await;
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"), "{text}");
        assert!(!text.contains("Content-Length"), "{text}");
        assert!(text.ends_with("\r\n\r\n"));
    }
}
