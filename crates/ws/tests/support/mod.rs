//! A tiny scripted STOMP server over `stompkit-ws` (the broker is not used here),
//! and raw `tokio-tungstenite` client helpers.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use stompkit_frame::{Command, Frame, Version};
use stompkit_ws::tokio_tungstenite::tungstenite::client::IntoClientRequest;
use stompkit_ws::tokio_tungstenite::tungstenite::{self, Message};
use stompkit_ws::tokio_tungstenite::{WebSocketStream, client_async};
use stompkit_ws::{Event, StompWebSocket, WsError, WsServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What a server connection reported.
#[derive(Debug)]
pub enum Report {
    /// The handshake failed.
    AcceptFailed(WsError),
    /// The stream yielded an error (after which the script called `fail`).
    Error(WsError),
    /// The stream ended normally.
    Ended,
}

pub struct Server {
    pub addr: SocketAddr,
    pub reports: mpsc::UnboundedReceiver<Report>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub async fn report(&mut self) -> Report {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.reports.recv())
            .await
            .expect("a report in time")
            .expect("server alive")
    }
}

/// Starts the script server; `configure` gets the default config for the real
/// local address and may change it.
pub async fn start(configure: impl Fn(WsServerConfig) -> WsServerConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Arc::new(configure(WsServerConfig::new(addr)));
    let (tx, reports) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (config, tx) = (config.clone(), tx.clone());
            tokio::spawn(async move {
                match StompWebSocket::accept(tcp, &config).await {
                    Ok(ws) => {
                        let report = script(ws).await;
                        let _ = tx.send(report);
                    }
                    Err(e) => {
                        let _ = tx.send(Report::AcceptFailed(e));
                    }
                }
            });
        }
    });
    Server { addr, reports }
}

/// CONNECT → CONNECTED (best of accept-version ∩ what the sub-protocol allows,
/// or ERROR with `version`), SEND → MESSAGE echo (SEND to `/stats` → MESSAGE whose
/// body is the number of heart-beats received), DISCONNECT → RECEIPT and close 1000.
async fn script<S>(mut ws: StompWebSocket<S>) -> Report
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let allowed = ws.negotiated().unwrap().allowed_versions();
    let beats = AtomicUsize::new(0);
    let mut next_id = 0u64;
    while let Some(event) = ws.next().await {
        let frame = match event {
            Ok(Event::HeartBeat) => {
                beats.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Ok(Event::Frame(frame)) => frame,
            Err(e) => {
                let _ = ws.fail(&e).await;
                return Report::Error(e);
            }
        };
        match frame.command {
            Command::Connect | Command::Stomp => {
                let offered: Vec<Version> = frame
                    .headers()
                    .get("accept-version")
                    .unwrap_or("1.0")
                    .split(',')
                    .filter_map(|v| v.parse().ok())
                    .collect();
                let Some(version) = allowed.iter().rev().find(|v| offered.contains(v)).copied()
                else {
                    let list: Vec<&str> = allowed.iter().map(|v| v.as_str()).collect();
                    let error = Frame::new(Command::Error)
                        .header("version", &list.join(","))
                        .header("message", "no common version");
                    let _ = ws.send(&error).await;
                    let _ = ws
                        .close(tungstenite::protocol::frame::coding::CloseCode::Normal, "")
                        .await;
                    return Report::Ended;
                };
                ws.send(&Frame::connected(version)).await.unwrap();
                ws.set_version(version);
            }
            Command::Send => {
                next_id += 1;
                let body = if frame.destination() == Some("/stats") {
                    beats.load(Ordering::Relaxed).to_string().into()
                } else {
                    frame.body_bytes()
                };
                let mut message = Frame::new(Command::Message)
                    .header("destination", frame.destination().unwrap_or(""))
                    .header("message-id", &next_id.to_string())
                    .header("subscription", "0");
                if body.contains(&0) {
                    message = message.header("content-length", &body.len().to_string());
                }
                ws.send(&message.with_body(body)).await.unwrap();
            }
            Command::Disconnect => {
                let receipt = Frame::receipt_for(frame.receipt().unwrap_or(""));
                ws.send(&receipt).await.unwrap();
                ws.close(
                    tungstenite::protocol::frame::coding::CloseCode::Normal,
                    "bye",
                )
                .await
                .unwrap();
                return Report::Ended;
            }
            _ => {}
        }
    }
    Report::Ended
}

pub type Raw = WebSocketStream<TcpStream>;

/// A raw tokio-tungstenite client with extra request headers.
pub async fn raw_client(
    url: &str,
    headers: &[(&'static str, &str)],
) -> Result<(Raw, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    let authority = request.uri().authority().unwrap().to_string();
    let tcp = TcpStream::connect(authority).await.unwrap();
    client_async(request, tcp).await
}

/// Next data message (skipping pongs), with a timeout.
pub async fn next_message(ws: &mut Raw) -> Message {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .expect("stream open")
            .expect("no error");
        if !message.is_pong() {
            return message;
        }
    }
}

/// Parses one STOMP frame from a message's payload.
pub fn frame_of(message: &Message, version: Option<Version>) -> Frame {
    let mut parser = stompkit_wire::Parser::new();
    if let Some(v) = version {
        parser.set_version(v);
    }
    parser.push(&message.clone().into_data());
    match parser.next_event().unwrap() {
        Some(stompkit_wire::Event::Frame(frame)) => frame,
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// CONNECT over a raw client, returning CONNECTED.
pub async fn raw_connect(ws: &mut Raw, accept_version: &str) -> Frame {
    let connect = format!("CONNECT\naccept-version:{accept_version}\nhost:/\n\n\0");
    ws.send(Message::text(connect)).await.unwrap();
    frame_of(&next_message(ws).await, None)
}
