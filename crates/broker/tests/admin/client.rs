//! A small HTTP/1.1 client for the admin listener: one request per
//! connection (the listener closes after each answer), over plain TCP or
//! TLS; every answer is checked for `Access-Control-*` headers (there must be
//! none).

use crate::harness::WAIT;
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// One answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The status line and header lines.
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics, showing it, when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.head, self.text()))
    }

    /// Asserts the status and that the body is exactly `{"error": <text>}`
    /// with a `message` containing `part`.
    pub fn assert_error(&self, status: u16, part: &str) {
        assert_eq!(self.status, status, "{}\n{}", self.head, self.text());
        let json = self.json();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), 1, "only the error: {json}");
        let message = object["error"].as_str().unwrap();
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }

    /// Asserts a 401 refusal: the Basic challenge and only the error JSON.
    pub fn assert_refused(&self, part: &str) {
        self.assert_error(401, part);
        assert_eq!(
            self.header("www-authenticate"),
            Some("Basic realm=\"stompkit\""),
            "{}",
            self.head
        );
    }
}

/// Where the admin listener is, and how to reach it.
pub struct Admin {
    pub addr: SocketAddr,
    /// The `Host` header sent unless a request gives its own.
    pub host: String,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Admin {
    /// The listener at `url` (`http://IP:PORT/`; an unspecified IP is reached
    /// on 127.0.0.1).
    pub fn new(url: &str) -> Admin {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .unwrap_or_else(|| panic!("not an admin URL: {url}"));
        let mut addr: SocketAddr = rest.trim_end_matches('/').parse().unwrap();
        if addr.ip().is_unspecified() {
            addr.set_ip([127, 0, 0, 1].into());
        }
        Admin {
            addr,
            host: format!("127.0.0.1:{}", addr.port()),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Speaks TLS with `config` (server name `localhost`).
    #[cfg(feature = "tls")]
    pub fn with_tls(mut self, config: std::sync::Arc<tokio_rustls::rustls::ClientConfig>) -> Admin {
        self.tls = Some(tokio_rustls::TlsConnector::from(config));
        self
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], b"").await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Answer {
        self.send("DELETE", path, &[], b"").await
    }

    /// `GET path`, which must answer 200 with JSON.
    pub async fn json(&self, path: &str) -> Value {
        let answer = self.get(path).await;
        assert_eq!(
            answer.status,
            200,
            "{path}: {}\n{}",
            answer.head,
            answer.text()
        );
        assert_eq!(answer.header("content-type"), Some("application/json"));
        answer.json()
    }

    /// A request with `headers` (a `Host` unless given) and `body`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut raw = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            raw.push_str(&format!("Host: {}\r\n", self.host));
        }
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("Connection: close\r\n\r\n");
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes).await
    }

    /// Sends `bytes` as they are and reads the answer.
    pub async fn raw(&self, bytes: &[u8]) -> Answer {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        #[cfg(feature = "tls")]
        if let Some(connector) = &self.tls {
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = connector.connect(name, tcp).await.unwrap();
            return exchange(tls, bytes).await;
        }
        exchange(tcp, bytes).await
    }
}

/// Writes the request, reads to the end, parses the answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, bytes: &[u8]) -> Answer {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "no answer within {WAIT:?}");
    parse(&got)
}

/// Parses a whole answer (the connection closed after it).
pub fn parse(got: &[u8]) -> Answer {
    let at = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(got)));
    let head = String::from_utf8(got[..at].to_vec()).unwrap();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head}"));
    assert!(
        !head.to_ascii_lowercase().contains("access-control-"),
        "a CORS header: {head}"
    );
    let answer = Answer {
        status,
        body: got[at + 4..].to_vec(),
        head,
    };
    // (A HEAD's answer has the length of the body it does not send.)
    if let Some(length) = answer
        .header("content-length")
        .filter(|_| !answer.body.is_empty())
    {
        assert_eq!(
            length.parse::<usize>().unwrap(),
            answer.body.len(),
            "{}",
            answer.head
        );
    }
    answer
}

/// Percent-encodes everything but unreserved characters (a path segment).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `Authorization: Basic base64(login:passcode)`.
pub fn basic(login: &str, passcode: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{login}:{passcode}"));
    format!("Basic {encoded}")
}
