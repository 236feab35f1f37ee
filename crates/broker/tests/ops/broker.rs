//! The broker binary for the ops tests: started in a scratch directory of its
//! own (`--in-memory`, `127.0.0.1:0`, no inherited `STOMPKIT_*` variable),
//! its listen addresses read from stdout, its stderr kept in a file, and
//! signals sent with `kill`.

use crate::harness::{BROKER, WAIT};
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use stompkit_broker::auth::password;

/// A scratch directory under the target dir, removed on drop.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        Scratch(
            tempfile::Builder::new()
                .prefix(&format!("ops-{name}-"))
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap(),
        )
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// Writes `text` to the file `name` and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// A cheap argon2id hash of `password` (the broker accepts any cost).
pub fn hash(password: &str) -> String {
    password::hash_with(password, argon2::Params::new(1024, 1, 1, None).unwrap()).unwrap()
}

/// `[[auth.users]]` entries: (login, password, send patterns or none).
pub fn users(list: &[(&str, &str, Option<&[&str]>)]) -> String {
    let mut text = String::new();
    for (login, pw, send) in list {
        text.push_str(&format!(
            "[[auth.users]]\nlogin = {login:?}\npassword_hash = {:?}\n",
            hash(pw)
        ));
        if let Some(send) = send {
            text.push_str(&format!("send = {send:?}\n"));
        }
        text.push('\n');
    }
    text
}

/// The binary with no inherited `STOMPKIT_*` variable nor `RUST_LOG`.
pub fn command() -> Command {
    let mut command = Command::new(BROKER);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("STOMPKIT_") {
            command.env_remove(key);
        }
    }
    command.env_remove("RUST_LOG");
    command.stdin(Stdio::null());
    command
}

/// Runs `command` to its end (at most [`WAIT`]).
pub fn run(mut command: Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (done, output) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    output.recv_timeout(WAIT).unwrap().unwrap()
}

/// The running broker; killed on drop.
pub struct Broker {
    child: Child,
    /// The first `stomp://` listener.
    pub addr: SocketAddr,
    /// The first `stomp+ssl://` listener, if any.
    pub tls: Option<SocketAddr>,
    log: PathBuf,
}

impl Broker {
    /// Starts `command` (more arguments already added), `--in-memory` with
    /// stderr to `log`, and waits for its `listening` lines (`tls` of them
    /// `stomp+ssl://`).
    pub fn start(mut command: Command, log: PathBuf, tls: bool) -> Broker {
        let file = std::fs::File::create(&log).unwrap();
        let mut child = command
            .arg("--in-memory")
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, got) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        let mut broker = Broker {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            log,
        };
        let deadline = Instant::now() + WAIT;
        let (mut plain, mut secure) = (None, None);
        while plain.is_none() || (tls && secure.is_none()) {
            match got.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let line = line.trim();
                    if let Some(rest) = line.strip_prefix("stompkit-broker listening on stomp://") {
                        plain.get_or_insert(rest.parse::<SocketAddr>().unwrap());
                    }
                    if let Some(rest) =
                        line.strip_prefix("stompkit-broker listening on stomp+ssl://")
                    {
                        secure.get_or_insert(rest.parse::<SocketAddr>().unwrap());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("the broker exited before listening:\n{}", broker.log())
                }
            }
            assert!(
                Instant::now() < deadline,
                "no listening line:\n{}",
                broker.log()
            );
        }
        broker.addr = plain.unwrap();
        broker.tls = secure;
        broker
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (`HUP`, `TERM`) with `kill`.
    pub fn signal(&self, signal: &str) {
        kill(self.child.id(), signal);
    }

    /// SIGHUP, then waits until the log has `count` lines with `outcome`
    /// (`configuration reloaded` or `configuration reload failed`). Blocks:
    /// for threads; async tests call [`Broker::reload_async`].
    pub fn reload(&self, outcome: &str, count: usize) -> String {
        self.signal("HUP");
        self.wait_for(outcome, count)
    }

    /// [`Broker::reload`] without blocking the runtime (the signal is sent
    /// from the blocking pool, the log polled between tokio sleeps).
    pub async fn reload_async(&self, outcome: &str, count: usize) -> String {
        let pid = self.child.id();
        tokio::task::spawn_blocking(move || kill(pid, "HUP"))
            .await
            .unwrap();
        self.wait_for_async(outcome, count).await
    }

    /// Waits until the log holds `needle` `count` times; returns the log.
    /// Blocks: for threads; async tests call [`Broker::wait_for_async`].
    pub fn wait_for(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(log) = self.holds(needle, count, deadline) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`Broker::wait_for`] polling between tokio sleeps.
    pub async fn wait_for_async(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(log) = self.holds(needle, count, deadline) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The log when it holds `needle` `count` times; panics past `deadline`.
    fn holds(&self, needle: &str, count: usize, deadline: Instant) -> Option<String> {
        let log = self.log();
        if log.matches(needle).count() >= count {
            return Some(log);
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} (x{count}) in the log:\n{log}"
        );
        None
    }

    /// Panics when the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the broker exited ({status}):\n{}", self.log());
        }
    }

    /// SIGTERM, then waits for it to exit (polling between tokio sleeps).
    pub async fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id();
        tokio::task::spawn_blocking(move || kill(pid, "TERM"))
            .await
            .unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.log());
            }
            assert!(Instant::now() < deadline, "still running:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Sends `signal` to the process `pid` with `kill`.
fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// The arguments of a broker on `127.0.0.1:0` reading `config`, logging at info.
pub fn with_config(config: &Path) -> Command {
    let mut command = command();
    command
        .args(["--listen", "127.0.0.1:0", "--log-level", "info", "--config"])
        .arg(config);
    command
}
