//! `cargo xtask interop-js`: the JavaScript interop suites in `interop/js/` run
//! against a real `stompkit-broker` over WebSocket: `@stomp/stompjs` on Node (with
//! the `ws` package), and the broker's demo page in Debian's headless Chromium
//! driven by `playwright-core`.
//!
//! Owns the run: Node.js 20+ and, for the browser suite, Chromium
//! (`/usr/bin/chromium`, or `STOMPKIT_CHROMIUM`), installed with apt when missing
//! and allowed ([`xtask::process::may_install`]: `CI=true` or `--install`), otherwise a
//! [`cmd::Missing`] error that CI reports as skipped; `npm ci` in `interop/js`
//! (only when `package-lock.json` changed),
//! the broker (built and started on `127.0.0.1:0` with the interop suite's
//! [`Broker`] guard, so the same 100 ms heart-beat floor and a fresh data
//! directory of its own; for the browser suite also with `--admin 127.0.0.1:0`,
//! its admin URL read from the line it prints), then `node --test` with
//! `STOMPKIT_WS_URL=ws://<ip>:<port>/ws`, `STOMPKIT_ADMIN_URL=http://<ip>:<port>/`
//! (the browser suite's dashboard test) and `STOMPKIT_SCREENSHOT_DIR=<target>`.
//! Against a broker already running (`--addr`), `STOMPKIT_ADMIN_URL` is passed
//! on from the environment as it is.
//! It does not know what the tests check; `interop/js/README.md` does.

use crate::cmd;
use crate::interop::{Broker, build_broker, run_with_timeout};
use anyhow::{Context, Result, bail};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The oldest Node.js major version the suites run on (`node:test`, playwright-core).
const NODE_MAJOR: u32 = 20;
/// Debian's Chromium.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Upper bound for one `node --test` run (it takes well under a minute).
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);
/// The suites, relative to `interop/js`.
const STOMPJS_TESTS: [&str; 2] = ["test/stompjs.test.mjs", "test/patterns.test.mjs"];
/// The demo chat page, and the admin dashboard (on the admin listener).
const BROWSER_TESTS: [&str; 2] = ["test/browser.test.mjs", "test/dashboard.test.mjs"];

/// Which of the JavaScript suites to run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Suites {
    /// `@stomp/stompjs` on Node (needs Node.js).
    Stompjs,
    /// The demo page in headless Chromium (needs Node.js and Chromium).
    Browser,
    /// Both.
    All,
}

impl Suites {
    /// The test files, relative to `interop/js`.
    fn files(self) -> &'static [&'static str] {
        match self {
            Suites::Stompjs => &STOMPJS_TESTS,
            Suites::Browser => &BROWSER_TESTS,
            Suites::All => &[
                STOMPJS_TESTS[0],
                STOMPJS_TESTS[1],
                BROWSER_TESTS[0],
                BROWSER_TESTS[1],
            ],
        }
    }

    /// Whether the suites need the broker's admin listener (the dashboard test).
    fn need_admin(self) -> bool {
        self != Suites::Stompjs
    }
}

/// Runs `suites` against `addr`, or, when `None`, against a freshly built and
/// started broker. Returns a short note for the CI summary. Node.js or Chromium
/// missing (and not to be installed, see [`xtask::process::may_install`]) is a
/// [`cmd::Missing`] error.
pub fn run(addr: Option<SocketAddr>, suites: Suites) -> Result<String> {
    let started = Instant::now();
    ensure_node()?;
    let chromium = match suites {
        Suites::Stompjs => None,
        Suites::Browser | Suites::All => Some(ensure_chromium()?),
    };
    let dir = cmd::root().join("interop").join("js");
    npm_ci(&dir)?;
    let mut broker = None;
    let mut admin_url = None;
    let addr = match addr {
        Some(addr) => addr,
        None => {
            let mut running = match suites.need_admin() {
                true => Broker::start_with(&build_broker()?, &["--admin", "127.0.0.1:0"])?,
                false => Broker::start(&build_broker()?)?,
            };
            if suites.need_admin() {
                admin_url = Some(running.admin_url()?);
            }
            let addr = running.addr;
            broker = Some(running);
            addr
        }
    };
    let files = suites.files();
    let ws_url = format!("ws://{addr}/ws");
    println!("interop-js: testing {ws_url} ({})", files.join(", "));
    let mut command = Command::new("node");
    command
        .args(["--test", "--test-reporter=spec", "--test-concurrency=1"])
        .args(files)
        .current_dir(&dir)
        .env("STOMPKIT_WS_URL", &ws_url)
        .env("STOMPKIT_SCREENSHOT_DIR", cmd::target_dir())
        .env("STOMPKIT_CHROMIUM", chromium.unwrap_or_default())
        .stdin(std::process::Stdio::null());
    if let Some(url) = &admin_url {
        println!("interop-js: admin listener {url}");
        command.env("STOMPKIT_ADMIN_URL", url);
    }
    let status = run_with_timeout(&mut command, SUITE_TIMEOUT, "the JavaScript interop suites");
    let broker_exit = match broker.as_mut() {
        Some(broker) => broker.exited()?,
        None => None,
    };
    let failure = match (&status, broker_exit) {
        (_, Some(exit)) => Some(format!("stompkit-broker exited during the suites ({exit})")),
        (Err(error), None) => Some(format!("{error:#}")),
        (Ok(status), None) if !status.success() => {
            Some(format!("the JavaScript interop suites failed ({status})"))
        }
        _ => None,
    };
    if let Some(failure) = failure {
        if let Some(broker) = &broker {
            broker.print_log_tail();
        }
        bail!(failure);
    }
    let note = files.join(" + ");
    println!(
        "interop-js: passed ({note}) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(note)
}

/// The major version of `node` on PATH, if it runs.
fn node_major() -> Option<u32> {
    let version = cmd::output(Command::new("node").arg("--version"))?;
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Makes sure Node.js 20+ and npm are there, installing them with apt when
/// allowed; otherwise a [`cmd::Missing`] error.
fn ensure_node() -> Result<()> {
    let have_npm = || cmd::output(Command::new("npm").arg("--version")).is_some();
    if node_major().is_none() || !have_npm() {
        cmd::install_or_missing("Node.js 20+ with npm (nodejs, npm)", &["nodejs", "npm"])?;
    }
    match node_major() {
        Some(major) if major >= NODE_MAJOR && have_npm() => Ok(()),
        Some(major) => bail!("interop-js needs Node.js {NODE_MAJOR}+ and npm; found node {major}"),
        None => bail!("node still does not run after installing it"),
    }
}

/// `npm ci` in `dir` unless `node_modules` was installed from this very lockfile.
fn npm_ci(dir: &Path) -> Result<()> {
    let lock = fs::read_to_string(dir.join("package-lock.json"))
        .context("reading interop/js/package-lock.json")?;
    let stamp = dir.join("node_modules").join(".stompkit-installed-lock");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) {
        return Ok(());
    }
    cmd::run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            // playwright-core downloads nothing on install; make sure of it.
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .env("npm_config_update_notifier", "false")
            .stdin(std::process::Stdio::null()),
    )
    .context("npm ci in interop/js")?;
    fs::write(&stamp, lock)?;
    Ok(())
}

/// The Chromium to drive: `STOMPKIT_CHROMIUM` or Debian's, installed with apt
/// when missing and allowed; otherwise a [`cmd::Missing`] error.
fn ensure_chromium() -> Result<PathBuf> {
    let path = std::env::var_os("STOMPKIT_CHROMIUM")
        .filter(|path| !path.is_empty())
        .map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    if path.exists() {
        return Ok(path);
    }
    cmd::install_or_missing("Chromium (chromium)", &["chromium"])?;
    if !path.exists() {
        bail!(
            "apt-get installed chromium, but {} does not exist",
            path.display()
        );
    }
    Ok(path)
}
