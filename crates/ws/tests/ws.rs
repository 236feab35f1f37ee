//! Real tokio-tungstenite clients against a scripted server built on stompkit-ws.
#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use stompkit_frame::{Command, Frame, Version};
use stompkit_ws::tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use stompkit_ws::tokio_tungstenite::tungstenite::{self, Message};
use stompkit_ws::{
    ClientOptions, Event, OutgoingMode, ParserConfig, Sniff, StompWebSocket, SubProtocol, WsError,
    sniff,
};
use support::{Report, frame_of, next_message, raw_client, raw_connect, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROTOCOL: &str = "Sec-WebSocket-Protocol";

fn chosen(response: &tungstenite::handshake::client::Response) -> Option<String> {
    response
        .headers()
        .get(PROTOCOL)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn each_subprotocol_is_answered_and_the_best_offered_wins() {
    let server = start(|c| c).await;
    for p in ["v12.stomp", "v11.stomp", "v10.stomp", "stomp"] {
        let (_ws, response) = raw_client(&server.url("/ws"), &[(PROTOCOL, p)])
            .await
            .unwrap();
        assert_eq!(chosen(&response).as_deref(), Some(p));
    }
    let (_ws, response) = raw_client(
        &server.url("/stomp"),
        &[(PROTOCOL, "stomp, v10.stomp, v12.stomp, v11.stomp")],
    )
    .await
    .unwrap();
    assert_eq!(chosen(&response).as_deref(), Some("v12.stomp"));
    let (_ws, response) = raw_client(&server.url("/ws"), &[(PROTOCOL, "mqtt, v11.stomp")])
        .await
        .unwrap();
    assert_eq!(chosen(&response).as_deref(), Some("v11.stomp"));
}

#[tokio::test]
async fn no_subprotocol_accepted_with_every_version() {
    let server = start(|c| c).await;
    let (mut ws, response) = raw_client(&server.url("/ws"), &[]).await.unwrap();
    assert_eq!(chosen(&response), None);
    let connected = raw_connect(&mut ws, "1.0,1.1,1.2").await;
    assert_eq!(connected.headers().get("version"), Some("1.2"));
}

#[tokio::test]
async fn unknown_subprotocol_accepted_without_protocol_header() {
    // A client offering only sub-protocols we do not know still gets 101, with no
    // Sec-WebSocket-Protocol in the answer (the client then decides).
    let server = start(|c| c).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: mqtt\r\n\r\n",
        server.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let response = read_head(&mut tcp).await;
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert!(
        !response
            .to_ascii_lowercase()
            .contains("sec-websocket-protocol")
    );
    // And a strict client that asked for it refuses the connection itself.
    let refused = raw_client(&server.url("/ws"), &[(PROTOCOL, "mqtt")]).await;
    assert!(
        matches!(refused, Err(tungstenite::Error::Protocol(_))),
        "{refused:?}"
    );
}

async fn read_head(tcp: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn subprotocol_caps_the_connect_version() {
    let server = start(|c| c).await;
    for (protocol, expect) in [
        ("v10.stomp", "1.0"),
        ("v11.stomp", "1.1"),
        ("v12.stomp", "1.2"),
        ("stomp", "1.2"),
    ] {
        let (mut ws, _) = raw_client(&server.url("/ws"), &[(PROTOCOL, protocol)])
            .await
            .unwrap();
        let connected = raw_connect(&mut ws, "1.0,1.1,1.2").await;
        assert_eq!(connected.command, Command::Connected);
        assert_eq!(
            connected.headers().get("version"),
            Some(expect),
            "{protocol}"
        );
    }
    // v10.stomp and a client that only speaks 1.2: no common version.
    let (mut ws, _) = raw_client(&server.url("/ws"), &[(PROTOCOL, "v10.stomp")])
        .await
        .unwrap();
    let error = raw_connect(&mut ws, "1.2").await;
    assert_eq!(error.command, Command::Error);
    assert_eq!(error.headers().get("version"), Some("1.0"));
}

#[tokio::test]
async fn frame_split_over_messages_and_frames_coalesced_in_one() {
    let server = start(|c| c).await;
    let (mut ws, _) = raw_client(&server.url("/ws"), &[(PROTOCOL, "v12.stomp")])
        .await
        .unwrap();
    raw_connect(&mut ws, "1.2").await;
    // One SEND cut inside the command, a header and the body, over 4 messages.
    let send = b"SEND\ndestination:/queue/split\n\nhello split\0";
    for part in [&send[..2], &send[2..15], &send[15..33], &send[33..]] {
        ws.send(Message::binary(part.to_vec())).await.unwrap();
    }
    let message = frame_of(&next_message(&mut ws).await, Some(Version::V1_2));
    assert_eq!(message.destination(), Some("/queue/split"));
    assert_eq!(message.body(), b"hello split");
    // Two SENDs and a heart-beat in one message.
    let two = "SEND\ndestination:/a\n\none\0\nSEND\ndestination:/b\n\ntwo\0";
    ws.send(Message::text(two)).await.unwrap();
    let first = frame_of(&next_message(&mut ws).await, Some(Version::V1_2));
    let second = frame_of(&next_message(&mut ws).await, Some(Version::V1_2));
    assert_eq!(
        (first.destination(), first.body()),
        (Some("/a"), &b"one"[..])
    );
    assert_eq!(
        (second.destination(), second.body()),
        (Some("/b"), &b"two"[..])
    );
}

#[tokio::test]
async fn bare_eol_messages_are_heartbeats() {
    let server = start(|c| c).await;
    let (mut ws, _) = raw_client(&server.url("/ws"), &[]).await.unwrap();
    raw_connect(&mut ws, "1.2").await;
    ws.send(Message::text("\n")).await.unwrap();
    ws.send(Message::binary(&b"\r\n"[..])).await.unwrap();
    ws.send(Message::text("\n\n")).await.unwrap();
    ws.send(Message::text("SEND\ndestination:/stats\n\n\0"))
        .await
        .unwrap();
    let stats = frame_of(&next_message(&mut ws).await, Some(Version::V1_2));
    assert_eq!(stats.body(), b"4");
}

#[tokio::test]
async fn auto_mode_text_client_gets_text_and_binary_body_goes_binary() {
    let server = start(|c| c).await;
    let (mut ws, _) = raw_client(&server.url("/ws"), &[]).await.unwrap();
    let connected = next_connect(&mut ws).await;
    assert!(connected.is_text());
    ws.send(Message::text("SEND\ndestination:/t\n\nplain text é\0"))
        .await
        .unwrap();
    let reply = next_message(&mut ws).await;
    assert!(reply.is_text(), "{reply:?}");
    assert_eq!(
        frame_of(&reply, Some(Version::V1_2)).body(),
        "plain text é".as_bytes()
    );
    // A body with NULs and invalid UTF-8: the echo must not be a text message.
    let body: &[u8] = &[0, 0xff, b'x', 0, 0xfe];
    let mut send = b"SEND\ndestination:/b\ncontent-length:5\n\n".to_vec();
    send.extend_from_slice(body);
    send.push(0);
    ws.send(Message::binary(send)).await.unwrap();
    let reply = next_message(&mut ws).await;
    assert!(reply.is_binary());
    assert_eq!(frame_of(&reply, Some(Version::V1_2)).body(), body);
    // The client sent binary last: even a UTF-8 frame now comes back binary.
    ws.send(Message::binary(&b"SEND\ndestination:/t\n\nabc\0"[..]))
        .await
        .unwrap();
    assert!(next_message(&mut ws).await.is_binary());
    // Back to text.
    ws.send(Message::text("SEND\ndestination:/t\n\nabc\0"))
        .await
        .unwrap();
    assert!(next_message(&mut ws).await.is_text());
}

async fn next_connect(ws: &mut support::Raw) -> Message {
    ws.send(Message::text("CONNECT\naccept-version:1.2\nhost:/\n\n\0"))
        .await
        .unwrap();
    next_message(ws).await
}

#[tokio::test]
async fn text_mode_still_sends_invalid_utf8_as_binary_and_binary_mode_is_binary() {
    let text = start(|c| c.outgoing(OutgoingMode::Text)).await;
    let (mut ws, _) = raw_client(&text.url("/ws"), &[]).await.unwrap();
    ws.send(Message::binary(
        &b"CONNECT\naccept-version:1.2\nhost:/\n\n\0"[..],
    ))
    .await
    .unwrap();
    assert!(
        next_message(&mut ws).await.is_text(),
        "Text mode ignores the peer's kind"
    );
    ws.send(Message::binary(
        &b"SEND\ndestination:/b\ncontent-length:1\n\n\xff\0"[..],
    ))
    .await
    .unwrap();
    assert!(next_message(&mut ws).await.is_binary());

    let binary = start(|c| c.outgoing(OutgoingMode::Binary)).await;
    let (mut ws, _) = raw_client(&binary.url("/ws"), &[]).await.unwrap();
    assert!(next_connect(&mut ws).await.is_binary());
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let server = start(|c| c).await;
    let (mut ws, _) = raw_client(&server.url("/ws"), &[]).await.unwrap();
    ws.send(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    let pong = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(Bytes::from_static(b"are you there")));
}

#[tokio::test]
async fn client_close_is_answered_and_server_stream_ends() {
    let mut server = start(|c| c).await;
    let (mut ws, _) = raw_client(&server.url("/ws"), &[]).await.unwrap();
    raw_connect(&mut ws, "1.2").await;
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    }))
    .await
    .unwrap();
    let reply = next_message(&mut ws).await;
    assert!(
        matches!(reply, Message::Close(Some(ref f)) if f.code == CloseCode::Normal),
        "{reply:?}"
    );
    assert!(matches!(ws.next().await, None | Some(Err(_))));
    assert!(matches!(server.report().await, Report::Ended));
}

#[tokio::test]
async fn server_close_after_disconnect_carries_1000() {
    let mut server = start(|c| c).await;
    let (mut ws, _) = raw_client(&server.url("/ws"), &[]).await.unwrap();
    raw_connect(&mut ws, "1.2").await;
    ws.send(Message::text("DISCONNECT\nreceipt:77\n\n\0"))
        .await
        .unwrap();
    let receipt = frame_of(&next_message(&mut ws).await, Some(Version::V1_2));
    assert_eq!(receipt.headers().get("receipt-id"), Some("77"));
    let close = next_message(&mut ws).await;
    assert!(
        matches!(close, Message::Close(Some(ref f)) if f.code == CloseCode::Normal),
        "{close:?}"
    );
    // Our reply completes the handshake; the server then ends the connection.
    assert!(matches!(ws.next().await, None | Some(Err(_))));
    assert!(matches!(server.report().await, Report::Ended));
}

fn small_limits() -> ParserConfig {
    ParserConfig {
        max_header_bytes: 1024,
        max_body: 2048,
        ..ParserConfig::default()
    }
}

#[tokio::test]
async fn oversized_websocket_message_is_refused_with_1009() {
    let mut server = start(|c| c.parser(small_limits())).await;
    let max = stompkit_ws::max_stomp_frame(&small_limits()) + stompkit_ws::MESSAGE_SLACK;
    let (mut ws, _) = raw_client(&server.url("/ws"), &[]).await.unwrap();
    raw_connect(&mut ws, "1.2").await;
    ws.send(Message::binary(vec![b'\n'; max + 1]))
        .await
        .unwrap();
    let close = next_message(&mut ws).await;
    assert!(
        matches!(close, Message::Close(Some(ref f)) if f.code == CloseCode::Size),
        "{close:?}"
    );
    match server.report().await {
        Report::Error(e) => assert!(e.is_too_large(), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn oversized_stomp_body_is_refused_with_1009() {
    let mut server = start(|c| c.parser(small_limits())).await;
    let (mut ws, _) = raw_client(&server.url("/ws"), &[]).await.unwrap();
    raw_connect(&mut ws, "1.2").await;
    let mut send = b"SEND\ndestination:/big\n\n".to_vec();
    send.extend(std::iter::repeat_n(b'x', 2049));
    send.push(0);
    ws.send(Message::binary(send)).await.unwrap();
    let close = next_message(&mut ws).await;
    assert!(
        matches!(close, Message::Close(Some(ref f)) if f.code == CloseCode::Size),
        "{close:?}"
    );
    assert!(matches!(
        server.report().await,
        Report::Error(WsError::Parse(stompkit_wire::ParseError::BodyTooLarge))
    ));
}

#[tokio::test]
async fn message_at_the_limit_is_accepted() {
    let server = start(|c| c.parser(small_limits())).await;
    let max = stompkit_ws::max_stomp_frame(&small_limits()) + stompkit_ws::MESSAGE_SLACK;
    let (mut ws, _) = raw_client(&server.url("/ws"), &[]).await.unwrap();
    raw_connect(&mut ws, "1.2").await;
    // A SEND with the largest body allowed, padded with heart-beat EOLs to
    // exactly the largest WebSocket message allowed.
    let mut message = b"SEND\ndestination:/big\n\n".to_vec();
    message.extend(std::iter::repeat_n(b'y', 2048));
    message.push(0);
    message.resize(max, b'\n');
    ws.send(Message::binary(message)).await.unwrap();
    let reply = frame_of(&next_message(&mut ws).await, Some(Version::V1_2));
    assert_eq!(reply.body().len(), 2048);
}

#[tokio::test]
async fn origin_checked_on_a_non_loopback_listener() {
    // The listener is on 127.0.0.1, but the config says it is a public address.
    let mut server = start(|mut c| {
        c.local_addr = Some("192.0.2.10:61614".parse().unwrap());
        c.allow_origin("https://app.example.com")
    })
    .await;
    let url = server.url("/ws");
    match raw_client(&url, &[("Origin", "https://evil.example")]).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        server.report().await,
        Report::AcceptFailed(WsError::Refused { status: 403, .. })
    ));
    let own = format!("http://{}", server.addr);
    assert!(
        raw_client(&url, &[("Origin", own.as_str())]).await.is_ok(),
        "same host"
    );
    assert!(raw_client(&url, &[]).await.is_ok(), "no Origin");
    let listed = raw_client(&url, &[("Origin", "https://app.example.com")]).await;
    assert!(listed.is_ok(), "listed origin");
    let other_port = format!("http://127.0.0.1:{}", server.addr.port().wrapping_add(1));
    assert!(
        raw_client(&url, &[("Origin", other_port.as_str())])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn any_origin_on_a_loopback_listener() {
    let server = start(|c| c).await;
    let (mut ws, _) = raw_client(&server.url("/ws"), &[("Origin", "https://evil.example")])
        .await
        .unwrap();
    assert_eq!(
        raw_connect(&mut ws, "1.2").await.command,
        Command::Connected
    );
}

#[tokio::test]
async fn unknown_path_is_404_and_plain_get_is_400() {
    let mut server = start(|c| c).await;
    match raw_client(&server.url("/metrics"), &[]).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        server.report().await,
        Report::AcceptFailed(WsError::Refused { status: 404, .. })
    ));
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_head(&mut tcp).await.starts_with("HTTP/1.1 400"));
}

#[tokio::test]
async fn stompkit_client_connect_split_halves_and_negotiated_subprotocol() {
    let server = start(|c| c).await;
    let options = ClientOptions::default().subprotocols([SubProtocol::V11, SubProtocol::V10]);
    let ws = stompkit_ws::connect(&server.url("/stomp"), options)
        .await
        .unwrap();
    assert_eq!(ws.subprotocol(), Some(SubProtocol::V11));
    assert_eq!(ws.negotiated().unwrap().max_version(), Version::V1_1);
    let (mut writer, mut reader) = ws.split();
    writer
        .send(
            &Frame::new(Command::Connect)
                .header("accept-version", "1.0,1.1,1.2")
                .header("host", "/"),
        )
        .await
        .unwrap();
    let Some(Ok(Event::Frame(connected))) = reader.next().await else {
        panic!()
    };
    assert_eq!(connected.headers().get("version"), Some("1.1"));
    writer.set_version(Version::V1_1);
    reader.set_version(Version::V1_1);
    writer.send_heartbeat().await.unwrap();
    // A header value with a colon travels escaped (1.1) and comes back intact.
    let send = Frame::send("/queue/x")
        .header("note", "a:b")
        .with_body("hi");
    writer.send_batch(&[send.clone(), send]).await.unwrap();
    for _ in 0..2 {
        let Some(Ok(Event::Frame(message))) = reader.next().await else {
            panic!()
        };
        assert_eq!(message.body(), b"hi");
    }
    writer.close(CloseCode::Normal, "bye").await.unwrap();
    assert!(reader.next().await.is_none());
}

#[tokio::test]
async fn wss_without_tls_config_is_an_error() {
    let err = stompkit_ws::connect("wss://127.0.0.1:1/ws", ClientOptions::default()).await;
    #[cfg(feature = "tls")]
    assert!(
        matches!(err, Err(WsError::Url { .. }) | Err(WsError::Io(_))),
        "{err:?}"
    );
    #[cfg(not(feature = "tls"))]
    assert!(
        matches!(err, Err(WsError::TlsUnavailable { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn peeked_stream_is_accepted_untouched_and_raw_stomp_is_told_apart() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = stompkit_ws::WsServerConfig::new(addr);
    let server = tokio::spawn(async move {
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut peeked = [0u8; 16];
            let kind = loop {
                let n = tcp.peek(&mut peeked).await.unwrap();
                match sniff(&peeked[..n]) {
                    Sniff::NeedMore => tokio::task::yield_now().await,
                    kind => break kind,
                }
            };
            kinds.push(kind);
            if kind == Sniff::Http {
                let mut ws = StompWebSocket::accept(tcp, &config).await.unwrap();
                let Some(Ok(Event::Frame(frame))) = ws.next().await else {
                    panic!()
                };
                ws.send(&Frame::connected(Version::V1_2).header("seen", frame.command.as_str()))
                    .await
                    .unwrap();
                let _ = ws.next().await;
            }
        }
        kinds
    });
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw.write_all(b"CONNECT\naccept-version:1.2\n\n\0")
        .await
        .unwrap();
    let (mut ws, _) = raw_client(&format!("ws://{addr}/ws"), &[]).await.unwrap();
    let connected = raw_connect(&mut ws, "1.2").await;
    assert_eq!(connected.headers().get("seen"), Some("CONNECT"));
    drop(ws);
    assert_eq!(server.await.unwrap(), vec![Sniff::Stomp, Sniff::Http]);
}

#[tokio::test]
async fn invalid_stomp_is_closed_with_1002() {
    let mut server = start(|c| c).await;
    let (mut ws, _) = raw_client(&server.url("/ws"), &[]).await.unwrap();
    raw_connect(&mut ws, "1.2").await;
    ws.send(Message::text("send\ndestination:/a\n\n\0"))
        .await
        .unwrap(); // F4: case-sensitive
    let close = next_message(&mut ws).await;
    assert!(
        matches!(close, Message::Close(Some(ref f)) if f.code == CloseCode::Protocol),
        "{close:?}"
    );
    assert!(matches!(
        server.report().await,
        Report::Error(WsError::Parse(stompkit_wire::ParseError::UnknownCommand))
    ));
}
