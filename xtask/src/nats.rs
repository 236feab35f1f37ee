//! A throwaway NATS server (Debian `nats-server`, 2.9) with JetStream, for the
//! broker's cluster tests and benchmarks, which need a real NATS deployment.
//!
//! Owns one server's whole life: a free loopback client port (so it never meets
//! a NATS the machine already runs); every file (JetStream store, log, console
//! output, optional config) under `<target>/nats-<pid>-<n>/`; waiting until the
//! port answers with its `INFO` line (JetStream on) and the log says
//! `Server is ready`; and stopping the server and removing its directory when
//! the [`Nats`] is dropped, also when starting failed half-way. For "NATS
//! restarts mid-traffic" tests it can also kill the server at once
//! ([`Nats::kill`]) or stop it ([`Nats::stop`]) and start it again on the same
//! port and JetStream store ([`Nats::respawn`]).
//!
//! Availability follows the house rule of [`crate::process`]: with `CI=true`
//! (or `--install`) a missing `nats-server` is installed with apt and any
//! failure is an error; otherwise a missing one is a [`Missing`](crate::process::Missing)
//! error, which `cargo xtask ci` reports as skipped.

use crate::process::{install_or_missing, kill_group, stop_group, wait_ready};
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Where Debian installs the server (not on a non-root user's `PATH`).
const DEBIAN_SERVER: &str = "/usr/sbin/nats-server";
/// How long a server may take from spawn to ready (it needs well under a second).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server gets to stop on SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of each log to show when the server failed to start.
const LOG_TAIL_BYTES: u64 = 4 * 1024;
/// What the server logs once JetStream is up and clients are accepted.
const READY_LINE: &str = "Server is ready";

/// Servers started by this process so far (makes directories unique).
static STARTED: AtomicU32 = AtomicU32::new(0);

/// A running `nats-server` with JetStream; stopped (process group killed,
/// directory removed) when dropped.
pub struct Nats {
    /// The server binary.
    server: PathBuf,
    /// The client port on 127.0.0.1.
    port: u16,
    /// All of the server's files.
    dir: PathBuf,
    /// Flags after ours (from [`Nats::start_with`], or `-c` for a config file).
    extra: Vec<String>,
    child: Option<Child>,
    /// Length of `nats.log` when the running process was spawned: only what
    /// it wrote after that counts as its readiness.
    log_from: u64,
}

/// Whether `nats-server` is installed.
pub fn installed() -> bool {
    server_binary().is_some()
}

/// Succeeds when `nats-server` is installed; it is installed with apt first
/// when it is missing and [`may_install`](crate::process::may_install) allows
/// it, otherwise the error is a [`Missing`](crate::process::Missing) naming the
/// Debian package `nats-server`.
pub fn ensure_installed() -> Result<()> {
    if installed() {
        return Ok(());
    }
    install_or_missing("NATS with JetStream (nats-server)", &["nats-server"])?;
    if !installed() {
        bail!("apt-get installed nats-server, but no nats-server binary found");
    }
    Ok(())
}

/// The server binary, if installed (`$NATS_SERVER` overrides, then `PATH`,
/// then Debian's place).
fn server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|path| path.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from(DEBIAN_SERVER)).filter(|path| path.is_file()))
}

/// The target directory the workspace builds into: `$CARGO_TARGET_DIR` or
/// `<workspace>/target` (as `cargo xtask` computes it).
fn target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    match std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => root.join(dir), // an absolute `dir` replaces `root`
        None => root.join("target"),
    }
}

/// A loopback port the kernel just handed out as free (bound, then released).
fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 to find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The server's command line (after the binary): JetStream stored under
/// `dir/jetstream`, loopback only on `port`, logging to `dir/nats.log`, then
/// `extra`. Flags given here win over a config file's settings.
fn server_args(port: u16, dir: &Path, extra: &[String]) -> Vec<String> {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let ours = [
        "-js".to_owned(),
        "-sd".to_owned(),
        path("jetstream"),
        "-a".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
        "-l".to_owned(),
        path("nats.log"),
    ];
    ours.into_iter().chain(extra.iter().cloned()).collect()
}

/// Checks a server's first line: `INFO {json}` with JetStream on and the port
/// we expect; returns the JSON.
fn check_info(line: &str, port: u16) -> Result<serde_json::Value> {
    let json = line
        .trim_end()
        .strip_prefix("INFO ")
        .with_context(|| format!("expected INFO, got {line:?}"))?;
    let info: serde_json::Value =
        serde_json::from_str(json).with_context(|| format!("INFO is not JSON: {json}"))?;
    if info["port"].as_u64() != Some(u64::from(port)) {
        bail!("INFO names port {} instead of {port}", info["port"]);
    }
    if info["jetstream"].as_bool() != Some(true) {
        bail!("INFO says JetStream is off: {json}");
    }
    Ok(info)
}

/// Connects to `127.0.0.1:port` and reads the server's `INFO` line.
fn read_info(port: u16) -> Result<serde_json::Value> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    if line.is_empty() {
        bail!("connection closed without INFO");
    }
    check_info(&line, port)
}

/// What `path` holds from byte `from` on (empty if it cannot be read).
fn read_from(path: &Path, from: u64) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let mut text = String::new();
    if file.seek(SeekFrom::Start(from)).is_ok() {
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}

impl Nats {
    /// Starts a server with its files under `<target>/nats-<pid>-<n>/` and
    /// waits until it is ready. See the module docs for what happens when
    /// `nats-server` is not installed.
    pub fn start() -> Result<Nats> {
        Nats::start_with(&[])
    }

    /// [`start`](Self::start) with extra server flags after ours (see
    /// `nats-server --help`; e.g. `["-D"]` for debug logging). Settings 2.9 has
    /// no flag for (such as `max_payload`) go through
    /// [`start_with_config`](Self::start_with_config).
    pub fn start_with(args: &[&str]) -> Result<Nats> {
        Nats::create(args.iter().map(|arg| (*arg).to_owned()).collect(), None)
    }

    /// [`start`](Self::start) with a config file of `config` (nats-server's
    /// format, e.g. `"max_payload: 8MB\n"`), written to `<dir>/nats.conf`. Our
    /// flags (port, address, JetStream store, log) win over its settings.
    pub fn start_with_config(config: &str) -> Result<Nats> {
        Nats::create(Vec::new(), Some(config))
    }

    /// Starts a server with `extra` flags and an optional config file.
    fn create(mut extra: Vec<String>, config: Option<&str>) -> Result<Nats> {
        ensure_installed()?;
        let server = server_binary().context("nats-server is not installed")?;
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = target_dir().join(format!("nats-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = dir.join("jetstream");
        std::fs::create_dir_all(&store).with_context(|| format!("creating {}", store.display()))?;
        if let Some(config) = config {
            let path = dir.join("nats.conf");
            std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
            extra.splice(0..0, ["-c".to_owned(), path.to_string_lossy().into_owned()]);
        }
        let mut nats = Nats {
            server,
            port: free_port()?,
            dir,
            extra,
            child: None,
            log_from: 0,
        };
        // From here on, dropping `nats` cleans up whatever was started.
        nats.launch_and_wait()?;
        println!(
            "nats: nats-server up at {} with JetStream (files in {})",
            nats.url(),
            nats.dir.display()
        );
        Ok(nats)
    }

    /// `nats://127.0.0.1:<port>`, for a NATS client.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port on 127.0.0.1 (the same after [`respawn`](Self::respawn)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding all of the server's files: `jetstream/` (the
    /// store), `nats.log`, `console.log` and any `nats.conf`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Connects and returns the server's `INFO` (checked: our port, JetStream on).
    pub fn info(&self) -> Result<serde_json::Value> {
        read_info(self.port)
    }

    /// Spawns the server in its own process group and waits until it is
    /// ready; on failure the error carries the end of its logs.
    fn launch_and_wait(&mut self) -> Result<()> {
        self.launch()?;
        self.wait_ready().map_err(|error| {
            let tail = self.log_tail();
            error.context(format!("nats-server did not start\n{tail}"))
        })
    }

    /// Spawns the server (the files' directory exists), in its own process group.
    fn launch(&mut self) -> Result<()> {
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("console.log"))?;
        self.log_from = std::fs::metadata(self.dir.join("nats.log")).map_or(0, |m| m.len());
        let mut command = Command::new(&self.server);
        command
            .args(server_args(self.port, &self.dir, &self.extra))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console)
            .process_group(0);
        println!(
            "nats: starting {} on 127.0.0.1:{} (files in {})",
            self.server.display(),
            self.port,
            self.dir.display()
        );
        let child = command
            .spawn()
            .with_context(|| format!("could not start {}", self.server.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Polls until the port answers with an `INFO` (JetStream on) and the log
    /// says the server is ready, the server exits, or the timeout passes.
    fn wait_ready(&mut self) -> Result<()> {
        let child = self.child.as_mut().context("nats-server was not started")?;
        let (port, log, from) = (self.port, self.dir.join("nats.log"), self.log_from);
        wait_ready(child, "nats-server", STARTUP_TIMEOUT, || {
            read_info(port)?;
            if !read_from(&log, from).contains(READY_LINE) {
                bail!("no {READY_LINE:?} in {} yet", log.display());
            }
            Ok(())
        })
    }

    /// The end of the server's console output and log, for a reader.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        for name in ["console.log", "nats.log"] {
            let path = self.dir.join(name);
            let len = std::fs::metadata(&path).map_or(0, |m| m.len());
            let tail = read_from(&path, len.saturating_sub(LOG_TAIL_BYTES));
            text.push_str(&format!("--- end of {} ---\n{tail}\n---\n", path.display()));
        }
        text
    }

    /// Kills the server at once, as a crash would: SIGKILL to its process
    /// group. Its files stay, for [`respawn`](Self::respawn).
    pub fn kill(&mut self) {
        if let Some(child) = self.child.take() {
            kill_group(child);
        }
    }

    /// Starts the server again on the same port, JetStream store and flags
    /// (killing it first if it still runs) and waits until it is ready.
    pub fn respawn(&mut self) -> Result<()> {
        self.kill();
        self.launch_and_wait()
    }

    /// Stops the server: SIGTERM to its process group, SIGKILL if it has not
    /// exited after a grace period. Its files stay (dropping removes them).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_group(child, STOP_TIMEOUT);
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_command_line_names_the_port_the_store_and_the_log() -> Result<()> {
        let port = free_port()?;
        assert_ne!(port, 0);
        let dir = Path::new("/t/nats-1-0");
        let args = server_args(port, dir, &["-D".to_owned()]);
        let port = port.to_string();
        assert_eq!(
            args,
            [
                "-js",
                "-sd",
                "/t/nats-1-0/jetstream",
                "-a",
                "127.0.0.1",
                "-p",
                &port,
                "-l",
                "/t/nats-1-0/nats.log",
                "-D"
            ]
        );
        Ok(())
    }

    #[test]
    fn info_must_name_our_port_with_jetstream_on() {
        let line = "INFO {\"server_id\":\"N\",\"version\":\"2.9.10\",\"port\":4222,\"jetstream\":true}\r\n";
        assert!(check_info(line, 4222).is_ok());
        assert!(check_info(line, 4223).is_err());
        assert!(check_info("INFO {\"port\":4222}\r\n", 4222).is_err());
        assert!(check_info("-ERR 'no'\r\n", 4222).is_err());
        assert!(check_info("INFO {\r\n", 4222).is_err());
    }

    #[test]
    fn only_the_log_after_a_spawn_counts() -> Result<()> {
        let dir = target_dir().join(format!("nats-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("nats.log");
        std::fs::write(&log, "[1] Server is ready\n")?;
        let from = std::fs::metadata(&log)?.len();
        assert!(!read_from(&log, from).contains(READY_LINE));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)?
            .write_all(b"[2] Server is ready\n")?;
        assert_eq!(read_from(&log, from), "[2] Server is ready\n");
        assert_eq!(read_from(&dir.join("absent.log"), 0), "");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// Sends one NATS request (`PUB subject inbox`) and returns the reply's payload.
    fn request(port: u16, subject: &str, body: &str) -> Result<String> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?; // INFO
        write!(
            &stream,
            "CONNECT {{\"verbose\":false}}\r\nSUB _INBOX.t 1\r\nPUB {subject} _INBOX.t {}\r\n{body}\r\n",
            body.len()
        )?;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("closed before a reply");
            }
            if line.starts_with("MSG _INBOX.t 1 ") {
                line.clear();
                reader.read_line(&mut line)?;
                return Ok(line.trim_end().to_owned());
            }
            if line.starts_with("-ERR") {
                bail!("server said {line}");
            }
        }
    }

    #[test]
    #[ignore = "needs nats-server; run by cargo xtask ci (cluster-tests)"]
    fn a_server_answers_dies_and_comes_back_on_its_port_with_its_store() -> Result<()> {
        let mut nats = Nats::start()?;
        let port = nats.port();
        assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));
        assert!(nats.dir().join("jetstream").is_dir());
        assert_eq!(nats.info()?["port"], u64::from(port));
        let created = request(
            port,
            "$JS.API.STREAM.CREATE.T",
            "{\"name\":\"T\",\"subjects\":[\"t.>\"],\"storage\":\"file\"}",
        )?;
        assert!(!created.contains("\"error\""), "{created}");

        nats.kill();
        assert!(read_info(port).is_err(), "killed, yet answering");
        nats.respawn()?;
        assert_eq!(nats.port(), port);
        assert_eq!(nats.info()?["port"], u64::from(port));
        let stream = request(port, "$JS.API.STREAM.INFO.T", "")?;
        assert!(stream.contains("\"name\":\"T\""), "stream lost: {stream}");

        nats.stop();
        assert!(read_info(port).is_err(), "stopped, yet answering");
        nats.respawn()?;
        nats.info()?;
        let dir = nats.dir().to_path_buf();
        drop(nats);
        assert!(!dir.exists(), "{} left behind", dir.display());
        Ok(())
    }

    #[test]
    #[ignore = "needs nats-server; run by cargo xtask ci (cluster-tests)"]
    fn a_config_file_and_flags_reach_the_server() -> Result<()> {
        let nats = Nats::start_with_config("max_payload: 8MB\nport: 1\n")?;
        let info = nats.info()?;
        assert_eq!(info["max_payload"], 8 * 1024 * 1024);
        assert_eq!(info["port"], u64::from(nats.port()), "our -p wins");
        let debug = Nats::start_with(&["-D"])?;
        assert!(debug.log_tail().contains("[DBG]"), "{}", debug.log_tail());
        let Err(error) = Nats::start_with(&["--no_such_flag"]) else {
            panic!("started with an unknown flag");
        };
        let error = format!("{error:#}");
        assert!(error.contains("exited before it was ready"), "{error}");
        assert!(error.contains("no_such_flag"), "the log tail: {error}");
        Ok(())
    }
}
