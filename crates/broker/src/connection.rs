//! One client connection: the thin loop between a TCP socket and a [`Session`].
//!
//! Owns the reader task (socket → parser → session → router channel, plus the
//! session's timers and the shutdown signal) and the writer task (outbox → socket,
//! whole buffer per write: coalescing). It decides nothing about STOMP.
//!
//! Memory: the read buffer starts empty, grows to the frame being read and is
//! dropped whenever everything read has been parsed, so an idle connection holds
//! no buffer; the outbox gives back large buffers once drained.

use crate::metrics::Metrics;
use crate::outbox::{Outbox, Take};
use crate::router::{ConnId, RouterCommand};
use crate::server::{Shared, ToRouter};
use crate::session::Session;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stompkit_wire::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Bytes reserved before each read.
const READ_CHUNK: usize = 8 * 1024;

/// Serves one accepted connection until it closes.
pub(crate) async fn serve(stream: TcpStream, peer: SocketAddr, conn: ConnId, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let config = shared.config.clone();
    let (mut reader, writer) = stream.into_split();
    let outbox = Arc::new(Outbox::new(config.limits.max_outbox_bytes));
    let mut write_task = tokio::spawn(write_loop(
        writer,
        outbox.clone(),
        shared.router.clone(),
        conn,
        shared.metrics.clone(),
    ));
    let mut session = Session::new(
        config.clone(),
        conn,
        peer,
        outbox.clone(),
        shared.metrics.clone(),
        Instant::now().into_std(),
    );
    let mut parser = Parser::with_config(config.parser_config());
    let mut buf = BytesMut::new();
    let mut out: Vec<RouterCommand> = Vec::new();
    let mut shutdown = shared.shutdown.clone();
    tracing::info!(%peer, conn, "connection accepted");
    let lost = loop {
        let deadline = session.poll_timeout();
        let timer = async move {
            match deadline {
                Some(t) => tokio::time::sleep_until(Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break true,
                    Ok(n) => n,
                };
                Metrics::add(&shared.metrics.bytes_in, n as u64);
                let now = Instant::now().into_std();
                session.on_bytes(now, true);
                loop {
                    let event = match parser.parse(&mut buf) {
                        Ok(None) => break,
                        Ok(Some(event)) => Ok(event),
                        Err(e) => Err(e),
                    };
                    let failed = event.is_err();
                    if let Some(version) = session.handle_event(event, now, &mut out) {
                        parser.set_version(version);
                    }
                    if failed || session.is_closed() {
                        break;
                    }
                }
                session.set_in_frame(now, parser.in_frame());
                if buf.is_empty() {
                    // Frames keep their own references; an idle connection holds no buffer.
                    buf = BytesMut::new();
                }
            }
            _ = timer => session.handle_timeout(Instant::now().into_std(), &mut out),
            _ = shutdown.changed() => session.shutdown(&mut out),
            _ = outbox.closed() => {}
        }
        if !forward(&shared.router, &mut out).await {
            break true;
        }
        if session.is_closed() || outbox.is_closing() {
            break false;
        }
    };
    session.on_closed(&mut out);
    forward(&shared.router, &mut out).await;
    if lost {
        outbox.close();
    }
    // Give the writer a bounded time to flush the last frames (ERROR, RECEIPT).
    let linger = Duration::from_millis(config.server.close_linger_ms);
    let closed_in_time = tokio::time::timeout(linger, async {
        outbox.closed().await;
        let _ = (&mut write_task).await;
    })
    .await;
    if closed_in_time.is_err() {
        write_task.abort();
    }
    tracing::info!(%peer, conn, "connection closed");
}

async fn forward(router: &mpsc::Sender<ToRouter>, out: &mut Vec<RouterCommand>) -> bool {
    for cmd in out.drain(..) {
        if router.send(ToRouter::Command(cmd)).await.is_err() {
            return false;
        }
    }
    true
}

/// Drains the outbox into the socket, a whole buffer per write.
async fn write_loop(
    mut writer: OwnedWriteHalf,
    outbox: Arc<Outbox>,
    router: mpsc::Sender<ToRouter>,
    conn: ConnId,
    metrics: Arc<Metrics>,
) {
    let mut spare = BytesMut::new();
    loop {
        match outbox.take(&mut spare) {
            Take::Data => {
                if writer.write_all(&spare).await.is_err() {
                    outbox.close();
                    return;
                }
                Metrics::add(&metrics.bytes_out, spare.len() as u64);
                spare.clear();
                if spare.capacity() > 256 * 1024 {
                    spare = BytesMut::new();
                }
                outbox.written();
                if !outbox.is_full() && outbox.take_blocked() {
                    let _ = router
                        .send(ToRouter::Command(RouterCommand::Drained { conn }))
                        .await;
                }
            }
            Take::Empty => outbox.wait().await,
            Take::Closed => {
                let _ = writer.shutdown().await;
                return;
            }
        }
    }
}
