//! Memory held by idle WebSocket connections on the server side: 1,000
//! connections each complete the handshake and a CONNECT/CONNECTED exchange, then
//! stay idle; the RSS growth of the process divided by 1,000 is the figure quoted
//! in the crate docs. The clients are bare TCP sockets speaking hand-made
//! WebSocket frames, so they add no user-space buffers of their own.
//! (Set `STOMPKIT_WS_IDLE_READ_BUFFER` to compare another tungstenite read buffer size.)
#![allow(clippy::unwrap_used)]

mod support;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 1000;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A client text frame (FIN, opcode 1) with a zero masking key: the payload is
/// sent as is.
fn masked_text(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![0x81, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

async fn idle_client(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: v12.stomp\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    tcp.write_all(&masked_text(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0"))
        .await
        .unwrap();
    // Read the 101 head and the CONNECTED message (ends with a NUL).
    let mut seen = Vec::new();
    let mut chunk = [0u8; 512];
    while !(seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.ends_with(b"\0")) {
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "server closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 101"));
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_idle_connections_hold_little_memory() {
    let read_buffer: usize = std::env::var("STOMPKIT_WS_IDLE_READ_BUFFER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(stompkit_ws::DEFAULT_READ_BUFFER);
    let server = support::start(move |mut c| {
        c.read_buffer_size = read_buffer;
        c
    })
    .await;
    // Warm up allocator and runtime with a few connections first.
    let mut clients = Vec::with_capacity(CONNECTIONS + 10);
    for _ in 0..10 {
        clients.push(idle_client(server.addr).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let before = rss_kib();
    for _ in 0..CONNECTIONS {
        clients.push(idle_client(server.addr).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = rss_kib();
    let per_connection = (after.saturating_sub(before) as f64) * 1024.0 / CONNECTIONS as f64;
    println!(
        "idle WebSocket connections: {CONNECTIONS}, read buffer {read_buffer} B, RSS {before} KiB -> {after} KiB, \
         {per_connection:.0} B per connection"
    );
    // The tungstenite default (128 KiB read buffer, touched on every read) costs
    // over 128 KiB per connection; ours must stay far below.
    if read_buffer == stompkit_ws::DEFAULT_READ_BUFFER {
        assert!(
            per_connection < 24.0 * 1024.0,
            "{per_connection} B per idle connection"
        );
    }
    drop(clients);
}
