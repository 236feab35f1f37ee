//! What the durable tests share: the broker binary started on `127.0.0.1:0` in a
//! scratch directory of its own (port read from its `listening` line, stderr
//! kept in a log file, SIGKILLed to crash it), a raw STOMP 1.2 client over TCP
//! with full control of receipts and headers, a pipelined sender that crashes
//! the broker after so many receipts, and the checks every crash test makes.

use bytes::{Bytes, BytesMut};
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use stompkit_frame::{Command, Frame, Version};
use stompkit_wire::{Encoder, Event, Parser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Semaphore;

/// The broker binary under test.
pub const BROKER: &str = env!("CARGO_BIN_EXE_stompkit-broker");
/// How long anything may take before a test gives up (a debug build on a loaded
/// 2-core CI machine, fsyncs included).
pub const WAIT: Duration = Duration::from_secs(30);
const LISTENING: &str = "stompkit-broker listening on stomp://";
const METRICS: &str = "stompkit-broker metrics on http://";
const ADMIN: &str = "stompkit-broker admin on ";

// ------------------------------------------------------------------ scratch

/// A scratch directory under the target dir (`target/tmp/durable-NAME-xxxx`),
/// removed on drop: the data directory is its `data/`, each broker's stderr
/// goes to `broker-N.log` beside it (never inside the data directory).
pub struct Scratch {
    root: tempfile::TempDir,
    starts: AtomicUsize,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let root = tempfile::Builder::new()
            .prefix(&format!("durable-{name}-"))
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        Scratch {
            root,
            starts: AtomicUsize::new(0),
        }
    }

    /// The scratch directory itself.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The broker's data directory (`--data-dir`).
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The segment files (`data/log/<16 hex>.seg`), in write order.
    pub fn segments(&self) -> Vec<PathBuf> {
        segments(&self.data())
    }

    /// A launch with no store option at all (`--data-dir`, `--in-memory`),
    /// logging to the next `broker-N.log`.
    pub fn bare(&self) -> Launch {
        let n = self.starts.fetch_add(1, Ordering::Relaxed);
        Launch::new(self.root.path().join(format!("broker-{n}.log")))
    }

    /// A launch keeping nothing on disk (`--in-memory`).
    pub fn in_memory(&self) -> Launch {
        self.bare().arg("--in-memory")
    }

    /// A launch storing in [`Scratch::data`].
    pub fn launch(&self) -> Launch {
        self.bare().arg("--data-dir").arg(self.data())
    }

    /// [`Scratch::launch`] started.
    pub fn start(&self) -> BrokerProcess {
        self.launch().start()
    }
}

/// The segment files in `dir/log/`, sorted by name (write order), after
/// checking that every file there is named by 16 hexadecimal digits and `.seg`.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .unwrap_or_else(|e| panic!("{}/log: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    found.sort();
    for path in &found {
        let name = path.file_name().unwrap().to_string_lossy();
        let stem = name.strip_suffix(".seg").unwrap_or("");
        assert!(
            stem.len() == 16 && stem.bytes().all(|b| b.is_ascii_hexdigit()),
            "{} is not named <16 hex digits>.seg",
            path.display()
        );
    }
    found
}

// ------------------------------------------------------------------ process

/// How to start the broker binary: `--listen 127.0.0.1:0 --log-level warn`,
/// no `STOMPKIT_*` variable inherited, stdin closed, stderr to a log file.
pub struct Launch {
    command: Process,
    log: PathBuf,
    log_level: &'static str,
    metrics: bool,
    admin: bool,
    startup: Duration,
}

impl Launch {
    fn new(log: PathBuf) -> Launch {
        let mut command = Process::new(BROKER);
        command.args(["--listen", "127.0.0.1:0"]);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("STOMPKIT_") {
                command.env_remove(key);
            }
        }
        command.env_remove("RUST_LOG");
        Launch {
            command,
            log,
            log_level: "warn",
            metrics: false,
            admin: false,
            startup: WAIT,
        }
    }

    /// How long the broker may take to start listening (default [`WAIT`];
    /// recovering a big store takes longer).
    pub fn startup_timeout(mut self, timeout: Duration) -> Launch {
        self.startup = timeout;
        self
    }

    /// `--log-level` (default `warn`).
    pub fn log_level(mut self, level: &'static str) -> Launch {
        self.log_level = level;
        self
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Launch {
        self.command.arg(arg);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Launch {
        self.command.env(key, value);
        self
    }

    /// Runs the broker in `dir` (where `./stompkit-data` is).
    pub fn cwd(mut self, dir: &Path) -> Launch {
        self.command.current_dir(dir);
        self
    }

    /// Also serves `/metrics` on an ephemeral port ([`BrokerProcess::metric`]).
    pub fn metrics(mut self) -> Launch {
        self.metrics = true;
        self.arg("--metrics").arg("127.0.0.1:0")
    }

    /// Also serves the admin listener on `addr` (`--admin`; e.g.
    /// `127.0.0.1:0`): its URL is [`BrokerProcess::admin`].
    pub fn admin(mut self, addr: &str) -> Launch {
        self.admin = true;
        self.arg("--admin").arg(addr)
    }

    /// Starts the broker with `RLIMIT_FSIZE` at `bytes`: a write past that offset
    /// of any file fails with EFBIG (the broker ignores SIGXFSZ).
    #[allow(unsafe_code)]
    pub fn file_size_limit(mut self, bytes: u64) -> Launch {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: the closure runs in the child between fork and exec and only
        // makes the setrlimit system call, which is async-signal-safe; it
        // allocates nothing and touches no lock.
        unsafe {
            self.command
                .pre_exec(move || rlimit::setrlimit(rlimit::Resource::FSIZE, bytes, bytes));
        }
        self
    }

    fn spawn(mut self) -> (Child, PathBuf) {
        let log = std::fs::File::create(&self.log).unwrap();
        let child = self
            .command
            .args(["--log-level", self.log_level])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        (child, self.log)
    }

    /// Starts the broker and waits for its `listening` (and `metrics`) line;
    /// panics, showing its log, when it exits or stays silent first.
    pub fn start(self) -> BrokerProcess {
        let want_metrics = self.metrics;
        let want_admin = self.admin;
        let startup = self.startup;
        let (mut child, log) = self.spawn();
        let stdout = child.stdout.take().unwrap();
        let (lines, got) = mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end, so the broker never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        let mut process = BrokerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics: None,
            admin: None,
            log,
        };
        let deadline = Instant::now() + startup;
        let (mut stomp, mut metrics, mut admin) = (None, None, None);
        while stomp.is_none()
            || (want_metrics && metrics.is_none())
            || (want_admin && admin.is_none())
        {
            match got.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let line = line.trim();
                    if let Some(rest) = line.strip_prefix(LISTENING) {
                        stomp.get_or_insert(rest.parse::<SocketAddr>().unwrap());
                    } else if let Some(rest) = line.strip_prefix(METRICS) {
                        let addr = rest.trim_end_matches("/metrics");
                        metrics = Some(addr.parse::<SocketAddr>().unwrap());
                    } else if let Some(url) = line.strip_prefix(ADMIN) {
                        admin = Some(url.to_owned());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = process.child.wait().unwrap();
                    panic!(
                        "the broker exited ({status}) before listening; its log:\n{}",
                        process.log()
                    );
                }
            }
            if let Some(status) = process.child.try_wait().unwrap() {
                panic!(
                    "the broker exited ({status}) before listening; its log:\n{}",
                    process.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no `listening` line within {startup:?}; log:\n{}",
                process.log()
            );
        }
        process.addr = stomp.unwrap();
        process.metrics = metrics;
        process.admin = admin;
        process
    }

    /// Runs a broker that must not start: waits for it to exit and returns its
    /// status and stderr; panics (after killing it) if it is still running
    /// after [`WAIT`].
    pub fn run_to_exit(self) -> (ExitStatus, String) {
        let (mut child, log) = self.spawn();
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the broker is still running after {WAIT:?}; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, std::fs::read_to_string(&log).unwrap())
    }
}

/// The broker binary, running; SIGKILLed on drop if still alive.
pub struct BrokerProcess {
    child: Child,
    /// Its TCP STOMP address.
    pub addr: SocketAddr,
    /// Its `/metrics` address, when started with [`Launch::metrics`].
    pub metrics: Option<SocketAddr>,
    /// Its admin URL (`http://IP:PORT/`), when started with [`Launch::admin`].
    pub admin: Option<String>,
    log: PathBuf,
}

impl BrokerProcess {
    /// A crash: SIGKILL (what `Child::kill` sends on Unix), then reaps it.
    /// Returns its log.
    pub fn crash(mut self) -> String {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "the broker was meant to die of SIGKILL ({status}); log:\n{}",
            self.log()
        );
        self.log()
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends it SIGTERM (a graceful shutdown), with the `kill` utility.
    pub fn terminate(&self) {
        let status = Process::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM: {status}");
    }

    /// Waits at most `within` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics (with its log) when the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the broker exited ({status}); its log:\n{}", self.log());
        }
    }

    /// The value of the metric line `name <value>` on `/metrics` (None when
    /// there is no such line); `name` includes its labels as written
    /// (`stompkit_errors_total{reason="protocol"}`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics_text().lines().find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().unwrap())
        })
    }

    /// The sum of every sample of the family `name`, whatever its labels.
    pub fn metric_sum(&self, name: &str) -> f64 {
        self.metrics_text()
            .lines()
            .filter_map(|line| {
                let (key, value) = line.split_once(' ')?;
                let labelled = key.strip_prefix(name)?;
                (labelled.is_empty() || labelled.starts_with('{'))
                    .then(|| value.trim().parse::<f64>().unwrap())
            })
            .sum()
    }

    /// The body of `GET /metrics`.
    pub fn metrics_text(&self) -> String {
        let addr = self.metrics.expect("started without --metrics");
        let mut stream = StdTcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        match text.split_once("\r\n\r\n") {
            Some((_, body)) => body.to_owned(),
            None => text,
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ frames

/// A frame of `command` with these headers and body.
pub fn frame(command: Command, headers: &[(&str, &str)], body: &[u8]) -> Frame {
    let mut frame = Frame::new(command);
    for (name, value) in headers {
        frame = frame.header(name, value);
    }
    frame.with_body(Bytes::copy_from_slice(body))
}

/// SEND of `body` to `destination` with `persistent:true` and `extra` headers.
pub fn persistent(destination: &str, body: &str, extra: &[(&str, &str)]) -> Frame {
    let mut headers = vec![("destination", destination), ("persistent", "true")];
    headers.extend_from_slice(extra);
    frame(Command::Send, &headers, body.as_bytes())
}

/// SEND of `body` to `destination` without `persistent`, plus `extra` headers.
pub fn transient(destination: &str, body: &str, extra: &[(&str, &str)]) -> Frame {
    let mut headers = vec![("destination", destination)];
    headers.extend_from_slice(extra);
    frame(Command::Send, &headers, body.as_bytes())
}

/// A frame's body as text.
pub fn body(frame: &Frame) -> String {
    String::from_utf8_lossy(frame.body()).into_owned()
}

/// The bodies of `frames`.
pub fn bodies(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(body).collect()
}

/// Whether a MESSAGE says `redelivered:true`.
pub fn redelivered(frame: &Frame) -> bool {
    frame.get("redelivered") == Some("true")
}

/// A unique-enough marker body.
pub fn marker() -> String {
    format!("marker-{:016x}", random_u64())
}

/// A random number (std's randomly keyed hasher; no rand crate needed).
pub fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.finish()
}

/// A "random-ish" number in `lo..hi`, printed so that a failing run says which.
pub fn random_in(what: &str, lo: usize, hi: usize) -> usize {
    let n = lo + (random_u64() % (hi - lo) as u64) as usize;
    println!("{what}: {n}");
    n
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

// ------------------------------------------------------------------ client

/// The reading half of a raw STOMP 1.2 connection.
pub struct Reader {
    half: OwnedReadHalf,
    parser: Parser,
    buf: BytesMut,
}

impl Reader {
    /// The next frame (heart-beats skipped); None at EOF or a reset; panics
    /// after `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Frame> {
        tokio::time::timeout(within, async {
            loop {
                match self.parser.parse(&mut self.buf).unwrap() {
                    Some(Event::Frame(f)) => return Some(f),
                    Some(Event::HeartBeat) => continue,
                    None => {}
                }
                if self.half.read_buf(&mut self.buf).await.unwrap_or(0) == 0 {
                    return None;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no frame within {within:?}"))
    }

    /// The next frame; panics at EOF or after [`WAIT`].
    pub async fn next(&mut self) -> Frame {
        self.next_within(WAIT)
            .await
            .expect("the connection closed before a frame arrived")
    }
}

/// The writing half of a raw STOMP 1.2 connection: frames are encoded into a
/// buffer ([`Writer::push`]) and written by [`Writer::flush`].
pub struct Writer {
    half: OwnedWriteHalf,
    encoder: Encoder,
    out: Vec<u8>,
}

impl Writer {
    pub fn push(&mut self, frame: &Frame) {
        self.encoder.encode(frame, &mut self.out).unwrap();
    }

    /// Appends bytes already encoded (whole frames).
    pub fn push_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Bytes pushed and not yet written.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    pub async fn try_flush(&mut self) -> std::io::Result<()> {
        let result = self.half.write_all(&self.out).await;
        self.out.clear();
        result
    }

    pub async fn flush(&mut self) {
        self.try_flush().await.unwrap();
    }

    pub async fn send(&mut self, frame: &Frame) {
        self.push(frame);
        self.flush().await;
    }
}

/// A raw STOMP 1.2 connection with receipts numbered `r-1`, `r-2`, …
pub struct Conn {
    pub r: Reader,
    pub w: Writer,
    receipts: u64,
}

impl Conn {
    /// Opens a connection and sends a 1.2 CONNECT with `headers`; returns it
    /// and the answer (CONNECTED or ERROR).
    pub async fn open(addr: SocketAddr, headers: &[(&str, &str)]) -> (Conn, Frame) {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (read, write) = stream.into_split();
        let mut conn = Conn {
            r: Reader {
                half: read,
                parser: Parser::new(),
                buf: BytesMut::new(),
            },
            w: Writer {
                half: write,
                encoder: Encoder::new(Some(Version::V1_2)),
                out: Vec::new(),
            },
            receipts: 0,
        };
        let mut connect = vec![("accept-version", "1.2"), ("host", "localhost")];
        connect.extend_from_slice(headers);
        conn.w.send(&frame(Command::Connect, &connect, b"")).await;
        let answer = conn.r.next().await;
        if answer.command == Command::Connected {
            conn.r.parser.set_version(Version::V1_2);
        }
        (conn, answer)
    }

    /// A connection with these CONNECT headers (e.g. `client-id`, `login`).
    pub async fn connect_with(addr: SocketAddr, headers: &[(&str, &str)]) -> Conn {
        let (conn, answer) = Conn::open(addr, headers).await;
        assert_eq!(answer.command, Command::Connected, "{answer:?}");
        conn
    }

    /// An anonymous connection.
    pub async fn connect(addr: SocketAddr) -> Conn {
        Conn::connect_with(addr, &[]).await
    }

    /// A fresh receipt id.
    pub fn next_receipt(&mut self) -> String {
        self.receipts += 1;
        format!("r-{}", self.receipts)
    }

    /// Sends `frame` with a fresh `receipt` and waits for that RECEIPT;
    /// returns the frames (MESSAGEs) that arrived before it. Panics on ERROR.
    pub async fn request(&mut self, frame: Frame) -> Vec<Frame> {
        let receipt = self.next_receipt();
        self.w.send(&frame.with_receipt(&receipt)).await;
        let mut before = Vec::new();
        loop {
            let f = self.r.next().await;
            match f.command {
                Command::Receipt if f.receipt_id() == Some(receipt.as_str()) => return before,
                Command::Error => panic!("ERROR instead of RECEIPT {receipt}: {f:?}"),
                _ => before.push(f),
            }
        }
    }

    /// Sends `frame` with a fresh `receipt` and returns the first RECEIPT or
    /// ERROR frame that answers (MESSAGEs in between are returned too).
    pub async fn request_or_error(&mut self, frame: Frame) -> (Frame, Vec<Frame>) {
        let receipt = self.next_receipt();
        self.w.send(&frame.with_receipt(&receipt)).await;
        let mut before = Vec::new();
        loop {
            let f = self.r.next().await;
            match f.command {
                Command::Receipt | Command::Error => return (f, before),
                _ => before.push(f),
            }
        }
    }

    /// SUBSCRIBE `id` to `destination` with `ack` and `extra` headers, with a
    /// receipt; returns the MESSAGEs that arrived before the RECEIPT.
    pub async fn subscribe(
        &mut self,
        destination: &str,
        id: &str,
        ack: &str,
        extra: &[(&str, &str)],
    ) -> Vec<Frame> {
        let mut headers = vec![("destination", destination), ("id", id), ("ack", ack)];
        headers.extend_from_slice(extra);
        self.request(frame(Command::Subscribe, &headers, b"")).await
    }

    /// UNSUBSCRIBE `id` with `extra` headers, with a receipt.
    pub async fn unsubscribe(&mut self, id: &str, extra: &[(&str, &str)]) -> Vec<Frame> {
        let mut headers = vec![("id", id)];
        headers.extend_from_slice(extra);
        self.request(frame(Command::Unsubscribe, &headers, b""))
            .await
    }

    /// ACK (or NACK) of a MESSAGE's `ack` header, with `extra` headers and a
    /// receipt; returns the MESSAGEs that arrived before the RECEIPT (e.g. the
    /// redelivery a NACK caused).
    pub async fn ack(&mut self, message: &Frame, nack: bool, extra: &[(&str, &str)]) -> Vec<Frame> {
        let id = message.get("ack").expect("a MESSAGE with an ack header");
        let mut headers = vec![("id", id)];
        headers.extend_from_slice(extra);
        let command = if nack { Command::Nack } else { Command::Ack };
        self.request(frame(command, &headers, b"")).await
    }

    /// The next MESSAGE: the first of `early` if any (what arrived before a
    /// RECEIPT), else one read now. Panics when `early` holds more than one.
    pub async fn next_message(&mut self, mut early: Vec<Frame>) -> Frame {
        assert!(early.len() <= 1, "{early:?}");
        match early.pop() {
            Some(f) => f,
            None => self.messages(1).await.pop().unwrap(),
        }
    }

    /// Reads MESSAGEs until one has `body`; returns those before it (in
    /// `acc`'s order after what `acc` already holds). Panics on ERROR.
    pub async fn until_body(&mut self, mut acc: Vec<Frame>, wanted: &str) -> Vec<Frame> {
        if let Some(at) = acc.iter().position(|f| f.body() == wanted.as_bytes()) {
            let rest = acc.split_off(at);
            assert_eq!(rest.len(), 1, "frames after {wanted:?}: {rest:?}");
            return acc;
        }
        loop {
            let f = self.r.next().await;
            assert_eq!(f.command, Command::Message, "{f:?}");
            if f.body() == wanted.as_bytes() {
                return acc;
            }
            acc.push(f);
        }
    }

    /// Reads `n` MESSAGEs (panics on anything else).
    pub async fn messages(&mut self, n: usize) -> Vec<Frame> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            let f = self.r.next().await;
            assert_eq!(f.command, Command::Message, "{f:?}");
            got.push(f);
        }
        got
    }

    /// Asserts that nothing arrives for `quiet` (after a RECEIPT proved that
    /// what had to arrive did).
    pub async fn assert_quiet(&mut self, quiet: Duration) {
        if let Ok(f) = tokio::time::timeout(quiet, self.r.next_within(WAIT)).await {
            panic!("unexpected {f:?}");
        }
    }

    /// DISCONNECT with a receipt.
    pub async fn disconnect(mut self) {
        let before = self.request(Frame::new(Command::Disconnect)).await;
        assert!(
            before.iter().all(|f| f.command == Command::Message),
            "{before:?}"
        );
    }
}

/// Everything the queue `destination` holds, in delivery order: a new
/// connection sends a (non-persistent) marker to it and subscribes with
/// `ack:auto`, reading until the marker comes back.
pub async fn drain(addr: SocketAddr, destination: &str) -> Vec<Frame> {
    let mut conn = Conn::connect(addr).await;
    let end = marker();
    conn.request(transient(destination, &end, &[])).await;
    let before = conn.subscribe(destination, "drain", "auto", &[]).await;
    let got = conn.until_body(before, &end).await;
    conn.disconnect().await;
    got
}

/// The number in a body `<prefix><n>`; panics otherwise.
pub fn index(body: &str, prefix: &str) -> usize {
    body.strip_prefix(prefix)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected body {body:?} (wanted {prefix}<n>)"))
}

/// The checks of every crash test, on the indices (`<prefix><n>`) that came
/// back: strictly increasing (publish order, no duplicate), all among the
/// `sent` first, and every one in `must` there. Returns them.
pub fn check_recovered(
    got: &[Frame],
    prefix: &str,
    sent: usize,
    must: &BTreeSet<usize>,
) -> Vec<usize> {
    let indices: Vec<usize> = got.iter().map(|f| index(&body(f), prefix)).collect();
    for pair in indices.windows(2) {
        assert!(
            pair[0] < pair[1],
            "out of order or duplicated: {} then {} (all: {indices:?})",
            pair[0],
            pair[1]
        );
    }
    if let Some(&last) = indices.last() {
        assert!(last < sent, "{prefix}{last} was never sent");
    }
    let present: BTreeSet<usize> = indices.iter().copied().collect();
    let lost: Vec<usize> = must.difference(&present).copied().collect();
    assert!(
        lost.is_empty(),
        "{} receipted message(s) lost, first {:?}; {} came back",
        lost.len(),
        &lost[..lost.len().min(10)],
        indices.len()
    );
    indices
}

// ------------------------------------------------------------------ pipeline

/// What a pipelined run saw before it stopped.
pub struct Piped {
    /// Receipt ids in arrival order.
    pub receipts: Vec<String>,
    /// How many batches had been handed to the socket (all of their frames).
    pub written: usize,
}

/// Sends `batches` (each ending in a frame with a `receipt`) over `conn`,
/// keeping at most `window` of them unanswered, until `stop_after` receipts
/// arrived; then runs `stop` at once (while more batches are in flight: the
/// crash) and returns. Any frame other than a RECEIPT panics.
pub async fn pipeline(
    conn: Conn,
    batches: Vec<Vec<Frame>>,
    window: usize,
    stop_after: usize,
    stop: impl FnOnce(),
) -> Piped {
    assert!(stop_after <= batches.len());
    let Conn { mut r, mut w, .. } = conn;
    let permits = Arc::new(Semaphore::new(window));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn({
        let permits = Arc::clone(&permits);
        let written = Arc::clone(&written);
        async move {
            let mut pushed = 0;
            for batch in batches {
                let permit = match permits.try_acquire() {
                    Ok(permit) => permit,
                    Err(_) => {
                        if w.try_flush().await.is_err() {
                            return;
                        }
                        written.store(pushed, Ordering::SeqCst);
                        permits.acquire().await.unwrap()
                    }
                };
                permit.forget();
                for f in &batch {
                    w.push(f);
                }
                pushed += 1;
                if w.pending() > 64 * 1024 {
                    if w.try_flush().await.is_err() {
                        return;
                    }
                    written.store(pushed, Ordering::SeqCst);
                }
            }
            if w.try_flush().await.is_ok() {
                written.store(pushed, Ordering::SeqCst);
            }
            // Keep the socket open until the reader is done.
            std::future::pending::<()>().await;
        }
    });
    let mut receipts = Vec::with_capacity(stop_after);
    while receipts.len() < stop_after {
        let f = r.next().await;
        assert_eq!(f.command, Command::Receipt, "{f:?}");
        receipts.push(f.receipt_id().unwrap().to_owned());
        permits.add_permits(1);
    }
    stop();
    writer.abort();
    let _ = writer.await;
    Piped {
        receipts,
        written: written.load(Ordering::SeqCst),
    }
}

/// Sends `frames` pipelined, each with receipt `<receipt_prefix><i>`, and waits
/// for every receipt.
pub async fn send_all(conn: Conn, frames: Vec<Frame>, receipt_prefix: &str) {
    let n = frames.len();
    let batches = frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| vec![f.with_receipt(&format!("{receipt_prefix}{i}"))])
        .collect();
    pipeline(conn, batches, 256, n, || {}).await;
}

/// The indices `i` of receipt ids `<prefix><i>`.
pub fn receipted(piped: &Piped, prefix: &str) -> BTreeSet<usize> {
    piped.receipts.iter().map(|r| index(r, prefix)).collect()
}

// ------------------------------------------------------------------ records

/// CRC-32 (IEEE, reflected 0xEDB88320) of `bytes`.
pub fn crc32_ieee(bytes: &[u8]) -> u32 {
    crc32_with(0xEDB8_8320, bytes)
}

/// CRC-32C (Castagnoli, reflected 0x82F63B78) of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32_with(0x82F6_3B78, bytes)
}

fn crc32_with(poly: u32, bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// The last record of a segment, `[u32 LE len][u32 LE crc32][payload]` ending
/// exactly at the end of the file: `(start, payload length)`. Found without
/// knowing the segment header's size: the first offset whose length reaches
/// the end of the file and whose checksum (CRC-32 or CRC-32C of the payload)
/// matches. (Inside the real record's payload, 8 zero bytes at its end look
/// like an empty record with a valid checksum, hence the first.)
pub fn last_record(segment: &[u8]) -> (usize, usize) {
    let end = segment.len();
    let found: Vec<(usize, usize)> = (0..end.saturating_sub(7))
        .filter_map(|start| {
            let len = le32(segment, start) as usize;
            if start + 8 + len != end {
                return None;
            }
            let payload = &segment[start + 8..];
            let crc = le32(segment, start + 4);
            (crc == crc32_ieee(payload) || crc == crc32c(payload)).then_some((start, len))
        })
        .collect();
    *found
        .first()
        .unwrap_or_else(|| panic!("no [len][crc32][payload] record ends the segment ({end} bytes)"))
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `text` has a line mentioning `name` and the number `n` (as a whole
/// number, not part of a longer one).
pub fn line_with(text: &str, name: &str, n: u64) -> bool {
    let digits = n.to_string();
    text.lines().any(|line| {
        line.contains(name)
            && line.match_indices(&digits).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + digits.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_digit())
                    && !after.is_some_and(|c| c.is_ascii_digit())
            })
    })
}

// ------------------------------------------------------------------ durable subscriptions

/// The two conventions for a durable topic subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// CONNECT with `client-id`, SUBSCRIBE with `activemq.subscriptionName`.
    ActiveMq,
    /// SUBSCRIBE with `durable:true`, `auto-delete:false` and an `id`.
    RabbitMq,
}

pub const CONVENTIONS: [Convention; 2] = [Convention::ActiveMq, Convention::RabbitMq];

/// One durable subscription's identity on `topic`, in `convention`.
pub struct Durable {
    pub convention: Convention,
    pub topic: String,
    pub client_id: String,
    pub name: String,
    pub id: String,
}

impl Durable {
    /// A durable subscription to `/topic/<tag>-<convention>`.
    pub fn new(convention: Convention, tag: &str) -> Durable {
        let short = match convention {
            Convention::ActiveMq => "amq",
            Convention::RabbitMq => "rmq",
        };
        Durable {
            convention,
            topic: format!("/topic/{tag}-{short}"),
            client_id: format!("client-{tag}-{short}"),
            name: format!("sub-{tag}-{short}"),
            id: format!("id-{tag}-{short}"),
        }
    }

    /// A connection of the subscriber (`client-id` in the ActiveMQ convention),
    /// logged in with `login` when given.
    pub async fn connect_as(&self, addr: SocketAddr, login: Option<(&str, &str)>) -> Conn {
        let mut headers = Vec::new();
        if self.convention == Convention::ActiveMq {
            headers.push(("client-id", self.client_id.as_str()));
        }
        if let Some((login, passcode)) = login {
            headers.extend([("login", login), ("passcode", passcode)]);
        }
        Conn::connect_with(addr, &headers).await
    }

    /// An anonymous connection of the subscriber.
    pub async fn connect(&self, addr: SocketAddr) -> Conn {
        self.connect_as(addr, None).await
    }

    /// The SUBSCRIBE frame (ack auto), without receipt.
    pub fn subscribe_frame(&self) -> Frame {
        let mut headers = vec![
            ("destination", self.topic.as_str()),
            ("id", self.id.as_str()),
            ("ack", "auto"),
        ];
        match self.convention {
            Convention::ActiveMq => headers.push(("activemq.subscriptionName", &self.name)),
            Convention::RabbitMq => headers.extend([("durable", "true"), ("auto-delete", "false")]),
        }
        frame(Command::Subscribe, &headers, b"")
    }

    /// Subscribes on `conn` (with a receipt); returns the MESSAGEs that
    /// arrived before the RECEIPT.
    pub async fn subscribe(&self, conn: &mut Conn) -> Vec<Frame> {
        conn.request(self.subscribe_frame()).await
    }

    /// UNSUBSCRIBE without the durable headers: the subscriber goes away, the
    /// subscription stays.
    pub async fn unsubscribe_plain(&self, conn: &mut Conn) {
        let before = conn.unsubscribe(&self.id, &[]).await;
        assert!(before.is_empty(), "{before:?}");
    }

    /// UNSUBSCRIBE with the durable headers: the subscription is removed.
    pub async fn unsubscribe_for_good(&self, conn: &mut Conn) {
        let before = match self.convention {
            Convention::ActiveMq => {
                let name = ("activemq.subscriptionName", self.name.as_str());
                conn.unsubscribe(&self.id, &[name]).await
            }
            Convention::RabbitMq => conn.unsubscribe(&self.id, &[("durable", "true")]).await,
        };
        assert!(before.is_empty(), "{before:?}");
    }
}

/// Publishes a (non-persistent) marker to `topic` from a new connection and
/// returns the MESSAGEs `sub` got before it (`before` first).
pub async fn until_topic_marker(
    addr: SocketAddr,
    sub: &mut Conn,
    before: Vec<Frame>,
    topic: &str,
) -> Vec<Frame> {
    let end = marker();
    let mut publisher = Conn::connect(addr).await;
    publisher.request(transient(topic, &end, &[])).await;
    publisher.disconnect().await;
    sub.until_body(before, &end).await
}
