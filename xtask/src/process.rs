//! What tasks and tests need from the machine: whether we run in CI, whether
//! missing system packages may be installed, installing them with apt, the
//! [`Missing`] error a step or test returns when something is not there, and
//! waiting for a started server to answer ([`wait_ready`], [`stomp_connect`]).
//!
//! Owns the house rule for third-party components (RabbitMQ, nats-server,
//! Node.js, Chromium, python3-venv): with `CI=true`, or after `cargo xtask ci
//! --install` ([`allow_install`]), a missing package is installed with apt;
//! otherwise the caller gets a [`Missing`] naming it and the command that
//! installs it, which `cargo xtask ci` reports as `SKIPPED` (and, with
//! `CI=true`, as a failure). It does not know which step needs what; the steps
//! do.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by `--install`: install missing packages outside CI too.
static INSTALL: AtomicBool = AtomicBool::new(false);

/// True when the `CI` environment variable says we run in CI.
pub fn in_ci() -> bool {
    matches!(
        std::env::var("CI").as_deref(),
        Ok("true" | "1" | "yes" | "TRUE" | "True")
    )
}

/// Lets [`may_install`] say yes outside CI (`cargo xtask ci --install`).
pub fn allow_install() {
    INSTALL.store(true, Ordering::Relaxed);
}

/// Whether a missing system package may be installed: in CI, or after [`allow_install`].
pub fn may_install() -> bool {
    in_ci() || INSTALL.load(Ordering::Relaxed)
}

/// A system component this machine lacks, and how to get it. Returned (inside
/// an `anyhow::Error`) by whatever needed it when it may not be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What is missing, e.g. `RabbitMQ (rabbitmq-server)`.
    pub what: String,
    /// The command that installs it, e.g. `apt-get install rabbitmq-server`.
    pub install: String,
}

impl Missing {
    /// A missing Debian package set: `what` and `apt-get install <packages>`.
    pub fn apt(what: impl Into<String>, packages: &[&str]) -> Missing {
        Missing {
            what: what.into(),
            install: format!("apt-get install {}", packages.join(" ")),
        }
    }

    /// The missing component from an error chain, if that is why it failed.
    pub fn find(error: &anyhow::Error) -> Option<&Missing> {
        error
            .chain()
            .find_map(|cause| cause.downcast_ref::<Missing>())
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SKIPPED: {} is not installed ({}, or cargo xtask ci --install)",
            self.what, self.install
        )
    }
}

impl std::error::Error for Missing {}

/// Installs `packages` with apt when [`may_install`] allows it, else fails
/// with [`Missing`] (`what` names them for a reader).
pub fn install_or_missing(what: &str, packages: &[&str]) -> Result<()> {
    if !may_install() {
        return Err(Missing::apt(what, packages).into());
    }
    apt_install(packages)
}

/// Installs Debian `packages` with apt (`apt-get update` first, non-interactive,
/// waiting for another apt to release its lock).
pub fn apt_install(packages: &[&str]) -> Result<()> {
    println!("{} missing; installing with apt-get", packages.join(", "));
    for args in [
        &["-q", "update"][..],
        &["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q"][..],
    ] {
        let install = args.contains(&"install");
        let status = Command::new("apt-get")
            .args(args)
            .args(if install { packages } else { &[] })
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .context("could not run apt-get")?;
        if !status.success() {
            bail!("apt-get {} failed ({status})", args.join(" "));
        }
    }
    Ok(())
}

/// Polls `probe` every 250 ms until it succeeds. Fails when `child` (the
/// server being waited for, named `what`) exits first, or after `timeout` with
/// the probe's last error.
pub fn wait_ready(
    child: &mut Child,
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<()>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited before it was ready ({status})");
        }
        match probe() {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() > deadline => {
                bail!("{what} not ready within {timeout:?}: {error:#}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// One STOMP 1.2 CONNECT as `guest`/`guest` to `addr`; Ok when CONNECTED comes back.
pub fn stomp_connect(addr: SocketAddr) -> Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0"
    )?;
    let mut first = String::new();
    BufReader::new(&stream).read_line(&mut first)?;
    match first.trim_end() {
        "CONNECTED" => {
            let _ = stream.write_all(b"DISCONNECT\n\n\0"); // best effort: we close anyway
            Ok(())
        }
        "" => bail!("connection closed without a reply"),
        other => bail!("got {other} instead of CONNECTED"),
    }
}

/// Kills `child`'s process group at once (SIGKILL, as a crash would) and
/// reaps it.
pub fn kill_group(mut child: Child) {
    signal(&format!("-{}", child.id()), "KILL");
    let _ = child.wait();
}

/// Stops `child`'s process group: SIGTERM, up to `grace` for its leader to
/// exit, then SIGKILL to whatever is left of the group, and reaps it.
pub fn stop_group(mut child: Child, grace: Duration) {
    let group = format!("-{}", child.id());
    if let Ok(None) = child.try_wait() {
        signal(&group, "TERM");
        let deadline = Instant::now() + grace;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    signal(&group, "KILL");
    let _ = child.wait();
}

/// Sends `SIG<name>` to `target` (a pid, or `-pgid` for a process group).
pub fn signal(target: &str, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), "--", target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_says_skipped_and_how_to_install() {
        let missing = Missing::apt("RabbitMQ (rabbitmq-server)", &["rabbitmq-server"]);
        assert_eq!(
            missing.to_string(),
            "SKIPPED: RabbitMQ (rabbitmq-server) is not installed \
             (apt-get install rabbitmq-server, or cargo xtask ci --install)"
        );
    }

    #[test]
    fn missing_is_found_under_context() {
        let error = anyhow::Error::from(Missing::apt("Chromium", &["chromium"]))
            .context("starting the browser suite");
        assert_eq!(
            Missing::find(&error).map(|m| m.install.as_str()),
            Some("apt-get install chromium")
        );
        assert!(Missing::find(&anyhow::anyhow!("other")).is_none());
    }

    #[test]
    fn wait_ready_fails_when_the_server_exits_or_times_out() -> Result<()> {
        let mut exited = Command::new("true").spawn()?;
        exited.wait()?;
        let error = wait_ready(&mut exited, "server", Duration::from_secs(5), || {
            bail!("no")
        })
        .expect_err("exited");
        assert!(
            error
                .to_string()
                .starts_with("server exited before it was ready"),
            "{error}"
        );
        let mut running = Command::new("sleep").arg("30").spawn()?;
        let error = wait_ready(&mut running, "server", Duration::ZERO, || bail!("refused"))
            .expect_err("timed out");
        assert!(
            error.to_string().ends_with("not ready within 0ns: refused"),
            "{error}"
        );
        let mut tries = 0;
        wait_ready(&mut running, "server", Duration::from_secs(5), || {
            tries += 1;
            if tries < 2 { bail!("not yet") } else { Ok(()) }
        })?;
        running.kill()?;
        running.wait()?;
        Ok(())
    }
}
