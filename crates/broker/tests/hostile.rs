//! Hostile-input suite (issue 7): the broker binary runs as its own process with
//! small limits and survives hostile clients, while a well-behaved publisher and
//! subscriber exchange sequenced messages on their own connections throughout.
//!
//! The attacks (see the test function for the list) cover the parser's limits,
//! the session's, its timers, volume (a never-reading subscriber, unread
//! receipts, held messages, connection churn) and WebSocket on the same port
//! (messages at and over the size limit, a 2^63-byte frame header, garbage after
//! the upgrade, invalid UTF-8, a stalled or oversized upgrade request).
//! Every attack comes from its own connection(s) and prints one summary line:
//! attack, outcome, time from its first hostile byte to the close, and the
//! broker's RSS (now and the attack's peak). Asserted:
//! - every hostile connection ends with an ERROR and/or a close within its budget:
//!   [`PROMPT`] for input the parser or the session refuses at once, the configured
//!   timeout plus [`PROMPT`] for the login and frame timers; a client that never
//!   reads its RECEIPTs is back-pressured instead (the broker stops reading it,
//!   its writes stall) and forgotten promptly once it closes;
//! - the broker's RSS (`VmRSS` of `/proc/<pid>/status`, sampled every 5 ms for the
//!   whole run) stays under [`RSS_CAP_MIB`];
//! - the good pair loses no message: every sequence number arrives, in order;
//! - the broker is still running at the end, never logged a panic, and its
//!   connection and subscription gauges are back to the good pair's.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stompkit_frame::{Command, Frame, Version};
use stompkit_wire::{Event, Parser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;

// ------------------------------------------------------------ broker limits

const LOGIN_TIMEOUT_MS: u64 = 500;
const FRAME_TIMEOUT_MS: u64 = 500;
const CLOSE_LINGER_MS: u64 = 300;
const MAX_HEADER_LINE: usize = 4096;
const MAX_HEADERS: usize = 64;
const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;
const MAX_SUBSCRIPTIONS: usize = 100;
const MAX_OUTBOX_BYTES: usize = 256 * 1024;
const MAX_TRANSACTION_BYTES: usize = 1024 * 1024;
const QUEUE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The broker's limits, as `STOMPKIT_<SECTION>_<KEY>` overrides.
fn limits() -> Vec<(&'static str, String)> {
    vec![
        (
            "STOMPKIT_LIMITS_LOGIN_TIMEOUT_MS",
            LOGIN_TIMEOUT_MS.to_string(),
        ),
        (
            "STOMPKIT_LIMITS_FRAME_TIMEOUT_MS",
            FRAME_TIMEOUT_MS.to_string(),
        ),
        (
            "STOMPKIT_SERVER_CLOSE_LINGER_MS",
            CLOSE_LINGER_MS.to_string(),
        ),
        (
            "STOMPKIT_LIMITS_MAX_HEADER_LINE",
            MAX_HEADER_LINE.to_string(),
        ),
        ("STOMPKIT_LIMITS_MAX_HEADERS", MAX_HEADERS.to_string()),
        (
            "STOMPKIT_LIMITS_MAX_HEADER_BYTES",
            MAX_HEADER_BYTES.to_string(),
        ),
        ("STOMPKIT_LIMITS_MAX_BODY", MAX_BODY.to_string()),
        (
            "STOMPKIT_LIMITS_MAX_SUBSCRIPTIONS",
            MAX_SUBSCRIPTIONS.to_string(),
        ),
        (
            "STOMPKIT_LIMITS_MAX_OUTBOX_BYTES",
            MAX_OUTBOX_BYTES.to_string(),
        ),
        (
            "STOMPKIT_LIMITS_MAX_TRANSACTION_BYTES",
            MAX_TRANSACTION_BYTES.to_string(),
        ),
        (
            "STOMPKIT_DESTINATIONS_QUEUE_MAX_BYTES",
            QUEUE_MAX_BYTES.to_string(),
        ),
    ]
}

/// Time to ERROR and close for input that is refused at once: the close linger
/// plus generous scheduling slack for a loaded CI machine.
const PROMPT: Duration = Duration::from_millis(CLOSE_LINGER_MS + 1700);

/// The broker's resident set must stay below this for the whole run. A debug
/// build idles at about 6 MiB and the whole suite peaks at about 14 MiB (4 MiB
/// of it the messages a queue keeps, by design, up to `QUEUE_MAX_BYTES`). The
/// attacks send 10 to 100 MB each; the limits above bound what the broker may
/// keep of them (a 16 KiB header block, a 64 KiB body, a 256 KiB outbox per
/// connection), so crossing the cap means something is buffered without bound.
const RSS_CAP_MIB: u64 = 32;

// ------------------------------------------------------------ broker process

/// The broker binary, running; killed on drop.
struct BrokerProcess {
    child: Child,
    stomp: SocketAddr,
    metrics: SocketAddr,
    log: PathBuf,
    /// Kept open so the broker never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl BrokerProcess {
    fn start() -> BrokerProcess {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("hostile-broker-{}.log", std::process::id()));
        let mut command = Process::new(env!("CARGO_BIN_EXE_stompkit-broker"));
        command.args([
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--log-level",
            "warn",
            "--in-memory",
        ]);
        for (key, _) in std::env::vars() {
            if key.starts_with("STOMPKIT_") {
                command.env_remove(key);
            }
        }
        command.envs(limits());
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // One line per listener and service, the metrics line last.
        let (mut stomp, mut ws) = (None, None);
        let metrics = loop {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            let line = line.trim();
            let addr = |rest: &str, path: &str| -> SocketAddr {
                rest.trim_end_matches(path).parse().unwrap()
            };
            if let Some(rest) = line.strip_prefix("stompkit-broker listening on stomp://") {
                stomp = Some(addr(rest, ""));
            } else if let Some(rest) = line.strip_prefix("stompkit-broker websocket on ws://") {
                ws = Some(addr(rest, "/ws"));
            } else if let Some(rest) = line.strip_prefix("stompkit-broker metrics on http://") {
                break addr(rest, "/metrics");
            } else {
                let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("unexpected broker output {line:?}; its log:\n{log_text}");
            }
        };
        let stomp = stomp.expect("no STOMP listener line");
        let ws = ws.expect("no WebSocket listener line");
        assert_eq!(stomp, ws, "TCP STOMP and WebSocket share the port");
        BrokerProcess {
            child,
            stomp,
            metrics,
            log,
            _stdout: stdout,
        }
    }
}

impl BrokerProcess {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics when the broker process has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "the broker exited ({status}); its log:\n{}",
                self.log_text()
            );
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of a metric without labels, read from the metrics endpoint.
    async fn metric(&self, name: &str) -> u64 {
        read_metric(self.metrics, name).await
    }

    /// Waits until `name` reads `want`; returns how long that took.
    async fn await_metric(&self, name: &str, want: u64, budget: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let now = self.metric(name).await;
            if now == want {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < budget,
                "{name} is {now}, not {want}, after {budget:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------ RSS sampling

/// Samples the broker's `VmRSS` every 5 ms on its own thread.
struct Rss {
    now_kib: Arc<AtomicU64>,
    peak_kib: Arc<AtomicU64>,
    /// Peak since the last [`Rss::window`].
    window_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

impl Rss {
    fn sample(pid: u32) -> Rss {
        let first = vm_rss_kib(pid).unwrap();
        let now_kib = Arc::new(AtomicU64::new(first));
        let peak_kib = Arc::new(AtomicU64::new(first));
        let window_kib = Arc::new(AtomicU64::new(first));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (now_kib, peak_kib, window_kib, stop) = (
                now_kib.clone(),
                peak_kib.clone(),
                window_kib.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kib) = vm_rss_kib(pid) {
                        now_kib.store(kib, Ordering::Relaxed);
                        peak_kib.fetch_max(kib, Ordering::Relaxed);
                        window_kib.fetch_max(kib, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Rss {
            now_kib,
            peak_kib,
            window_kib,
            stop,
            thread: Some(thread),
        }
    }

    fn now_mib(&self) -> f64 {
        self.now_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    fn peak_mib(&self) -> f64 {
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// The peak since the last call; starts a new window at the current value.
    fn window_mib(&self) -> f64 {
        let now = self.now_kib.load(Ordering::Relaxed);
        self.window_kib.swap(now, Ordering::Relaxed) as f64 / 1024.0
    }

    fn assert_under_cap(&self, during: &str) {
        let peak = self.peak_mib();
        assert!(
            peak < RSS_CAP_MIB as f64,
            "broker RSS peaked at {peak:.1} MiB (cap {RSS_CAP_MIB} MiB) by the end of {during}"
        );
    }
}

impl Drop for Rss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ------------------------------------------------------------ a raw client

/// A raw STOMP connection: bytes out, the server's frames in.
struct Client {
    inbound: Inbound,
    writer: OwnedWriteHalf,
}

/// The reading side of a [`Client`].
struct Inbound {
    reader: OwnedReadHalf,
    parser: Parser,
    buf: BytesMut,
}

/// How a hostile connection ended.
struct Ending {
    /// The `message` of the ERROR the server sent, if one arrived.
    error: Option<String>,
    /// `true` for a reset (the ERROR may have been lost with it), `false` for EOF.
    reset: bool,
    /// Bytes the server sent.
    bytes: usize,
    /// From the start of the attack to the close.
    after: Duration,
}

impl Ending {
    fn describe(&self) -> String {
        let close = if self.reset { "reset" } else { "close" };
        match &self.error {
            Some(message) => format!("ERROR {message:?} + {close}"),
            None => format!("{close} without ERROR"),
        }
    }

    /// Asserts the ERROR `message` arrived, or (unless `strict`) a reset that may
    /// have swallowed it.
    fn assert_refused(&self, message: &str, strict: bool) {
        match &self.error {
            Some(got) => assert_eq!(got, message, "wrong ERROR message"),
            None => assert!(
                !strict && self.reset,
                "expected ERROR {message:?}, got {}",
                self.describe()
            ),
        }
    }
}

impl Client {
    async fn open(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (reader, writer) = stream.into_split();
        Client {
            inbound: Inbound {
                reader,
                parser: Parser::new(),
                buf: BytesMut::new(),
            },
            writer,
        }
    }

    /// Opens and CONNECTs with STOMP 1.2 and no heart-beats.
    async fn connect(addr: SocketAddr) -> Client {
        let mut client = Client::open(addr).await;
        client
            .write(b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0")
            .await;
        let connected = client.frame(PROMPT).await.expect("closed before CONNECTED");
        assert_eq!(connected.command, Command::Connected, "{connected:?}");
        client.inbound.parser.set_version(Version::V1_2);
        client
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    async fn frame(&mut self, wait: Duration) -> Option<Frame> {
        self.inbound.frame(wait).await
    }

    /// SUBSCRIBEs (auto ack) and waits for the RECEIPT.
    async fn subscribe(&mut self, id: &str, destination: &str) {
        self.write(
            format!("SUBSCRIBE\nid:{id}\ndestination:{destination}\nreceipt:sub-{id}\n\n\0")
                .as_bytes(),
        )
        .await;
        let receipt = self.frame(PROMPT).await.expect("closed before RECEIPT");
        assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");
    }

    /// Writes `bytes` (ignoring write errors: the broker may close first) while
    /// reading until the broker closes, which must happen by `since + budget`.
    /// The connection stays open for writing until then.
    /// With `pace`, the bytes go one at a time, `pace` apart.
    async fn attack(
        &mut self,
        bytes: &[u8],
        pace: Option<Duration>,
        since: Instant,
        budget: Duration,
    ) -> Ending {
        let writer = &mut self.writer;
        let write = async move {
            match pace {
                None => {
                    let _ = writer.write_all(bytes).await;
                }
                Some(pace) => {
                    for byte in bytes.chunks(1) {
                        if writer.write_all(byte).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(pace).await;
                    }
                }
            }
            // Stay open for writing: a half-close would end the session by itself.
            std::future::pending::<()>().await;
        };
        tokio::select! {
            _ = write => unreachable!("the writer never finishes"),
            ending = self.inbound.ending(since, budget) => ending,
        }
    }
}

impl Inbound {
    /// The next frame (heart-beats skipped), `None` at EOF; panics after `wait`.
    async fn frame(&mut self, wait: Duration) -> Option<Frame> {
        tokio::time::timeout(wait, self.next_frame())
            .await
            .unwrap_or_else(|_| panic!("no frame from the broker within {wait:?}"))
            .unwrap()
    }

    async fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            match self.parser.parse(&mut self.buf) {
                Ok(Some(Event::Frame(f))) => return Ok(Some(f)),
                Ok(Some(Event::HeartBeat)) => continue,
                Ok(None) => {}
                Err(e) => panic!("the broker sent an unparsable frame: {e}"),
            }
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Reads until the server closes the connection, which must happen before
    /// `since + budget`; returns how it ended.
    async fn ending(&mut self, since: Instant, budget: Duration) -> Ending {
        let mut error = None;
        let mut reset = false;
        let mut bytes = 0;
        let read = async {
            loop {
                match self.parser.parse(&mut self.buf) {
                    Ok(Some(Event::Frame(f))) => {
                        if f.command == Command::Error && error.is_none() {
                            error = Some(f.message().unwrap_or("").to_owned());
                        }
                        continue;
                    }
                    Ok(Some(Event::HeartBeat)) => continue,
                    // A frame cut short by the close is not the broker's fault.
                    Ok(None) | Err(_) => {}
                }
                self.buf.reserve(64 * 1024);
                match self.reader.read_buf(&mut self.buf).await {
                    Ok(0) => return,
                    Ok(n) => bytes += n,
                    Err(_) => {
                        reset = true;
                        return;
                    }
                }
            }
        };
        let left = budget.saturating_sub(since.elapsed());
        let closed = tokio::time::timeout(left, read).await;
        assert!(
            closed.is_ok(),
            "the broker did not close within {budget:?} (ERROR so far: {error:?})"
        );
        Ending {
            error,
            reset,
            bytes,
            after: since.elapsed(),
        }
    }
}

// ------------------------------------------------------------ a raw WebSocket client

/// The largest WebSocket message the broker accepts: the largest STOMP frame its
/// parser accepts plus `stompkit_ws::MESSAGE_SLACK` (see `stompkit_ws::websocket_config`).
const WS_MESSAGE_LIMIT: usize = MAX_HEADER_BYTES + MAX_BODY + 8 + stompkit_ws::MESSAGE_SLACK;

/// WebSocket opcodes.
const TEXT: u8 = 1;
const BINARY: u8 = 2;
const CLOSE: u8 = 8;

/// A WebSocket client written by hand, so that attacks control every byte.
struct WsClient {
    stream: TcpStream,
    buf: BytesMut,
    stomp: Parser,
}

/// How a hostile WebSocket connection ended.
struct WsEnding {
    /// The status code of the broker's Close frame, if one arrived.
    close: Option<u16>,
    /// The `message` of a STOMP ERROR, if one arrived.
    error: Option<String>,
    /// RECEIPT ids that arrived.
    receipts: Vec<String>,
    /// An HTTP status line instead of a WebSocket (refused upgrade).
    http: Option<String>,
    reset: bool,
    after: Duration,
}

impl WsEnding {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(status) = &self.http {
            parts.push(status.clone());
        }
        if let Some(message) = &self.error {
            parts.push(format!("ERROR {message:?}"));
        }
        if let Some(code) = self.close {
            parts.push(format!("close {code}"));
        }
        parts.push(if self.reset { "reset" } else { "TCP close" }.to_owned());
        parts.join(" + ")
    }
}

/// The HTTP request that opens a STOMP WebSocket.
fn upgrade_request(addr: SocketAddr) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: v12.stomp\r\n\r\n"
    )
}

/// A masked client frame (FIN set) announcing `len` payload bytes, without the payload.
fn ws_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    match len {
        0..=125 => frame.push(0x80 | len as u8),
        126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&len.to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame
}

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A whole masked client frame.
fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = ws_header(opcode, payload.len() as u64);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    frame
}

/// Takes one whole server frame (unmasked) off the front of `buf` as
/// (opcode, payload); `None` until all of it has arrived.
fn take_ws_frame(buf: &mut BytesMut) -> Option<(u8, Vec<u8>)> {
    let opcode = *buf.first()? & 0x0f;
    let (len, at): (usize, usize) = match *buf.get(1)? & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let n: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(n)).ok()?, 10)
        }
        n => (usize::from(n), 2),
    };
    if buf.len() < at.checked_add(len)? {
        return None;
    }
    let frame = buf.split_to(at + len);
    Some((opcode, frame[at..].to_vec()))
}

impl WsClient {
    /// Opens a TCP connection and sends `request` (nothing more).
    async fn raw(addr: SocketAddr, request: &[u8]) -> WsClient {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(request).await.unwrap();
        WsClient {
            stream,
            buf: BytesMut::new(),
            stomp: Parser::new(),
        }
    }

    /// Upgrades to a STOMP WebSocket and CONNECTs with STOMP 1.2.
    async fn connect(addr: SocketAddr) -> WsClient {
        let mut ws = WsClient::raw(addr, upgrade_request(addr).as_bytes()).await;
        let head = tokio::time::timeout(PROMPT, ws.http_head())
            .await
            .unwrap()
            .expect("closed during the upgrade");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        ws.send(
            TEXT,
            b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0",
        )
        .await;
        let connected = ws.frame(PROMPT).await.expect("closed before CONNECTED");
        assert_eq!(connected.command, Command::Connected, "{connected:?}");
        ws.stomp.set_version(Version::V1_2);
        ws
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.stream
            .write_all(&ws_frame(opcode, payload))
            .await
            .unwrap();
    }

    /// Reads an HTTP response head; `None` at EOF.
    async fn http_head(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = self.buf.split_to(end + 4);
                return Some(String::from_utf8_lossy(&head).into_owned());
            }
            if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    /// The next server WebSocket frame as (opcode, payload); `None` at EOF.
    async fn ws_message(&mut self) -> std::io::Result<Option<(u8, Vec<u8>)>> {
        loop {
            if let Some(frame) = take_ws_frame(&mut self.buf) {
                return Ok(Some(frame));
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// The next STOMP frame carried in data messages; `None` at EOF or Close.
    async fn frame(&mut self, wait: Duration) -> Option<Frame> {
        tokio::time::timeout(wait, async {
            loop {
                if let Some(Event::Frame(f)) = self.stomp.next_event().unwrap() {
                    return Some(f);
                }
                match self.ws_message().await.unwrap()? {
                    (TEXT | BINARY, payload) => self.stomp.push(&payload),
                    (CLOSE, _) => return None,
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no STOMP frame within {wait:?}"))
    }

    /// Writes `bytes` (ignoring write errors) while reading until the broker
    /// closes the TCP connection, which must happen by `since + budget`. A Close
    /// frame from the broker is answered, as a browser would.
    async fn attack(&mut self, bytes: &[u8], since: Instant, budget: Duration) -> WsEnding {
        let (mut reader, mut writer) = self.stream.split();
        let mut ending = WsEnding {
            close: None,
            error: None,
            receipts: Vec::new(),
            http: None,
            reset: false,
            after: Duration::ZERO,
        };
        let buf = &mut self.buf;
        let stomp = &mut self.stomp;
        let read = async {
            let _ = writer.write_all(bytes).await;
            let mut replied = false;
            loop {
                if buf.starts_with(b"HTTP/1.1 ")
                    && ending.http.is_none()
                    && let Some(end) = buf.windows(2).position(|w| w == b"\r\n")
                {
                    ending.http = Some(String::from_utf8_lossy(&buf[..end]).into_owned());
                    buf.clear();
                }
                while ending.http.is_none()
                    && let Some((opcode, payload)) = take_ws_frame(buf)
                {
                    match opcode {
                        TEXT | BINARY => {
                            stomp.push(&payload);
                            while let Ok(Some(event)) = stomp.next_event() {
                                let Event::Frame(f) = event else { continue };
                                match f.command {
                                    Command::Error if ending.error.is_none() => {
                                        ending.error = Some(f.message().unwrap_or("").to_owned());
                                    }
                                    Command::Receipt => ending
                                        .receipts
                                        .push(f.receipt_id().unwrap_or("").to_owned()),
                                    _ => {}
                                }
                            }
                        }
                        CLOSE => {
                            if payload.len() >= 2 {
                                ending.close = Some(u16::from_be_bytes([payload[0], payload[1]]));
                            }
                            if !replied {
                                replied = true;
                                let _ = writer.write_all(&ws_frame(CLOSE, &payload)).await;
                            }
                        }
                        _ => {}
                    }
                }
                buf.reserve(64 * 1024);
                match reader.read_buf(buf).await {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(_) => {
                        ending.reset = true;
                        return;
                    }
                }
            }
        };
        let left = budget.saturating_sub(since.elapsed());
        let closed = tokio::time::timeout(left, read).await;
        assert!(
            closed.is_ok(),
            "the broker did not close the WebSocket within {budget:?}"
        );
        ending.after = since.elapsed();
        ending
    }
}

// ------------------------------------------------------------ the good pair

const GOOD_TOPIC: &str = "/topic/good";

/// A publisher and a subscriber exchanging sequenced messages on their own
/// connections until told to stop.
struct GoodPair {
    stop: Arc<AtomicBool>,
    publisher: JoinHandle<u64>,
    subscriber: JoinHandle<(u64, Duration)>,
}

/// What the good pair did.
struct GoodReport {
    sent: u64,
    received: u64,
    max_latency: Duration,
}

impl GoodPair {
    async fn start(addr: SocketAddr, epoch: Instant) -> GoodPair {
        let mut sub = Client::connect(addr).await;
        sub.subscribe("good", GOOD_TOPIC).await;
        let subscriber = tokio::spawn(async move {
            let mut expected = 0u64;
            let mut max_latency = Duration::ZERO;
            loop {
                let frame = match sub.frame(Duration::from_secs(30)).await {
                    Some(f) => f,
                    None => panic!("good subscriber: closed after {expected} messages"),
                };
                assert_eq!(
                    frame.command,
                    Command::Message,
                    "good subscriber got {frame:?}"
                );
                let seq: u64 = frame.get("seq").unwrap().parse().unwrap();
                assert_eq!(seq, expected, "good subscriber: message lost or reordered");
                let sent = Duration::from_micros(frame.get("sent-us").unwrap().parse().unwrap());
                max_latency = max_latency.max(epoch.elapsed().saturating_sub(sent));
                expected += 1;
                if frame.get("last").is_some() {
                    return (expected, max_latency);
                }
            }
        });
        let mut publisher = Client::connect(addr).await;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let publisher = tokio::spawn(async move {
            let mut seq = 0u64;
            loop {
                let last = stopped.load(Ordering::Relaxed);
                let mut batch = String::new();
                for i in 0..10 {
                    let extra = match (last && i == 9, seq % 100 == 99) {
                        (true, _) => "last:true\nreceipt:last\n".to_owned(),
                        (false, true) => format!("receipt:{seq}\n"),
                        _ => String::new(),
                    };
                    let _ = write!(
                        batch,
                        "SEND\ndestination:{GOOD_TOPIC}\nseq:{seq}\nsent-us:{}\n{extra}\nmessage {seq}\0",
                        epoch.elapsed().as_micros()
                    );
                    seq += 1;
                }
                publisher.write(batch.as_bytes()).await;
                if seq.is_multiple_of(100) || last {
                    // Every 100th message (and the last) asks for a receipt.
                    let receipt = publisher.frame(Duration::from_secs(30)).await;
                    let receipt = receipt.expect("good publisher: closed");
                    assert_eq!(
                        receipt.command,
                        Command::Receipt,
                        "good publisher got {receipt:?}"
                    );
                }
                if last {
                    return seq;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        GoodPair {
            stop,
            publisher,
            subscriber,
        }
    }

    async fn finish(self) -> GoodReport {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.publisher.await.unwrap();
        let (received, max_latency) = self.subscriber.await.unwrap();
        GoodReport {
            sent,
            received,
            max_latency,
        }
    }
}

// ------------------------------------------------------------ the attacks

/// The broker under attack, its RSS sampler, and the summary lines so far.
struct Suite {
    broker: BrokerProcess,
    rss: Rss,
    addr: SocketAddr,
}

impl Suite {
    /// Prints an attack's summary line (to stderr directly, so it shows in CI
    /// logs without `--nocapture`) and checks the broker is alive and under its cap.
    fn report(&mut self, attack: &str, outcome: &str, closed_in: Option<Duration>) {
        self.broker.assert_running();
        let closed_in = match closed_in {
            Some(d) => format!("closed in {:>5} ms", d.as_millis()),
            None => " ".repeat(18),
        };
        let line = format!(
            "hostile: {attack:<42} | {outcome:<64} | {closed_in} | RSS {:>5.1} MiB, attack peak {:>5.1} MiB\n",
            self.rss.now_mib(),
            self.rss.window_mib()
        );
        use std::io::Write as _;
        let _ = std::io::stderr().write_all(line.as_bytes());
        self.rss.assert_under_cap(attack);
    }

    /// One connection (CONNECTed first when `connect`) sends `bytes`; the broker
    /// must answer ERROR `message` (or, unless `strict`, reset the connection,
    /// which may swallow the ERROR) and close within [`PROMPT`].
    async fn refused(
        &mut self,
        attack: &str,
        connect: bool,
        bytes: &[u8],
        message: &str,
        strict: bool,
    ) {
        let mut client = match connect {
            true => Client::connect(self.addr).await,
            false => Client::open(self.addr).await,
        };
        let start = Instant::now();
        let ending = client.attack(bytes, None, start, PROMPT).await;
        ending.assert_refused(message, strict);
        self.report(attack, &ending.describe(), Some(ending.after));
    }

    /// One connection sends `bytes` (`pace` apart when given) and then nothing;
    /// the broker's `timeout` must end it with ERROR `message` no earlier than the
    /// timeout and no later than the timeout plus [`PROMPT`].
    async fn timed_out(
        &mut self,
        attack: &str,
        connect: bool,
        bytes: &[u8],
        pace: Option<Duration>,
        timeout_ms: u64,
        message: &str,
    ) {
        let mut client = match connect {
            true => Client::connect(self.addr).await,
            false => Client::open(self.addr).await,
        };
        let start = Instant::now();
        let timeout = Duration::from_millis(timeout_ms);
        let ending = client.attack(bytes, pace, start, timeout + PROMPT).await;
        ending.assert_refused(message, true);
        assert!(
            ending.after >= timeout.mul_f64(0.9),
            "closed after {:?}, before the {timeout:?} timeout",
            ending.after
        );
        self.report(attack, &ending.describe(), Some(ending.after));
    }

    /// A subscriber that never reads while 100 MB are published to its topic:
    /// the broker must disconnect it (slow consumer) long before the end, having
    /// queued no more than its outbox bound toward it, and the publisher must be
    /// served throughout.
    async fn never_reading_subscriber(&mut self) {
        const BODY: usize = 50_000;
        const TOTAL: usize = 100_000_000;
        let mut sub = Client::connect(self.addr).await;
        sub.subscribe("flood", "/topic/flood").await;
        let mut publisher = Client::connect(self.addr).await;
        let mut frame =
            format!("SEND\ndestination:/topic/flood\ncontent-length:{BODY}\n\n").into_bytes();
        frame.extend(std::iter::repeat_n(b'x', BODY));
        frame.push(0);
        let batch = frame.repeat(20);
        let before = self.broker.metric("stompkit_subscriptions").await;
        let start = Instant::now();
        // Watch the subscription gauge: the broker dropping the subscriber is the close.
        let kicked = {
            let metrics = self.broker.metrics;
            tokio::spawn(async move {
                loop {
                    if read_metric(metrics, "stompkit_subscriptions").await < before {
                        return start.elapsed();
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        for _ in 0..TOTAL / (BODY * 20) {
            publisher.write(&batch).await;
        }
        publisher
            .write(b"SEND\ndestination:/topic/flood\nreceipt:flood-done\n\nend\0")
            .await;
        let receipt = publisher.frame(Duration::from_secs(60)).await;
        let receipt = receipt.expect("flood publisher: closed");
        assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");
        let published = start.elapsed();
        let kicked_after = tokio::time::timeout(PROMPT, kicked)
            .await
            .expect("the never-reading subscriber is still subscribed")
            .unwrap();
        assert!(
            kicked_after < published,
            "the slow consumer was dropped only after the flood ({kicked_after:?} >= {published:?})"
        );
        // Now read what reached the subscriber: the broker has closed it.
        let ending = sub.inbound.ending(Instant::now(), PROMPT).await;
        if let Some(message) = &ending.error {
            assert_eq!(message, "slow consumer");
        }
        let got_mib = ending.bytes as f64 / (1024.0 * 1024.0);
        assert!(
            got_mib < 32.0,
            "the slow consumer received {got_mib:.1} MiB: the broker buffered for it"
        );
        self.report(
            "never-reading subscriber, 100 MB",
            &format!(
                "{} after {got_mib:.1} MiB; 100 MB published in {:.1} s",
                ending.describe(),
                published.as_secs_f64()
            ),
            Some(kicked_after),
        );
    }

    /// A client that asks for a RECEIPT on every frame (3 KiB receipt ids) and
    /// never reads: the broker must stop reading from it once its outbox is full
    /// (TCP back-pressure) instead of queueing receipts without bound. The
    /// client writes for at most 3 s, then closes; the broker must forget it.
    async fn unread_receipts(&mut self) {
        const TOTAL: usize = 64 * 1024 * 1024;
        let mut client = Client::connect(self.addr).await;
        let receipt = "r".repeat(3000);
        let mut batch = Vec::new();
        for i in 0..64 {
            batch.extend_from_slice(
                format!("SEND\ndestination:/topic/nobody\nreceipt:{receipt}{i}\n\n\0").as_bytes(),
            );
        }
        let start = Instant::now();
        let mut written = 0;
        let mut closed_by_broker = false;
        let deadline = Duration::from_secs(3);
        while written < TOTAL {
            let left = deadline.saturating_sub(start.elapsed());
            match tokio::time::timeout(left, client.writer.write_all(&batch)).await {
                Ok(Ok(())) => written += batch.len(),
                // Also fine: on a loaded machine a frame cut between two reads
                // may miss the frame timeout while the client is paused and resumed.
                Ok(Err(_)) => {
                    closed_by_broker = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let written_mib = written as f64 / (1024.0 * 1024.0);
        assert!(
            written < TOTAL,
            "the broker read all {written_mib:.0} MiB from a client that reads nothing"
        );
        drop(client);
        let closed = Instant::now();
        self.broker
            .await_metric("stompkit_connections", 2, PROMPT)
            .await;
        self.report(
            "receipts requested, never read",
            &format!(
                "back-pressure: stalled after {written_mib:.1} MiB; {} closed",
                if closed_by_broker { "broker" } else { "client" }
            ),
            Some(closed.elapsed()),
        );
    }

    /// SENDs with 15 KiB of headers and no body to a queue nobody consumes: the
    /// queue's byte limit must count the headers, so the broker refuses them
    /// (ERROR `queue is full`) before it holds more than `queue_max_bytes`.
    async fn header_heavy_queue(&mut self) {
        let mut client = Client::connect(self.addr).await;
        let headers: String = (0..15)
            .map(|i| format!("h{i}:{}\n", "v".repeat(1000)))
            .collect();
        let mut bytes = Vec::new();
        for _ in 0..(4 * QUEUE_MAX_BYTES / (15 * 1000)) {
            bytes.extend_from_slice(
                format!("SEND\ndestination:/queue/hoard\n{headers}\n\0").as_bytes(),
            );
        }
        let start = Instant::now();
        let ending = client.attack(&bytes, None, start, PROMPT).await;
        ending.assert_refused("queue is full", false);
        self.report(
            "header-heavy SENDs to an unread queue",
            &ending.describe(),
            Some(ending.after),
        );
    }

    /// Small SENDs to a queue nobody consumes, one per read (each waits for its
    /// RECEIPT): a held message must not pin the whole read buffer it arrived
    /// in, or the queue's byte limit understates the memory it holds a hundredfold.
    async fn one_read_per_queued_message(&mut self) {
        const MESSAGES: usize = 4000;
        let mut client = Client::connect(self.addr).await;
        let before = self.rss.now_mib();
        let start = Instant::now();
        for i in 0..MESSAGES {
            client
                .write(
                    format!("SEND\ndestination:/queue/pinned\nreceipt:{i}\n\nsmall {i}\0")
                        .as_bytes(),
                )
                .await;
            let receipt = client.frame(PROMPT).await.expect("closed");
            assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");
        }
        let took = start.elapsed();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let grown = self.rss.now_mib() - before;
        // Drain the queue so later attacks start from the same state.
        client
            .write(b"SUBSCRIBE\nid:drain\ndestination:/queue/pinned\n\n\0")
            .await;
        let mut drained = 0;
        while drained < MESSAGES {
            let frame = client.frame(PROMPT).await.expect("closed");
            assert_eq!(frame.command, Command::Message, "{frame:?}");
            drained += 1;
        }
        self.report(
            "4,000 queued SENDs, one per read",
            &format!(
                "held {MESSAGES} x ~40 B in {} ms; RSS grew {grown:.1} MiB",
                took.as_millis()
            ),
            None,
        );
        assert!(
            grown < 8.0,
            "{MESSAGES} small held messages grew the broker by {grown:.1} MiB"
        );
    }

    /// A transaction stuffed with header-heavy, bodiless SENDs: its byte limit
    /// must count the headers (ERROR `transaction too large`).
    async fn header_heavy_transaction(&mut self) {
        let mut client = Client::connect(self.addr).await;
        let headers: String = (0..15)
            .map(|i| format!("h{i}:{}\n", "v".repeat(1000)))
            .collect();
        let mut bytes = b"BEGIN\ntransaction:t\n\n\0".to_vec();
        for _ in 0..(4 * MAX_TRANSACTION_BYTES / (15 * 1000)) {
            bytes.extend_from_slice(
                format!("SEND\ndestination:/topic/tx\ntransaction:t\n{headers}\n\0").as_bytes(),
            );
        }
        let start = Instant::now();
        let ending = client.attack(&bytes, None, start, PROMPT).await;
        ending.assert_refused("transaction too large", false);
        self.report(
            "header-heavy SENDs in a transaction",
            &ending.describe(),
            Some(ending.after),
        );
    }

    /// A WebSocket message of exactly the size limit (a SEND with the largest
    /// body, padded with heart-beat EOLs) is served; one byte more, or a frame
    /// header announcing 2^63-1 bytes, closes with 1009 at once.
    async fn websocket_size_limit(&mut self) {
        let padded = |size: usize, receipt: &str| {
            let mut message = format!(
                "SEND\ndestination:/topic/ws\nreceipt:{receipt}\ncontent-length:{MAX_BODY}\n\n"
            )
            .into_bytes();
            message.extend(std::iter::repeat_n(b'w', MAX_BODY));
            message.push(0);
            message.resize(size, b'\n');
            message
        };
        let mut ws = WsClient::connect(self.addr).await;
        let mut bytes = ws_frame(BINARY, &padded(WS_MESSAGE_LIMIT, "at-limit"));
        bytes.extend(ws_frame(TEXT, b"DISCONNECT\nreceipt:bye\n\n\0"));
        let ending = ws.attack(&bytes, Instant::now(), PROMPT).await;
        assert_eq!(
            ending.receipts,
            ["at-limit", "bye"],
            "{}",
            ending.describe()
        );
        assert_eq!(ending.error, None);
        self.report(
            &format!("WebSocket message at the limit ({WS_MESSAGE_LIMIT} B)"),
            &format!("served (RECEIPT), DISCONNECT: {}", ending.describe()),
            Some(ending.after),
        );

        let mut ws = WsClient::connect(self.addr).await;
        let bytes = ws_frame(BINARY, &padded(WS_MESSAGE_LIMIT + 1, "over-limit"));
        let ending = ws.attack(&bytes, Instant::now(), PROMPT).await;
        assert!(ending.receipts.is_empty(), "{}", ending.describe());
        assert!(
            ending.close == Some(1009) || ending.reset,
            "{}",
            ending.describe()
        );
        self.report(
            "WebSocket message 1 byte over the limit",
            &ending.describe(),
            Some(ending.after),
        );

        let mut ws = WsClient::connect(self.addr).await;
        let ending = ws
            .attack(&ws_header(BINARY, i64::MAX as u64), Instant::now(), PROMPT)
            .await;
        assert!(
            ending.close == Some(1009) || ending.reset,
            "{}",
            ending.describe()
        );
        self.report(
            "WebSocket frame header of 2^63-1 bytes",
            &ending.describe(),
            Some(ending.after),
        );
    }

    /// Garbage instead of WebSocket framing after the upgrade, and invalid
    /// UTF-8 in a text message: a protocol close at once.
    async fn websocket_garbage(&mut self) {
        let mut ws = WsClient::raw(self.addr, upgrade_request(self.addr).as_bytes()).await;
        let head = ws.http_head().await.expect("closed during the upgrade");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let garbage = b"\x00\x00 this is not WebSocket framing\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        let ending = ws.attack(garbage, Instant::now(), PROMPT).await;
        assert!(
            ending.close == Some(1002) || ending.reset,
            "{}",
            ending.describe()
        );
        self.report(
            "garbage after the WebSocket upgrade",
            &ending.describe(),
            Some(ending.after),
        );

        let mut ws = WsClient::connect(self.addr).await;
        let text = ws_frame(TEXT, b"SEND\ndestination:/topic/ws\n\nbad \xff\xfe\0");
        let ending = ws.attack(&text, Instant::now(), PROMPT).await;
        // RFC 6455 names 1007 for this; stompkit-ws closes with 1002 (protocol error).
        let closed = matches!(ending.close, Some(1002 | 1007)) || ending.reset;
        assert!(closed, "{}", ending.describe());
        self.report(
            "invalid UTF-8 in a WebSocket text message",
            &ending.describe(),
            Some(ending.after),
        );
    }

    /// The upgrade request that never completes, a 1 MiB request head, and a
    /// WebSocket that never sends CONNECT.
    async fn websocket_handshake(&mut self) {
        let login = Duration::from_millis(LOGIN_TIMEOUT_MS);
        let start = Instant::now();
        let mut ws = WsClient::raw(self.addr, b"GET /ws HTTP/1.1\r\nHost: x\r\n").await;
        let ending = ws.attack(b"", start, login + PROMPT).await;
        assert!(
            ending.after >= login.mul_f64(0.9),
            "closed before the login timeout"
        );
        self.report(
            "WebSocket upgrade that never completes",
            &ending.describe(),
            Some(ending.after),
        );

        let mut head = b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        head.extend(std::iter::repeat_n(b'p', 1024 * 1024));
        head.extend_from_slice(b"\r\n\r\n");
        let mut ws = WsClient::raw(self.addr, b"").await;
        let ending = ws.attack(&head, Instant::now(), PROMPT).await;
        let status = ending.http.as_deref().unwrap_or("");
        assert!(
            status.starts_with("HTTP/1.1 431") || ending.reset,
            "{}",
            ending.describe()
        );
        self.report(
            "1 MiB HTTP request head",
            &ending.describe(),
            Some(ending.after),
        );

        let start = Instant::now();
        let mut ws = WsClient::raw(self.addr, upgrade_request(self.addr).as_bytes()).await;
        let head = ws.http_head().await.expect("closed during the upgrade");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let ending = ws.attack(b"", start, login + PROMPT).await;
        assert_eq!(
            ending.error.as_deref(),
            Some("login timeout: no CONNECT frame received"),
            "{}",
            ending.describe()
        );
        self.report(
            "WebSocket, CONNECT never comes",
            &ending.describe(),
            Some(ending.after),
        );
    }

    /// 2,000 connections opened and dropped in a loop, in seven flavours
    /// (silent, CONNECT, CONNECT + SUBSCRIBE, half a frame, a WebSocket upgrade,
    /// half an HTTP request, CONNECT + reset); then the broker's gauges must
    /// come back to the good pair's.
    async fn churn(&mut self) {
        const CONNECTIONS: u64 = 2000;
        let total_before = self
            .broker
            .metric("stompkit_connections_accepted_total")
            .await;
        let start = Instant::now();
        for i in 0..CONNECTIONS {
            let mut stream = TcpStream::connect(self.addr).await.unwrap();
            let connect = b"CONNECT\naccept-version:1.2\nhost:h\nheart-beat:0,0\n\n\0";
            let _ = match i % 7 {
                0 => Ok(()),
                1 => stream.write_all(connect).await,
                2 => {
                    let mut bytes = connect.to_vec();
                    bytes.extend_from_slice(
                        format!("SUBSCRIBE\nid:{i}\ndestination:/topic/churn.{i}\n\n\0").as_bytes(),
                    );
                    stream.write_all(&bytes).await
                }
                3 => stream.write_all(b"CONNECT\naccept-version:1.2\nho").await,
                4 => {
                    stream
                        .write_all(upgrade_request(self.addr).as_bytes())
                        .await
                }
                5 => stream.write_all(b"GET /ws HTTP/1.1\r\nHost: ").await,
                _ => {
                    let _ = stream.write_all(connect).await;
                    stream.set_zero_linger()
                }
            };
            drop(stream);
        }
        let looped = start.elapsed();
        let settle = Duration::from_secs(5);
        let conns = self
            .broker
            .await_metric("stompkit_connections", 2, settle)
            .await;
        let subs = self
            .broker
            .await_metric("stompkit_subscriptions", 1, settle)
            .await;
        let accepted = self
            .broker
            .metric("stompkit_connections_accepted_total")
            .await
            - total_before;
        assert!(
            accepted >= CONNECTIONS,
            "only {accepted} connections accepted"
        );
        self.report(
            "2,000 connections opened and dropped",
            &format!(
                "looped in {} ms; gauges back to the good pair's 2 conns / 1 sub",
                looped.as_millis()
            ),
            Some(conns.max(subs)),
        );
    }
}

/// The value of a metric without labels, read from the metrics endpoint at `addr`.
async fn read_metric(addr: SocketAddr, name: &str) -> u64 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
        .parse()
        .unwrap()
}

/// `CONNECT` + `headers` lines + the blank line and NUL.
fn connect_with(headers: &[u8]) -> Vec<u8> {
    let mut frame = b"CONNECT\naccept-version:1.2\nhost:localhost\n".to_vec();
    frame.extend_from_slice(headers);
    frame.extend_from_slice(b"\n\0");
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_survives_hostile_clients() {
    let run = Instant::now();
    let broker = BrokerProcess::start();
    let rss = Rss::sample(broker.pid());
    let addr = broker.stomp;
    let good = GoodPair::start(addr, run).await;
    let mut suite = Suite { broker, rss, addr };
    suite.report("(idle, good pair running)", "-", None);

    // Frames the parser refuses.
    let mut headers = Vec::new();
    for i in 0..100_000 {
        headers.extend_from_slice(format!("h{i}:v\n").as_bytes());
    }
    suite
        .refused(
            "100,000 headers",
            false,
            &connect_with(&headers),
            "too many headers",
            false,
        )
        .await;
    let mut line = b"x:".to_vec();
    line.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    line.push(b'\n');
    suite
        .refused(
            "one 10 MiB header line",
            false,
            &connect_with(&line),
            "header line too long",
            false,
        )
        .await;
    let send = |headers: &str, body: &[u8]| {
        let mut frame = format!("SEND\ndestination:/topic/x\n{headers}\n").into_bytes();
        frame.extend_from_slice(body);
        frame
    };
    suite
        .refused(
            "content-length 2^64-1",
            true,
            &send("content-length:18446744073709551615\n", b"abc"),
            "body too large",
            true,
        )
        .await;
    suite
        .refused(
            "content-length 2^64",
            true,
            &send("content-length:18446744073709551616\n", b"abc"),
            "invalid content-length",
            true,
        )
        .await;
    suite
        .refused(
            "content-length -1",
            true,
            &send("content-length:-1\n", b"abc"),
            "invalid content-length",
            true,
        )
        .await;
    suite
        .refused(
            "body without its NUL",
            true,
            &send("content-length:5\n", b"helloSEND\n"),
            "frame not terminated by NUL",
            true,
        )
        .await;
    suite
        .refused(
            "body over max_body, no content-length",
            true,
            &send("", &vec![b'b'; 1024 * 1024]),
            "body too large",
            false,
        )
        .await;
    suite
        .refused(
            "invalid escape \\t",
            true,
            &send("k:a\\tb\n", b"\0"),
            "invalid header escape",
            true,
        )
        .await;
    suite
        .refused(
            "invalid escape: trailing backslash",
            true,
            &send("k:a\\\n", b"\0"),
            "invalid header escape",
            true,
        )
        .await;
    suite
        .refused(
            "invalid UTF-8 in a header value",
            true,
            b"SEND\ndestination:/topic/x\nk:\xff\xfe\n\n\0",
            "invalid UTF-8",
            true,
        )
        .await;
    suite
        .refused(
            "invalid UTF-8 in CONNECT's host",
            false,
            b"CONNECT\naccept-version:1.2\nhost:\xc3\x28\n\n\0",
            "invalid UTF-8",
            true,
        )
        .await;

    // Frames the session refuses.
    let mut subscribes = Vec::new();
    for i in 0..10_000 {
        subscribes.extend_from_slice(
            format!("SUBSCRIBE\nid:{i}\ndestination:/topic/many.{i}\n\n\0").as_bytes(),
        );
    }
    suite
        .refused(
            "10,000 SUBSCRIBEs on one connection",
            true,
            &subscribes,
            "too many subscriptions",
            false,
        )
        .await;

    // Timers.
    suite
        .timed_out(
            "CONNECT never comes",
            false,
            b"",
            None,
            LOGIN_TIMEOUT_MS,
            "login timeout: no CONNECT frame received",
        )
        .await;
    suite
        .timed_out(
            "heart-beats, CONNECT never comes",
            false,
            &[b'\n'; 100],
            Some(Duration::from_millis(20)),
            LOGIN_TIMEOUT_MS,
            "login timeout: no CONNECT frame received",
        )
        .await;
    suite
        .timed_out(
            "unterminated frame, then silence",
            true,
            b"SEND\ndestination:/topic/x\ncontent-length:10\n\nabc",
            None,
            FRAME_TIMEOUT_MS,
            "frame not completed in time",
        )
        .await;
    suite
        .timed_out(
            "slowloris: a frame at 1 byte / 20 ms",
            true,
            &send(&"k:v\n".repeat(50), b"\0"),
            Some(Duration::from_millis(20)),
            FRAME_TIMEOUT_MS,
            "frame not completed in time",
        )
        .await;

    // Held messages, measured on a heap the volume attacks have not grown yet.
    suite.one_read_per_queued_message().await;

    // WebSocket, on the same port.
    suite.websocket_size_limit().await;
    suite.websocket_garbage().await;
    suite.websocket_handshake().await;

    // Volume.
    suite.never_reading_subscriber().await;
    suite.unread_receipts().await;
    suite.header_heavy_queue().await;
    suite.header_heavy_transaction().await;
    suite.churn().await;

    // The good pair lost nothing and the broker holds only its state.
    assert_eq!(suite.broker.metric("stompkit_connections").await, 2);
    assert_eq!(suite.broker.metric("stompkit_subscriptions").await, 1);
    let good = good.finish().await;
    assert_eq!(
        good.received, good.sent,
        "the good subscriber missed messages"
    );
    suite.report(
        "good pair",
        &format!(
            "{} messages sent, {} received in order, max latency {} ms",
            good.sent,
            good.received,
            good.max_latency.as_millis()
        ),
        None,
    );
    assert!(
        good.max_latency < Duration::from_secs(10),
        "the good pair stalled"
    );
    let log = suite.broker.log_text();
    assert!(!log.contains("panicked"), "the broker panicked:\n{log}");
    suite.report(
        "whole run",
        &format!(
            "{:.1} s; RSS peak {:.1} MiB, cap {RSS_CAP_MIB} MiB",
            run.elapsed().as_secs_f64(),
            suite.rss.peak_mib()
        ),
        None,
    );
}
