//! A throwaway RabbitMQ (Debian `rabbitmq-server`) with its STOMP and Web-STOMP
//! plugins, for tests and benchmarks that need a real third-party broker.
//!
//! Owns one node's whole life: free loopback ports for STOMP, Web-STOMP, AMQP,
//! epmd (`ERL_EPMD_PORT`) and Erlang distribution (`RABBITMQ_DIST_PORT`), so it
//! never meets a RabbitMQ the machine already runs; a unique `RABBITMQ_NODENAME`;
//! every file (config, enabled plugins, mnesia, logs, Erlang cookie via `HOME`)
//! under `<target>/rabbitmq-<pid>-<n>/`; waiting until STOMP answers a CONNECT
//! with CONNECTED; and stopping the node, its own epmd and its directory when the
//! [`RabbitMq`] is dropped, also when starting failed half-way. For crash tests
//! it can also kill a node at once ([`RabbitMq::kill`]) and start it again on
//! the same ports and files ([`RabbitMq::respawn`]).
//!
//! Availability follows the house rule of [`crate::process`]: with `CI=true`
//! (or `--install`) a missing `rabbitmq-server` is installed with apt and any
//! failure is an error; otherwise a missing one is a [`Missing`] error, which
//! `cargo xtask ci` reports as skipped.

pub use crate::process::stomp_connect;
use crate::process::{Missing, kill_group, may_install, stop_group, wait_ready};
use anyhow::{Context, Result};
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Where Debian puts the real server script (`/usr/sbin/rabbitmq-server` is a
/// wrapper that switches to the `rabbitmq` user and drops our environment).
const DEBIAN_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// How long a node may take from spawn to answering CONNECT (a loaded 2-core
/// machine boots it in ~10 s).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a node gets to stop on SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of the node's log to show when it failed to start.
const LOG_TAIL_BYTES: u64 = 6 * 1024;
/// The user stock RabbitMQ creates (allowed from loopback only, which is all we use).
pub const GUEST: (&str, &str) = ("guest", "guest");

/// Nodes started by this process so far (makes names and directories unique).
static STARTED: AtomicU32 = AtomicU32::new(0);

/// A running RabbitMQ node; stopped (process group killed, epmd stopped,
/// directory removed) when dropped.
pub struct RabbitMq {
    /// STOMP over TCP (`rabbitmq_stomp`).
    pub stomp: SocketAddr,
    /// STOMP over WebSocket (`rabbitmq_web_stomp`), path `/ws`.
    pub web_stomp: SocketAddr,
    /// AMQP 0-9-1.
    pub amqp: SocketAddr,
    /// This node's own epmd.
    pub epmd_port: u16,
    /// Erlang distribution.
    pub dist_port: u16,
    /// `RABBITMQ_NODENAME`.
    pub node: String,
    /// All of the node's files.
    pub dir: PathBuf,
    child: Option<Child>,
}

/// The free loopback ports one node listens on.
struct Ports {
    stomp: u16,
    web_stomp: u16,
    amqp: u16,
    epmd: u16,
    dist: u16,
}

impl Ports {
    /// Five distinct ports the kernel just handed out as free.
    fn pick() -> Result<Ports> {
        // Hold all listeners until every port is chosen, so none repeats.
        let listeners = (0..5)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()
            .context("binding 127.0.0.1:0 to find free ports")?;
        let port = |i: usize| -> Result<u16> { Ok(listeners[i].local_addr()?.port()) };
        Ok(Ports {
            stomp: port(0)?,
            web_stomp: port(1)?,
            amqp: port(2)?,
            epmd: port(3)?,
            dist: port(4)?,
        })
    }
}

/// Whether RabbitMQ is installed.
pub fn installed() -> bool {
    server_script().is_some()
}

/// The server script; RabbitMQ is installed with apt first when it is missing
/// and [`may_install`] allows it, otherwise the error is a [`Missing`].
pub fn ensure_installed() -> Result<PathBuf> {
    if let Some(script) = server_script() {
        return Ok(script);
    }
    if !may_install() {
        return Err(Missing::apt("RabbitMQ (rabbitmq-server)", &["rabbitmq-server"]).into());
    }
    crate::process::apt_install(&["rabbitmq-server"])?;
    server_script().context("apt-get installed rabbitmq-server, but no server script found")
}

/// The server script, if RabbitMQ is installed (`$RABBITMQ_SERVER` overrides).
fn server_script() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RABBITMQ_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let debian = Path::new(DEBIAN_SERVER);
    if debian.exists() {
        return Some(debian.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("rabbitmq-server"))
            .find(|path| path.exists())
    })
}

/// `rabbitmq.conf` (new-style format) for one node.
fn config_text(ports: &Ports) -> String {
    format!(
        "listeners.tcp.1 = 127.0.0.1:{amqp}\n\
         stomp.listeners.tcp.1 = 127.0.0.1:{stomp}\n\
         web_stomp.tcp.ip = 127.0.0.1\n\
         web_stomp.tcp.port = {web_stomp}\n\
         # A test node on a nearly full CI disk must not block publishers.\n\
         disk_free_limit.absolute = 1MB\n\
         log.console = false\n\
         log.file.level = info\n",
        amqp = ports.amqp,
        stomp = ports.stomp,
        web_stomp = ports.web_stomp,
    )
}

impl RabbitMq {
    /// Starts a node with its state under `target_dir/rabbitmq-<pid>-<n>/` and
    /// waits until its STOMP port answers CONNECT. See the module docs for
    /// what happens when RabbitMQ is not installed.
    pub fn start(target_dir: &Path) -> Result<RabbitMq> {
        let script = ensure_installed()?;
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let dir = target_dir.join(format!("rabbitmq-{pid}-{n}"));
        let ports = Ports::pick()?;
        let node = format!("stompkit-{pid}-{n}@localhost");
        let mut rabbit = RabbitMq {
            stomp: SocketAddr::from(([127, 0, 0, 1], ports.stomp)),
            web_stomp: SocketAddr::from(([127, 0, 0, 1], ports.web_stomp)),
            amqp: SocketAddr::from(([127, 0, 0, 1], ports.amqp)),
            epmd_port: ports.epmd,
            dist_port: ports.dist,
            node,
            dir,
            child: None,
        };
        // From here on, dropping `rabbit` cleans up whatever was started.
        rabbit.write_files(&ports)?;
        rabbit.launch(&script, &ports)?;
        if let Err(error) = rabbit.wait_ready() {
            rabbit.print_log_tail();
            return Err(error);
        }
        println!(
            "rabbitmq: node {} up: stomp {} web-stomp ws://{}/ws amqp {} (epmd {}, dist {})",
            rabbit.node,
            rabbit.stomp,
            rabbit.web_stomp,
            rabbit.amqp,
            rabbit.epmd_port,
            rabbit.dist_port
        );
        Ok(rabbit)
    }

    /// Writes the node's files into a fresh directory.
    fn write_files(&self, ports: &Ports) -> Result<()> {
        let _ = std::fs::remove_dir_all(&self.dir);
        for dir in [self.dir.join("log"), self.dir.join("mnesia")] {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let write = |name: &str, text: &str| -> Result<()> {
            let path = self.dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        };
        write("rabbitmq.conf", &config_text(ports))?;
        write("enabled_plugins", "[rabbitmq_stomp,rabbitmq_web_stomp].\n")?;
        // An empty env file, so /etc/rabbitmq/rabbitmq-env.conf cannot override ours.
        write("rabbitmq-env.conf", "")
    }

    /// Spawns the server on the files [`write_files`](Self::write_files) wrote,
    /// in its own process group.
    fn launch(&mut self, script: &Path, ports: &Ports) -> Result<()> {
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("console.log"))?;
        let mut command = Command::new(script);
        command
            .env("HOME", &self.dir) // the Erlang cookie lives here
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_CONF_ENV_FILE", self.dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                self.dir.join("advanced.config"),
            )
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", ports.amqp.to_string())
            .env("RABBITMQ_DIST_PORT", ports.dist.to_string())
            .env("ERL_EPMD_PORT", ports.epmd.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console)
            .process_group(0);
        println!(
            "rabbitmq: starting {} as {} (files in {})",
            script.display(),
            self.node,
            self.dir.display()
        );
        self.child = Some(
            command
                .spawn()
                .with_context(|| format!("could not start {}", script.display()))?,
        );
        Ok(())
    }

    /// Polls until a STOMP CONNECT gets CONNECTED and the Web-STOMP port accepts,
    /// the node exits, or the startup timeout passes.
    pub fn wait_ready(&mut self) -> Result<()> {
        let child = self
            .child
            .as_mut()
            .context("rabbitmq-server was not started")?;
        let (stomp, web_stomp) = (self.stomp, self.web_stomp);
        wait_ready(child, "rabbitmq-server", STARTUP_TIMEOUT, || {
            stomp_connect(stomp)?;
            TcpStream::connect_timeout(&web_stomp, Duration::from_secs(2))
                .map(drop)
                .context("Web-STOMP port not open yet")
        })
    }

    /// Kills the node at once, as a crash would: SIGKILL to its process group,
    /// without letting it write anything more. Its files (and its epmd) stay, for
    /// [`respawn`](Self::respawn).
    pub fn kill(&mut self) {
        if let Some(child) = self.child.take() {
            kill_group(child);
        }
    }

    /// Starts the node again on the same ports, node name and files (after
    /// [`kill`](Self::kill)); returns once the process is spawned, not when it
    /// is ready (see [`wait_ready`](Self::wait_ready)).
    pub fn respawn(&mut self) -> Result<()> {
        self.kill();
        let script = ensure_installed()?;
        let ports = Ports {
            stomp: self.stomp.port(),
            web_stomp: self.web_stomp.port(),
            amqp: self.amqp.port(),
            epmd: self.epmd_port,
            dist: self.dist_port,
        };
        self.launch(&script, &ports)
    }

    /// Prints the end of the node's console output and main log.
    pub fn print_log_tail(&self) {
        let main_log = self.dir.join("log").join(format!("{}.log", self.node));
        for path in [self.dir.join("console.log"), main_log] {
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
            let mut tail = String::new();
            let _ = file.read_to_string(&mut tail);
            eprintln!("--- end of {} ---\n{tail}\n---", path.display());
        }
    }

    /// Stops the node now (what dropping does): SIGTERM to its process group,
    /// SIGKILL after a grace period, then its epmd, then its directory.
    pub fn stop(&mut self) {
        // The KILL also ends what is left in the group (erl_child_setup,
        // inet_gethost, ...).
        if let Some(child) = self.child.take() {
            stop_group(child, STOP_TIMEOUT);
        }
        // erl started an epmd daemon on our port; it left our process group.
        let _ = Command::new("epmd")
            .args(["-port", &self.epmd_port.to_string(), "-kill"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `cargo xtask rabbitmq`: starts a node, prints where it listens, and stops
/// it once stdin reaches end of file or a line is read.
pub fn run_until_stdin_closes(target_dir: &Path) -> Result<()> {
    let rabbit = RabbitMq::start(target_dir)?;
    println!(
        "STOMP_HOST=127.0.0.1 STOMP_PORT={} STOMP_VHOST=/",
        rabbit.stomp.port()
    );
    println!("rabbitmq: press Enter (or close stdin) to stop it");
    let _ = std::io::stdin().read_line(&mut String::new());
    drop(rabbit);
    println!("rabbitmq: stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_the_config_names_each() -> Result<()> {
        let ports = Ports::pick()?;
        let all = [
            ports.stomp,
            ports.web_stomp,
            ports.amqp,
            ports.epmd,
            ports.dist,
        ];
        for (i, port) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(port), "{all:?}");
        }
        let text = config_text(&ports);
        assert!(text.contains(&format!(
            "stomp.listeners.tcp.1 = 127.0.0.1:{}\n",
            ports.stomp
        )));
        assert!(text.contains(&format!("web_stomp.tcp.port = {}\n", ports.web_stomp)));
        assert!(text.contains(&format!("listeners.tcp.1 = 127.0.0.1:{}\n", ports.amqp)));
        Ok(())
    }
}
