//! `stompkit-broker`: run the broker.
//!
//! `cargo run --release -p stompkit-broker` listens on 127.0.0.1:61613 with
//! default limits, serving STOMP over TCP and over WebSocket (and the demo page)
//! on the same port, and keeps persistent messages and durable subscriptions in
//! `./stompkit-data` (created on first start). Options: `--data-dir DIR`
//! (`[store] dir`), `--in-memory` (keep nothing on disk), `--listen ADDR` (repeatable;
//! `ws://ADDR` for WebSocket only, `stomp://ADDR` for TCP STOMP only; over TLS
//! with the `[tls]` certificate: `tls://ADDR` for both, `wss://ADDR`,
//! `stomp+ssl://ADDR`),
//! `--ws-only`, `--config FILE` (TOML, see `stompkit.sample.toml`),
//! `--metrics ADDR`, `--log-level LEVEL`, `--upstream URL` and
//! `--upstream-ca-file FILE` (relay mode, `[relay]`), `--version`. Every config key can also
//! be set with a `STOMPKIT_<SECTION>_<KEY>` environment variable; command-line
//! flags win. After binding it prints to stdout, per listener,
//! `stompkit-broker listening on stomp://<ip>:<port>` when it serves TCP STOMP and
//! `stompkit-broker websocket on ws://<ip>:<port>/ws` when it serves WebSocket
//! (the first configured path; `stomp+ssl://` and `wss://` on TLS listeners), then
//! `stompkit-broker metrics on http://<ip>:<port>/metrics` when enabled. Logs go
//! to stderr.
//! A configuration that cannot start (e.g. anonymous access on a non-loopback
//! address) prints one line to stderr and exits with status 2.
//!
//! Subcommands:
//! - `stompkit-broker passwd LOGIN` reads a password (without echo on a terminal,
//!   else the first line of stdin) and prints its argon2id hash for `[[auth.users]]`.
//! - `stompkit-broker token LOGIN --ttl 1h` prints a signed token passcode made
//!   with `[auth] token_secret` (from `--config` or `STOMPKIT_AUTH_TOKEN_SECRET`).

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use stompkit_broker::auth::{password, token};
use stompkit_broker::{Broker, BrokerConfig, raise_nofile_limit};

/// A STOMP 1.0/1.1/1.2 broker.
#[derive(Parser, Debug)]
#[command(name = "stompkit-broker", version, about)]
struct Args {
    /// Address to accept STOMP connections on, over TCP and WebSocket (repeatable; `ws://ADDR`: WebSocket only, `stomp://ADDR`: TCP only; TLS with the [tls] certificate: `tls://ADDR` both, `wss://ADDR`, `stomp+ssl://ADDR`) [default: 127.0.0.1:61613].
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<String>,
    /// Serve only STOMP over WebSocket on every listener: TCP STOMP clients get an ERROR.
    #[arg(long)]
    ws_only: bool,
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Log filter (error, warn, info, debug, trace or tracing directives).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Relay mode: relay every client session to this broker
    /// (stomp://HOST:PORT or stomp+ssl://HOST:PORT) with the client's own credentials.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// PEM file of the CA certificates to trust for a stomp+ssl upstream (only
    /// these); default: the system's root certificates.
    #[arg(long, value_name = "FILE")]
    upstream_ca_file: Option<String>,
    /// Keep persistent messages and durable subscriptions in DIR ([store] dir,
    /// STOMPKIT_STORE_DIR) [default: ./stompkit-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// Keep nothing on disk: persistent messages and durable subscriptions are
    /// lost on restart ([store] in_memory).
    #[arg(long, conflicts_with = "data_dir")]
    in_memory: bool,
    #[command(subcommand)]
    command: Option<Tool>,
}

/// Helpers for the `[auth]` section.
#[derive(Subcommand, Debug)]
enum Tool {
    /// Read a password (no echo; stdin when not a terminal) and print its argon2id
    /// hash, for `password_hash` in `[[auth.users]]`.
    Passwd {
        /// The login the password is for (shown in the prompt).
        login: String,
    },
    /// Print a signed token passcode for LOGIN, made with `[auth] token_secret`.
    Token {
        /// The login the token is for.
        login: String,
        /// Lifetime: seconds, or a number with s, m, h or d (at most
        /// `token_max_ttl_s`).
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
    },
}

/// `90`, `90s`, `15m`, `1h`, `2d` → a duration.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: use e.g. 90s, 15m, 1h, 2d"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?}: use s, m, h or d"
            ));
        }
    };
    n.checked_mul(unit)
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("invalid duration {text:?}"))
}

/// Descriptors the broker needs besides one per connection.
const NOFILE_RESERVE: u64 = 64;

fn main() -> ExitCode {
    match start(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the cause chain joined with ": ".
            eprintln!("stompkit-broker: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn start(args: Args) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            BrokerConfig::from_toml(&text)?
        }
        None => BrokerConfig::default(),
    }
    .with_env(std::env::vars())?;
    if !args.listen.is_empty() {
        config.server.listen = args.listen.clone();
    }
    if args.ws_only {
        config.websocket.ws_only = true;
    }
    if let Some(m) = args.metrics {
        config.server.metrics = m;
    }
    if let Some(l) = args.log_level {
        config.server.log_level = l;
    }
    if let Some(upstream) = args.upstream {
        config.relay.upstream = upstream;
    }
    if let Some(ca_file) = args.upstream_ca_file {
        config.relay.ca_file = ca_file;
    }
    if let Some(dir) = args.data_dir {
        config.store.dir = dir;
    }
    if args.in_memory {
        config.store.in_memory = true;
    }
    match args.command {
        Some(Tool::Passwd { login }) => return passwd(&login),
        Some(Tool::Token { login, ttl }) => return mint_token(&config, &login, ttl),
        None => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(
            &config.server.log_level,
        )?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // One descriptor per connection, plus listeners, logs and the runtime's own.
    let wanted = config.limits.max_connections as u64 + NOFILE_RESERVE;
    match raise_nofile_limit() {
        Ok(n) if n < wanted => tracing::warn!(
            limit = n,
            max_connections = config.limits.max_connections,
            "open-file limit (raised to the hard limit) is below max_connections: \
             connections beyond about {} will fail; raise the hard limit (ulimit -Hn) \
             or lower limits.max_connections",
            n.saturating_sub(NOFILE_RESERVE)
        ),
        Ok(n) => tracing::debug!(limit = n, "open-file limit raised to the hard limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise RLIMIT_NOFILE"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config))
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    catch_file_size_signal()?;
    let ws_path = config.websocket.paths.first().cloned().unwrap_or_default();
    let broker = Broker::bind(config).await.context("cannot start")?;
    {
        let mut stdout = std::io::stdout().lock();
        for listener in broker.listeners() {
            let addr = listener.addr;
            let (stomp, ws) = match listener.tls {
                true => ("stomp+ssl", "wss"),
                false => ("stomp", "ws"),
            };
            if listener.stomp {
                writeln!(stdout, "stompkit-broker listening on {stomp}://{addr}")?;
            }
            if listener.websocket && !ws_path.is_empty() {
                writeln!(
                    stdout,
                    "stompkit-broker websocket on {ws}://{addr}{ws_path}"
                )?;
            }
        }
        if let Some(addr) = broker.metrics_addr() {
            writeln!(stdout, "stompkit-broker metrics on http://{addr}/metrics")?;
        }
        stdout.flush()?;
    }
    tracing::info!(addrs = ?broker.local_addrs(), "broker started");
    wait_for_signal().await;
    tracing::info!("shutting down");
    broker.shutdown().await;
    Ok(())
}

/// `passwd LOGIN`: the argon2id hash of a password read without echo.
fn passwd(login: &str) -> anyhow::Result<()> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {login}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    let hash = password::hash(&password)?;
    writeln!(std::io::stdout(), "{hash}")?;
    Ok(())
}

/// `token LOGIN --ttl T`: a `v1.<expiry>.<signature>` passcode.
fn mint_token(config: &BrokerConfig, login: &str, ttl: Duration) -> anyhow::Result<()> {
    let secret = config.auth.token_secret.expose();
    if secret.is_empty() {
        bail!("no token secret: set [auth] token_secret or STOMPKIT_AUTH_TOKEN_SECRET");
    }
    if ttl.as_secs() > config.auth.token_max_ttl_s {
        bail!(
            "--ttl {}s is longer than token_max_ttl_s ({}s): the broker would refuse it",
            ttl.as_secs(),
            config.auth.token_max_ttl_s
        );
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let token = token::mint(secret.as_bytes(), login, now + ttl.as_secs());
    writeln!(std::io::stdout(), "{token}")?;
    Ok(())
}

/// A write past `RLIMIT_FSIZE` must fail with `EFBIG` (the store reports it
/// and keeps serving) rather than kill the broker: a handler for `SIGXFSZ`
/// replaces the default action (tokio keeps it installed for the process's life).
fn catch_file_size_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        drop(signal(SignalKind::from_raw(libc::SIGXFSZ))?);
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "no SIGTERM handler: waiting for Ctrl-C only");
                ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c().await;
}

/// Waits for Ctrl-C; if that cannot be waited for, says so and returns (the
/// broker then shuts down).
async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot wait for Ctrl-C");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "h", "1w", "0", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }
}
