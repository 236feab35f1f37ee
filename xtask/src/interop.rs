//! `cargo xtask interop`: the interoperability suite in `interop/` (pytest + the
//! third-party client stomp.py) run against a real `stompkit-broker` process.
//!
//! Owns the whole run: a Python virtual environment under
//! `<target>/interop-venv` with the exact versions of `interop/requirements.txt`
//! (reinstalled only when that file changes), the debug build of the broker
//! binary, starting it on `127.0.0.1:0` with a fresh data directory under
//! `<target>/interop-data/` (removed when it stops) and
//! `STOMPKIT_DESTINATIONS_MAX_DELIVERIES=3` (the dead-letter tests NACK that many
//! times), learning its port from the line
//! `stompkit-broker listening on stomp://<ip>:<port>` it prints (and, for a
//! broker started with `--admin`, its admin URL from
//! `stompkit-broker admin on http://<ip>:<port>/`: [`Broker::admin_url`]), running pytest
//! with `STOMP_HOST`/`STOMP_PORT` (and `STOMPKIT_INTEROP_MAX_DELIVERIES`, the
//! same 3, when it started the broker), and stopping the broker however the run
//! ends (a guard kills it on drop). It does not know what the tests check; the
//! suite does (see `interop/README.md`).
//!
//! Knobs for [`run`] (the lead's CLI may map flags onto [`run_with`] instead):
//! - `STOMPKIT_INTEROP_PORTABLE_ONLY=1`: only the tests tagged `portable`
//!   (`pytest -m portable`), e.g. when the server is not stompkit.
//! - `STOMPKIT_INTEROP_ADDR=host:port`: test a server that is already running;
//!   nothing is built or started.
//! - `STOMPKIT_INTEROP_PYTEST_ARGS="-k heart -v"`: extra pytest arguments,
//!   split on whitespace.
//! - `PYTHON`: the interpreter that creates the venv (default `python3`).
//!
//! The other runs of the suite (`interop_relay.rs`, `interop_cluster.rs`)
//! start their brokers with the same pieces ([`broker_command`], [`Broker`]).

use crate::cmd;
use anyhow::{Context, Result, bail};
use std::fs;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// What the broker prints once per listener after binding.
const LISTENING: &str = "stompkit-broker listening on stomp://";
/// What the broker prints after binding its admin listener (`--admin ADDR`),
/// followed by `http://<ip>:<port>/`.
const ADMIN: &str = "stompkit-broker admin on ";
/// How long the broker may take from spawn to its `listening` line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for the whole pytest run (the suite takes well under a minute).
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);
/// The broker's heart-beat floor for the run (`interop/test_heartbeats.py` asks for 200 ms).
const HEARTBEAT_MIN_MS: &str = "100";
/// How much of the broker's log to show when something went wrong.
const LOG_TAIL_BYTES: u64 = 8 * 1024;
/// The broker's `[destinations] max_deliveries` for the run (default 10): the
/// dead-letter tests in `interop/test_durable.py` NACK a message that many times,
/// and read the number from `STOMPKIT_INTEROP_MAX_DELIVERIES`.
pub(crate) const MAX_DELIVERIES: &str = "3";

/// Runs the suite as configured by the environment (see the module docs).
pub fn run() -> Result<()> {
    let portable_only = matches!(
        std::env::var("STOMPKIT_INTEROP_PORTABLE_ONLY").as_deref(),
        Ok("1" | "true" | "yes")
    );
    let addr = match std::env::var("STOMPKIT_INTEROP_ADDR") {
        Ok(text) if !text.trim().is_empty() => Some(
            text.trim()
                .parse::<SocketAddr>()
                .with_context(|| format!("STOMPKIT_INTEROP_ADDR={text:?} is not an ip:port"))?,
        ),
        _ => None,
    };
    run_with(addr, portable_only)
}

/// Runs the suite against `addr`, or, when `None`, against a freshly built and
/// started `stompkit-broker`. `portable_only` selects the tests tagged `portable`.
/// Fails when the suite fails, times out, or the broker dies during it.
pub fn run_with(addr: Option<SocketAddr>, portable_only: bool) -> Result<()> {
    let started = Instant::now();
    let python = ensure_venv()?;
    let mut broker = None;
    let addr = match addr {
        Some(addr) => addr,
        None => {
            let binary = build_broker()?;
            let running = Broker::start(&binary)?;
            let addr = running.addr;
            broker = Some(running);
            addr
        }
    };
    println!("interop: testing the STOMP server at {addr}");
    // Only a broker started here is known to run with MAX_DELIVERIES; the suite
    // assumes the default (10) for any other server.
    let env: &[(&str, &str)] = if broker.is_some() {
        &[("STOMPKIT_INTEROP_MAX_DELIVERIES", MAX_DELIVERIES)]
    } else {
        &[]
    };
    let status = run_suite(&python, addr, portable_only, env);
    if let Some(broker) = broker.as_mut()
        && let Some(exit) = broker.exited()?
    {
        broker.print_log_tail();
        bail!("stompkit-broker exited during the interop suite ({exit})");
    }
    let status = match status {
        Ok(status) => status,
        Err(error) => {
            if let Some(broker) = &broker {
                broker.print_log_tail();
            }
            return Err(error);
        }
    };
    if !status.success() {
        if let Some(broker) = &broker {
            broker.print_log_tail();
        }
        bail!("the interop suite failed ({status})");
    }
    println!("interop: passed in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The workspace root (this crate's parent directory).
fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// `$CARGO_TARGET_DIR` (relative to the root when relative) or `<root>/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        _ => root().join("target"),
    }
}

/// Prints and runs `command` with inherited output; fails unless it exits with 0.
fn run_checked(command: &mut Command) -> Result<()> {
    println!("$ {command:?}");
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("could not start {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", command.get_program());
    }
    Ok(())
}

/// Creates `<target>/interop-venv` and installs the pinned requirements into it,
/// unless it already holds exactly these requirements. Returns its python.
pub(crate) fn ensure_venv() -> Result<PathBuf> {
    let requirements = root().join("interop").join("requirements.txt");
    let wanted = fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let venv = target_dir().join("interop-venv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join("installed-requirements.txt");
    if python.exists() && fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    if !python.exists() {
        let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        fs::create_dir_all(target_dir())?;
        let create = || run_checked(Command::new(&system_python).args(["-m", "venv"]).arg(&venv));
        if create().is_err() {
            // Debian's python3 lacks `venv` until python3-venv is installed.
            println!("interop: `{system_python} -m venv` failed");
            cmd::install_or_missing("python3's venv module (python3-venv)", &["python3-venv"])?;
            let _ = fs::remove_dir_all(&venv);
            create().with_context(|| {
                format!("could not create a venv with `{system_python} -m venv`")
            })?;
        }
    }
    run_checked(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                "-r",
            ])
            .arg(&requirements),
    )
    .context("installing interop/requirements.txt from PyPI")?;
    fs::write(&stamp, wanted)?;
    Ok(python)
}

/// Builds the broker binary (dev profile) and returns its path.
pub(crate) fn build_broker() -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(
        Command::new(cargo)
            .args(["build", "-p", "stompkit-broker", "--bin", "stompkit-broker"])
            .current_dir(root()),
    )?;
    let binary = target_dir().join("debug").join("stompkit-broker");
    if !binary.exists() {
        bail!(
            "cargo built the broker, but {} does not exist",
            binary.display()
        );
    }
    Ok(binary)
}

/// A running broker process; killed when dropped, whatever happened meanwhile
/// (and its data directory, when [`Broker::start_with`] made one, removed).
pub(crate) struct Broker {
    child: Child,
    /// The first listener's address (TCP STOMP and, on the same port, WebSocket).
    pub(crate) addr: SocketAddr,
    log: PathBuf,
    /// The store's directory, removed on drop.
    data_dir: Option<PathBuf>,
    /// The URLs of the broker's `admin on` lines, as they come.
    admin_lines: mpsc::Receiver<String>,
}

impl Broker {
    /// Starts `binary` on an ephemeral port and waits for its `listening` line.
    pub(crate) fn start(binary: &Path) -> Result<Broker> {
        Broker::start_with(binary, &[])
    }

    /// [`start`](Broker::start) with more command-line arguments (e.g. `--upstream URL`).
    /// The broker stores in a fresh directory of its own ([`fresh_data_dir`]).
    pub(crate) fn start_with(binary: &Path, args: &[&str]) -> Result<Broker> {
        let log = target_dir().join("interop-broker.log");
        let data_dir = fresh_data_dir()?;
        let mut command = broker_command(binary, args);
        command.arg("--data-dir").arg(&data_dir);
        match Broker::spawn(command, log) {
            Ok(mut broker) => {
                broker.data_dir = Some(data_dir);
                Ok(broker)
            }
            Err(error) => {
                let _ = fs::remove_dir_all(&data_dir);
                Err(error)
            }
        }
    }

    /// Spawns `command` (stderr to `log`) and waits for its `listening` line.
    pub(crate) fn spawn(mut command: Command, log: PathBuf) -> Result<Broker> {
        let log_file =
            fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        println!("$ {command:?}  (log: {})", log.display());
        let mut child = command
            .spawn()
            .with_context(|| format!("could not start {:?}", command.get_program()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("no stdout pipe from the broker");
        };
        let (admin, admin_lines) = mpsc::channel();
        // From here on the guard owns the child: any early return kills it.
        let mut broker = Broker {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            data_dir: None,
            admin_lines,
        };
        let (found, listening) = mpsc::channel();
        thread::spawn(move || {
            let mut found = Some(found);
            // Keep reading to the end so the broker never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match line.strip_prefix(LISTENING) {
                    Some(rest) if found.is_some() => {
                        if let Some(sender) = found.take() {
                            let _ = sender.send(rest.trim().to_owned());
                        }
                    }
                    _ => {
                        if let Some(url) = line.strip_prefix(ADMIN) {
                            let _ = admin.send(url.trim().to_owned());
                        }
                        println!("broker: {line}");
                    }
                }
            }
        });
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let address = loop {
            match listening.recv_timeout(Duration::from_millis(100)) {
                Ok(address) => break address,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    broker.print_log_tail();
                    bail!("the broker closed its stdout without printing `{LISTENING}<ip>:<port>`");
                }
            }
            if let Some(exit) = broker.exited()? {
                broker.print_log_tail();
                bail!("the broker exited before listening ({exit})");
            }
            if Instant::now() > deadline {
                broker.print_log_tail();
                bail!("no `{LISTENING}<ip>:<port>` line within {STARTUP_TIMEOUT:?}");
            }
        };
        broker.addr = address
            .parse()
            .with_context(|| format!("the broker printed an unreadable address {address:?}"))?;
        Ok(broker)
    }

    /// The admin listener's URL (`http://<ip>:<port>/`), from the line the
    /// broker prints after binding it: start it with `--admin ADDR`
    /// ([`start_with`](Broker::start_with)). An error when no such line comes
    /// within the startup timeout, or it holds no `http://<ip>:<port>/`.
    pub(crate) fn admin_url(&mut self) -> Result<String> {
        let url = match self.admin_lines.recv_timeout(STARTUP_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                self.print_log_tail();
                bail!("no `{ADMIN}http://<ip>:<port>/` line within {STARTUP_TIMEOUT:?}");
            }
        };
        let addr = url
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .and_then(|addr| addr.parse::<SocketAddr>().ok());
        match addr {
            Some(_) => Ok(url),
            None => bail!("the broker printed an unreadable admin URL {url:?}"),
        }
    }

    /// The broker's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` when the process has ended.
    pub(crate) fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Prints the end of the broker's log (stderr) to help read a failure.
    pub(crate) fn print_log_tail(&self) {
        eprintln!("{}", self.log_tail());
    }

    /// The end of the broker's log (stderr), headed by its path.
    fn log_tail(&self) -> String {
        let Ok(mut file) = fs::File::open(&self.log) else {
            return format!("--- {} cannot be read ---", self.log.display());
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        let tail = String::from_utf8_lossy(&bytes);
        format!("--- end of {} ---\n{tail}\n---", self.log.display())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(dir) = &self.data_dir {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// `binary --listen 127.0.0.1:0 ARGS` with the environment every broker of the
/// suite runs with: the heart-beat floor the suite needs, [`MAX_DELIVERIES`],
/// and `RUST_LOG` (ours, else `info`). No data directory: [`Broker::start_with`]
/// adds one; a cluster node (`--cluster URL`) has none.
pub(crate) fn broker_command(binary: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        // The suite negotiates 200 ms heart-beats; the default floor is 1000 ms.
        .env("STOMPKIT_HEARTBEAT_MIN_MS", HEARTBEAT_MIN_MS)
        .env("STOMPKIT_DESTINATIONS_MAX_DELIVERIES", MAX_DELIVERIES)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
    command
}

/// A new, empty directory `<target>/interop-data/<pid>-<nanos>` for one broker's
/// store: every run (and every broker of a run) starts with nothing stored, and
/// never shares the default `./stompkit-data` or its lock.
fn fresh_data_dir() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = target_dir()
        .join("interop-data")
        .join(format!("{}-{nanos}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Runs pytest on `interop/` against `addr`, output straight to ours, with
/// `env` added (e.g. `STOMP_VHOST`).
pub(crate) fn run_suite(
    python: &Path,
    addr: SocketAddr,
    portable_only: bool,
    env: &[(&str, &str)],
) -> Result<ExitStatus> {
    let dir = root().join("interop");
    let mut command = Command::new(python);
    command
        .envs(env.iter().copied())
        .args(["-m", "pytest", "--durations=5"])
        .current_dir(&dir)
        .env("STOMP_HOST", addr.ip().to_string())
        .env("STOMP_PORT", addr.port().to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null());
    if portable_only {
        command.args(["-m", "portable"]);
    }
    if let Ok(extra) = std::env::var("STOMPKIT_INTEROP_PYTEST_ARGS") {
        command.args(extra.split_whitespace());
    }
    run_with_timeout(&mut command, SUITE_TIMEOUT, "the interop suite")
}

/// Prints and runs `command` (output inherited) and returns its exit status; kills it
/// and fails when it runs longer than `timeout`. `what` names it in the error.
pub(crate) fn run_with_timeout(
    command: &mut Command,
    timeout: Duration,
    what: &str,
) -> Result<ExitStatus> {
    println!("$ {command:?}");
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start {:?}", command.get_program()))?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    fn log(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("xtask-interop-{}-{name}.log", std::process::id()))
    }

    #[test]
    fn reads_the_port_from_the_listening_line_and_kills_on_drop() {
        let script = "echo other line; echo 'stompkit-broker listening on stomp://127.0.0.1:40123'; \
                      echo 'stompkit-broker listening on stomp://127.0.0.1:40124'; exec sleep 30";
        let mut broker = Broker::spawn(shell(script), log("ok")).unwrap();
        assert_eq!(broker.addr, "127.0.0.1:40123".parse().unwrap()); // the first listener
        assert!(broker.exited().unwrap().is_none());
        let pid = broker.child.id();
        drop(broker);
        // The guard killed and reaped it, so its /proc entry is gone.
        #[cfg(target_os = "linux")]
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn reads_the_admin_url_from_its_line() {
        let script = "echo 'stompkit-broker listening on stomp://127.0.0.1:40123'; \
                      echo 'stompkit-broker metrics on http://127.0.0.1:40125/metrics'; \
                      echo 'stompkit-broker admin on http://127.0.0.1:40124/'; exec sleep 30";
        let mut broker = Broker::spawn(shell(script), log("admin")).unwrap();
        assert_eq!(broker.admin_url().unwrap(), "http://127.0.0.1:40124/");
        let script = "echo 'stompkit-broker listening on stomp://127.0.0.1:40123'; \
                      echo 'stompkit-broker admin on http://nowhere/'; exec sleep 30";
        let mut broker = Broker::spawn(shell(script), log("admin-bad")).unwrap();
        let error = broker.admin_url().err().unwrap();
        assert!(
            format!("{error:#}").contains("unreadable admin URL"),
            "{error:#}"
        );
    }

    #[test]
    fn a_broker_that_exits_before_listening_is_an_error() {
        let error = Broker::spawn(shell("echo boom >&2; exit 3"), log("exit"))
            .err()
            .unwrap();
        let text = format!("{error:#}");
        assert!(
            text.contains("before listening") || text.contains("closed its stdout"),
            "{text}"
        );
    }

    #[test]
    fn an_unreadable_address_is_an_error() {
        let script = "echo 'stompkit-broker listening on stomp://nowhere'; exec sleep 30";
        let error = Broker::spawn(shell(script), log("bad")).err().unwrap();
        assert!(
            format!("{error:#}").contains("unreadable address"),
            "{error:#}"
        );
    }
}
