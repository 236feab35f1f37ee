//! How the benchmark starts `stompkit-broker`: its command line (always with a
//! data directory of its own, [`DataDir`], so it never touches
//! `./stompkit-data`), and a process handle for the recovery row ([`Node`]),
//! which kills the broker with SIGKILL and starts it again on the same data
//! directory, timing the spawn and the `listening` line it prints once its store
//! is recovered.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the broker prints once it listens (after recovering its store).
const LISTENING: &str = "stompkit-broker listening on stomp://";
/// Queue limits, raised so the durable rows (a publish row at full speed, a
/// million stored messages) never meet them: messages, bytes.
pub const QUEUE_LIMITS: (&str, &str) = ("20000000", "34359738368");

/// Data directories made by this process so far (makes names unique).
static DIRS: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty data directory under the target directory; removed when dropped.
pub struct DataDir(PathBuf);

impl DataDir {
    /// `<target>/bench-broker-data-<pid>-<n>`, created empty.
    pub fn new(target_dir: &Path) -> Result<DataDir> {
        let n = DIRS.fetch_add(1, Ordering::Relaxed);
        let path = target_dir.join(format!("bench-broker-data-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(DataDir(path))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `stompkit-broker` on an ephemeral loopback port with `data_dir`, warnings
/// only, room for 20,000 connections and the raised queue limits.
pub fn command(bin: &Path, data_dir: &Path) -> Command {
    let mut command = base_command(bin);
    command.arg("--data-dir").arg(data_dir);
    command
}

/// `stompkit-broker` on an ephemeral loopback port, warnings only, room for
/// 20,000 connections and the raised queue limits (where its data goes is
/// the caller's).
pub fn base_command(bin: &Path) -> Command {
    let mut command = Command::new(bin.join("stompkit-broker"));
    command
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
        .env("STOMPKIT_LIMITS_MAX_CONNECTIONS", "20000")
        .env("STOMPKIT_DESTINATIONS_QUEUE_MAX_MESSAGES", QUEUE_LIMITS.0)
        .env("STOMPKIT_DESTINATIONS_QUEUE_MAX_BYTES", QUEUE_LIMITS.1);
    command
}

/// A broker process for the recovery row; killed when dropped (then its data
/// directory is removed).
pub struct Node {
    bin: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Where it listens now (a new port after each start).
    pub addr: SocketAddr,
    // Declared last: removed after the process is gone.
    data: DataDir,
}

impl Node {
    /// Starts a broker on a fresh data directory and waits for it to listen.
    pub fn start(bin: &Path, target_dir: &Path) -> Result<Node> {
        let mut node = Node {
            bin: bin.to_path_buf(),
            log: target_dir.join("bench-broker-stompkit-recovery.log"),
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: DataDir::new(target_dir)?,
        };
        node.spawn_and_listen(Duration::from_secs(60))?;
        Ok(node)
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same data directory; returns the instant
    /// it was spawned and the instant it printed its `listening` line.
    pub fn respawn(&mut self, timeout: Duration) -> Result<(Instant, Instant)> {
        self.kill();
        self.spawn_and_listen(timeout)
    }

    fn spawn_and_listen(&mut self, timeout: Duration) -> Result<(Instant, Instant)> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let mut command = command(&self.bin, self.data.path());
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        crate::cmd::echo(&command);
        let spawned = Instant::now();
        let mut child = command.spawn().context("could not start stompkit-broker")?;
        let stdout = child
            .stdout
            .take()
            .context("no stdout pipe from the broker")?;
        self.child = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Read to the end so the broker never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix(LISTENING)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send((Instant::now(), rest.trim().to_owned()));
                }
            }
        });
        let deadline = spawned + timeout;
        loop {
            match rx.recv_timeout(Duration::from_millis(10)) {
                Ok((at, addr)) => {
                    self.addr = addr
                        .parse()
                        .with_context(|| format!("unreadable address {addr:?}"))?;
                    return Ok((spawned, at));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!(
                        "stompkit-broker ended without listening (see {})",
                        self.log.display()
                    )
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                    bail!("stompkit-broker did not listen within {timeout:?}")
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_gets_its_own_data_directory_and_the_raised_limits() -> Result<()> {
        let target = std::env::temp_dir().join(format!("xtask-datadir-{}", std::process::id()));
        let dir = DataDir::new(&target)?;
        assert!(dir.path().is_dir());
        let command = command(Path::new("/bin"), dir.path());
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
        assert_eq!(args[args.len() - 2], "--data-dir");
        assert_eq!(args[args.len() - 1], dir.path().to_string_lossy());
        assert!(command.get_envs().any(|(k, v)| {
            k == "STOMPKIT_DESTINATIONS_QUEUE_MAX_MESSAGES" && v == Some("20000000".as_ref())
        }));
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "removed when dropped");
        std::fs::remove_dir(&target)?;
        Ok(())
    }
}
