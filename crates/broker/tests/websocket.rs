//! STOMP over WebSocket against the broker in-process on 127.0.0.1:0, with raw
//! tokio-tungstenite clients (to see every message, its kind and the close
//! codes) and the stompkit-ws client; TCP clients on the same port.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use stompkit_broker::OutgoingMessages;
use stompkit_frame::{Command, Frame, Version};
use stompkit_wire::{Event, Parser};
use stompkit_ws::tokio_tungstenite::tungstenite::client::IntoClientRequest;
use stompkit_ws::tokio_tungstenite::tungstenite::http::HeaderValue;
use stompkit_ws::tokio_tungstenite::tungstenite::protocol::CloseFrame;
use stompkit_ws::tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use stompkit_ws::tokio_tungstenite::tungstenite::protocol::frame::coding::{
    CloseCode, Data, OpCode,
};
use stompkit_ws::tokio_tungstenite::tungstenite::{self, Message};
use stompkit_ws::tokio_tungstenite::{WebSocketStream, client_async};
use stompkit_ws::{ClientOptions, SubProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;
use support::{Raw, WAIT, start};

/// A raw WebSocket client: STOMP bytes out as text or binary messages, frames
/// in (parsed across messages), with the kind of message each frame ended in.
struct Ws {
    ws: WebSocketStream<TcpStream>,
    protocol: Option<String>,
    parser: Parser,
    buf: BytesMut,
    /// Whether the message that completed the last frame was text.
    last_text: bool,
}

/// Opens a WebSocket on `path`, offering `protocols`, with `origin`.
async fn try_ws(
    addr: SocketAddr,
    path: &str,
    protocols: &[&str],
    origin: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(&protocols.join(", ")).unwrap(),
        );
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_str(origin).unwrap());
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (ws, response) = client_async(request, tcp).await?;
    let protocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    Ok(Ws {
        ws,
        protocol,
        parser: Parser::new(),
        buf: BytesMut::new(),
        last_text: false,
    })
}

impl Ws {
    async fn open(addr: SocketAddr) -> Ws {
        try_ws(addr, "/ws", &["v12.stomp"], None).await.unwrap()
    }

    /// Opens and CONNECTs (STOMP 1.2).
    async fn connect(addr: SocketAddr) -> Ws {
        let mut ws = Ws::open(addr).await;
        let connected = ws.stomp_connect("1.2", "").await;
        assert_eq!(connected.command, Command::Connected, "{connected:?}");
        ws
    }

    async fn text(&mut self, s: &str) {
        self.ws.send(Message::text(s)).await.unwrap();
    }

    async fn binary(&mut self, b: &[u8]) {
        self.ws.send(Message::binary(b.to_vec())).await.unwrap();
    }

    /// Sends `b` as a text message without checking that it is UTF-8.
    async fn invalid_text(&mut self, b: &[u8]) {
        let frame = WsFrame::message(b.to_vec(), OpCode::Data(Data::Text), true);
        self.ws.send(Message::Frame(frame)).await.unwrap();
    }

    /// Sends CONNECT (as text) and returns the answer (CONNECTED or ERROR).
    async fn stomp_connect(&mut self, accept: &str, extra: &str) -> Frame {
        self.text(&format!(
            "CONNECT\naccept-version:{accept}\nhost:/\n{extra}\n\0"
        ))
        .await;
        let frame = self.frame().await;
        if let Some(v) = frame
            .version()
            .filter(|_| frame.command == Command::Connected)
        {
            self.parser
                .set_version(Version::from_bytes(v.as_bytes()).unwrap());
        }
        frame
    }

    /// The next data message (control messages skipped); None at close or end.
    async fn message(&mut self) -> Option<Message> {
        loop {
            match self.ws.next().await? {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => return Some(m),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next event (frame or heart-beat); None at close.
    async fn event(&mut self) -> Option<Event> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(event) = self.parser.parse(&mut self.buf).unwrap() {
                    return Some(event);
                }
                let message = self.message().await?;
                self.last_text = message.is_text();
                self.buf.extend_from_slice(&message.into_data());
            }
        })
        .await
        .expect("timed out waiting for a frame")
    }

    /// The next frame (heart-beats skipped); panics at close.
    async fn frame(&mut self) -> Frame {
        loop {
            match self.event().await.expect("closed before a frame arrived") {
                Event::Frame(f) => return f,
                Event::HeartBeat => {}
            }
        }
    }

    /// Reads until the server's Close and returns it; then the stream must end.
    async fn expect_close(&mut self) -> Option<CloseFrame> {
        let close = tokio::time::timeout(WAIT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => {}
                    other => panic!("expected a Close message, got {other:?}"),
                }
            }
        })
        .await
        .expect("timed out waiting for Close");
        let end = tokio::time::timeout(WAIT, self.ws.next()).await.unwrap();
        assert!(
            matches!(end, None | Some(Err(tungstenite::Error::ConnectionClosed))),
            "{end:?}"
        );
        close
    }

    async fn subscribe(&mut self, id: &str, destination: &str) {
        self.text(&format!(
            "SUBSCRIBE\nid:{id}\ndestination:{destination}\nreceipt:s-{id}\n\n\0"
        ))
        .await;
        let receipt = self.frame().await;
        assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");
    }
}

fn close_code(frame: &Option<CloseFrame>) -> u16 {
    frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005)
}

/// One HTTP request on a fresh connection; the whole response as text.
async fn http(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(response).unwrap()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

// ------------------------------------------------------- sub-protocols

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_subprotocol_is_answered_and_caps_the_version() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    // (offered, answered, highest version CONNECT gets with accept-version 1.0,1.1,1.2)
    let cases: [(&[&str], Option<&str>, &str); 6] = [
        (&["v12.stomp"], Some("v12.stomp"), "1.2"),
        (&["v11.stomp"], Some("v11.stomp"), "1.1"),
        (&["v10.stomp"], Some("v10.stomp"), "1.0"),
        (&["stomp"], Some("stomp"), "1.2"),
        (&[], None, "1.2"),
        (
            &["v10.stomp", "v11.stomp", "stomp"],
            Some("v11.stomp"),
            "1.1",
        ),
    ];
    for (offered, answered, version) in cases {
        for path in ["/ws", "/stomp"] {
            let mut ws = try_ws(addr, path, offered, None).await.unwrap();
            assert_eq!(ws.protocol.as_deref(), answered, "{offered:?}");
            let connected = ws.stomp_connect("1.0,1.1,1.2", "").await;
            assert_eq!(connected.command, Command::Connected, "{connected:?}");
            assert_eq!(connected.version(), Some(version), "{offered:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_above_the_subprotocol_cap_is_refused_with_error() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut ws = try_ws(addr, "/ws", &["v10.stomp"], None).await.unwrap();
    let error = ws.stomp_connect("1.2", "").await;
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(error.message(), Some("no supported protocol version"));
    assert_eq!(error.get("version"), Some("1.0"), "V4: what we support");
    ws.expect_close().await;
    // v11.stomp with 1.0 or 1.2 offered settles on 1.0.
    let mut ws = try_ws(addr, "/ws", &["v11.stomp"], None).await.unwrap();
    let connected = ws.stomp_connect("1.0,1.2", "").await;
    assert_eq!(connected.version(), Some("1.0"), "{connected:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stompkit_ws_client_works_against_the_broker() {
    let broker = start(|_| {}).await;
    let url = format!("ws://{}/stomp", broker.local_addrs()[0]);
    let mut client = stompkit_ws::connect(&url, ClientOptions::default())
        .await
        .unwrap();
    assert_eq!(client.subprotocol(), Some(SubProtocol::V12));
    client.send(&Frame::connect("/", "1.2")).await.unwrap();
    let Some(Ok(Event::Frame(connected))) = client.next().await else {
        panic!("no CONNECTED")
    };
    assert_eq!(connected.version(), Some("1.2"));
    client.set_version(Version::V1_2);
    client
        .send(
            &Frame::new(Command::Subscribe)
                .header("id", "0")
                .header("destination", "/queue/q")
                .header("receipt", "r"),
        )
        .await
        .unwrap();
    client
        .send(&Frame::send("/queue/q").with_body("hello"))
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let Some(Ok(Event::Frame(f))) = client.next().await else {
            panic!("closed")
        };
        got.push(f);
    }
    assert_eq!(got[0].command, Command::Receipt);
    assert_eq!(got[1].command, Command::Message);
    assert_eq!(got[1].body(), b"hello");
    client.close(CloseCode::Normal, "bye").await.unwrap();
}

// ------------------------------------------------------- framing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_frames_in_one_message_and_a_frame_split_over_messages() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut ws = Ws::open(addr).await;
    // CONNECT and SUBSCRIBE in one message.
    ws.text(concat!(
        "CONNECT\naccept-version:1.2\nhost:/\n\n\0",
        "SUBSCRIBE\nid:0\ndestination:/topic/t\nreceipt:r1\n\n\0"
    ))
    .await;
    assert_eq!(ws.frame().await.command, Command::Connected);
    ws.parser.set_version(Version::V1_2);
    assert_eq!(ws.frame().await.receipt_id(), Some("r1"));
    // Two SENDs in one message, then one SEND split in the middle of a header
    // and of the body, over three messages (with a heart-beat EOL in front).
    ws.text("SEND\ndestination:/topic/t\n\none\0SEND\ndestination:/topic/t\n\ntwo\0")
        .await;
    ws.text("\nSEND\ndesti").await;
    ws.binary(b"nation:/topic/t\n\nth").await;
    ws.text("ree\0").await;
    for body in ["one", "two", "three"] {
        let m = ws.frame().await;
        assert_eq!(m.command, Command::Message, "{m:?}");
        assert_eq!(std::str::from_utf8(m.body()).unwrap(), body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_auto_follows_the_client_and_binary_bodies_go_binary() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut ws = Ws::connect(addr).await;
    assert!(ws.last_text, "CONNECT was text: CONNECTED is text");
    ws.subscribe("0", "/topic/t").await;
    ws.text("SEND\ndestination:/topic/t\n\nhi\0").await;
    assert_eq!(ws.frame().await.body(), b"hi");
    assert!(ws.last_text, "text in, text out");
    // Binary in: binary out, even for UTF-8.
    ws.binary(b"SEND\ndestination:/topic/t\n\nhi\0").await;
    assert_eq!(ws.frame().await.body(), b"hi");
    assert!(!ws.last_text, "binary in, binary out");
    // Back to text; a body with NULs and invalid UTF-8 still arrives as binary.
    ws.text("SEND\ndestination:/topic/t\n\nhi\0").await;
    assert!(ws.frame().await.body() == b"hi" && ws.last_text);
    let mut send = b"SEND\ndestination:/topic/t\ncontent-length:4\n\n".to_vec();
    send.extend_from_slice(b"\0\xff\0\x01\0");
    ws.binary(&send).await;
    ws.text("SEND\ndestination:/topic/t\ncontent-length:3\n\na\0b\0")
        .await;
    let m = ws.frame().await;
    assert_eq!(m.body(), b"\0\xff\0\x01");
    assert!(!ws.last_text, "invalid UTF-8 never goes as text");
    let m = ws.frame().await;
    assert_eq!(m.body(), b"a\0b");
    assert!(ws.last_text, "a NUL is valid UTF-8: text in auto mode");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_text_and_binary_modes() {
    for (mode, want_text) in [
        (OutgoingMessages::Text, true),
        (OutgoingMessages::Binary, false),
    ] {
        let broker = start(|c| c.websocket.outgoing = mode).await;
        let addr = broker.local_addrs()[0];
        let mut ws = Ws::open(addr).await;
        // The client sends binary throughout.
        ws.binary(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
            .await;
        assert_eq!(ws.frame().await.command, Command::Connected);
        assert_eq!(ws.last_text, want_text, "{mode:?}");
        ws.parser.set_version(Version::V1_2);
        ws.binary(b"SUBSCRIBE\nid:0\ndestination:/topic/t\n\n\0SEND\ndestination:/topic/t\n\nx\0")
            .await;
        let m = ws.frame().await;
        assert_eq!((m.command, ws.last_text), (Command::Message, want_text));
        ws.binary(b"SEND\ndestination:/topic/t\ncontent-length:1\n\n\xff\0")
            .await;
        let m = ws.frame().await;
        assert_eq!(m.body(), b"\xff");
        assert!(
            !ws.last_text,
            "{mode:?}: invalid UTF-8 is binary in every mode"
        );
    }
}

// ------------------------------------------------------- control, close, limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_is_answered_with_pong() {
    let broker = start(|_| {}).await;
    let mut ws = Ws::connect(broker.local_addrs()[0]).await;
    ws.ws
        .send(Message::Ping("are you there".into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(WAIT, ws.ws.next()).await.unwrap();
    match pong {
        Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected Pong, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_handshake_from_the_client_and_after_disconnect() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut ws = Ws::connect(addr).await;
    ws.ws
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
    let reply = ws.expect_close().await;
    assert_eq!(close_code(&reply), 1000);
    // DISCONNECT with a receipt: RECEIPT, then the server closes with 1000.
    let mut ws = Ws::connect(addr).await;
    ws.text("DISCONNECT\nreceipt:bye\n\n\0").await;
    assert_eq!(ws.frame().await.receipt_id(), Some("bye"));
    assert_eq!(close_code(&ws.expect_close().await), 1000);
    // The broker forgets both connections.
    tokio::time::timeout(WAIT, async {
        while stompkit_broker::Metrics::get(&broker.metrics().connections) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_or_frame_is_closed_with_1009() {
    let broker = start(|c| {
        c.limits.max_body = 1024;
        c.limits.max_header_bytes = 4096;
    })
    .await;
    let addr = broker.local_addrs()[0];
    // A WebSocket message over the limit (largest frame + slack ≈ 9 KiB).
    let mut ws = Ws::connect(addr).await;
    let big = format!("SEND\ndestination:/queue/q\n\n{}\0", "x".repeat(64 * 1024));
    ws.text(&big).await;
    assert_eq!(close_code(&ws.expect_close().await), 1009);
    // A STOMP frame over max_body inside a message under the WebSocket limit:
    // ERROR, then 1009.
    let mut ws = Ws::connect(addr).await;
    let big = format!("SEND\ndestination:/queue/q\n\n{}\0", "x".repeat(2048));
    ws.text(&big).await;
    let error = ws.frame().await;
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(close_code(&ws.expect_close().await), 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_upgrade_gets_a_close() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    // Invalid STOMP in a valid message: ERROR, then 1002.
    let mut ws = Ws::open(addr).await;
    ws.binary(b"\x01\x02 not stomp\n\n\0").await;
    let error = ws.frame().await;
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(close_code(&ws.expect_close().await), 1002);
    // A text message that is not UTF-8: 1007, invalid payload data (RFC 6455, 7.4.1).
    let mut ws = Ws::open(addr).await;
    ws.invalid_text(&[0xff, 0xfe]).await;
    assert_eq!(close_code(&ws.expect_close().await), 1007);
    // Bytes that are not WebSocket framing at all (unmasked, reserved opcode).
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // 'h' 'e': reserved bits set, unmasked, 101 bytes of payload (sent in full).
    tcp.write_all(&b"hello, this is not a WebSocket frame. ".repeat(8))
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    // A Close frame (FIN + opcode 8) with code 1002, then the end of the stream.
    assert!(rest.len() >= 4 && rest[0] == 0x88, "{rest:?}");
    assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), 1002);
}

// ------------------------------------------------------- Origin

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_is_checked_on_a_non_loopback_listener() {
    let broker = start(|c| {
        c.server.listen = vec!["0.0.0.0:0".into()];
        // A public address with anonymous clients must say so (safe defaults).
        c.auth.allow_anonymous = true;
        c.websocket.allowed_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let port = broker.local_addrs()[0].port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let refused = try_ws(addr, "/ws", &["v12.stomp"], Some("https://evil.example"))
        .await
        .err()
        .expect("a foreign Origin must be refused");
    match refused {
        tungstenite::Error::Http(response) => assert_eq!(response.status(), 403),
        other => panic!("expected HTTP 403, got {other:?}"),
    }
    // Allow-listed, the broker's own host, and no Origin (non-browser) are fine.
    for origin in [
        Some("https://app.example.com"),
        Some(format!("http://127.0.0.1:{port}").as_str()),
        None,
    ] {
        let mut ws = try_ws(addr, "/ws", &["v12.stomp"], origin).await.unwrap();
        let connected = ws.stomp_connect("1.2", "").await;
        assert_eq!(connected.command, Command::Connected, "{origin:?}");
    }
    // A loopback listener accepts any Origin by default.
    let local = start(|_| {}).await;
    try_ws(
        local.local_addrs()[0],
        "/ws",
        &[],
        Some("https://evil.example"),
    )
    .await
    .unwrap();
}

// ------------------------------------------------------- one port, ws-only, HTTP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_only_listener_refuses_tcp_stomp() {
    let broker = start(|c| {
        c.server.listen = vec!["ws://127.0.0.1:0".into(), "127.0.0.1:0".into()];
    })
    .await;
    let listeners = broker.listeners();
    assert!(!listeners[0].stomp && listeners[0].websocket);
    assert!(listeners[1].stomp && listeners[1].websocket);
    let ws_only = listeners[0].addr;
    let mut tcp = Raw::open(ws_only).await;
    tcp.write(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        .await;
    let error = tcp.frame().await;
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(
        error.message(),
        Some("TCP STOMP is disabled on this listener: use WebSocket")
    );
    tcp.expect_closed().await;
    Ws::connect(ws_only).await;
    Raw::connect(listeners[1].addr, Some("1.2")).await;
    // [websocket] ws_only (--ws-only) turns TCP STOMP off everywhere.
    let broker = start(|c| c.websocket.ws_only = true).await;
    let mut tcp = Raw::open(broker.local_addrs()[0]).await;
    tcp.write(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        .await;
    assert_eq!(tcp.frame().await.command, Command::Error);
    Ws::connect(broker.local_addrs()[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_is_served_a_websocket_path_wants_an_upgrade_and_anything_else_is_404() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    for (path, content_type, body) in [
        ("/", "text/html", include_str!("../assets/index.html")),
        (
            "/chat.js",
            "text/javascript",
            include_str!("../assets/chat.js"),
        ),
        ("/chat.css", "text/css", include_str!("../assets/chat.css")),
    ] {
        let response = http(addr, &get(path)).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        let (head, got) = response.split_once("\r\n\r\n").unwrap();
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("content-type: {content_type}")),
            "{head}"
        );
        assert_eq!(got, body, "{path}");
        // Scripts, styles and connections only from the broker itself.
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self';")
                && head.contains("connect-src 'self'")
                && head.contains("frame-ancestors 'none'"),
            "{head}"
        );
    }
    for request in [get("/nope"), get("/metrics")] {
        let response = http(addr, &request).await;
        assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
    }
    // A WebSocket path without the upgrade: 426 naming the protocol to use.
    for path in ["/ws", "/stomp?x=1"] {
        let response = http(addr, &get(path)).await;
        assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
        assert!(
            response.contains("\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"),
            "{response}"
        );
    }
    let response = http(addr, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
    // An upgrade on a path we do not serve.
    let refused = try_ws(addr, "/elsewhere", &[], None).await.err().unwrap();
    assert!(
        matches!(&refused, tungstenite::Error::Http(r) if r.status() == 404),
        "{refused:?}"
    );
    // With WebSocket off, the port is TCP STOMP only: HTTP gets a STOMP ERROR.
    let tcp_only = start(|c| c.websocket.enabled = false).await;
    let mut tcp = Raw::open(tcp_only.local_addrs()[0]).await;
    tcp.write(get("/").as_bytes()).await;
    assert_eq!(tcp.frame().await.command, Command::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_over_max_connections_gets_503_and_a_stomp_client_an_error() {
    let broker = start(|c| c.limits.max_connections = 1).await;
    let addr = broker.local_addrs()[0];
    let _held = Ws::connect(addr).await;
    let refused = try_ws(addr, "/ws", &["v12.stomp"], None)
        .await
        .err()
        .unwrap();
    match &refused {
        tungstenite::Error::Http(r) => {
            assert_eq!(r.status(), 503);
            assert_eq!(r.headers().get("Retry-After").unwrap(), "1");
        }
        other => panic!("expected an HTTP 503, got {other:?}"),
    }
    // A TCP STOMP client (which speaks first) still gets a STOMP ERROR.
    let mut tcp = Raw::open(addr).await;
    tcp.write(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        .await;
    let error = tcp.frame().await;
    assert_eq!(error.command, Command::Error);
    assert_eq!(error.message(), Some("too many connections"));
}

// ------------------------------------------------------- heart-beats, TCP ↔ WS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heart_beats_over_websocket() {
    let broker = start(|c| c.heartbeat.min_ms = 100).await;
    let addr = broker.local_addrs()[0];
    // The server beats every 150 ms: bare EOL messages.
    let mut ws = Ws::open(addr).await;
    let connected = ws.stomp_connect("1.2", "heart-beat:0,150\n").await;
    assert_eq!(connected.get("heart-beat"), Some("150,0"));
    let mut beats = 0;
    let started = tokio::time::Instant::now();
    while beats < 3 {
        let m = tokio::time::timeout(WAIT, ws.message())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            m.into_data(),
            "\n",
            "a heart-beat is a message holding one EOL"
        );
        beats += 1;
    }
    assert!(started.elapsed() >= Duration::from_millis(250));
    // The client promises beats every 300 ms (dead after 450 ms of silence):
    // EOLs every 100 ms for 800 ms keep it alive...
    let mut ws = Ws::open(addr).await;
    ws.stomp_connect("1.2", "heart-beat:300,0\n").await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ws.text("\n").await;
    }
    ws.text("SUBSCRIBE\nid:0\ndestination:/topic/t\nreceipt:alive\n\n\0")
        .await;
    assert_eq!(ws.frame().await.receipt_id(), Some("alive"));
    // ...and silence is a dead peer.
    let error = ws.frame().await;
    assert_eq!(error.command, Command::Error);
    assert_eq!(
        error.message(),
        Some("heart-beat timeout: no data from client")
    );
    assert_eq!(close_code(&ws.expect_close().await), 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_websocket_clients_share_destinations() {
    let broker = start(|_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut ws = Ws::connect(addr).await;
    ws.subscribe("0", "/topic/mixed").await;
    let mut tcp = Raw::connect(addr, Some("1.2")).await;
    tcp.write(b"SUBSCRIBE\nid:0\ndestination:/queue/mixed\nreceipt:r\n\n\0")
        .await;
    assert_eq!(tcp.frame().await.receipt_id(), Some("r"));
    // TCP → WebSocket.
    tcp.write("SEND\ndestination:/topic/mixed\n\nfrom tcp ✓\0".as_bytes())
        .await;
    let m = ws.frame().await;
    assert_eq!(m.command, Command::Message);
    assert_eq!(std::str::from_utf8(m.body()).unwrap(), "from tcp ✓");
    assert!(ws.last_text);
    // WebSocket → TCP.
    ws.text("SEND\ndestination:/queue/mixed\n\nfrom ws\0").await;
    let m = tcp.frame().await;
    assert_eq!(m.command, Command::Message);
    assert_eq!(m.body(), b"from ws");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_error_and_going_away() {
    let broker = start(|_| {}).await;
    let mut ws = Ws::connect(broker.local_addrs()[0]).await;
    let stopping = tokio::spawn(broker.shutdown());
    let error = ws.frame().await;
    assert_eq!(error.message(), Some("server shutting down"));
    assert_eq!(close_code(&ws.expect_close().await), 1001);
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
}

// ------------------------------------------------------- the binary's listener lines

/// Runs the broker binary with `args`/`env` and returns its first `lines` stdout lines.
fn broker_lines(args: &[&str], env: &[(&str, &str)], lines: usize) -> Vec<String> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stompkit-broker"))
        .args(args)
        .args(["--in-memory", "--log-level", "error"])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let got: Vec<String> = stdout.lines().take(lines).map(Result::unwrap).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    got
}

#[test]
fn the_binary_prints_one_line_per_service_and_listener() {
    let lines = broker_lines(
        &[
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "ws://127.0.0.1:0",
            "--listen",
            "stomp://127.0.0.1:0",
        ],
        &[],
        4,
    );
    let port = |line: &str, prefix: &str, suffix: &str| -> u16 {
        let rest = line
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{line}"));
        let addr = rest
            .strip_suffix(suffix)
            .unwrap_or_else(|| panic!("{line}"));
        addr.parse::<SocketAddr>().unwrap().port()
    };
    let stomp = "stompkit-broker listening on stomp://";
    let ws = "stompkit-broker websocket on ws://";
    let both = port(&lines[0], stomp, "");
    assert_eq!(port(&lines[1], ws, "/ws"), both, "{lines:?}");
    let ws_only = port(&lines[2], ws, "/ws");
    assert_ne!(ws_only, both);
    assert!(port(&lines[3], stomp, "") != ws_only, "{lines:?}");
    // --ws-only, and the path from the environment.
    let lines = broker_lines(
        &[
            "--ws-only",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ],
        &[("STOMPKIT_WEBSOCKET_PATHS", "/chat,/ws")],
        2,
    );
    port(&lines[0], ws, "/chat");
    assert!(
        lines[1].starts_with("stompkit-broker metrics on http://"),
        "{lines:?}"
    );
}
