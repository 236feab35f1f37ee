//! A tiny in-test STOMP peer for the CLI's integration tests: CONNECT/CONNECTED
//! (1.2), SUBSCRIBE, SEND fanned out to every subscriber of a `/topic/` and
//! round-robin to one of a `/queue/`, RECEIPT for any frame with `receipt`, and an
//! ERROR for a SEND to `/queue/refused`. Good enough to drive the real binary
//! end to end; the broker's own semantics are tested in `crates/broker`.
#![allow(clippy::unwrap_used, dead_code)]

use bytes::BytesMut;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use stompkit_frame::{Command, Frame, Version};
use stompkit_wire::{Encoder, Event, Parser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Outbox = mpsc::UnboundedSender<Vec<u8>>;

#[derive(Default)]
struct Destinations {
    subs: HashMap<String, Vec<(String, Outbox)>>,
    next_queue: usize,
    next_id: u64,
}

/// Starts the peer on 127.0.0.1:0 on a background thread; returns its address.
pub fn start_peer() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let destinations = Arc::new(Mutex::new(Destinations::default()));
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(stream, destinations.clone()));
            }
        });
    });
    rx.recv().unwrap()
}

async fn serve(stream: tokio::net::TcpStream, destinations: Arc<Mutex<Destinations>>) {
    stream.set_nodelay(true).unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let (out, mut outq) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while outq.recv_many(&mut batch, 256).await > 0 {
            let bytes: Vec<u8> = batch.drain(..).flatten().collect();
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let encoder = Encoder::new(Some(Version::V1_2));
    let encode = |frame: &Frame| {
        let mut bytes = Vec::new();
        encoder.encode(frame, &mut bytes).unwrap();
        bytes
    };
    let mut parser = Parser::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut my_subs: Vec<String> = Vec::new();
    'conn: loop {
        loop {
            let frame = match parser.parse(&mut buf) {
                Ok(Some(Event::Frame(frame))) => frame,
                Ok(Some(Event::HeartBeat)) => continue,
                Ok(None) => break,
                Err(_) => break 'conn,
            };
            match frame.command {
                Command::Connect | Command::Stomp => {
                    parser.set_version(Version::V1_2);
                    let _ = out.send(encode(&Frame::connected(Version::V1_2)));
                }
                Command::Subscribe => {
                    let dest = frame.destination().unwrap().to_string();
                    let id = frame.id().unwrap().to_string();
                    my_subs.push(dest.clone());
                    let mut d = destinations.lock().unwrap();
                    d.subs.entry(dest).or_default().push((id, out.clone()));
                }
                Command::Send => {
                    let dest = frame.destination().unwrap().to_string();
                    if dest == "/queue/refused" {
                        let mut error = Frame::error("refused by the test peer");
                        if let Some(r) = frame.receipt() {
                            error = error.header("receipt-id", r);
                        }
                        let _ = out.send(encode(&error));
                        break 'conn;
                    }
                    let mut d = destinations.lock().unwrap();
                    d.next_id += 1;
                    let message_id = d.next_id.to_string();
                    let subs = d.subs.get(&dest).cloned().unwrap_or_default();
                    let targets: Vec<_> = if dest.starts_with("/queue/") && !subs.is_empty() {
                        d.next_queue += 1;
                        vec![subs[d.next_queue % subs.len()].clone()]
                    } else {
                        subs
                    };
                    drop(d);
                    for (sub_id, outbox) in targets {
                        let mut message = Frame::new(Command::Message)
                            .header("destination", &dest)
                            .header("message-id", &message_id)
                            .header("subscription", &sub_id)
                            .header("ack", &message_id);
                        for (name, value) in frame.headers.iter() {
                            if !matches!(name, "destination" | "receipt" | "content-length") {
                                message = message.header(name, value);
                            }
                        }
                        let _ = outbox.send(encode(&message.with_body(frame.body.clone())));
                    }
                }
                _ => {}
            }
            if let Some(receipt) = frame.receipt() {
                let _ = out.send(encode(&Frame::receipt_for(receipt)));
            }
            if frame.command == Command::Disconnect {
                break 'conn;
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let mut d = destinations.lock().unwrap();
    for dest in my_subs {
        if let Some(subs) = d.subs.get_mut(&dest) {
            subs.retain(|(_, o)| !o.same_channel(&out));
        }
    }
}
